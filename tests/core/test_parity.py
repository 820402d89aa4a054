"""core/parity.py: the converters' self-check figures and limits, each with a control it must catch.

(The relative validation gate, `parity_metrics` and `gate`, is tested with its controls in test_validate.py
and through whole bundles in test_negative_controls.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from a2bs.convert.common import Recipe, recipes_for
from a2bs.core.parity import (
    COMPRESSED_MAE,
    COMPRESSED_MAX,
    FLOAT_ATOL,
    FRONT_END_ATOL,
    abs_errors,
    compressed_problem,
    float_excess,
)


def _pairs(offset: np.ndarray | float = 0.0, n: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    refs = [rng.uniform(0, 1, (1, 52)).astype(np.float32) for _ in range(n)]
    return [(r, r + offset) for r in refs]


def test_float_excess_passes_round_off_and_catches_a_miscompile() -> None:
    assert float_excess(_pairs(1e-6)) is None
    assert float_excess(_pairs(3 * FLOAT_ATOL)) == pytest.approx(3 * FLOAT_ATOL, rel=1e-3)
    assert float_excess(_pairs(3 * FLOAT_ATOL), atol=FRONT_END_ATOL) is None  # the front end's looser limit
    one_element = np.zeros((1, 52), np.float32)
    one_element[0, 7] = 0.01
    assert float_excess(_pairs(one_element)) == pytest.approx(0.01, rel=1e-3)  # one element is enough


def test_compressed_problem_catches_a_wrong_face() -> None:
    assert compressed_problem(_pairs(0.2 * COMPRESSED_MAE)) is None
    assert abs_errors(_pairs(0.01)) == pytest.approx((0.01, 0.01), rel=1e-3)
    assert "MAE" in (compressed_problem(_pairs(2 * COMPRESSED_MAE)) or "")  # every shape off
    spike = np.zeros((1, 52), np.float32)
    spike[0, 3] = 1.2 * COMPRESSED_MAX  # one shape of every frame far off, the mean still small
    assert abs_errors(_pairs(spike))[0] < COMPRESSED_MAE
    assert compressed_problem(_pairs(spike)) is not None
    assert compressed_problem(_pairs(np.nan)) is not None  # NaN never passes
    assert compressed_problem([]) is not None  # nothing measured is not a pass


def test_recipes_must_match_the_variant_table() -> None:
    android = {"fp32": Recipe(), "fp16": Recipe(), "dynamic_int8": Recipe(), "full_int8": Recipe()}
    assert recipes_for("android", android) is android
    with pytest.raises(RuntimeError, match="do not match"):
        recipes_for("android", {k: v for k, v in android.items() if k != "fp16"})  # a variant without a recipe
    with pytest.raises(RuntimeError, match="do not match"):
        recipes_for("ios", {"fp16": Recipe(), "int8_weights": Recipe()})  # keyed by anything but the variant name
