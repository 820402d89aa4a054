"""What an inference process loads: the LiteRT path must stay small, so it never imports torch, pandas or
the `opensmile` package (whose __init__ pulls pandas and audinterface); emotion features go through
openSMILE's native library directly (core/emotion.py). Each check runs a real extraction or a real
bundle inference in a fresh interpreter and reads its `sys.modules`. Memory figures themselves are
measured by benchmarks/bench_memory.py, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from a2bs.core.audio import load_audio
from a2bs.runtime.bundle_inference import open_runners
from a2bs.runtime.engine import BundleEngine, run_stream

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "core/assets/audio/speech_en_us.wav"
# Libraries an inference process must not load: torch (~190 MB of RSS), pandas and the `opensmile`
# package with its audinterface/audobject stack (~90 MB together).
FORBIDDEN = ("torch", "pandas", "opensmile", "audinterface", "audobject")
_REPORT = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(FORBIDDEN))))\n"


def _loaded_in_child(code: str) -> list[str]:
    """Runs `code` in a fresh Python, then returns which of FORBIDDEN it left in sys.modules."""
    script = f"FORBIDDEN = {FORBIDDEN!r}\n{textwrap.dedent(code)}\n{_REPORT}"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_emotion_extraction_loads_no_pandas_or_torch() -> None:
    loaded = _loaded_in_child(f"""
        import numpy as np
        from a2bs.core.emotion import egemaps_feature_names, file_emotion
        vector = file_emotion({str(CLIP)!r})
        assert vector.shape == (264,) and np.all(np.isfinite(vector)) and np.any(vector != 0), vector
        assert len(egemaps_feature_names()) == 88
    """)
    assert loaded == []


def test_bundle_inference_loads_no_pandas_or_torch(android_bundle: Path, tmp_path: Path) -> None:
    """The whole LiteRT path as `a2bs infer --backend tflite` runs it: emotion features of the file, the
    interpreter frame by frame, the CSV writer."""
    output = tmp_path / "out.csv"
    loaded = _loaded_in_child(f"""
        from pathlib import Path
        import numpy as np
        from a2bs.core.animation_io import open_writer
        from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
        fps, n_frames, chunks = iter_bundle_blendshapes(Path({str(CLIP)!r}), Path({str(android_bundle)!r}), "tflite")
        with open_writer(Path({str(output)!r}), fps, n_frames) as writer:
            for chunk in chunks:
                assert np.all(np.isfinite(chunk))
                writer.write(chunk)
        assert writer.frames_written == n_frames > 0
    """)
    assert loaded == []
    assert output.is_file()


def test_cli_tflite_inference_loads_no_torch(android_bundle: Path, tmp_path: Path) -> None:
    """`a2bs infer --backend tflite` itself, through its console entry point: no torch, pandas or opensmile
    package in the whole process."""
    argv = [
        "a2bs",
        "infer",
        str(CLIP),
        "-o",
        str(tmp_path / "out.csv"),
        "--backend",
        "tflite",
        "--bundle",
        str(android_bundle),
        "--no-progress",
    ]
    loaded = _loaded_in_child(f"""
        import sys
        from a2bs.cli.main import main
        sys.argv = {argv!r}
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
    """)
    assert loaded == []


def test_engine_without_timings_gives_the_same_frames(android_bundle: Path) -> None:
    """`iter_bundle_blendshapes` runs the engine with `record_timings=False` (nothing kept per frame, so
    memory is flat for hours of audio); the frames are the same as with timings."""
    manifest, front, step = open_runners(android_bundle, "tflite", None)
    audio = load_audio(CLIP)[: 3 * 16000]
    timed = BundleEngine(manifest, front, step)
    untimed = BundleEngine(manifest, front, step, record_timings=False)
    np.testing.assert_array_equal(run_stream(untimed, audio), run_stream(timed, audio))
    assert untimed.timings == [] and len(timed.timings) == timed.mel_index > 0
