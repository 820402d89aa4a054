"""Contract tests of the iOS sample app (ios_sample/), runnable on Linux CI where no Swift compiler exists.

1. The Swift source, read as text, against a freshly built iOS bundle (`ios_bundle`): every manifest key of the
   Codable structs (Manifest.swift CodingKeys) exists with a JSON type that decodes into the Swift field type,
   every model input/output name and role string of Contract.swift matches the manifest, the blendshapes the
   face drawing reads exist, a2bs-sample.json points inside the app's declared resources, and no model size is
   a literal in the Swift code.
2. A Python replay of A2BSEngine.swift's exact scheduling (sample offsets, when a mel frame becomes due under
   chunked arrival, the ring buffer, flush) run over the bundle's real Core ML artifacts (NumPy MIL executor on
   Linux, via `open_runners(bundle, "coreml", None)`), fed in irregular chunks, must equal
   `iter_bundle_blendshapes` (the Python reference of the app frame loop).

`swift test` in ios_sample/A2BSEngine on a Mac runs the engine's own XCTests; nothing here compiles Swift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech

from a2bs.convert.backends import iter_bundle_blendshapes, load_manifest, open_runners
from a2bs.convert.deploy import FRONT_END_INPUTS, FRONT_END_OUTPUTS, STEP_INPUTS, STEP_OUTPUTS
from a2bs.core.audio import load_audio, n_output_frames, probe, read_tail
from a2bs.core.emotion import EMOTION_SPAN_S, EmotionStats, emotion_features_at
from a2bs.core.features import frame_centers

SAMPLE = Path(__file__).resolve().parents[1] / "ios_sample"
ENGINE = SAMPLE / "A2BSEngine"
ENGINE_SOURCES = ENGINE / "Sources" / "A2BSEngine"
APP = SAMPLE / "A2BSSample.swiftpm"
Runner = Callable[..., dict[str, np.ndarray]]


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


def decodable_structs(code: str) -> dict[str, list[tuple[str, str, str]]]:
    """{struct name: [(swift field, json key, swift type)]} of every Decodable/Codable struct in `code`."""
    structs = {}
    for match in re.finditer(r"struct\s+(\w+)\s*:\s*([^{]*)\{", code):
        if not re.search(r"\b(Decodable|Codable)\b", match.group(2)):
            continue
        body = block_after(code[match.start() :], r"struct\s+\w+[^{]*\{")
        fields = re.findall(r"\blet\s+(\w+)\s*:\s*([^\n=]+)", top_level(body))
        keys = dict(
            (case, raw or case)
            for case, raw in re.findall(
                r"\bcase\s+(\w+)(?:\s*=\s*\"([^\"]+)\")?", block_after(body, r"enum\s+CodingKeys\b[^{]*\{")
            )
        )
        assert set(keys) == {name for name, _ in fields}, f"{match.group(1)}: CodingKeys and fields differ"
        structs[match.group(1)] = [(name, keys[name], swift_type.strip()) for name, swift_type in fields]
    return structs


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def check_json_type(value: Any, swift_type: str, structs: dict, where: str) -> None:
    """Assert JSONDecoder would decode `value` into `swift_type` (the subset of Swift types the manifest uses)."""
    if swift_type.endswith("?"):
        if value is None:
            return
        swift_type = swift_type[:-1]
    if swift_type.startswith("[") and swift_type.endswith("]"):
        parts = split_top(swift_type[1:-1], ":")
        if len(parts) == 2:
            assert isinstance(value, dict), f"{where}: expected an object for {swift_type}"
            for key, item in value.items():
                check_json_type(item, parts[1].strip(), structs, f"{where}.{key}")
        else:
            assert isinstance(value, list), f"{where}: expected an array for {swift_type}"
            for i, item in enumerate(value):
                check_json_type(item, parts[0].strip(), structs, f"{where}[{i}]")
    elif swift_type == "String":
        assert isinstance(value, str), f"{where}: expected a string, got {value!r}"
    elif swift_type == "Int":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer, got {value!r}"
    elif swift_type in ("Double", "Float"):
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: expected a number"
    elif swift_type == "Bool":
        assert isinstance(value, bool), f"{where}: expected a boolean"
    elif swift_type in structs:
        assert isinstance(value, dict), f"{where}: expected an object for {swift_type}"
        for field, key, field_type in structs[swift_type]:
            if key not in value:
                assert field_type.endswith("?"), f"{where}: manifest has no key {key!r} ({swift_type}.{field})"
                continue
            check_json_type(value[key], field_type, structs, f"{where}.{key}")
    else:
        raise AssertionError(f"{where}: the test does not know the Swift type {swift_type!r}")


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


def test_codable_manifest_structs_match_the_bundle(manifest: dict[str, Any]) -> None:
    structs = decodable_structs(swift_code((ENGINE_SOURCES / "Manifest.swift").read_text()))
    assert "A2BSManifest" in structs, "Manifest.swift must declare the Decodable root struct A2BSManifest"
    # Every key the engine decodes exists in the bundle with a compatible JSON type (recursively).
    check_json_type(manifest, "A2BSManifest", structs, "manifest")
    used = {key for fields in structs.values() for _, key, _ in fields}
    expected = {"fps", "sample_rate", "context_frames", "timeline", "window", "lookahead_frames", "blendshapes",
                "blendshape_groups", "initial_state", "mel_frames", "context_frame", "emotion", "neutral", "models",
                "front_end", "step", "inputs", "outputs", "name", "shape", "dtype", "default_variant", "variants",
                "files", "path", "sha256", "role", "variant"}  # fmt: skip
    assert expected <= used, f"Manifest.swift no longer decodes {sorted(expected - used)}"
    # Decodable structs are only declared in Manifest.swift, the one place of manifest keys.
    for path in swift_files():
        if path.name not in ("Manifest.swift",) and "Tests" not in path.parts:
            assert not decodable_structs(swift_code(path.read_text())), f"{path}: keep manifest keys in Manifest.swift"


def test_contract_names_match_the_bundle(manifest: dict[str, Any], ios_bundle: Path) -> None:
    c = swift_constants(ENGINE_SOURCES / "Contract.swift")
    assert (ios_bundle / c["manifestFile"]).is_file()
    assert (c["bundleFormat"], c["formatVersion"], c["platform"]) == (
        manifest["format"], manifest["format_version"], manifest["platform"])  # fmt: skip
    models = manifest["models"]
    assert c["frontEndInputs"] == [t["name"] for t in models["front_end"]["inputs"]] == list(FRONT_END_INPUTS)
    assert c["frontEndOutputs"] == [t["name"] for t in models["front_end"]["outputs"]] == list(FRONT_END_OUTPUTS)
    assert c["stepInputs"] == [t["name"] for t in models["step"]["inputs"]] == list(STEP_INPUTS)
    assert c["stepOutputs"] == [t["name"] for t in models["step"]["outputs"]] == list(STEP_OUTPUTS)
    tensors = [t for m in models.values() for t in m["inputs"] + m["outputs"]]
    assert {t["dtype"] for t in tensors} == {c["float32"]}
    assert {f["role"] for f in manifest["files"]} == {c["frontEndRole"], c["stepRole"]}
    assert set(c["groupOrder"]) == set(manifest["blendshape_groups"])
    # The files the engine loads (by role and variant, from `files`) are in the bundle.
    for entry in manifest["files"]:
        assert (ios_bundle / entry["path"]).exists(), entry["path"]
    assert manifest["default_variant"] in manifest["variants"]
    for variant in manifest["variants"]:
        assert any(f["role"] == c["stepRole"] and f["variant"] == variant for f in manifest["files"])
    # The emotion input may stay neutral: the manifest's neutral vector has the step input's size.
    assert np.prod(models["step"]["inputs"][2]["shape"]) == len(manifest["emotion"]["neutral"])


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


def test_no_model_numbers_in_swift(manifest: dict[str, Any]) -> None:
    sizes = {
        manifest["context_frames"], manifest["context_frames"] - 1, manifest["timeline"]["window"],
        manifest["timeline"]["window"] // 2, manifest["sample_rate"], len(manifest["blendshapes"]),
        len(manifest["emotion"]["neutral"]), len(manifest["initial_state"]["context_frame"]),
        len(manifest["initial_state"]["mel_frames"][0]), 256, 255, 512, 1024, 80, 52, 264, 16000,
    }  # fmt: skip
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


# --- Replay of A2BSEngine.swift's schedule over the real Core ML artifacts ------------------------------------

# The Swift expressions the replay below mirrors, verbatim from FrameSchedule.swift / A2BSEngine.swift.
SWIFT_RULES = {
    "FrameSchedule.swift": [
        "(2 * j * sampleRate + fps) / (2 * fps)",  # centre of mel frame j
        "center(ofMelFrame: j) - window / 2",  # first sample of its window
        "windowStart(ofMelFrame: j) + window",  # samples needed before it is due
        "j >= lookahead ? j - lookahead : nil",  # output frame of mel frame j
        "(n * fps + sampleRate - 1) / sampleRate",  # output frames of a finished stream
    ],
    "A2BSEngine.swift": [
        "while schedule.samplesNeeded(forMelFrame: nextMelFrame) <= samples.end",  # push
        "while emittedFrames < total",  # flush
        "samples.discard(before: schedule.windowStart(ofMelFrame: nextMelFrame))",
        "let source = k == 0 ? blendshapesRaw : blendshapes",
    ],
}


def test_replay_mirrors_the_swift_source() -> None:
    for name, expressions in SWIFT_RULES.items():
        code = " ".join(swift_code((ENGINE_SOURCES / name).read_text()).split())
        for expression in expressions:
            assert expression in code, f"{name} no longer contains {expression!r}: update the replay in this test"


class SwiftEngineReplay:
    """A2BSEngine.swift in Python, line for line: absolute-indexed sample buffer, due rule, mel history, the
    mirrored context ring, previous, flush. The runners are the bundle's models; names come from the manifest."""

    def __init__(self, manifest: dict[str, Any], front_end: Runner, step: Runner, emotion: np.ndarray) -> None:
        self.m = manifest
        self.fps, self.sample_rate = manifest["fps"], manifest["sample_rate"]
        self.window, self.lookahead = manifest["timeline"]["window"], manifest["timeline"]["lookahead_frames"]
        self.front_end, self.step = front_end, step
        self.fe_in = [(t["name"], t["shape"]) for t in manifest["models"]["front_end"]["inputs"]]
        self.fe_out = [t["name"] for t in manifest["models"]["front_end"]["outputs"]]
        self.st_in = [(t["name"], t["shape"]) for t in manifest["models"]["step"]["inputs"]]
        self.st_out = [t["name"] for t in manifest["models"]["step"]["outputs"]]
        self.rows = manifest["context_frames"] - 1
        self.emotion = emotion.astype(np.float32).reshape(self.st_in[2][1])
        self.reset()

    # FrameSchedule.swift
    def center(self, j: int) -> int:
        return (2 * j * self.sample_rate + self.fps) // (2 * self.fps)

    def window_start(self, j: int) -> int:
        return self.center(j) - self.window // 2

    def samples_needed(self, j: int) -> int:
        return self.window_start(j) + self.window

    def output_frame_count(self, n: int) -> int:
        return (n * self.fps + self.sample_rate - 1) // self.sample_rate

    # A2BSEngine.swift
    def reset(self) -> None:
        self.storage = np.zeros(0, np.float32)  # SampleBuffer: storage[0] has absolute index `start`
        self.start = 0
        self.next_mel_frame = 0
        self.emitted = 0
        self.mel_frames = np.asarray(self.m["initial_state"]["mel_frames"], np.float32).reshape(self.st_in[0][1])
        row = np.asarray(self.m["initial_state"]["context_frame"], np.float32)
        self.ring = np.tile(row, (2 * self.rows, 1))  # ContextRing: each row stored at slot i and i + rows
        self.oldest = 0
        self.previous = np.zeros(self.st_in[3][1], np.float32)

    @property
    def end(self) -> int:
        return self.start + len(self.storage)

    def copy_window(self, first: int) -> np.ndarray:
        assert first + self.window <= 0 or max(first, 0) >= self.start, "discarded samples were needed"
        out = np.zeros(self.window, np.float32)
        lo, hi = max(first, self.start), min(first + self.window, self.end)
        if lo < hi:
            out[lo - first : hi - first] = self.storage[lo - self.start : hi - self.start]
        return out

    def push(self, chunk: np.ndarray) -> list[np.ndarray]:
        self.storage = np.concatenate([self.storage, chunk.astype(np.float32)])
        frames = []
        while self.samples_needed(self.next_mel_frame) <= self.end:
            frame = self.run_next_mel_frame()
            if frame is not None:
                frames.append(frame)
        return frames

    def flush(self) -> list[np.ndarray]:
        total = self.output_frame_count(self.end)
        frames = []
        while self.emitted < total:
            frame = self.run_next_mel_frame()
            if frame is not None:
                frames.append(frame)
        self.reset()
        return frames

    def run_next_mel_frame(self) -> np.ndarray | None:
        j = self.next_mel_frame
        pcm = self.copy_window(self.window_start(j)).reshape(self.fe_in[0][1])
        mel = self.front_end(**{self.fe_in[0][0]: pcm})[self.fe_out[0]].reshape(-1)
        flat = self.mel_frames.reshape(-1)
        flat = np.concatenate([flat[len(mel) :], mel.astype(np.float32)])  # memmove + memcpy
        self.mel_frames = flat.reshape(self.st_in[0][1])
        context = self.ring[self.oldest : self.oldest + self.rows].reshape(self.st_in[1][1])  # one memcpy
        inputs = (self.mel_frames, context, self.emotion, self.previous)
        result = self.step(**{name: value for (name, _), value in zip(self.st_in, inputs, strict=True)})
        new_row = result[self.st_out[2]].reshape(-1)
        self.ring[self.oldest] = new_row
        self.ring[self.oldest + self.rows] = new_row
        self.oldest = (self.oldest + 1) % self.rows
        self.next_mel_frame = j + 1
        drop = min(max(self.window_start(self.next_mel_frame) - self.start, 0), len(self.storage))
        self.storage, self.start = self.storage[drop:], self.start + drop
        k = j - self.lookahead
        if k < 0:
            return None
        source = result[self.st_out[1] if k == 0 else self.st_out[0]].astype(np.float32)
        self.previous = source.reshape(self.st_in[3][1]).copy()
        self.emitted += 1
        return source.reshape(-1)


def irregular_chunks(total: int, replay: SwiftEngineReplay) -> list[int]:
    """Chunk sizes that end exactly on, one before and one after some frames' due points, plus odd sizes
    (1, 0, a few samples, more than a window, several frames at once)."""
    rng = np.random.default_rng(0)
    ends = {replay.samples_needed(j) + d for j in (0, 1, 7, 20, 41) for d in (-1, 0, 1)}
    ends |= set(rng.integers(1, total, 25).tolist())
    ends = [*sorted(e for e in ends if 0 < e < total), total]
    sizes, previous = [0], 0  # an empty push first
    for e in ends:
        sizes.append(e - previous)
        previous = e
    sizes.insert(5, 0)
    return sizes


def test_replay_equals_iter_bundle_blendshapes(ios_bundle: Path, tmp_path: Path) -> None:
    """~2 s of speech through the bundle's Core ML models, fed to the Swift engine's rules in irregular chunks."""
    speech, sr = sf.read(bundled_speech(), dtype="int16")
    clip = tmp_path / "clip.wav"
    sf.write(clip, speech[sr : sr + 2 * sr + 123], sr, subtype="PCM_16")  # 2 s + 123 samples (not frame-aligned)

    fps, n_frames, chunks = iter_bundle_blendshapes(clip, ios_bundle, "coreml")
    reference = np.concatenate(list(chunks))
    assert reference.shape[0] == n_frames == n_output_frames(probe(clip), fps)

    manifest, front_end, step = open_runners(ios_bundle, "coreml", None)
    # iter_bundle_blendshapes extracts emotion features from the file (the app passes the neutral vector
    # instead; A2BSEngine.setEmotion takes any vector): feed the replay the same one.
    stats = EmotionStats.from_json(manifest["emotion"]["normalization"])
    tail = read_tail(clip, EMOTION_SPAN_S)
    emotion = stats.normalize(emotion_features_at(tail, len(tail) / manifest["sample_rate"])[None])
    replay = SwiftEngineReplay(manifest, front_end, step, emotion)
    np.testing.assert_array_equal(
        [replay.center(j) for j in range(200)], frame_centers(0, 200, manifest["fps"], manifest["sample_rate"])
    )

    samples = load_audio(clip)
    frames: list[np.ndarray] = []
    fed = 0
    for size in irregular_chunks(len(samples), replay):
        frames += replay.push(samples[fed : fed + size])
        fed += size
        due = 0
        while replay.samples_needed(due) <= fed:
            due += 1
        assert replay.next_mel_frame == due, f"after {fed} samples: ran {replay.next_mel_frame} mel frames, due {due}"
        assert len(frames) == max(0, due - replay.lookahead)  # frames leave as soon as their lookahead exists
    assert fed == len(samples)
    frames += replay.flush()
    assert replay.end == 0 and replay.next_mel_frame == 0  # flush resets for the next stream

    out = np.stack(frames)
    assert out.shape == reference.shape == (n_frames, len(manifest["blendshapes"]))
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6)
    assert np.isfinite(out).all() and out.std() > 0
