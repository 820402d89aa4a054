"""The iOS sample (ios_sample/): its Swift engine compiled and tested on Linux against a real bundle.

1. `A2BSEngine` (the Swift package, Swift 6 language mode) is built with the Swift toolchain, warnings as errors
   (so a strict-concurrency warning fails), and `swift test` runs its unit tests and a replay: Python runs a freshly
   built iOS bundle's Core ML models (through the NumPy MIL executor, `open_runners(bundle, "coreml", None)`) frame by
   frame over 3 s of speech and records every call; the Swift engine reads the bundle's manifest.json and the 16-bit
   clip, builds every model input itself, is answered by replay runners that check each input against the recording
   (1e-6) and return the recorded outputs, in five chunkings. Its frames must equal `iter_bundle_blendshapes` (the
   Python reference, neutral emotion as on the phone) through the manifest's life layer (`core/life.py`, seed 0,
   each frame's PCM window), curves and rotations; at life amount 0, the model's frames themselves.
   The life layer alone (LifeLayer.swift) replays Python's on the whole bundled clip (natural and subtle, two seeds,
   every kind of event present) to 1e-6; another seed and a perturbed parameter must not match (LifeReplayTests).
   The face controls (FaceControls.swift) replay Python's `ControlsFilter` on the same model frames for every
   CONTROL_CASES case to 1e-6, whole and in irregular chunks (ControlsReplayTests); the engine with controls set
   emits Python's model -> controls -> life frames; a case with one control or its fps changed fails naming it.
2. Negative controls: the same replay, compiled from copies of the sources with a wrong frame schedule, a wrong
   context-ring update and the wrong PCM window for the life layer, must fail and name the mismatch.
3. The face drawing's lip geometry and head pose (`FaceGeometry.swift` in the engine package, which the app's
   `FaceView` calls): `swift test` proves lips sealed when mouthClose = jawOpen, open without mouthClose, the preview
   video's `lip_opening` answers on every case Python writes (A2BS_FACE_CASES) and the head shifted as the preview's
   `_turned`; its constants (the preview's, HEAD_RADIUS and NECK included) are read as text too.
4. What the compiler cannot type-check here (the app target needs SwiftUI/Core ML/AVFoundation, Apple-only): those
   files at least parse (`swiftc -parse`); the blendshapes the face drawing reads exist, a2bs-sample.json points
   inside the app's declared resources, and no model size is a literal in any Swift file (read as text).

Without a Swift toolchain the Swift tests are skipped with one line, except in CI (environment variable CI set),
where they fail: CI must prove the Swift engine. The toolchain is `A2BS_SWIFT` (the Makefile sets it), else `swift`
on PATH, else /opt/swift/usr/bin/swift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech
from test_android_sample import (
    CONTROL_CASES,
    FACE_CONSTANTS,
    LIFE_SEEDS,
    life_cases,
    record_trace,
    write_controls_cases,
    write_face_cases,
)

from a2bs.core.audio import frame_centers, gather_windows
from a2bs.core.blendshapes import LOWER_FACE, STYLE_SHAPES
from a2bs.core.constants import N_FFT, SEAL_GAP
from a2bs.core.controls import CONTROLS_VERSION, ControlsFilter
from a2bs.core.controls import LIMITS as CONTROLS_LIMITS
from a2bs.core.controls import manifest_section as controls_section
from a2bs.core.life import LIMITS as LIFE_LIMITS
from a2bs.core.life import PRESETS, LifeLayer, manifest_section
from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
from a2bs.runtime.manifest import bundle_file, life_params, load_manifest, shipped_bundle
from a2bs.viz import preview

SAMPLE = Path(__file__).resolve().parents[2] / "ios_sample"
ENGINE = SAMPLE / "A2BSEngine"
ENGINE_SOURCES = ENGINE / "Sources" / "A2BSEngine"
APP = SAMPLE / "A2BSSample.swiftpm"
SWIFT_FALLBACK = Path("/opt/swift/usr/bin/swift")
REPLAY_SECONDS = 3.0
REPLAY_SPECS = ("1", "160", "1024", "irregular", "all")  # ReplayTests.swift's replaySpecs
FACE_TESTS = (
    "testLipsAreSealedWhenMouthCloseEqualsJawOpen",
    "testLipsAreOpenWithoutMouthClose",
    "testHeadPoseMovesTheFaceAsThePreview",
    "testMatchesThePythonPreview",
)  # FaceGeometryTests.swift
SWIFT_TIMEOUT_S = 1800
LIFE_TESTS = (
    "testSplitMix64MatchesTheReferenceValues",
    "testReplaysThePythonLifeLayer",
    "testReadsTheLifeSectionOfTheManifest",
)  # LifeReplayTests.swift
CONTROLS_TESTS = (
    "testReplaysThePythonControls",
    "testChangingTheControlsKeepsTheSmoothingState",
    "testReadsTheControlsSectionOfTheManifest",
)  # ControlsReplayTests.swift
ENGINE_CONTROLS = "lively"  # the CONTROL_CASES case the engine replay sets at run time (model -> controls -> life)


# --- Reading Swift source as text ----------------------------------------------------------------------------


def swift_code(source: str, keep_strings: bool = True) -> str:
    """`source` without // and /* */ comments (and, unless keep_strings, with string literal contents blanked)."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        if source.startswith("//", i):
            newline = source.find("\n", i)
            i = n if newline < 0 else newline
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif source.startswith('"""', i):
            end = source.index('"""', i + 3) + 3
            out.append(source[i:end] if keep_strings else '""""""')
            i = end
        elif source[i] == '"':
            j = i + 1
            while source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append(source[i : j + 1] if keep_strings else '""')
            i = j + 1
        else:
            out.append(source[i])
            i += 1
    return "".join(out)


def block_after(code: str, header: str) -> str:
    """The brace-delimited body following the first match of the regex `header`."""
    match = re.search(header, code)
    assert match, f"no {header!r} in the Swift source"
    start = code.index("{", match.end() - 1)
    depth = 0
    for i in range(start, len(code)):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            return code[start + 1 : i]
    raise AssertionError(f"unbalanced braces after {header!r}")


def top_level(body: str) -> str:
    """`body` with every nested {...} block removed (fields and cases of this type only)."""
    out, depth = [], 0
    for ch in body:
        depth += ch == "{"
        if depth == 0:
            out.append(ch)
        depth -= ch == "}"
    return "".join(out)


def swift_constants(path: Path) -> dict[str, Any]:
    """`static let name = <string | int | [strings]>` declarations of a Swift file."""
    code = swift_code(path.read_text())
    out: dict[str, Any] = {}
    for name, value in re.findall(r"static\s+let\s+(\w+)\s*=\s*(\"[^\"]*\"|\d+|\[[^\]]*\])", code):
        out[name] = json.loads(value)
    return out


def swift_files() -> list[Path]:
    files = sorted(SAMPLE.rglob("*.swift"))
    assert files, f"no Swift source under {SAMPLE}"
    return [f for f in files if ".build" not in f.parts]


@pytest.fixture(scope="module")
def manifest(ios_bundle: Path) -> dict[str, Any]:
    return load_manifest(ios_bundle)


# --- Contract: Swift source vs a freshly built bundle ---------------------------------------------------------


def test_face_reads_existing_blendshapes(manifest: dict[str, Any]) -> None:
    code = swift_code((APP / "App" / "FaceView.swift").read_text())
    cases = re.findall(r"\bcase\s+(\w+)", top_level(block_after(code, r"enum\s+FaceBlendshape\b[^{]*\{")))
    assert len(cases) >= 20
    assert set(cases) <= set(manifest["blendshapes"]), sorted(set(cases) - set(manifest["blendshapes"]))
    for needed in ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "browInnerUp", "eyeBlinkLeft"):
        assert needed in cases


def test_sample_json_points_into_the_app_resources() -> None:
    config = json.loads((SAMPLE / "a2bs-sample.json").read_text())
    assert set(config) == {"platform", "bundle_dir", "clip"}
    assert config["platform"] == "ios"
    package = swift_code((APP / "Package.swift").read_text())
    assert re.search(r"import\s+AppleProductTypes", package) and ".iOSApplication(" in package
    assert re.search(r"\.microphone\(purposeString:\s*\"[^\"]{10,}\"", package), "microphone purpose string"
    target_path = re.search(r"path:\s*\"([^\"]+)\"", package[package.index(".executableTarget(") :])
    copies = re.findall(r"\.copy\(\"([^\"]+)\"\)", package)
    assert target_path and copies, "Package.swift must declare the app target's path and a .copy resource"
    resources = swift_constants(APP / "App" / "SampleResources.swift")
    assert resources["resourcesFolder"] in copies
    declared = Path(APP.name) / target_path.group(1) / resources["resourcesFolder"]
    bundle_dir = Path(config["bundle_dir"])
    assert not bundle_dir.is_absolute() and ".." not in bundle_dir.parts
    assert bundle_dir == declared / resources["bundleFolder"], (bundle_dir, declared)
    assert config["clip"] == resources["clipFile"]
    # The resource folder exists in git (the app builds before a bundle is installed); the bundle is ignored.
    assert any(p.is_file() for p in (SAMPLE / declared).iterdir())
    ignored = (SAMPLE / ".gitignore").read_text().splitlines()
    assert f"/{config['bundle_dir']}/" in ignored
    for pattern in (".build/", "xcuserdata/", "DerivedData/"):
        assert pattern in ignored
    # The app depends on the engine package next to it.
    dependency = re.search(r"\.package\(path:\s*\"([^\"]+)\"\)", package)
    assert dependency and ((APP / dependency.group(1)).resolve() / "Package.swift").is_file()
    assert (APP / dependency.group(1)).resolve() == ENGINE.resolve()


# The oldest Xcode that reads each swift-tools-version (Xcode release notes); add a row when a package moves.
XCODE_FOR_TOOLS = {(5, 9): (15, 0), (5, 10): (15, 3), (6, 0): (16, 0), (6, 1): (16, 3), (6, 2): (26, 0)}


def _tools_version(package: Path) -> tuple[int, int]:
    found = re.match(r"// swift-tools-version:\s*(\d+)\.(\d+)", package.read_text())
    assert found, f"{package}: no swift-tools-version line"
    return int(found.group(1)), int(found.group(2))


def test_xcode_versions_named_can_open_the_app() -> None:
    """Was: the app's Package.swift said Xcode 15 / 16, but its engine dependency is swift-tools-version 6.0,
    which Xcode 15 cannot read. Every "Xcode N" the docs name for opening or building must be new enough for
    the app and its local dependency (a phrase saying what an older Xcode cannot do is fine)."""
    packages = [APP / "Package.swift", ENGINE / "Package.swift"]
    needed = max(XCODE_FOR_TOOLS[_tools_version(p)] for p in packages)
    for doc in [SAMPLE / "README.md", *packages]:
        text = " ".join(doc.read_text().split())
        for claim in re.finditer(r"Xcode (\d+)(?:\.(\d+))?\b(?!\s*cannot)", text):
            named = (int(claim.group(1)), int(claim.group(2) or 0))
            assert named >= needed, f"{doc.name}: '{claim.group(0)}', but the packages need Xcode {needed}"


def test_compute_units_default_is_the_documented_one() -> None:
    """Was: `A2BSEngine.load` defaulted to `.all` while the README calls `cpuOnly` the safe default (and the app
    and the README's snippet use it)."""
    runner = swift_code((ENGINE_SOURCES / "CoreMLRunner.swift").read_text())
    load_default = re.search(r"static func load\(bundleDirectory:[^)]*computeUnits: MLComputeUnits = \.(\w+)\)", runner)
    readme = (SAMPLE / "README.md").read_text()
    safe = re.search(r"\*\*`(\w+)`\*\* is the safe default", readme)
    snippet = re.search(r"computeUnits: \.(\w+)\)", readme)
    app = re.search(r"var computeUnits = A2BSComputeUnits\.(\w+)", (APP / "App" / "EngineController.swift").read_text())
    assert load_default and safe and snippet and app
    assert load_default.group(1) == safe.group(1) == snippet.group(1) == app.group(1) == "cpuOnly"


def test_no_model_numbers_in_swift(manifest: dict[str, Any]) -> None:
    sizes = {
        manifest["context_frames"],
        manifest["context_frames"] - 1,
        manifest["timeline"]["window"],
        manifest["timeline"]["window"] // 2,
        manifest["sample_rate"],
        len(manifest["blendshapes"]),
        len(manifest["emotion"]["neutral"]),
        len(manifest["initial_state"]["context_frame"]),
        len(manifest["initial_state"]["mel_frames"][0]),
        256,
        255,
        512,
        1024,
        80,
        52,
        264,
        16000,
    }
    pattern = re.compile(r"(?<![\w.])(" + "|".join(str(s) for s in sorted(sizes, reverse=True)) + r")(?![\w.])")
    offenders = []
    for path in swift_files():
        code = swift_code(path.read_text(), keep_strings=False).replace("_", "")
        for lineno, line in enumerate(code.splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SAMPLE)}:{lineno}: {line.strip()}")
    assert not offenders, "model sizes must come from the manifest:\n" + "\n".join(offenders)
    # Nor file names: the engine takes them from the manifest's `files`.
    for path in swift_files():
        assert '.mlpackage"' not in path.read_text() or "Tests" in path.parts, path


# --- The Swift engine: build, unit tests, replay against the real Core ML models -------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")  # session: checked before the session-scoped bundles are built
def swift() -> str:
    """The Swift toolchain's `swift`; a missing one skips (one line) outside CI and fails in CI."""
    found = os.environ.get("A2BS_SWIFT") or shutil.which("swift")
    if not found and os.access(SWIFT_FALLBACK, os.X_OK):
        found = str(SWIFT_FALLBACK)
    if not found:
        why = f"no Swift toolchain (`swift` not on PATH nor at {SWIFT_FALLBACK}): Swift engine not built or tested"
        if _in_ci():
            pytest.fail(f"{why}; CI requires it (install Swift 6, or set A2BS_SWIFT)")
        pytest.skip(why)
    return found


def _run_swift(swift: str, package: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [swift, *args, "--package-path", str(package)],
        capture_output=True,
        text=True,
        timeout=SWIFT_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def _build_engine(swift: str) -> None:
    """swift build of the engine and its tests, warnings as errors (Swift 6 strict concurrency)."""
    build = _run_swift(swift, ENGINE, "build", "--build-tests", "-Xswiftc", "-warnings-as-errors")
    assert build.returncode == 0, f"swift build failed:\n{build.stdout[-6000:]}\n{build.stderr[-3000:]}"


def clip_windows(audio: np.ndarray, n_frames: int, fps: int) -> np.ndarray:
    """The PCM window (N_FFT samples, zeros outside the clip) centred on each output frame: the life layer's input."""
    return gather_windows(audio, 0, frame_centers(0, n_frames, fps))


def _life_traces(ios_bundle: Path, out: Path) -> None:
    """The life layer's replay traces (LifeReplayTests.swift): the bundle's model frames over the whole bundled clip
    (a few hundred frames of real speech) and their PCM windows as input, and per (preset, seed) the manifest-style
    `life` section and Python's curves (float32) and rotations (float64) as expected. Every kind of event occurs in
    each case, so the replay exercises every branch of the layer."""
    speech, sr = sf.read(bundled_speech(), dtype="float32")
    sf.write(out / "life_clip.wav", speech, sr, subtype="PCM_16")
    audio, _ = sf.read(out / "life_clip.wav", dtype="float32")
    manifest = load_manifest(ios_bundle)
    fps, n_frames, chunks = iter_bundle_blendshapes(out / "life_clip.wav", ios_bundle, "coreml", neutral_emotion=True)
    curves = np.concatenate(list(chunks)).astype(np.float32)
    windows = clip_windows(audio, n_frames, fps)
    assert curves.shape == (n_frames, 52) and n_frames >= 300, curves.shape
    curves.astype("<f4").tofile(out / "life_curves.f32")
    windows.astype("<f4").tofile(out / "life_windows.f32")
    cases = []
    for preset, seed, shapes, rotations in life_cases(curves, windows, fps):
        name = f"{preset}_{seed}"
        shapes.astype("<f4").tofile(out / f"life_{name}_curves.f32")
        rotations.astype("<f8").tofile(out / f"life_{name}_rotations.f64")
        cases.append({"name": name, "seed": seed, "life": manifest_section(PRESETS[preset])})
    index = {
        "fps": fps,
        "sample_rate": manifest["sample_rate"],
        "window": N_FFT,
        "frames": n_frames,
        "blendshapes": manifest["blendshapes"],
        "tolerance": 1e-6,
        "cases": cases,
    }
    (out / "life_cases.json").write_text(json.dumps(index))
    write_controls_cases(_controls_curves(out / "life_clip.wav", fps), out)  # ControlsReplayTests.swift


def _controls_curves(clip: Path, fps: int) -> np.ndarray:
    """The frames the face controls replay runs on: the shipped (trained) model's over the same clip. The fixture
    bundles' untrained models never part the lips (jawOpen - mouthClose <= 0 on every frame), so over their frames no
    case would move the lip offset; the controls are arithmetic on the curves, whichever model made them."""
    _, _, chunks = iter_bundle_blendshapes(clip, shipped_bundle(fps), "tflite", neutral_emotion=True)
    return np.concatenate(list(chunks)).astype(np.float32)


def _replay_dir(ios_bundle: Path, android_bundle: Path, out: Path) -> Path:
    """The folder ReplayTests.swift reads (A2BS_REPLAY_DIR): the bundle's manifest, a 16-bit clip, the trace of the
    bundle's Core ML models over it, the reference frames and an Android manifest the engine must refuse."""
    shutil.copy(ios_bundle / "manifest.json", out / "manifest.json")
    shutil.copy(android_bundle / "manifest.json", out / "android_manifest.json")
    speech, sr = sf.read(bundled_speech(), dtype="float32", frames=int(REPLAY_SECONDS * 16000) + 123)
    sf.write(out / "clip.wav", speech, sr, subtype="PCM_16")  # what install-into ships: 16 kHz mono PCM16
    traced = record_trace(ios_bundle, out / "clip.wav", out, "coreml")
    _, n_frames, chunks = iter_bundle_blendshapes(out / "clip.wav", ios_bundle, "coreml", neutral_emotion=True)
    reference = np.concatenate(list(chunks))
    assert reference.shape == (n_frames, 52) == traced.shape
    np.testing.assert_allclose(traced, reference, rtol=0, atol=1e-6, err_msg="trace loop != iter_bundle_blendshapes")
    assert np.ptp(reference, axis=0).max() > 0, "reference frames do not move: a useless replay"
    reference.astype("<f4").tofile(out / "reference.f32")
    # What the engine emits: the manifest's life layer (seed 0) over those frames, each with its PCM window.
    manifest = load_manifest(ios_bundle)
    params = life_params(manifest)
    assert params is not None, "the bundle has no life section"
    audio, _ = sf.read(out / "clip.wav", dtype="float32")
    windows = clip_windows(audio, n_frames, manifest["fps"])
    shapes, rotations = LifeLayer(params, manifest["fps"], 0).process(reference, windows)
    assert np.abs(shapes - reference).max() > 0.01 and np.abs(rotations).max() > 0, "the life layer did nothing"
    shapes.astype("<f4").tofile(out / "reference_life.f32")
    rotations.astype("<f8").tofile(out / "reference_rotations.f64")
    # With face controls set at run time: Python's controls over the model's frames, then the same life layer.
    controls = CONTROL_CASES[ENGINE_CONTROLS][0]
    controlled = ControlsFilter(controls, manifest["fps"]).process(reference)
    shapes, rotations = LifeLayer(params, manifest["fps"], 0).process(controlled, windows)
    swapped, _ = LifeLayer(params, manifest["fps"], 0).process(reference, windows)
    swapped = ControlsFilter(controls, manifest["fps"]).process(swapped)
    assert np.abs(swapped - shapes).max() > 1e-3, "life then controls gives the same frames: the order is not tested"
    (out / "reference_controls.json").write_text(json.dumps(controls_section(controls)))
    shapes.astype("<f4").tofile(out / "reference_controls_life.f32")
    rotations.astype("<f8").tofile(out / "reference_controls_rotations.f64")
    return out


@pytest.fixture(scope="module")
def replay_dir(ios_bundle: Path, android_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = _replay_dir(ios_bundle, android_bundle, tmp_path_factory.mktemp("ios_replay"))
    _life_traces(ios_bundle, out)
    return out


def _replayed_frames(replay_dir: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference frames (life layer on), after checking every chunking spec's Swift frames against them, and
    the life layer at amount 0 against the model's frames; the Swift summary."""
    model = np.fromfile(replay_dir / "reference.f32", dtype="<f4").reshape(-1, 52)
    reference = np.fromfile(replay_dir / "reference_life.f32", dtype="<f4").reshape(-1, 52)
    summary = json.loads((replay_dir / "swift_summary.json").read_text())
    assert summary["specs"] == {spec: {"frames": len(reference)} for spec in REPLAY_SPECS}
    for spec in REPLAY_SPECS:
        frames = np.fromfile(replay_dir / f"out_{spec}.f32", dtype="<f4").reshape(-1, 52)
        np.testing.assert_allclose(frames, reference, rtol=0, atol=1e-6, err_msg=f"Swift frames, chunks of {spec}")
    assert summary["life_off"] == {"frames": len(model)}
    off = np.fromfile(replay_dir / "out_off.f32", dtype="<f4").reshape(-1, 52)
    np.testing.assert_allclose(off, model, rtol=0, atol=1e-6, err_msg="Swift frames, life amount 0")
    assert summary["controls"] == {"frames": len(model)}
    controlled = np.fromfile(replay_dir / "out_controls.f32", dtype="<f4").reshape(-1, 52)
    want = np.fromfile(replay_dir / "reference_controls_life.f32", dtype="<f4").reshape(-1, 52)
    np.testing.assert_allclose(controlled, want, rtol=0, atol=1e-6, err_msg="Swift frames with face controls")
    return reference, summary


def test_swift_engine_builds_and_passes_its_tests(swift: str, replay_dir: Path) -> None:
    """swift build (warnings are errors: Swift 6 strict concurrency) + swift test with the Core ML trace."""
    _build_engine(swift)
    write_face_cases(replay_dir / "face_cases.json")
    env = {"A2BS_REPLAY_DIR": str(replay_dir), "A2BS_FACE_CASES": str(replay_dir / "face_cases.json"), "CI": "1"}
    run = _run_swift(swift, ENGINE, "test", "--skip-build", env=env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"swift test failed:\n{output[-8000:]}"
    for test in (
        "ReplayTests.testReplaysTheRecordedCoreMLTrace",
        "ReplayTests.testRefusesAnAndroidManifest",
        "ManifestTests.testRefusesOtherBundlesUpFront",
        "BackgroundEngineTests.testFramesArriveOnTheMainActorInOrder",
        *(f"FaceGeometryTests.{name}" for name in FACE_TESTS),
        *(f"LifeReplayTests.{name}" for name in LIFE_TESTS),
        *(f"ControlsReplayTests.{name}" for name in CONTROLS_TESTS),
    ):
        assert f"Test Case '{test}' passed" in output, f"{test} did not run and pass:\n{output[-4000:]}"
    assert "skipped" not in output.lower(), output[-4000:]

    manifest = load_manifest(replay_dir)
    _, summary = _replayed_frames(replay_dir)
    # What the engine decoded: the untrained flag the app shows, the groups in display order, the files it loads.
    assert summary["trained"] == manifest["checkpoint"]["trained"]
    group_order = swift_constants(ENGINE_SOURCES / "Contract.swift")["groupOrder"]
    assert summary["groups"] == [g for g in group_order if g in manifest["blendshape_groups"]]
    assert summary["fps"] == manifest["fps"]
    assert summary["front_end"] == bundle_file(manifest, "front_end", None)["path"]
    assert summary["variants"] == [bundle_file(manifest, "step", v)["path"] for v in manifest["variants"]]
    # The life layer: every (preset, seed) case replayed to 1e-6, and its negative controls far off.
    life = json.loads((replay_dir / "life_summary.json").read_text())
    assert sorted(life) == sorted(f"{preset}_{seed}" for preset in ("natural", "subtle") for seed in LIFE_SEEDS)
    for case in life.values():
        assert max(case["curves"], case["rotations"]) <= 1e-6, life
        assert min(case["other_seed"], case["perturbed"]) > 1e-4, life
    # The face controls: every case replayed to 1e-6, whole and chunked, and each (but the defaults) moved the face.
    controls = json.loads((replay_dir / "controls_summary.json").read_text())
    assert sorted(controls) == sorted(CONTROL_CASES), controls
    for name, case in controls.items():
        assert max(case["whole"], case["chunks"]) <= 1e-6, controls
        assert case["moved"] == 0.0 if name == "defaults" else case["moved"] > 0.01, controls


def test_swift_engine_replays_a_60fps_trace(
    swift: str, ios_bundle60: Path, android_bundle60: Path, tmp_path: Path
) -> None:
    """At 60 fps the step reads a 5-frame mel history (detail tokens j, j-2, j-4): the engine sizes its mel
    ring from the manifest and feeds the same inputs, call by call, as the Python trace."""
    replay_dir = _replay_dir(ios_bundle60, android_bundle60, tmp_path)
    assert len(load_manifest(replay_dir)["initial_state"]["mel_frames"]) == 5
    run = _run_swift(
        swift,
        ENGINE,
        "test",
        "--filter",
        "ReplayTests.testReplaysTheRecordedCoreMLTrace",
        env={"A2BS_REPLAY_DIR": str(replay_dir), "CI": "1"},
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"swift test failed:\n{output[-8000:]}"
    assert "Test Case 'ReplayTests.testReplaysTheRecordedCoreMLTrace' passed" in output, output[-4000:]
    _, summary = _replayed_frames(replay_dir)
    assert summary["fps"] == 60


def test_apple_only_swift_parses(swift: str, tmp_path: Path) -> None:
    """The Swift that no compiler here type-checks (the app, and the engine's Core ML / AVFoundation files, whose
    `#if canImport` blocks are inactive on Linux) at least parses in the Swift 6 language mode."""
    swiftc = Path(swift).with_name("swiftc")
    apple_only = [
        *(APP / "App").glob("*.swift"),
        APP / "Package.swift",
        ENGINE_SOURCES / "CoreMLRunner.swift",
        ENGINE_SOURCES / "AudioConverter.swift",
    ]
    broken = tmp_path / "Broken.swift"
    broken.write_text("#if canImport(CoreML)\nfunc load( {\n#endif\n")  # negative control: inactive but broken
    for path in [*apple_only, broken]:
        run = subprocess.run([str(swiftc), "-parse", "-swift-version", "6", str(path)], capture_output=True, text=True)
        if path == broken:
            assert run.returncode != 0, "swiftc -parse accepted a syntax error in an inactive #if block"
        else:
            assert run.returncode == 0, f"{path.relative_to(SAMPLE)} does not parse:\n{run.stderr[-3000:]}"


# Deliberate bugs the replay must catch: (file, correct code, wrong code, what the failure must name).
MUTATIONS = {
    "schedule": (
        "FrameSchedule.swift",
        "(2 * j * sampleRate + fps) / (2 * fps)",
        "(j * sampleRate) / fps",
        "front end call",
    ),  # centres rounded down instead of half up: the wrong PCM window
    "ring": (
        "ContextRing.swift",  # the mirrored copy of each new row is zeros: a wrong context from the 2nd call
        "(slot + rows) * width).update(from: row.baseAddress!, count: width)",
        "(slot + rows) * width).update(repeating: 0, count: width)",
        " context: value",
    ),
    "life window": (
        "A2BSEngine.swift",  # output frame k analysed with the newest PCM window (mel frame k + lookahead), not its own
        "pendingProsody.removeFirst()",
        "pendingProsody.removeLast()",
        "life layer",
    ),
}


def test_swift_replay_catches_a_wrong_schedule_and_ring(swift: str, replay_dir: Path, tmp_path: Path) -> None:
    """Negative controls: the replay, compiled from copies of the engine with one bug each, fails naming it."""
    package = tmp_path / "A2BSEngine"
    shutil.copytree(ENGINE, package, ignore=shutil.ignore_patterns(".build", ".swiftpm"))
    for name, (file, right, wrong, named) in MUTATIONS.items():
        source = package / "Sources" / "A2BSEngine" / file
        original = source.read_text()
        assert original.count(right) == 1, f"{file} no longer contains {right!r}: update MUTATIONS"
        source.write_text(original.replace(right, wrong))
        run = _run_swift(
            swift,
            package,
            "test",
            "--filter",
            "ReplayTests.testReplaysTheRecordedCoreMLTrace",
            env={"A2BS_REPLAY_DIR": str(replay_dir), "CI": "1"},
        )
        source.write_text(original)
        output = run.stdout + run.stderr
        assert run.returncode != 0, f"the replay passed with a wrong {name}"
        assert "replay with chunks of" in output and named in output, f"wrong {name}:\n{output[-4000:]}"


def _life_limits(source: str) -> dict[str, tuple[float, float]]:
    """{key: (lo, hi)} of the `"key": lo...hi` entries of Swift source (A2BSLifeParams.limits)."""
    pairs = re.findall(r'"(\w+)":\s*(-?[\d.]+)\.\.\.(-?[\d.]+)', swift_code(source))
    return {key: (float(lo), float(hi)) for key, lo, hi in pairs}


def test_swift_life_limits_are_the_python_ones() -> None:
    """The limits the Swift engine checks a manifest's life parameters against are core/life.py's, key for key (read
    as text); negative control: a changed limit is seen."""
    source = (ENGINE_SOURCES / "LifeLayer.swift").read_text()
    want = {key: (float(lo), float(hi)) for key, (lo, hi) in LIFE_LIMITS.items()}
    assert _life_limits(source) == want
    assert '"nod_deg": 0.0...15.0' in source
    assert _life_limits(source.replace('"nod_deg": 0.0...15.0', '"nod_deg": 0.0...16.0')) != want


def _controls_constants(source: str) -> dict[str, Any]:
    """What FaceControls.swift must share with core/controls.py, read as text: the limits, the lower-face and style
    shape lists, the seal threshold and the algorithm version."""
    code = swift_code(source)
    arrays = re.findall(r"static\s+let\s+(\w+)\s*=\s*\[([^\]]*)\]", code)
    lists = {name: re.findall(r'"(\w+)"', body) for name, body in arrays}
    numbers = dict(re.findall(r"static\s+let\s+(sealGap|supportedVersion)\s*=\s*([\d.]+)\b", code))
    return {
        "limits": _life_limits(source),
        "keys": lists.get("keys"),
        "lower": lists.get("lowerFace"),
        "style": lists.get("styleShapes"),
        "seal_gap": float(numbers.get("sealGap", "nan")),
        "version": int(numbers.get("supportedVersion", "-1")),
    }


def test_swift_controls_constants_are_the_python_ones() -> None:
    """The limits the Swift engine checks a manifest's face controls against, its lower-face and style shapes, seal
    threshold and algorithm version are core/controls.py's (read as text); negative controls: a changed limit, a shape
    missing from a list and a changed threshold are seen."""
    source = (ENGINE_SOURCES / "FaceControls.swift").read_text()
    want = {
        "limits": {key: (float(lo), float(hi)) for key, (lo, hi) in CONTROLS_LIMITS.items()},
        "keys": list(CONTROLS_LIMITS),
        "lower": list(LOWER_FACE),
        "style": list(STYLE_SHAPES),
        "seal_gap": SEAL_GAP,
        "version": CONTROLS_VERSION,
    }
    assert _controls_constants(source) == want
    for right, wrong in (
        ('"lip_offset": -0.3...0.3', '"lip_offset": -0.3...0.4'),
        ('"tongueOut", ', ""),
        ('"noseSneerLeft", ', ""),
        ("sealGap = 0.03", "sealGap = 0.02"),
    ):
        assert source.count(right) == 1, right
        assert _controls_constants(source.replace(right, wrong)) != want, wrong


def test_swift_controls_replay_names_a_wrong_case(swift: str, replay_dir: Path, tmp_path: Path) -> None:
    """Negative controls of ControlsReplayTests: Python's expected frames with one control changed in the case
    (lip_offset 0.06 -> 0.07), or the case's fps changed (30 -> 60: another smoothing), must fail the Swift replay,
    naming the case."""
    _build_engine(swift)
    cases = json.loads((replay_dir / "controls_cases.json").read_text())
    lively = next(case for case in cases if case["name"] == "lively")
    assert lively["controls"]["params"]["lip_offset"] == 0.06 and lively["fps"] == 30
    for file in ["manifest.json", lively["curves"], lively["expected"]]:
        shutil.copy(replay_dir / file, tmp_path / file)
    for what, edit in (("lip_offset 0.07", {"lip_offset": 0.07}), ("fps 60", {})):
        case = json.loads(json.dumps(lively))
        case["controls"]["params"].update(edit)
        case["fps"] = 60 if what == "fps 60" else case["fps"]
        (tmp_path / "controls_cases.json").write_text(json.dumps([case]))
        done = _run_swift(
            swift,
            ENGINE,
            "test",
            "--skip-build",
            "--filter",
            "ControlsReplayTests.testReplaysThePythonControls",
            env={"A2BS_REPLAY_DIR": str(tmp_path), "CI": "1"},
        )
        output = done.stdout + done.stderr
        assert done.returncode != 0, f"the Swift controls replay passed a case with {what}"
        assert "controls case lively (whole clip)" in output, f"{what}:\n{output[-4000:]}"


# --- The face drawing's lip geometry ----------------------------------------------------------------------------


def _camel(snake: str) -> str:
    first, *rest = snake.lower().split("_")
    return first + "".join(word.title() for word in rest)


def _face_constants(source: str) -> dict[str, float]:
    """{name: value} of every numeric `static let name = <number>` in Swift source."""
    code = swift_code(source)
    return {name: float(value) for name, value in re.findall(r"static\s+let\s+(\w+)\s*=\s*([\d.]+)\b", code)}


def test_face_geometry_constants_match_the_preview() -> None:
    """Read as text: each constant of FaceGeometry.swift has the preview's value, the lip geometry's and the head
    pose's (HEAD_RADIUS, and NECK as neckX, neckY); the formulas are compared by running them (FaceGeometryTests).
    Negative controls: a changed lip constant, head radius or neck pivot is seen."""
    source = (ENGINE_SOURCES / "FaceGeometry.swift").read_text()
    want = {_camel(name): getattr(preview, name) for name in FACE_CONSTANTS}
    want |= {"headRadius": preview.HEAD_RADIUS, "neckX": preview.NECK[0], "neckY": preview.NECK[1]}
    assert _face_constants(source) == want
    for right, wrong in (
        ("lipOpeningPerJaw = 0.17", "lipOpeningPerJaw = 0.16"),
        ("headRadius = 0.37", "headRadius = 0.35"),
        ("neckY = 0.92", "neckY = 0.9"),
    ):
        assert source.count(right) == 1, right
        assert _face_constants(source.replace(right, wrong)) != want, wrong


def test_swift_face_geometry_seals_the_lips_like_the_preview(swift: str, tmp_path: Path) -> None:
    """`swift test` of FaceGeometryTests: lips sealed at mouthClose = jawOpen = 0.3, open at mouthClose = 0, and the
    preview's answer on every case; negative control: one Python answer changed to the old mapping's (the jaw scaled
    by mouthClose) fails the run, naming the case."""
    _build_engine(swift)
    cases = write_face_cases(tmp_path / "face_cases.json")

    def run() -> str:
        done = _run_swift(
            swift,
            ENGINE,
            "test",
            "--skip-build",
            "--filter",
            "FaceGeometryTests",
            env={"A2BS_FACE_CASES": str(tmp_path / "face_cases.json"), "CI": "1"},
        )
        return f"rc={done.returncode}\n{done.stdout}{done.stderr}"

    output = run()
    assert output.startswith("rc=0\n"), f"swift test failed:\n{output[-8000:]}"
    for name in FACE_TESTS:
        assert f"Test Case 'FaceGeometryTests.{name}' passed" in output, (
            f"{name} did not run and pass:\n{output[-4000:]}"
        )
    assert "skipped" not in output.lower(), output[-4000:]
    cases[0]["opening"] = 0.17 * 0.3 * (1 - 0.85 * 0.3)
    (tmp_path / "face_cases.json").write_text(json.dumps(cases))
    output = run()
    assert not output.startswith("rc=0\n") and "lip opening of [0.3, 0.3, 0.0, 0.0, 0.0]" in output, output[-4000:]
