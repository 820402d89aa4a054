"""`a2bs`: the command line (infer, info, train, data, validate). Expected mistakes print one line and exit non-zero."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from a2bs.cli.common import check_fps, load_model, read_model_header, run_app
from a2bs.core.constants import LIFE_MAX_SEED
from a2bs.core.controls import DOCS as CONTROL_DOCS
from a2bs.core.controls import LIMITS as CONTROL_LIMITS
from a2bs.core.errors import A2BSError

app = typer.Typer(
    name="a2bs",
    help="Speech to the 52 ARKit blendshapes: offline inference, model info, training, bundle validation.",
    epilog="\b\nOn-device bundles (Core ML for iOS, LiteRT for Android) are built by\n"
    "a2bs-convert: see a2bs-convert --help.",  # \b: click keeps these lines as they are
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's two-column help: rich's four-column table leaves 20 columns at 80 wide
)


class Backend(StrEnum):
    auto = "auto"
    torch = "torch"
    tflite = "tflite"
    coreml = "coreml"


class Life(StrEnum):
    off = "off"
    subtle = "subtle"
    natural = "natural"


# `a2bs infer`'s option for each face control (docs/CONTROLS.md's table names them from here)
CONTROL_OPTIONS: dict[str, str] = {name: "--" + name.removesuffix("_s").replace("_", "-") for name in CONTROL_LIMITS}


def _control(name: str) -> Any:
    """The option of one face control (docs/CONTROLS.md): its limits and meaning from core/controls.py."""
    lo, hi = CONTROL_LIMITS[name]
    help_text = f"Face control: {CONTROL_DOCS[name]} (default: the bundle's)."
    return typer.Option(CONTROL_OPTIONS[name], min=lo, max=hi, help=help_text)


@app.command()
def infer(
    audio: Annotated[
        list[Path] | None,
        typer.Argument(
            help="WAV, FLAC, Ogg or MP3 files (any rate, bit depth, channels), folders (searched recursively) "
            "or list files (.txt: one path per line). Default: the bundled clip."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output .csv (Live Link Face layout), .json or .npy; for several "
            "inputs a folder that mirrors the input tree (default: out/).",
        ),
    ] = None,
    fps: Annotated[int | None, typer.Option(help="30 or 60 (default: the checkpoint's fps, else 30).")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint folder (config.json + model.safetensors). Default: bundled."),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(
            help="auto: the shipped LiteRT model of the default checkpoint (no torch: small and fast), or "
            "PyTorch when --checkpoint, --stride or --emotion-refresh ask for it; torch (the reference); "
            "a bundle's artifacts: tflite (LiteRT), coreml (macOS)."
        ),
    ] = Backend.auto,
    bundle: Annotated[Path | None, typer.Option(help="Bundle folder for --backend tflite/coreml.")] = None,
    variant: Annotated[str | None, typer.Option(help="Bundle variant (default: the bundle's default).")] = None,
    stride: Annotated[
        int, typer.Option(help="Run the model every N frames and interpolate between (1 = every frame).")
    ] = 1,
    emotion_refresh: Annotated[
        float | None,
        typer.Option(help="Re-extract emotion features every N seconds (default: once per file, at its end)."),
    ] = None,
    emotion_from: Annotated[
        Path | None,
        typer.Option(
            help="Take the expression (emotion features) from this clip instead of AUDIO, e.g. a "
            "take in the style you want."
        ),
    ] = None,
    per_frame: Annotated[
        bool,
        typer.Option(
            "--per-frame",
            help="LiteRT bundles: one frame per model call, exactly as the apps run (slower; by default a "
            "bundle's offline model computes the same frames many per call).",
        ),
    ] = False,
    life: Annotated[
        Life,
        typer.Option(
            help="The life layer: blinks, gaze, head motion and brow raises read from the speech's prosody, "
            "with the CSV's head and eye rotations (docs/LIFE.md); off gives the model's curves alone."
        ),
    ] = Life.natural,
    seed: Annotated[
        int, typer.Option(min=0, max=LIFE_MAX_SEED, help="The life layer's seed: the same seed, the same motion.")
    ] = 0,
    life_amount: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Scales the life layer's motion (0: off; default: the preset's amount)."),
    ] = None,
    lower_strength: Annotated[float | None, _control("lower_strength")] = None,
    upper_strength: Annotated[float | None, _control("upper_strength")] = None,
    expression_strength: Annotated[float | None, _control("expression_strength")] = None,
    lip_offset: Annotated[float | None, _control("lip_offset")] = None,
    lower_smoothing: Annotated[float | None, _control("lower_smoothing_s")] = None,
    upper_smoothing: Annotated[float | None, _control("upper_smoothing_s")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save a PNG of the mouth-critical curves.")] = None,
    preview: Annotated[
        Path | None,
        typer.Option(
            help="Also render an .mp4 of a face driven by the curves, with the sound (several inputs: --previews)."
        ),
    ] = None,
    previews: Annotated[
        bool, typer.Option("--previews", help="Several inputs: an .mp4 preview beside each animation.")
    ] = False,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="Output format, csv (default), json or npy; one input: -o's suffix says it."),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Several inputs: worker processes on this machine, each loads the model once.")
    ] = 1,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Several inputs: run on a Dask cluster, `auto` (local processes, --workers of them) or "
            "a scheduler address (tcp://host:8786)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")] = False,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Animate audio: 52 blendshapes per frame, for one file or many. Row k is the face at time k / fps."""
    from a2bs.cli.animate import AnimatorSpec
    from a2bs.cli.batch import is_batch
    from a2bs.core.audio import default_clip

    inputs = audio or [default_clip()]
    # Every cheap check first (audio, options, output paths), so mistakes fail before the model loads.
    check_fps(fps)
    if backend in (Backend.auto, Backend.torch) and (bundle is not None or variant is not None):
        raise A2BSError("--bundle and --variant go with --backend tflite or coreml")
    if backend == Backend.auto:
        from a2bs.runtime.manifest import shipped_bundle

        shipped = shipped_bundle(fps or 30)
        if checkpoint is None and stride == 1 and emotion_refresh is None and (shipped / "manifest.json").is_file():
            backend, bundle = Backend.tflite, shipped
        else:
            backend = Backend.torch
    if backend != Backend.torch:
        if bundle is None:
            raise A2BSError(f"--backend {backend} needs --bundle DIR (a folder made by a2bs-convert)")
        if checkpoint is not None or stride != 1 or emotion_refresh is not None:
            raise A2BSError(f"--checkpoint, --stride and --emotion-refresh go with --backend torch, not {backend}")
    controls = {
        "lower_strength": lower_strength,
        "upper_strength": upper_strength,
        "expression_strength": expression_strength,
        "lip_offset": lip_offset,
        "lower_smoothing_s": lower_smoothing,
        "upper_smoothing_s": upper_smoothing,
    }
    given = {CONTROL_OPTIONS[name]: (value, CONTROL_LIMITS[name]) for name, value in controls.items()}
    for option, (value, (lo, hi)) in {"--life-amount": (life_amount, (0.0, 1.0)), **given}.items():
        if value is not None and not lo <= value <= hi:  # a range check lets NaN through
            raise A2BSError(f"{option} must be a number in [{lo:g}, {hi:g}], got {value}")
    if life == Life.off and life_amount is not None:
        raise A2BSError("--life-amount goes with a life preset (subtle or natural), not --life off")
    if per_frame and backend != Backend.tflite:
        raise A2BSError("--per-frame goes with LiteRT models (--backend tflite, or the default without --checkpoint)")
    spec = AnimatorSpec(
        backend.value,
        checkpoint,
        fps,
        bundle,
        variant,
        stride,
        emotion_refresh,
        emotion_from,
        per_frame,
        life.value,
        seed,
        life_amount,
        tuple((name, value) for name, value in controls.items() if value is not None),
    )
    show = sys.stderr.isatty() if progress is None else progress
    if is_batch(inputs):
        from a2bs.cli.batch import run_batch

        if plot is not None or preview is not None:
            raise A2BSError("--plot and --preview go with one input file; for several use --previews")
        failures = run_batch(
            inputs,
            output or Path("out"),
            spec,
            output_format=output_format or "csv",
            workers=workers,
            dask=dask,
            force=force,
            previews=previews,
            show_progress=show,
            echo=typer.echo,
        )
        if failures:
            raise typer.Exit(1)
        return
    if workers != 1 or dask is not None or previews:
        raise A2BSError("--workers, --dask and --previews go with several inputs (files, folders or a list file)")
    if output_format is not None:
        from a2bs.cli.batch import OUTPUT_FORMATS

        if output_format not in OUTPUT_FORMATS:
            raise A2BSError(f"unsupported --format {output_format!r}: use csv, json or npy")
        if output is not None and output.suffix.lower() != f".{output_format}":
            raise A2BSError(f"--format {output_format} contradicts -o {output}: give one of them (or the same format)")
    _infer_one(inputs[0], output, spec, plot, preview, force, show, output_format or "csv")


def _infer_one(
    audio: Path,
    output: Path | None,
    spec: Any,
    plot: Path | None,
    preview: Path | None,
    force: bool,
    show: bool,
    output_format: str = "csv",
) -> None:
    from tqdm import tqdm

    from a2bs.cli.animate import Animator
    from a2bs.core.animation_io import check_output_path
    from a2bs.core.audio import n_output_frames
    from a2bs.core.plan import plan

    default_output = output is None
    output = output or Path("out") / f"{audio.stem}.{output_format}"
    early_plan = plan(audio, spec.fps or 30, spec.stride, spec.emotion_refresh, spec.emotion_from)
    if default_output:
        if output.parent.exists() and not output.parent.is_dir():
            raise A2BSError(f"{output.parent} is a file, not a folder: pass -o to choose where to write")
        if output.parent.is_dir():
            check_output_path(output, force=force)
        elif not os.access(output.parent.absolute().parent, os.W_OK | os.X_OK):
            raise A2BSError(
                f"cannot create the output folder {output.parent.absolute()} (the current folder is "
                "not writable): pass -o to choose where to write"
            )
    else:
        check_output_path(output, force=force)
    if plot is not None:
        _check_plot_path(plot, force)
    if preview is not None:
        from a2bs.viz.preview import check_preview_path

        check_preview_path(preview, force)
    inputs = {"the input audio": audio, "--emotion-from": spec.emotion_from}
    for what, written in (("-o", output), ("--plot", plot), ("--preview", preview)):
        _refuse_overwriting_inputs(what, written, inputs)
    animator = Animator(spec, load_model)
    if default_output:  # the default output folder is created only once everything else checked out
        try:
            output.parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise A2BSError(f"cannot create the output folder {output.parent}: {exc.strerror}; pass -o") from None
    total = n_output_frames(early_plan.info, animator.fps)
    with tqdm(total=total, unit="frame", disable=not show, desc="a2bs infer", file=sys.stderr) as bar:
        keep = total if preview is not None else 60 * animator.fps if plot is not None else 0
        written = animator.write(audio, output, force=force, progress=bar.update, keep_frames=keep)
    duration = written.duration_s
    typer.echo(
        f"wrote {output}: {written.n_frames} frames at {written.fps} fps for {duration:.2f} s of audio "
        f"in {written.seconds:.2f} s (RTF {written.seconds / max(duration, 1e-9):.3f}{animator.threads_note})"
    )
    if plot is not None and written.kept:
        import numpy as np

        from a2bs.viz.plots import plot_curves

        try:
            plot_curves(
                np.concatenate(written.kept)[: 60 * written.fps, :52],
                written.fps,
                plot,
                title=f"{audio.name} ({written.label})",
            )
        except OSError as exc:
            raise A2BSError(f"cannot write --plot {plot}: {exc.strerror or exc} ({output} was written)") from None
        typer.echo(f"wrote {plot}")
    if preview is not None and written.kept:
        import numpy as np

        from a2bs.viz.preview import render_preview

        render_preview(
            np.concatenate(written.kept),
            written.fps,
            preview,
            audio,
            labels=[written.label],
            title=audio.name,
            force=force,
        )
        typer.echo(f"wrote {preview}")


def _refuse_overwriting_inputs(what: str, written: Path | None, inputs: dict[str, Path | None]) -> None:
    """An output must not be one of the inputs, also through a symlink or a hard link (audio is read by
    content, so a WAV named take.csv is a valid input and a valid output path)."""
    if written is None or not written.exists():
        return
    for name, path in inputs.items():
        if path is not None and path.exists() and os.path.samefile(written, path):
            raise A2BSError(f"{what} {written} is {name} ({path}): choose another output path")


def _check_plot_path(plot: Path, force: bool) -> None:
    if plot.is_dir():
        raise A2BSError(f"--plot {plot} is a folder: give a .png file path")
    if plot.suffix.lower() != ".png":
        raise A2BSError(f"--plot must end in .png, got {plot.name}")
    if plot.exists() and not force:
        raise A2BSError(f"{plot} exists: pass --force to overwrite")
    if not plot.parent.is_dir():
        raise A2BSError(f"folder {plot.parent} does not exist: create it first (mkdir -p {plot.parent})")
    if not os.access(plot.parent, os.W_OK | os.X_OK) or (plot.exists() and not os.access(plot, os.W_OK)):
        raise A2BSError(f"cannot write --plot {plot}: permission denied")


@app.command()
def info(
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint folder. Default: bundled.")] = None,
    fps: Annotated[int | None, typer.Option(help="30 or 60.")] = None,
) -> None:
    """Print the model's size, parameters and MACs per output frame.

    Checks the checkpoint's config and weights header; reads no weight (no torch: a fraction of a second)."""
    from a2bs.core.architecture import describe

    header = read_model_header(checkpoint, fps)
    typer.echo(f"checkpoint: {header.source} ({'trained' if header.trained else 'untrained'})")
    typer.echo(describe(header.config))


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Dataset folder: takes/<name>.wav + <name>.csv (Live Link Face). "
            "Repeat to mix several (each keeps its own validation split)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder: last/ and best/ checkpoints, metrics.jsonl.")],
    fps: Annotated[int, typer.Option(help="30 or 60.")] = 30,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    steps_per_epoch: Annotated[int, typer.Option(min=1)] = 100,
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per step per process.")] = 4,
    seq_frames: Annotated[int, typer.Option(min=2, help="Output frames per training sequence.")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine annealed).")] = 3e-4,
    seed: int = 0,
    init: Annotated[Path | None, typer.Option(help="Start from this checkpoint's weights.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop after the epoch that passes this.")] = None,
    emotion_dropout: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of training sequences that see the neutral emotion vector.")
    ] = 0.3,
    specialization_weight: Annotated[
        float, typer.Option(min=0.0, help="Weight of the loss term that asks each blendshape to lean on one stream.")
    ] = 0.01,
    channel_db: Annotated[
        float,
        typer.Option(
            min=0.0, help="Random microphone/room colour per training sequence (dB standard deviation; 0 = off)."
        ),
    ] = 6.0,
    vocal_tract_warp: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Random vocal-tract length per training sequence: spectrum scaled by up to 1 +/- this (0 = off).",
        ),
    ] = 0.0,
    lip_gap_weight: Annotated[
        float,
        typer.Option(min=0.0, help="Weight of the lip-gap (jawOpen - mouthClose) loss term (0 = off)."),
    ] = 0.0,
    seal_boost: Annotated[
        float,
        typer.Option(min=0.0, help="Extra weight of sealed-lip target frames (gap 0) in the lip-gap term."),
    ] = 4.0,
    seal_margin: Annotated[
        float,
        typer.Option(min=0.0, max=0.08, help="Lip gap a bilabial closure aims at, below 0 (mouthClose above jawOpen)."),
    ] = 0.0,
    route_life_to_emotion: Annotated[
        bool,
        typer.Option(
            "--route-life-to-emotion",
            help="With --init: the shapes the life layer animates (eye*, brow*) take the emotion stream and only "
            "their own parameters train; every other shape's output stays the init's.",
        ),
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/last.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a non-empty OUT.")] = False,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Train the model on takes.

    \b
    Scale out over processes or machines with
      torchrun --nproc_per_node N --no-python a2bs train ..."""
    from a2bs.training.trainer import TrainConfig
    from a2bs.training.trainer import train as run_training

    check_fps(fps)
    config = TrainConfig(
        data=[str(d) for d in data],
        out=str(out),
        fps=fps,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        seq_frames=seq_frames,
        lr=lr,
        seed=seed,
        init=str(init) if init else None,
        max_minutes=max_minutes,
        emotion_dropout=emotion_dropout,
        specialization_weight=specialization_weight,
        channel_db=channel_db,
        vocal_tract_warp=vocal_tract_warp,
        lip_gap_weight=lip_gap_weight,
        seal_boost=seal_boost,
        seal_margin=seal_margin,
        route_life_to_emotion=route_life_to_emotion,
    )
    show = sys.stderr.isatty() if progress is None else progress
    run_training(config, resume=resume, force=force, log=typer.echo, progress=show)


data_app = typer.Typer(
    help="Training data: synthetic speech, real speech aligned to text. Synthetic speech comes from espeak-ng, "
    "real speech is aligned to its transcripts or to recognised text.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Corpus folder to create (must not exist).")],
    minutes: Annotated[float, typer.Option(help="Minutes of speech to synthesize.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Same seed, same corpus, byte for byte.")] = 0,
    fps: Annotated[int, typer.Option(help="Frame rate of the curves (Live Link Face records 60).")] = 60,
    background: Annotated[
        Path | None,
        typer.Option(help="Folder of real recordings: their room tone mixed in, rest targets on added non-speech."),
    ] = None,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Synthetic speech (espeak-ng) with ARKit curves. The curves follow its phoneme timing (docs/VISEMES.md)."""
    from tqdm import tqdm

    from a2bs.core.files import check_new_dir
    from a2bs.corpus.background import RoomToneBank
    from a2bs.corpus.espeak import espeak_available
    from a2bs.corpus.synth import build_corpus

    check_fps(fps)
    if not 0 < minutes <= 600:
        raise A2BSError(f"--minutes must be between 0 and 600, got {minutes}")
    check_new_dir(out, "a corpus")  # before the espeak-ng check: the cheaper mistake first
    if not espeak_available():
        raise A2BSError("espeak-ng is not installed: run `make setup` (or apt-get install espeak-ng)")
    bank = None if background is None else RoomToneBank.from_folder(background)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=100, unit="%", desc="a2bs data synth", disable=not show) as bar:

        def advance(fraction_done: float) -> None:
            bar.update(max(0, round(100 * fraction_done) - bar.n))

        corpus = build_corpus(out, minutes, seed, fps=fps, progress=advance, background=bank)
    split = corpus.get("split", {})
    n_train, n_val = len(split.get("train", [])), len(split.get("val", []))
    typer.echo(f"wrote {out}: {n_train} training and {n_val} validation takes ({corpus['duration_s'] / 60:.1f} min)")


@contextmanager
def _line_progress(desc: str, progress: bool | None) -> Iterator[Callable[[int, int], None]]:
    """A bar in lines for the corpus builders; yields their `progress(done, total)` callback."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(unit="line", desc=desc, disable=not show) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield advance


@data_app.command("align")
def data_align(
    speech: Annotated[Path, typer.Argument(help="Folder of lines: transcripts.tsv, or <name>.wav + <name>.txt pairs.")],
    out: Annotated[Path, typer.Option(help="Corpus folder to create (must not exist).")],
    fps: Annotated[int, typer.Option(help="Frame rate of the curves.")] = 60,
    copies: Annotated[int, typer.Option(help="Perturbed copies per line (speaker, pitch, rate, room, noise).")] = 2,
    val_speaker: Annotated[
        list[str] | None,
        typer.Option(help="Validation speaker (repeatable). Default: the speaker with the least audio."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the perturbations.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes (one aligner each).")] = 2,
    background: Annotated[
        Path | None,
        typer.Option(help="Folder of real recordings: their room tone mixed in, rest targets on added non-speech."),
    ] = None,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Real speech + transcripts -> takes with ARKit curves. Phone timings (PocketSphinx) give the curves, in
    takes `a2bs train` reads.

    Lines that cannot be used (missing audio, empty or non-English text, unknown words, digits, a
    transcript that does not match its audio) are skipped with a reason; see corpus/align.py."""
    from a2bs.corpus.align import build_aligned_corpus

    check_fps(fps)
    with _line_progress("a2bs data align", progress) as advance:
        corpus = build_aligned_corpus(
            speech,
            out,
            fps=fps,
            copies=copies,
            seed=seed,
            val_speakers=val_speaker,
            workers=workers,
            background=background,
            progress=advance,
            log=typer.echo,
        )
    split = corpus["split"]
    typer.echo(f"wrote {out}: {len(split['train'])} training and {len(split['val'])} validation takes")


@data_app.command("retarget")
def data_retarget(
    corpus: Annotated[Path, typer.Argument(help="An aligned corpus (a2bs data align) made with older targets.")],
    out: Annotated[Path, typer.Option(help="Corpus folder to create (must not exist).")],
    background: Annotated[
        Path | None,
        typer.Option(help="Folder of real recordings: their room tone mixed in, rest targets on added non-speech."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the per-take articulation scale and background.")] = 0,
    val_speaker: Annotated[
        list[str] | None, typer.Option(help="Validation speaker (repeatable). Default: the corpus's own split.")
    ] = None,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Recompute an aligned corpus's curves from its stored phones. Today's viseme targets, no new alignment."""
    from a2bs.corpus.align import retarget_corpus

    with _line_progress("a2bs data retarget", progress) as advance:
        made = retarget_corpus(
            corpus, out, background=background, seed=seed, val_speakers=val_speaker, progress=advance, log=typer.echo
        )
    typer.echo(f"wrote {out}: {len(made['split']['train'])} training and {len(made['split']['val'])} validation takes")


@data_app.command("transcribe")
def data_transcribe(
    speech: Annotated[
        Path,
        typer.Argument(help="Folder of lines: transcripts.tsv / utterances.tsv (a path column), or audio files."),
    ],
    out: Annotated[Path, typer.Option(help="Folder to create (must not exist): transcripts.tsv + transcribe.json.")],
    min_confidence: Annotated[
        float | None,
        typer.Option(help="Skip lines whose confidence (mean word posterior, 0-1) is lower. Default: 0.5 (measured)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes (one recogniser each).")] = 2,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """Lines without a script -> recognised text + confidence. PocketSphinx (US English), for `a2bs data align`.

    Lines with a script keep it; audio is referenced, not copied. Lines the recogniser cannot read
    (silence, clipping, music, another language, low confidence) are skipped with a reason."""
    from a2bs.corpus.transcribe import MIN_CONFIDENCE, transcribe_folder

    threshold = MIN_CONFIDENCE if min_confidence is None else min_confidence
    with _line_progress("a2bs data transcribe", progress) as advance:
        summary = transcribe_folder(
            speech, out, min_confidence=threshold, workers=workers, progress=advance, log=typer.echo
        )
    kept = summary["n_recognised"] + summary["n_scripted"]
    typer.echo(f"wrote {out / 'transcripts.tsv'}: {kept} lines; next: a2bs data align {out} --out CORPUS")


@data_app.command("voices")
def data_voices(
    texts: Annotated[Path, typer.Argument(help="Sentences: a transcripts.tsv (its text column) or one per line.")],
    out: Annotated[Path, typer.Option(help="Folder to create (must not exist): <voice>/<name>.wav + .txt + .segs.")],
    voice: Annotated[
        list[str] | None, typer.Option(help="Voice (repeatable): kal, ked (Festival), rms (Flite). Default: all three.")
    ] = None,
    lines: Annotated[int | None, typer.Option(min=1, help="Use only the first N sentences.")] = None,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: when stderr is a terminal).")] = None,
) -> None:
    """More speakers: Festival and Flite voices speak the script. With their own phone timings, for `a2bs data
    align`.

    More speakers for training (corpus/voices.py); the evaluation set's speakers are never among them."""
    from a2bs.corpus.voices import VOICES, read_texts, speak_lines

    sentences = read_texts(texts)[:lines]
    with _line_progress("a2bs data voices", progress) as advance:
        written = speak_lines(sentences, out, voice or list(VOICES), progress=advance, log=typer.echo)
    typer.echo(
        f"wrote {out}: "
        + ", ".join(f"{name} {n} lines" for name, n in written.items())
        + f"; next: a2bs data align {out} --out CORPUS"
    )


@app.command()
def validate(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder from a2bs-convert (e.g. artifacts/ios).")],
    audio: Annotated[
        list[Path] | None, typer.Option("--audio", help="More speech to test (repeatable); bundled clips always run.")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Reference checkpoint (the one the bundle was built from). Default: the shipped default "
            "checkpoint, if the bundle was built from it (matched by fingerprint)."
        ),
    ] = None,
    latency: Annotated[bool, typer.Option(help="Measure latency (--no-latency skips those checks).")] = True,
    strict_latency: Annotated[
        bool | None,
        typer.Option(
            help="Also fail on the absolute per-frame budget and on an inconclusive measurement: for a "
            "quiet, dedicated benchmark host (default: $A2BS_STRICT_LATENCY=1)."
        ),
    ] = None,
) -> None:
    """Check a bundle's models before shipping them. Every model: integrity, parity with PyTorch, size,
    streaming, latency.

    Writes report.json, report.html and plots into the bundle; exits 0 only if every check passes."""
    from a2bs.mobile_validation.report import summary_lines
    from a2bs.mobile_validation.validate import REPORT_HTML, validate_bundle

    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass bars would bury the stage lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's INFO lines
    started = time.perf_counter()

    def progress(stage: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {stage}", err=True)

    report = validate_bundle(
        bundle, audio, checkpoint, latency=latency, strict_latency=strict_latency, progress=progress
    )
    for line in summary_lines(report.data):
        typer.echo(line)
    typer.echo(f"report: {bundle / REPORT_HTML}")
    if not report.passed:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point of `a2bs`."""
    run_app(app)


if __name__ == "__main__":
    main()
