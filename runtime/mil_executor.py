"""NumPy executor of CoreML ML programs (`.mlpackage`): runs our converted models on Linux.

Core ML itself only runs on Apple platforms. This module loads the MIL program of a package with
coremltools' own proto loader (`coremltools.converters.mil.frontend.milproto.load.load`, which also
reads `const` blobs from `Data/com.apple.CoreML/weights/weight.bin`) and interprets the resulting pymil
program op by op in NumPy.

fp16 emulation: every op computes in float32; when `fp16_compute` is on, the result of each op whose
MIL output type is fp16 is rounded with `astype(np.float16)` (Core ML's fp16 backends also accumulate
some reductions in higher precision, so this is an approximation of on-device numerics, not a bit-exact
replica). With `fp16_compute=False` everything stays float32 (the fp16 weights are still the stored
fp16 values).

Supported ops: `OPS`, each naming the oracle tests/test_mil_ops.py compares it with. Any other op
raises `UnsupportedOpError` when the package is loaded, naming the op type and the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.runtime.coreml_package import ct

_DTYPES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "fp64": np.float64,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "bool": np.bool_,
}


class UnsupportedOpError(RuntimeError):
    """The program uses a MIL op this executor does not implement (raised at load time)."""


def _f32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x


def fp16_output(result: np.ndarray) -> np.ndarray:
    """An op's float result as fp16 compute leaves it: rounded to the fp16 grid, held in float32."""
    result = np.asarray(result)
    return result.astype(np.float16).astype(np.float32) if np.issubdtype(result.dtype, np.floating) else result


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf

        return erf(x)
    except ImportError:  # pragma: no cover - scipy is a coremltools dependency in practice
        return np.vectorize(math.erf)(x)


# --------------------------------------------------------------------------------------------------
# op implementations: each takes the dict of evaluated inputs (absent optional inputs are missing)


def gelu(x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    x = _f32(x)
    if mode == "EXACT":
        return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1.0 + np.exp(-1.702 * x))
    raise ValueError(f"unknown gelu mode {mode!r}")


def layer_norm(
    x: np.ndarray, axes: Any = None, gamma: Any = None, beta: Any = None, epsilon: float = 1e-5
) -> np.ndarray:
    x = _f32(x)
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) for a in np.atleast_1d(axes))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(epsilon))
    if gamma is not None:
        y = y * _f32(gamma)
    if beta is not None:
        y = y + _f32(beta)
    return y


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = _f32(x)
    e = np.exp(x - x.max(axis=int(axis), keepdims=True))
    return e / e.sum(axis=int(axis), keepdims=True)


def slice_by_index(
    x: np.ndarray,
    begin: Any,
    end: Any,
    stride: Any = None,
    begin_mask: Any = None,
    end_mask: Any = None,
    squeeze_mask: Any = None,
) -> np.ndarray:
    x = np.asarray(x)
    rank = x.ndim
    stride = np.ones(rank, int) if stride is None else np.asarray(stride)
    begin_mask = np.zeros(rank, bool) if begin_mask is None else np.asarray(begin_mask)
    end_mask = np.zeros(rank, bool) if end_mask is None else np.asarray(end_mask)
    squeeze_mask = np.zeros(rank, bool) if squeeze_mask is None else np.asarray(squeeze_mask)
    index: list[Any] = []
    for i in range(rank):
        b, e, s = int(begin[i]), int(end[i]), int(stride[i])
        if squeeze_mask[i]:
            index.append(b)
            continue
        index.append(slice(None if begin_mask[i] else b, None if end_mask[i] else e, s))
    return x[tuple(index)]


def unpack_indices(indices: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Bit-packed uint8 indices (`constexpr_lut_to_dense`, LSB first) -> `count` integer indices."""
    bits = np.unpackbits(np.asarray(indices, dtype=np.uint8), bitorder="little")[: count * nbits]
    weights = (1 << np.arange(nbits)).astype(np.int64)
    return bits.reshape(count, nbits).astype(np.int64) @ weights


def lut_to_dense(lut: np.ndarray, indices: np.ndarray, shape: Any) -> np.ndarray:
    """iOS16 `constexpr_lut_to_dense`: one LUT of 2^nbits entries for the whole tensor."""
    lut = np.asarray(lut)
    nbits = round(math.log2(lut.shape[-1]))
    count = int(np.prod(shape))
    flat = unpack_indices(indices, nbits, count) if np.asarray(indices).dtype == np.uint8 and nbits < 8 else None
    if flat is None:
        flat = np.asarray(indices).reshape(-1)[:count].astype(np.int64)
    return lut[flat].reshape(tuple(int(s) for s in shape))


def _along(v: Any, axis: int | None, ndim: int) -> np.ndarray:
    """Per-channel parameter `v` broadcast along `axis` of an `ndim`-rank tensor."""
    v = np.asarray(v)
    if v.ndim == 0 or axis is None or v.ndim == ndim:
        return v
    shape = [1] * ndim
    shape[int(axis) % ndim] = v.size
    return v.reshape(shape)


def affine_dequantize(quantized_data: np.ndarray, zero_point: Any, scale: Any, axis: int = 0) -> np.ndarray:
    q = np.asarray(quantized_data)
    zp = _along(zero_point, axis, q.ndim).astype(np.float32)
    sc = _along(scale, axis, q.ndim).astype(np.float32)
    return (q.astype(np.float32) - zp) * sc


def quantize(input: np.ndarray, scale: Any, output_dtype: str, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    dtype = _DTYPES[output_dtype]
    x = _f32(input)
    y = x / _along(scale, axis, x.ndim).astype(np.float32)
    y = np.round(y)
    if zero_point is not None:
        y = y + _along(zero_point, axis, x.ndim).astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(y, info.min, info.max).astype(dtype)


def dequantize(input: np.ndarray, scale: Any, zero_point: Any = None, axis: Any = None) -> np.ndarray:
    q = np.asarray(input).astype(np.float32)
    if zero_point is not None:
        q = q - _along(zero_point, axis, q.ndim).astype(np.float32)
    return q * _along(scale, axis, q.ndim).astype(np.float32)


def _reshape(x: np.ndarray, shape: Any) -> np.ndarray:
    shape = [int(s) for s in np.asarray(shape)]
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]  # iOS17: 0 copies the dim
    return np.reshape(x, shape)


def _concat(values: Any, axis: int, interleave: bool = False) -> np.ndarray:
    arrays = [np.asarray(v) for v in values]
    axis = int(axis)
    if not interleave:
        return np.concatenate(arrays, axis=axis)
    stacked = np.stack(arrays, axis=(axis % arrays[0].ndim) + 1)
    shape = list(arrays[0].shape)
    shape[axis] = shape[axis] * len(arrays)
    return stacked.reshape(shape)


def _matmul(x: np.ndarray, y: np.ndarray, transpose_x: bool = False, transpose_y: bool = False) -> np.ndarray:
    x, y = _f32(x), _f32(y)
    if transpose_x:
        x = np.swapaxes(x, -1, -2)
    if transpose_y:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _linear(x: np.ndarray, weight: np.ndarray, bias: Any = None) -> np.ndarray:
    y = _f32(x) @ _f32(weight).T
    return y if bias is None else y + _f32(bias)


def _reduce(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(x: np.ndarray, axes: Any = None, keep_dims: bool = False) -> np.ndarray:
        ax = None if axes is None else tuple(int(a) for a in np.atleast_1d(axes))
        return fn(_f32(x), axis=ax, keepdims=bool(keep_dims))

    return run


def _reverse(x: np.ndarray, axes: Any = None) -> np.ndarray:
    return np.flip(x, axis=None if axes is None else tuple(int(a) for a in np.atleast_1d(axes)))


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(x).astype(_DTYPES[dtype])


@dataclass(frozen=True)
class MILOp:
    """One supported MIL op: its NumPy implementation and the independent oracle that
    tests/test_mil_ops.py checks it against (random shapes and values, fp32 and fp16)."""

    run: Callable[..., np.ndarray]
    oracle: str


COREMLTOOLS = "coremltools"  # the op built with mb.program on constants: coremltools' own value inference
TORCH = "torch"  # the equivalent torch function (written apart from this file)

OPS: dict[str, MILOp] = {
    "add": MILOp(lambda x, y: _f32(x) + _f32(y), COREMLTOOLS),
    "sub": MILOp(lambda x, y: _f32(x) - _f32(y), COREMLTOOLS),
    "mul": MILOp(lambda x, y: _f32(x) * _f32(y), COREMLTOOLS),
    "real_div": MILOp(lambda x, y: _f32(x) / _f32(y), COREMLTOOLS),
    "cast": MILOp(_cast, COREMLTOOLS),
    # coremltools' value inference ignores `interleave`; torch's oracle follows the MIL documentation
    "concat": MILOp(_concat, TORCH),
    "gelu": MILOp(gelu, TORCH),
    "layer_norm": MILOp(layer_norm, TORCH),
    "linear": MILOp(_linear, COREMLTOOLS),
    "matmul": MILOp(_matmul, COREMLTOOLS),
    "reduce_sum": MILOp(_reduce(np.sum), COREMLTOOLS),
    "reduce_mean": MILOp(_reduce(np.mean), COREMLTOOLS),
    "reshape": MILOp(_reshape, COREMLTOOLS),
    "sigmoid": MILOp(lambda x: 1.0 / (1.0 + np.exp(-_f32(x))), TORCH),
    "slice_by_index": MILOp(slice_by_index, COREMLTOOLS),
    "softmax": MILOp(softmax, TORCH),
    "transpose": MILOp(lambda x, perm: np.transpose(x, [int(p) for p in perm]), COREMLTOOLS),
    "reverse": MILOp(_reverse, COREMLTOOLS),
    "log": MILOp(lambda x, epsilon=1e-45: np.log(_f32(x) + np.float32(epsilon)), COREMLTOOLS),
    "constexpr_affine_dequantize": MILOp(affine_dequantize, COREMLTOOLS),
    "constexpr_lut_to_dense": MILOp(lut_to_dense, COREMLTOOLS),
    "quantize": MILOp(quantize, COREMLTOOLS),
    "dequantize": MILOp(dequantize, COREMLTOOLS),
}
SUPPORTED_OPS = frozenset(OPS) | {"const"}


def _dtype_name(var: Any) -> str:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    return types.builtin_to_string(dtype) if dtype is not None else ""


class MILExecutor:
    """Runs the `main` function of an `.mlpackage` ML program in NumPy.

    `MILExecutor(path)(**inputs)` returns {output name: float32 / int array}. `fp16_compute=None`
    emulates fp16 when the program computes in fp16 (it contains casts to fp16)."""

    def __init__(self, mlpackage: Path, *, fp16_compute: bool | None = None) -> None:
        from coremltools.converters.mil.frontend.milproto.load import load

        self.path = Path(mlpackage)
        if not self.path.exists():
            raise FileNotFoundError(f"no CoreML package at {self.path}")
        spec = ct.utils.load_spec(str(self.path))
        if spec.WhichOneof("Type") != "mlProgram":
            raise ValueError(f"{self.path} is not an ML program")
        # check the op types on the proto first: an unknown op must not fail inside the pymil loader
        self.ops_used: set[str] = set()

        def walk(block: Any) -> None:
            for op in block.operations:
                self.ops_used.add(op.type)
                for sub in op.blocks:
                    walk(sub)

        function_spec = spec.mlProgram.functions["main"]
        walk(function_spec.block_specializations[function_spec.opset])
        unsupported = sorted(self.ops_used - SUPPORTED_OPS)
        if unsupported:
            raise UnsupportedOpError(f"{self.path}: unsupported MIL op(s) {', '.join(unsupported)}")
        weights_dir = self.path / "Data" / "com.apple.CoreML" / "weights"
        program = load(spec, spec.specificationVersion, file_weights_dir=str(weights_dir))
        self._function = program.functions["main"]
        self.input_names = [f.name for f in spec.description.input]
        self.output_names = [f.name for f in spec.description.output]
        self._input_vars = dict(self._function.inputs)
        self._output_vars = list(self._function.outputs)
        ops = list(self._function.operations)
        if fp16_compute is None:
            fp16_compute = any(
                op.op_type == "cast" and op.inputs["dtype"].val == "fp16" for op in ops if "dtype" in op.inputs
            )
        self.fp16_compute = bool(fp16_compute)
        # constants (const ops and constexpr chains) are evaluated once
        self._constants: dict[str, np.ndarray] = {}
        self._plan: list[tuple[Any, Callable[..., np.ndarray], dict[str, Any], list[tuple[str, bool]]]] = []
        for op in ops:
            if op.op_type == "const":
                value = np.asarray(op.outputs[0].val)
                # fp16 constants widen exactly to float32: convert once, not on every call
                self._constants[op.outputs[0].name] = _f32(value) if value.dtype == np.float16 else value
                continue
            fn = OPS[op.op_type].run
            args = {name: self._ref(value) for name, value in op.inputs.items()}
            outs = [(v.name, _dtype_name(v) == "fp16") for v in op.outputs]
            if op.op_type.startswith("constexpr_"):
                result = fn(**{k: self._constant_value(a) for k, a in args.items()})
                self._constants[outs[0][0]] = self._round(result, outs[0][1])
            else:
                self._plan.append((op.op_type, fn, args, outs))

    def _ref(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self._ref(v) for v in value]
        return value.name

    def _constant_value(self, ref: Any) -> Any:
        if isinstance(ref, list):
            return [self._constant_value(r) for r in ref]
        return self._constants[ref]

    def _round(self, result: np.ndarray, is_fp16: bool) -> np.ndarray:
        return fp16_output(result) if is_fp16 and self.fp16_compute else _f32(result)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(inputs)
        extra = set(inputs) - set(self.input_names)
        if missing or extra:
            raise ValueError(f"inputs: expected {self.input_names}, missing {sorted(missing)}, unknown {sorted(extra)}")
        env: dict[str, np.ndarray] = dict(self._constants)
        for name, var in self._input_vars.items():
            value = np.asarray(inputs[name])
            fixed = var.shape is not None and all(isinstance(s, int) for s in var.shape)
            if fixed and tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"input {name}: shape {value.shape}, expected {tuple(var.shape)}")
            env[name] = value.astype(_DTYPES.get(_dtype_name(var), np.float32))

        def get(ref: Any) -> Any:
            if isinstance(ref, list):
                return [get(r) for r in ref]
            value = env[ref]
            return value.item() if value.ndim == 0 and value.dtype.kind in "USb" else value

        for op_type, fn, args, outs in self._plan:
            kwargs = {k: get(a) for k, a in args.items()}
            if op_type in ("cast", "quantize"):
                for key in ("dtype", "output_dtype"):
                    if key in kwargs:
                        kwargs[key] = str(kwargs[key])
            result = fn(**kwargs)
            if op_type == "cast":
                env[outs[0][0]] = self._round(result, outs[0][1]) if kwargs["dtype"] == "fp16" else result
            else:
                env[outs[0][0]] = self._round(result, outs[0][1])
        result = {}
        by_name = {var.name: var for var in self._output_vars}
        for name, var in zip(self.output_names, self._output_vars, strict=True):
            value = env[by_name[name].name if name in by_name else var.name]
            result[name] = value.astype(np.float32) if value.dtype == np.float16 else value
        return result
