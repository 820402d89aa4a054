"""Hostile bundle manifests: every path stays inside the bundle, every value in range (runtime/manifest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_fixtures import bundled_speech
from entry_points import copy_bundle, edit_manifest, one_error, run

from a2bs.cli import main as core_cli
from a2bs.core.errors import A2BSError
from a2bs.runtime.manifest import load_manifest

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
    edit_manifest(bundle, lambda m: m.update(context_frames=128))
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
    one_error(code, err, "do not run as its manifest says", "a2bs validate")
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
