"""The core model: enhanced mel stream + emotion stream -> 52 ARKit blendshapes.

Interfaces follow the spec (52 learnable ARKit queries, d_model 256, 8-head cross-attention over
each stream, per-blendshape temperature-softmax stream weights, decoder, sigmoid, learnable
smoothing). The encoders are designed so that shared work is computed once (docs/ARCHITECTURE.md):

* Every mel frame j is encoded once, from the concatenation of frames j-2, j-1, j (the spec's
  "3 frames temporal concatenation"), into a key/value pair. Keys and values carry no position;
  where a frame sits in a window enters only as a learned per-(head, query, position) attention bias.
  So a frame's key/value is the same in all 256 (or 512) windows that contain it: offline inference
  encodes each frame once, and on device the app keeps a ring buffer of encoded frames.
* Output frame k attends over the N encoded frames ending at mel frame j = k + lookahead, plus
  3 short-term detail tokens (frames j, j-s, j-2s through a separate frame-local encoder; s = 1 at
  30 fps, 2 at 60 fps): N + 3 tokens, the spec's enhanced mel stream.
* The emotion vector (264 = 3 x 88 eGeMAPS) is compressed to 256 and expanded into several
  key/value tokens (DESIGN.md decision 8: one key would make attention degenerate).
* Stream weights per blendshape: softmax over (theta_mel, theta_emotion) / tau, tau in [0.05, 0.5].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from a2bs.core import constants as C
from a2bs.core.architecture import ModelConfig
from a2bs.core.features import MelFrontEnd


class A2BSModel(nn.Module):
    """Speech -> ARKit blendshapes. See the module docstring for the design."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.d_model, config.n_heads
        self.head_dim = d // h
        self.front_end = MelFrontEnd()

        # Mel stream: frame encoder over 3 concatenated frames, detail encoder over one frame.
        self.frame_encoder = nn.Sequential(
            nn.Linear(config.detail_frames * config.n_mels, config.encoder_hidden),
            nn.GELU(),
            nn.Linear(config.encoder_hidden, config.encoder_hidden),
            nn.GELU(),
            nn.Linear(config.encoder_hidden, d),
            nn.LayerNorm(d),
        )
        self.detail_encoder = nn.Sequential(nn.Linear(config.n_mels, d), nn.GELU(), nn.Linear(d, d), nn.LayerNorm(d))
        self.mel_kv = nn.Linear(d, 2 * d)
        # Positions 0..N-1: long-term frames, oldest first; N..N+2: detail tokens for frames j, j-s, j-2s.
        recency = -4.0 * torch.arange(config.context_frames - 1, -1, -1, dtype=torch.float32) / config.context_frames
        bias = torch.cat([recency, torch.zeros(config.detail_frames)])
        self.mel_position_bias = nn.Parameter(bias.expand(h, config.n_blendshapes, -1).clone())

        # ARKit queries and their per-stream projections.
        self.queries = nn.Parameter(torch.randn(config.n_blendshapes, d) * 0.02)
        self.mel_query = nn.Linear(d, d)
        self.mel_out = nn.Linear(d, d)
        self.emotion_query = nn.Linear(d, d)
        self.emotion_out = nn.Linear(d, d)

        # Emotion stream: 264 -> 256 (spec's learnable compression) -> several key/value tokens.
        self.emotion_compress = nn.Linear(config.emotion_dim, d)
        self.emotion_tokens = nn.Linear(d, config.emotion_tokens * d)
        self.emotion_token_embedding = nn.Parameter(torch.randn(config.emotion_tokens, d) * 0.02)
        self.emotion_norm = nn.LayerNorm(d)
        self.emotion_kv = nn.Linear(d, 2 * d)

        # Per-blendshape stream weights and temperature.
        self.theta_mel = nn.Parameter(torch.zeros(config.n_blendshapes))
        self.theta_emotion = nn.Parameter(torch.zeros(config.n_blendshapes))
        self.tau_raw = nn.Parameter(torch.zeros(()))

        # Decoder: shared MLP, then one output unit per blendshape.
        self.decoder_norm = nn.LayerNorm(d)
        self.decoder_hidden = nn.Linear(d, config.decoder_hidden)
        self.decoder_weight = nn.Parameter(torch.randn(config.n_blendshapes, config.decoder_hidden) * 0.05)
        self.decoder_bias = nn.Parameter(torch.full((config.n_blendshapes,), -2.0))  # start near a relaxed face

        # Smoothing B_t = a * raw_t + (1 - a) * B_{t-1}, a = sigmoid(alpha_raw), alpha_raw ~ N(0, 0.1).
        self.alpha_raw = nn.Parameter(torch.randn(()) * 0.1)

    # ---- small pieces shared by every path -------------------------------------------------------
    @property
    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.alpha_raw)

    @property
    def tau(self) -> torch.Tensor:
        return C.TAU_MIN + (C.TAU_MAX - C.TAU_MIN) * torch.sigmoid(self.tau_raw)

    def stream_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_mel, w_emotion), each (52,), summing to 1 per blendshape (DESIGN.md decision 5)."""
        w = torch.softmax(torch.stack([self.theta_mel, self.theta_emotion]) / self.tau, dim=0)
        return w[0], w[1]

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., h, d/h)."""
        return x.unflatten(-1, (self.config.n_heads, self.head_dim))

    def mel_queries(self) -> torch.Tensor:
        """(h, 52, d/h) projected queries, pre-scaled by 1/sqrt(d/h). Constant at inference."""
        q = self._heads(self.mel_query(self.queries)).transpose(0, 1)
        return q / math.sqrt(self.head_dim)

    def encode_frames(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, 80) normalized mel -> (B, T-2, 2d) keys|values of frames 2..T-1 (each from itself + 2 before)."""
        stacked = mel.unfold(1, self.config.detail_frames, 1).transpose(-1, -2).flatten(-2)
        return self.mel_kv(self.frame_encoder(stacked))

    def encode_detail(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., 80) -> (..., 2d) keys|values of the frame-local detail tokens."""
        return self.mel_kv(self.detail_encoder(mel))

    def emotion_context(self, emotion: torch.Tensor) -> torch.Tensor:
        """(..., 264) normalized emotion features -> (..., 52, d): the emotion stream's attention output."""
        d = self.config.d_model
        compressed = self.emotion_compress(emotion)
        tokens = self.emotion_tokens(F.gelu(compressed)).unflatten(-1, (self.config.emotion_tokens, d))
        tokens = self.emotion_norm(tokens + self.emotion_token_embedding)
        kv = self.emotion_kv(tokens)  # (..., T_e, 2d)
        k, v = self._heads(kv[..., :d]), self._heads(kv[..., d:])
        q = self._heads(self.emotion_query(self.queries)).transpose(0, 1) / math.sqrt(self.head_dim)  # (h, 52, dh)
        logits = torch.einsum("hqd,...thd->...hqt", q, k)
        attended = torch.einsum("...hqt,...thd->...qhd", torch.softmax(logits, dim=-1), v)
        return self.emotion_out(attended.flatten(-2))

    def fuse_and_decode(self, mel_context: torch.Tensor, emotion_context: torch.Tensor) -> torch.Tensor:
        """(..., 52, d) x2 -> raw blendshapes (..., 52) in [0, 1] (before smoothing)."""
        w_mel, w_emotion = self.stream_weights()
        fused = w_mel[:, None] * mel_context + w_emotion[:, None] * emotion_context
        hidden = F.gelu(self.decoder_hidden(self.decoder_norm(fused)))
        return torch.sigmoid((hidden * self.decoder_weight).sum(-1) + self.decoder_bias)

    def _attend_mel(
        self,
        logits_long: torch.Tensor,
        logits_detail: torch.Tensor,
        values_long: torch.Tensor,
        values_detail: torch.Tensor,
    ) -> torch.Tensor:
        """Softmax over N long-term + 3 detail tokens, weighted sum of values, output projection.

        logits_long (..., h, 52, N), logits_detail (..., h, 52, 3); values_long (..., N, h, dh),
        values_detail (..., 3, h, dh) -> (..., 52, d).
        """
        n = self.config.context_frames
        # Softmax over both token groups without concatenating them: the long-term logits are the
        # largest tensor of the whole model, so they are materialized once (bias add) and reused.
        long = logits_long + self.mel_position_bias[..., :n]
        detail = logits_detail + self.mel_position_bias[..., n:]
        peak = torch.maximum(long.amax(-1, keepdim=True), detail.amax(-1, keepdim=True))
        long = torch.exp(long - peak)
        detail = torch.exp(detail - peak)
        norm = long.sum(-1) + detail.sum(-1)  # (..., h, 52)
        out = torch.einsum("...hqn,...nhd->...qhd", long, values_long)
        out = out + torch.einsum("...hqn,...nhd->...qhd", detail, values_detail)
        out = out / norm.transpose(-1, -2)[..., None]
        return self.mel_out(out.flatten(-2))

    # ---- offline / training path: every frame encoded once ---------------------------------------
    def forward_sequence(
        self, mel: torch.Tensor, emotion_context: torch.Tensor, stride: int = 1, chunk: int | None = None
    ) -> torch.Tensor:
        """Raw blendshapes for the windows of a mel sequence, every `stride`-th window.

        mel: (B, T_in, 80) normalized mel frames. Output i uses mel frames [i*s, i*s + N + 2), i.e. its
        "current" mel frame is i*s + N + 1. emotion_context: (B, 52, d) or (B, T_out, 52, d).
        Returns (B, T_out, 52) with T_out = (T_in - (N + 2)) // s + 1. `chunk` outputs are attended at a
        time: small enough that the (chunk, h, 52, N) logits stay in cache.
        """
        cfg = self.config
        n, d = cfg.context_frames, cfg.d_model
        span = mel.shape[1] - cfg.window_mel_frames
        if span < 0:
            raise ValueError(f"need at least {cfg.window_mel_frames} mel frames, got {mel.shape[1]}")
        t_out = span // stride + 1
        chunk = chunk or max(4, 4096 // n)  # measured fastest here: 16 at N = 256, 8 at N = 512
        kv = self.encode_frames(mel)  # (B, T_in-2, 2d): encoded index t is mel frame t + 2
        keys, values = self._heads(kv[..., :d]), self._heads(kv[..., d:])  # (B, T', h, dh)
        # A ones channel on the values makes the attention einsum also return the softmax denominator.
        values = torch.cat([values, values.new_ones((*values.shape[:-1], 1))], dim=-1)
        queries = self.mel_queries()
        scores = torch.einsum("bthd,hqd->bhqt", keys, queries)  # (B, h, 52, T'): each frame scored once
        # Detail index t holds mel frames t + reach - 1 (j), j - s, j - 2s; encoded index t is mel frame t + 2.
        reach, spacing = cfg.step_mel_frames, cfg.detail_spacing
        detail_mel = mel.unfold(1, reach, 1).flip(-1)[..., ::spacing].movedim(-1, 2)  # (B, T_in-reach+1, 3, 80)
        shift = reach - cfg.detail_frames
        # exp(score_j + bias_p - peak) = exp(score_j - peak + bias_peak) * exp(bias_p - bias_peak): the
        # exponentials are taken once per frame and once per position, not once per (frame, window).
        bias_long, bias_detail = self.mel_position_bias[..., :n], self.mel_position_bias[..., n:]
        bias_peak = bias_long.detach().amax(-1, keepdim=True)  # (h, 52, 1)
        exp_bias = torch.exp(bias_long - bias_peak)  # (h, 52, N)
        outputs = []
        for start in range(0, t_out, chunk):
            stop = min(start + chunk, t_out)
            first, last = start * stride, (stop - 1) * stride + n  # encoded frames used by this chunk
            current = slice(first + n - 1, last, stride)  # encoded index of each output's newest frame
            detail_kv = self.encode_detail(detail_mel[:, current.start - shift : current.stop - shift : stride])
            detail_k, detail_v = self._heads(detail_kv[..., :d]), self._heads(detail_kv[..., d:])
            logits_detail = torch.einsum("bcnhd,hqd->bchqn", detail_k, queries) + bias_detail
            span_scores = scores[..., first:last]  # (B, h, 52, span)
            peak = torch.maximum(  # per (head, query) over the chunk: every exponent below is <= 0
                span_scores.detach().amax(-1, keepdim=True) + bias_peak,
                logits_detail.detach().amax(dim=(1, -1)).unsqueeze(-1),
            )  # (B, h, 52, 1)
            exp_span = torch.exp(span_scores - (peak - bias_peak))
            windows = exp_span.unfold(-1, n, stride).movedim(3, 1)  # (B, c, h, 52, N) view
            if torch.is_grad_enabled():  # out= does not support autograd
                weights = (windows * exp_bias).contiguous()
            else:
                weights = torch.empty(windows.shape, dtype=windows.dtype)
                torch.mul(windows, exp_bias, out=weights)  # materialized once, contiguous
            exp_detail = torch.exp(logits_detail - peak[:, None])  # (B, c, h, 52, 3)
            ones = detail_v.new_ones((*detail_v.shape[:-1], 1))
            attended = torch.einsum("bchqn,bchdn->bcqhd", weights, values[:, first:last].unfold(1, n, stride))
            attended = attended + torch.einsum("bchqn,bcnhd->bcqhd", exp_detail, torch.cat([detail_v, ones], -1))
            norm = attended[..., -1:]
            if bool((norm < 1e-30).any()):  # underflow (never seen): redo this chunk the direct way
                logits_long = span_scores.unfold(-1, n, stride).contiguous().movedim(3, 1)
                values_long = values[:, first:last, :, :-1].unfold(1, n, stride).movedim(-1, 2)
                mel_context = self._attend_mel(logits_long, logits_detail - bias_detail, values_long, detail_v)
            else:
                mel_context = self.mel_out((attended[..., :-1] / norm).flatten(-2))
            # (B, 52, d) broadcasts over the chunk; (B, T_out, 52, d) is sliced to it.
            emo = emotion_context[:, None] if emotion_context.dim() == 3 else emotion_context[:, start:stop]
            outputs.append(self.fuse_and_decode(mel_context, emo))
        return torch.cat(outputs, dim=1)

    def forward(self, mel: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """Training convenience: (B, T_in, 80) mel, (B, 264) emotion -> smoothed (B, T_out, 52)."""
        raw = self.forward_sequence(mel, self.emotion_context(emotion))
        return smooth(raw, self.alpha)

    # ---- device path: one frame at a time, encoded context carried by the caller --------------------
    def step(
        self, mel_frames: torch.Tensor, context: torch.Tensor, emotion: torch.Tensor, previous: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One output frame, stateless (the exported on-device model).

        mel_frames (B, step_mel_frames, 80): normalized mel frames up to j, oldest first (j-2, j-1, j at
        detail spacing 1). context (B, N-1, 2d): keys|values of
        frames j-N+1 .. j-1, oldest first (the app's ring buffer). emotion (B, 264). previous (B, 52):
        the previous smoothed frame. Returns (smoothed, raw, new_context_frame (B, 2d)); the caller
        drops the oldest context row and appends new_context_frame.
        """
        d = self.config.d_model
        cfg = self.config
        newest = mel_frames[:, -cfg.detail_frames :]  # j-2, j-1, j
        new_kv = self.mel_kv(self.frame_encoder(newest.flatten(-2)))  # (B, 2d)
        kv = torch.cat([context, new_kv[:, None]], dim=1)  # (B, N, 2d)
        keys, values = self._heads(kv[..., :d]), self._heads(kv[..., d:])
        detail_kv = self.encode_detail(mel_frames.flip(1)[:, :: cfg.detail_spacing])  # (B, 3, 2d): j, j-s, j-2s
        detail_k, detail_v = self._heads(detail_kv[..., :d]), self._heads(detail_kv[..., d:])
        q = self.mel_queries()
        logits_long = torch.einsum("bnhd,hqd->bhqn", keys, q)
        logits_detail = torch.einsum("bnhd,hqd->bhqn", detail_k, q)
        mel_context = self._attend_mel(logits_long, logits_detail, values, detail_v)
        raw = self.fuse_and_decode(mel_context, self.emotion_context(emotion))
        alpha = self.alpha
        smoothed = alpha * raw + (1 - alpha) * previous
        return smoothed, raw, new_kv

    @torch.no_grad()
    def silence_context_frame(self) -> torch.Tensor:
        """(2d,) keys|values of a frame of digital silence: what the ring buffer holds before audio starts."""
        silence = self.front_end(torch.zeros(1, C.N_FFT))  # (1, 80)
        mel = silence.expand(self.config.detail_frames, -1)[None]
        return self.encode_frames(mel)[0, 0]


def smooth(raw: torch.Tensor, alpha: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Exponential smoothing along time (dim -2). With no `previous`, the state starts at raw_0 (file reset)."""
    state = raw[..., 0, :] if previous is None else previous
    out = []
    for t in range(raw.shape[-2]):
        state = alpha * raw[..., t, :] + (1 - alpha) * state
        out.append(state)
    return torch.stack(out, dim=-2)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_frame(model: A2BSModel) -> dict[str, int]:
    """Multiply-accumulates per output frame, counted by torch's FLOP counter (1 MAC = 2 FLOPs): the
    measurement that `core/architecture.macs` is checked against.

    `device_step`: the stateless `A2BSModel.step` (encodes one new frame, attends over the carried context,
    recomputes the constant query projections and the emotion stream each call). `front_end`: one PCM window.
    `offline`: what each added output frame costs `forward_sequence` in a long call (the difference of two
    calls' counts; the emotion stream is computed once per file, outside).
    """
    from torch.utils.flop_counter import FlopCounterMode

    def counted(run: Callable[[], object]) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            run()
        return int(counter.get_total_flops() // 2)

    cfg = model.config
    mel = torch.zeros(1, cfg.step_mel_frames, cfg.n_mels)
    context = torch.zeros(1, cfg.context_frames - 1, 2 * cfg.d_model)
    emotion, previous = torch.zeros(1, cfg.emotion_dim), torch.zeros(1, cfg.n_blendshapes)
    with torch.no_grad():
        emo = model.emotion_context(emotion)
    frames = 64  # a multiple of forward_sequence's chunk at N = 256 and 512: every chunk is full
    calls = [torch.zeros(1, cfg.window_mel_frames + k * frames - 1, cfg.n_mels) for k in (1, 2)]
    short, long = (counted(lambda mel_seq=m: model.forward_sequence(mel_seq, emo)) for m in calls)
    return {
        "device_step": counted(lambda: model.step(mel, context, emotion, previous)),
        "front_end": counted(lambda: model.front_end(torch.zeros(1, C.N_FFT))),
        "offline": (long - short) // frames,
    }
