"""Android sample app (android_sample/): its JVM engine follows the bundle contract, proven on Linux CI.

The Android app module itself cannot be built here (no Android SDK). What is checked:

* contract: every manifest key the Kotlin code reads (one place: ``ManifestKeys.kt``), the tensor names
  and the model files it picks exist in a freshly built bundle; ``a2bs-sample.json`` matches the app;
* the pure-JVM ``engine`` module, compiled with the Debian ``kotlinc`` (1.3) once per session, passes its
  unit tests (JSON reader, ring buffer, sample buffer, scheduler == ``frame_centers``, WAV reader, engine
  chunking/flush/reset with fake models) and parses the manifest to the same numbers and names as Python;
* replay: the bundle's real TFLite models run in Python over 3 s of real speech, recording every model
  call; the Kotlin engine, fed the same 16-bit WAV in several chunkings, calls replay models that check
  each input it builds against the recording and return the recorded outputs; the frames it publishes
  must equal the Python reference (``iter_bundle_blendshapes`` with neutral emotion, as on the phone);
* the life layer (``LifeLayer.kt``, docs/LIFE.md): Python's ``LifeLayer`` writes traces over the bundled clip
  (the model's curves and the PCM window of every frame in, its curves and 9 rotations out; natural and subtle,
  two seeds, each with blinks, saccades, looks away, accents, nods, brow raises and phrase ends); the Kotlin
  layer must give the same values to 1e-6, and the engine's frame loop with the manifest's layer the same
  frames as Python's layer over the reference; negative controls: another seed, a changed parameter;
* the face controls (``FaceControls.kt``, docs/CONTROLS.md): Python's ``ControlsFilter`` writes the replay cases
  (``controls_cases``); the Kotlin filter must give the same frames to 1e-6, whole and in irregular chunks, with
  Python's limits, seal gap and regions; the engine's frame loop with controls set at run time, then the life
  layer, the frames of Python's ``ControlsFilter`` then ``LifeLayer``; the manifest's ``controls`` section checked
  (a bad or unknown value names its key; none: the defaults); negative controls: a changed control, another fps;
* the face drawing's geometry (``FaceGeometry.kt`` in the engine module, which the app's Compose ``Face``
  calls): lips sealed when mouthClose = jawOpen, open without mouthClose, and the same formula and constants
  as the preview video's ``lip_opening``; the head pose (shift by the yaw and pitch, tilt about the neck) as the
  preview's ``_turned`` draws it (the Compose drawing itself needs Android Studio).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech, tone_signal

from a2bs.core.audio import frame_centers, gather_windows
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, LOWER_FACE, STYLE_SHAPES
from a2bs.core.constants import SEAL_GAP
from a2bs.core.controls import LIMITS as CONTROL_LIMITS
from a2bs.core.controls import ControlsFilter, FaceControls
from a2bs.core.controls import manifest_section as controls_section
from a2bs.core.deploy import FRONT_END_INPUTS, FRONT_END_OUTPUTS, STEP_INPUTS, STEP_OUTPUTS
from a2bs.core.life import LIMITS, PRESETS, RANGES, LifeLayer, manifest_section
from a2bs.runtime.bundle_inference import iter_bundle_blendshapes, open_runners
from a2bs.runtime.manifest import bundle_file, face_controls, life_params, load_manifest
from a2bs.viz import preview

SAMPLE = Path(__file__).resolve().parents[2] / "android_sample"
ENGINE_MAIN = SAMPLE / "engine/src/main/kotlin"
ENGINE_TEST = SAMPLE / "engine/src/test/kotlin"
MANIFEST_KEYS = ENGINE_MAIN / "com/a2bs/engine/ManifestKeys.kt"
APP_SOURCES = SAMPLE / "app/src/main/java"
REPLAY_SECONDS = 3.0
REPLAY_SPECS = ("160", "1024", "irregular", "all", "1")
TENSOR_ENTRY_KEYS = ("TENSOR_NAME", "TENSOR_SHAPE", "TENSOR_DTYPE")
FILE_ENTRY_KEYS = ("FILE_PATH", "FILE_ROLE", "FILE_VARIANT", "FILE_BYTES", "FILE_SHA256")
ROLE_KEYS = ("ROLE_FRONT_END", "ROLE_STEP")
FACE_GEOMETRY = ENGINE_MAIN / "com/a2bs/engine/FaceGeometry.kt"
FACE_CONSTANTS = (
    "LIP_OPENING_PER_JAW",
    "LIP_OPENING_PER_LOWER_DOWN",
    "LIP_OPENING_PER_FUNNEL",
    "LIP_OPENING_PRESS",
    "UPPER_LIP_SHARE",
    "CHIN_DROP_PER_JAW",
    "HEAD_RADIUS",
)
NECK_CONSTANTS = {"NECK_X": 0, "NECK_Y": 1}  # FaceGeometry.kt's names for preview.NECK's coordinates


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found: install Debian's kotlin + a JDK (`apt-get install kotlin` or `make setup`)")
    return path


def _kotlin_consts(path: Path) -> dict[str, str]:
    """{NAME: "value"} of every `const val NAME = "value"` in a Kotlin file."""
    return dict(re.findall(r'(?m)^\s*const val (\w+)\s*=\s*"([^"]*)"', path.read_text()))


def _dig(root: dict[str, Any], dotted: str) -> Any:
    cur: Any = root
    for part in dotted.split("."):
        assert isinstance(cur, dict) and part in cur, f"manifest has no '{dotted}' (missing '{part}')"
        cur = cur[part]
    return cur


@pytest.fixture(scope="session")
def engine_jar() -> Path:
    """The engine + its Kotlin test runner compiled with kotlinc, cached in the temp dir by source hash."""
    kotlinc = _tool("kotlinc")
    _tool("java")
    sources = sorted([*ENGINE_MAIN.rglob("*.kt"), *ENGINE_TEST.rglob("*.kt")])
    assert sources, f"no Kotlin sources under {ENGINE_MAIN}"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    jar = Path(tempfile.gettempdir()) / f"a2bs-android-engine-{digest}.jar"
    if not jar.is_file():
        partial = jar.with_suffix(f".{os.getpid()}.part.jar")
        proc = subprocess.run(
            [kotlinc, *map(str, sources), "-include-runtime", "-d", str(partial)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not partial.is_file():
            pytest.fail(f"kotlinc failed on the engine module:\n{proc.stdout}\n{proc.stderr}")
        partial.replace(jar)
    return jar


def _run_engine(jar: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        [_tool("java"), "-cp", str(jar), "com.a2bs.engine.EngineTestsKt", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"Kotlin engine tests failed ({' '.join(args[:1])}):\n{proc.stderr[-4000:]}"
    return [line for line in proc.stdout.splitlines() if line.startswith("{")]


# --- contract -------------------------------------------------------------------------------------------


def test_manifest_keys_exist_in_a_fresh_bundle(android_bundle: Path) -> None:
    manifest = load_manifest(android_bundle)
    keys = _kotlin_consts(MANIFEST_KEYS)
    assert len(keys) > 20, f"ManifestKeys.kt lists only {sorted(keys)}"
    tensors = [t for model in manifest["models"].values() for io in ("inputs", "outputs") for t in model[io]]
    for name in TENSOR_ENTRY_KEYS:
        assert all(keys[name] in t for t in tensors), f"a tensor entry lacks '{keys[name]}'"
    for name in FILE_ENTRY_KEYS:
        assert all(keys[name] in f for f in manifest["files"]), f"a files entry lacks '{keys[name]}'"
    assert {f["role"] for f in manifest["files"]} == {keys[n] for n in ROLE_KEYS}
    assert {t["dtype"] for t in tensors} == {keys["DTYPE_FLOAT32"]}
    entry_keys = {*TENSOR_ENTRY_KEYS, *FILE_ENTRY_KEYS, *ROLE_KEYS, "DTYPE_FLOAT32"}
    for name, dotted in keys.items():
        if name not in entry_keys:
            _dig(manifest, dotted)
    # The bundle kind the engine accepts (anything else is refused up front) is what the converter writes.
    manifest_kt = (ENGINE_MAIN / "com/a2bs/engine/Manifest.kt").read_text()
    accepted = _kotlin_consts(ENGINE_MAIN / "com/a2bs/engine/Manifest.kt")
    version = re.search(r"const val BUNDLE_FORMAT_VERSION\s*=\s*(\d+)", manifest_kt)
    assert version, "Manifest.kt must declare BUNDLE_FORMAT_VERSION"
    assert (accepted["BUNDLE_FORMAT"], int(version.group(1)), accepted["BUNDLE_PLATFORM"]) == (
        manifest["format"],
        manifest["format_version"],
        manifest["platform"],
    )
    # The engine reads tensor names by position; the positions must keep meaning what it assumes.
    models = manifest["models"]
    assert [t["name"] for t in models["front_end"]["inputs"]] == list(FRONT_END_INPUTS)
    assert [t["name"] for t in models["front_end"]["outputs"]] == list(FRONT_END_OUTPUTS)
    assert [t["name"] for t in models["step"]["inputs"]] == list(STEP_INPUTS)
    assert [t["name"] for t in models["step"]["outputs"]] == list(STEP_OUTPUTS)
    for entry in manifest["files"]:
        assert (android_bundle / entry["path"]).is_file(), entry
        assert entry["path"].endswith(".tflite"), "the app maps .tflite assets stored uncompressed"


def test_sample_json_matches_the_app() -> None:
    spec = json.loads((SAMPLE / "a2bs-sample.json").read_text())
    assert spec["platform"] == "android"
    assert spec["clip"] == "sample_clip.wav"
    bundle_dir = spec["bundle_dir"]
    assert not Path(bundle_dir).is_absolute() and ".." not in Path(bundle_dir).parts
    assert bundle_dir.startswith("app/src/main/assets/"), "the app loads the bundle from its assets"
    app_consts: dict[str, str] = {}
    for source in APP_SOURCES.rglob("*.kt"):
        app_consts.update(_kotlin_consts(source))
    assert app_consts.get("BUNDLE_ASSET_DIR") == bundle_dir.removeprefix("app/src/main/assets/")
    assert app_consts.get("CLIP_FILE") == spec["clip"]
    assert app_consts.get("MANIFEST_FILE") == "manifest.json"
    ignored = (SAMPLE / ".gitignore").read_text().splitlines()
    assert bundle_dir.rstrip("/") + "/" in ignored, "the installed bundle must be git-ignored"
    gradle = (SAMPLE / "app/build.gradle.kts").read_text()
    assert re.search(r'noCompress\s*\+=\s*(listOf\()?"tflite"', gradle), "tflite assets must stay uncompressed"


# The minimum Gradle of each Android Gradle Plugin minor version (developer.android.com, AGP release notes);
# every AGP 8.x needs Gradle 8.x (Gradle 9 does not run AGP 8). Add a row when the pinned AGP moves.
AGP_MIN_GRADLE = {(8, 7): (8, 9), (8, 8): (8, 10, 2), (8, 9): (8, 11, 1)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_gradle_wrapper_pins_a_gradle_the_agp_supports() -> None:
    catalog = tomllib.loads((SAMPLE / "gradle/libs.versions.toml").read_text())
    agp = _version(catalog["versions"]["agp"])
    properties = (SAMPLE / "gradle/wrapper/gradle-wrapper.properties").read_text()
    url = re.search(r"(?m)^distributionUrl=\S*/gradle-([\d.]+)-(bin|all)\.zip$", properties)
    assert url, "gradle-wrapper.properties must pin distributionUrl to a released Gradle"
    gradle = _version(url.group(1))
    # The wrapper verifies the download only when the checksum is given (a SHA-256: 64 hex digits).
    assert re.search(r"(?m)^distributionSha256Sum=[0-9a-f]{64}$", properties), "pin distributionSha256Sum"
    assert agp[:2] in AGP_MIN_GRADLE, f"AGP {agp}: add its minimum Gradle to AGP_MIN_GRADLE"
    assert gradle >= AGP_MIN_GRADLE[agp[:2]], f"Gradle {gradle} is older than AGP {agp} requires"
    assert gradle[0] == agp[0], f"AGP {agp[0]}.x needs Gradle {agp[0]}.x, the wrapper pins {url.group(1)}"
    readme = " ".join((SAMPLE / "README.md").read_text().split())
    assert f"gradle wrapper --gradle-version {url.group(1)}" in readme, "README: how to get the wrapper jar"
    assert "Gradle 9 does not run" in readme
    # was: the README said the committed file has no distributionSha256Sum (it has one)
    assert not re.search(r"\bno `distributionSha256Sum`", readme), "README: the checksum is pinned"


# Calls in the README's Kotlin that are not the sample's: language keywords and the reader's own objects.
README_KOTLIN_FOREIGN = {"val", "var", "for", "if", "while", "when", "avatar"}


def test_readme_kotlin_calls_only_what_the_sample_defines() -> None:
    """Was: the README's snippet mapped the model files with a `map(...)` helper that exists nowhere."""
    readme = (SAMPLE / "README.md").read_text()
    blocks = re.findall(r"```kotlin\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no Kotlin snippet"
    sources = "\n".join(p.read_text() for p in SAMPLE.rglob("*.kt"))
    defined = set(re.findall(r"\b(?:fun(?: <[^>]*>)?(?: \w+\.)?|class|object|interface) (\w+)", sources))
    for code in blocks:
        code = re.sub(r"//.*", "", code)
        for receiver, name in re.findall(r"(?:\b(\w+)\.)?\b(\w+)\s*\(", code):
            if receiver in README_KOTLIN_FOREIGN or name in README_KOTLIN_FOREIGN:
                continue
            assert name in defined, f"README calls {name}(...), which the sample does not define"


# --- Kotlin unit tests ----------------------------------------------------------------------------------


def _wav_with_extra_chunks(path: Path, pcm16: np.ndarray, sr: int) -> None:
    """A mono PCM16 WAV with an odd-sized LIST chunk (padded) between fmt and data."""
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    info = b"INFOISFT" + struct.pack("<I", 3) + b"a2b"  # odd payload: needs a pad byte
    data = pcm16.astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", len(info)) + info + b"\0"
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _write_refusals(manifest: dict[str, Any], ios_bundle: Path, out: Path) -> None:
    """refusals.json + the manifests the Kotlin engine must refuse up front, with what each message must say."""
    shutil.copy(ios_bundle / "manifest.json", out / "ios_manifest.json")  # a real iOS bundle's manifest
    cases = [{"file": "ios_manifest.json", "says": ["'ios'", "a2bs-convert android"]}]
    for name, change, says in (
        ("version2.json", {"format_version": 2}, ["format_version 2", "this engine reads version 1"]),
        ("other_format.json", {"format": "something-else"}, ["'something-else'"]),
        ("no_format.json", {"format": None}, ["format none"]),
    ):
        (out / name).write_text(json.dumps({**manifest, **change}))
        cases.append({"file": name, "says": says})
    life = manifest["life"]
    for name, change, says in (
        ("life_param.json", {"params": {**life["params"], "nod_deg": 99.0}}, ["'life.params.nod_deg'"]),
        ("life_range.json", {"params": {**life["params"], "avert_deg": [12.0, 5.0]}}, ["'life.params.avert_deg'"]),
        ("life_unknown.json", {"params": {**life["params"], "wink": 1.0}}, ["'life.params.wink'"]),
        ("life_version.json", {"version": 2}, ["'life.version'"]),
    ):
        (out / name).write_text(json.dumps({**manifest, "life": {**life, **change}}))
        cases.append({"file": name, "says": says})
    controls = manifest["controls"]
    for name, change, says in (
        (
            "controls_param.json",
            {"params": {**controls["params"], "lip_offset": 0.5}},
            ["'controls.params.lip_offset'"],
        ),
        ("controls_unknown.json", {"params": {**controls["params"], "jaw_gain": 1.0}}, ["'controls.params.jaw_gain'"]),
        (
            "controls_missing.json",
            {"params": {k: v for k, v in controls["params"].items() if k != "lower_strength"}},
            ["'controls.params.lower_strength' is missing"],
        ),
        (
            "controls_text.json",
            {"params": {**controls["params"], "upper_smoothing_s": "0.1"}},
            ["'controls.params.upper_smoothing_s' must be a number"],
        ),
        ("controls_version.json", {"version": 2}, ["'controls.version'"]),
    ):
        (out / name).write_text(json.dumps({**manifest, "controls": {**controls, **change}}))
        cases.append({"file": name, "says": says})
    # bundles made before the life layer or the controls have no section: they load, with the layer off and the
    # controls at their defaults
    (out / "no_life.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "life"}))
    (out / "no_controls.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "controls"}))
    (out / "refusals.json").write_text(json.dumps(cases))


def test_engine_unit_tests(engine_jar: Path, android_bundle: Path, ios_bundle: Path, tmp_path: Path) -> None:
    manifest = load_manifest(android_bundle)
    shutil.copy(android_bundle / "manifest.json", tmp_path / "manifest.json")
    _write_refusals(manifest, ios_bundle, tmp_path)
    cases = [
        {"fps": fps, "sample_rate": 16000, "first": 0, "centers": frame_centers(0, 700, fps).tolist()}
        for fps in (24, 25, 30, 50, 60)
    ]
    cases.append({"fps": 30, "sample_rate": 16000, "first": 10**7, "centers": frame_centers(10**7, 50, 30).tolist()})
    cases.append({"fps": 60, "sample_rate": 44100, "first": 3, "centers": frame_centers(3, 200, 60, 44100).tolist()})
    (tmp_path / "centers.json").write_text(json.dumps(cases))

    speech, sr = sf.read(bundled_speech(), dtype="float32", frames=16000)
    stereo = tone_signal(22050, 0.5, channels=2)
    wavs: list[dict[str, Any]] = []

    def add(name: str, data: np.ndarray, rate: int, subtype: str, expected: np.ndarray, tol: float) -> None:
        sf.write(tmp_path / name, data, rate, subtype=subtype)
        expected.astype("<f4").tofile(tmp_path / f"{name}.f32")
        channels = 1 if data.ndim == 1 else data.shape[1]
        wavs.append({"wav": name, "expected": f"{name}.f32", "sample_rate": rate, "channels": channels, "tol": tol})

    add("pcm16.wav", speech, sr, "PCM_16", speech, 0.0)  # already on the 16-bit grid: exact
    add("pcm24.wav", speech, sr, "PCM_24", speech, 0.0)  # 16-bit values are exact in 24 bits
    add("float_stereo.wav", stereo, 22050, "FLOAT", stereo.mean(axis=1), 1e-7)
    pcm16 = np.round(speech[:4000] * 32768).astype(np.int16)
    _wav_with_extra_chunks(tmp_path / "list_chunk.wav", pcm16, 16000)
    (pcm16 / 32768.0).astype("<f4").tofile(tmp_path / "list_chunk.wav.f32")
    wavs.append(
        {"wav": "list_chunk.wav", "expected": "list_chunk.wav.f32", "sample_rate": 16000, "channels": 1, "tol": 0.0}
    )
    (tmp_path / "wav.json").write_text(json.dumps(wavs))

    summary = json.loads(_run_engine(engine_jar, "unit", str(tmp_path))[-1])
    models = manifest["models"]
    assert summary["fps"] == manifest["fps"] and summary["sample_rate"] == manifest["sample_rate"]
    assert summary["context_frames"] == manifest["context_frames"]
    assert summary["window"] == manifest["timeline"]["window"]
    assert summary["lookahead"] == manifest["timeline"]["lookahead_frames"]
    assert [summary["mel_history"], summary["n_mels"]] == models["step"]["inputs"][0]["shape"][1:]
    assert summary["context_dim"] == len(manifest["initial_state"]["context_frame"])
    assert summary["blendshapes"] == len(manifest["blendshapes"]) == 52
    assert summary["groups"] == list(manifest["blendshape_groups"])
    assert summary["default_variant"] == manifest["default_variant"]
    assert summary["names"] == [*FRONT_END_INPUTS, *FRONT_END_OUTPUTS, *STEP_INPUTS, *STEP_OUTPUTS]
    step_variants = sorted({f["variant"] for f in manifest["files"] if f["role"] == "step"})
    assert sorted(summary["files"]) == step_variants == sorted(manifest["variants"])
    for variant, (front, step) in summary["files"].items():
        assert front == bundle_file(manifest, "front_end", variant)["path"]
        assert step == bundle_file(manifest, "step", variant)["path"]
    init = manifest["initial_state"]
    assert summary["initial_mel_sum"] == pytest.approx(float(np.sum(np.float32(init["mel_frames"]))), rel=1e-5)
    assert summary["life"] is True, "the engine did not read the manifest's life section"
    assert summary["controls"] == list(face_controls(manifest).to_json().values()), "the manifest's controls"
    assert summary["initial_context_sum"] == pytest.approx(float(np.sum(np.float32(init["context_frame"]))), rel=1e-5)


# --- replay against the real TFLite artifacts -----------------------------------------------------------


def record_trace(bundle: Path, clip: Path, out: Path, backend: str) -> np.ndarray:
    """Run the bundle's models on `backend` ("tflite", or "coreml" through the NumPy MIL executor on Linux) over
    `clip` like the apps do (neutral emotion) and write trace.json + trace.f32 into `out`: per call, every input and
    output of both models, and the Python frame centre of each call. Also used by tests/test_ios_sample.py.

    Returns the (n_frames, 52) output frames of this loop."""
    manifest, front_end, step = open_runners(bundle, backend, None)
    models = manifest["models"]
    pcm_name, mel_name = models["front_end"]["inputs"][0]["name"], models["front_end"]["outputs"][0]["name"]
    step_in = [t["name"] for t in models["step"]["inputs"]]
    bs_name, raw_name, ctx_name = (t["name"] for t in models["step"]["outputs"])
    fps, sr, lookahead = manifest["fps"], manifest["sample_rate"], manifest["timeline"]["lookahead_frames"]
    audio, clip_sr = sf.read(clip, dtype="float32")
    assert clip_sr == sr
    n_frames = -(-len(audio) * fps // sr)
    state = manifest["initial_state"]
    mel_history = np.asarray(state["mel_frames"], np.float32)[None]
    context = np.repeat(np.asarray(state["context_frame"], np.float32)[None, None], manifest["context_frames"] - 1, 1)
    emotion = np.asarray(manifest["emotion"]["neutral"], np.float32)[None]
    previous = np.zeros((1, len(manifest["blendshapes"])), np.float32)
    fields = [
        f"in:{pcm_name}",
        f"out:{mel_name}",
        *(f"in:{name}" for name in step_in),
        f"out:{bs_name}",
        f"out:{raw_name}",
        f"out:{ctx_name}",
    ]
    calls: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    j = 0
    while len(frames) < n_frames:
        window = gather_windows(audio, 0, frame_centers(j, 1, fps, sr))
        mel = front_end(**{pcm_name: window})[mel_name].reshape(1, 1, -1).astype(np.float32)
        mel_history = np.concatenate([mel_history[:, 1:], mel], axis=1)
        result = step(**dict(zip(step_in, (mel_history, context, emotion, previous), strict=True)))
        record = (
            window,
            mel,
            mel_history,
            context,
            emotion,
            previous,
            result[bs_name],
            result[raw_name],
            result[ctx_name],
        )
        calls.append(np.concatenate([np.asarray(a, np.float32).ravel() for a in record]))
        context = np.concatenate([context[:, 1:], result[ctx_name].reshape(1, 1, -1)], axis=1)
        if j - lookahead >= 0:
            previous = result[raw_name if j == lookahead else bs_name].reshape(1, -1).astype(np.float32)
            frames.append(previous[0])
        j += 1
    sizes = [int(np.prod(np.shape(a))) for a in record]
    (out / "trace.json").write_text(
        json.dumps(
            {
                "calls": len(calls),
                "fields": [[f, s] for f, s in zip(fields, sizes, strict=True)],
                "tolerance": 1e-6,
                "centers": frame_centers(0, len(calls), fps, sr).tolist(),
            }
        )
    )
    np.concatenate(calls).astype("<f4").tofile(out / "trace.f32")
    return np.stack(frames)


@pytest.fixture(scope="module", params=["android_bundle", "android_bundle60"])
def replay_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """(folder with manifest, 16-bit clip and trace, reference frames from iter_bundle_blendshapes), at 30 fps
    and at 60 fps, whose step reads a 5-frame mel history."""
    android_bundle: Path = request.getfixturevalue(request.param)
    out = tmp_path_factory.mktemp("android_replay")
    shutil.copy(android_bundle / "manifest.json", out / "manifest.json")
    speech, sr = sf.read(bundled_speech(), dtype="float32", frames=int(REPLAY_SECONDS * 16000) + 123)
    sf.write(out / "clip.wav", speech, sr, subtype="PCM_16")  # what install-into ships: 16 kHz mono PCM16
    traced = record_trace(android_bundle, out / "clip.wav", out, "tflite")
    # the app passes the neutral emotion vector (no openSMILE on the phone)
    _, n_frames, chunks = iter_bundle_blendshapes(out / "clip.wav", android_bundle, "tflite", neutral_emotion=True)
    reference = np.concatenate(list(chunks))
    assert reference.shape == (n_frames, 52) == traced.shape
    np.testing.assert_allclose(traced, reference, rtol=0, atol=1e-6, err_msg="trace loop != iter_bundle_blendshapes")
    assert np.ptp(reference, axis=0).max() > 0, "reference frames do not move: a useless replay"
    return out, reference


def test_kotlin_engine_replays_the_tflite_trace(engine_jar: Path, replay_dir: tuple[Path, np.ndarray]) -> None:
    folder, reference = replay_dir
    lines = _run_engine(engine_jar, "replay", str(folder), ",".join(REPLAY_SPECS))
    reports = {r["spec"]: r for r in map(json.loads, lines)}
    assert set(reports) == set(REPLAY_SPECS)
    for spec in REPLAY_SPECS:
        assert reports[spec]["frames"] == len(reference), spec
        frames = np.fromfile(folder / f"out_{spec}.f32", dtype="<f4").reshape(-1, 52)
        np.testing.assert_allclose(frames, reference, rtol=0, atol=1e-6, err_msg=f"chunks of {spec}")


def test_replay_catches_a_wrong_input(engine_jar: Path, replay_dir: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """The replay models really compare: a trace whose recorded emotion is off must fail the Kotlin run."""
    folder, _ = replay_dir
    for name in ("manifest.json", "clip.wav", "trace.json"):
        shutil.copy(folder / name, tmp_path / name)
    index = json.loads((folder / "trace.json").read_text())
    trace = np.fromfile(folder / "trace.f32", dtype="<f4").reshape(index["calls"], -1)
    offset = 0
    for field, size in index["fields"]:
        if field == f"in:{STEP_INPUTS[2]}":
            trace[5, offset] = 0.5
        offset += size
    trace.astype("<f4").tofile(tmp_path / "trace.f32")
    proc = subprocess.run(
        [_tool("java"), "-cp", str(engine_jar), "com.a2bs.engine.EngineTestsKt", "replay", str(tmp_path), "all"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and f"step call 5 {STEP_INPUTS[2]}" in proc.stderr, proc.stderr[-2000:]


def test_kotlin_engine_replays_with_the_life_layer(engine_jar: Path, replay_dir: tuple[Path, np.ndarray]) -> None:
    """The engine's frame loop with the manifest's life layer (seed 0): the frames and rotations of Python's
    `LifeLayer` over the reference frames with the PCM window of each frame, in any chunking."""
    folder, reference = replay_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    params = life_params(manifest)
    assert params is not None, "a fresh bundle has a life section"
    audio, _ = sf.read(folder / "clip.wav", dtype="float32")
    windows = gather_windows(audio, 0, frame_centers(0, len(reference), manifest["fps"]))
    shapes, rotations = LifeLayer(params, manifest["fps"], 0).process(reference, windows)
    assert np.abs(shapes - reference).max() > 0.01 and np.abs(rotations).max() > 1e-3, "the layer did nothing"
    specs = ("life-irregular", "life-1024")
    lines = _run_engine(engine_jar, "replay", str(folder), ",".join(specs))
    assert {json.loads(line)["spec"] for line in lines} == set(specs)
    for spec in specs:
        frames = np.fromfile(folder / f"out_{spec}.f32", dtype="<f4").reshape(-1, 52)
        np.testing.assert_allclose(frames, shapes, rtol=0, atol=1e-6, err_msg=f"life frames, chunks of {spec}")
        rot = np.fromfile(folder / f"rot_{spec}.f64", dtype="<f8").reshape(-1, 9)
        np.testing.assert_allclose(rot, rotations, rtol=0, atol=1e-6, err_msg=f"life rotations, chunks of {spec}")


# --- the life layer against the Python reference ----------------------------------------------------------

LIFE_SEEDS = (0, 3)  # both show every kind of event on the bundled clip at 30 fps (asserted)
LIFE_EVENTS = ("blink", "saccade", "aversion", "accent", "nod", "brow", "phrase_end", "settle")


def life_cases(curves: np.ndarray, windows: np.ndarray, fps: int) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """(preset, seed, curves, rotations) of Python's `LifeLayer` for the natural and subtle presets and
    LIFE_SEEDS over the model's `curves` and their PCM `windows`: the replay cases of both sample engines.
    Every kind of event occurs in each case (asserted), so a replay exercises every branch of the layer."""
    out = []
    for preset in ("natural", "subtle"):
        for seed in LIFE_SEEDS:
            layer = LifeLayer(PRESETS[preset], fps, seed, log=True)
            shapes, rotations = layer.process(curves, windows)
            missing = [kind for kind in LIFE_EVENTS if kind not in {e.kind for e in layer.log}]
            assert not missing, f"{preset} seed {seed}: no {missing} in the trace"
            out.append((preset, seed, shapes, rotations))
    return out


# --- the face controls against the Python reference -------------------------------------------------------

CONTROL_CASES: dict[str, tuple[FaceControls, int]] = {
    "defaults": (FaceControls(), 30),  # the identity: the model's frames bit for bit
    "neutral": (FaceControls(lower_strength=0.0, upper_strength=0.0, lip_offset=0.2, lower_smoothing_s=0.1), 30),
    "lively": (
        FaceControls(
            lower_strength=2.0,
            upper_strength=0.6,
            expression_strength=1.8,
            lip_offset=0.06,
            lower_smoothing_s=0.04,
            upper_smoothing_s=0.2,
        ),
        30,
    ),
    "tight": (FaceControls(upper_strength=1.4, expression_strength=0.3, lip_offset=-0.05, upper_smoothing_s=0.5), 30),
    "lively_60": (FaceControls(lower_strength=1.6, lip_offset=0.06, lower_smoothing_s=0.04, upper_smoothing_s=1.0), 60),
}


def controls_input(curves: np.ndarray) -> np.ndarray:
    """The frames the controls' replay cases start from: the model's `curves` (n, 52) made to move, since the
    test bundles' untrained models give nearly constant curves: each shape half its value plus a sine of its own
    period (3 to 33 frames: the smoothing matters) and phase, and jawOpen / mouthClose a slow jaw with a lip gap
    swinging from sealed through the seal ramp to open. Deterministic, float32, every value in [0, 0.96]."""
    t = np.arange(len(curves), dtype=np.float64)[:, None]
    i = np.arange(curves.shape[1], dtype=np.float64)[None, :]
    period, phase = 3.0 + (i * 7) % 31, i * 0.9
    x = 0.5 * np.clip(curves, 0.0, 1.0) + 0.45 * (0.5 + 0.5 * np.sin(2 * np.pi * t / period + phase))
    jaw = 0.05 + 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * t[:, 0] / 41))
    gap = 0.1 * np.sin(2 * np.pi * t[:, 0] / 17) - 0.01
    x[:, INDEX["jawOpen"]], x[:, INDEX["mouthClose"]] = jaw, np.clip(jaw - gap, 0.0, 1.0)
    return np.clip(x, 0.0, 0.96).astype(np.float32)


def controls_cases(curves: np.ndarray) -> list[tuple[str, FaceControls, int, np.ndarray]]:
    """(name, controls, fps, frames) of Python's `ControlsFilter` over `controls_input(curves)` for CONTROL_CASES:
    the replay cases of both sample engines. Each branch of the controls is taken in some case (asserted): a
    clip at 1, open lips moved by the whole offset and inside the ramp, sealed lips left sealed."""
    out = []
    curves = controls_input(curves)
    gap = curves[:, INDEX["jawOpen"]] - curves[:, INDEX["mouthClose"]]
    assert (gap <= 0).sum() >= 5 and ((gap > 0) & (gap < SEAL_GAP)).sum() >= 5 and (gap >= SEAL_GAP).sum() >= 50
    for name, (controls, fps) in CONTROL_CASES.items():
        frames = ControlsFilter(controls, fps).process(curves)
        out.append((name, controls, fps, frames))
    by_name = {name: frames for name, _, _, frames in out}
    assert np.array_equal(by_name["defaults"], curves) and not by_name["neutral"].any()
    assert (by_name["lively"] == 1.0).any() and (curves < 1.0).all(), "no clip at 1 in the lively case"
    return out


def write_controls_cases(curves: np.ndarray, out: Path) -> None:
    """controls_cases.json in `out`, with the input frames (`controls_input(curves)`) and each case's expected
    frames (float32 files)."""
    controls_input(curves).astype("<f4").tofile(out / "controls_curves.f32")
    cases = []
    for name, controls, fps, frames in controls_cases(curves):
        frames.astype("<f4").tofile(out / f"controls_{name}.f32")
        cases.append(
            {
                "name": name,
                "controls": controls_section(controls),
                "fps": fps,
                "names": list(ARKIT_BLENDSHAPES),
                "frames": len(curves),
                "tolerance": 1e-6,
                "curves": "controls_curves.f32",
                "expected": f"controls_{name}.f32",
            }
        )
    (out / "controls_cases.json").write_text(json.dumps(cases))


@pytest.fixture(scope="module")
def life_dir(android_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """life_cases.json and its files: the model's curves over the whole bundled clip (30 fps, ~430 frames) and
    each frame's PCM window, with Python's `LifeLayer` output for the natural and subtle presets and two seeds."""
    out = tmp_path_factory.mktemp("android_life")
    manifest = load_manifest(android_bundle)
    fps = manifest["fps"]
    _, n_frames, chunks = iter_bundle_blendshapes(bundled_speech(), android_bundle, "tflite", neutral_emotion=True)
    curves = np.concatenate(list(chunks)).astype(np.float32)
    audio, sr = sf.read(bundled_speech(), dtype="float32")
    assert sr == 16000 and curves.shape == (n_frames, 52) and n_frames > 300
    windows = gather_windows(audio, 0, frame_centers(0, n_frames, fps))
    curves.astype("<f4").tofile(out / "curves.f32")
    windows.astype("<f4").tofile(out / "windows.f32")
    cases = []
    for preset, seed, shapes, rotations in life_cases(curves, windows, fps):
        name = f"{preset}_{seed}"
        shapes.astype("<f4").tofile(out / f"{name}.f32")
        rotations.astype("<f8").tofile(out / f"{name}.rot.f64")
        cases.append(
            {
                "name": name,
                "life": manifest_section(PRESETS[preset]),
                "fps": fps,
                "seed": seed,
                "names": manifest["blendshapes"],
                "frames": n_frames,
                "tolerance": 1e-6,
                "curves": "curves.f32",
                "windows": "windows.f32",
                "expected_curves": f"{name}.f32",
                "expected_rotations": f"{name}.rot.f64",
            }
        )
    (out / "life_cases.json").write_text(json.dumps(cases))
    write_controls_cases(curves, out)
    return out


def _run_expecting_failure(jar: Path, folder: Path, mode: str, case: dict[str, Any]) -> str:
    """The Kotlin `mode` test (life, controls) over one wrong case written to FOLDER/MODE_cases.json: it must
    fail; its stderr."""
    (folder / f"{mode}_cases.json").write_text(json.dumps([case]))
    proc = subprocess.run(
        [_tool("java"), "-cp", str(jar), "com.a2bs.engine.EngineTestsKt", mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0, f"the Kotlin {mode} test passed a wrong case: {proc.stdout[-2000:]}"
    return proc.stderr


def test_kotlin_life_layer_matches_python(engine_jar: Path, life_dir: Path, tmp_path: Path) -> None:
    """Same seed, parameters and audio: the Kotlin layer's curves and rotations are Python's to 1e-6 on every
    frame; its parameter limits are Python's. Negative controls: the seed changed, or one parameter
    (brow_amplitude 0.45 -> 0.46), and the Kotlin run fails naming the case."""
    lines = [json.loads(line) for line in _run_engine(engine_jar, "life", str(life_dir))]
    reports = {r["case"]: r for r in lines if "case" in r}
    cases = json.loads((life_dir / "life_cases.json").read_text())
    assert set(reports) == {c["name"] for c in cases}
    for case in cases:
        assert reports[case["name"]]["frames"] == case["frames"]
        assert reports[case["name"]]["max_curves"] <= 1e-6 and reports[case["name"]]["max_rotations"] <= 1e-6
    (limits,) = [r["limits"] for r in lines if "limits" in r]
    assert limits == {k: [lo, hi, k in RANGES] for k, (lo, hi) in LIMITS.items()}, "LifeLayer.kt's limits"

    expected = [c[key] for c in cases for key in ("expected_curves", "expected_rotations")]
    for name in ("curves.f32", "windows.f32", *expected):
        shutil.copy(life_dir / name, tmp_path / name)
    reseeded = {**cases[0], "seed": cases[0]["seed"] + 1}
    assert f"life {cases[0]['name']}: frame" in _run_expecting_failure(engine_jar, tmp_path, "life", reseeded)
    life = cases[0]["life"]
    changed = {**cases[0], "life": {**life, "params": {**life["params"], "brow_amplitude": 0.46}}}
    assert f"life {cases[0]['name']}: frame" in _run_expecting_failure(engine_jar, tmp_path, "life", changed)


def test_kotlin_face_controls_match_python(engine_jar: Path, life_dir: Path, tmp_path: Path) -> None:
    """Each case of `controls_cases`: the Kotlin filter's frames are Python's to 1e-6, over the whole clip and in
    irregular chunks; its limits, seal gap and regions are Python's. Negative controls: one control changed
    (lip_offset 0.06 -> 0.07), or the fps (30 -> 60: other smoothing factors), and the run fails naming the case."""
    lines = [json.loads(line) for line in _run_engine(engine_jar, "controls", str(life_dir))]
    reports = {r["case"]: r for r in lines if "case" in r}
    cases = json.loads((life_dir / "controls_cases.json").read_text())
    assert set(reports) == {c["name"] for c in cases} == set(CONTROL_CASES)
    for case in cases:
        report = reports[case["name"]]
        assert report["frames"] == case["frames"]
        assert report["max_whole"] <= 1e-6 and report["max_chunks"] <= 1e-6, report
    (contract,) = [r for r in lines if "limits" in r]
    assert contract["limits"] == {k: [lo, hi] for k, (lo, hi) in CONTROL_LIMITS.items()}, "FaceControls.kt's limits"
    assert contract["seal_gap"] == SEAL_GAP
    assert sorted(contract["lower"]) == sorted(LOWER_FACE) and contract["style"] == list(STYLE_SHAPES)

    (lively,) = [c for c in cases if c["name"] == "lively"]
    shutil.copy(life_dir / lively["curves"], tmp_path / lively["curves"])
    shutil.copy(life_dir / lively["expected"], tmp_path / lively["expected"])
    params = lively["controls"]["params"]
    assert params["lip_offset"] == 0.06 and lively["fps"] == 30
    changed = {**lively, "controls": {**lively["controls"], "params": {**params, "lip_offset": 0.07}}}
    assert "controls lively (whole): frame" in _run_expecting_failure(engine_jar, tmp_path, "controls", changed)
    other_fps = {**lively, "fps": 60}
    assert "controls lively (whole): frame" in _run_expecting_failure(engine_jar, tmp_path, "controls", other_fps)


REPLAY_CONTROLS = FaceControls(
    lower_strength=1.7, upper_strength=0.5, expression_strength=1.5, lip_offset=0.05, lower_smoothing_s=0.05
)


def test_kotlin_engine_replays_with_the_controls(engine_jar: Path, replay_dir: tuple[Path, np.ndarray]) -> None:
    """The engine's frame loop with the face controls set at run time and the manifest's life layer (seed 0): the
    frames and rotations of Python's `ControlsFilter`, then `LifeLayer`, over the reference, in any chunking."""
    folder, reference = replay_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    params = life_params(manifest)
    assert params is not None, "a fresh bundle has a life section"
    fps = manifest["fps"]
    controlled = ControlsFilter(REPLAY_CONTROLS, fps).process(reference)
    assert np.abs(controlled - reference).max() > 0.01, "the controls did nothing"
    audio, _ = sf.read(folder / "clip.wav", dtype="float32")
    windows = gather_windows(audio, 0, frame_centers(0, len(reference), fps))
    shapes, rotations = LifeLayer(params, fps, 0).process(controlled, windows)
    (folder / "replay_controls.json").write_text(json.dumps(controls_section(REPLAY_CONTROLS)))
    specs = ("controls-irregular", "controls-160")
    lines = _run_engine(engine_jar, "replay", str(folder), ",".join(specs))
    assert {json.loads(line)["spec"] for line in lines} == set(specs)
    for spec in specs:
        frames = np.fromfile(folder / f"out_{spec}.f32", dtype="<f4").reshape(-1, 52)
        np.testing.assert_allclose(frames, shapes, rtol=0, atol=1e-6, err_msg=f"controls + life, chunks of {spec}")
        rot = np.fromfile(folder / f"rot_{spec}.f64", dtype="<f8").reshape(-1, 9)
        np.testing.assert_allclose(rot, rotations, rtol=0, atol=1e-6, err_msg=f"life rotations, chunks of {spec}")


# --- the face drawing's lip geometry and head pose -------------------------------------------------------


def write_face_cases(path: Path) -> list[dict[str, Any]]:
    """Inputs (jawOpen, mouthClose, lowerDown, funnel, press) and the preview's `lip_opening` of each, as JSON for
    the Kotlin and Swift geometry tests: the sealed and open cases, equal jaw and close at several heights, values
    out of [0, 1] (clipped), and random frames. Also used by tests/test_ios_sample.py."""
    rng = np.random.default_rng(26)
    inputs = [[0.3, 0.3, 0, 0, 0], [0.3, 0, 0, 0, 0], [0.3, 0.6, 0, 0, 0], [0.3, 0.3, 0, 0, 1], [1.5, -0.2, 2, -1, 0]]
    inputs += [[x, x, 0, 0, 0] for x in (0.05, 0.5, 0.8, 1.0)]
    inputs += np.round(rng.uniform(0, 1, (40, 5)), 4).tolist()
    cases = [{"in": [float(x) for x in row], "opening": preview.lip_opening(*row)} for row in inputs]
    path.write_text(json.dumps(cases))
    return cases


def head_pose(yaw: float, pitch: float, roll: float) -> tuple[float, float, float]:
    """The preview's head motion (`_turned`): the shift sideways and down in fractions of the face, and the tilt
    (radians, counter-clockwise on screen about preview.NECK); what FaceGeometry.headPose must give."""
    return -preview.HEAD_RADIUS * np.sin(yaw), preview.HEAD_RADIUS * np.sin(pitch), roll


def write_head_cases(path: Path) -> list[dict[str, Any]]:
    """Head rotations (yaw, pitch, roll in radians: none, each alone with both signs, random) and `head_pose` of
    each, as JSON for the Kotlin geometry test."""
    rng = np.random.default_rng(27)
    inputs = [[0.0, 0.0, 0.0], [0.2, 0, 0], [-0.2, 0, 0], [0, 0.1, 0], [0, -0.1, 0], [0, 0, 0.05], [0, 0, -0.05]]
    inputs += np.round(rng.uniform(-0.4, 0.4, (20, 3)), 4).tolist()
    cases = [{"in": [float(x) for x in row], "pose": [float(v) for v in head_pose(*row)]} for row in inputs]
    path.write_text(json.dumps(cases))
    return cases


def _face_centroid(renderer: preview.FaceRenderer, rotations: list[float]) -> np.ndarray:
    """Where the preview draws the face (the mean of the pixels off the background), in fractions of its size."""
    frame = np.zeros(len(ARKIT_BLENDSHAPES) + 9)
    frame[len(ARKIT_BLENDSHAPES) : len(ARKIT_BLENDSHAPES) + 3] = rotations
    image = np.asarray(renderer.draw(frame), dtype=np.float64)
    ys, xs = np.nonzero(np.abs(image - np.array(preview.BACKGROUND)).sum(axis=-1) > 30)
    return np.array([xs.mean(), ys.mean()]) / renderer.size


def _posed(centroid: np.ndarray, pose: tuple[float, float, float]) -> np.ndarray:
    """A point of the still face moved by a head pose: tilted about the neck, then shifted."""
    dx, dy, angle = pose
    c, n = np.cos(angle), np.sin(angle)
    v = centroid - np.array(preview.NECK)
    return np.array(preview.NECK) + np.array([c * v[0] + n * v[1] + dx, -n * v[0] + c * v[1] + dy])


def test_head_pose_is_how_the_preview_draws_the_head() -> None:
    """`head_pose` (what the Kotlin and Swift faces follow) moves the face where the preview's `_turned` draws it:
    the centroid of the drawn face, moved by the pose, within half a pixel of the drawn one's; negative control:
    the yaw's sign flipped is caught."""
    renderer = preview.FaceRenderer(200)
    still = _face_centroid(renderer, [0.0, 0.0, 0.0])
    for rotations in ([0.25, 0.0, 0.0], [0.0, 0.15, 0.0], [0.0, 0.0, 0.2], [-0.12, -0.06, -0.08]):
        drawn = _face_centroid(renderer, rotations)
        assert np.abs(_posed(still, head_pose(*rotations)) - drawn).max() < 0.5 / renderer.size, rotations
    dx, dy, angle = head_pose(0.25, 0.0, 0.0)
    assert np.abs(_posed(still, (-dx, dy, angle)) - _face_centroid(renderer, [0.25, 0.0, 0.0])).max() > 0.1


def _face_constants(source: str) -> dict[str, float]:
    """{NAME: value} of every `const val NAME = <number>f` in Kotlin source."""
    return {name: float(value) for name, value in re.findall(r"const val (\w+)\s*=\s*([\d.]+)f", source)}


def test_face_geometry_constants_match_the_preview() -> None:
    """Read as text: each constant of FaceGeometry.kt has the preview's value (the formula is compared by running
    it, below); negative control: a changed constant is seen."""
    source = FACE_GEOMETRY.read_text()
    want = {name: getattr(preview, name) for name in FACE_CONSTANTS}
    want |= {name: preview.NECK[i] for name, i in NECK_CONSTANTS.items()}
    assert _face_constants(source) == want
    assert "LIP_OPENING_PER_JAW = 0.17f" in source
    assert _face_constants(source.replace("LIP_OPENING_PER_JAW = 0.17f", "LIP_OPENING_PER_JAW = 0.16f")) != want


def test_face_geometry_seals_the_lips_like_the_preview(engine_jar: Path, tmp_path: Path) -> None:
    """The Kotlin lip opening: 0 at mouthClose = jawOpen = 0.3, open at mouthClose = 0, and equal to the preview's
    on every case; negative control: one Python answer changed to the old mapping's (the jaw scaled by
    mouthClose) fails the run, naming the case."""
    cases = write_face_cases(tmp_path / "face_cases.json")
    heads = write_head_cases(tmp_path / "head_cases.json")
    (line,) = _run_engine(engine_jar, "face", str(tmp_path))
    assert json.loads(line) == {"face_cases": len(cases), "head_cases": len(heads)}
    cases[0]["opening"] = 0.17 * 0.3 * (1 - 0.85 * 0.3)
    (tmp_path / "face_cases.json").write_text(json.dumps(cases))
    proc = subprocess.run(
        [_tool("java"), "-cp", str(engine_jar), "com.a2bs.engine.EngineTestsKt", "face", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "lip opening of [0.3, 0.3, 0.0, 0.0, 0.0]" in proc.stderr, proc.stderr[-2000:]


def test_face_geometry_turns_the_head_like_the_preview(engine_jar: Path, tmp_path: Path) -> None:
    """The Kotlin head pose: none for a still head, positive yaw to the viewer's left and positive pitch down as in
    the preview, and `head_pose`'s answer on every case; negative control: one answer with the yaw's sign flipped
    fails the run, naming the case."""
    write_face_cases(tmp_path / "face_cases.json")
    heads = write_head_cases(tmp_path / "head_cases.json")
    _run_engine(engine_jar, "face", str(tmp_path))
    assert heads[1]["in"] == [0.2, 0.0, 0.0] and heads[1]["pose"][0] < 0
    heads[1]["pose"][0] = -heads[1]["pose"][0]
    (tmp_path / "head_cases.json").write_text(json.dumps(heads))
    proc = subprocess.run(
        [_tool("java"), "-cp", str(engine_jar), "com.a2bs.engine.EngineTestsKt", "face", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "head: pose of [0.2, 0.0, 0.0]" in proc.stderr, proc.stderr[-2000:]
