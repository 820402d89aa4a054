"""The deploy-time step equals the model's step (and so offline inference), with constants folded."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT
from a2bs.core.deploy import DeployFrontEnd, DeployStep, initial_state
from a2bs.core.errors import A2BSError
from a2bs.core.model import A2BSModel, ModelConfig


@pytest.mark.parametrize("fps", [30, 60])
def test_deploy_step_equals_model_step(fps: int, request: pytest.FixtureRequest) -> None:
    ckpt: Checkpoint = request.getfixturevalue(f"ckpt{fps}")
    model = ckpt.model
    step = DeployStep(model).eval()
    inputs = step.example_inputs()
    with torch.no_grad():
        expected = model.step(*inputs)
        got = step(*inputs)
    for e, g in zip(expected, got, strict=True):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=1e-6, rtol=0)


def test_deploy_refuses_a_detail_spacing_the_bundles_cannot_run() -> None:
    spaced = A2BSModel(dataclasses.replace(ModelConfig.for_fps(60), detail_spacing=2))
    with pytest.raises(A2BSError, match="detail_spacing 2 cannot be exported"):
        DeployStep(spaced)
    DeployStep(A2BSModel(ModelConfig.for_fps(60)))  # the control: spacing 1 exports


def test_deploy_step_has_no_query_projection_at_run_time(ckpt30: Checkpoint) -> None:
    step = DeployStep(ckpt30.model)
    names = {n for n, _ in step.named_modules()}
    assert "mel_query" not in names and "emotion_query" not in names  # folded into constants
    assert {"mel_q", "emotion_q", "w_mel", "w_emotion", "alpha"} <= {n for n, _ in step.named_buffers()}


def test_front_end_and_initial_state(ckpt30: Checkpoint) -> None:
    model = ckpt30.model
    front = DeployFrontEnd(model)
    (pcm,) = front.example_inputs()
    torch.testing.assert_close(front(pcm), model.front_end(pcm))
    state = initial_state(model)
    assert state["mel_frames"].shape == (1, 3, 80)
    assert state["context"].shape == (1, model.config.context_frames - 1, 512)
    silence = model.front_end(torch.zeros(1, N_FFT))
    torch.testing.assert_close(state["mel_frames"][0, 0], silence[0])
