"""The core model: shapes, budgets, and that every path (sequence, stride, device step) agrees."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from a2bs.core.architecture import ModelConfig, describe
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.constants import CONTEXT_FRAMES, EMOTION_DIM, MODEL_SIZE_TARGET_MB, TAU_MAX, TAU_MIN
from a2bs.core.deploy import deployed_macs
from a2bs.core.model import A2BSModel, count_parameters, macs_per_frame, smooth


def _model(config: ModelConfig) -> A2BSModel:
    torch.manual_seed(0)
    m = A2BSModel(config).eval()
    with torch.no_grad():  # give the stream weights and position bias non-trivial values
        m.theta_mel.normal_(0, 1)
        m.theta_emotion.normal_(0, 1)
        m.mel_position_bias.add_(torch.randn_like(m.mel_position_bias))
    return m


@pytest.fixture(scope="module", params=[30, 60])
def model(request: pytest.FixtureRequest) -> A2BSModel:
    return _model(ModelConfig.for_fps(request.param))


def _inputs(model: A2BSModel, extra: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(batch, model.config.window_mel_frames + extra, 80, generator=g)
    emotion = torch.randn(batch, EMOTION_DIM, generator=g)
    return mel, emotion


def test_config_per_fps() -> None:
    for fps in (30, 60):
        cfg = ModelConfig.for_fps(fps)
        assert cfg.context_frames == CONTEXT_FRAMES[fps]
        assert cfg.n_tokens == cfg.context_frames + 3  # the spec's enhanced (N + 3) x 80 mel stream
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="fps"):
        ModelConfig.for_fps(25)


def test_size_and_cost_budgets(model: A2BSModel) -> None:
    params = count_parameters(model)
    assert params * 4 < MODEL_SIZE_TARGET_MB * 1e6 * 0.7  # well under 10 MB in fp32
    macs = macs_per_frame(model)
    assert macs["device_step"] + macs["front_end"] < 50e6  # per-frame on-device budget
    assert 0 < macs["offline"] < macs["device_step"]  # offline shares encoder and emotion work
    shipped = deployed_macs(model)
    assert 0 < shipped["offline"] < shipped["step"]  # the offline model shares it too, front end included
    text = describe(model.config)
    assert f"{shipped['step'] / 1e6:.1f} MMAC shipped step" in text  # what the bundles hold
    assert f"{shipped['offline'] / 1e6:.1f} MMAC offline LiteRT model" in text  # what `a2bs infer` runs
    assert "parameters" in text and "MMAC" in text


def test_sequence_output_shape_and_range(model: A2BSModel) -> None:
    mel, emotion = _inputs(model, extra=9)
    with torch.no_grad():
        out = model(mel, emotion)
    assert out.shape == (2, 10, len(ARKIT_BLENDSHAPES))
    assert torch.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("spacing", [1, 2])
def test_device_step_equals_sequence_path(model: A2BSModel, spacing: int) -> None:
    """The stateless step with a carried ring buffer reproduces offline inference, smoothing included,
    with the detail tokens one or two mel frames apart."""
    if model.config.detail_spacing != spacing:
        model = _model(dataclasses.replace(model.config, detail_spacing=spacing))
    mel, emotion = _inputs(model, extra=12)
    n, reach = model.config.context_frames, model.config.step_mel_frames
    with torch.no_grad():
        offline = model(mel, emotion)
        encoded = model.encode_frames(mel)
    with torch.no_grad():
        ring = encoded[:, : n - 1]
        previous = None
        for i in range(offline.shape[1]):
            prev_in = previous if previous is not None else torch.zeros(2, 52)
            smoothed, raw, new = model.step(mel[:, i + n + 2 - reach : i + n + 2], ring, emotion, prev_in)
            if previous is None:  # frame 0: the file reset, B_{-1} = B_0^raw
                smoothed = raw
            torch.testing.assert_close(smoothed, offline[:, i], atol=2e-6, rtol=0)
            torch.testing.assert_close(new, encoded[:, i + n - 1], atol=1e-5, rtol=0)
            ring = torch.cat([ring[:, 1:], new[:, None]], dim=1)
            previous = smoothed


@pytest.mark.parametrize("stride", [2, 5])
def test_stride_picks_every_nth_window(model: A2BSModel, stride: int) -> None:
    mel, emotion = _inputs(model, extra=17, batch=1)
    with torch.no_grad():
        ctx = model.emotion_context(emotion)
        full = model.forward_sequence(mel, ctx)
        strided = model.forward_sequence(mel, ctx, stride=stride)
    torch.testing.assert_close(strided, full[:, ::stride], atol=1e-6, rtol=0)


def test_detail_spacing_moves_the_detail_tokens() -> None:
    """At 60 fps (spacing 2) the detail encoder reads frames j, j-2, j-4: frame j-4, outside the frame
    encoder's j-2 .. j, moves the output; checkpoints written before the field existed read as spacing 1."""
    config = ModelConfig.for_fps(60)
    spaced = _model(config)
    assert config.detail_spacing == 2 and config.step_mel_frames == 5
    assert ModelConfig.for_fps(30).step_mel_frames == 3
    assert ModelConfig.from_json(spaced.config.to_json()) == spaced.config
    old_json = {k: v for k, v in config.to_json().items() if k != "detail_spacing"}  # older checkpoints
    assert ModelConfig.from_json(old_json).detail_spacing == 1
    # spacing 1 is written as before the field existed, so older checkpoints keep their fingerprint
    assert "detail_spacing" not in ModelConfig.for_fps(30).to_json() and config.to_json()["detail_spacing"] == 2
    mel, emotion = torch.randn(1, 5, 80), torch.randn(1, EMOTION_DIM)
    ring, previous = torch.randn(1, config.context_frames - 1, 2 * config.d_model), torch.zeros(1, 52)
    with torch.no_grad():
        base = spaced.step(mel, ring, emotion, previous)[1]
        far = mel.clone()
        far[:, 0] += 1.0  # frame j-4: a detail token at spacing 2, outside the frame encoder's j-2 .. j
        assert (spaced.step(far, ring, emotion, previous)[1] - base).abs().max() > 1e-4


def test_chunking_does_not_change_results(model: A2BSModel) -> None:
    mel, emotion = _inputs(model, extra=20, batch=1)
    with torch.no_grad():
        ctx = model.emotion_context(emotion)
        a = model.forward_sequence(mel, ctx, chunk=3)
        b = model.forward_sequence(mel, ctx, chunk=64)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_per_frame_emotion_context(model: A2BSModel) -> None:
    mel, emotion = _inputs(model, extra=4, batch=1)
    with torch.no_grad():
        ctx = model.emotion_context(emotion)
        shared = model.forward_sequence(mel, ctx)
        per_frame = model.forward_sequence(mel, ctx[:, None].expand(-1, 5, -1, -1))
    torch.testing.assert_close(shared, per_frame)


def test_stream_weights_and_temperature(model: A2BSModel) -> None:
    w_mel, w_emotion = model.stream_weights()
    assert w_mel.shape == (52,)
    torch.testing.assert_close(w_mel + w_emotion, torch.ones(52))  # per blendshape, not across blendshapes
    assert TAU_MIN <= float(model.tau.detach()) <= TAU_MAX
    with torch.no_grad():
        model.tau_raw.fill_(100.0)
        assert float(model.tau.detach()) == pytest.approx(TAU_MAX)
        model.tau_raw.fill_(-100.0)
        assert float(model.tau.detach()) == pytest.approx(TAU_MIN)
        model.tau_raw.fill_(0.0)


def test_emotion_attention_is_not_degenerate(model: A2BSModel) -> None:
    """Several emotion tokens: different queries receive different mixtures (DESIGN.md decision 8)."""
    emotion = torch.randn(1, EMOTION_DIM)
    with torch.no_grad():
        ctx = model.emotion_context(emotion)[0]  # (52, d)
    spread = (ctx - ctx.mean(0)).abs().mean()
    assert model.config.emotion_tokens > 1
    assert spread > 1e-5  # a single key would give every query exactly the same vector (spread 0)
    with torch.no_grad():
        other = model.emotion_context(torch.randn(1, EMOTION_DIM))[0]
    assert not torch.allclose(ctx, other)


def test_smoothing() -> None:
    raw = torch.tensor([[0.0], [1.0], [1.0]])
    out = smooth(raw, torch.tensor(0.5))
    torch.testing.assert_close(out[:, 0], torch.tensor([0.0, 0.5, 0.75]))
    carried = smooth(raw, torch.tensor(0.5), previous=torch.tensor([1.0]))
    torch.testing.assert_close(carried[:, 0], torch.tensor([0.5, 0.75, 0.875]))


def test_alpha_initialization() -> None:
    alphas = []
    for seed in range(20):
        torch.manual_seed(seed)
        alphas.append(float(A2BSModel(ModelConfig()).alpha.detach()))
    assert all(0.4 < a < 0.6 for a in alphas)  # sigmoid(N(0, 0.1))
    assert len(set(alphas)) > 1


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = A2BSModel(ModelConfig())
    mel = torch.randn(2, model.config.window_mel_frames + 3, 80)
    out = model(mel, torch.randn(2, EMOTION_DIM))
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
