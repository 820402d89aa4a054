"""The architecture as numbers, without torch: `ModelConfig` (what a checkpoint's config.json stores), the
names and shapes of the weights it implies, its parameter count, and the multiply-accumulates of every graph
that runs the model, by plain arithmetic on the config.

Sizes and costs depend only on the architecture, never on the weights, so `a2bs info` and the docs' size
and cost table read them here without importing torch or building a model. They are checked exactly
against the model itself (tests/core/test_architecture.py): the shapes against `A2BSModel` built on the
meta device, the MACs against torch's FLOP counter run on each graph (`core/model.macs_per_frame`,
`core/deploy.deployed_macs`). 1 MAC = one multiply-accumulate of a matrix product; element-wise work
(norms, activations, softmax exponentials) is not counted, as torch's counter does not count it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from a2bs.core import constants as C
from a2bs.core.errors import CheckpointError, Fields


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in every checkpoint's config.json."""

    fps: int = 30
    context_frames: int = C.CONTEXT_FRAMES[30]
    lookahead_frames: int = C.LOOKAHEAD_FRAMES[30]
    n_mels: int = C.N_MELS
    detail_frames: int = C.DETAIL_FRAMES
    detail_spacing: int = 1  # mel frames between detail tokens (C.DETAIL_SPACING); 1 in older checkpoints
    d_model: int = C.D_MODEL
    n_heads: int = C.N_HEADS
    encoder_hidden: int = 384
    emotion_dim: int = C.EMOTION_DIM
    emotion_tokens: int = C.EMOTION_TOKENS
    decoder_hidden: int = C.DECODER_HIDDEN
    n_blendshapes: int = C.N_BLENDSHAPES
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_fps(cls, fps: int) -> ModelConfig:
        if fps not in C.SUPPORTED_FPS:
            raise ValueError(f"fps must be one of {C.SUPPORTED_FPS}, got {fps}")
        return cls(
            fps=fps,
            context_frames=C.CONTEXT_FRAMES[fps],
            lookahead_frames=C.LOOKAHEAD_FRAMES[fps],
            detail_spacing=C.DETAIL_SPACING[fps],
        )

    @property
    def step_mel_frames(self) -> int:
        """Mel frames one device step reads: the newest frame's 3 for the frame encoder, and the detail tokens."""
        return max(self.detail_frames, (self.detail_frames - 1) * self.detail_spacing + 1)

    @property
    def window_mel_frames(self) -> int:
        """Mel frames one output frame depends on: N encoded frames, each needing 2 frames of history."""
        return self.context_frames + self.detail_frames - 1

    def mel_frames_for(self, n_out: int) -> tuple[int, int]:
        """(first mel frame, count): every mel frame that output frames 0 .. n_out-1 depend on."""
        return self.lookahead_frames - self.window_mel_frames + 1, n_out + self.window_mel_frames - 1

    @property
    def n_tokens(self) -> int:
        return self.context_frames + self.detail_frames

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["detail_spacing"] == 1:  # as written before the field existed: same config, same fingerprint
            del data["detail_spacing"]
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "checkpoint config") -> ModelConfig:
        """The config stored in a checkpoint, every field type- and range-checked before anything is
        allocated (an untrusted `d_model` of 16384 would otherwise allocate gigabytes)."""

        f = Fields(data, where, CheckpointError, "model.")
        unknown = set(f.data) - set(cls.__dataclass_fields__)
        if unknown:
            raise CheckpointError(f"{where}: unknown model fields {sorted(unknown)} (written by a newer a2bs?)")
        fps = f.int("fps", min(C.SUPPORTED_FPS), max(C.SUPPORTED_FPS))
        if fps not in C.SUPPORTED_FPS:
            raise CheckpointError(f"{where}: 'model.fps' must be one of {C.SUPPORTED_FPS}, got {fps}")
        context = f.int("context_frames", 8, 2048)
        d_model, n_heads = f.int("d_model", 8, 1024), f.int("n_heads", 1, 64)
        if d_model % n_heads:
            raise CheckpointError(
                f"{where}: 'model.d_model' ({d_model}) must be a multiple of 'model.n_heads' ({n_heads})"
            )
        extra = f.data.get("extra", {})
        if not isinstance(extra, dict):
            raise CheckpointError(f"{where}: 'model.extra' must be a JSON object")
        return cls(
            fps=fps,
            context_frames=context,
            lookahead_frames=f.int("lookahead_frames", 0, min(fps, context - 1)),
            n_mels=f.int("n_mels", C.N_MELS, C.N_MELS),
            detail_frames=f.int("detail_frames", 3, 3),
            detail_spacing=f.int("detail_spacing", 1, 4, optional=True) or 1,
            d_model=d_model,
            n_heads=n_heads,
            encoder_hidden=f.int("encoder_hidden", 1, 4096),
            emotion_dim=f.int("emotion_dim", C.EMOTION_DIM, C.EMOTION_DIM),
            emotion_tokens=f.int("emotion_tokens", 1, 16),
            decoder_hidden=f.int("decoder_hidden", 1, 1024),
            n_blendshapes=f.int("n_blendshapes", C.N_BLENDSHAPES, C.N_BLENDSHAPES),
            extra=extra,
        )


# --- weights --------------------------------------------------------------------------------------


def _linear(name: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _norm(name: str, width: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (width,), f"{name}.bias": (width,)}


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight a checkpoint stores (`A2BSModel`'s parameters; the front end's fixed
    DFT and mel matrices are rebuilt from constants and its statistics live in config.json)."""
    c = config
    d, hidden, queries = c.d_model, c.encoder_hidden, c.n_blendshapes
    return {
        **_linear("frame_encoder.0", c.detail_frames * c.n_mels, hidden),
        **_linear("frame_encoder.2", hidden, hidden),
        **_linear("frame_encoder.4", hidden, d),
        **_norm("frame_encoder.5", d),
        **_linear("detail_encoder.0", c.n_mels, d),
        **_linear("detail_encoder.2", d, d),
        **_norm("detail_encoder.3", d),
        **_linear("mel_kv", d, 2 * d),
        "mel_position_bias": (c.n_heads, queries, c.n_tokens),
        "queries": (queries, d),
        **_linear("mel_query", d, d),
        **_linear("mel_out", d, d),
        **_linear("emotion_query", d, d),
        **_linear("emotion_out", d, d),
        **_linear("emotion_compress", c.emotion_dim, d),
        **_linear("emotion_tokens", d, c.emotion_tokens * d),
        "emotion_token_embedding": (c.emotion_tokens, d),
        **_norm("emotion_norm", d),
        **_linear("emotion_kv", d, 2 * d),
        "theta_mel": (queries,),
        "theta_emotion": (queries,),
        "tau_raw": (),
        **_norm("decoder_norm", d),
        **_linear("decoder_hidden", d, c.decoder_hidden),
        "decoder_weight": (queries, c.decoder_hidden),
        "decoder_bias": (queries,),
        "alpha_raw": (),
    }


def parameter_count(config: ModelConfig) -> int:
    """Learned parameters of the model: every stored weight."""
    return sum(math.prod(shape) for shape in weight_shapes(config).values())


# --- multiply-accumulates -------------------------------------------------------------------------


def front_end_macs(n_fft: int = C.N_FFT, n_mels: int = C.N_MELS) -> int:
    """One PCM window through `MelFrontEnd`: the folded cosine and sine bases, then the mel filters."""
    half = n_fft // 2
    return 2 * (half - 1) * (half + 1) + (half + 1) * n_mels


def macs(config: ModelConfig) -> dict[str, float]:
    """Multiply-accumulates per output frame of every graph that runs the model:

    - `offline`: `A2BSModel.forward_sequence` (PyTorch, `a2bs infer --checkpoint`), each added output frame
      of a long call (the call's constants, the query projection and the N - 1 frames of history, excluded);
      the emotion stream runs once per file and is not counted;
    - `reference_step`: `A2BSModel.step`, which recomputes the constant query projections each call;
    - `step`: the shipped `DeployStep` (constants folded); `front_end`: one PCM window;
    - `offline_model`: the LiteRT `DeployOffline` (`a2bs infer`), one call of `OFFLINE_FRAMES` output frames
      (front end, scores of the N - 1 frames of history, emotion stream once) divided by its frames.
    """
    c = config
    d, q, n, f, heads = c.d_model, c.n_blendshapes, c.context_frames, c.detail_frames, c.n_heads
    hidden = c.encoder_hidden
    # one new frame through the frame encoder (its 3 stacked mel frames) and the key|value projection
    encode = f * c.n_mels * hidden + hidden * hidden + hidden * d + 2 * d * d
    detail = c.n_mels * d + d * d + 2 * d * d  # one mel frame through the detail encoder and key|value
    queries = q * d * d  # the 52 queries through one stream's query projection
    # emotion stream with constant queries: 264 -> d, d -> tokens, tokens -> key|value, attention, output
    emotion = c.emotion_dim * d + c.emotion_tokens * d * d + c.emotion_tokens * 2 * d * d
    emotion += 2 * q * c.emotion_tokens * d + q * d * d
    decode = q * d * d + q * d * c.decoder_hidden  # the mel stream's output projection, the decoder's hidden layer
    # scores and weighted values over N + 3 tokens; offline a ones column (+1 per head) sums the weights
    step = encode + f * detail + 2 * q * (n + f) * d + emotion + decode
    offline = encode + q * d + f * detail + f * q * d + q * (n + f) * (d + heads) + decode
    b, g, rows = C.OFFLINE_FRAMES, C.OFFLINE_GROUP[c.fps], c.step_mel_frames
    offline_call = (
        b * (front_end_macs(n_mels=c.n_mels) + encode)
        + q * d * (n - 1 + b)  # every frame of the call's keys scored once, history included
        + (b + rows - 1) * (detail + q * d)  # every mel row through the detail encoder, scored once
        + q * b * (n - 1 + g + f) * (d + heads)  # the banded windows (group + N - 1 wide) and the detail tokens
        + emotion
        + b * decode
    )
    return {
        "offline": offline,
        "reference_step": step + 2 * queries,
        "step": step,
        "front_end": front_end_macs(n_mels=c.n_mels),
        "offline_model": offline_call / b,
    }


def model_figures(config: ModelConfig) -> dict[str, float]:
    """Every size and cost figure of a model that the docs quote, in one place: `a2bs info` prints them and
    `benchmarks/docs_tables.py` writes them into docs/ARCHITECTURE.md."""
    params, counted = parameter_count(config), macs(config)
    return {
        "fps": config.fps,
        "parameters": params,
        "fp32_mb": params * 4 / 1e6,
        "offline_mmac": counted["offline"] / 1e6,  # per output frame, PyTorch `forward_sequence`
        "offline_model_mmac": counted["offline_model"] / 1e6,  # per output frame, LiteRT `DeployOffline`
        "reference_step_mmac": counted["reference_step"] / 1e6,  # `A2BSModel.step`, constants recomputed
        "shipped_step_mmac": counted["step"] / 1e6,  # `DeployStep`, what the bundles hold
        "front_end_mmac": counted["front_end"] / 1e6,
        "device_gmac_per_s": (counted["step"] + counted["front_end"]) * config.fps / 1e9,
    }


def describe(config: ModelConfig) -> str:
    """`model_figures` as the line `a2bs info` prints."""
    f = model_figures(config)
    return (
        f"{f['parameters']:,} parameters ({f['fp32_mb']:.2f} MB fp32); per output frame at {f['fps']} fps: "
        f"{f['offline_model_mmac']:.1f} MMAC offline LiteRT model ({C.OFFLINE_FRAMES} frames per call), "
        f"{f['offline_mmac']:.1f} MMAC offline PyTorch, {f['shipped_step_mmac']:.1f} MMAC shipped step + "
        f"{f['front_end_mmac']:.2f} MMAC front end on device ({f['device_gmac_per_s']:.2f} GMAC/s; "
        f"the reference A2BSModel.step: {f['reference_step_mmac']:.1f} MMAC)"
    )
