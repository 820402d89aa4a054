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
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle.")] = False,
) -> None:
    """Build a bundle: model files, manifest.json, README.md; then print a summary table."""
    from a2bs.convert.bundle import PLATFORMS, build_bundle, check_out_dir, resolve_variants
    from a2bs.core.cli import _load

    platform = platform.lower()
    if platform not in PLATFORMS:
        raise A2BSError(f"unknown platform {platform!r}: use ios or android")
    out = out or Path("artifacts") / platform
    check_out_dir(out, force)  # before any slow work
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


def main() -> None:
    """Console entry point of `a2bs-convert`; a converter failure names its stage and operator."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass bars would bury our stage lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's INFO lines
    from a2bs.convert.common import ConversionError
    from a2bs.core.cli import run_app

    run_app(app, fatal=(ConversionError,))


if __name__ == "__main__":
    main()
