"""Every op of the NumPy MIL executor against the independent oracle its registry entry names.

One test, parametrized over `mil_executor.OPS`: adding an op without a case here fails. Each case draws
random shapes and values (several seeds) and runs twice: in fp32, and with fp16 inputs and the
executor's fp16 output rounding (`fp16_output`), which is how fp16 programs run.

Oracles: "coremltools" builds the op on constants with `mb.program`, whose value inference (or, for the
constexpr and dequantize ops, `materialized_val_inference`) is coremltools' own NumPy semantics;
"torch" is the equivalent torch function, written here apart from the executor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a2bs.runtime import mil_executor as M
from a2bs.runtime.coreml_package import ct

Case = Callable[[np.random.Generator, type], dict[str, Any]]
SEEDS = range(6)


def _shape(rng: np.random.Generator, rank: int | None = None) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, 6, rng.integers(1, 5) if rank is None else rank))


def _x(rng: np.random.Generator, shape: tuple[int, ...], dt: type, scale: float = 2.0) -> np.ndarray:
    return (rng.normal(0, scale, shape)).astype(dt)


def _broadcastable(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with some dimensions set to 1 and, sometimes, leading ones dropped."""
    out = tuple(1 if rng.random() < 0.3 else d for d in shape)
    return out[int(rng.integers(0, len(out))) :] if rng.random() < 0.3 else out


def _binary(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    return {"x": _x(rng, shape, dt), "y": _x(rng, _broadcastable(rng, shape), dt)}


def _div(rng, dt) -> dict[str, Any]:
    inputs = _binary(rng, dt)
    y = inputs["y"]
    inputs["y"] = (np.sign(y) + (y == 0)) * rng.uniform(0.5, 3.0, y.shape).astype(dt)  # away from 0
    return inputs


def _concat(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    axis = int(rng.integers(-len(shape), len(shape)))
    interleave = bool(rng.random() < 0.5)
    values = []
    for _ in range(int(rng.integers(2, 4))):
        s = list(shape)
        if not interleave:
            s[axis] = int(rng.integers(1, 5))
        values.append(_x(rng, tuple(s), dt))
    return {"values": values, "axis": axis, "interleave": interleave}


def _gelu(rng, dt) -> dict[str, Any]:
    mode = ["EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"][int(rng.integers(3))]
    return {"x": _x(rng, _shape(rng), dt, 3.0), "mode": mode}


def _layer_norm(rng, dt) -> dict[str, Any]:
    shape = _shape(rng, int(rng.integers(2, 5)))
    shape = (*shape[:-1], max(shape[-1], 2))
    k = int(rng.integers(1, len(shape)))
    axes = list(range(len(shape) - k, len(shape)))
    norm = shape[-k:]
    return {
        "x": _x(rng, shape, dt, 3.0) + dt(1),
        "axes": axes,
        "gamma": _x(rng, norm, dt, 1.0),
        "beta": _x(rng, norm, dt, 1.0),
        "epsilon": float(rng.choice([1e-5, 1e-3])),
    }


def _linear(rng, dt) -> dict[str, Any]:
    batch, n_in, n_out = _shape(rng, int(rng.integers(1, 3))), int(rng.integers(1, 9)), int(rng.integers(1, 9))
    inputs = {"x": _x(rng, (*batch, n_in), dt, 1.0), "weight": _x(rng, (n_out, n_in), dt, 1.0)}
    if rng.random() < 0.7:
        inputs["bias"] = _x(rng, (n_out,), dt, 1.0)
    return inputs


def _matmul(rng, dt) -> dict[str, Any]:
    batch = _shape(rng, int(rng.integers(0, 3)))
    m, k, n = (int(v) for v in rng.integers(1, 7, 3))
    tx, ty = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    x = _x(rng, (*batch, k, m) if tx else (*batch, m, k), dt, 1.0)
    y = _x(rng, (*batch, n, k) if ty else (*batch, k, n), dt, 1.0)
    return {"x": x, "y": y, "transpose_x": tx, "transpose_y": ty}


def _reduce(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    axes = sorted(rng.choice(len(shape), int(rng.integers(1, len(shape) + 1)), replace=False).tolist())
    return {"x": _x(rng, shape, dt, 1.0), "axes": axes, "keep_dims": bool(rng.random() < 0.5)}


def _reshape(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    x = _x(rng, shape, dt)
    size = x.size
    dims = []
    while size > 1 and len(dims) < 3:
        factor = int(rng.choice([f for f in range(1, size + 1) if size % f == 0]))
        dims.append(factor)
        size //= factor
    dims.append(size)
    if rng.random() < 0.5:
        dims[int(rng.integers(len(dims)))] = -1
    return {"x": x, "shape": np.asarray(dims, np.int32)}


def _unary(scale: float = 3.0, positive: bool = False) -> Case:
    def case(rng, dt) -> dict[str, Any]:
        x = _x(rng, _shape(rng), dt, scale)
        return {"x": np.abs(x) + dt(0.01) if positive else x}

    return case


def _log(rng, dt) -> dict[str, Any]:
    return {**_unary(3.0, positive=True)(rng, dt), "epsilon": float(rng.choice([1e-45, 1e-4]))}


def _slice(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    rank = len(shape)
    begin, end, stride = [], [], []
    for d in shape:
        b, e = sorted(int(v) for v in rng.integers(0, d + 1, 2))
        begin.append(b)
        end.append(max(e, b + 1) if b < d else d)
        stride.append(int(rng.integers(1, 3)))
    begin_mask = (rng.random(rank) < 0.3).tolist()
    end_mask = (rng.random(rank) < 0.3).tolist()
    squeeze = [bool(rng.random() < 0.4 and not bm and b < d) for bm, b, d in zip(begin_mask, begin, shape, strict=True)]
    if all(squeeze):
        squeeze[0] = False
    for i, sq in enumerate(squeeze):
        if sq:
            end[i], stride[i] = begin[i] + 1, 1
    return {
        "x": _x(rng, shape, dt),
        "begin": np.asarray(begin, np.int32),
        "end": np.asarray(end, np.int32),
        "stride": np.asarray(stride, np.int32),
        "begin_mask": np.asarray(begin_mask),
        "end_mask": np.asarray(end_mask),
        "squeeze_mask": np.asarray(squeeze),
    }


def _softmax(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    return {"x": _x(rng, shape, dt, 4.0), "axis": int(rng.integers(-len(shape), len(shape)))}


def _transpose(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    return {"x": _x(rng, shape, dt), "perm": rng.permutation(len(shape)).astype(np.int32)}


def _reverse(rng, dt) -> dict[str, Any]:
    shape = _shape(rng)
    axes = rng.choice(len(shape), int(rng.integers(1, len(shape) + 1)), replace=False)
    return {"x": _x(rng, shape, dt), "axes": np.asarray(axes, np.int32)}


def _cast(rng, dt) -> dict[str, Any]:
    return {"x": _x(rng, _shape(rng), dt, 100.0), "dtype": "fp16" if dt == np.float32 else "fp32"}


def _per_axis(rng, shape: tuple[int, ...], axis: int, low: float, high: float, dt: type) -> np.ndarray:
    return rng.uniform(low, high, shape[axis]).astype(dt) if rng.random() < 0.5 else dt(rng.uniform(low, high))


def _affine_dequantize(rng, dt) -> dict[str, Any]:
    shape = _shape(rng, 2)
    axis = int(rng.integers(0, 2))
    signed = bool(rng.random() < 0.5)
    qdt = np.int8 if signed else np.uint8
    info = np.iinfo(qdt)
    data = rng.integers(info.min, info.max + 1, shape).astype(qdt)
    zero = (rng.integers(-20, 20, shape[axis]) + (0 if signed else 128)).astype(qdt)
    return {
        "quantized_data": data,
        "zero_point": zero if rng.random() < 0.5 else qdt(zero[0]),
        "scale": _per_axis(rng, shape, axis, 0.001, 0.1, dt),
        "axis": axis,
    }


def _lut_to_dense(rng, dt) -> dict[str, Any]:
    nbits = int(rng.choice([1, 2, 4, 6, 8]))
    shape = _shape(rng, 2)
    count = int(np.prod(shape))
    idx = rng.integers(0, 2**nbits, count)
    bits = ((idx[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)  # LSB first
    packed = np.packbits(bits, bitorder="little")
    return {"lut": _x(rng, (2**nbits,), dt, 1.0), "indices": packed, "shape": np.asarray(shape, np.uint32)}


def _quantize(rng, dt) -> dict[str, Any]:
    shape = _shape(rng, int(rng.integers(1, 4)))
    axis = int(rng.integers(0, len(shape)))
    out = str(rng.choice(["int8", "uint8"]))
    inputs = {
        "input": _x(rng, shape, dt, 3.0),
        "scale": _per_axis(rng, shape, axis, 0.01, 0.05, dt),
        "output_dtype": out,
    }
    if isinstance(inputs["scale"], np.ndarray):
        inputs["axis"] = axis
    if out == "uint8" or rng.random() < 0.5:
        zp = rng.integers(-10, 10, shape[axis]) + (128 if out == "uint8" else 0)
        zp = zp.astype(np.uint8 if out == "uint8" else np.int8)
        inputs["zero_point"] = zp if "axis" in inputs else zp[:1].reshape(())
    return inputs


def _dequantize(rng, dt) -> dict[str, Any]:
    shape = _shape(rng, int(rng.integers(1, 4)))
    axis = int(rng.integers(0, len(shape)))
    q = rng.integers(-128, 128, shape).astype(np.int8)
    inputs = {"input": q, "scale": _per_axis(rng, shape, axis, 0.01, 0.05, dt)}
    if isinstance(inputs["scale"], np.ndarray):
        inputs["axis"] = axis
    if rng.random() < 0.5:
        zp = rng.integers(-10, 10, shape[axis]).astype(np.int8)
        inputs["zero_point"] = zp if "axis" in inputs else zp[:1].reshape(())
    return inputs


CASES: dict[str, Case] = {
    "add": _binary,
    "sub": _binary,
    "mul": _binary,
    "real_div": _div,
    "cast": _cast,
    "concat": _concat,
    "gelu": _gelu,
    "layer_norm": _layer_norm,
    "linear": _linear,
    "matmul": _matmul,
    "reduce_sum": _reduce,
    "reduce_mean": _reduce,
    "reshape": _reshape,
    "sigmoid": _unary(),
    "slice_by_index": _slice,
    "softmax": _softmax,
    "transpose": _transpose,
    "reverse": _reverse,
    "log": _log,
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_lut_to_dense": _lut_to_dense,
    "quantize": _quantize,
    "dequantize": _dequantize,
}


# --- oracles --------------------------------------------------------------------------------------


def coremltools_oracle(op: str, inputs: dict[str, Any]) -> np.ndarray:
    from coremltools.converters.mil import Builder as mb

    out = {}

    @mb.program(input_specs=[], opset_version=ct.target.iOS17)
    def program() -> Any:
        var = getattr(mb, op)(**inputs)
        out["var"] = var
        return mb.identity(x=var) if op.startswith("constexpr_") else var

    var = out["var"]
    return np.asarray(var.val if var.val is not None else var.op.materialized_val_inference())


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, np.float32))


def _torch_concat(values: list[np.ndarray], axis: int, interleave: bool) -> torch.Tensor:
    tensors = [_t(v) for v in values]
    if not interleave:
        return torch.cat(tensors, dim=axis)
    # MIL: "interleave the inputs along axis": slice 0 of every input, then slice 1 of every input, ...
    return torch.cat([t.narrow(axis, i, 1) for i in range(tensors[0].shape[axis]) for t in tensors], dim=axis)


def _torch_gelu(x: np.ndarray, mode: str) -> torch.Tensor:
    if mode == "SIGMOID_APPROXIMATION":
        return _t(x) * torch.sigmoid(1.702 * _t(x))
    return F.gelu(_t(x), approximate="tanh" if mode == "TANH_APPROXIMATION" else "none")


def _torch_layer_norm(x: np.ndarray, axes: list[int], gamma: np.ndarray, beta: np.ndarray, epsilon: float):
    return F.layer_norm(_t(x), tuple(x.shape[a] for a in axes), _t(gamma), _t(beta), epsilon)


TORCH_ORACLES: dict[str, Callable[..., torch.Tensor]] = {
    "concat": _torch_concat,
    "gelu": _torch_gelu,
    "layer_norm": _torch_layer_norm,
    "sigmoid": lambda x: torch.sigmoid(_t(x)),
    "softmax": lambda x, axis: torch.softmax(_t(x), dim=axis),
}


def oracle(op: str, inputs: dict[str, Any]) -> np.ndarray:
    name = M.OPS[op].oracle
    if name == M.COREMLTOOLS:
        return coremltools_oracle(op, inputs)
    if name == M.TORCH:
        return TORCH_ORACLES[op](**inputs).numpy()
    raise AssertionError(f"{op}: unknown oracle {name!r}")


# --- the test -------------------------------------------------------------------------------------


def test_every_supported_op_has_a_case_and_an_oracle() -> None:
    assert set(CASES) == set(M.OPS), "each op of mil_executor.OPS needs a random case here (and no case is stale)"
    assert {op for op, entry in M.OPS.items() if entry.oracle == M.TORCH} == set(TORCH_ORACLES)
    assert {entry.oracle for entry in M.OPS.values()} <= {M.COREMLTOOLS, M.TORCH}
    assert set(M.OPS) | {"const"} == M.SUPPORTED_OPS


def _compare(op: str, got: np.ndarray, want: np.ndarray, fp16: bool, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != oracle {want.shape}"
    if want.dtype.kind in "iub":
        assert got.dtype.kind in "iub", f"{what}: dtype {got.dtype}, oracle {want.dtype}"
        # round-half: numpy rounds to even, so at most one step apart at exact halves
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0) <= 1, what
        return
    got, want = got.astype(np.float64), want.astype(np.float64)
    assert np.isfinite(got).all() and np.isfinite(want).all(), what
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    # fp16: a few units in the last place of the output's magnitude (the oracle rounds differently inside)
    rtol, atol = (4e-3, 4e-3 * scale) if fp16 else (1e-5, 1e-5 * scale)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("op", sorted(M.OPS))
def test_op_matches_its_oracle(op: str, precision: str) -> None:
    assert op in CASES, f"no test case for MIL op {op!r}: add one to CASES"
    fp16 = precision == "fp16"
    dt = np.float16 if fp16 else np.float32
    for seed in SEEDS:
        rng = np.random.default_rng(1000 * seed + sorted(M.OPS).index(op))
        inputs = CASES[op](rng, dt)
        got = np.asarray(M.OPS[op].run(**inputs))
        want = oracle(op, inputs)
        if fp16:  # what the executor keeps of an fp16 op's output, against the oracle rounded alike
            got, want = M.fp16_output(got), M.fp16_output(want)
        _compare(op, got, want, fp16, f"{op} ({precision}, seed {seed}): inputs {_describe(inputs)}")


def _describe(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={np.shape(v) if isinstance(v, np.ndarray) else v}" for k, v in inputs.items())
