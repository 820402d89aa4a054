"""Write the docs' generated tables from their one source each, or check that they are current.

- docs/ARCHITECTURE.md, "model-figures": sizes and MACs of the bundled default checkpoints, measured by
  `a2bs.core.architecture.model_figures` (what `a2bs info` prints);
- docs/VALIDATION.md, "variants": every row of `a2bs.core.variants` (deployment target,
  precision class and its limits, weight limit) with the step sizes of the last
  `benchmarks/bench_artifacts.py` run (benchmarks/results/artifacts.json);
- docs/LIFE.md, "life-params": every parameter of `a2bs.core.life.LifeParams` (both presets, the limits
  a manifest may hold, what it does); "life-figures": the last `benchmarks/bench_life.py` run
  (benchmarks/results/life.json);
- docs/LIFE.md, "expression-figures": the expression stream figures of the same run (S_overall, variation per
  shape group over an utterance, a calm against a lively reading);
- docs/CONTROLS.md, "controls": every face control of `a2bs.core.controls.FaceControls` (default, limits,
  the `a2bs infer` option, what it does).

    python benchmarks/docs_tables.py           # rewrite the blocks in place
    python benchmarks/docs_tables.py --check   # exit 1 naming the stale blocks (the test suite runs this)

Each block sits between `<!-- NAME:begin (benchmarks/docs_tables.py) -->` and `<!-- NAME:end -->`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "benchmarks" / "results" / "artifacts.json"
LIFE = ROOT / "benchmarks" / "results" / "life.json"


def model_figures_table() -> str:
    from a2bs.core.architecture import model_figures
    from a2bs.core.checkpoint import default_header
    from a2bs.core.constants import OFFLINE_FRAMES

    figures = [model_figures(default_header(fps).config) for fps in (30, 60)]
    rows = [
        ("parameters", lambda f: f"{f['parameters']:,} ({f['fp32_mb']:.2f} MB fp32)"),
        (
            f"offline LiteRT `DeployOffline` (`a2bs infer`, {OFFLINE_FRAMES} frames per call), per output frame",
            lambda f: f"{f['offline_model_mmac']:.1f} MMAC",
        ),
        (
            "offline PyTorch `forward_sequence` (`a2bs infer --checkpoint`), per output frame",
            lambda f: f"{f['offline_mmac']:.1f} MMAC",
        ),
        (
            "`A2BSModel.step`, per frame (reference, constants recomputed)",
            lambda f: f"{f['reference_step_mmac']:.1f} MMAC",
        ),
        ("shipped `DeployStep`, per frame (constants folded)", lambda f: f"{f['shipped_step_mmac']:.1f} MMAC"),
        ("front end, per frame", lambda f: f"{f['front_end_mmac']:.2f} MMAC"),
        ("on device per second (shipped step + front end)", lambda f: f"{f['device_gmac_per_s']:.2f} GMAC/s"),
    ]
    lines = ["| | 30 fps | 60 fps |", "|---|---|---|"]
    lines += [f"| {name} | {cell(figures[0])} | {cell(figures[1])} |" for name, cell in rows]
    return "\n".join(lines)


def variants_table() -> str:
    from a2bs.core.variants import VARIANTS

    sizes: dict[tuple[str, int, str], float] = {}
    measured = "no `benchmarks/results/artifacts.json` yet"
    if ARTIFACTS.is_file():
        data = json.loads(ARTIFACTS.read_text())
        measured = f"sizes from `bench_artifacts.py` of {data['created'][:10]}"
        sizes = {(r["platform"], r["fps"], r["variant"]): r["mb"] for r in data["rows"] if r["role"] == "step"}
    lines = [
        f"Generated from `core/variants.py` ({measured}). Limits: relative MAE / relative max / PSNR / "
        "minimum correlation, as defined above.",
        "",
        "| platform | variant | deployment target | step size 30 / 60 fps | precision class: limits (why) "
        "| weights (relative RMS) | what it is |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        size = " / ".join(
            f"{sizes[(v.platform, fps, v.name)]:.2f} MB" if (v.platform, fps, v.name) in sizes else "-"
            for fps in (30, 60)
        )
        lim = v.limits
        limits = f"{v.precision_class}: {lim.mae:g} / {lim.max_abs:g} / {lim.psnr_db:g} dB / {lim.min_correlation:g} "
        weights = f"{v.weight_limit[0]:g} ({v.weight_limit[1]})" if v.weight_limit else "float, not checked"
        name = f"`{v.name}`" + (" (default)" if v.default else "")
        lines.append(
            f"| {v.platform} | {name} | {v.deployment_target} | {size} | {limits}"
            f"({lim.reason}) | {weights} | {v.description} |"
        )
    return "\n".join(lines)


def life_params_table() -> str:
    from dataclasses import fields

    from a2bs.core.life import DOCS, LIMITS, PRESETS, LifeParams

    def show(value: object) -> str:
        return f"[{value[0]:g}, {value[1]:g}]" if isinstance(value, tuple) else f"{value:g}"

    lines = ["| parameter | natural | subtle | limits | what it is |", "|---|---|---|---|---|"]
    for f in fields(LifeParams):
        natural, subtle = getattr(PRESETS["natural"], f.name), getattr(PRESETS["subtle"], f.name)
        lo, hi = LIMITS[f.name]
        changed = "**" if natural != subtle else ""
        lines.append(
            f"| `{f.name}` | {show(natural)} | {changed}{show(subtle)}{changed} | {lo:g} .. {hi:g} | {DOCS[f.name]} |"
        )
    return "\n".join(lines)


def controls_table() -> str:
    from dataclasses import fields

    from a2bs.cli.main import CONTROL_OPTIONS
    from a2bs.core.controls import DOCS, LIMITS, FaceControls

    lines = ["| control (manifest key) | `a2bs infer` | default | limits | what it does |", "|---|---|---|---|---|"]
    for f in fields(FaceControls):
        lo, hi = LIMITS[f.name]
        option = CONTROL_OPTIONS[f.name]
        lines.append(f"| `{f.name}` | `{option}` | {f.default:g} | {lo:g} .. {hi:g} | {DOCS[f.name]} |")
    return "\n".join(lines)


def life_figures_table() -> str:
    if not LIFE.is_file():
        return "No `benchmarks/results/life.json` yet: run `benchmarks/bench_life.py`."
    data = json.loads(LIFE.read_text())
    files = data["files"]

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    rows = [
        ("minutes of audio (speaking share)", lambda f: f"{f['minutes']:g} ({100 * f['speaking_share']:.1f} %)"),
        ("blinks / min, all", lambda f: rate(f["blinks_per_min"])),
        ("blinks / min while speaking", lambda f: rate(f["blinks_per_min_speaking"])),
        ("blinks / min in pauses (all / not at a phrase end)", lambda f: f"{rate(f['blinks_per_min_in_pauses'])} / "
         f"{rate(f['blinks_per_min_in_pauses_not_at_phrase_ends'])}"),
        ("blink duration, mean (closing / opening time)", lambda f: f"{f['blink_duration_ms_mean']:g} ms "
         f"({f['blink_close_over_open_mean']:g})"),
        ("saccades / min (of them looks away); median size", lambda f: f"{f['events_per_min'].get('saccade', 0):g} "
         f"({f['events_per_min'].get('aversion', 0):g}); {f['saccade_amplitude_deg_median']:g} deg"),
        ("accents / min: nods, brow raises", lambda f: f"{f['events_per_min'].get('accent', 0):g}: "
         f"{f['events_per_min'].get('nod', 0):g}, {f['events_per_min'].get('brow', 0):g}"),
        ("phrase ends / min (settling nods)", lambda f: f"{f['events_per_min'].get('phrase_end', 0):g}"),
        ("head yaw / pitch / roll range, deg", lambda f: " / ".join(
            f"{lo:+.1f}..{hi:+.1f}" for lo, hi in zip(f["head_deg_min"], f["head_deg_max"], strict=True))),
        ("head yaw / pitch / roll std, deg", lambda f: " / ".join(f"{v:.2f}" for v in f["head_deg_std"])),
        ("`a2bs infer` whole process, off / natural (median)", lambda f: f"{f['infer_s_median']['off']:g} s / "
         f"{f['infer_s_median']['natural']:g} s (+{f['life_adds_s']:g} s)"),
    ]  # fmt: skip
    machine = data["machine"]
    lines = [
        f"Generated from `benchmarks/results/life.json` ({machine['cpu']}, {machine['cores']} cores, load "
        f"{data['load_average_1min']:g}; `a2bs infer` at {files[0]['fps']} fps, default backend, seed 0, runs "
        f"interleaved, pinned to one core).",
        "",
        "| | " + " | ".join(f"`{f['audio']}`" for f in files) + " |",
        "|---|" + "---|" * len(files),
    ]
    lines += [f"| {name} | " + " | ".join(cell(f) for f in files) + " |" for name, cell in rows]
    return "\n".join(lines)


def expression_figures_table() -> str:
    data = json.loads(LIFE.read_text()) if LIFE.is_file() else {}
    e = data.get("expression")
    if e is None:
        return "No expression figures yet: run `benchmarks/bench_life.py` with the evaluation set present."
    groups = list(e["variation_std_by_group"])
    calm, lively = e["mean_by_group"]["calm"], e["mean_by_group"]["lively"]
    lines = [
        f"Generated from `benchmarks/results/life.json`: the shipped 30 fps model, S_overall {e['s_overall']:.3f} "
        f"(the spec: 0.6-0.9). Variation: the standard deviation of each shape over an utterance, averaged over the "
        f"group's shapes and the {e['utterances']} utterances of `shared/eval/real-speech`. Calm / lively: "
        f"{len(e['reading_utterances'])} utterances (one per speaker) animated with the expression of a calm and "
        "of a lively PSOLA reading of themselves (`a2bs infer --emotion-from`); the mouth is the original's.",
        "",
        "| group | variation, model | variation, + life layer | mean, calm | mean, lively | mean abs lively - calm |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g} | {e['variation_std_by_group'][g]:.4f} | {e['variation_std_by_group_with_life'][g]:.4f} | "
            f"{calm[g]:.4f} | {lively[g]:.4f} | {e['lively_minus_calm_mean_abs_by_group'][g]:.4f} |"
        )
    return "\n".join(lines)


BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {
    "model-figures": (ROOT / "docs" / "ARCHITECTURE.md", model_figures_table),
    "variants": (ROOT / "docs" / "VALIDATION.md", variants_table),
    "life-params": (ROOT / "docs" / "LIFE.md", life_params_table),
    "life-figures": (ROOT / "docs" / "LIFE.md", life_figures_table),
    "expression-figures": (ROOT / "docs" / "LIFE.md", expression_figures_table),
    "controls": (ROOT / "docs" / "CONTROLS.md", controls_table),
}


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin (benchmarks/docs_tables.py) -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"the markers of block {name!r} are missing: add {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is not what its source gives")
    args = parser.parse_args()
    stale = []
    for name, (path, make) in BLOCKS.items():
        text = path.read_text()
        new = replace_block(text, name, make())
        if new != text:
            stale.append(f"{path.relative_to(ROOT)} ({name})")
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        sys.exit(f"stale generated tables: {', '.join(stale)}; run `python benchmarks/docs_tables.py`")
    print("up to date" if not stale else f"rewrote {', '.join(stale)}")


if __name__ == "__main__":
    main()
