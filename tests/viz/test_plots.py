"""The plots (viz/plots.py): written atomically with the permissions any other output file gets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from a2bs.viz.plots import plot_curves, plot_error_map

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("plot", [plot_curves, plot_error_map], ids=["curves", "error_map"])
def test_plot_png_has_the_umask_mode(plot, tmp_path: Path, umask_022: None) -> None:
    """Was: the temp file's 0600 (mkstemp) survived the rename, so a teammate could not open the plot."""
    out = plot(np.full((30, 52), 0.25, np.float32), 30, tmp_path / "p.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temp file left


@pytest.mark.parametrize("plot", [plot_curves, plot_error_map], ids=["curves", "error_map"])
def test_plot_title_from_a_file_name_that_is_not_utf8(plot, tmp_path: Path) -> None:
    """Was: a traceback (matplotlib's FT2Font takes no lone surrogates) for `a2bs infer café.wav --plot p.png`
    when the clip's name is Latin-1: the title is the clip's name."""
    title = os.fsdecode(b"caf\xe9.wav")
    out = plot(np.full((30, 52), 0.25, np.float32), 30, tmp_path / os.fsdecode(b"p\xe9.png"), title=title)
    assert out.read_bytes().startswith(PNG_MAGIC)
