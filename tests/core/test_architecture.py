"""The architecture's numbers without torch (core/architecture.py) are the model's own: the weight shapes
equal those of `A2BSModel` built on the meta device, and every MAC figure equals torch's FLOP counter run on
the graph it describes, exactly, for the shipped configs (30 and 60 fps) and the fast tier's small one.
Negative controls: the check reports a config with one changed field, and a formula off by one MAC."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from conftest import TINY

from a2bs.core import architecture
from a2bs.core.architecture import ModelConfig, macs, model_figures, parameter_count, weight_shapes
from a2bs.core.deploy import deployed_macs
from a2bs.core.model import A2BSModel, count_parameters, macs_per_frame

CONFIGS = {
    "30fps": ModelConfig.for_fps(30),
    "60fps": ModelConfig.for_fps(60),
    "tiny-30fps": dataclasses.replace(ModelConfig.for_fps(30), **TINY),
    "tiny-60fps": dataclasses.replace(ModelConfig.for_fps(60), **TINY),
}
# fields that change a size or a cost (lookahead and fps move no weight and no MAC), and a value none has
CHANGES = {
    "context_frames": 200,
    "d_model": 48,
    "n_heads": 2,
    "encoder_hidden": 40,
    "emotion_tokens": 3,
    "decoder_hidden": 12,
    "detail_spacing": 3,
}


@dataclass(frozen=True)
class Measured:
    """A config's figures measured on the model: shapes from it built on the meta device, MACs counted by
    torch's FLOP counter on each graph (`macs_per_frame`, `deployed_macs`), under `macs`' names."""

    shapes: dict[str, tuple[int, ...]]
    parameters: int
    macs: dict[str, float]


def measure(config: ModelConfig) -> Measured:
    with torch.device("meta"):
        meta = A2BSModel(config)
    torch.manual_seed(0)
    model = A2BSModel(config).eval()  # real weights: the counter runs the graphs
    reference, shipped = macs_per_frame(model), deployed_macs(model)
    assert shipped["front_end"] == reference["front_end"]  # one front end, shipped as it is
    return Measured(
        shapes={k: tuple(v.shape) for k, v in meta.state_dict().items() if not k.startswith("front_end.")},
        parameters=count_parameters(meta),
        macs={
            "offline": reference["offline"],
            "reference_step": reference["device_step"],
            "step": shipped["step"],
            "front_end": reference["front_end"],
            "offline_model": shipped["offline"],
        },
    )


def mismatches(config: ModelConfig, measured: Measured) -> list[str]:
    """Every figure of core/architecture for `config` that differs from the measured one, one line each."""
    problems = [f"weight shapes: {weight_shapes(config)}"] if weight_shapes(config) != measured.shapes else []
    if parameter_count(config) != measured.parameters:
        problems.append(f"parameters: {parameter_count(config)} != {measured.parameters}")
    computed = macs(config)
    problems += [f"{k} MACs: {computed[k]} != {v}" for k, v in measured.macs.items() if computed[k] != v]
    return problems


@pytest.fixture(scope="module", params=list(CONFIGS))
def config_measured(request: pytest.FixtureRequest) -> tuple[ModelConfig, Measured]:
    config = CONFIGS[request.param]
    return config, measure(config)


def test_figures_are_the_models_own(config_measured: tuple[ModelConfig, Measured]) -> None:
    assert mismatches(*config_measured) == []


@pytest.mark.parametrize(("field", "value"), CHANGES.items())
def test_a_config_with_one_changed_field_is_caught(
    config_measured: tuple[ModelConfig, Measured], field: str, value: int
) -> None:
    """The formulas read each field that matters: the figures of a config with one changed field do not
    match the original model's."""
    config, measured = config_measured
    changed = dataclasses.replace(config, **{field: value})
    assert changed != config
    assert mismatches(changed, measured) != []


def test_a_formula_off_by_one_mac_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    config = CONFIGS["tiny-30fps"]
    measured = measure(config)
    exact = architecture.front_end_macs
    monkeypatch.setattr(architecture, "front_end_macs", lambda **kw: exact(**kw) - 1)
    found = mismatches(config, measured)
    assert {line.split(" ")[0] for line in found} == {"front_end", "offline_model"}, found


def test_figures_of_the_shipped_configs() -> None:
    """What `a2bs info` prints for the defaults, in the units it prints; the on-device rate follows the fps."""
    f30, f60 = model_figures(CONFIGS["30fps"]), model_figures(CONFIGS["60fps"])
    assert f30["fp32_mb"] == f30["parameters"] * 4 / 1e6 < 10
    assert f30["device_gmac_per_s"] == pytest.approx((f30["shipped_step_mmac"] + f30["front_end_mmac"]) * 30 / 1e3)
    assert f60["device_gmac_per_s"] == pytest.approx((f60["shipped_step_mmac"] + f60["front_end_mmac"]) * 60 / 1e3)
    for f in (f30, f60):  # the folded step costs less than the reference; files cost less per frame than the step
        assert f["shipped_step_mmac"] < f["reference_step_mmac"]
        assert f["offline_mmac"] < f["shipped_step_mmac"] and f["offline_model_mmac"] < f["shipped_step_mmac"]
    assert architecture.describe(CONFIGS["30fps"]).startswith(f"{f30['parameters']:,} parameters")
