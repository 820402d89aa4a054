"""The validation harness (`a2bs validate`) and the CI gate: both platforms' bundles of the TRAINED
default pass every check on real speech through the real runtimes; damaged bundles give failing checks
that name the file, never a crash and never a pass (the parity faults are in test_negative_controls.py;
the damaged-file cases below use the untrained mechanics bundles)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from a2bs.cli import convert as convert_cli
from a2bs.cli import main as core_cli
from a2bs.convert.bundle import build_bundle
from a2bs.core.audio import n_output_frames, probe
from a2bs.core.checkpoint import Checkpoint, default_checkpoint_dir
from a2bs.core.parity import gate, parity_metrics
from a2bs.core.variants import PARITY_LIMITS, find_variant
from a2bs.mobile_validation import latency as L
from a2bs.mobile_validation import parity as P
from a2bs.mobile_validation import validate as V
from a2bs.runtime.engine import BundleEngine, run_stream

KINDS = {"integrity", "manifest", "size", "parity", "streaming", "latency"}


def _copy(bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / bundle.name
    shutil.copytree(bundle, out)
    return out


def _checks(report: V.Report, kind: str, artifact: str | None = None) -> list[V.Check]:
    return [c for c in report.checks if c.kind == kind and (artifact is None or c.artifact == artifact)]


@pytest.fixture(scope="module")
def android_report(trained_android_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> V.Report:
    """dynamic_int8 default + fp32 of the trained default, latency included (as evidence)."""
    bundle = _copy(trained_android_bundle, tmp_path_factory.mktemp("validated"))
    return V.validate_bundle(bundle)


@pytest.fixture(scope="module")
def ios_report(trained_ios_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> V.Report:
    """fp16 default + palettize4 of the trained default, so the decompressed-weight check and the LUT op run too."""
    bundle = _copy(trained_ios_bundle, tmp_path_factory.mktemp("validated"))
    return V.validate_bundle(bundle)


# --- the CI gate: both platforms pass -------------------------------------------------------------


@pytest.mark.parametrize("name", ["android_report", "ios_report"])
def test_gate_every_check_passes(name: str, request: pytest.FixtureRequest) -> None:
    report: V.Report = request.getfixturevalue(name)
    failures = [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in report.failures()]
    assert report.passed, failures
    assert {c.kind for c in report.checks} == KINDS
    steps = [f for f in report.manifest["files"] if f["role"] == "step"]
    for entry in report.manifest["files"]:  # every model has a size check and a parity check that ran
        assert _checks(report, "size", entry["path"])
        parity = _checks(report, "parity", entry["path"])
        assert parity and all(c.runtime != "not run" for c in parity)
    for entry in steps:
        (end_to_end,) = [c for c in _checks(report, "parity", entry["path"]) if c.name == "end-to-end blendshapes"]
        d = end_to_end.details
        assert d["rel_mae"] <= d["limits"]["mae"] and d["psnr_db"] >= d["limits"]["psnr_db"]
        assert d["min_correlation"] >= d["limits"]["min_correlation"] and len(d["worst_frames"]) == P.WORST_FRAMES
        assert d["moving_shapes"] >= 10, "the trained reference must move, or parity proves nothing"
        assert set(d["correlation"]) == set(report.manifest["blendshapes"])
        assert d["frames"] == sum(n_output_frames(probe(a["path"]), 30) for a in report.audio)


def test_gate_60fps_android(trained60: Checkpoint, tmp_path: Path) -> None:
    """The trained 60 fps default (context 512, look-ahead 4) passes parity and streaming too."""
    bundle = tmp_path / "android60"
    build_bundle("android", trained60, ["dynamic_int8"], bundle, progress=lambda _: None)
    report = V.validate_bundle(bundle, latency=False, reference=trained60)
    assert report.passed, [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in report.failures()]
    (end_to_end,) = [c for c in _checks(report, "parity") if c.name == "end-to-end blendshapes"]
    assert end_to_end.details["frames"] == sum(n_output_frames(probe(a["path"]), 60) for a in report.audio)
    assert _checks(report, "streaming")[0].passed


def test_gate_android_runtimes_and_latency(android_report: V.Report) -> None:
    parity = _checks(android_report, "parity")
    assert all(c.runtime.startswith("LiteRT interpreter") for c in parity if c.name != "decompressed weights")
    (weights,) = [c for c in parity if c.name == "decompressed weights"]  # dynamic_int8
    assert weights.passed and len(weights.details["weights"]) >= 10
    for check in _checks(android_report, "latency"):
        d = check.details
        assert d["verdict"] in ("measured", "inconclusive") and not d["strict"]
        assert "1" in d["threads"] and set(d["threads"]) <= {"1", "2"}
        for figures in d["threads"].values():
            assert 0 < figures["median_ms"] <= figures["p95_ms"] and figures["frames_timed"] > 100
            assert figures["torch_median_ms"] > 0 and figures["ratio_vs_torch"] > 0
            assert len(figures["block_ratios"]) == L.NOISE_BLOCKS
        assert check.value == d["threads"]["1"]["ratio_vs_torch"] and check.threshold == L.MAX_RATIO_VS_TORCH
        assert 0 < d["rtf"] < 1 and 10 < d["peak_rss_mb"] < 500


def test_gate_ios_runtimes_and_latency(ios_report: V.Report) -> None:
    import platform

    parity = [c for c in _checks(ios_report, "parity") if c.name != "decompressed weights"]
    expected = "Core ML" if platform.system() == "Darwin" else "NumPy MIL executor"
    assert all(c.runtime.startswith(expected) for c in parity)
    (weights,) = [c for c in _checks(ios_report, "parity") if c.name == "decompressed weights"]
    assert weights.artifact == "a2bs_step_palettize4.mlpackage" and weights.passed
    assert 0.01 < weights.value <= find_variant("ios", "palettize4").weight_limit[0]  # 4-bit LUTs are visibly coarse
    for check in _checks(ios_report, "latency"):
        if platform.system() != "Darwin":
            assert check.details["measured"] is False and "not measured" in check.runtime
            assert 1 < check.value <= check.threshold and check.unit == "MMAC per frame"


def test_report_files(android_report: V.Report) -> None:
    bundle = android_report.bundle
    data = json.loads((bundle / V.REPORT_JSON).read_text())
    assert data["passed"] is True and data["platform"] == "android"
    for check in data["checks"]:
        assert {"artifact", "kind", "passed", "value", "threshold", "runtime"} <= set(check)
    page = (bundle / V.REPORT_HTML).read_text()
    assert "PASSED" in page and page.count("data:image/png;base64,") == len(data["plots"]) >= 2
    for plot in data["plots"]:
        assert (bundle / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["validation"]["passed"] is True and manifest["validation"]["report"] == V.REPORT_JSON
    readme = (bundle / "README.md").read_text()
    assert readme.count("## Validation") == 1 and "benchmark_model" in readme


# --- damaged bundles: failing checks, never a crash or a pass -------------------------------------


def test_tampered_file(android_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    bundle = _copy(android_bundle, tmp_path)
    step = bundle / "a2bs_step_dynamic_int8.tflite"
    data = bytearray(step.read_bytes())
    data[len(data) // 2] ^= 0xFF
    step.write_bytes(bytes(data))
    # the fixture checkpoint is not the bundled default: name it (a manifest records a name, not a path)
    report = V.validate_bundle(bundle, checkpoint=checkpoint_dirs[30], latency=False)
    assert not report.passed
    (integrity,) = _checks(report, "integrity", step.name)
    assert not integrity.passed and step.name in integrity.reason and "sha256" in integrity.reason
    assert all(not c.passed and "integrity" in c.reason for c in _checks(report, "parity", step.name))
    validation = json.loads((bundle / "manifest.json").read_text())["validation"]
    assert validation["passed"] is False and validation["skipped"] == ["latency (--no-latency)"]
    assert not _checks(report, "latency") and "Not run at the caller" in (bundle / V.REPORT_HTML).read_text()


def test_missing_file_and_unlisted_model(
    android_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    bundle = _copy(android_bundle, tmp_path)
    (bundle / "a2bs_front_end.tflite").rename(bundle / "extra.tflite")
    report = V.validate_bundle(bundle, checkpoint=checkpoint_dirs[30], latency=False)
    assert not report.passed
    reasons = " | ".join(c.reason for c in report.failures())
    assert "a2bs_front_end.tflite is missing" in reasons
    assert "extra.tflite is in the bundle but not in manifest" in reasons
    assert all(not c.passed for c in _checks(report, "parity"))  # nothing can run without the front end


def test_manifest_that_does_not_match_the_model(
    android_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    bundle = _copy(android_bundle, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["models"]["step"]["inputs"][3]["name"] = "previous_frame"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    report = V.validate_bundle(bundle, checkpoint=checkpoint_dirs[30], latency=False)
    bad = [c for c in report.failures() if c.kind == "manifest"]
    assert {c.artifact for c in bad} == {f["path"] for f in manifest["files"] if f["role"] == "step"}
    assert all("previous_frame" in c.reason for c in bad)


def test_wrong_reference_checkpoint(android_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    bundle = _copy(android_bundle, tmp_path)
    report = V.validate_bundle(bundle, checkpoint=checkpoint_dirs[60], latency=False)
    (reference,) = [c for c in report.checks if c.name == "reference checkpoint"]
    assert not reference.passed and "--checkpoint" in reference.reason
    assert all(not c.passed for c in _checks(report, "parity")) and not report.passed


def test_unsupported_op_in_the_linux_executor(
    ios_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch
) -> None:
    import platform

    if platform.system() == "Darwin":
        pytest.skip("on macOS the harness runs Core ML itself, not the NumPy executor")
    from a2bs.runtime import mil_executor

    monkeypatch.setattr(mil_executor, "SUPPORTED_OPS", mil_executor.SUPPORTED_OPS - {"softmax"})
    report = V.validate_bundle(_copy(ios_bundle, tmp_path), checkpoint=checkpoint_dirs[30], latency=False)
    (step,) = [c for c in _checks(report, "parity", "a2bs_step_fp16.mlpackage")]
    assert not step.passed and "unsupported MIL op(s) softmax" in step.reason and not report.passed


def test_bad_codebook_fails_the_weight_check(ckpt30: Checkpoint, monkeypatch, ios_report: V.Report) -> None:
    """A LUT that decompresses to the wrong values is caught by the weight check on its own."""
    path = ios_report.bundle / "a2bs_step_palettize4.mlpackage"
    entry = {"path": path.name, "variant": "palettize4"}
    real = P.coreml_weights(path)
    rng = np.random.default_rng(0)
    shuffled = {k: rng.permutation(w.reshape(-1)).reshape(w.shape) for k, w in real.items()}
    monkeypatch.setattr(P, "coreml_weights", lambda _: shuffled)
    check = P.weights_check(path, entry, "ios", ckpt30)
    assert not check.passed and check.value > 0.5 and "relative error" in check.reason


def _moving_reference(frames: int = 600, shapes: int = 52, seed: int = 0) -> np.ndarray:
    """Blendshape-like curves: smooth, in [0, 1], each shape with its own level and amount of motion."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / 30.0
    level, amount = rng.uniform(0.05, 0.5, shapes), rng.uniform(0.02, 0.3, shapes)
    phase, rate = rng.uniform(0, 6, shapes), rng.uniform(0.3, 3, shapes)
    return np.clip(level + amount * np.sin(rate * t + phase), 0, 1).astype(np.float32)


def test_parity_gate_is_relative_to_the_reference_motion() -> None:
    reference = _moving_reference()
    fine = parity_metrics(reference, reference + 1e-5 * np.random.default_rng(1).normal(size=reference.shape))
    assert not gate(fine, PARITY_LIMITS["fp16"])
    # a model that ignores its input: the reference's mean, every frame. Small in absolute terms, caught
    # by every relative measure, whatever the amount of motion.
    for scale in (1.0, 0.05):
        moving = 0.2 + scale * (reference - 0.2)
        still = np.broadcast_to(moving.mean(axis=0), moving.shape)
        metrics = parity_metrics(moving, still)
        assert metrics["rel_mae"] > 0.5 and metrics["min_correlation"] == 0.0
        for limits in PARITY_LIMITS.values():
            problems = gate(metrics, limits)
            assert any("MAE" in p for p in problems) and any("correlation" in p for p in problems)
    # PSNR's peak is the reference's range: the same error costs more dB on a reference that barely moves
    low = 0.2 + 0.05 * (reference - 0.2)
    noise = 1e-3 * np.random.default_rng(2).normal(size=reference.shape)
    psnr_low, psnr_full = (parity_metrics(r, r + noise)["psnr_db"] for r in (low, reference))
    assert psnr_low < psnr_full - 20


def test_parity_gate_fails_nan_and_infinity_everywhere() -> None:
    reference = _moving_reference()
    for bad in (np.nan, np.inf, -np.inf):
        broken = reference.copy()
        broken[10, 3] = bad
        metrics = parity_metrics(reference, broken)
        for limits in PARITY_LIMITS.values():
            problems = gate(metrics, limits)
            assert any("NaN or infinite" in p for p in problems) and len(problems) >= 3, problems
    # a NaN correlation (or a missing non_finite count) fails on its own, too
    good = parity_metrics(reference, reference)
    assert gate({**good, "min_correlation": float("nan")}, PARITY_LIMITS["activation_int8"])
    assert gate({**good, "rel_mae": float("nan")}, PARITY_LIMITS["activation_int8"])
    assert gate({k: v for k, v in good.items() if k != "non_finite"}, PARITY_LIMITS["activation_int8"])
    # a reference where nothing moves cannot judge a model: that fails instead of passing vacuously
    flat = np.full_like(reference, 0.3)
    assert any("moves" in p for p in gate(parity_metrics(flat, flat), PARITY_LIMITS["fp32"]))


def test_parity_gate_catches_a_one_frame_shift() -> None:
    reference = _moving_reference()
    shifted = np.concatenate([reference[:1], reference[:-1]])
    problems = gate(parity_metrics(reference, shifted), PARITY_LIMITS["fp16"])
    assert problems


# --- the streaming replay itself ----------------------------------------------------------------


def test_engine_chunking_and_frame_count(android_bundle: Path) -> None:
    from a2bs.runtime.bundle_inference import open_runners

    manifest, front, step = open_runners(android_bundle, "tflite", None)
    audio = np.random.default_rng(1).normal(0, 0.1, 16000 + 123).astype(np.float32)
    whole = run_stream(BundleEngine(manifest, front, step), audio, [len(audio)])
    assert whole.shape == (-(-len(audio) * 30 // 16000), 52)
    for sizes in ([1, 999, 5], [533, 534], [4096]):
        np.testing.assert_array_equal(run_stream(BundleEngine(manifest, front, step), audio, sizes), whole)
    engine = BundleEngine(manifest, front, step)
    assert len(engine.push(audio[:1000])) == 0  # the first frame waits for look-ahead audio
    engine.reset()
    assert engine.received == 0 and engine.emitted == 0


# --- command lines -----------------------------------------------------------------------------


def _run(monkeypatch, capsys, main, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", list(argv))
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_cli(monkeypatch, capsys, trained_android_bundle: Path, tmp_path: Path) -> None:
    good = _copy(trained_android_bundle, tmp_path / "good")
    for _ in range(2):  # validating again replaces the report and the README section
        code, out, _ = _run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", str(good), "--no-latency")
        assert code == 0 and "validation PASSED; not run: latency (--no-latency)" in out
    assert (good / "README.md").read_text().count("## Validation") == 1
    (good / "a2bs_front_end.tflite").unlink()
    code, out, _ = _run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", str(good), "--no-latency")
    assert code == 1 and "FAIL" in out and "a2bs_front_end.tflite is missing" in out
    code, _, err = _run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", str(tmp_path / "nothing"))
    assert code == 2 and err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
    code, _, err = _run(
        monkeypatch, capsys, core_cli.main, "a2bs", "validate", str(good), "--audio", str(tmp_path / "missing.wav")
    )
    assert code == 2 and "missing.wav" in err and len(err.strip().splitlines()) == 1


def test_convert_validates_and_installs(monkeypatch, capsys, tmp_path: Path) -> None:
    sample = tmp_path / "android_sample"
    sample.mkdir()
    (sample / "a2bs-sample.json").write_text(json.dumps({"platform": "android", "bundle_dir": "app/assets/a2bs"}))
    trained = str(default_checkpoint_dir(30))
    args = ["a2bs-convert", "android", "--checkpoint", trained, "--out", str(tmp_path / "b")]
    code, out, err = _run(monkeypatch, capsys, convert_cli.main, *args, "--install-into", str(sample))
    assert code == 0, err
    assert "validation PASSED" in out and json.loads((tmp_path / "b/manifest.json").read_text())["validation"]["passed"]
    report = json.loads((tmp_path / "b/report.json").read_text())
    assert report["bundle"] == str(tmp_path / "b")  # the bundle's own path, not the staging folder it was checked in
    assert str(tmp_path / "b") in (tmp_path / "b/report.html").read_text()
    installed = sample / "app/assets/a2bs"
    assert (installed / "manifest.json").is_file() and (installed / "report.json").is_file()
    assert not (installed / "report.html").exists() and not (installed / "validation_plots").exists()  # not app data
    assert (installed / "sample_clip.wav").stat().st_size > 100_000
    args[-1] = str(tmp_path / "b2")
    code, _, err = _run(monkeypatch, capsys, convert_cli.main, *args, "--install-into", str(sample))
    assert code == 2 and "already holds a bundle" in err and "--force" in err and not (tmp_path / "b2").exists()
    code, _, err = _run(
        monkeypatch,
        capsys,
        convert_cli.main,
        "a2bs-convert",
        "ios",
        "--out",
        str(tmp_path / "i"),
        "--install-into",
        str(sample),
    )
    assert code == 2 and "android sample" in err and not (tmp_path / "i").exists()
