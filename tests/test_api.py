"""The public API (`import a2bs`): the README's example runs as written, and the package root stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert found, "README.md has no api-example block"
    return found.group(1)


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, a2bs\nprint(len(a2bs.BLENDSHAPES), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["52", "False"]


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    """The block converts and validates a real bundle, so it is in the slow tier; it must print what it says."""
    run = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    frames, top = re.fullmatch(r"(\d+) frames, jawOpen up to ([\d.]+)", lines[0]).groups()
    assert int(frames) == 432 and float(top) > 0.3  # 14.4 s at 30 fps; a trained jaw opens
    assert lines[1].endswith("passed") and (tmp_path / "build" / "android" / "manifest.json").is_file()
    passed, total = re.fullmatch(r"(\d+) of (\d+) checks passed", lines[2]).groups()
    assert passed == total and int(total) > 5


def test_animate_matches_the_reference_inference() -> None:
    """`a2bs.animate` is the reference path, not a second implementation: same frames as infer_array."""
    import numpy as np

    import a2bs
    from a2bs.core.audio import load_audio
    from a2bs.core.inference import infer_array

    ckpt = a2bs.load_checkpoint(fps=30)
    frames = a2bs.animate(a2bs.example_audio(), ckpt)
    reference = infer_array(ckpt, load_audio(a2bs.example_audio()))
    assert frames.shape == reference.shape == (432, 52)
    np.testing.assert_allclose(frames, reference, atol=1e-4)
    assert not np.allclose(frames, a2bs.animate(a2bs.example_audio(), a2bs.load_checkpoint(fps=60))[::2], atol=1e-3)
