"""`a2bs-convert --install-into`: the bundle lands only where the sample says, inside the sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from entry_points import one_error, run, sample_app

from a2bs.cli import convert as convert_cli

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
