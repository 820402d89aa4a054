"""The deploy-time step equals the model's step (and so offline inference), with constants folded."""

from __future__ import annotations

import pytest
import torch

from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT
from a2bs.core.deploy import DeployFrontEnd, DeployStep, initial_state, mel_history_names


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
    assert mel_history_names(model.config) == ["j-2", "j-1", "j"]
    assert state["context"].shape == (1, model.config.context_frames - 1, 2 * model.config.d_model)
    silence = model.front_end(torch.zeros(1, N_FFT))
    torch.testing.assert_close(state["mel_frames"][0, 0], silence[0])


def test_60fps_mel_history_reaches_the_output_frame(ckpt60: Checkpoint) -> None:
    """At 60 fps the step reads 5 mel frames: detail tokens j, j-2, j-4 (j-4 is the output frame's own time,
    4 frames of look-ahead back), the frame encoder j-2 .. j. Frame j-4 must move the output, j-3 only
    through nothing (it feeds neither), which is the negative control."""
    model = ckpt60.model
    assert model.config.detail_spacing == 2 and mel_history_names(model.config) == ["j-4", "j-3", "j-2", "j-1", "j"]
    assert initial_state(model)["mel_frames"].shape == (1, 5, 80)
    step = DeployStep(model).eval()
    inputs = step.example_inputs()
    with torch.no_grad():
        base = step(*inputs)[1]
        for row, moves in ((0, True), (1, False)):
            mel = inputs[0].clone()
            mel[0, row] += 1.0
            changed = (step(mel, *inputs[1:])[1] - base).abs().max() > 1e-5
            assert bool(changed) == moves, row
