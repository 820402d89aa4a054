"""`a2bs validate BUNDLE`: prove that every artifact of a bundle matches the PyTorch reference, fits
under the size limit and runs fast enough; write `report.json`, `report.html` and plots into the bundle.

Checks (each one names its artifact, kind, runtime, value and threshold; a check that cannot run is a
failing check with the reason, never a skip and never a crash):

- integrity: each file of the manifest exists, of its kind, size (checked before hashing) and sha256
  (`runtime/manifest.py: verify_file`, which the runtimes apply too); no model file the manifest omits.
- manifest: each model's real inputs/outputs (read from the file) equal the manifest's; the reference
  checkpoint (--checkpoint, or the shipped default) is the one the bundle was built from (fingerprint).
- size: bytes on disk per model (an .mlpackage counts its whole folder), and the deployed pair
  (front end + step) <= 10 MB.
- parity: the app's frame loop (`runtime/engine.py: BundleEngine`, hop-sized PCM pieces) through the real runtime
  (LiteRT interpreter; Core ML on macOS, the NumPy MIL executor elsewhere) against offline PyTorch
  inference on real speech, every figure relative to how much the reference moves (MAE / spread, max /
  range, PSNR with the reference's range as peak, correlation of the moving shapes), worst frames. The
  front end is compared mel for mel. Compressed weights are decompressed and compared with the torch weights.
- streaming: the same audio pushed in irregular pieces and in one piece gives the same frames.
- latency: per-frame time (front end + step) of each TFLite variant as a ratio to the PyTorch reference
  measured interleaved with it, absolute median / p95, peak memory, MACs; fails only on what the artifact
  controls, "inconclusive" when the host is too noisy to judge; strict (absolute budget) on request.
  Core ML latency where Core ML runs (macOS); elsewhere the MAC count, marked as not measured.

Parity checks live in `parity.py` (metrics and gate: core/parity.py; limits: core/variants.py), latency
checks in `latency.py`, the HTML and README rendering in `report.py`; docs/VALIDATION.md explains the
thresholds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from a2bs.core import constants as C
from a2bs.core.audio import bundled_audio_dir, probe
from a2bs.core.checkpoint import CONFIG_FILE, default_checkpoint_dir, fingerprint, load_checkpoint
from a2bs.core.errors import A2BSError, one_line
from a2bs.core.files import OutputLock, replace_dir, staging_dir, write_text_atomic
from a2bs.core.progress import Progress
from a2bs.core.threads import choose_threads, usable_cores
from a2bs.core.variants import FRONT_END_LIMITS, PARITY_LIMITS, platform_variants
from a2bs.mobile_validation.checks import Check, machine_summary, not_run
from a2bs.mobile_validation.latency import MAC_BUDGET_PER_S, MAX_RATIO_VS_TORCH, run_latency
from a2bs.mobile_validation.parity import PLOTS_DIR, run_parity
from a2bs.mobile_validation.report import README_HEADING, readme_section, render_html
from a2bs.runtime.bundle_inference import io_mismatch
from a2bs.runtime.manifest import MAX_MODEL_BYTES, FileCheck, load_manifest, verify_file

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
STRICT_LATENCY_ENV = "A2BS_STRICT_LATENCY"


@dataclass
class Report:
    bundle: Path
    manifest: dict[str, Any]
    checks: list[Check]
    audio: list[dict[str, Any]]
    plots: list[str]
    seconds: float
    skipped: list[str] = field(default_factory=list)  # checks the caller chose not to run, said in the report
    shown_as: Path | None = None  # the bundle's path in the reports (default: `bundle`)
    data: dict[str, Any] = field(default_factory=dict)  # report.json as written

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def validate_bundle(
    bundle: Path,
    audio: list[Path] | None = None,
    checkpoint: Path | None = None,
    *,
    latency: bool = True,
    progress: Progress = lambda _: None,
    reference: Any = None,
    strict_latency: bool | None = None,
    shown_as: Path | None = None,
) -> Report:
    """Run every check on `bundle`, write the reports into it, and return the report.

    `reference` (a loaded Checkpoint) saves loading it again when the caller has it; it is still
    checked against the bundle's fingerprint. `strict_latency` (default: the environment variable
    A2BS_STRICT_LATENCY=1) judges latency by the absolute budget too, for a quiet, dedicated host.
    `shown_as` is the path the reports name: a2bs-convert validates a staging folder that it then
    renames to the bundle's own path."""

    started = time.perf_counter()
    bundle = Path(bundle)
    if not os.path.isdir(bundle):  # False for a name too long for the system, too
        raise A2BSError(f"no bundle folder at {bundle} (build one with a2bs-convert ios|android)")
    manifest = load_manifest(bundle)
    if manifest.get("format") != "a2bs-bundle" or manifest.get("platform") not in ("ios", "android"):
        raise A2BSError(f"{bundle}/manifest.json is not an a2bs bundle manifest (format/platform missing)")
    clips = _clips(audio)
    clip_paths = [Path(c["path"]) for c in clips]
    try:  # first, so a bundle validate cannot write its reports into is refused before minutes of work
        plot_dir = Path(tempfile.mkdtemp(prefix=".validation-", dir=bundle))
    except OSError as exc:
        raise A2BSError(
            f"cannot write into {bundle} ({exc.strerror or exc}): a2bs validate writes its reports into the "
            "bundle; validate a writable copy of it"
        ) from None
    torch_threads = None
    try:
        checks: list[Check] = []
        progress("integrity: size and sha256 of every file")
        files = _integrity(bundle, manifest, checks)
        intact = {rel for rel, found in files.items() if not found.problem}
        progress("manifest: model inputs/outputs and reference checkpoint")
        ckpt = _reference(manifest, checkpoint, checks, reference)
        _manifest_io(bundle, manifest, intact, checks)
        _sizes(manifest, files, checks)
        plots: list[str] = []
        if strict_latency is None:
            strict_latency = os.environ.get(STRICT_LATENCY_ENV, "") == "1"
        torch_threads = _reference_threads(progress)
        if ckpt is None:
            for entry in manifest["files"]:
                why = "no reference checkpoint (see the manifest check)"
                checks.append(not_run(entry, "parity", "end-to-end", why))
        else:
            plots = run_parity(bundle, manifest, intact, ckpt, clip_paths, checks, plot_dir, progress)
        if latency:
            run_latency(bundle, manifest, intact, ckpt, clip_paths[0], checks, progress, strict=strict_latency)
        skipped = [] if latency else ["latency (--no-latency)"]
        report = Report(bundle, manifest, checks, clips, plots, 0.0, skipped, shown_as=shown_as)
        report.seconds = time.perf_counter() - started

        with OutputLock(bundle):  # a concurrent a2bs-convert --force or validate of this bundle waits its turn
            try:
                _write(report, plot_dir)
            except OSError as exc:
                raise A2BSError(f"cannot write the validation report into {bundle}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(plot_dir, ignore_errors=True)
        if torch_threads is not None:
            _restore_threads(torch_threads)
    return report


def _reference_threads(progress: Progress) -> int:
    """Set torch's thread count for the reference inference deliberately (never more than the free
    cores); returns the count it had, to restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(choose_threads(usable_cores(), "the PyTorch reference", progress))
    return before


def _restore_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# --- inputs ------------------------------------------------------------------------------------


def _clips(audio: list[Path] | None) -> list[dict[str, Any]]:
    """The bundled clips plus `--audio`, each probed once (a clear AudioError before any slow work)."""

    clips = []
    for path in sorted(bundled_audio_dir().glob("*.wav")) + [Path(a) for a in audio or []]:
        info = probe(path)
        clips.append({"path": str(path), "name": path.name, "seconds": round(info.duration_s, 3)})
    return clips


def _integrity(bundle: Path, manifest: dict[str, Any], checks: list[Check]) -> dict[str, FileCheck]:
    """Each listed file through `verify_file` (sizes before hashes); model-looking files the manifest
    omits. Returns what was found per listed path."""

    found = {}
    for entry in manifest["files"]:
        found[entry["path"]] = result = verify_file(bundle, entry)
        details = {k: v for k, v in (("sha256", result.sha256), ("bytes", result.bytes)) if v is not None}
        checks.append(
            Check(
                entry["path"],
                "integrity",
                "sha256",
                not result.problem,
                None,
                None,
                "sha256",
                reason=result.problem,
                details=details,
            )
        )
    listed = {e["path"] for e in manifest["files"]}
    for path in sorted(bundle.iterdir()):
        if path.suffix in (".tflite", ".mlpackage", ".mlmodel", ".mlmodelc") and path.name not in listed:
            checks.append(
                Check(
                    path.name,
                    "integrity",
                    "listed in manifest",
                    False,
                    None,
                    None,
                    "manifest",
                    reason=f"{path.name} is in the bundle but not in manifest.json",
                )
            )
    return found


def _reference(manifest: dict[str, Any], checkpoint: Path | None, checks: list[Check], loaded: Any = None) -> Any:
    """The torch reference: `loaded` (a2bs-convert's own checkpoint), else --checkpoint, else the shipped
    default checkpoint for the bundle's fps, each taken only when its fingerprint is the manifest's (an
    explicit --checkpoint also when the manifest records none), so a parity figure is never computed
    against the wrong model. Never a folder named by the manifest: it is untrusted, and could name any
    folder on the machine. A reference that cannot be found or loaded is a failing check saying why."""
    wanted = manifest["checkpoint"].get("fingerprint")
    tried = []

    def found(ckpt: Any, source: str) -> Any:
        details = {"checkpoint": source, "fingerprint": fingerprint(ckpt)}
        checks.append(
            Check("manifest.json", "manifest", "reference checkpoint", True, None, None, "PyTorch", details=details)
        )
        return ckpt

    if loaded is not None:
        if fingerprint(loaded) == wanted:
            return found(loaded, loaded.source)
        tried.append(f"{loaded.source} (different weights)")
    fps = int(manifest["fps"])
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint_dir(fps)
    if checkpoint is None and not (path / CONFIG_FILE).is_file():
        tried.append(f"the shipped default for {fps} fps (not installed)")
    else:
        try:
            ckpt = load_checkpoint(path)
        except A2BSError as exc:
            tried.append(f"{path} ({one_line(exc, 200)})")
        else:
            if fingerprint(ckpt) == wanted or (wanted is None and checkpoint is not None):
                return found(ckpt, str(path))
            tried.append(f"{path} (different weights)")
    reason = (
        "no checkpoint matches the one this bundle was built from; tried "
        + "; ".join(tried)
        + ". Pass --checkpoint DIR (the checkpoint the bundle was built from)"
    )
    checks.append(
        Check("manifest.json", "manifest", "reference checkpoint", False, None, None, "PyTorch", reason=reason)
    )
    return None


def _manifest_io(bundle: Path, manifest: dict[str, Any], intact: set[str], checks: list[Check]) -> None:
    for entry in manifest["files"]:
        if entry["path"] not in intact:
            checks.append(not_run(entry, "manifest", "inputs/outputs", "file failed its integrity check"))
            continue
        try:
            problem = io_mismatch(bundle / entry["path"], manifest["platform"], manifest["models"][entry["role"]])
        except Exception as exc:  # a model the runtime cannot even open is a failing check
            checks.append(not_run(entry, "manifest", "inputs/outputs", f"cannot read the model: {one_line(exc)}"))
            continue
        checks.append(
            Check(
                entry["path"],
                "manifest",
                "inputs/outputs",
                not problem,
                None,
                None,
                "LiteRT interpreter" if manifest["platform"] == "android" else "Core ML spec",
                reason=problem,
            )
        )


def _sizes(manifest: dict[str, Any], files: dict[str, FileCheck], checks: list[Check]) -> None:
    """Bytes on disk of each model and of each deployed pair, as `verify_file` measured them."""

    sizes = {}
    for entry in manifest["files"]:
        size = files[entry["path"]].bytes
        if size is None:
            checks.append(not_run(entry, "size", "bytes on disk", files[entry["path"]].problem))
            continue
        sizes[(entry["role"], entry["variant"])] = size
        ok = size <= MAX_MODEL_BYTES
        checks.append(
            Check(
                entry["path"],
                "size",
                "bytes on disk",
                ok,
                size / 1e6,
                MAX_MODEL_BYTES / 1e6,
                "disk",
                unit="MB",
                reason="" if ok else f"{size / 1e6:.2f} MB > 10 MB",
            )
        )
    front = next((b for (role, _), b in sizes.items() if role == "front_end"), None)
    for (role, variant), size in sizes.items():
        if role == "step" and front is not None:
            total = size + front
            ok = total <= MAX_MODEL_BYTES
            checks.append(
                Check(
                    f"front end + step {variant}",
                    "size",
                    "deployed pair",
                    ok,
                    total / 1e6,
                    MAX_MODEL_BYTES / 1e6,
                    "disk",
                    unit="MB",
                    reason="" if ok else f"together {total / 1e6:.2f} MB > 10 MB",
                )
            )


# --- reports -----------------------------------------------------------------------------------


def report_json(report: Report) -> dict[str, Any]:
    from importlib.metadata import version

    versions = {}
    for package in ("a2bs", "torch", "ai-edge-litert", "coremltools"):
        try:
            versions[package] = version(package)
        except Exception:
            versions[package] = None
    return {
        "format": "a2bs-validation",
        "passed": report.passed,
        "bundle": str(report.shown_as or report.bundle),
        "platform": report.manifest["platform"],
        "fps": report.manifest["fps"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(report.seconds, 1),
        "machine": machine_summary(),
        "versions": versions,
        "audio": report.audio,
        "thresholds": {
            "parity": {k: asdict(v) for k, v in PARITY_LIMITS.items()},
            "front_end": asdict(FRONT_END_LIMITS),
            "weights": {
                name: {"relative_rms": row.weight_limit[0], "reason": row.weight_limit[1]}
                for name, row in platform_variants(report.manifest["platform"]).items()
                if row.weight_limit
            },
            "model_bytes": MAX_MODEL_BYTES,
            "latency_ms_per_frame": C.RTF_TARGET * 1000.0 / report.manifest["fps"],
            "latency": {
                "max_ratio_vs_torch": MAX_RATIO_VS_TORCH,
                "mac_budget_per_s": MAC_BUDGET_PER_S,
                "strict_budget_ms_per_frame": C.RTF_TARGET * 1000.0 / report.manifest["fps"],
            },
            "memory_mb": C.MEMORY_TARGET_MB,
        },
        "skipped": report.skipped,
        "checks": [asdict(c) for c in report.checks],
        "plots": report.plots,
        "previews": [c.details["preview"] for c in report.checks if c.details.get("preview")],
    }


def _write(report: Report, plot_dir: Path) -> None:
    """report.json, report.html, the plots (and face previews) and manifest["validation"], each replaced
    atomically."""

    bundle = report.bundle
    data = report.data = report_json(report)
    figures = sorted(plot_dir.glob("*.png")) + sorted(plot_dir.glob("*.mp4"))
    staged = staging_dir(bundle / PLOTS_DIR)  # replaced even when empty: no stale plots from an earlier run
    try:
        for figure in figures:
            os.replace(figure, staged / figure.name)
        replace_dir(staged, bundle / PLOTS_DIR)
    except BaseException:  # a signal mid-way leaves no staging folder in the bundle
        shutil.rmtree(staged, ignore_errors=True)
        raise
    write_text_atomic(bundle / REPORT_JSON, json.dumps(data, indent=1) + "\n")
    write_text_atomic(bundle / REPORT_HTML, render_html(data, bundle))
    readme = bundle / "README.md"
    if readme.is_file() and not readme.is_symlink():
        text = readme.read_text().split("\n" + README_HEADING + "\n")[0].rstrip("\n")
        write_text_atomic(readme, text + "\n\n" + readme_section(data))
    manifest = json.loads((bundle / "manifest.json").read_text())
    failed = report.failures()
    manifest["validation"] = {
        "passed": report.passed,
        "report": REPORT_JSON,
        "html": REPORT_HTML,
        "created": data["created"],
        "checks": len(report.checks),
        "skipped": report.skipped,
        "failed": [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in failed],
        "machine": f"{data['machine']['cpu']}, {data['machine']['cores']} cores, {data['machine']['os']}",
    }
    write_text_atomic(bundle / "manifest.json", json.dumps(manifest, indent=1) + "\n")
