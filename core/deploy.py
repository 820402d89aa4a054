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

from a2bs.core.constants import N_FFT
from a2bs.core.model import A2BSModel, ModelConfig, count_parameters, macs_per_frame

STEP_INPUTS = ("mel_frames", "context", "emotion", "previous")
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
        # learned layers, shared with the model
        self.frame_encoder = model.frame_encoder
        self.detail_encoder = model.detail_encoder
        self.mel_kv = model.mel_kv
        self.mel_out = model.mel_out
        self.emotion_compress = model.emotion_compress
        self.emotion_tokens = model.emotion_tokens
        self.emotion_norm = model.emotion_norm
        self.emotion_kv = model.emotion_kv
        self.emotion_out = model.emotion_out
        self.decoder_norm = model.decoder_norm
        self.decoder_hidden = model.decoder_hidden
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
        context_frame = self.mel_kv(self.frame_encoder(newest.reshape(1, -1)))  # (1, 2d)
        tokens = torch.cat([context.reshape(self.n_context - 1, 2 * d), context_frame], dim=0)  # (N, 2d)
        newest_first = torch.cat([mel_frames[0, r : r + 1] for r in self.detail_rows], dim=0)  # (3, 80)
        detail = self.mel_kv(self.detail_encoder(newest_first))  # (3, 2d)
        keys = torch.cat([self._split_heads(tokens[:, :d]), self._split_heads(detail[:, :d])], dim=1)
        values = torch.cat([self._split_heads(tokens[:, d:]), self._split_heads(detail[:, d:])], dim=1)
        logits = torch.matmul(self.mel_q, keys.transpose(1, 2)) + self.position_bias  # (h, 52, N+3)
        mel_context = self.mel_out(self._merge_heads(torch.matmul(torch.softmax(logits, dim=-1), values)))
        # emotion stream: 264 -> 256 -> tokens -> attention with constant queries
        compressed = self.emotion_compress(emotion)  # (1, d)
        emo_tokens = self.emotion_tokens(F.gelu(compressed)).reshape(self.n_emotion_tokens, d)
        emo_kv = self.emotion_kv(self.emotion_norm(emo_tokens + self.token_embedding))  # (T_e, 2d)
        emo_logits = torch.matmul(self.emotion_q, self._split_heads(emo_kv[:, :d]).transpose(1, 2))
        emo_att = torch.matmul(torch.softmax(emo_logits, dim=-1), self._split_heads(emo_kv[:, d:]))
        emotion_context = self.emotion_out(self._merge_heads(emo_att))
        # fusion, decoder, smoothing
        fused = self.w_mel * mel_context + self.w_emotion * emotion_context  # (52, d)
        hidden = F.gelu(self.decoder_hidden(self.decoder_norm(fused)))  # (52, 64)
        raw = torch.sigmoid((hidden * self.decoder_weight).sum(-1) + self.decoder_bias).reshape(1, -1)
        smoothed = self.alpha * raw + (1 - self.alpha) * previous
        return smoothed, raw, context_frame

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        return (
            torch.randn(1, self.n_history, self.detail_encoder[0].in_features, generator=g),
            torch.randn(1, self.n_context - 1, 2 * self.d, generator=g) * 0.5,
            torch.randn(1, self.emotion_compress.in_features, generator=g),
            torch.rand(1, self.decoder_bias.shape[0], generator=g),
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
def deployed_macs(model: A2BSModel) -> dict[str, int]:
    """Multiply-accumulates per frame of what ships: {"step": DeployStep, "front_end": DeployFrontEnd}
    (torch's FLOP counter, 1 MAC = 2 FLOPs). The shipped step has its constant subgraphs folded, so it
    costs less than `A2BSModel.step`."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    for name, module in (("step", DeployStep(model).eval()), ("front_end", DeployFrontEnd(model).eval())):
        with FlopCounterMode(display=False) as counter:
            module(*module.example_inputs())
        out[name] = int(counter.get_total_flops() // 2)
    return out


def model_figures(model: A2BSModel) -> dict[str, float]:
    """Every size and cost figure of a model that the docs quote, measured in one place: `a2bs info`
    prints them and `benchmarks/docs_tables.py` writes them into docs/ARCHITECTURE.md."""
    params = count_parameters(model)
    reference, shipped, fps = macs_per_frame(model), deployed_macs(model), model.config.fps
    return {
        "fps": fps,
        "parameters": params,
        "fp32_mb": params * 4 / 1e6,
        "offline_mmac": reference["offline"] / 1e6,  # per output frame, `a2bs infer` (torch)
        "reference_step_mmac": reference["device_step"] / 1e6,  # `A2BSModel.step`, constants recomputed
        "shipped_step_mmac": shipped["step"] / 1e6,  # `DeployStep`, what the bundles hold
        "front_end_mmac": shipped["front_end"] / 1e6,
        "device_gmac_per_s": (shipped["step"] + shipped["front_end"]) * fps / 1e9,
    }


def describe(model: A2BSModel) -> str:
    f = model_figures(model)
    return (
        f"{f['parameters']:,} parameters ({f['fp32_mb']:.2f} MB fp32); per output frame at {f['fps']} fps: "
        f"{f['offline_mmac']:.1f} MMAC offline, {f['shipped_step_mmac']:.1f} MMAC shipped step + "
        f"{f['front_end_mmac']:.2f} MMAC front end on device ({f['device_gmac_per_s']:.2f} GMAC/s; "
        f"the reference A2BSModel.step: {f['reference_step_mmac']:.1f} MMAC)"
    )
