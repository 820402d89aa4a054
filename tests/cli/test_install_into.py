"""`a2bs-convert --install-into`: the bundle lands only where the sample says, inside the sample."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from entry_points import hidden, one_error, run, sample_app

from a2bs.cli import convert as convert_cli
from a2bs.convert.bundle import check_out_dir, rejected_dir
from a2bs.core import files
from a2bs.core.errors import A2BSError
from a2bs.core.files import OutputLock, replace_dir, staging_dir
from a2bs.runtime.manifest import shipped_bundle

# --- sample apps: --install-into stays inside the sample -----------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bundle_dir": "../../victim"}, "'bundle_dir' must be a relative path"),
        ({"bundle_dir": "/tmp/victim"}, "'bundle_dir' must be a relative path"),
        ({"bundle_dir": "link/a2bs"}, "leads outside the sample"),
        ({"bundle_dir": "assets", "clip": "../../victim/file.wav"}, "'clip' must be a plain .wav file name"),
        ({"bundle_dir": "assets", "clip": "/tmp/x.wav"}, "'clip'"),
        ({"bundle_dir": 5}, "'bundle_dir' must be a non-empty string"),
        ({}, "'bundle_dir' is missing"),
        ({"bundle_dir": "."}, "'bundle_dir'"),
    ],
)
def test_install_into_refuses_paths_leading_outside_thesample_app(
    spec: dict, message: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file.wav").write_text("keep")
    sample = sample_app(tmp_path, **spec)
    (sample / "link").symlink_to(victim)
    code, _, err = run(
        monkeypatch,
        capsys,
        convert_cli.main,
        "a2bs-convert",
        "android",
        "--out",
        tmp_path / "b",
        "--force",
        "--install-into",
        sample,
    )
    one_error(code, err, message)
    assert (victim / "file.wav").read_text() == "keep" and not (tmp_path / "b").exists()


def test_sample_config_that_is_not_an_object(tmp_path: Path, monkeypatch, capsys) -> None:
    sample = tmp_path / "android_sample"
    sample.mkdir()
    for text in ["[1, 2]", "{bad json", "[" * 50_000]:
        (sample / "a2bs-sample.json").write_text(text)
        code, _, err = run(
            monkeypatch,
            capsys,
            convert_cli.main,
            "a2bs-convert",
            "android",
            "--out",
            tmp_path / "b",
            "--install-into",
            sample,
        )
        one_error(code, err, "a2bs-sample.json")


def test_no_validate_never_installs(tmp_path: Path, monkeypatch, capsys) -> None:
    sample = sample_app(tmp_path, bundle_dir="assets")
    code, _, err = run(
        monkeypatch,
        capsys,
        convert_cli.main,
        "a2bs-convert",
        "android",
        "--out",
        tmp_path / "b",
        "--no-validate",
        "--install-into",
        sample,
    )
    one_error(code, err, "--no-validate")
    assert not (tmp_path / "b").exists() and not (sample / "assets").exists()


# --- --force replaces only what a2bs made; everything is refused before any work -------------------


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before any work: loading the checkpoint (the first slow step) fails the test."""

    def started(*args, **kwargs):
        raise AssertionError("the conversion started: the refusal came too late")

    monkeypatch.setattr(convert_cli, "load_model", started)


def _convert(monkeypatch, capsys, *args: str | Path) -> tuple[int, str, str]:
    return run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", *args)


def test_force_never_replaces_a_folder_that_is_not_a_bundle(tmp_path: Path, monkeypatch, capsys, no_work) -> None:
    """Issue 28 item 2: `--out precious --force` replaced a folder of the user's."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("d")
    code, _, err = _convert(monkeypatch, capsys, "--out", precious, "--force", "--no-validate")
    one_error(code, err, str(precious), "not a bundle a2bs made", "thesis.txt", ".a2bs-bundle")
    assert os.listdir(precious) == ["thesis.txt"] and (precious / "thesis.txt").read_text() == "d"
    assert hidden(tmp_path) == []


def test_install_into_force_never_replaces_the_sample_sources(tmp_path: Path, monkeypatch, capsys, no_work) -> None:
    """Issue 28 item 1: a `bundle_dir` of "engine" had the Kotlin engine sources replaced by the bundle."""
    sample = sample_app(tmp_path, bundle_dir="engine")
    (sample / "engine").mkdir()
    (sample / "engine" / "Engine.kt").write_text("class Engine")
    code, _, err = _convert(monkeypatch, capsys, "--out", tmp_path / "b", "--force", "--install-into", sample)
    one_error(code, err, "engine", "not a bundle a2bs made", "Engine.kt", "fix 'bundle_dir'")
    assert (sample / "engine" / "Engine.kt").read_text() == "class Engine" and not (tmp_path / "b").exists()


def test_sample_config_linked_from_outside_is_not_followed(tmp_path: Path, monkeypatch, capsys, no_work) -> None:
    """Issue 28 item 5: an a2bs-sample.json that is a symlink to a file outside the sample was read."""
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"platform": "android", "bundle_dir": "assets"}))
    sample = tmp_path / "android_sample"
    sample.mkdir()
    (sample / "a2bs-sample.json").symlink_to(outside)
    code, _, err = _convert(monkeypatch, capsys, "--out", tmp_path / "b", "--install-into", sample)
    one_error(code, err, "a2bs-sample.json", "leads outside the sample")
    assert not (tmp_path / "b").exists() and not (sample / "assets").exists()


@pytest.mark.parametrize("out", [".", "/", "..", "x" * 256, "README.md/b"])
def test_out_that_cannot_be_a_bundle_folder(out: str, tmp_path: Path, monkeypatch, capsys, no_work) -> None:
    """Issue 28 item 12 (`--out .`, `/`, `..` gave tracebacks, `..` after a conversion) and 13 (a path
    through a file, a name longer than NAME_MAX): one line, before any work, nothing written."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "README.md").write_text("keep")
    monkeypatch.chdir(work)
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(work))
    code, _, err = _convert(monkeypatch, capsys, "--out", out, "--force", "--no-validate")
    one_error(code, err)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work))) == before


def test_bundle_dir_through_a_file_is_refused_before_any_work(tmp_path: Path, monkeypatch, capsys, no_work) -> None:
    """Issue 28 item 13: `bundle_dir` "README.md/a2bs" was refused only after the conversion, --out written."""
    sample = sample_app(tmp_path, bundle_dir="README.md/a2bs")
    (sample / "README.md").write_text("keep")
    code, _, err = _convert(monkeypatch, capsys, "--out", tmp_path / "b", "--force", "--install-into", sample)
    one_error(code, err, "README.md is not a folder", "fix 'bundle_dir'")
    assert (sample / "README.md").read_text() == "keep" and not (tmp_path / "b").exists()


def test_long_bundle_dir_gets_its_staging_folder_and_lock(tmp_path: Path) -> None:
    """Issue 28 items 13 and 24: a legal 250-character `bundle_dir` failed after the conversion, because the
    staging folder and the lock beside it add ~10 characters to the name."""
    sample = sample_app(tmp_path, bundle_dir="a" * 250)
    target, _ = convert_cli.install_target(sample, "android", force=False)
    with OutputLock(target):
        staged = staging_dir(target)
        (staged / "manifest.json").write_text("{}")
        replace_dir(staged, target)
    assert sorted(os.listdir(sample)) == sorted(["a" * 250, "a2bs-sample.json"])  # no staging folder, no lock
    assert (target / "manifest.json").read_text() == "{}"


def test_install_replaces_only_what_it_installed(tmp_path: Path) -> None:
    """An installed bundle carries the marker, so --force replaces it; a folder that appeared at `bundle_dir`
    after the first check (user files, no marker) is still never replaced."""
    bundle = shipped_bundle(30)
    sample = sample_app(tmp_path, bundle_dir="app/assets/a2bs")
    target, clip = convert_cli.install_target(sample, "android", force=False)
    convert_cli.install_bundle(bundle, target, clip)
    assert (target / files.MARKER).is_file() and (target / "manifest.json").is_file() and (target / clip).is_file()
    with pytest.raises(A2BSError, match="already holds a bundle: pass --force"):
        convert_cli.install_target(sample, "android", force=False)
    (target / "stale.txt").write_text("from the first install")
    convert_cli.install_bundle(bundle, *convert_cli.install_target(sample, "android", force=True), force=True)
    assert not (target / "stale.txt").exists() and (target / files.MARKER).is_file()
    assert hidden(target.parent) == []  # no staging folder, no lock
    (target / files.MARKER).unlink()
    (target / "manifest.json").write_text("{}")  # now neither marked nor an a2bs bundle: someone else's folder
    with pytest.raises(A2BSError, match="not a bundle a2bs made"):
        convert_cli.install_bundle(bundle, target, clip, force=True)
    assert (target / "manifest.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("make", "replaceable"),
    [
        (lambda d: files.mark_as_made(d), True),
        (lambda d: shutil.copytree(shipped_bundle(30), d, dirs_exist_ok=True), True),  # built before the marker
        (lambda d: None, True),  # an empty folder: nothing to lose
        (lambda d: (d / "thesis.txt").write_text("d"), False),
        (lambda d: (d / files.MARKER).write_text("made by hand"), False),  # not the marker a2bs writes
        (lambda d: (d / files.MARKER).symlink_to(d.parent / "marked" / files.MARKER), False),  # a link to a real marker
        (lambda d: (d / "manifest.json").write_text('{"format": "a2bs-bundle"}'), False),  # not a loadable manifest
    ],
)
def test_force_replaces_marked_and_old_bundles_only(make, replaceable: bool, tmp_path: Path) -> None:
    """The one rule (core/files.py: check_output_dir): a folder is replaced only with --force, and only when
    a2bs made it: its marker, or (bundles built before the marker) a manifest that loads as an a2bs bundle."""
    (tmp_path / "marked").mkdir()
    files.mark_as_made(tmp_path / "marked")
    folder = tmp_path / "out"
    folder.mkdir()
    make(folder)
    contents = sorted(os.listdir(folder))
    if replaceable:
        check_out_dir(folder, force=True)
        if contents:
            with pytest.raises(A2BSError, match="pass --force"):
                check_out_dir(folder, force=False)
    else:
        for force in (True, False):
            with pytest.raises(A2BSError, match=f"not a bundle a2bs made .no {files.MARKER} marker; it holds"):
                check_out_dir(folder, force=force)
    assert sorted(os.listdir(folder)) == contents


def test_out_rejected_that_is_not_a_bundle_is_refused_before_any_work(
    tmp_path: Path, monkeypatch, capsys, no_work
) -> None:
    """A bundle that fails validation replaces OUT.rejected: it replaced any folder there, even without --force
    and after the whole conversion; now only an earlier rejected bundle, and a folder of the user's is refused
    at once."""
    out = tmp_path / "android"
    notes = rejected_dir(out)
    notes.mkdir()
    (notes / "notes.txt").write_text("keep")
    code, _, err = _convert(monkeypatch, capsys, "--out", out)
    one_error(code, err, str(notes), "not a bundle a2bs made", "notes.txt")
    assert os.listdir(notes) == ["notes.txt"] and not out.exists() and hidden(tmp_path) == []
