"""`a2bs-convert ios|android`: CoreML / TFLite bundles from a checkpoint."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from a2bs.core.errors import A2BSError

app = typer.Typer(
    name="a2bs-convert",
    help="Convert the a2bs model into an on-device bundle (CoreML for iOS, TFLite for Android).",
    add_completion=False,
    pretty_exceptions_enable=False,
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
        bool, typer.Option(help="Run `a2bs validate` on the new bundle (--no-validate leaves it unvalidated).")
    ] = True,
    install_into: Annotated[
        Path | None, typer.Option(help="Sample app folder (ios_sample, android_sample): copy the bundle into it.")
    ] = None,
) -> None:
    """Build a bundle: model files, manifest.json, README.md; validate it; print a summary table."""
    from a2bs.convert.bundle import PLATFORMS, build_bundle, check_out_dir, resolve_variants
    from a2bs.core.cli import _load

    platform = platform.lower()
    if platform not in PLATFORMS:
        raise A2BSError(f"unknown platform {platform!r}: use ios or android")
    out = out or Path("artifacts") / platform
    check_out_dir(out, force)  # before any slow work
    target, clip = install_target(install_into, platform, force) if install_into else (None, "")
    variants = resolve_variants(platform, quantize)
    ckpt = _load(checkpoint, fps)
    started = time.perf_counter()

    def progress(stage: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {stage}", err=True)

    result = build_bundle(platform, ckpt, variants, out, force=force, progress=progress)
    typer.echo(f"\n{platform} bundle: {result.out} ({result.seconds:.1f} s)")
    typer.echo(f"{'variant':<14} {'role':<10} {'file':<36} {'size':>9}  parity (MAE vs PyTorch)")
    for row in result.rows:
        parity = f"{row['parity_mae']:.2e} ({row['runtime']})" if row["parity_mae"] is not None else row["runtime"]
        typer.echo(f"{row['variant']:<14} {row['role']:<10} {row['file']:<36} {row['bytes'] / 1e6:>7.2f}MB  {parity}")
    passed = True
    if validate:
        from a2bs.mobile_validation.report import summary_lines
        from a2bs.mobile_validation.validate import REPORT_HTML, validate_bundle

        typer.echo("")
        report = validate_bundle(result.out, checkpoint=None, progress=progress, reference=ckpt)
        for line in summary_lines(report.data):
            typer.echo(line)
        typer.echo(f"report: {result.out / REPORT_HTML}")
        passed = report.passed
    else:
        typer.echo("not validated (--no-validate): run `a2bs validate` before shipping this bundle")
    if not passed:
        if target is not None:
            typer.echo(f"not installed into {target}: the bundle failed validation")
        raise typer.Exit(1)
    if target is not None:
        install_bundle(result.out, target, clip)
        typer.echo(f"installed into {target}")


def install_target(sample: Path, platform: str, force: bool) -> tuple[Path, str]:
    """Where a sample app expects its bundle, from the sample's a2bs-sample.json; checked before converting."""
    import json

    spec_path = sample / "a2bs-sample.json"
    if not spec_path.is_file():
        raise A2BSError(f"{sample} is not an a2bs sample app (no a2bs-sample.json): use ios_sample or android_sample")
    spec = json.loads(spec_path.read_text())
    if spec.get("platform") != platform:
        raise A2BSError(f"{sample} is the {spec.get('platform')} sample; a {platform} bundle goes in {platform}_sample")
    target = sample / spec["bundle_dir"]
    if target.exists() and any(target.iterdir()) and not force:
        raise A2BSError(f"{target} already holds a bundle: add --force to replace it")
    return target, spec.get("clip", "sample_clip.wav")


def install_bundle(bundle: Path, target: Path, clip: str) -> None:
    """Copy the bundle (models, manifest, README, report.json) and the bundled speech clip (for the app's
    file-playback mode) into the sample, replacing an installed bundle atomically."""
    import shutil

    from a2bs.core.checkpoint import bundled_audio_dir
    from a2bs.core.export import replace_dir, staging_dir
    from a2bs.mobile_validation.parity import PLOTS_DIR
    from a2bs.mobile_validation.validate import REPORT_HTML

    staging = staging_dir(target)
    try:
        # the app needs the models and the manifest; the HTML report and its plots stay with the bundle
        shutil.copytree(bundle, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(REPORT_HTML, PLOTS_DIR))
        shutil.copyfile(bundled_audio_dir() / "speech_en_us.wav", staging / clip)
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main() -> None:
    """Console entry point of `a2bs-convert`; a converter failure names its stage and operator."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass bars would bury our stage lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's INFO lines
    from a2bs.convert.common import ConversionError
    from a2bs.core.cli import run_app

    run_app(app, fatal=(ConversionError,))


if __name__ == "__main__":
    main()
