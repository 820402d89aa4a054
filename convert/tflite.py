"""TFLite / LiteRT converter: `DeployStep` and `DeployFrontEnd` -> `.tflite` files with named signatures.

Conversion goes through litert-torch (`litert_torch.convert`, torch.export underneath); quantized
variants are made from the fp32 flatbuffer with ai-edge-quantizer (AEQ). Every file is loaded into the
real LiteRT interpreter and checked against the PyTorch reference before it is written.

Signatures (key "serving_default"): the step model takes `mel_frames, context, emotion, previous` and
returns `blendshapes, blendshapes_raw, context_frame`; the front end takes `pcm` and returns `mel`.
Input names come from passing the sample inputs as keyword arguments, output names from a wrapper whose
forward returns a dict (litert-torch names outputs after the dict keys; a tuple would give output_0...).
All inputs and outputs are float32 in every variant.

Default variant: `dynamic_int8` (the variants are rows of core/variants.py; their sizes, parity and
latency are in docs/VALIDATION.md, measured by `benchmarks/bench_artifacts.py`).

dynamic_int8 is the fastest variant on one XNNPACK thread, the CPU path every Android phone has, and
about 3x smaller than fp32. On this 2-core host a second thread helps the float variants more than the
small int8 matrix products (thread hand-off dominates); measure on the phone (the sample app shows the
per-frame time). DESIGN.md measured ~3x on an earlier graph; here the
attention BATCH_MATMULs (about 7 M of the shipped step's MACs at 30 fps) stay float. Its blendshape error is ~1e-4, far
below what a face can show. Errors cannot build up from frame to frame: context rows are computed from
mel alone, and the only recurrence, the smoothing, shrinks errors.

full_int8 is the slowest on the CPU. XNNPACK takes the fp32/fp16/dynamic graphs whole (one partition)
but splits the int8 graph into 12 partitions and leaves the rest to TFLite's reference int8 kernels.
Keep it for Hexagon DSP/NPU delegates, which need integer activations. fp16 is the variant for the GPU
delegate. For a model this small (MACs per frame: docs/ARCHITECTURE.md), the CPU is the right place:
every variant runs far inside the 16.7 ms of a 60 fps frame, and a delegate's dispatch cost would eat its
speed-up.

Problems met with litert-torch 0.10 / ai-edge-quantizer 0.10, and their workarounds (all done here):
* Constant aliasing (litert-torch issue #1061, fix proposed in PR #1063): litert-torch caches inlined constants
  by the `data_ptr()` of a temporary `.contiguous()` copy, so two different *non-contiguous* buffers of
  the same shape can get one constant. `DeployStep.mel_q` and `.emotion_q` (made with `.transpose`)
  hit this: the emotion attention used the mel queries (fp32 error 6e-4, silently). Fixed by exporting a
  copy of the module whose parameters and buffers are all contiguous; the fp32 self-check below
  (max error 1e-4) catches any recurrence.
* dynamic_int8: AEQ's dynamic recipe quantizes the constant left operand of the attention BATCH_MATMULs
  (the folded queries), and the TFLite kernel only accepts hybrid float x int8 with the int8 operand on
  the right ("BATCH_MATMUL failed to prepare"). BATCH_MATMUL is kept float (NO_QUANTIZE); the
  FULLY_CONNECTED layers, most of the weights, are int8. SOFTMAX needed no exception.
* full_int8: AEQ quantizes graph inputs/outputs unless INPUT/OUTPUT are excluded. With them excluded
  (float I/O), it still wires an output that is also used inside the graph (`context_frame`, which
  feeds the attention concat) to an int8 tensor, and the interpreter fails with "Tensor data is null".
  After quantization the signature output is rewired to the float DEQUANTIZE that AEQ already inserted.
* full_int8: AEQ quantizes the constant operand of BATCH_MATMUL (the folded queries) per channel,
  but the int8 BATCH_MATMUL kernel reads a single scale. The attention logits came out as garbage
  (relative error 1.0), and the trained checkpoint's blendshapes were off by up to 0.6. Per-tensor
  (TENSORWISE) quantization for BATCH_MATMUL fixes it: MAE 0.022 -> 0.003, max 0.61 -> 0.08.
  The int8 softmax over 259 / 515 keys (step 1/256) was the largest error left, and it failed the 60
  fps default: SOFTMAX and the weights x values BATCH_MATMUL that reads it now take 16-bit activations
  (`ATTENTION_WEIGHT_BITS`; the kernel accepts int16 x int8, not int8 x int16, so the queries x keys
  matmul stays int8). The matmuls are found from the graph, not by name (`_softmax_readers`). The
  price is CPU time: int16 runs on the reference kernels, so the step is 2.6x (30 fps) / 2.3x (60 fps)
  slower in the LiteRT CPU interpreter (interleaved runs of both versions, this project's VM); the
  variant is for integer-only accelerators, and the CPU variants are unaffected.
* full_int8 calibration: `Quantizer.calibrate` keeps an exponential moving average of per-frame
  activation ranges, which clips the loud frames (untrained fixture: context_frame MAE 0.08). The global min/max over
  the calibration frames gives 0.013 (`_calibrate`).

The fp32 step graph is cached per process (keyed by the module's tensors), so converting all four
variants exports it once. All four variants plus the front end converted in about 19 s here, with
another process using one of the two cores, including ~3 s of litert-torch import.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from a2bs.convert.common import ArtifactFile, CalibrationSet, ConversionError, calibration_set
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.deploy import (
    FRONT_END_INPUTS,
    FRONT_END_OUTPUTS,
    STEP_INPUTS,
    STEP_OUTPUTS,
    DeployFrontEnd,
    DeployStep,
)
from a2bs.core.variants import default_variant, find_variant, platform_variants
from a2bs.runtime.tflite_runner import TFLiteRunner

TFLITE_VARIANTS = platform_variants("android")  # name -> row of core/variants.py
DEFAULT_TFLITE_VARIANT = default_variant("android")
SIGNATURE_KEY = "serving_default"
FRONT_END_FILE = "a2bs_front_end.tflite"

# fp32 self-check: |tflite - torch| <= atol + rtol * |torch| (float round-off is ~1e-6 here).
_FP32_ATOL, _FP32_RTOL = 1e-4, 1e-4
# Quantized variants: blendshape MAE / max error on real speech above which the artifact is refused
# (gross failures only: measured on a trained checkpoint, full_int8 gives 0.003 / 0.08).
_QUANT_MAE_LIMIT, _QUANT_MAX_LIMIT = 0.05, 0.25
_CHECK_FRAMES = 8


def step_file_name(variant: str) -> str:
    return f"a2bs_step_{variant}.tflite"


def convert_tflite(
    ckpt: Checkpoint,
    variant: str,
    out_dir: Path,
    *,
    calibration: CalibrationSet | None = None,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> list[ArtifactFile]:
    """Write `<out_dir>/a2bs_step_<variant>.tflite` and, once per bundle, `a2bs_front_end.tflite` (fp32).

    Returns ArtifactFile records (paths relative to out_dir): the step model, then the front end.
    An existing step file is never replaced unless `overwrite`. An existing front end is reused (and
    returned again) if it matches this checkpoint's front end. Otherwise it is refused unless
    `overwrite`, so calling this once per variant into one folder gives one shared front end.
    `calibration` (real-speech step inputs) is needed for full_int8; it is computed when missing.
    Raises ValueError for an unknown variant and ConversionError(stage, message) for failures, with
    stage "export", "convert", "quantize:<variant>" or "save".
    """
    row = find_variant("android", variant)  # ValueError for an unknown one
    quantize = RECIPES[row.recipe]
    say = progress or (lambda _message: None)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConversionError("save", f"cannot create {out_dir}: {exc}") from exc
    step_path = out_dir / step_file_name(variant)
    front_path = out_dir / FRONT_END_FILE
    if step_path.exists() and not overwrite:
        raise ConversionError("save", f"{step_path} exists: refusing to overwrite it (remove it or pass overwrite)")
    reuse_front = front_path.exists() and not overwrite
    if reuse_front and not _front_end_matches(front_path, ckpt, calibration):
        raise ConversionError(
            "save", f"{front_path} exists and does not match this checkpoint's front end: refusing to overwrite it"
        )

    step = _exportable(DeployStep(ckpt.model))
    if row.calibrated and calibration is None:
        say(f"tflite {variant}: calibration features from the bundled speech")
        calibration = calibration_set(ckpt)
    check_inputs = _step_check_inputs(step, calibration)

    fp32 = _convert_module(step, STEP_INPUTS, STEP_OUTPUTS, step.example_inputs(), "step", say, f"tflite {variant}")
    say(f"tflite {variant}: verify fp32 graph")
    errors = _parity(fp32, step, STEP_INPUTS, STEP_OUTPUTS, check_inputs)
    _require_fp32_parity(errors, "convert", "step")

    model_bytes = fp32
    if quantize is not None:
        stage = f"quantize:{variant}"
        say(f"tflite {variant}: quantize")
        model_bytes = _quantize(fp32, quantize, calibration, stage)
        say(f"tflite {variant}: verify")
        errors = _parity(model_bytes, step, STEP_INPUTS, STEP_OUTPUTS, check_inputs, stage=stage)
        _require_quantized_sanity(errors, stage)

    say(f"tflite {variant}: save")
    _write_atomic(step_path, model_bytes, overwrite)
    records = [
        ArtifactFile(Path(step_path.name), "step", variant, row.precision, notes=_parity_notes(errors, check_inputs))
    ]

    if reuse_front:
        say("tflite front end: reuse (matches this checkpoint)")
    else:
        front = _exportable(DeployFrontEnd(ckpt.model))
        front_bytes = _convert_module(
            front, FRONT_END_INPUTS, FRONT_END_OUTPUTS, front.example_inputs(), "front end", say, "tflite front end"
        )
        say("tflite front end: verify")
        front_checks = _front_check_inputs(front, calibration)
        front_errors = _parity(front_bytes, front, FRONT_END_INPUTS, FRONT_END_OUTPUTS, front_checks)
        _require_fp32_parity(front_errors, "convert", "front end", atol=1e-3)
        say("tflite front end: save")
        _write_atomic(front_path, front_bytes, overwrite)
    records.append(
        ArtifactFile(
            Path(FRONT_END_FILE), "front_end", "fp32", "fp32 (log-mel front end stays fp32)",
            notes=["1024 PCM samples -> 80 normalized log-mel; windowed-DFT and mel matrices as FULLY_CONNECTED"],
        )
    )  # fmt: skip
    return records


# --- conversion ---------------------------------------------------------------------------------


class _NamedIO(nn.Module):
    """Keyword inputs and dict outputs, so the TFLite signature carries the manifest's names."""

    def __init__(self, module: nn.Module, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.module(*(inputs[name] for name in self.input_names))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return dict(zip(self.output_names, outputs, strict=True))


def _exportable(module: nn.Module) -> nn.Module:
    """An eval-mode copy whose parameters and buffers are all contiguous (litert-torch #1061 workaround)."""
    module = copy.deepcopy(module).eval()
    for sub in module.modules():
        for name, buffer in sub._buffers.items():
            if buffer is not None:
                sub._buffers[name] = buffer.detach().contiguous()
        for name, param in sub._parameters.items():
            if param is not None:
                sub._parameters[name] = nn.Parameter(param.detach().contiguous(), requires_grad=False)
    return module


def _convert_module(
    module: nn.Module,
    input_names: Sequence[str],
    output_names: Sequence[str],
    sample: tuple,
    what: str,
    say: Callable[[str], None] = lambda _message: None,
    label: str = "tflite",
) -> bytes:
    """litert-torch: torch.export + lowering to a flatbuffer. Cached per process by the module's tensors,
    so converting several variants of one checkpoint exports once. On failure, a separate torch.export
    tells the stages apart: ConversionError("export") if the graph cannot be exported, else "convert"."""
    key = _fingerprint(module, input_names, output_names)
    if key in _FLATBUFFER_CACHE:
        say(f"{label}: convert (cached)")
        return _FLATBUFFER_CACHE[key]
    wrapped = _NamedIO(module, input_names, output_names).eval()
    kwargs = dict(zip(input_names, sample, strict=True))
    say(f"{label}: convert")
    with _quiet():
        try:
            import litert_torch

            model = bytes(litert_torch.convert(wrapped, sample_kwargs=kwargs).model_content())
        except Exception as exc:
            try:
                with torch.no_grad():
                    torch.export.export(wrapped, args=(), kwargs=kwargs, strict=False)
            except Exception as export_exc:
                raise ConversionError(
                    "export", f"{what}: torch.export failed{_operator(export_exc)}: {_short(export_exc)}"
                ) from exc
            raise ConversionError("convert", f"{what}: litert-torch failed{_operator(exc)}: {_short(exc)}") from exc
    while len(_FLATBUFFER_CACHE) >= 4:
        _FLATBUFFER_CACHE.pop(next(iter(_FLATBUFFER_CACHE)))
    _FLATBUFFER_CACHE[key] = model
    return model


_FLATBUFFER_CACHE: dict[str, bytes] = {}


def _fingerprint(module: nn.Module, input_names: Sequence[str], output_names: Sequence[str]) -> str:
    """sha256 over the module's class, I/O names and every parameter/buffer (name, shape, dtype, bytes)."""
    import litert_torch

    digest = hashlib.sha256(f"{type(module).__qualname__}|{input_names}|{output_names}".encode())
    digest.update(litert_torch.__version__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _fp16(q: Any) -> list[Any]:
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    everything = qtyping.TFLOperationName.ALL_SUPPORTED
    q.add_weight_only_config(".*", everything, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    return []


def _dynamic_int8(q: Any) -> list[Any]:
    from ai_edge_quantizer import qtyping, recipe

    q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    return [qtyping.TFLOperationName.BATCH_MATMUL]  # constant LHS (folded queries): no hybrid int8 x float kernel


# full_int8's attention weights (softmax outputs): the mel attention spreads over N + 3 keys (515 at 60 fps),
# so a typical weight is below one 8-bit step (1/255) and rounds to 0. 8 bits failed the 60 fps default
# (worst error 0.91 of a shape's range, correlation 0.915); 16 bits pass (0.17, 0.988). Hexagon and the
# reference kernels run int16 x int8 BATCH_MATMUL and int16 SOFTMAX.
ATTENTION_WEIGHT_BITS = 16


def _full_int8(q: Any) -> list[Any]:
    from ai_edge_quantizer import qtyping, recipe

    op = qtyping.TFLOperationName
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    # The int8 BATCH_MATMUL kernel has one scale per operand; AEQ's default per-channel scales for the
    # constant (folded queries) operand are silently misread: garbage attention logits.
    q.add_static_config(".*", op.BATCH_MATMUL, 8, 8, weight_granularity=qtyping.QuantGranularity.TENSORWISE)
    if ATTENTION_WEIGHT_BITS == 16:  # the softmax outputs and the (weights x values) matmuls that read them
        for scope in _softmax_readers(q._float_model):
            q.add_static_config(f"^{re.escape(scope)}$", op.BATCH_MATMUL, 16, 8,
                                weight_granularity=qtyping.QuantGranularity.TENSORWISE)  # fmt: skip
        q.add_static_config(".*", op.SOFTMAX, 16, 8)
    return [op.INPUT, op.OUTPUT]  # float I/O; QUANTIZE/DEQUANTIZE inserted at the edges


def _softmax_readers(model: Any) -> list[str]:
    """ai-edge-quantizer scopes (output tensor names) of the BATCH_MATMULs whose left operand is a SOFTMAX
    output. The int8 kernel accepts int16 x int8 (weights x values) but not int8 x int16 (the constant
    queries x keys), so only these matmuls can take 16-bit activations."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_quantizer.utils.tfl_flatbuffer_utils import get_op_scope

    subgraph = model.subgraphs[0]
    softmax, matmul = (_opcode_indices(model, op) for op in (schema.BuiltinOperator.SOFTMAX,
                                                               schema.BuiltinOperator.BATCH_MATMUL))  # fmt: skip
    softmax_out = {t for o in subgraph.operators if o.opcodeIndex in softmax for t in o.outputs}
    scopes = [get_op_scope(o, subgraph.tensors) for o in subgraph.operators
              if o.opcodeIndex in matmul and o.inputs[0] in softmax_out]  # fmt: skip
    if not scopes:
        raise ConversionError("quantize:full_int8", "found no attention matmul after a softmax")
    return scopes


# How each variant of core/variants.py is built: a configuration of ai-edge-quantizer's Quantizer that
# returns the ops to keep float (None: the fp32 graph as converted).
Recipe = Callable[[Any], list[Any]]
RECIPES: dict[str, Recipe | None] = {
    "fp32": None,
    "fp16": _fp16,
    "dynamic_int8": _dynamic_int8,
    "full_int8": _full_int8,
}


def _quantize(fp32: bytes, recipe: Recipe, calibration: CalibrationSet | None, stage: str) -> bytes:
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    with _quiet():
        try:
            q = quantizer.Quantizer(bytearray(fp32))
            keep_float = recipe(q)
            for name in keep_float:
                q.update_quantization_recipe(".*", name, algorithm_key=AlgorithmName.NO_QUANTIZE)
            result = None
            if q.need_calibration:
                if calibration is None or not calibration.step_inputs:
                    raise ConversionError(stage, "full-integer quantization needs calibration inputs")
                result = _calibrate(fp32, q.get_quantization_recipe(), calibration)
            quantized = bytes(
                q.quantize(result, enable_progress_bar=False, enable_progress_report=False).quantized_model
            )
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(stage, f"ai-edge-quantizer failed{_operator(exc)}: {_short(exc)}") from exc
    return _rewire_float_outputs(quantized, stage)


def _calibrate(fp32: bytes, quant_recipe: list, calibration: CalibrationSet) -> dict:
    """Activation ranges = the global min/max over all calibration frames.

    `Quantizer.calibrate` keeps an exponential moving average (0.95) of per-frame ranges, which clips
    the loud frames: on this model it gave a context_frame MAE of 0.08 vs 0.014 with the true range."""
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(quant_recipe)
    calib = calibrator.Calibrator(
        bytearray(fp32), num_threads=max(1, min(2, os.cpu_count() or 1)), qsv_update_func=qsv_utils.min_max_update
    )
    data = {SIGNATURE_KEY: [_feeds(STEP_INPUTS, inputs) for inputs in calibration.step_inputs]}
    with contextlib.redirect_stderr(io.StringIO()):  # AEQ's tqdm bar; failures still raise
        calib.calibrate(data, manager)
    return calib.get_model_qsvs()


def _opcode_indices(graph: Any, operator: int) -> set[int]:
    """The `operatorCodes` indices of one builtin operator (codes below 127 may sit only in the
    deprecated field)."""
    return {i for i, code in enumerate(graph.operatorCodes)
            if max(code.builtinCode, code.deprecatedBuiltinCode) == operator}  # fmt: skip


def _rewire_float_outputs(model: bytes, stage: str) -> bytes:
    """Point every non-float signature output at the float DEQUANTIZE of it that AEQ inserted."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    dequantize = _opcode_indices(graph, schema.BuiltinOperator.DEQUANTIZE)
    changed = False
    for signature in graph.signatureDefs:
        subgraph = graph.subgraphs[signature.subgraphIndex]
        rewired = False
        for output in signature.outputs:
            if subgraph.tensors[output.tensorIndex].type == schema.TensorType.FLOAT32:
                continue
            candidates = [
                op.outputs[0]
                for op in subgraph.operators
                if op.opcodeIndex in dequantize
                and op.inputs[0] == output.tensorIndex
                and subgraph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32
            ]
            if not candidates:
                name = output.name.decode() if isinstance(output.name, bytes) else output.name
                raise ConversionError(stage, f"output {name!r} is quantized and has no float DEQUANTIZE to expose")
            output.tensorIndex = candidates[0]
            rewired = changed = True
        if rewired:
            subgraph.outputs = [output.tensorIndex for output in signature.outputs]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(graph)) if changed else model


# --- verification ---------------------------------------------------------------------------------


def _feeds(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    return {n: t.detach().numpy().astype(np.float32, copy=False) for n, t in zip(names, tensors, strict=True)}


def _step_check_inputs(step: DeployStep, calibration: CalibrationSet | None) -> list[tuple[torch.Tensor, ...]]:
    """A random example first (any input range), then real-speech frames when available."""
    real = list(calibration.step_inputs[:_CHECK_FRAMES]) if calibration is not None else []
    return [step.example_inputs(), *real]


def _front_check_inputs(front: DeployFrontEnd, calibration: CalibrationSet | None) -> list[tuple[torch.Tensor]]:
    real = [(pcm,) for pcm in calibration.front_end_inputs[:_CHECK_FRAMES]] if calibration is not None else []
    return [front.example_inputs(), (torch.zeros_like(front.example_inputs()[0]),), *real]


@torch.no_grad()
def _parity(
    model: bytes,
    reference: nn.Module,
    input_names: Sequence[str],
    output_names: Sequence[str],
    inputs: list[tuple[torch.Tensor, ...]],
    stage: str = "convert",
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{output: [(|tflite - torch|, |torch|) per check input]} from the real interpreter.

    ConversionError(stage) if the interpreter cannot load or run the model, or its I/O is not float32."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with _quiet():
            runner = Interpreter(model_content=model, num_threads=1).get_signature_runner(SIGNATURE_KEY)
        io = {**runner.get_input_details(), **runner.get_output_details()}
        if sorted(io) != sorted([*input_names, *output_names]):
            raise ConversionError(stage, f"signature names {sorted(io)} != {[*input_names, *output_names]}")
        not_float = [n for n, d in io.items() if d["dtype"] != np.float32]
        if not_float:
            raise ConversionError(stage, f"inputs/outputs {not_float} are not float32")
        errors: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in output_names}
        for sample in inputs:
            expected = reference(*sample)
            expected = (expected,) if isinstance(expected, torch.Tensor) else expected
            got = runner(**_feeds(input_names, sample))
            for name, e in zip(output_names, expected, strict=True):
                if not np.all(np.isfinite(got[name])):
                    raise ConversionError(stage, f"output {name!r} is not finite")
                errors[name].append((np.abs(got[name] - e.numpy()), np.abs(e.numpy())))
    except ConversionError:
        raise
    except Exception as exc:  # e.g. "Node number 58 (BATCH_MATMUL) failed to prepare"
        raise ConversionError(
            stage, f"the LiteRT interpreter cannot run the model{_operator(exc)}: {_short(exc)}"
        ) from exc
    return errors


def _require_fp32_parity(errors: dict, stage: str, what: str, atol: float = _FP32_ATOL) -> None:
    for name, pairs in errors.items():
        for err, ref in pairs:
            excess = err - (atol + _FP32_RTOL * ref)
            if np.any(excess > 0):
                raise ConversionError(
                    stage,
                    f"{what}: the fp32 TFLite output {name!r} differs from PyTorch by {float(err.max()):.3g} "
                    f"(limit {atol:g}): a converter miscompile, not round-off",
                )


def _require_quantized_sanity(errors: dict, stage: str) -> None:
    """Refuse a quantized model whose blendshapes are far from the reference on real speech."""
    real = errors[STEP_OUTPUTS[1]][1:]  # skip the random example: it may leave the calibrated range
    if real:
        mae = float(np.mean([err.mean() for err, _ in real]))
        worst = float(max(err.max() for err, _ in real))
        if mae > _QUANT_MAE_LIMIT or worst > _QUANT_MAX_LIMIT:
            raise ConversionError(
                stage,
                f"blendshapes_raw differs from PyTorch on real speech by MAE {mae:.3g}, max {worst:.3g} "
                f"(limits {_QUANT_MAE_LIMIT}, {_QUANT_MAX_LIMIT}): the quantized model would show a wrong face",
            )


def _parity_notes(errors: dict, inputs: list) -> list[str]:
    real = len(inputs) - 1
    if real <= 0:
        return ["parity vs PyTorch measured on a random example only"]
    notes = []
    for name in (STEP_OUTPUTS[0], STEP_OUTPUTS[2]):
        errs = [err for err, _ in errors[name][1:]]
        mae = float(np.mean([e.mean() for e in errs]))
        worst = float(max(e.max() for e in errs))
        notes.append(f"{name}: MAE {mae:.2e}, max {worst:.2e} vs PyTorch on {real} real-speech frames (LiteRT)")
    return notes


@torch.no_grad()
def _front_end_matches(path: Path, ckpt: Checkpoint, calibration: CalibrationSet | None) -> bool:
    """True if the front end at `path` reproduces this checkpoint's front end (same mel statistics)."""
    front = DeployFrontEnd(ckpt.model)
    try:
        runner = TFLiteRunner(path)
        for (pcm,) in _front_check_inputs(front, calibration):
            got = runner(**{FRONT_END_INPUTS[0]: pcm.numpy()})[FRONT_END_OUTPUTS[0]]
            if np.abs(got - front(pcm).numpy()).max() > 1e-3:
                return False
    except (ValueError, RuntimeError, OSError):
        return False
    return True


# --- helpers ---------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, overwrite: bool) -> None:
    """Write to a temp file in the same folder, then rename; never replace an existing file unless asked."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a model file is for others to read
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if `path` appeared meanwhile: no silent overwrite
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: check, then rename
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        tmp = None
    except FileExistsError as exc:
        raise ConversionError("save", f"{path} exists: refusing to overwrite it") from exc
    except OSError as exc:
        raise ConversionError("save", f"cannot write {path}: {exc}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_OP_PATTERNS = (
    re.compile(r"Node number \d+ \((\w+)\)"),  # LiteRT prepare/invoke errors
    re.compile(r"\b(aten\.[\w.]+)"),  # torch.export / lowering errors
    re.compile(r"'(tfl\.\w+)'"),  # MLIR legalization errors
    re.compile(r"\b(?:op|operator|operation)\s+'?([A-Z][A-Z0-9_]{2,})'?"),
)


def _operator(exc: BaseException) -> str:
    """' at operator X' when the error message names one."""
    text = str(exc)
    for pattern in _OP_PATTERNS:
        match = pattern.search(text)
        if match:
            return f" at operator {match.group(1)}"
    return ""


def _short(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence litert-torch's progress console and known-harmless warnings while converting."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    previous = os.environ.get(key)
    os.environ[key] = "n"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
            yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous
