"""Deploy-time modules: what the converters export.

`DeployStep` is `A2BSModel.step` with every input-independent subgraph precomputed into constants
(the 52 queries' projections for both streams, the stream-mixing softmax, the smoothing alpha), and
written with plain matmul / reshape / softmax ops that CoreML and TFLite convert. Same outputs as
the model; integer quantizers no longer meet constant subgraphs (DESIGN.md pitfalls).

`DeployFrontEnd` is the mel front end (1024 PCM samples -> 80 normalized log-mel values).

The on-device call sequence (the manifest repeats it for app developers):
  for each mel frame j (window centred on sample round(j * 16000 / fps)):
      mel_j = front_end(pcm[c_j - 512 : c_j + 512])
      keep the last H mel frames -> mel_frames (1, H, 80), oldest first (H = 3 at 30 fps, 5 at 60 fps:
      the frame encoder reads j-2 .. j, the detail tokens j, j-s, j-2s)
      blendshapes, blendshapes_raw, context_frame = step(mel_frames, context, emotion, previous)
      context = context[:, 1:] ++ context_frame          (ring buffer, oldest first)
      output frame k = j - lookahead gets `blendshapes` (frame 0: `blendshapes_raw`); previous = it
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from a2bs.core.architecture import ModelConfig
from a2bs.core.constants import N_FFT, N_MELS, OFFLINE_FRAMES, OFFLINE_GROUP
from a2bs.core.model import A2BSModel

STEP_INPUTS = ("mel_frames", "context", "emotion", "previous")
OFFLINE_INPUTS = ("pcm", "mel_history", "context", "emotion")
OFFLINE_OUTPUTS = ("blendshapes_raw", "mel", "context_frames", "attention_floor")
# The offline model's smallest attention exponent: exp(-80) = 1.8e-35 times the smallest position weight
# (about 0.008) is still a normal float32 (> 1.2e-38).
EXPONENT_FLOOR = -80.0
STEP_OUTPUTS = ("blendshapes", "blendshapes_raw", "context_frame")
FRONT_END_INPUTS = ("pcm",)
FRONT_END_OUTPUTS = ("mel",)


class DeployStep(nn.Module):
    """One output frame, stateless, batch 1 (the on-device model)."""

    def __init__(self, model: A2BSModel) -> None:
        super().__init__()
        cfg = model.config
        self.n_context = cfg.context_frames
        self.n_history, self.n_encoded = cfg.step_mel_frames, cfg.detail_frames
        # rows of mel_frames (oldest first) that feed the detail tokens, newest first: j, j-s, j-2s
        self.detail_rows = [cfg.step_mel_frames - 1 - i * cfg.detail_spacing for i in range(cfg.detail_frames)]
        self.d, self.h = cfg.d_model, cfg.n_heads
        self.dh = self.d // self.h
        self.n_emotion_tokens = cfg.emotion_tokens
        # learned layers; each LayerNorm's scale and shift folded into the Linear after it (`_fold_norm`)
        *frame_layers, frame_norm = model.frame_encoder
        *detail_layers, detail_norm = model.detail_encoder
        frame_norm, self.frame_kv = _fold_norm(frame_norm, model.mel_kv)
        detail_norm, self.detail_kv = _fold_norm(detail_norm, model.mel_kv)
        self.frame_encoder = nn.Sequential(*frame_layers, frame_norm)
        self.detail_encoder = nn.Sequential(*detail_layers, detail_norm)
        self.mel_out = model.mel_out
        self.emotion_compress = model.emotion_compress
        self.emotion_tokens = model.emotion_tokens
        self.emotion_norm, self.emotion_kv = _fold_norm(model.emotion_norm, model.emotion_kv)
        self.emotion_out = model.emotion_out
        self.decoder_norm, self.decoder_hidden = _fold_norm(model.decoder_norm, model.decoder_hidden)
        # constants: input-independent subgraphs evaluated once
        with torch.no_grad():
            w_mel, w_emotion = model.stream_weights()
            emotion_q = model.emotion_query(model.queries).unflatten(-1, (self.h, self.dh)).transpose(0, 1)
            self.register_buffer("mel_q", model.mel_queries().detach().clone())  # (h, 52, dh), pre-scaled
            self.register_buffer("emotion_q", (emotion_q / math.sqrt(self.dh)).detach().clone())
            self.register_buffer("position_bias", model.mel_position_bias.detach().clone())  # (h, 52, N+3)
            self.register_buffer("token_embedding", model.emotion_token_embedding.detach().clone())
            self.register_buffer("w_mel", w_mel.detach()[:, None].clone())
            self.register_buffer("w_emotion", w_emotion.detach()[:, None].clone())
            self.register_buffer("decoder_weight", model.decoder_weight.detach().clone())
            self.register_buffer("decoder_bias", model.decoder_bias.detach().clone())
            self.register_buffer("alpha", model.alpha.detach().reshape(1).clone())

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(T, d) -> (h, T, dh)."""
        return x.reshape(x.shape[0], self.h, self.dh).permute(1, 0, 2)

    def _merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(h, 52, dh) -> (52, d)."""
        return x.permute(1, 0, 2).reshape(x.shape[1], self.d)

    def forward(
        self, mel_frames: torch.Tensor, context: torch.Tensor, emotion: torch.Tensor, previous: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.d
        # mel stream: encode the newest frame (from frames j-2, j-1, j), attend over the ring + detail tokens
        newest = mel_frames[0, self.n_history - self.n_encoded :]  # (3, 80)
        context_frame = self.frame_kv(self.frame_encoder(newest.reshape(1, -1)))  # (1, 2d)
        tokens = torch.cat([context.reshape(self.n_context - 1, 2 * d), context_frame], dim=0)  # (N, 2d)
        newest_first = torch.cat([mel_frames[0, r : r + 1] for r in self.detail_rows], dim=0)  # (3, 80)
        detail = self.detail_kv(self.detail_encoder(newest_first))  # (3, 2d)
        keys = torch.cat([self._split_heads(tokens[:, :d]), self._split_heads(detail[:, :d])], dim=1)
        values = torch.cat([self._split_heads(tokens[:, d:]), self._split_heads(detail[:, d:])], dim=1)
        logits = torch.matmul(self.mel_q, keys.transpose(1, 2)) + self.position_bias  # (h, 52, N+3)
        mel_context = self.mel_out(self._merge_heads(torch.matmul(torch.softmax(logits, dim=-1), values)))
        raw = self.decode(mel_context, self.emotion_context(emotion)).reshape(1, -1)
        smoothed = self.alpha * raw + (1 - self.alpha) * previous
        return smoothed, raw, context_frame

    def emotion_context(self, emotion: torch.Tensor) -> torch.Tensor:
        """(1, 264) normalized emotion -> (52, d): 264 -> 256 -> tokens -> attention with constant queries."""
        d = self.d
        compressed = self.emotion_compress(emotion)  # (1, d)
        emo_tokens = self.emotion_tokens(F.gelu(compressed)).reshape(self.n_emotion_tokens, d)
        emo_kv = self.emotion_kv(self.emotion_norm(emo_tokens + self.token_embedding))  # (T_e, 2d)
        emo_logits = torch.matmul(self.emotion_q, self._split_heads(emo_kv[:, :d]).transpose(1, 2))
        emo_att = torch.matmul(torch.softmax(emo_logits, dim=-1), self._split_heads(emo_kv[:, d:]))
        return self.emotion_out(self._merge_heads(emo_att))

    def decode(self, mel_context: torch.Tensor, emotion_context: torch.Tensor) -> torch.Tensor:
        """Fusion and decoder: (..., 52, d) mel context + (52, d) emotion context -> raw (..., 52) in [0, 1]."""
        fused = self.w_mel * mel_context + self.w_emotion * emotion_context  # (..., 52, d)
        hidden = F.gelu(self.decoder_hidden(self.decoder_norm(fused)))  # (..., 52, 64)
        return torch.sigmoid((hidden * self.decoder_weight).sum(-1) + self.decoder_bias)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        return (
            torch.randn(1, self.n_history, self.detail_encoder[0].in_features, generator=g),
            torch.randn(1, self.n_context - 1, 2 * self.d, generator=g) * 0.5,
            torch.randn(1, self.emotion_compress.in_features, generator=g),
            torch.rand(1, self.decoder_bias.shape[0], generator=g),
        )


def _fold_norm(norm: nn.LayerNorm, linear: nn.Linear) -> tuple[nn.LayerNorm, nn.Linear]:
    """LayerNorm -> Linear as a LayerNorm without scale and shift -> a Linear that applies them: the same
    function, with nothing left for a converter to fold. The TFLite converter folds a LayerNorm's scale into
    the next Linear's weights in some graphs and not in others, so two graphs of the same layers would carry
    different fp16 weights (docs/DECISIONS.md, "The offline model"). Shared by every deploy graph."""
    plain = nn.LayerNorm(norm.normalized_shape, eps=norm.eps, elementwise_affine=False)
    folded = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        folded.weight.copy_(linear.weight * norm.weight)
        folded.bias.copy_(linear.bias + linear.weight @ norm.bias)
    return plain, folded


class DeployOffline(nn.Module):
    """`frames` consecutive output frames per call, for files on a desktop: the front end and `DeployStep`'s
    layers with the same weights, so it gives the step's frames (to float round-off) at a fraction of the cost.

    Per call, for mel frames j0 .. j0+B-1: the B PCM windows go through the front end as one matrix; every
    new frame is encoded once; each frame's attention scores against the 52 queries are computed once (the
    step recomputes them in each of the N windows that contain the frame); the emotion stream runs once.
    The windowed softmax is factorized: exp(score_t + bias_n - peak) = exp(score_t - peak') * exp(bias_n -
    max bias), so the position term is a constant band (`band`, group x (group + N - 1) per head and
    query) and each group of outputs is one matrix product with the values; a ones column on the values
    gives the softmax denominators. `attention_floor` is the smallest denominator: below
    `runtime.offline.ATTENTION_FLOOR` a window's weights underflowed and the caller recomputes that call's
    frames with the step model. Outputs are unsmoothed; the caller smooths with `smoothing_alpha` as the step
    does.

    Inputs: pcm (1, B, 1024) windows of mel frames j0 .. j0+B-1; mel_history (1, H-1, 80) mel frames before
    j0; context (1, N-1, 2d) encoded frames j0-N+1 .. j0-1 (the step's ring buffer); emotion (1, 264).
    Outputs: blendshapes_raw (1, B, 52) for output frames j - lookahead; mel (1, B, 80); context_frames
    (1, B, 2d); attention_floor (1,)."""

    def __init__(self, model: A2BSModel, frames: int = OFFLINE_FRAMES, group: int | None = None) -> None:
        super().__init__()
        cfg = model.config
        self.step = DeployStep(model)
        self.front_end = model.front_end
        self.frames, self.group = frames, group or OFFLINE_GROUP[cfg.fps]
        if self.frames % self.group:
            raise ValueError(f"frames ({frames}) must be a multiple of group ({self.group})")
        self.spacing = cfg.detail_spacing
        n, span = cfg.context_frames, cfg.context_frames - 1 + self.group
        with torch.no_grad():
            bias = self.step.position_bias[..., :n]
            bias_peak = bias.amax(-1, keepdim=True)  # (h, 52, 1)
            position = torch.arange(span)[None, :] - torch.arange(self.group)[:, None]  # (group, span): t - b
            inside = (position >= 0) & (position < n)
            band = torch.where(inside, torch.exp(bias - bias_peak)[:, :, position.clamp(0, n - 1)], 0.0)
        self.register_buffer("bias_peak", bias_peak.clone())
        self.register_buffer("band", band.reshape(self.step.h, -1, span).contiguous())  # (h, 52 * group, span)

    def forward(
        self, pcm: torch.Tensor, mel_history: torch.Tensor, context: torch.Tensor, emotion: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        s, b_frames, group = self.step, self.frames, self.group
        d, h, dh, n, rows = s.d, s.h, s.dh, s.n_context, s.n_history
        new_mel = self.front_end(pcm[0])  # (B, 80)
        mel = torch.cat([mel_history[0], new_mel], 0)  # (B + H - 1, 80): mel frames j0 - H + 1 .. j0 + B - 1
        first = rows - s.n_encoded  # row of frame j0 - 2
        stacked = torch.cat([mel[first + i : first + i + b_frames] for i in range(s.n_encoded)], dim=-1)
        new_kv = s.frame_kv(s.frame_encoder(stacked))  # (B, 2d): frames j0 .. j0+B-1, each from itself + 2 before
        kv = torch.cat([context[0], new_kv], 0)  # (T, 2d), T = N - 1 + B: encoded frames j0-N+1 .. j0+B-1
        total = n - 1 + b_frames
        scores = torch.matmul(s.mel_q, kv[:, :d].reshape(total, h, dh).permute(1, 2, 0))  # (h, 52, T)
        values = kv[:, d:].reshape(total, h, dh).permute(1, 0, 2)  # (h, T, dh)
        # detail tokens of output b: mel rows (rows-1+b) - i*spacing for i = 0, 1, 2 (frames j, j-s, j-2s)
        detail = s.detail_kv(s.detail_encoder(mel))  # (B + H - 1, 2d)
        detail_scores = torch.matmul(s.mel_q, s._split_heads(detail[:, :d]).transpose(1, 2))  # (h, 52, B+H-1)
        detail_values = s._split_heads(detail[:, d:])  # (h, B+H-1, dh)
        starts = [rows - 1 - i * self.spacing for i in range(s.n_encoded)]
        detail_logits = torch.stack([detail_scores[..., a : a + b_frames] for a in starts], -1)
        detail_logits = detail_logits + s.position_bias[..., n:][:, :, None, :]  # (h, 52, B, 3)
        peak = torch.maximum(  # per head and query over the call: every exponent below is <= 0
            scores.amax(-1, keepdim=True) + self.bias_peak, detail_logits.amax(dim=(-1, -2))[..., None]
        )
        # exponents below EXPONENT_FLOOR are raised to it: no subnormal floats (x86 computes them ~100x slower),
        # and a window whose weights all sit there has a sum far below ATTENTION_FLOOR, so it is recomputed
        exp_scores = torch.exp(torch.clamp(scores - (peak - self.bias_peak), min=EXPONENT_FLOOR))  # (h, 52, T)
        exp_detail = torch.exp(torch.clamp(detail_logits - peak[..., None], min=EXPONENT_FLOOR))  # (h, 52, B, 3)
        values = torch.cat([values, torch.ones(h, total, 1)], -1)  # the ones column sums the weights
        span = n - 1 + group
        band = self.band.reshape(h, 52, group, span)
        attended = []
        for g in range(0, b_frames, group):
            weights = (band * exp_scores[:, :, None, g : g + span]).reshape(h, 52 * group, span)
            attended.append(torch.matmul(weights, values[:, g : g + span]).reshape(h, 52, group, dh + 1))
        att = torch.cat(attended, 2)  # (h, 52, B, dh + 1)
        detail_values = torch.cat([detail_values, torch.ones(h, b_frames + rows - 1, 1)], -1)
        detail_windows = torch.stack([detail_values[:, a : a + b_frames] for a in starts], 2)  # (h, B, 3, dh+1)
        att = att + torch.matmul(exp_detail.permute(0, 2, 1, 3), detail_windows).permute(0, 2, 1, 3)
        norm = att[..., dh:]
        out = (att[..., :dh] / norm).permute(2, 1, 0, 3).reshape(b_frames, 52, d)  # heads merged
        raw = s.decode(s.mel_out(out), s.emotion_context(emotion))  # (B, 52)
        return raw[None], new_mel[None], new_kv[None], norm.amin().reshape(1)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        s = self.step
        return (
            torch.randn(1, self.frames, N_FFT, generator=g) * 0.1,
            torch.randn(1, s.n_history - 1, N_MELS, generator=g),
            torch.randn(1, s.n_context - 1, 2 * s.d, generator=g) * 0.5,
            torch.randn(1, s.emotion_compress.in_features, generator=g),
        )


class DeployFrontEnd(nn.Module):
    """1024 PCM samples (16 kHz, float in [-1, 1]) -> 80 normalized log-mel values. Keep in fp32."""

    def __init__(self, model: A2BSModel) -> None:
        super().__init__()
        self.front_end = model.front_end

    def forward(self, pcm: torch.Tensor) -> torch.Tensor:
        return self.front_end(pcm)

    @staticmethod
    def example_inputs() -> tuple[torch.Tensor]:
        return (torch.randn(1, N_FFT, generator=torch.Generator().manual_seed(0)) * 0.1,)


def mel_history_names(config: ModelConfig) -> list[str]:
    """The step's mel_frames rows, oldest first, as frame names: ["j-2", "j-1", "j"] at 30 fps."""
    return [f"j-{config.step_mel_frames - 1 - i}" for i in range(config.step_mel_frames - 1)] + ["j"]


@torch.no_grad()
def initial_state(model: A2BSModel) -> dict[str, torch.Tensor]:
    """What an app starts with: the context ring and mel history of digital silence."""
    silence_mel = model.front_end(torch.zeros(1, N_FFT))  # (1, 80)
    frame = model.silence_context_frame()
    return {
        "mel_frames": silence_mel.expand(model.config.step_mel_frames, -1)[None].clone(),
        "context": frame.expand(model.config.context_frames - 1, -1)[None].clone(),
    }


@torch.no_grad()
def deployed_macs(model: A2BSModel) -> dict[str, float]:
    """Multiply-accumulates per frame of what ships, counted by torch's FLOP counter (1 MAC = 2 FLOPs): the
    measurement that `core/architecture.macs` is checked against. "step": `DeployStep` (its constant
    subgraphs folded, so it costs less than `A2BSModel.step`); "front_end": `DeployFrontEnd`; "offline":
    one call of `DeployOffline` divided by its frames."""
    from torch.utils.flop_counter import FlopCounterMode

    offline = DeployOffline(model)
    out: dict[str, float] = {}
    for name, module, frames in (
        ("step", DeployStep(model), 1),
        ("front_end", DeployFrontEnd(model), 1),
        ("offline", offline, offline.frames),
    ):
        with FlopCounterMode(display=False) as counter:
            module.eval()(*module.example_inputs())
        out[name] = int(counter.get_total_flops() // 2) / frames
    return out
