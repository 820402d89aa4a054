"""The human report of a validation run: one self-contained HTML page (plots and the face preview embedded)
from report.json."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

ON_DEVICE = {
    "android": (
        "Device latency: build LiteRT's <code>benchmark_model</code> for arm64 (or take the prebuilt binary from the "
        "LiteRT releases), then <code>adb push a2bs_step_&lt;variant&gt;.tflite /data/local/tmp/</code> and "
        "<code>adb shell /data/local/tmp/benchmark_model --graph=/data/local/tmp/a2bs_step_&lt;variant&gt;.tflite "
        "--num_threads=1 --use_xnnpack=true</code> (add <code>--use_gpu=true</code> or <code>--use_nnapi=true</code> "
        "for the delegates). Add the front end's figure for the per-frame cost."
    ),
    "ios": (
        "Device latency: open the .mlpackage in Xcode, choose the Performance tab, pick a connected iPhone (A14 or "
        "newer) and run a Core ML performance report: it shows the median prediction time per compute unit "
        "setting and which ops run on the Neural Engine, GPU or CPU. Add the front end's time for the per-frame cost."
    ),
}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.3f}".rstrip("0").rstrip(".")
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _corr(value: float | None) -> str:
    """Correlations sit near 1: show enough digits to tell 0.9999 from 0.99."""
    return "–" if value is None else f"{value:.5f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _checks_table(checks: list[dict[str, Any]]) -> str:
    rows = []
    for c in checks:
        status = "<b class=ok>pass</b>" if c["passed"] else "<b class=bad>FAIL</b>"
        if c["kind"] == "latency" and not c["details"].get("measured", True):
            status = "<b class=na>not measured here</b>"
        elif c["kind"] == "latency" and c["passed"] and c["details"].get("verdict") == "inconclusive":
            status = "<b class=na>inconclusive</b>"
        rows.append(
            [
                html.escape(c["artifact"]),
                c["kind"],
                html.escape(c["name"]),
                status,
                _fmt(c["value"], c["unit"]),
                _fmt(c["threshold"], c["unit"]),
                html.escape(c["runtime"]),
                html.escape(c["reason"]),
            ]
        )
    return _table(["artifact", "kind", "check", "result", "value", "threshold", "runtime", "note"], rows)


def _parity_section(checks: list[dict[str, Any]]) -> str:
    parts = []
    for c in checks:
        if c["kind"] != "parity" or c["name"] != "end-to-end blendshapes":
            continue
        d = c["details"]
        mouth = ", ".join(f"{k} {_corr(v)}" for k, v in d["mouth_critical_correlation"].items())
        worst = _table(
            ["clip", "frame", "time (s)", "shape", "error", "reference", "artifact"],
            [
                [
                    w["clip"],
                    str(w["frame"]),
                    _fmt(w["time_s"]),
                    w["shape"],
                    _fmt(w["error"]),
                    _fmt(w["reference"]),
                    _fmt(w["artifact"]),
                ]
                for w in d["worst_frames"]
            ],
        )
        parts.append(
            f"<h3>{html.escape(c['artifact'])} "
            f"<small>({d['precision_class']}, {html.escape(c['runtime'])})</small></h3>"
            f"<p>MAE {_fmt(d['rel_mae'])} of the reference's per-shape spread (absolute {_fmt(d['mae'])}) · max "
            f"{_fmt(d['rel_max'])} of the shape's range (absolute {_fmt(d['max_abs'])}) · PSNR {d['psnr_db']:.1f} dB "
            f"(peak: the reference's range, {_fmt(d['peak'])}) · lowest correlation {_corr(d['min_correlation'])} "
            f"over the {d['moving_shapes']} shapes that move, {d['frames']} frames of {', '.join(d['clips'])}.<br>"
            f"Mouth-critical correlation: {mouth}</p><p>Worst frames:</p>{worst}"
        )
    return "".join(parts)


def _latency_section(checks: list[dict[str, Any]]) -> str:
    rows = []
    for c in checks:
        if c["kind"] != "latency" or "threads" not in c["details"]:
            continue
        d = c["details"]
        for threads, f in d["threads"].items():
            rows.append(
                [
                    html.escape(c["artifact"]),
                    threads,
                    _fmt(f["median_ms"], "ms"),
                    _fmt(f["p95_ms"], "ms"),
                    _fmt(f.get("torch_median_ms"), "ms"),
                    _fmt(f.get("ratio_vs_torch")),
                    _fmt(f.get("spread")),
                    d.get("verdict", ""),
                    _fmt(d.get("rtf")),
                    _fmt(d.get("peak_rss_mb"), "MB"),
                ]
            )
    if not rows:
        return ""
    header = [
        "artifact",
        "threads",
        "median",
        "p95",
        "PyTorch median",
        "ratio",
        "block spread",
        "verdict",
        "RTF (own process)",
        "peak memory",
    ]
    return (
        "<h2>Latency (front end + step, per frame, interleaved with the PyTorch reference)</h2>"
        "<p>The build host is not the phone: the ratio to PyTorch is judged, absolute figures are evidence. "
        "A noisy measurement is inconclusive, not a failure (unless strict).</p>" + _table(header, rows)
    )


def _plots(data: dict[str, Any], bundle: Path) -> str:
    parts = []
    for rel in data["plots"]:
        path = bundle / rel
        if path.is_file():
            encoded = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<figure><img src='data:image/png;base64,{encoded}'><figcaption>{rel}</figcaption></figure>")
    return "<h2>Plots</h2>" + "".join(parts) if parts else ""


def _previews(data: dict[str, Any], bundle: Path) -> str:
    """The face videos (embedded, so the page stays self-contained, and linked), or why one is missing."""
    parts = []
    for preview in data.get("previews", []):
        path = bundle / preview["path"] if preview.get("path") else None
        if path is None or not path.is_file():
            parts.append(f"<p class=na>{html.escape(preview.get('note') or 'face preview missing')}</p>")
            continue
        encoded = base64.b64encode(path.read_bytes()).decode()
        rel = html.escape(preview["path"])
        parts.append(
            f"<figure><video controls preload='metadata' src='data:video/mp4;base64,{encoded}'></video>"
            f"<figcaption>The PyTorch reference (left) and {html.escape(preview['variant'])} (right) on "
            f"{html.escape(preview['clip'])}, {html.escape(preview['span'])}, with its sound: "
            f"<a href='{rel}'>{rel}</a></figcaption></figure>"
        )
    return "<h3>Face preview</h3>" + "".join(parts) if parts else ""


def _thresholds(data: dict[str, Any]) -> str:
    t = data["thresholds"]
    rows = [
        [
            name,
            _fmt(v["mae"]),
            _fmt(v["max_abs"]),
            f"{v['psnr_db']:g} dB",
            f"{v['min_correlation']:g}",
            html.escape(v["reason"]),
        ]
        for name, v in t["parity"].items()
    ]
    f = t["front_end"]
    rows.append(["front end (mel, absolute)", _fmt(f["mae"]), _fmt(f["max_abs"]), "–", "–", html.escape(f["reason"])])
    weights = ", ".join(f"{k} ≤ {v['relative_rms']}" for k, v in t["weights"].items())
    lat = t["latency"]
    header = [
        "precision",
        "MAE / ref. spread",
        "max / ref. range",
        "PSNR (peak: ref. range)",
        "min correlation (moving shapes)",
        "why",
    ]
    return (
        "<h2>Thresholds</h2>"
        + _table(header, rows)
        + f"<p>Decompressed weights (relative RMS error vs torch): {weights}. Model size ≤ "
        f"{t['model_bytes'] / 1e6:g} MB per file and per deployed pair. Latency: at most "
        f"{lat['max_ratio_vs_torch']:g}x the PyTorch reference's per-frame time, measured interleaved; "
        f"≤ {lat['mac_budget_per_s'] / 1e9:g} GMAC per second of audio; peak memory ≤ {t['memory_mb']} MB; "
        "with strict latency also p95 per frame ≤ "
        f"{_fmt(t['latency_ms_per_frame'])} ms (a tenth of a frame).</p>"
    )


def render_html(data: dict[str, Any], bundle: Path) -> str:
    """The report page; `bundle` is where the plots and previews referenced by `data` live."""
    failed = [c for c in data["checks"] if not c["passed"]]
    verdict = "PASSED" if data["passed"] else f"FAILED ({len(failed)} of {len(data['checks'])} checks)"
    machine = data["machine"]
    failures = "".join(
        f"<li>{html.escape(c['artifact'])}: {c['kind']} {html.escape(c['name'])}: {html.escape(c['reason'])}</li>"
        for c in failed
    )
    clips = ", ".join(f"{a['name']} ({a['seconds']:.1f} s)" for a in data["audio"])
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v)
    skipped = ""
    if data.get("skipped"):
        skipped = f"<br><b>Not run at the caller's request: {html.escape(', '.join(data['skipped']))}</b>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>a2bs validation: {data["platform"]} bundle</title>
<style>
body {{ font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }} .ok {{ color: #087f23; }} .bad {{ color: #c62828; }} .na {{ color: #8a6d00; }}
.verdict {{ font-size: 1.4em; padding: 0.4em 0.8em; display: inline-block;
           background: {"#e6f4ea" if data["passed"] else "#fdecea"}; }}
img, video {{ max-width: 100%; }} figure {{ margin: 1em 0; }}
</style></head><body>
<h1>a2bs validation: {data["platform"]} bundle, {data["fps"]} fps</h1>
<p class="verdict">{verdict}</p>
<p>Bundle <code>{html.escape(data["bundle"])}</code>, validated {data["created"]} in {data["seconds"]} s on
{html.escape(machine["cpu"])} ({machine["cores"]} cores, {html.escape(machine["os"])}); {html.escape(versions)}.<br>
Speech: {html.escape(clips)}. Every figure names the runtime that produced it.
{skipped}</p>
{f"<h2>Failures</h2><ul>{failures}</ul>" if failures else ""}
<h2>Checks</h2>{_checks_table(data["checks"])}
<h2>Parity against PyTorch</h2>{_parity_section(data["checks"])}
{_previews(data, bundle)}
{_latency_section(data["checks"])}
<p>{ON_DEVICE[data["platform"]]}</p>
{_thresholds(data)}
{_plots(data, bundle)}
</body></html>
"""


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The terminal summary: one line per check, then the verdict."""
    lines = []
    for c in data["checks"]:
        if c["kind"] == "integrity" and c["passed"]:
            continue  # one line per file would bury the rest; the verdict counts them
        status = "pass" if c["passed"] else "FAIL"
        if c["kind"] == "latency" and not c["details"].get("measured", True):
            status = "n/m "
        note = f"  <- {c['reason']}" if c["reason"] and not c["passed"] else ""
        if c["kind"] == "latency" and c["passed"] and c["details"].get("verdict") == "inconclusive":
            status, note = "n/c ", f"  ({c['reason']})"
        value = _fmt(c["value"], c["unit"])
        limit = f" (limit {_fmt(c['threshold'], c['unit'])})" if c["threshold"] is not None else ""
        name = f"{c['kind']:<9} {c['artifact']:<36} {c['name']}"
        lines.append(f"  {status}  {name}: {value}{limit} [{c['runtime']}]{note}")
    failed = sum(not c["passed"] for c in data["checks"])
    verdict = "PASSED" if data["passed"] else f"FAILED: {failed} of {len(data['checks'])} checks"
    if data.get("skipped"):
        verdict += f"; not run: {', '.join(data['skipped'])}"
    lines.append(f"validation {verdict} ({data['seconds']} s)")
    return lines


README_HEADING = "## Validation"


def readme_section(data: dict[str, Any]) -> str:
    """The bundle README's validation section: verdict, one row per model, how to measure on a device."""
    verdict = "**passed**" if data["passed"] else "**FAILED**"
    machine = data["machine"]
    lines = [
        README_HEADING,
        "",
        f"`a2bs validate` {verdict} on {data['created']} ({machine['cpu']}, {machine['cores']} cores); "
        "details in `report.html` and `report.json`."
        + (f" Not run: {', '.join(data['skipped'])}." if data.get("skipped") else ""),
        "",
        "| model | check | result | value | limit | runtime |",
        "|---|---|---|---|---|---|",
    ]
    for c in data["checks"]:
        if c["kind"] in ("integrity", "manifest") and c["passed"]:
            continue
        result = "pass" if c["passed"] else "FAIL"
        if c["kind"] == "latency" and not c["details"].get("measured", True):
            result = "not measured here"
        elif c["kind"] == "latency" and c["passed"] and c["details"].get("verdict") == "inconclusive":
            result = "inconclusive (host busy)"
        value, limit = _fmt(c["value"], c["unit"]), _fmt(c["threshold"], c["unit"])
        check = f"{c['kind']}: {c['name']}"
        lines.append(f"| `{c['artifact']}` | {check} | {result} | {value} | {limit} | {c['runtime']} |")
    lines += [
        "",
        "### On-device figures",
        "",
        html.unescape(ON_DEVICE[data["platform"]]).replace("<code>", "`").replace("</code>", "`"),
        "",
    ]
    return "\n".join(lines)
