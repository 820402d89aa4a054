"""Peak memory of the inference process by audio length: `a2bs infer --backend tflite` against torch.

Each run is a child process whose own peak RSS (ru_maxrss from os.wait4) is recorded with its wall time
and real-time factor. Speech files of 6 s, 6.5 min, 1 h and 3 h are chained from the bundled clips
(`bench_infer.make_speech_file`). Three kinds of runs:

- `cli tflite`: the real `a2bs infer AUDIO --backend tflite --bundle B` (the bundle's default variant),
  at 30 fps for every length and at 60 fps for the short ones (a 60 fps bundle);
- `runtime tflite`: the same path without the CLI (`iter_bundle_blendshapes` feeding `open_writer`,
  as `a2bs infer` does), the path alone, without the CLI's own imports (typer, tqdm);
- `cli torch`: `a2bs infer AUDIO --backend torch --fps F` on the 6 s file, for comparison.

Then which heavy libraries each CLI process loaded, and the cost of each import and step of the LiteRT
path (VmRSS after each one in a fresh child).

    python benchmarks/bench_memory.py                        # the four lengths (the 3 h runs take minutes)
    python benchmarks/bench_memory.py --quick                # 6 s and 6.5 min only
    python benchmarks/bench_memory.py --bundle artifacts/android   # use this bundle for its fps

Bundles not given are built into a temp folder (`a2bs-convert android --quantize fp32 --no-validate`).
Figures are printed and written to benchmarks/results/memory.json.

This script itself imports only the standard library, and makes the speech files in a child: on Linux a
child's ru_maxrss also counts the RSS of the parent at the time of the spawn (exec keeps the high-water
mark of the memory map it replaces, which a vfork child shares with the parent), so a parent that had
loaded torch would inflate every figure. The parent's own RSS is recorded as `parent_rss_mb`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
CLIP = Path(__file__).resolve().parent.parent / "core" / "assets" / "audio" / "speech_en_us.wav"
LENGTHS = (("6 s", 6.0), ("6.5 min", 390.0), ("1 h", 3600.0), ("3 h", 10800.0))
QUICK = 2  # --quick: the first two lengths
SHORT_S = 390.0  # 60 fps runs for lengths up to this
HEAVY = ("torch", "pandas", "opensmile", "audinterface", "ai_edge_litert", "typer", "tqdm")

# The LiteRT path without the CLI: what `a2bs infer --backend tflite` does once its options are checked.
RUNTIME_PATH = """
import sys
from pathlib import Path
import numpy as np
from a2bs.core.animation_io import open_writer
from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
audio, bundle, output = (Path(a) for a in sys.argv[1:4])
fps, n_frames, chunks = iter_bundle_blendshapes(audio, bundle, "tflite")
with open_writer(output, fps, n_frames, force=True) as writer:
    for chunk in chunks:
        if not np.all(np.isfinite(chunk)):
            raise SystemExit("non-finite frames")
        writer.write(chunk)
"""

MAKE_SPEECH = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench_infer import make_speech_file
make_speech_file(Path(sys.argv[2]), float(sys.argv[3]))
"""

# The CLI's entry point, reporting at exit which heavy libraries the process loaded.
CLI_WITH_MODULES = """
import atexit, json, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("MODULES " + json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))),
                              file=sys.stderr))
from a2bs.cli.main import main
sys.argv = ["a2bs", *sys.argv[2:]]
main()
"""

# VmRSS after each step of the LiteRT path, in the order an inference process takes them.
IMPORT_STEPS = """
import json, sys
from pathlib import Path
def rss_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}
clip, bundle = sys.argv[1], sys.argv[2]
steps = json.loads(sys.argv[3])
print(json.dumps({"step": "python started", **rss_mb()}), flush=True)
for label, code in steps:
    exec(code)
    print(json.dumps({"step": label, **rss_mb()}), flush=True)
"""
PATH_STEPS = [
    ("import numpy", "import numpy"),
    ("import soundfile, soxr (a2bs.core.audio)", "import a2bs.core.audio"),
    ("import a2bs.core.emotion", "from a2bs.core import emotion"),
    ("load openSMILE's library and eGeMAPSv02 config", "emotion.egemaps_feature_names()"),
    ("emotion features of a clip (file_emotion)", "emotion.file_emotion(clip)"),
    ("import ai_edge_litert.interpreter (LiteRT)", "import ai_edge_litert.interpreter"),
    ("import a2bs.runtime.bundle_inference", "from a2bs.runtime.bundle_inference import open_runners"),
    ("open the bundle's two interpreters", "runners = open_runners(Path(bundle), 'tflite', None)"),
    ("import a2bs.core.animation_io (writers)", "import a2bs.core.animation_io"),
    ("import typer, tqdm, a2bs.cli.main (the CLI)", "import typer, tqdm, a2bs.cli.main"),
    ("import torch (only the torch backend loads it)", "import torch"),
    ("import a2bs.core.inference, a2bs.core.checkpoint (torch)", "import a2bs.core.inference, a2bs.core.checkpoint"),
]
# Each alone on top of numpy, in its own child: what the inference path no longer loads.
ALONE_STEPS = [
    ("pandas", "import pandas"),
    ("the opensmile package (pandas, audinterface, audobject)", "import opensmile"),
    ("torch", "import torch"),
]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {len(os.sched_getaffinity(0))} cores usable, "
        f"{mem_kb / 1024**2:.0f} GB RAM"
    )


def measure(cmd: list[str], audio_s: float) -> tuple[dict, str]:
    """Runs one child; its peak RSS (its own ru_maxrss), wall time and RTF, and its stderr."""
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # ru_maxrss: KiB on Linux, this child only
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed with exit code {child.returncode}:\n{stderr[-2000:]}")
    figures = {
        "wall_s": round(wall, 2),
        "rtf": round(wall / audio_s, 4),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    return figures, stderr


def count_rows(csv: Path) -> int:
    with csv.open("rb") as f:
        return sum(1 for _ in f) - 1  # minus the header


def infer_args(backend: str, audio: Path, output: Path, fps: int, bundle: Path | None) -> list[str]:
    args = ["infer", str(audio), "-o", str(output), "--force", "--no-progress"]
    if backend == "tflite":
        return [*args, "--backend", "tflite", "--bundle", str(bundle)]
    return [*args, "--backend", "torch", "--fps", str(fps)]


def run(
    kind: str, backend: str, audio: Path, label: str, audio_s: float, fps: int, bundle: Path | None, tmp: Path
) -> dict:
    """One measured run: `kind` is "cli" (the a2bs console script) or "runtime" (RUNTIME_PATH)."""
    output = tmp / f"out_{kind}_{backend}_{fps}.csv"
    if kind == "cli":
        cmd = [str(Path(sys.executable).with_name("a2bs")), *infer_args(backend, audio, output, fps, bundle)]
    else:
        cmd = [sys.executable, "-c", RUNTIME_PATH, str(audio), str(bundle), str(output)]
    figures, _ = measure(cmd, audio_s)
    frames = count_rows(output)
    output.unlink()
    expected = -(-round(audio_s * 16000) * fps // 16000)
    if frames != expected:
        raise SystemExit(f"{kind} {backend} {label} @ {fps} fps wrote {frames} frames, expected {expected}")
    return {
        "path": kind,
        "backend": backend,
        "audio": label,
        "audio_s": audio_s,
        "fps": fps,
        "frames": frames,
        **figures,
    }


def modules_loaded(backend: str, audio: Path, fps: int, bundle: Path | None, tmp: Path) -> list[str]:
    """Which of HEAVY the `a2bs infer` process loaded (its entry point run with an exit hook)."""
    args = infer_args(backend, audio, tmp / "modules.csv", fps, bundle)
    _, stderr = measure([sys.executable, "-c", CLI_WITH_MODULES, json.dumps(HEAVY), *args], 1.0)
    line = next(line for line in stderr.splitlines() if line.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES "))


def import_costs(bundle: Path) -> dict[str, list[dict]]:
    """VmRSS after each step of PATH_STEPS in one child, and after each of ALONE_STEPS (on numpy) alone."""

    def child(steps: list[tuple[str, str]]) -> list[dict]:
        cmd = [sys.executable, "-c", IMPORT_STEPS, str(CLIP), str(bundle), json.dumps(steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for before, after in itertools.pairwise(rows):
            after["delta_mb"] = round(after["VmRSS"] - before["VmRSS"], 1)
        return rows

    alone = []
    for label, code in ALONE_STEPS:
        rows = child([("import numpy", "import numpy"), (label, code)])
        alone.append(rows[-1])
    return {"path": child(PATH_STEPS), "alone_on_numpy": alone}


def make_speech(path: Path, seconds: float) -> Path:
    """`bench_infer.make_speech_file` in a child (it imports torch, which must not enter this process)."""
    subprocess.run(
        [sys.executable, "-c", MAKE_SPEECH, str(Path(__file__).resolve().parent), str(path), str(seconds)], check=True
    )
    return path


def parent_rss_mb() -> float:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return round(int(status["VmHWM"].split()[0]) / 1024, 1)


def build_bundle(fps: int, out: Path) -> Path:
    convert = Path(sys.executable).with_name("a2bs-convert")
    cmd = [str(convert), "android", "--out", str(out), "--fps", str(fps), "--quantize", "fp32", "--no-validate"]
    print(f"building a {fps} fps bundle: {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--bundle",
        type=Path,
        action="append",
        default=[],
        help="an Android bundle (repeat for 30 and 60 fps); missing ones are built",
    )
    parser.add_argument("--quick", action="store_true", help="6 s and 6.5 min only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    lengths = LENGTHS[:QUICK] if args.quick else LENGTHS
    results: dict = {"machine": machine(), "python": platform.python_version(), "bundles": {}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="a2bs-bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        bundles = {int(manifest(b)["fps"]): b for b in args.bundle}
        for fps in (30, 60):
            if fps not in bundles:
                bundles[fps] = build_bundle(fps, tmp / f"android{fps}")
            m = manifest(bundles[fps])
            results["bundles"][str(fps)] = {
                "path": str(bundles[fps]) if bundles[fps] in args.bundle else "built",
                "step_variant": m.get("default_variant"),
            }

        def report(row: dict) -> None:
            results["runs"].append(row)
            print(
                f"{row['path']:>7} {row['backend']:<6} {row['audio']:>7} @ {row['fps']} fps: peak RSS "
                f"{row['peak_rss_mb']:6.1f} MB, {row['wall_s']:7.1f} s wall, RTF {row['rtf']:.4f}",
                flush=True,
            )

        for label, seconds in lengths:
            audio = make_speech(tmp / f"speech_{label.replace(' ', '')}.wav", seconds)
            for fps in (30, 60) if seconds <= SHORT_S else (30,):
                report(run("cli", "tflite", audio, label, seconds, fps, bundles[fps], tmp))
                report(run("runtime", "tflite", audio, label, seconds, fps, bundles[fps], tmp))
            if seconds == lengths[0][1]:
                for fps in (30, 60):
                    report(run("cli", "torch", audio, label, seconds, fps, None, tmp))
                results["modules_loaded"] = {
                    backend: modules_loaded(backend, audio, 30, bundles[30] if backend == "tflite" else None, tmp)
                    for backend in ("tflite", "torch")
                }
                print(f"heavy libraries the CLI process loaded: {results['modules_loaded']}", flush=True)
            audio.unlink()
        results["imports"] = import_costs(bundles[30])
    results["parent_rss_mb"] = parent_rss_mb()  # a floor under every ru_maxrss above (see the module notes)
    print("RSS after each step of the LiteRT path (one process, cumulative):")
    for row in results["imports"]["path"]:
        print(f"  {row['step']:<58} {row['VmRSS']:6.1f} MB ({row.get('delta_mb', 0.0):+6.1f})")
    print("each alone on top of numpy:")
    for row in results["imports"]["alone_on_numpy"]:
        print(f"  {row['step']:<58} {row['VmRSS']:6.1f} MB ({row['delta_mb']:+6.1f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
