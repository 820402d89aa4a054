"""Helpers for tests that drive the console entry points in-process and poke at bundles: the exit code and
output of a command, its one `error:` line, a bundle copy with an edited manifest."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
FRAME = np.full((1, 52), 0.5, np.float32)


def run(monkeypatch, capsys, main, *argv: str | Path) -> tuple[int, str, str]:
    """Run a console entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [str(a) for a in argv])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code: int, err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("warning: no trained")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def copy_bundle(bundle: Path, tmp_path: Path, name: str = "b") -> Path:
    out = tmp_path / name
    shutil.copytree(bundle, out)
    return out


def edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def hidden(folder: Path) -> list[str]:
    """Hidden leftovers in `folder` (temp files, staging folders, locks); the marker of a bundle a2bs made
    is meant to be there."""
    from a2bs.core.files import MARKER

    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MARKER)


def sample_app(tmp_path: Path, **spec) -> Path:
    """A sample app folder with an a2bs-sample.json of `spec`."""
    sample = tmp_path / "android_sample"
    sample.mkdir(exist_ok=True)
    (sample / "a2bs-sample.json").write_text(json.dumps({"platform": "android", **spec}))
    return sample
