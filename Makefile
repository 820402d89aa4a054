# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs everything and runs the main job on the bundled default
#   make test   does the same set-up and runs the linter and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.a2bs-installed
# Debian packages the project needs: espeak-ng speaks the synthetic training corpus; Festival and Flite
# voices (kal, ked, rms) give `a2bs data voices` more speakers; kotlin compiles the Android sample's
# JVM-only engine logic for its tests.
APT_PACKAGES := espeak-ng festival festvox-kallpc16k festvox-kdlpc16k flite kotlin

.PHONY: demo test test-fast setup bench clean shipped-models

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if [ -n "$(APT_PACKAGES)" ]; then \
		missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel (a looser requirement would pull a multi-GB CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/a2bs-convert ios --force
	$(BIN)/a2bs-convert android --force
	mkdir -p out
	$(BIN)/a2bs infer --force --plot out/speech_en_us.png

# The Swift toolchain for the iOS sample's engine: `swift` on PATH, else where the toolchain is usually installed.
# tests/test_ios_sample.py builds the Swift package and runs `swift test` with a trace it records from the real Core ML
# models. Without a toolchain those tests skip (one line here), except when the environment variable CI is set: then
# they fail, so CI always proves the Swift engine.
SWIFT ?= $(shell command -v swift 2>/dev/null || { test -x /opt/swift/usr/bin/swift && echo /opt/swift/usr/bin/swift; })

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@[ -n "$(SWIFT)" ] || echo "make test: no Swift toolchain (swift not on PATH nor in /opt/swift/usr/bin): the iOS engine's Swift build and tests are skipped$${CI:+, which fails in CI}"
	A2BS_SWIFT="$(SWIFT)" $(BIN)/python -m pytest

# The everyday tier: no conversions, no sample engine builds, small untrained models (tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	A2BS_TEST_TIER=fast $(BIN)/python -m pytest -m "not slow" -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_infer.py
	$(BIN)/python benchmarks/bench_artifacts.py
	$(BIN)/python benchmarks/bench_articulation.py
	$(BIN)/python benchmarks/bench_life.py

# The LiteRT fp16 models of the default checkpoints that `a2bs infer` runs without torch (runtime/assets), with
# the offline model that it runs on files (many frames per call).
# Rebuild after retraining a default checkpoint; tests/test_shipped_models.py fails until you do.
shipped-models: $(STAMP)
	for fps in 30 60; do $(BIN)/a2bs-convert android --checkpoint core/assets/checkpoints/default-$${fps}fps \
		--quantize fp16 --only --offline --out runtime/assets/default-$${fps}fps --force --no-validate; done

clean:
	rm -rf $(VENV) out build *.egg-info
