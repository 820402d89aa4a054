"""Hostile bundle manifests: every path stays inside the bundle, every value in range (runtime/manifest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from audio_fixtures import bundled_speech
from entry_points import copy_bundle, edit_manifest, one_error, run

from a2bs.cli import main as core_cli
from a2bs.core.checkpoint import Checkpoint, fingerprint
from a2bs.core.controls import FaceControls
from a2bs.core.controls import manifest_section as controls_section
from a2bs.core.errors import A2BSError
from a2bs.core.files import sha256
from a2bs.core.life import PRESETS, manifest_section
from a2bs.runtime.manifest import face_controls, life_params, load_manifest, shipped_bundle, verify_file

# --- bundles: every path stays inside, every value in range --------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every bundle, with a model-looking file an attacker would point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "x.tflite").write_bytes(b"secret")
    (folder / "secret.md").write_text("secret")
    return folder


def _point_step_at(path: str):
    def edit(m):
        next(f for f in m["files"] if f["role"] == "step")["path"] = path

    return edit


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "readme_symlink"])
def test_bundle_paths_leading_outside_are_refused(
    kind: str, android_bundle: Path, tmp_path: Path, outside: Path, monkeypatch, capsys
) -> None:
    bundle = copy_bundle(android_bundle, tmp_path)
    if kind == "dotdot":
        edit_manifest(bundle, _point_step_at("../outside/x.tflite"))
    elif kind == "absolute":
        edit_manifest(bundle, _point_step_at(str(outside / "x.tflite")))
    elif kind == "symlink":
        step = next(
            f["path"] for f in json.loads((bundle / "manifest.json").read_text())["files"] if f["role"] == "step"
        )
        (bundle / step).unlink()
        (bundle / step).symlink_to(outside / "x.tflite")
    else:
        (bundle / "README.md").unlink()
        (bundle / "README.md").symlink_to(outside / "secret.md")
    with pytest.raises(A2BSError, match=r"outside|relative path"):
        load_manifest(bundle)
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", bundle, "--no-latency")
    one_error(code, err)
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        bundled_speech(),
        "-o",
        tmp_path / "o.csv",
        "--backend",
        "tflite",
        "--bundle",
        bundle,
        "--no-progress",
    )
    one_error(code, err)
    assert not (tmp_path / "o.csv").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md", "x.tflite"]
    assert (outside / "secret.md").read_text() == "secret"
    assert not (bundle / "report.json").exists()  # validate refused before writing anything


def test_mlpackage_manifest_leading_outside_is_refused(ios_bundle: Path, tmp_path: Path, outside: Path) -> None:
    bundle = copy_bundle(ios_bundle, tmp_path)
    package = next(bundle.glob("*.mlpackage"))
    inner = json.loads((package / "Manifest.json").read_text())
    first = next(iter(inner["itemInfoEntries"].values()))
    first["path"] = "../../../outside/x.tflite"
    (package / "Manifest.json").write_text(json.dumps(inner))
    with pytest.raises(A2BSError, match=r"Manifest\.json.*relative path"):
        load_manifest(bundle)
    first["path"] = "com.apple.CoreML/link"
    (package / "Manifest.json").write_text(json.dumps(inner))
    (package / "Data/com.apple.CoreML/link").symlink_to(outside / "x.tflite")
    with pytest.raises(A2BSError, match="leads outside"):
        load_manifest(bundle)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m.update(fps=10**9), "'fps'"),
        (lambda m: m.update(sample_rate=0), "'sample_rate'"),
        (lambda m: m["timeline"].update(lookahead_frames=10**9), "'timeline.lookahead_frames'"),
        (lambda m: m.update(fps="30"), "'fps'"),
        (lambda m: m.pop("files"), "'files' is missing"),
        (lambda m: m.update(files={"path": "x"}), "'files'"),
        (lambda m: m["files"][0].update(sha256=7), "'files[0].sha256'"),
        (lambda m: m.update(context_frames=-5), "'context_frames'"),
        (lambda m: m["emotion"].update(neutral=[0.0] * 3), "'emotion.neutral'"),
        (lambda m: m.update(models=[]), "'models'"),
        (lambda m: m.update(default_variant="nope"), "'default_variant'"),
    ],
)
def test_manifest_values_out_of_range_or_of_the_wrong_type(
    edit, key: str, android_bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    bundle = copy_bundle(android_bundle, tmp_path)
    edit_manifest(bundle, edit)
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        bundled_speech(),
        "-o",
        tmp_path / "o.csv",
        "--backend",
        "tflite",
        "--bundle",
        bundle,
        "--no-progress",
    )
    one_error(code, err, key, "manifest.json")


def test_manifest_that_does_not_fit_its_models(android_bundle: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """In range but not what the model takes: infer names the bundle and points at `a2bs validate`."""
    bundle = copy_bundle(android_bundle, tmp_path)
    edit_manifest(bundle, lambda m: m["models"]["step"]["inputs"][3].update(name="previous_frame"))
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        bundled_speech(),
        "-o",
        tmp_path / "o.csv",
        "--backend",
        "tflite",
        "--bundle",
        bundle,
        "--no-progress",
    )
    one_error(code, err, "do not run as its manifest says", "previous_frame", "a2bs validate")
    assert not (tmp_path / "o.csv").exists()


def test_deeply_nested_and_non_json_manifests(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    nan_fps = '{"format": "a2bs-bundle", "format_version": 1, "platform": "android", "fps": NaN}'
    for text, message in [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{nope", "not valid JSON"),
        (nan_fps, "'fps'.*NaN"),
        ("[]", "must be a JSON object"),
    ]:
        (bundle / "manifest.json").write_text(text)
        with pytest.raises(A2BSError, match=message):
            load_manifest(bundle)
    (bundle / "manifest.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(A2BSError, match="UTF-8"):
        load_manifest(bundle)


# --- the second hostile pass (issue 28): what the runtime and validate check before trusting a bundle --


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the shipped 30 fps LiteRT bundle (trained, no conversion needed) to damage."""
    return copy_bundle(shipped_bundle(30), tmp_path, "shipped")


def _step(bundle: Path) -> str:
    return next(f["path"] for f in json.loads((bundle / "manifest.json").read_text())["files"] if f["role"] == "step")


def _stamp(bundle: Path, rel: str, **entry) -> None:
    """Make the manifest agree with the damaged file (`entry`: the sha256 / bytes to record)."""
    edit_manifest(bundle, lambda m: next(f for f in m["files"] if f["path"] == rel).update(entry))


def _infer(monkeypatch, capsys, tmp_path: Path, bundle: Path, backend: str = "tflite") -> tuple[int, str, str]:
    argv = ["a2bs", "infer", bundled_speech(), "-o", tmp_path / "o.csv", "--backend", backend, "--bundle", bundle]
    return run(monkeypatch, capsys, core_cli.main, *argv, "--no-progress")


@pytest.mark.parametrize("backend", ["tflite", "coreml"])
@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "loop", "corrupt", "huge", "tampered"])
def test_a_damaged_model_file_is_one_error_line(
    kind: str, backend: str, shipped: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """infer checks each model file as `a2bs validate` does (kind, size before hash, sha256, then whether the
    runtime loads it) before running it: one line naming the file, never a traceback or a hang."""
    rel = _step(shipped)
    if backend == "coreml":  # the same files read by the Core ML side (to which any .tflite is corrupt)
        edit_manifest(shipped, lambda m: m.update(platform="ios"))
        rel = "a2bs_front_end.tflite"  # the first file it loads
    model = shipped / rel
    data = model.read_bytes()
    model.unlink()
    if kind == "folder":
        model.mkdir()
    elif kind == "fifo":
        os.mkfifo(model)
    elif kind == "loop":
        model.symlink_to(model.name)
    elif kind == "corrupt":  # the manifest agrees with the damaged bytes: only the runtime can tell
        model.write_bytes(bytes(b ^ 0x5A for b in data))
        _stamp(shipped, rel, sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    elif kind == "huge":  # 30 GB on disk (sparse), and the manifest says so
        model.write_bytes(data)
        os.truncate(model, 30 * 10**9)
        _stamp(shipped, rel, bytes=30 * 10**9)
    elif kind == "tampered":  # one byte changed, same size: the sha256 is the only witness
        model.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    started = time.perf_counter()
    code, _, err = _infer(monkeypatch, capsys, tmp_path, shipped, backend)
    words = {"corrupt": ["cannot load"], "huge": ["10 MB", "not hashed"], "tampered": ["sha256"]}.get(kind, [])
    one_error(code, err, rel, *words)
    assert time.perf_counter() - started < 60 and not (tmp_path / "o.csv").exists()


def test_validate_checks_sizes_before_hashing_and_never_blocks(shipped: Path) -> None:
    """A 30 GB model file (sparse) is a failing check at once, not minutes of hashing; a FIFO front end is a
    failing check, not a blocked read."""
    from a2bs.mobile_validation.validate import validate_bundle

    rel = _step(shipped)
    os.truncate(shipped / rel, 30 * 10**9)
    (shipped / "a2bs_front_end.tflite").unlink()
    os.mkfifo(shipped / "a2bs_front_end.tflite")
    stages: list[tuple[float, str]] = []
    report = validate_bundle(shipped, latency=False, progress=lambda s: stages.append((time.perf_counter(), s)))
    integrity = {c.artifact: c for c in report.checks if c.kind == "integrity"}
    assert "not hashed" in integrity[rel].reason and "30,000,000,000 bytes" in integrity[rel].reason
    assert "not a regular file" in integrity["a2bs_front_end.tflite"].reason
    (size,) = [c for c in report.checks if c.kind == "size" and c.artifact == rel]
    assert not size.passed and size.value == 30_000 and not report.passed
    assert stages[1][0] - stages[0][0] < 10, stages  # integrity took seconds (hashing 30 GB takes ~2 minutes)


def _validate(monkeypatch, capsys, bundle: Path, *extra: str | Path) -> tuple[int, str, str]:
    return run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", bundle, "--no-latency", *extra)


def test_a_bundle_name_too_long_for_the_system_is_one_error_line(tmp_path: Path, monkeypatch, capsys) -> None:
    bundle = tmp_path / ("b" * 300)
    one_error(*_infer(monkeypatch, capsys, tmp_path, bundle)[::2], "b" * 100)
    one_error(*_validate(monkeypatch, capsys, bundle)[::2], "b" * 100)


def test_validate_never_loads_a_checkpoint_the_manifest_names(
    shipped: Path, checkpoint_dirs: dict[int, Path], ckpt30: Checkpoint, monkeypatch, capsys
) -> None:
    """The reference comes from --checkpoint or the shipped defaults matched by fingerprint, never from the
    untrusted `checkpoint.source`; a bundle without a reference is a failing check, not an abort."""
    import a2bs.mobile_validation.validate as validate_module

    loaded: list[str] = []
    real = validate_module.load_checkpoint
    monkeypatch.setattr(validate_module, "load_checkpoint", lambda p: loaded.append(str(p)) or real(p))
    for source in ("/etc", str(checkpoint_dirs[30])):  # the second one would even have matched the fingerprint
        edit_manifest(shipped, lambda m, s=source: m["checkpoint"].update(source=s, fingerprint=fingerprint(ckpt30)))
        code, out, err = _validate(monkeypatch, capsys, shipped)
        assert code == 1 and "Traceback" not in err and "no checkpoint matches" in out, (out, err)
        assert source not in loaded and not any(p.startswith("/etc") for p in loaded)
    # the user's word is taken: the same checkpoint through --checkpoint is the reference
    code, out, err = _validate(monkeypatch, capsys, shipped, "--checkpoint", checkpoint_dirs[30])
    assert str(checkpoint_dirs[30]) in loaded and "no checkpoint matches" not in out, out


def test_validate_on_a_read_only_bundle_is_one_error_line(shipped: Path, monkeypatch, capsys) -> None:
    if os.geteuid() == 0:  # root ignores file modes: make the folder immutable instead
        if subprocess.run(["chattr", "+i", shipped], capture_output=True).returncode != 0:
            pytest.skip("root without chattr +i (CAP_LINUX_IMMUTABLE) cannot make a read-only folder")
        restore = ["chattr", "-i", shipped]
    else:
        shipped.chmod(0o555)
        restore = ["chmod", "755", shipped]
    try:
        code, _, err = _validate(monkeypatch, capsys, shipped)
    finally:
        subprocess.run(restore, check=True)
    one_error(code, err, str(shipped), "writable copy")


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m.update(blendshapes=["jawOpen"] * 52), "'blendshapes'"),
        (lambda m: m["blendshapes"].reverse(), "'blendshapes'"),
        (lambda m: m["blendshape_groups"]["jaw"].pop(), "'blendshape_groups'"),
        (lambda m: m["blendshape_groups"]["jaw"].append("eyeBlinkLeft"), "'blendshape_groups'"),
        (lambda m: m["blendshape_groups"].update(jaw="jawOpen"), "'blendshape_groups.jaw'"),
        (lambda m: m.update(blendshape_groups=[]), "'blendshape_groups'"),
        (lambda m: m["timeline"].update(latency_ms=5.0), "'timeline.latency_ms'"),
        (lambda m: m["timeline"].pop("latency_ms"), "'timeline.latency_ms' is missing"),
        (lambda m: m["timeline"].update(latency_ms="98.7"), "'timeline.latency_ms'"),
        (lambda m: m.pop("variants"), "'variants' is missing"),
        (lambda m: m.update(variants=["fp32"]), "'variants' must include the default variant"),
        (lambda m: m.update(variants=["fp16", "fp16"]), "'variants'"),
        (lambda m: m.update(variants=["fp16", 7]), "'variants'"),
        (lambda m: m["emotion"]["normalization"].update(clip="x"), "'emotion.normalization.clip'"),
        (lambda m: m["models"].pop("offline"), "'models' does not describe it"),
        (lambda m: m["models"]["offline"]["inputs"].pop(), "'models.offline.inputs'"),
        (lambda m: _offline_entry(m).update(variant="fp32"), "one offline model per variant"),
        (lambda m: m["files"].append(dict(_offline_entry(m))), "one offline model per variant"),
    ],
)
def test_what_the_apps_read_is_checked(edit, key: str, shipped: Path, monkeypatch, capsys) -> None:
    """The names, groups, latency and variants the sample engines read are checked like every other key."""
    edit_manifest(shipped, edit)
    with pytest.raises(A2BSError, match=re.escape(key)):
        load_manifest(shipped)
    code, _, err = _validate(monkeypatch, capsys, shipped)
    one_error(code, err, key, "manifest.json")


def _with_life(m: dict) -> None:
    m["life"] = manifest_section(PRESETS["natural"])


def test_a_manifest_without_life_loads_with_the_layer_off(shipped: Path) -> None:
    """Bundles made before the life layer load, with the layer off; with the section (the shipped bundles have
    it) the apps get its parameters back exactly."""
    assert life_params(load_manifest(shipped)) == PRESETS["natural"]
    edit_manifest(shipped, lambda m: m.pop("life"))  # as a bundle from before the layer
    manifest = load_manifest(shipped)
    assert "life" not in manifest and life_params(manifest) is None
    edit_manifest(shipped, _with_life)
    assert life_params(load_manifest(shipped)) == PRESETS["natural"]
    edit_manifest(shipped, lambda m: m["life"].update(params=PRESETS["subtle"].to_json()))
    assert life_params(load_manifest(shipped)) == PRESETS["subtle"]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m["life"]["params"].update(amount=1.5), "'life.params.amount' must be a number in [0, 1]"),
        (lambda m: m["life"]["params"].update(blink_rate_speaking="20"), "'life.params.blink_rate_speaking'"),
        (lambda m: m["life"]["params"].update(blink_rate_pause=-1), "'life.params.blink_rate_pause'"),
        (lambda m: m["life"]["params"].update(nod_probability=True), "'life.params.nod_probability'"),
        (
            lambda m: m["life"]["params"].update(blink_close_s=[0.09, 0.06]),
            "'life.params.blink_close_s' must be [lo, hi]",
        ),
        (lambda m: m["life"]["params"].update(blink_close_s=[0.06]), "'life.params.blink_close_s' must be a list of 2"),
        (lambda m: m["life"]["params"].update(avert_deg=[5, 90]), "'life.params.avert_deg'"),
        (lambda m: m["life"]["params"].pop("nod_deg"), "'life.params.nod_deg' is missing"),
        (lambda m: m["life"]["params"].update(wiggle=1), "'life.params.wiggle' is not a life-layer parameter"),
        (lambda m: m["life"].update(version=2), "'life.version' must be an integer in [1, 1]"),
        (lambda m: m["life"].update(rng="mt19937"), "'life.rng' must be one of splitmix64"),
        (lambda m: m["life"].pop("params"), "'life.params' is missing"),
        (lambda m: m.update(life=[]), "'life' must be a JSON object"),
    ],
)
def test_life_values_out_of_range_or_of_the_wrong_type(edit, key: str, shipped: Path, monkeypatch, capsys) -> None:
    """The life layer's parameters are checked like every key the apps read: one line naming the key."""

    def both(m: dict) -> None:
        _with_life(m)
        edit(m)

    edit_manifest(shipped, both)
    with pytest.raises(A2BSError, match=re.escape(key)):
        load_manifest(shipped)
    code, _, err = _validate(monkeypatch, capsys, shipped)
    one_error(code, err, key, "manifest.json")


def test_a_manifest_without_controls_loads_with_the_defaults(shipped: Path) -> None:
    """Bundles made before the face controls load with the defaults (the model's frames as they are); a
    section's values come back exactly."""
    assert face_controls(load_manifest(shipped)) == FaceControls()
    edit_manifest(shipped, lambda m: m.pop("controls", None))
    manifest = load_manifest(shipped)
    assert "controls" not in manifest and face_controls(manifest) == FaceControls()
    tuned = FaceControls(lower_strength=1.2, lip_offset=-0.05, upper_smoothing_s=0.1)
    edit_manifest(shipped, lambda m: m.update(controls=controls_section(tuned)))
    assert face_controls(load_manifest(shipped)) == tuned


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (
            lambda c: c["params"].update(lower_strength=2.5),
            "'controls.params.lower_strength' must be a number in [0, 2]",
        ),
        (lambda c: c["params"].update(lip_offset=-1), "'controls.params.lip_offset' must be a number in [-0.3, 0.3]"),
        (lambda c: c["params"].update(upper_smoothing_s="0.1"), "'controls.params.upper_smoothing_s'"),
        (lambda c: c["params"].update(expression_strength=None), "'controls.params.expression_strength'"),
        (lambda c: c["params"].pop("upper_strength"), "'controls.params.upper_strength' is missing"),
        (lambda c: c["params"].update(gain=1), "'controls.params.gain' is not a face control"),
        (lambda c: c.update(version=2), "'controls.version' must be an integer in [1, 1]"),
        (lambda c: c.pop("params"), "'controls.params' is missing"),
    ],
)
def test_control_values_out_of_range_or_of_the_wrong_type(edit, key: str, shipped: Path, monkeypatch, capsys) -> None:
    """The face controls are checked like every key the apps read: one line naming the key."""

    def both(m: dict) -> None:
        m["controls"] = controls_section(FaceControls())
        edit(m["controls"])

    edit_manifest(shipped, both)
    with pytest.raises(A2BSError, match=re.escape(key)):
        load_manifest(shipped)
    code, _, err = _validate(monkeypatch, capsys, shipped)
    one_error(code, err, key, "manifest.json")


def _offline_entry(m: dict) -> dict:
    return next(f for f in m["files"] if f["role"] == "offline")


@pytest.mark.parametrize("kind", ["corrupt", "tampered"])
def test_a_damaged_offline_model_is_one_error_line(kind: str, shipped: Path, tmp_path: Path, monkeypatch, capsys):
    """`a2bs infer` runs the offline model by default: it is checked like the step before it runs."""
    rel = _offline_entry(json.loads((shipped / "manifest.json").read_text()))["path"]
    model = shipped / rel
    data = model.read_bytes()
    if kind == "corrupt":
        model.write_bytes(bytes(b ^ 0x5A for b in data))
        _stamp(shipped, rel, sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    else:
        model.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    code, _, err = _infer(monkeypatch, capsys, tmp_path, shipped)
    one_error(code, err, rel, "cannot load" if kind == "corrupt" else "sha256")
    assert not (tmp_path / "o.csv").exists()


def _repeat_fps(bundle: Path) -> None:
    """A second "fps" key after the first, as a text edit would leave it (json.dumps cannot write one)."""
    path = bundle / "manifest.json"
    path.write_text(path.read_text().replace('"fps": 30,', '"fps": 30, "fps": 60,', 1))


def _say_60fps(m: dict) -> None:
    m.update(fps=60)
    m["timeline"].update(latency_ms=65.3)  # what 2 frames of look-ahead are at 60 fps


def _claim_60fps(m: dict) -> None:
    """Every fps-dependent number of the manifest rewritten for 60 fps; the models stay 30 fps ones."""
    m.update(fps=60, context_frames=512)
    m["timeline"].update(lookahead_frames=4, latency_ms=98.7)
    m["initial_state"]["mel_frames"] = m["initial_state"]["mel_frames"][:1] * 2 + m["initial_state"]["mel_frames"]
    m["models"]["step"]["inputs"][0]["shape"] = [1, 5, 80]
    m["models"]["step"]["inputs"][1]["shape"] = [1, 511, 512]


@pytest.mark.parametrize(
    ("lie", "words"),
    [
        (_repeat_fps, ["'fps' appears twice"]),
        (lambda b: edit_manifest(b, _say_60fps), ["'fps' 60 does not fit the models"]),
        (lambda b: edit_manifest(b, _claim_60fps), ["do not run as its manifest says", "(1, 3, 80)"]),
    ],
)
def test_the_fps_is_the_models_not_the_manifests_word(
    lie, words: list[str], shipped: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A 30 fps bundle whose manifest says 60 (a repeated key, an edit, or every number rewritten) never
    animates at 60 fps: infer refuses it in one line."""
    lie(shipped)
    code, _, err = _infer(monkeypatch, capsys, tmp_path, shipped)
    one_error(code, err, *words)
    assert not (tmp_path / "o.csv").exists()


def test_a_fifo_inside_a_core_ml_package_is_not_read(tmp_path: Path) -> None:
    """Hashing skips what is not a regular file, so a FIFO inside a package could keep its recorded sha256
    and then block the Core ML reader: the integrity check refuses it first."""
    package = tmp_path / "a2bs_step_fp16.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "model.mlmodel").write_bytes(b"spec")
    entry = {"path": package.name, "bytes": 4, "sha256": sha256(package)}
    assert verify_file(tmp_path, entry).problem == ""
    os.mkfifo(package / "Data" / "weight.bin")
    assert "Data/weight.bin is not a regular file" in verify_file(tmp_path, entry).problem
