"""Property-based fuzzing (hypothesis) of every untrusted file a2bs reads: bundle manifests (and the
Core ML package manifest inside an .mlpackage), sample configs (a2bs-sample.json), checkpoint configs
(config.json) and phone files (<take>.phones.json, through `a2bs.corpus.dataset.load_take`).

Each case starts from a real, valid file and mutates it (values replaced by random JSON, by values
chosen to be hostile, e.g. `../..` paths, huge or negative numbers, or deleted), or is raw random text.
Properties: the loader returns a value that is safe to use or raises the one-line error of its kind;
never another exception (a traceback for the user), never a hang (hypothesis `deadline`), and nothing
outside the test's temporary folder is touched (a sentinel folder beside it keeps its exact state).
Runs are derandomized (the same cases on every CI run) and stay under a minute in total.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from audio_fixtures import write_tone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2bs.cli.convert import install_target
from a2bs.core.checkpoint import CONFIG_FILE, Checkpoint, load_checkpoint
from a2bs.core.errors import A2BSError, CheckpointError
from a2bs.runtime.manifest import bundle_file, load_manifest

FUZZ = settings(
    deadline=timedelta(seconds=5),  # a hang (e.g. fps 10^9) fails the example instead of stalling CI
    derandomize=True,
    database=None,  # writes nothing into the repository
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],  # the sentinel check runs once per test
)

HOSTILE = st.sampled_from(
    [
        0,
        -1,
        1,
        2,
        3,
        7,
        255,
        10**9,
        -(10**9),
        2**63,
        10**400 // 10**300,
        0.5,
        -0.0,
        1e308,
        1e-300,
        "",
        ".",
        "..",
        "../..",
        "../outside/x.tflite",
        "/etc/passwd",
        "a/../../b",
        "x\\..\\y",
        "\x00",
        "link/x",
        "android",
        "ios",
        "fp32",
        "dynamic_int8",
        "front_end",
        "step",
        None,
        True,
        False,
        [],
        {},
        [[]],
        {"": {}},
    ]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
VALUES = HOSTILE | JSON


def mutate(data: st.DataObject, document: Any) -> Any:
    """1-3 random edits of a JSON document: walk down to a random node, then replace or delete it."""
    doc = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        parent, key, node = None, None, doc
        while isinstance(node, dict | list) and node and data.draw(st.booleans()):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, data.draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            doc = copy.deepcopy(data.draw(VALUES, label="root"))  # HOSTILE's [] and {} are shared objects
        elif data.draw(st.booleans(), label="delete"):
            del parent[key]
        else:
            parent[key] = copy.deepcopy(data.draw(VALUES, label="value"))
    return doc


PATH_PARTS = st.lists(
    st.sampled_from(["..", ".", "a", "link", "", "outside", "victim", "~", "x.wav", "x.tflite"]), max_size=5
)
PATH_LIKE = PATH_PARTS.map("/".join) | PATH_PARTS.map(lambda p: "/" + "/".join(p))  # relative and absolute


def raw_text() -> st.SearchStrategy[str]:
    """Random text, JSON-looking text and deeply nested JSON."""
    depth = st.integers(1, 200_000)
    return st.text(max_size=200) | depth.map(lambda n: "[" * n + "]" * n) | depth.map(lambda n: '{"a":' * n)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A work folder and, beside it, an `outside` folder the fuzzed files point at (must stay untouched)."""
    root = tmp_path_factory.mktemp("fuzz")
    outside = root / "outside"
    outside.mkdir()
    (outside / "x.tflite").write_bytes(b"outside model")
    (outside / "victim").mkdir()
    (outside / "victim" / "keep.wav").write_bytes(b"keep")
    work = root / "work"
    work.mkdir()
    (work / "link").symlink_to(outside)  # a symlink leading out, for paths like link/x
    return {"root": root, "work": work, "outside": outside}


@pytest.fixture(autouse=True)
def nothing_outside_is_touched(arena: dict[str, Path]):
    before = snapshot(arena["outside"])
    yield
    assert snapshot(arena["outside"]) == before


def one_line(exc: Exception) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


# --- bundle manifests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_bundle(android_bundle: Path, arena: dict[str, Path]) -> tuple[Path, dict[str, Any]]:
    bundle = arena["work"] / "bundle"
    shutil.copytree(android_bundle, bundle)
    (bundle / "link").symlink_to(arena["outside"])  # a symlink leading out of the bundle
    return bundle, json.loads((android_bundle / "manifest.json").read_text())


def _check_manifest(bundle: Path) -> None:
    try:
        manifest = load_manifest(bundle)
    except A2BSError as exc:
        one_line(exc)
        return
    root = bundle.resolve()
    for entry in manifest["files"]:  # whatever loads is safe to use: files inside, a default step model
        assert (bundle / entry["path"]).resolve().is_relative_to(root)
    assert bundle_file(manifest, "step", None)["role"] == "step"
    assert manifest["fps"] in (30, 60) and manifest["sample_rate"] == 16000


@settings(FUZZ, max_examples=1200)
@given(data=st.data())
def test_fuzz_manifest(fuzz_bundle: tuple[Path, dict[str, Any]], data: st.DataObject) -> None:
    bundle, valid = fuzz_bundle
    manifest = copy.deepcopy(valid)
    if data.draw(st.booleans(), label="hostile path"):  # aim at the paths: the containment check
        manifest["files"][data.draw(st.sampled_from([0, 1]))]["path"] = data.draw(PATH_LIKE, label="path")
    if data.draw(st.booleans(), label="mutate"):
        manifest = mutate(data, manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _check_manifest(bundle)


@settings(FUZZ, max_examples=300)
@given(text=raw_text())
def test_fuzz_manifest_raw_text(fuzz_bundle: tuple[Path, dict[str, Any]], text: str) -> None:
    bundle, _ = fuzz_bundle
    (bundle / "manifest.json").write_text(text)
    _check_manifest(bundle)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzz_mlpackage_manifest(ios_bundle: Path, arena: dict[str, Path], data: st.DataObject) -> None:
    bundle = arena["work"] / "ios"
    if not bundle.exists():
        shutil.copytree(ios_bundle, bundle)
    package = bundle / "a2bs_front_end.mlpackage"
    original = json.loads((ios_bundle / "a2bs_front_end.mlpackage" / "Manifest.json").read_text())
    if data.draw(st.booleans(), label="hostile path"):
        next(iter(original["itemInfoEntries"].values()))["path"] = data.draw(PATH_LIKE, label="path")
    else:
        original = mutate(data, original)
    (package / "Manifest.json").write_text(json.dumps(original))
    _check_manifest(bundle)


# --- sample configs ---------------------------------------------------------------------------------


@pytest.mark.slow
@settings(FUZZ, max_examples=800)
@given(data=st.data())
def test_fuzz_sample_config(arena: dict[str, Path], data: st.DataObject) -> None:
    sample = arena["work"] / "sample"
    sample.mkdir(exist_ok=True)
    if not (sample / "link").exists():
        (sample / "link").symlink_to(arena["outside"])
    spec = {"platform": "android", "bundle_dir": "app/assets/a2bs", "clip": "sample_clip.wav"}
    for key in spec:
        spec[key] = data.draw(PATH_LIKE | VALUES | st.just(spec[key]), label=key)
    spec = mutate(data, spec) if data.draw(st.booleans(), label="mutate") else spec
    (sample / "a2bs-sample.json").write_text(json.dumps(spec))
    try:
        target, clip = install_target(sample, "android", force=data.draw(st.booleans(), label="force"))
    except A2BSError as exc:
        one_line(exc)
        return
    root = sample.resolve()
    assert target.resolve().is_relative_to(root) and target.resolve() != root
    assert (target / clip).resolve().parent == target.resolve()


# --- checkpoint configs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_checkpoint(checkpoint_dirs: dict[int, Path], arena: dict[str, Path]) -> tuple[Path, dict[str, Any]]:
    folder = arena["work"] / "checkpoint"
    shutil.copytree(checkpoint_dirs[30], folder)
    return folder, json.loads((folder / CONFIG_FILE).read_text())


@settings(FUZZ, max_examples=400, deadline=timedelta(seconds=10))
@given(data=st.data())
def test_fuzz_checkpoint_config(fuzz_checkpoint: tuple[Path, dict[str, Any]], data: st.DataObject) -> None:
    folder, valid = fuzz_checkpoint
    # half of the edits aim at the architecture, where a bad value could allocate or crash
    target = data.draw(st.sampled_from(["model", "all"]), label="target")
    config = copy.deepcopy(valid)
    if target == "model":
        config["model"] = mutate(data, config["model"])
    else:
        config = mutate(data, config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    try:
        ckpt = load_checkpoint(folder)
    except CheckpointError as exc:
        one_line(exc)
        return
    assert isinstance(ckpt, Checkpoint) and ckpt.model.config.d_model == valid["model"]["d_model"]


@settings(FUZZ, max_examples=200)
@given(text=raw_text())
def test_fuzz_checkpoint_config_raw_text(fuzz_checkpoint: tuple[Path, dict[str, Any]], text: str) -> None:
    folder, _ = fuzz_checkpoint
    (folder / CONFIG_FILE).write_text(text)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder)
    one_line(info.value)


# --- phone files (parsed by corpus/dataset.py, tested through its public load_take) ------------------


@pytest.fixture(scope="module")
def take(arena: dict[str, Path]) -> tuple[Path, Path]:
    """A valid 1 s take at 30 fps: audio and a Live Link Face CSV."""
    from a2bs.core.animation_io import open_writer

    folder = arena["work"] / "take"
    folder.mkdir()
    audio = write_tone(folder, "t.wav", seconds=1.0)
    csv = folder / "t.csv"
    with open_writer(csv, fps=30, n_frames=30) as writer:
        writer.write([[0.5] * 52] * 30)
    return audio, csv


PHONES = st.lists(st.tuples(st.sampled_from(["aa", "p", "sil", ""]), st.floats(-1, 2), st.floats(-1, 2)), max_size=6)


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_fuzz_phone_file(take: tuple[Path, Path], data: st.DataObject) -> None:
    from a2bs.corpus.dataset import load_take

    audio, csv = take
    valid = {"phones": [list(p) for p in data.draw(PHONES, label="phones")]}
    kind = data.draw(st.sampled_from(["valid", "mutated", "raw"]), label="kind")
    if kind == "raw":
        text = data.draw(raw_text(), label="text")
    else:
        text = json.dumps(valid if kind == "valid" else mutate(data, valid))
    csv.with_suffix(".phones.json").write_text(text)
    try:
        loaded = load_take("t", audio, csv, 30)
    except A2BSError as exc:
        one_line(exc)
        return
    assert loaded.phones is None or all(s <= e for _, s, e in loaded.phones)


def test_fuzz_arena_is_where_the_files_went(arena: dict[str, Path]) -> None:
    """The sentinel check can fail: touching the outside folder changes its snapshot."""
    before = snapshot(arena["outside"])
    victim = arena["outside"] / "victim" / "keep.wav"
    os.utime(victim, ns=(0, 0))
    assert snapshot(arena["outside"]) != before
    os.utime(victim, ns=(before[str(victim)][1], before[str(victim)][1]))
    assert snapshot(arena["outside"]) == before
