"""NumPy MIL executor: whole-model parity of the converted Core ML packages of the TRAINED default (fp32
front end, fp16 / int8 / palettize4 / w8a8 steps) against the torch deploy modules, input checks and
unsupported ops. Every single op is tested against its oracle in test_mil_ops.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from a2bs.convert.common import CalibrationSet, calibration_set
from a2bs.convert.coreml import FRONT_END_PACKAGE, convert_coreml, step_package_name
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.deploy import STEP_INPUTS, STEP_OUTPUTS, DeployFrontEnd, DeployStep
from a2bs.core.parity import parity_metrics
from a2bs.runtime import mil_executor
from a2bs.runtime.coreml_package import compressed_weights, ct
from a2bs.runtime.mil_executor import MILExecutor, UnsupportedOpError

pytestmark = pytest.mark.slow  # converts Core ML packages to execute

VARIANTS = ("fp16", "int8", "palettize4", "w8a8")
# blendshapes MAE in units of the reference's per-shape spread over the calibration frames (parity.py's
# rel_mae); a step that outputs the reference's mean scores ~0.4-0.6 on these frames
STEP_REL_MAE = {"fp16": 0.02, "int8": 0.05, "palettize4": 0.15, "w8a8": 0.3}


@pytest.fixture(scope="module")
def calibration(trained30: Checkpoint) -> CalibrationSet:
    return calibration_set(trained30, n_frames=24)


@pytest.fixture(scope="module")
def bundle(trained30: Checkpoint, calibration: CalibrationSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mil") / "bundle"
    for variant in VARIANTS:
        convert_coreml(trained30, variant, out, calibration=calibration)
    return out


# --------------------------------------------------------------------------------------------------
# ops


def test_slice_by_index_masks() -> None:
    x = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    out = mil_executor.slice_by_index(
        x,
        begin=[1, 1, 0],
        end=[2, 4, 3],
        stride=[1, 2, 1],
        begin_mask=[False, False, True],
        end_mask=[False, False, True],
        squeeze_mask=[True, False, False],
    )
    np.testing.assert_array_equal(out, x[1, 1:4:2, :])
    np.testing.assert_array_equal(
        mil_executor.slice_by_index(x, [0, 0, 2], [1, 5, 6], end_mask=[0, 1, 0]), x[0:1, :, 2:6]
    )


def test_lut_to_dense_unpacks_lsb_first() -> None:
    rng = np.random.default_rng(1)
    for nbits in (1, 2, 4, 6):
        idx = rng.integers(0, 2**nbits, size=(6, 10))
        bits = ((idx.reshape(-1, 1) >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
        packed = np.packbits(bits, bitorder="little")
        lut = rng.normal(size=2**nbits).astype(np.float16)
        np.testing.assert_array_equal(mil_executor.lut_to_dense(lut, packed, [6, 10]), lut[idx])


def test_quantize_dequantize_round_trip() -> None:
    x = np.array([-1.0, -0.26, 0.0, 0.5, 3.0], np.float32)
    q = mil_executor.quantize(x, np.float32(0.01), "int8")
    np.testing.assert_array_equal(q, np.array([-100, -26, 0, 50, 127], np.int8))
    np.testing.assert_allclose(mil_executor.dequantize(q, np.float32(0.01)), [-1.0, -0.26, 0.0, 0.5, 1.27], atol=1e-6)


# --------------------------------------------------------------------------------------------------
# whole models


def test_front_end_parity(trained30: Checkpoint, calibration: CalibrationSet, bundle: Path) -> None:
    executor = MILExecutor(bundle / FRONT_END_PACKAGE)
    assert not executor.fp16_compute
    assert "reverse" in executor.ops_used
    front_end = DeployFrontEnd(trained30.model).eval()
    for pcm in calibration.front_end_inputs:
        with torch.no_grad():
            ref = front_end(pcm).numpy()
        out = executor(pcm=pcm.numpy())["mel"]
        assert out.shape == ref.shape and out.dtype == np.float32
        assert np.abs(out - ref).max() < 1e-3


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_parity(variant: str, trained30: Checkpoint, calibration: CalibrationSet, bundle: Path) -> None:
    executor = MILExecutor(bundle / step_package_name(variant))
    assert executor.fp16_compute
    step = DeployStep(trained30.model).eval()
    refs, outs = [], []
    for inputs in calibration.step_inputs:
        with torch.no_grad():
            ref = dict(zip(STEP_OUTPUTS, step(*inputs), strict=True))
        out = executor(**{name: x.numpy() for name, x in zip(STEP_INPUTS, inputs, strict=True)})
        assert set(out) == set(STEP_OUTPUTS)
        for name in STEP_OUTPUTS:
            assert out[name].shape == tuple(ref[name].shape) and out[name].dtype == np.float32
        refs.append(ref["blendshapes_raw"].numpy()[0])
        outs.append(out["blendshapes_raw"][0])
    reference, got = np.stack(refs), np.stack(outs)
    limit = STEP_REL_MAE[variant]
    assert parity_metrics(reference, got)["rel_mae"] < limit
    # the limit discriminates: the reference's own mean, every frame, is far outside it
    assert parity_metrics(reference, np.broadcast_to(reference.mean(0), reference.shape))["rel_mae"] > limit


def test_inputs_are_checked(bundle: Path) -> None:
    executor = MILExecutor(bundle / FRONT_END_PACKAGE)
    with pytest.raises(ValueError, match="missing"):
        executor(audio=np.zeros((1, 1024), np.float32))
    with pytest.raises(ValueError, match="shape"):
        executor(pcm=np.zeros((1, 1000), np.float32))


def test_constexpr_weights_match_coremltools(bundle: Path) -> None:
    """The executor's decompressed weights equal coremltools' reference decompression."""
    for variant in ("int8", "palettize4"):
        path = bundle / step_package_name(variant)
        executor = MILExecutor(path, fp16_compute=False)
        reference = compressed_weights(path)
        assert reference
        for name, value in reference.items():
            np.testing.assert_allclose(executor._constants[name], value, rtol=1e-3, atol=1e-4)


def test_fp16_emulation_can_be_disabled(calibration: CalibrationSet, bundle: Path) -> None:
    path = bundle / step_package_name("fp16")
    inputs = {name: x.numpy() for name, x in zip(STEP_INPUTS, calibration.step_inputs[0], strict=True)}
    a = MILExecutor(path)(**inputs)["context_frame"]
    b = MILExecutor(path, fp16_compute=False)(**inputs)["context_frame"]
    assert not np.array_equal(a, b)
    assert np.abs(a - b).max() < 0.05


def test_unsupported_op_raises_at_load(bundle: Path, tmp_path: Path) -> None:
    """Rename one op of a copied package to a type the executor does not know."""
    copy = tmp_path / "bad.mlpackage"
    shutil.copytree(bundle / FRONT_END_PACKAGE, copy)
    model_file = next(copy.rglob("model.mlmodel"))
    spec = ct.proto.Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    op = next(op for op in block.operations if op.type == "log")
    op.type = "erf_of_the_moon"
    model_file.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedOpError, match=r"bad\.mlpackage.*erf_of_the_moon"):
        MILExecutor(copy)
