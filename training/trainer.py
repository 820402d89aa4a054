"""`a2bs train`: the spec's multi-component loss, AdamW + cosine annealing, sequence batches,
validation metrics, safetensors checkpoints, resume, and data-parallel training (torchrun, gloo).

A training example is a sequence of `seq_frames` consecutive output frames of one take with its
full mel context, so smoothing and the temporal loss act on real sequences.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from a2bs.core import constants as C
from a2bs.core.architecture import ModelConfig
from a2bs.core.blendshapes import EXPRESSION_INDICES, INDEX, MOUTH_INDICES
from a2bs.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from a2bs.core.emotion import EmotionStats, emotion_features_at
from a2bs.core.errors import A2BSError
from a2bs.core.features import MelFrontEnd, mel_edges_hz
from a2bs.core.inference import mel_windows
from a2bs.core.life import LIFE_SHAPES
from a2bs.core.model import A2BSModel, smooth
from a2bs.core.threads import set_torch_threads
from a2bs.corpus.dataset import Take, load_takes, split_takes
from a2bs.corpus.visemes import PAUSES, REST
from a2bs.training.articulation import (
    CONTRASTS,
    bilabial_min_gaps,
    contrast_aucs,
    contrast_samples,
    is_espeak,
    lip_gap,
    overclosed_rate,
    pause_jaw,
    peak_offsets_ms,
    rest,
    seal_rate,
)
from a2bs.viz.plots import plot_training

SEALED_TARGET_GAP = 0.005
REST_JAW_OPEN = REST["jawOpen"] + 0.005  # above the rest pose's jaw, a sealed frame is a closure, not a pause
STATE_WEIGHTS = "training_state.safetensors"
STATE_JSON = "training_state.json"


@dataclass
class TrainConfig:
    data: str | list[str]  # one dataset folder or several (mixed; each keeps its own split)
    out: str
    fps: int = 30
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = C.BATCH_SIZE
    seq_frames: int = 64
    lr: float = C.LEARNING_RATE
    weight_decay: float = 0.01
    seed: int = 0
    init: str | None = None  # start from this checkpoint's weights (e.g. 30 -> 60 fps fine-tuning)
    max_minutes: float | None = None  # stop cleanly (with a checkpoint) after this much wall time
    # The 105 stream-weight scalars (theta_mel, theta_emotion, tau) learn this much faster and without
    # weight decay (decay would pull every blendshape back to a 50/50 mix of the streams).
    stream_lr_scale: float = 5.0
    # Stream specialization (docs/DECISIONS.md). With probability `emotion_dropout` a training sequence
    # sees the neutral emotion vector, so shapes the speaking style does not drive learn to do without
    # it; `specialization_weight` x mean(1 - |w_mel - w_emotion|) asks each blendshape to commit to one
    # stream (the fit decides which), as the spec's S_overall 0.6-0.9 expects.
    emotion_dropout: float = 0.3
    specialization_weight: float = 0.01
    # Microphone and room colour: each training sequence's mel power is multiplied by a random smooth
    # gain curve over the mel bins (level and tilt/bumps, this many dB standard deviation), so the
    # one real training voice's recording chain is not learned as part of the phones.
    channel_db: float = 6.0
    # Vocal-tract length: each training sequence's mel spectrum is warped along frequency by a random
    # factor in [1 / (1 + warp), 1 + warp] (formants move together, as between speakers), so every
    # corpus shows a continuum of vocal tracts, not the handful of voices it was recorded with.
    vocal_tract_warp: float = 0.0
    # ARKit's lips meet when mouthClose = jawOpen, so the lip gap jawOpen - mouthClose is a quantity of its
    # own: `lip_gap_weight` x a weighted MSE of the gap, where frames whose target gap is 0 (sealed lips: every
    # p/b/m and the closed rest) count `seal_boost` times more. Plain MSE on the two curves lets an unsure model
    # hedge both, and the lips of a p/b/m stop short of meeting (docs/DECISIONS.md). On sealed frames with the
    # jaw above its rest (a bilabial closure, not a pause) the gap aims at -`seal_margin`: an unsure model's
    # hedged dip then still reaches the seal, while ARKit tolerates mouthClose a little above jawOpen.
    lip_gap_weight: float = 0.0
    seal_boost: float = 4.0
    seal_margin: float = 0.0
    # The life layer owns the events above the mouth (blinks, gaze, brow raises: core/life.py), so the shapes
    # it animates take the emotion stream and carry the speaking style only (docs/DECISIONS.md). From an
    # --init checkpoint: their stream weights are set to those of the shapes already on the emotion stream,
    # and only their own per-shape parameters (query, decoder row and bias) train; every other weight, the
    # normalization included, stays the init's, so every other shape's output is unchanged.
    route_life_to_emotion: bool = False

    def __post_init__(self) -> None:
        """Numbers the command line cannot refuse itself (a range check lets NaN through): one line each."""
        for name, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise A2BSError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if not 0 < self.lr <= 1:
            raise A2BSError(f"--lr must be in (0, 1], got {self.lr:g} (the default is {C.LEARNING_RATE:g})")
        if self.route_life_to_emotion and not self.init:
            raise A2BSError("--route-life-to-emotion fine-tunes a trained model: give it one with --init")

    @property
    def data_dirs(self) -> list[str]:
        return [self.data] if isinstance(self.data, str) else [str(d) for d in self.data]


# ---- loss ----------------------------------------------------------------------------------------
def training_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, alpha: torch.Tensor, fps: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """The spec's L_total = w_mse MSE + w_l1 L1 + w_perc (w_mouth L_mouth + w_expr L_expr)
    + w_temporal L_temporal + w_smoothing (alpha - alpha_target)^2, over valid (unpadded) frames."""
    m = mask[..., None]
    err = (pred - target) * m
    frames = mask.sum().clamp(min=1)
    mse = err.square().sum() / (frames * pred.shape[-1])
    l1 = err.abs().sum() / (frames * pred.shape[-1])
    mouth = err[..., list(MOUTH_INDICES)].square().sum() / (frames * len(MOUTH_INDICES))
    expression = err[..., list(EXPRESSION_INDICES)].square().sum() / (frames * len(EXPRESSION_INDICES))
    perceptual = C.W_MOUTH * mouth + C.W_EXPRESSION * expression
    pair = (mask[:, 1:] * mask[:, :-1])[..., None]
    grad_err = ((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) * pair
    temporal = grad_err.square().sum() / (pair.sum().clamp(min=1) * pred.shape[-1])
    smoothing = (alpha - C.ALPHA_TARGET[fps]).square()
    total = (
        C.W_MSE * mse + C.W_L1 * l1 + C.W_PERCEPTUAL * perceptual + C.W_TEMPORAL * temporal + C.W_SMOOTHING * smoothing
    )
    parts = {"mse": mse, "l1": l1, "mouth": mouth, "expression": expression, "temporal": temporal}
    return total, {k: float(v.detach()) for k, v in parts.items()} | {"loss": float(total.detach())}


def lip_gap_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, seal_boost: float, seal_margin: float = 0.0
) -> torch.Tensor:
    """Weighted MSE of the lip gap jawOpen - mouthClose over valid frames; sealed target frames (gap <=
    SEALED_TARGET_GAP) weigh 1 + seal_boost, and those with the jaw above REST_JAW_OPEN (bilabial closures)
    aim at -seal_margin."""
    gap_pred, gap_target = lip_gap(pred), lip_gap(target)
    sealed = gap_target <= SEALED_TARGET_GAP
    closure = sealed & (target[..., INDEX["jawOpen"]] > REST_JAW_OPEN)
    gap_target = torch.where(closure, torch.full_like(gap_target, -seal_margin), gap_target)
    weight = mask * (1 + seal_boost * sealed.to(pred.dtype))
    return (weight * (gap_pred - gap_target).square()).sum() / weight.sum().clamp(min=1)


def drop_emotion(emotion: torch.Tensor, probability: float, rng: np.random.Generator) -> torch.Tensor:
    """Replace each sequence's emotion input (B, 264) by the neutral vector (zeros) with `probability`."""
    if probability <= 0:
        return emotion
    keep = torch.from_numpy(rng.random(emotion.shape[0]) >= probability).to(emotion.dtype)
    return emotion * keep[:, None]


def colour_channel(mel: torch.Tensor, front_end: MelFrontEnd, db: float, rng: np.random.Generator) -> torch.Tensor:
    """Normalized log-mel (B, T, 80) as heard through a random linear channel, one per sequence: a level
    ~N(0, db) dB plus three cosine terms over the bins of ~N(0, db / 2) dB each, applied to the mel power
    exactly (log(g P + eps)), so digital silence stays silent."""
    if db <= 0:
        return mel
    bins = np.arange(C.N_MELS) / (C.N_MELS - 1)
    shapes = np.cos(np.pi * np.arange(1, 4)[:, None] * bins[None])  # (3, 80)
    curve_db = rng.normal(0, db, (mel.shape[0], 1)) + rng.normal(0, db / 2, (mel.shape[0], 3)) @ shapes
    gain = torch.from_numpy(10 ** (curve_db / 10)).to(mel.dtype)[:, None, :]
    power = (front_end.denormalize(mel).exp() - C.LOG_EPS).clamp(min=0)
    return front_end.normalize(torch.log(power * gain + C.LOG_EPS))


def warp_vocal_tract(mel: torch.Tensor, front_end: MelFrontEnd, warp: float, rng: np.random.Generator) -> torch.Tensor:
    """Normalized log-mel (B, T, 80) with each sequence's spectrum scaled along frequency by its own factor
    a ~ logU(1 / (1 + warp), 1 + warp): bin k takes the log-mel found at f_k / a (linear interpolation between
    bin centres, the edge bins beyond the range), so a formant at f moves to a * f (VTLP, Jaitly & Hinton 2013)."""
    if warp <= 0:
        return mel
    centres = mel_edges_hz()[1:-1]
    factors = np.exp(rng.uniform(-np.log1p(warp), np.log1p(warp), mel.shape[0]))
    source = np.interp(centres[None] / factors[:, None], centres, np.arange(C.N_MELS))  # (B, 80) fractional bins
    low = np.minimum(np.floor(source).astype(np.int64), C.N_MELS - 2)
    frac = torch.from_numpy(source - low).to(mel.dtype)[:, None, :]
    index = torch.from_numpy(low)[:, None, :].expand(-1, mel.shape[1], -1)
    raw = front_end.denormalize(mel)
    warped = torch.gather(raw, 2, index) * (1 - frac) + torch.gather(raw, 2, index + 1) * frac
    return front_end.normalize(warped)


def route_to_emotion(model: A2BSModel, names: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Put the shapes `names` on the emotion stream with the stream weights of the shapes already there, and
    freeze everything but their own rows of the per-shape parameters (queries, decoder weight and bias):
    returns those parameters, whose gradients are masked to the rows of `names`."""
    w_mel, _ = model.stream_weights()
    on_emotion = [i for i in range(len(w_mel)) if w_mel[i] < 0.5]
    if not on_emotion:
        raise A2BSError("--route-life-to-emotion: no shape of the --init model is on the emotion stream to copy")
    rows = [INDEX[n] for n in names]
    with torch.no_grad():
        model.theta_mel[rows] = model.theta_mel[on_emotion[0]].clone()
        model.theta_emotion[rows] = model.theta_emotion[on_emotion[0]].clone()
    for p in model.parameters():
        p.requires_grad_(False)
    mask = torch.zeros(len(w_mel))
    mask[rows] = 1.0
    trainable = [model.queries, model.decoder_weight, model.decoder_bias]
    for p in trainable:
        p.requires_grad_(True)
        p.register_hook(lambda g: g * mask.view(-1, *([1] * (g.dim() - 1))))
    return trainable


def stream_uncommitment(model: A2BSModel) -> torch.Tensor:
    """mean over blendshapes of 1 - |w_mel - w_emotion|: 1 for an even mix, 0 when each uses one stream."""
    w_mel, w_emotion = model.stream_weights()
    return (1 - (w_mel - w_emotion).abs()).mean()


# ---- prepared data --------------------------------------------------------------------------------
@dataclass
class PreparedTake:
    name: str
    mel: torch.Tensor  # (n + N + 1, 80) normalized; row i is mel frame L - N - 1 + i
    emotion: torch.Tensor  # (264,) normalized
    targets: torch.Tensor  # (n, 52)
    phones: list[tuple[str, float, float]] | None


@torch.no_grad()
def raw_log_mels(takes: list[Take], model: A2BSModel) -> list[torch.Tensor]:
    """Un-normalized log-mel of every mel frame each take's output frames depend on (computed once,
    used for the statistics and, normalized, as the training features)."""
    return [model.front_end.log_mel(torch.from_numpy(mel_windows(model.config, t.audio, len(t.curves)))) for t in takes]


def _raw_emotion(take: Take) -> np.ndarray:
    if take.emotion_raw is not None:  # computed by the corpus builder from this very audio file
        return take.emotion_raw
    return emotion_features_at(take.audio, len(take.audio) / C.SAMPLE_RATE)


def fit_statistics(
    takes: list[Take], log_mels: list[torch.Tensor], cfg: ModelConfig
) -> tuple[np.ndarray, np.ndarray, EmotionStats]:
    """Per-bin mel mean/std and emotion z-score statistics from the training takes (speech frames only:
    the silence padding before each take would otherwise dominate the mel statistics)."""
    mels = np.concatenate([m[cfg.window_mel_frames - 1 :].numpy() for m in log_mels])
    emotion = EmotionStats.fit(np.stack([_raw_emotion(t) for t in takes]))
    return mels.mean(0), mels.std(0) + 1e-3, emotion


@torch.no_grad()
def prepare(
    takes: list[Take], log_mels: list[torch.Tensor], model: A2BSModel, emotion_stats: EmotionStats
) -> list[PreparedTake]:
    out = []
    for take, log_mel in zip(takes, log_mels, strict=True):
        mel = model.front_end.normalize(log_mel)
        emotion = torch.from_numpy(emotion_stats.normalize(_raw_emotion(take)[None])[0])
        out.append(PreparedTake(take.name, mel, emotion, torch.from_numpy(take.curves), take.phones))
    return out


def sample_batch(
    takes: list[PreparedTake], batch_size: int, seq_frames: int, rng: np.random.Generator, silence: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mel (B, T + N + 1, 80), emotion (B, 264), targets (B, T, 52), mask (B, T)); short takes are padded."""
    lengths = np.array([len(t.targets) for t in takes], dtype=np.float64)
    picks = rng.choice(len(takes), size=batch_size, p=lengths / lengths.sum())
    context = takes[0].mel.shape[0] - len(takes[0].targets)  # N + 1
    mels, emotions, targets, masks = [], [], [], []
    for i in picks:
        take = takes[i]
        n = len(take.targets)
        start = int(rng.integers(0, n - seq_frames + 1)) if n > seq_frames else 0
        length = min(seq_frames, n)
        mel = take.mel[start : start + length + context]
        target = take.targets[start : start + length]
        pad = seq_frames - length
        if pad:
            mel = torch.cat([mel, silence.expand(pad, -1)])
            target = torch.cat([target, torch.zeros(pad, target.shape[1])])
        mels.append(mel)
        emotions.append(take.emotion)
        targets.append(target)
        masks.append(torch.cat([torch.ones(length), torch.zeros(pad)]))
    return torch.stack(mels), torch.stack(emotions), torch.stack(targets), torch.stack(masks)


# ---- metrics --------------------------------------------------------------------------------------
def specialization(model: A2BSModel) -> float:
    """The spec's S_overall over the mouth and expression categories."""
    w_mel, w_emotion = (w.detach().numpy() for w in model.stream_weights())
    values = []
    for indices in (MOUTH_INDICES, EXPRESSION_INDICES):
        m, e = w_mel[list(indices)].mean(), w_emotion[list(indices)].mean()
        values.append(abs(m - e) / (m + e))
    return float(np.mean(values))


@torch.no_grad()
def predict(model: A2BSModel, take: PreparedTake, neutral_emotion: bool = False) -> np.ndarray:
    """Whole-take smoothed prediction (n, 52); `neutral_emotion` replaces the emotion input by zeros."""
    emotion = torch.zeros_like(take.emotion) if neutral_emotion else take.emotion
    raw = model.forward_sequence(take.mel[None], model.emotion_context(emotion[None]))
    return smooth(raw, model.alpha)[0].numpy()


@torch.no_grad()
def evaluate(model: A2BSModel, takes: list[PreparedTake]) -> dict[str, float]:
    """Whole-take inference on the validation takes: MAE (all, mouth, expression), the articulation
    contrasts (AUC per phone class pair, `a2bs.training.articulation`), closure timing, stillness in
    pauses, S_overall, and the emotion ablation (expression / mouth MAE with a neutral emotion input)."""

    model.eval()
    fps = model.config.fps
    errors, neutral_errors, samples, offsets, still, gaps, pauses = [], [], [], [], [], [], []
    for take in takes:
        pred = predict(model, take)
        target = take.targets.numpy()
        errors.append(np.abs(pred - target))
        neutral_errors.append(np.abs(predict(model, take, neutral_emotion=True) - target))
        if not take.phones:
            continue
        espeak = is_espeak(take.phones)
        samples.append(contrast_samples(pred, take.phones, fps, espeak))
        offsets += peak_offsets_ms(pred, take.phones, fps, "closure", espeak)
        gaps += bilabial_min_gaps(pred, take.phones, fps, espeak)
        pauses += pause_jaw(pred, take.phones, fps)
        for phone, start, end in take.phones:
            a, b = round(start * fps), round(end * fps)
            if phone in PAUSES and b - a >= 3 and b <= len(pred):
                still.append(np.abs(np.diff(pred[a:b], axis=0)).mean())
    err, neutral = np.concatenate(errors), np.concatenate(neutral_errors)
    aucs = contrast_aucs(samples) if samples else dict.fromkeys(CONTRASTS, math.nan)
    mouth, expression = list(MOUTH_INDICES), list(EXPRESSION_INDICES)
    return {
        "mae": float(err.mean()),
        "mae_mouth": float(err[:, mouth].mean()),
        "mae_expression": float(err[:, expression].mean()),
        "neutral_emotion_mae_mouth": float(neutral[:, mouth].mean()),
        "neutral_emotion_mae_expression": float(neutral[:, expression].mean()),
        **{f"auc_{name}": value for name, value in aucs.items()},
        "closure_peak_offset_ms": float(np.mean(offsets)) if offsets else math.nan,
        "seal": seal_rate(gaps),
        "overclosed": overclosed_rate(gaps),
        "rest": rest(pauses),
        "silence_frame_change": float(np.mean(still)) if still else math.nan,
        "s_overall": specialization(model),
        "alpha": float(model.alpha.detach()),
    }


# ---- state ----------------------------------------------------------------------------------------
def _save_state(folder: Path, optimizer: torch.optim.Optimizer, scheduler: Any, info: dict[str, Any]) -> None:
    state = optimizer.state_dict()
    tensors = {
        f"state.{index}.{name}": value.contiguous()
        for index, per_param in state["state"].items()
        for name, value in per_param.items()
    }
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, str(folder / STATE_WEIGHTS))
    scalars = {"param_groups": state["param_groups"], "scheduler": scheduler.state_dict(), **info}
    (folder / STATE_JSON).write_text(json.dumps(scalars, indent=1))


def _load_state(folder: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any]:
    if not (folder / STATE_JSON).is_file() or not (folder / STATE_WEIGHTS).is_file():
        raise A2BSError(f"cannot resume: {folder} has no training state (start without --resume)")
    scalars = json.loads((folder / STATE_JSON).read_text())
    tensors = load_file(str(folder / STATE_WEIGHTS))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": scalars["param_groups"]})
    scheduler.load_state_dict(scalars["scheduler"])
    torch.set_rng_state(tensors["torch_rng"])
    return scalars


# ---- the loop -------------------------------------------------------------------------------------
def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Train; writes OUT/last and OUT/best checkpoints and OUT/metrics.jsonl. Returns the final metrics."""
    rank, world = _distributed()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise A2BSError(f"--out {out} is a file: give a folder for the checkpoints (it is created if missing)")
    if rank == 0 and out.exists() and any(out.iterdir()) and not (resume or force):
        raise A2BSError(f"{out} is not empty: pass --resume to continue it or --force to start over")
    base = load_checkpoint(config.init) if config.init else None  # a wrong --init fails before the data loads
    torch.manual_seed(config.seed)
    what = "training" if world == 1 else f"each of {world} training processes"
    set_torch_threads(what, log if rank == 0 else None, wanted=1 if world > 1 else None)
    train_takes, val_takes = [], []
    for folder in config.data_dirs:
        takes, report = load_takes(folder, config.fps)
        tr, va = split_takes(folder, takes)
        train_takes += tr
        val_takes += va
        if rank == 0:
            log(f"{folder}: " + (report.summary() if report.skipped else f"{len(takes)} takes loaded"))
    if not train_takes:
        raise A2BSError("every take is in a validation split: nothing left to train on (check corpus.json)")
    if rank == 0:
        log(f"{len(train_takes)} training takes, {len(val_takes)} validation takes, {world} process(es)")

    model = A2BSModel(ModelConfig.for_fps(config.fps))
    if base is not None:
        _transfer(base.model, model)
    val_takes = val_takes or train_takes[:1]
    train_mels, val_mels = raw_log_mels(train_takes, model), raw_log_mels(val_takes, model)
    if config.route_life_to_emotion and base is not None:  # the init's normalization: other shapes unchanged
        model.front_end.load_state_dict(base.model.front_end.state_dict())
        emotion_stats = base.emotion_stats
    else:
        mel_mean, mel_std, emotion_stats = fit_statistics(train_takes, train_mels, model.config)
        model.front_end.set_stats(mel_mean, mel_std)
    train_data = prepare(train_takes, train_mels, model, emotion_stats)
    val_data = prepare(val_takes, val_mels, model, emotion_stats)
    with torch.no_grad():
        silence = model.front_end(torch.zeros(1, C.N_FFT))

    if config.route_life_to_emotion:
        # no weight decay: it would move the frozen rows of the per-shape parameters
        optimizer = torch.optim.AdamW(route_to_emotion(model, LIFE_SHAPES), lr=config.lr, weight_decay=0.0)
    else:
        stream = [model.theta_mel, model.theta_emotion, model.tau_raw]
        others = [p for p in model.parameters() if all(p is not q for q in stream)]
        optimizer = torch.optim.AdamW(
            [{"params": others}, {"params": stream, "lr": config.lr * config.stream_lr_scale, "weight_decay": 0.0}],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    total_steps = config.epochs * config.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    start_epoch, best = 0, math.inf
    if resume:
        last = load_checkpoint(out / "last")
        model.load_state_dict(last.model.state_dict())
        scalars = _load_state(out / "last", optimizer, scheduler)
        start_epoch, best = scalars["epoch"], scalars.get("best_mae", math.inf)
        if rank == 0:
            log(f"resumed from {out / 'last'} after epoch {start_epoch}")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, epoch, rank])
        sums: dict[str, float] = {}
        bar = tqdm(
            range(config.steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for _ in bar:
            mel, emotion, target, mask = sample_batch(train_data, config.batch_size, config.seq_frames, rng, silence)
            emotion = drop_emotion(emotion, config.emotion_dropout, rng)
            mel = warp_vocal_tract(mel, model.front_end, config.vocal_tract_warp, rng)
            mel = colour_channel(mel, model.front_end, config.channel_db, rng)
            pred = ddp_model(mel, emotion)
            loss, parts = training_loss(pred, target, mask, model.alpha, config.fps)
            if config.lip_gap_weight:
                gap = lip_gap_loss(pred, target, mask, config.seal_boost, config.seal_margin)
                loss = loss + config.lip_gap_weight * gap
                parts["lip_gap"] = float(gap.detach())
            if config.specialization_weight:
                uncommitted = stream_uncommitment(model)
                loss = loss + config.specialization_weight * uncommitted
                parts["uncommitted"] = float(uncommitted.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
        out_of_time = config.max_minutes is not None and time.perf_counter() - started > 60 * config.max_minutes
        if rank == 0:
            train_parts = {f"train_{k}": v / config.steps_per_epoch for k, v in sums.items()}
            metrics = {
                "epoch": epoch + 1,
                **train_parts,
                **evaluate(model, val_data),
                "lr": scheduler.get_last_lr()[0],
                "minutes": (time.perf_counter() - started) / 60,
            }
            log(_format_metrics(metrics))
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(metrics) + "\n")

            rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            plot_training(rows, out / "training.png")
            ckpt = Checkpoint(
                model,
                emotion_stats,
                trained=True,
                source=str(out / "last"),
                info={"training": asdict(config), "metrics": metrics},
            )
            save_checkpoint(ckpt, out / "last", force=True)
            _save_state(out / "last", optimizer, scheduler, {"epoch": epoch + 1, "best_mae": min(best, metrics["mae"])})
            if metrics["mae"] < best:
                best = metrics["mae"]
                save_checkpoint(ckpt, out / "best", force=True)
        if world > 1:
            flag = torch.tensor([float(out_of_time)])
            dist.all_reduce(flag)
            out_of_time = bool(flag.item())
            dist.barrier()
        if out_of_time:
            if rank == 0:
                log(f"stopping after epoch {epoch + 1}: --max-minutes {config.max_minutes} reached")
            break
    if world > 1:
        dist.destroy_process_group()
    return metrics


def _transfer(source: A2BSModel, target: A2BSModel) -> None:
    """Copy weights between fps variants; the position bias is resampled to the new window length."""
    src, dst = source.state_dict(), target.state_dict()
    for key, value in dst.items():
        if key.startswith("front_end.") or key not in src:
            continue
        if key == "mel_position_bias" and src[key].shape != value.shape:
            n_src, n_dst = source.config.context_frames, target.config.context_frames
            long = torch.nn.functional.interpolate(src[key][..., :n_src], size=n_dst, mode="linear", align_corners=True)
            dst[key] = torch.cat([long, src[key][..., n_src:]], dim=-1)
        elif src[key].shape == value.shape:
            dst[key] = src[key]
    target.load_state_dict(dst)


def _format_metrics(m: dict[str, Any]) -> str:
    return (
        f"epoch {m['epoch']}: loss {m.get('train_loss', math.nan):.4f} | val MAE {m['mae']:.4f} "
        f"(mouth {m['mae_mouth']:.4f}, expr {m['mae_expression']:.4f}; neutral emotion: expr "
        f"{m['neutral_emotion_mae_expression']:.4f}) | AUC jaw {m['auc_jaw']:.3f} closure {m['auc_closure']:.3f} "
        f"rounding {m['auc_rounding']:.3f} f/v {m['auc_labiodental']:.3f} | seal {m.get('seal', math.nan):.2f} "
        f"over {m.get('overclosed', math.nan):.2f} rest {m.get('rest', math.nan):.3f} | S {m['s_overall']:.3f} "
        f"| alpha {m['alpha']:.3f}"
    )
