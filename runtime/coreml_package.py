"""Reading a Core ML package without Core ML (works on Linux): what it declares, its MIL ops, its
decompressed weights, its size. coremltools is imported once, quietly, here."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.files import size_bytes

# coremltools' import-time warnings do not apply here (no Core ML runtime on Linux, untested torch /
# scikit-learn versions, torchao's CUDA kernels that its optional torchao import looks for) and would be
# printed on every conversion: their loggers are quiet while it imports.
_QUIET = [logging.getLogger(name) for name in ("coremltools", "torchao", "torch.utils._pytree")]
_LEVELS = [logger.level for logger in _QUIET]
for _logger in _QUIET:
    _logger.setLevel(logging.ERROR)
import coremltools as ct  # noqa: E402

for _logger, _level in zip(_QUIET, _LEVELS, strict=True):
    _logger.setLevel(_level)

_ARRAY_DTYPES = {
    ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32: "float32",
    ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT16: "float16",
    ct.proto.FeatureTypes_pb2.ArrayFeatureType.DOUBLE: "float64",
    ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32: "int32",
}


def program_ops(spec: Any) -> tuple[Counter[str], set[str], str]:
    """(op type counts, dtypes of the non-constant ops' outputs, opset) of an ML program's main function."""
    counts: Counter[str] = Counter()
    dtypes: set[str] = set()
    opsets = []
    mil = ct.proto.MIL_pb2

    def walk(block: Any) -> None:
        for op in block.operations:
            counts[op.type] += 1
            if op.type != "const" and not op.type.startswith("constexpr_"):
                for out in op.outputs:
                    if out.type.WhichOneof("type") == "tensorType":
                        dtypes.add(mil.DataType.Name(out.type.tensorType.dataType).lower())
            for sub in op.blocks:
                walk(sub)

    for function in spec.mlProgram.functions.values():
        opsets.append(function.opset)
        walk(function.block_specializations[function.opset])
    return counts, dtypes, ",".join(sorted(set(opsets)))


def load_spec_summary(mlpackage: Path) -> dict[str, Any]:
    """What a CoreML package declares, read without Core ML (works on Linux).

    Keys: inputs / outputs (lists of {name, shape, dtype, description}), author, license, version,
    short_description, user_defined_metadata (dict), specification_version, deployment_target (e.g.
    "iOS16"), opset, ops (set of MIL op types), op_counts, compute_dtypes (dtypes of the non-constant
    ops' outputs: {"float16", ...} or {"float32", ...}), size_bytes."""
    path = Path(mlpackage)
    if not path.exists():
        raise FileNotFoundError(f"no CoreML package at {path}")
    spec = ct.utils.load_spec(str(path))
    desc = spec.description

    def feature(f: Any) -> dict[str, Any]:
        array = f.type.multiArrayType
        return {
            "name": f.name,
            "shape": tuple(int(s) for s in array.shape),
            "dtype": _ARRAY_DTYPES.get(array.dataType, str(array.dataType)),
            "description": f.shortDescription,
        }

    counts, dtypes, opset = program_ops(spec) if spec.WhichOneof("Type") == "mlProgram" else (Counter(), set(), "")
    targets = {t.value: name for name, t in ct.target.__members__.items() if name.startswith("iOS")}
    meta = desc.metadata
    return {
        "inputs": [feature(f) for f in desc.input],
        "outputs": [feature(f) for f in desc.output],
        "author": meta.author,
        "license": meta.license,
        "version": meta.versionString,
        "short_description": meta.shortDescription,
        "user_defined_metadata": dict(meta.userDefined),
        "specification_version": int(spec.specificationVersion),
        "deployment_target": targets.get(spec.specificationVersion, f"spec{spec.specificationVersion}"),
        "opset": opset,
        "ops": set(counts),
        "op_counts": dict(counts),
        "compute_dtypes": dtypes,
        "size_bytes": size_bytes(path),
    }


def compressed_weights(mlpackage: Path) -> dict[str, np.ndarray]:
    """Every compressed weight of a package (the output of each `constexpr_*` chain), decompressed to
    float32 by coremltools' reference implementation of those ops, keyed by MIL variable name.

    Lets tests and the validation harness compare the stored int8 / LUT weights against the torch
    weights without running Core ML."""
    spec = ct.utils.load_spec(str(mlpackage))
    produced_by_constexpr = set()
    consumed_by_constexpr = set()

    def walk(block: Any) -> None:
        for op in block.operations:
            if op.type.startswith("constexpr_"):
                produced_by_constexpr.update(o.name for o in op.outputs)
                for arg in op.inputs.values():
                    consumed_by_constexpr.update(a.name for a in arg.arguments if a.WhichOneof("binding") == "name")
            for sub in op.blocks:
                walk(sub)

    for function in spec.mlProgram.functions.values():
        walk(function.block_specializations[function.opset])
    names = produced_by_constexpr - consumed_by_constexpr
    if not names:
        return {}
    cto = ct.optimize.coreml
    model = ct.models.MLModel(str(mlpackage), skip_model_load=True)
    weights = cto.get_weights_metadata(cto.decompress_weights(model), weight_threshold=0)
    missing = names - set(weights)
    if missing:
        raise RuntimeError(f"decompressed program lost the weights {sorted(missing)[:3]}")
    return {name: np.asarray(weights[name].val, dtype=np.float32) for name in sorted(names)}
