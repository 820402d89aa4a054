"""`a2bs-convert ios|android`: CoreML / TFLite bundles from a checkpoint."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Annotated

import typer

from a2bs.cli.common import load_model, run_app
from a2bs.core.errors import A2BSError, raise_if_interrupted

app = typer.Typer(
    name="a2bs-convert",
    help="Convert the a2bs model into an on-device bundle (CoreML for iOS, TFLite for Android).",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's two-column help, readable at 80 columns (as `a2bs`)
)


@app.command()
def convert(
    platform: Annotated[str, typer.Argument(help="ios or android.")],
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint folder. Default: the bundled one.")] = None,
    fps: Annotated[int | None, typer.Option(help="30 or 60 (default: the checkpoint's, else 30).")] = None,
    quantize: Annotated[
        str | None, typer.Option(help="Variant to add to the default one, or `all`. Default: the default variant.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Bundle folder. Default: artifacts/<platform>.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle (and an installed one).")] = False,
    validate: Annotated[
        bool, typer.Option(help="Run `a2bs validate` on the new bundle (skipping it leaves the bundle unvalidated).")
    ] = True,
    install_into: Annotated[
        Path | None, typer.Option(help="Sample app folder (ios_sample, android_sample): copy the bundle into it.")
    ] = None,
    only: Annotated[bool, typer.Option("--only", help="Just the --quantize variant, as the bundle's default.")] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="android: also the offline model of each float variant, many frames per call, that `a2bs infer` "
            "runs on files (apps do not need it).",
        ),
    ] = False,
    strict_latency: Annotated[
        bool | None,
        typer.Option(
            help="Validation also fails on the absolute per-frame budget and on an inconclusive latency "
            "measurement: for a quiet, dedicated host (default: $A2BS_STRICT_LATENCY=1)."
        ),
    ] = None,
) -> None:
    """Build a bundle: model files, manifest.json, README.md; validate it; print a summary table.

    The bundle is built and validated in a staging folder beside --out and replaces --out only if it
    passed; one that fails is kept in OUT.rejected for inspection."""
    from a2bs.convert.bundle import (
        PLATFORMS,
        build_bundle,
        check_out_dir,
        offline_variants,
        rejected_dir,
        resolve_variants,
    )

    platform = platform.lower()
    if platform not in PLATFORMS:
        raise A2BSError(f"unknown platform {platform!r}: use ios or android")
    out = out or Path("artifacts") / platform
    check_out_dir(out, force, validated=validate)  # before any slow work
    if install_into is not None and not validate:
        raise A2BSError("--install-into installs only a bundle that passed validation: drop --no-validate")
    target, clip = install_target(install_into, platform, force) if install_into else (None, "")
    variants = resolve_variants(platform, quantize, only)
    if offline:
        offline_variants(platform, variants)  # before any slow work
    ckpt = load_model(checkpoint, fps)
    started = time.perf_counter()

    def progress(stage: str) -> None:
        raise_if_interrupted()  # a safe point: Ctrl-C that a library swallowed stops the conversion here
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {stage}", err=True)

    reports = []

    def run_validation(staged: Path) -> bool:
        from a2bs.mobile_validation.validate import validate_bundle

        progress("validation (a2bs validate) of the new bundle before it replaces anything")
        reports.append(
            validate_bundle(
                staged, checkpoint=None, progress=progress, reference=ckpt, strict_latency=strict_latency, shown_as=out
            )
        )
        return reports[-1].passed

    result = build_bundle(
        platform,
        ckpt,
        variants,
        out,
        force=force,
        progress=progress,
        check=run_validation if validate else None,
        offline=offline,
    )
    typer.echo(f"\n{platform} bundle: {result.out} ({result.seconds:.1f} s)")
    typer.echo(f"{'variant':<14} {'role':<10} {'file':<36} {'size':>9}  parity (MAE vs PyTorch)")
    for row in result.rows:
        parity = f"{row['parity_mae']:.2e} ({row['runtime']})" if row["parity_mae"] is not None else row["runtime"]
        typer.echo(f"{row['variant']:<14} {row['role']:<10} {row['file']:<36} {row['bytes'] / 1e6:>7.2f}MB  {parity}")
    if reports:
        from a2bs.mobile_validation.report import summary_lines
        from a2bs.mobile_validation.validate import REPORT_HTML

        typer.echo("")
        for line in summary_lines(reports[-1].data):
            typer.echo(line)
        typer.echo(f"report: {result.out / REPORT_HTML}")
    else:
        typer.echo("not validated (--no-validate): run `a2bs validate` before shipping this bundle")
    if not result.passed:
        kept = "was left unchanged" if out.exists() else "was not created"
        typer.echo(f"validation FAILED: {out} {kept}; the rejected bundle is in {rejected_dir(out)}")
        if target is not None:
            typer.echo(f"not installed into {target}: the bundle failed validation")
        raise typer.Exit(1)
    if target is not None:
        install_bundle(result.out, target, clip, force)
        typer.echo(f"installed into {target}")


SAMPLE_SPEC = "a2bs-sample.json"
_CLIP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.wav")


def install_target(sample: Path, platform: str, force: bool) -> tuple[Path, str]:
    """Where a sample app expects its bundle, from the sample's a2bs-sample.json (untrusted: the config
    itself and `bundle_dir` must stay inside the sample, `clip` must be a plain .wav file name); checked
    before converting, with what is at `bundle_dir` (replaced only when a2bs installed it, with --force)."""
    from a2bs.convert.bundle import check_out_dir
    from a2bs.core.errors import Fields, read_json
    from a2bs.runtime.manifest import check_relative

    spec_path = sample / SAMPLE_SPEC
    if not os.path.lexists(spec_path):
        raise A2BSError(f"{sample} is not an a2bs sample app (no {SAMPLE_SPEC}): use ios_sample or android_sample")
    _inside_sample(sample, spec_path, spec_path, "the sample config")
    spec = Fields(read_json(spec_path, "a2bs sample config"), str(spec_path))
    spec_platform = spec.str("platform", choices=("ios", "android"))
    if spec_platform != platform:
        raise A2BSError(f"{sample} is the {spec_platform} sample; a {platform} bundle goes in {platform}_sample")
    bundle_dir = spec.str("bundle_dir", max_len=255)
    check_relative(spec_path, "bundle_dir", bundle_dir, inside="the sample")
    target = sample / bundle_dir
    _inside_sample(sample, target, spec_path, "'bundle_dir'")
    clip = spec.str("clip", optional=True, max_len=104) or "sample_clip.wav"
    if not _CLIP_NAME.fullmatch(clip):
        raise A2BSError(f"{spec_path}: 'clip' must be a plain .wav file name (letters, digits, . _ -), got {clip!r}")
    check_out_dir(target, force, fix=f"fix 'bundle_dir' in {spec_path}")
    return target, clip


def _inside_sample(sample: Path, path: Path, spec_path: Path, what: str) -> None:
    """`path` (followed through any symlink) stays inside the sample folder and is not the folder itself."""
    root, real = sample.resolve(), path.resolve()
    if not real.is_relative_to(root) or real == root:
        raise A2BSError(f"{spec_path}: {what} leads outside the sample (to {real}): refusing it")


def install_bundle(bundle: Path, target: Path, clip: str, force: bool = False) -> None:
    """Copy the bundle (models, manifest, README, report.json) and the bundled speech clip (for the app's
    file-playback mode) into the sample, with the marker that says a2bs installed it, replacing an
    installed bundle atomically (and nothing else: checked again under the lock)."""
    import shutil

    from a2bs.convert.bundle import check_out_dir
    from a2bs.core.audio import default_clip
    from a2bs.core.files import OutputLock, mark_as_made, replace_dir, staging_dir
    from a2bs.mobile_validation.parity import PLOTS_DIR
    from a2bs.mobile_validation.validate import REPORT_HTML
    from a2bs.runtime.manifest import load_manifest

    load_manifest(bundle)  # the bundle's files stay inside it: nothing from outside is copied into the app
    target.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(target):
        check_out_dir(target, force, fix="nothing was installed; fix 'bundle_dir'")  # again: it may have changed
        staging = staging_dir(target)
        try:
            # the app needs the models and the manifest; the HTML report and its plots stay with the bundle,
            # and nothing hidden or symlinked is copied
            def skipped(folder: str, names: list[str]) -> set[str]:
                return {
                    n
                    for n in names
                    if n in (REPORT_HTML, PLOTS_DIR) or n.startswith(".") or os.path.islink(os.path.join(folder, n))
                }

            shutil.copytree(bundle, staging, dirs_exist_ok=True, ignore=skipped)
            shutil.copyfile(default_clip(), staging / clip)
            mark_as_made(staging)
            raise_if_interrupted()
            replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def main() -> None:
    """Console entry point of `a2bs-convert`; a converter failure names its stage and operator."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass bars would bury our stage lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's INFO lines
    from a2bs.convert.common import ConversionError

    run_app(app, fatal=(ConversionError,))


if __name__ == "__main__":
    main()
