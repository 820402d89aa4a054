"""Benchmark every on-device artifact: size, parity margins and per-frame latency, through the harness.

For each fps (30, 60) and platform, converts the bundled TRAINED checkpoint with every variant
(`--quantize all`) into a temporary folder and runs `a2bs validate` on it: parity against PyTorch on
the bundled speech (each figure relative to how much the reference moves, and its margin to the
precision class's limit); sizes; the LiteRT per-frame latency per TFLite variant as a ratio to the
PyTorch reference measured interleaved in the same run, plus absolute figures and peak memory. Core ML
latency is measured only on macOS.

    python benchmarks/bench_artifacts.py                       # 30 and 60 fps, both platforms
    python benchmarks/bench_artifacts.py --fps 30 --platform android
    python benchmarks/bench_artifacts.py --no-latency --update-docs   # parity margins only, into the docs

Writes benchmarks/results/artifacts.json (every figure) and benchmarks/results/parity_margins.md (the
margins table of docs/VALIDATION.md; `--update-docs` also replaces it there). Rerun it after the
checkpoints are retrained. On 2 cores, two runs in parallel save time:

    python benchmarks/bench_artifacts.py --no-latency --fps 30 --results /tmp/m30.json &
    python benchmarks/bench_artifacts.py --no-latency --fps 60 --results /tmp/m60.json; wait
    python benchmarks/bench_artifacts.py --from-results /tmp/m30.json /tmp/m60.json --update-docs

`--strict-latency` applies the absolute latency budget (a quiet, dedicated
host only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # converter progress bars
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from a2bs.convert.bundle import build_bundle, resolve_variants
from a2bs.core.checkpoint import default_checkpoint_dir, load_checkpoint
from a2bs.mobile_validation.checks import machine_summary
from a2bs.mobile_validation.validate import validate_bundle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "artifacts.json"
MARGINS = ROOT / "benchmarks" / "results" / "parity_margins.md"
DOCS = ROOT / "docs" / "VALIDATION.md"
BEGIN, END = "<!-- parity-margins:begin (benchmarks/bench_artifacts.py) -->", "<!-- parity-margins:end -->"


def bench(platform: str, fps: int, work: Path, latency: bool, strict: bool) -> list[dict]:
    ckpt = load_checkpoint(default_checkpoint_dir(fps))
    if not ckpt.trained:
        raise SystemExit(f"{default_checkpoint_dir(fps)} is not a trained checkpoint: margins would mean nothing")
    bundle = work / f"{platform}-{fps}"
    started = time.perf_counter()
    build_bundle(platform, ckpt, resolve_variants(platform, "all"), bundle, progress=lambda _: None)
    convert_s = time.perf_counter() - started
    report = validate_bundle(
        bundle,
        reference=ckpt,
        latency=latency,
        strict_latency=strict,
        progress=lambda s: print(f"  {platform} {fps} fps: {s}", flush=True),
    )
    rows = []
    for entry in report.manifest["files"]:
        checks = [c for c in report.checks if c.artifact == entry["path"]]
        row = {
            "platform": platform,
            "fps": fps,
            "variant": entry["variant"],
            "role": entry["role"],
            "file": entry["path"],
            "mb": entry["bytes"] / 1e6,
            "convert_s_all_variants": round(convert_s, 1),
            "passed": all(c.passed for c in checks),
            "failed": [f"{c.kind} {c.name}: {c.reason}" for c in checks if not c.passed],
        }
        for c in checks:
            if c.kind == "parity" and c.name == "mel frames":
                row.update(mae=c.details["mae"], max_abs=c.details["max_abs"], runtime=c.runtime)
            if c.kind == "parity" and c.name == "end-to-end blendshapes" and c.runtime.find("ALL") < 0:
                keys = (
                    "rel_mae",
                    "rel_max",
                    "psnr_db",
                    "min_correlation",
                    "mae",
                    "max_abs",
                    "peak",
                    "margins",
                    "precision_class",
                    "limits",
                )
                row.update({k: c.details[k] for k in keys}, runtime=c.runtime)
            if c.kind == "parity" and c.name == "decompressed weights":
                row.update(weights_rel_rms=c.value, weights_limit=c.threshold)
            if c.kind == "latency" and "threads" in c.details:
                row.update(
                    latency_verdict=c.details["verdict"],
                    latency_reason=c.reason,
                    ratio_vs_torch=c.details.get("ratio_vs_torch"),
                    peak_rss_mb=c.details.get("peak_rss_mb"),
                )
                for threads, f in c.details["threads"].items():
                    for key in ("median_ms", "p95_ms", "torch_median_ms", "ratio_vs_torch", "spread"):
                        if key in f:
                            row[f"{key}_{threads}t"] = f[key]
            if c.kind == "latency" and not c.details.get("measured", True):
                row["mmac_per_frame"] = c.value
        rows.append(row)
    return rows


def _g(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _x(margin: float | None) -> str:
    """A margin (limit / measured) for the table: 1.4x, 27x, >1000x."""
    if margin is None:
        return "–"
    return ">1000x" if margin > 1000 else f"{margin:.1f}x" if margin < 10 else f"{margin:.0f}x"


def margins_table(rows: list[dict], machine: dict) -> str:
    """The markdown table of docs/VALIDATION.md: every shipped step variant's parity figures and margins."""
    lines = [
        f"Measured by `python benchmarks/bench_artifacts.py` on {time.strftime('%Y-%m-%d')}: {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['os']}; the trained default checkpoints; both bundled clips. "
        "Relative MAE is in units of the reference's mean per-shape spread (std), relative max in units of "
        "that shape's range (at least 0.05); PSNR takes the reference's range as the peak. Margin = limit / "
        "measured (PSNR: dB above the limit; correlation: (1 - limit) / (1 - r)).",
        "",
        "| platform | fps | variant | class | rel. MAE (limit, margin) | rel. max (limit, margin) | PSNR dB "
        "(limit, +dB) | min corr. (limit, margin) | abs. MAE | passed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["role"] != "step" or "rel_mae" not in r:
            continue
        lim, m = r["limits"], r["margins"]
        lines.append(
            f"| {r['platform']} | {r['fps']} | `{r['variant']}` | {r['precision_class']} "
            f"| {r['rel_mae']:.1e} ({lim['mae']:g}, {_x(m['mae'])}) | {r['rel_max']:.1e} ({lim['max_abs']:g}, "
            f"{_x(m['max_abs'])}) | {r['psnr_db']:.1f} ({lim['psnr_db']:g}, +{m['psnr_db']:.1f}) "
            f"| {_g(r['min_correlation'], '.5f')} ({lim['min_correlation']:g}, {_x(m['correlation'])}) "
            f"| {r['mae']:.1e} | {'yes' if r['passed'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def show(rows: list[dict]) -> None:
    print(
        f"\n{'platform':<8} {'fps':>3} {'variant':<13} {'role':<9} {'MB':>5} {'relMAE':>8} {'PSNR':>6} "
        f"{'corr':>8} {'1t med':>7} {'torch 1t':>8} {'ratio':>6} {'latency':<12}"
    )
    for r in rows:

        def num(key: str, fmt: str, row: dict = r) -> str:
            return format(row[key], fmt) if row.get(key) is not None else "-"

        print(
            f"{r['platform']:<8} {r['fps']:>3} {r['variant']:<13} {r['role']:<9} {r['mb']:>5.2f} "
            f"{num('rel_mae', '.1e'):>8} {num('psnr_db', '.1f'):>6} {num('min_correlation', '.5f'):>8} "
            f"{num('median_ms_1t', '.2f'):>7} {num('torch_median_ms_1t', '.2f'):>8} "
            f"{num('ratio_vs_torch', '.2f'):>6} {r.get('latency_verdict', '-'):<12}"
        )
        for failure in r["failed"]:
            print(f"    FAILED {failure}")


def update_docs(table: str) -> None:
    text = DOCS.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} block to replace")
    DOCS.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", text))
    print(f"updated the margins table in {DOCS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=int, choices=(30, 60), action="append", help="default: both")
    parser.add_argument("--platform", choices=("ios", "android"), action="append", help="default: both")
    parser.add_argument("--no-latency", action="store_true", help="parity, size and integrity only")
    parser.add_argument("--strict-latency", action="store_true", help="absolute budget; a quiet host only")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON to write (default {RESULTS.name})")
    parser.add_argument(
        "--from-results",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="no conversions: build the margins table from earlier results files (e.g. two "
        "runs in parallel, --fps 30 and --fps 60)",
    )
    parser.add_argument("--update-docs", action="store_true", help=f"replace the margins table in {DOCS.name}")
    args = parser.parse_args()
    if args.from_results:
        loaded = [json.loads(p.read_text()) for p in args.from_results]
        rows = [row for data in loaded for row in data["rows"]]
        rows.sort(key=lambda r: (r["platform"], r["fps"]))
        machine = loaded[0]["machine"]
    else:
        rows, machine = run_all(args)
    table = margins_table(rows, machine)
    MARGINS.write_text(table)
    print(f"\nwrote {MARGINS}")
    if args.update_docs:
        update_docs(table)


def run_all(args: argparse.Namespace) -> tuple[list[dict], dict]:
    rows: list[dict] = []
    machine = machine_summary()
    args.results.parent.mkdir(parents=True, exist_ok=True)

    def write(complete: bool) -> None:  # after every bundle: a stopped run still leaves its figures
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data = {"machine": machine, "created": created, "complete": complete, "rows": rows}
        args.results.write_text(json.dumps(data, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="a2bs-bench-") as tmp:
        for fps in args.fps or (30, 60):
            for platform in args.platform or ("android", "ios"):
                rows += bench(platform, fps, Path(tmp), not args.no_latency, args.strict_latency)
                write(complete=False)
    write(complete=True)
    show(rows)
    print(f"wrote {args.results}")
    return rows, machine


if __name__ == "__main__":
    main()
