"""What the READMEs tell a user to do works as written: the input formats the README lists are the ones a
folder is searched for and each of them decodes; the comparison call both sample READMEs give runs as
written (with the string paths a user types). Claims about one sample app's files are checked beside that
app's other tests (tests/samples/), the bundle README's in tests/convert/test_bundle.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from a2bs.cli.batch import AUDIO_SUFFIXES
from a2bs.core.audio import default_clip, load_audio

ROOT = Path(__file__).resolve().parent.parent

# How a test writes each suffix with libsndfile (format, subtype, sample rate: Opus only takes 48 kHz).
WRITERS = {
    ".wav": ("WAV", "PCM_16", 22050),
    ".flac": ("FLAC", "PCM_24", 44100),
    ".ogg": ("OGG", "VORBIS", 22050),
    ".oga": ("OGG", "VORBIS", 44100),
    ".opus": ("OGG", "OPUS", 48000),
    ".mp3": ("MP3", "MPEG_LAYER_III", 44100),
}


def readme_input_suffixes() -> list[str]:
    """The file suffixes the README's **Input** line names (in backticks)."""
    text = (ROOT / "README.md").read_text()
    line = re.search(r"^- \*\*Input\*\*: (.*(?:\n  .*)*)", text, re.M)
    assert line, "README.md has no '- **Input**:' line"
    return re.findall(r"`(\.\w+)`", line.group(1))


def test_readme_input_formats_are_the_searched_ones_and_decode(tmp_path: Path) -> None:
    """Was: the README listed WAV/FLAC/OGG only, while folders are searched for .opus and .mp3 too (and both decode)."""
    assert sorted(readme_input_suffixes()) == sorted(AUDIO_SUFFIXES)
    assert sorted(WRITERS) == sorted(AUDIO_SUFFIXES), "add a writer for the new suffix"
    for suffix, (fmt, subtype, rate) in WRITERS.items():
        t = np.arange(rate // 2) / rate
        path = tmp_path / f"tone{suffix}"
        sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format=fmt, subtype=subtype)
        audio = load_audio(path)
        assert abs(len(audio) - 8000) <= 1200, (suffix, len(audio))  # 0.5 s at 16 kHz (encoder padding aside)
        assert np.abs(audio).max() > 0.1, suffix


def comparison_call(readme: Path) -> str:
    """The `iter_bundle_blendshapes(...)` call a sample README tells the app developer to compare with."""
    found = re.findall(r"iter_bundle_blendshapes\((clip, bundle, [^)]*)\)", readme.read_text())
    assert len(found) == 1, f"{readme}: expected one iter_bundle_blendshapes(clip, bundle, ...) call, got {found}"
    return found[0]


@pytest.mark.parametrize(
    "sample", ["android_sample", pytest.param("ios_sample", marks=pytest.mark.slow)], ids=["android", "ios"]
)
def test_sample_readme_comparison_call_runs(sample: str, request: pytest.FixtureRequest) -> None:
    """Was: the call crashed (`str / str`) with the string paths a user passes."""
    from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
    from a2bs.runtime.manifest import shipped_bundle

    bundle = shipped_bundle(30) if sample == "android_sample" else request.getfixturevalue("ios_bundle")
    names = {"clip": str(default_clip()), "bundle": str(bundle), "iter_bundle_blendshapes": iter_bundle_blendshapes}
    fps, n_frames, chunks = eval(f"iter_bundle_blendshapes({comparison_call(ROOT / sample / 'README.md')})", names)
    frames = np.concatenate(list(chunks))
    assert fps == 30 and frames.shape == (n_frames, 52) and n_frames == 432


@pytest.mark.parametrize("sample", ["android_sample", "ios_sample"])
def test_sample_readmes_say_the_model_already_smooths(sample: str) -> None:
    """Was: `smoothing_alpha` sat in the manifest unexplained, so an app developer could smooth twice. Each README
    says the output is already smoothed, and it is true of its engine: no engine source reads smoothing_alpha."""
    readme = " ".join((ROOT / sample / "README.md").read_text().split())
    assert re.search(r"`blendshapes` is already smoothed by the model \(.*`smoothing_alpha`", readme)
    assert "don't smooth it again" in readme
    sources = [p for p in (ROOT / sample).rglob("*") if p.suffix in (".kt", ".swift")]
    assert sources and not [p for p in sources if "smoothing_alpha" in p.read_text() and "Tests" not in p.parts]
