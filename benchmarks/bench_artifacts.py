"""Benchmark every on-device artifact: size, parity and per-frame latency, through the validation harness.

For each fps (30, 60) and platform, converts the bundled trained checkpoint with every variant
(`--quantize all`) into a temporary folder and runs `a2bs validate` on it: the LiteRT interpreter
latency per TFLite variant with 1 and 2 threads beside the PyTorch reference, peak memory, RTF;
parity against PyTorch on the bundled speech; sizes. Core ML latency is measured only on macOS.

    python benchmarks/bench_artifacts.py              # 30 and 60 fps, both platforms
    python benchmarks/bench_artifacts.py --fps 30 --platform android

Figures are printed and written to benchmarks/results/artifacts.json. Run it on an idle machine:
latency figures from a loaded machine say little.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # converter progress bars
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from a2bs.convert.bundle import build_bundle, resolve_variants
from a2bs.core.checkpoint import load_default
from a2bs.mobile_validation.checks import machine_summary
from a2bs.mobile_validation.validate import validate_bundle

RESULTS = Path(__file__).resolve().parent / "results" / "artifacts.json"


def bench(platform: str, fps: int, work: Path) -> list[dict]:
    ckpt = load_default(fps)
    bundle = work / f"{platform}-{fps}"
    started = time.perf_counter()
    build_bundle(platform, ckpt, resolve_variants(platform, "all"), bundle, progress=lambda _: None)
    convert_s = time.perf_counter() - started
    report = validate_bundle(bundle, reference=ckpt, progress=lambda s: print(f"  {platform} {fps} fps: {s}"))
    rows = []
    for entry in report.manifest["files"]:
        checks = [c for c in report.checks if c.artifact == entry["path"]]
        row = {"platform": platform, "fps": fps, "variant": entry["variant"], "role": entry["role"],
               "file": entry["path"], "mb": entry["bytes"] / 1e6, "convert_s_all_variants": round(convert_s, 1),
               "passed": all(c.passed for c in checks)}  # fmt: skip
        for c in checks:
            if c.kind == "parity" and c.name in ("end-to-end blendshapes", "mel frames"):
                row.update(mae=c.details["mae"], max_abs=c.details["max_abs"], runtime=c.runtime,
                           psnr_db=c.details.get("psnr_db"))  # fmt: skip
            if c.kind == "latency" and "threads" in c.details:
                for threads, f in c.details["threads"].items():
                    row[f"median_ms_{threads}t"] = f["median_ms"]
                    row[f"p95_ms_{threads}t"] = f["p95_ms"]
                    row[f"torch_median_ms_{threads}t"] = f["torch_median_ms"]
                row.update(rtf=c.details["rtf"], peak_rss_mb=c.details["peak_rss_mb"])
            if c.kind == "latency" and not c.details.get("measured", True):
                row["mmac_per_frame"] = c.value
        rows.append(row)
    return rows


def show(rows: list[dict]) -> None:
    print(f"\n{'platform':<8} {'fps':>3} {'variant':<13} {'role':<9} {'MB':>5} {'MAE':>8} {'PSNR':>6} "
          f"{'1t med':>7} {'1t p95':>7} {'2t med':>7} {'torch 1t':>8} {'peak MB':>7}")  # fmt: skip
    for r in rows:
        def ms(key: str, row: dict = r) -> str:
            return f"{row[key]:.2f}" if key in row else "-"

        psnr = f"{r['psnr_db']:.1f}" if r.get("psnr_db") else "-"
        peak = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        print(f"{r['platform']:<8} {r['fps']:>3} {r['variant']:<13} {r['role']:<9} {r['mb']:>5.2f} "
              f"{r.get('mae', float('nan')):>8.1e} {psnr:>6} {ms('median_ms_1t'):>7} {ms('p95_ms_1t'):>7} "
              f"{ms('median_ms_2t'):>7} {ms('torch_median_ms_1t'):>8} {peak:>7}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=int, choices=(30, 60), action="append", help="default: both")
    parser.add_argument("--platform", choices=("ios", "android"), action="append", help="default: both")
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="a2bs-bench-") as tmp:
        for fps in args.fps or (30, 60):
            for platform in args.platform or ("android", "ios"):
                rows += bench(platform, fps, Path(tmp))
    show(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine_summary(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                   time.gmtime()), "rows": rows}, indent=1) + "\n")  # fmt: skip
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
