"""LiteRT converter: `DeployStep` and `DeployFrontEnd` -> `.tflite` files with named signatures (Android).

litert-torch (torch.export underneath) converts the float graph; quantized variants are made from the
fp32 flatbuffer with ai-edge-quantizer, one `Recipe` per variant of core/variants.py. Every model is
loaded into the real LiteRT interpreter and checked against PyTorch before it is written. Signatures
("serving_default") carry the manifest's input and output names; all I/O is float32 in every variant.
Why these recipes, the library problems worked around, and the measurements: docs/DECISIONS.md
("LiteRT converter").
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from a2bs.convert.common import (
    ArtifactFile,
    CalibrationSet,
    ConversionError,
    Recipe,
    SelfCheck,
    calibration_set,
    check_targets,
    describe,
    front_end_check_inputs,
    recipes_for,
    save_atomically,
    step_check_inputs,
    write_file,
)
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.deploy import (
    FRONT_END_INPUTS,
    FRONT_END_OUTPUTS,
    OFFLINE_INPUTS,
    OFFLINE_OUTPUTS,
    STEP_INPUTS,
    STEP_OUTPUTS,
    DeployFrontEnd,
    DeployOffline,
    DeployStep,
)
from a2bs.core.parity import FLOAT_ATOL, FRONT_END_ATOL, abs_errors, compressed_problem, float_excess
from a2bs.core.progress import Progress
from a2bs.core.variants import OFFLINE_VARIANTS, default_variant, find_variant, platform_variants
from a2bs.runtime.tflite_runner import TFLiteRunner

TFLITE_VARIANTS = platform_variants("android")  # name -> row of core/variants.py
DEFAULT_TFLITE_VARIANT = default_variant("android")
SIGNATURE_KEY = "serving_default"
FRONT_END_FILE = "a2bs_front_end.tflite"
RUNTIME = "LiteRT interpreter"


def step_file_name(variant: str) -> str:
    return f"a2bs_step_{variant}.tflite"


def offline_file_name(variant: str) -> str:
    return f"a2bs_offline_{variant}.tflite"


def convert_tflite(
    ckpt: Checkpoint,
    variant: str,
    out_dir: Path,
    *,
    calibration: CalibrationSet | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> list[ArtifactFile]:
    """Write `<out_dir>/a2bs_step_<variant>.tflite` and the bundle's fp32 front end `a2bs_front_end.tflite`
    (the `Converter` contract of convert/common.py). The step is checked in the LiteRT interpreter: the
    fp32 graph must match PyTorch to round-off, a quantized one must pass core/parity.py's gross-failure
    limits on real speech."""
    row = find_variant("android", variant)  # ValueError for an unknown one
    recipe = RECIPES[variant]
    say = progress or (lambda _message: None)
    out_dir = Path(out_dir)
    step_path = out_dir / step_file_name(variant)
    front_path = out_dir / FRONT_END_FILE
    if calibration is None:
        say(f"tflite {variant}: calibration features from the bundled speech")
        calibration = calibration_set(ckpt)
    reuse_front = check_targets(step_path, front_path, overwrite, lambda p: _front_end_matches(p, ckpt, calibration))

    step = _exportable(DeployStep(ckpt.model))
    check_inputs = step_check_inputs(step, calibration)
    fp32 = _convert_module(step, STEP_INPUTS, STEP_OUTPUTS, step.example_inputs(), "step", say, f"tflite {variant}")
    say(f"tflite {variant}: verify fp32 graph")
    outputs = _parity(fp32, step, STEP_INPUTS, STEP_OUTPUTS, check_inputs)
    _require_float_parity(outputs, "convert", "step")

    model_bytes = fp32
    if recipe.after_convert is not None:
        quantize_stage = f"quantize:{variant}"
        say(f"tflite {variant}: quantize")
        model_bytes = _quantize(fp32, recipe, calibration, quantize_stage)
        say(f"tflite {variant}: verify")
        outputs = _parity(model_bytes, step, STEP_INPUTS, STEP_OUTPUTS, check_inputs, stage=quantize_stage)
        # on real speech only: the random example may leave the calibrated range
        problem = compressed_problem(outputs[STEP_OUTPUTS[1]][1:])
        if problem:
            raise ConversionError(quantize_stage, problem)

    writers = {step_path: lambda path: write_file(path, model_bytes)}
    front_check = None
    if reuse_front:
        say("tflite front end: reuse (matches this checkpoint)")
    else:
        front = _exportable(DeployFrontEnd(ckpt.model))
        front_bytes = _convert_module(
            front, FRONT_END_INPUTS, FRONT_END_OUTPUTS, front.example_inputs(), "front end", say, "tflite front end"
        )
        say("tflite front end: verify")
        front_outputs = _parity(
            front_bytes, front, FRONT_END_INPUTS, FRONT_END_OUTPUTS, front_end_check_inputs(front, calibration)
        )
        _require_float_parity(front_outputs, "convert", "front end", atol=FRONT_END_ATOL)
        front_check = _self_check(front_outputs, FRONT_END_OUTPUTS[0], skip=2)
        writers[front_path] = lambda path: write_file(path, front_bytes)
    say(f"tflite {variant}: save")
    save_atomically(out_dir, writers, overwrite=overwrite)
    step_check = _self_check(outputs, STEP_OUTPUTS[0], skip=1)
    records = [
        ArtifactFile(
            Path(step_path.name), "step", variant, row.precision, notes=_parity_notes(outputs), check=step_check
        ),
        ArtifactFile(
            Path(FRONT_END_FILE),
            "front_end",
            "fp32",
            "fp32 (log-mel front end stays fp32)",
            notes=["1024 PCM samples -> 80 normalized log-mel; windowed-DFT and mel matrices as FULLY_CONNECTED"],
            check=front_check,
        ),
    ]
    return records


def convert_tflite_offline(
    ckpt: Checkpoint,
    variant: str,
    out_dir: Path,
    *,
    calibration: CalibrationSet | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> ArtifactFile:
    """Write `<out_dir>/a2bs_offline_<variant>.tflite`: `DeployOffline`, many frames per call, for files on a
    desktop (`a2bs infer`). Its weights are the step's: fp16 casts the same FULLY_CONNECTED weights as the
    step's recipe and keeps the front end fp32, as the bundle's front-end model is. The fp32 graph is checked
    against PyTorch here; that its frames equal the per-frame path's is checked on the finished bundle
    (`runtime.offline`, by `build_bundle` and `a2bs validate`)."""
    if variant not in OFFLINE_VARIANTS:
        raise ValueError(f"the offline model is built for the float variants {OFFLINE_VARIANTS}, not {variant!r}")
    row = find_variant("android", variant)
    say = progress or (lambda _message: None)
    path = Path(out_dir) / offline_file_name(variant)
    if calibration is None:
        calibration = calibration_set(ckpt)
    module = _exportable(DeployOffline(ckpt.model))
    label = f"tflite offline {variant}"
    fp32 = _convert_module(module, OFFLINE_INPUTS, OFFLINE_OUTPUTS, module.example_inputs(), "offline", say, label)
    say(f"{label}: verify fp32 graph")
    outputs = _parity(fp32, module, OFFLINE_INPUTS, OFFLINE_OUTPUTS, offline_check_inputs(module, calibration))
    _require_float_parity({name: outputs[name] for name in OFFLINE_OUTPUTS[:3]}, "convert", "offline model")
    model_bytes = fp32
    if variant == "fp16":
        say(f"{label}: quantize")
        recipe = Recipe(after_convert=_fp16_weights_outside_front_end)
        model_bytes = _quantize(fp32, recipe, calibration, f"quantize:{variant}")
    save_atomically(Path(out_dir), {path: lambda target: write_file(target, model_bytes)}, overwrite=overwrite)
    return ArtifactFile(
        Path(path.name),
        "offline",
        variant,
        row.precision,
        notes=[f"{module.frames} frames per call, for files (a2bs infer); the apps use the step model"],
        check=_self_check(outputs, OFFLINE_OUTPUTS[0], skip=1),
    )


def offline_check_inputs(module: DeployOffline, calibration: CalibrationSet) -> list[tuple[torch.Tensor, ...]]:
    """The offline model's check inputs: a random example, then calls made of real-speech step inputs (their
    context, emotion and mel history) and real PCM windows."""
    inputs = [module.example_inputs()]
    windows = calibration.front_end_inputs
    for i, (mel_frames, context, emotion, _previous) in enumerate(calibration.step_inputs[:2]):
        pcm = torch.cat([windows[(i * module.frames + b) % len(windows)] for b in range(module.frames)])[None]
        inputs.append((pcm, mel_frames[:, 1:], context, emotion))
    return inputs


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
                raise ConversionError("export", f"{what}: torch.export failed: {describe(export_exc)}") from exc
            raise ConversionError("convert", f"{what}: litert-torch failed: {describe(exc)}") from exc
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


# --- recipes: how each variant of core/variants.py is built --------------------------------------
# `after_convert` configures ai-edge-quantizer's Quantizer and returns the ops to keep float.


def _fp16(q: Any) -> list[Any]:
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    everything = qtyping.TFLOperationName.ALL_SUPPORTED
    q.add_weight_only_config(".*", everything, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    return []


def _fp16_weights_outside_front_end(q: Any) -> list[Any]:
    """The step's fp16 recipe as the offline model needs it: the same FULLY_CONNECTED weights cast to fp16 (the
    step's only fp16 tensors), the front end's left fp32 (its scope names MelFrontEnd)."""
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    fully_connected = qtyping.TFLOperationName.FULLY_CONNECTED
    q.add_weight_only_config("^(?!.*MelFrontEnd)", fully_connected, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
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
            q.add_static_config(
                f"^{re.escape(scope)}$", op.BATCH_MATMUL, 16, 8, weight_granularity=qtyping.QuantGranularity.TENSORWISE
            )
        q.add_static_config(".*", op.SOFTMAX, 16, 8)
    return [op.INPUT, op.OUTPUT]  # float I/O; QUANTIZE/DEQUANTIZE inserted at the edges


def _softmax_readers(model: Any) -> list[str]:
    """ai-edge-quantizer scopes (output tensor names) of the BATCH_MATMULs whose left operand is a SOFTMAX
    output. The int8 kernel accepts int16 x int8 (weights x values) but not int8 x int16 (the constant
    queries x keys), so only these matmuls can take 16-bit activations."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_quantizer.utils.tfl_flatbuffer_utils import get_op_scope

    subgraph = model.subgraphs[0]
    softmax, matmul = (
        _opcode_indices(model, op) for op in (schema.BuiltinOperator.SOFTMAX, schema.BuiltinOperator.BATCH_MATMUL)
    )
    softmax_out = {t for o in subgraph.operators if o.opcodeIndex in softmax for t in o.outputs}
    scopes = [
        get_op_scope(o, subgraph.tensors)
        for o in subgraph.operators
        if o.opcodeIndex in matmul and o.inputs[0] in softmax_out
    ]
    if not scopes:
        raise ConversionError("quantize:full_int8", "found no attention matmul after a softmax")
    return scopes


RECIPES: dict[str, Recipe] = recipes_for(
    "android",
    {
        "fp32": Recipe(),  # the graph as converted
        "fp16": Recipe(after_convert=_fp16),
        "dynamic_int8": Recipe(after_convert=_dynamic_int8),
        "full_int8": Recipe(after_convert=_full_int8),
    },
)


def _quantize(fp32: bytes, recipe: Recipe, calibration: CalibrationSet, stage: str) -> bytes:
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    with _quiet():
        try:
            q = quantizer.Quantizer(bytearray(fp32))
            keep_float = recipe.after_convert(q)
            for name in keep_float:
                q.update_quantization_recipe(".*", name, algorithm_key=AlgorithmName.NO_QUANTIZE)
            result = None
            if q.need_calibration:
                if not calibration.step_inputs:
                    raise ConversionError(stage, "full-integer quantization needs calibration inputs")
                result = _calibrate(fp32, q.get_quantization_recipe(), calibration)
            quantized = bytes(
                q.quantize(result, enable_progress_bar=False, enable_progress_report=False).quantized_model
            )
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(stage, f"ai-edge-quantizer failed: {describe(exc)}") from exc
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
    return {
        i for i, code in enumerate(graph.operatorCodes) if max(code.builtinCode, code.deprecatedBuiltinCode) == operator
    }


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


@torch.no_grad()
def _parity(
    model: bytes,
    reference: nn.Module,
    input_names: Sequence[str],
    output_names: Sequence[str],
    inputs: list[tuple[torch.Tensor, ...]],
    stage: str = "convert",
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{output: [(torch, tflite) per check input]} from the real interpreter.

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
        pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in output_names}
        for sample in inputs:
            expected = reference(*sample)
            expected = (expected,) if isinstance(expected, torch.Tensor) else expected
            got = runner(**_feeds(input_names, sample))
            for name, e in zip(output_names, expected, strict=True):
                if not np.all(np.isfinite(got[name])):
                    raise ConversionError(stage, f"output {name!r} is not finite")
                pairs[name].append((e.numpy(), got[name]))
    except ConversionError:
        raise
    except Exception as exc:  # e.g. "Node number 58 (BATCH_MATMUL) failed to prepare"
        raise ConversionError(stage, f"the LiteRT interpreter cannot run the model: {describe(exc)}") from exc
    return pairs


def _require_float_parity(outputs: dict, stage: str, what: str, atol: float | None = None) -> None:
    """A float graph computes what PyTorch computes: anything beyond round-off is a miscompile."""
    for name, pairs in outputs.items():
        worst = float_excess(pairs) if atol is None else float_excess(pairs, atol)
        if worst is not None:
            raise ConversionError(
                stage,
                f"{what}: the fp32 TFLite output {name!r} differs from PyTorch by {worst:.3g} "
                f"(limit {atol or FLOAT_ATOL:g}): a converter miscompile, not round-off",
            )


def _self_check(outputs: dict, name: str, skip: int) -> SelfCheck | None:
    """The figures of output `name` on the real-speech inputs (the first `skip` inputs are synthetic);
    None when there were none."""
    real = outputs[name][skip:]
    if not real:
        return None
    mae, worst = abs_errors(real)
    return SelfCheck(name, mae, worst, len(real), RUNTIME)


def _parity_notes(outputs: dict) -> list[str]:
    notes = []
    for name in (STEP_OUTPUTS[0], STEP_OUTPUTS[2]):
        check = _self_check(outputs, name, skip=1)
        if check is None:
            return ["parity vs PyTorch measured on a random example only (no real-speech frames given)"]
        notes.append(
            f"{name}: MAE {check.mae:.2e}, max {check.max_abs:.2e} vs PyTorch on {check.frames} "
            "real-speech frames (LiteRT)"
        )
    return notes


@torch.no_grad()
def _front_end_matches(path: Path, ckpt: Checkpoint, calibration: CalibrationSet) -> bool:
    """True if the front end at `path` reproduces this checkpoint's front end (same mel statistics)."""
    front = DeployFrontEnd(ckpt.model)
    try:
        runner = TFLiteRunner(path)
        for (pcm,) in front_end_check_inputs(front, calibration):
            got = runner(**{FRONT_END_INPUTS[0]: pcm.numpy()})[FRONT_END_OUTPUTS[0]]
            if np.abs(got - front(pcm).numpy()).max() > FRONT_END_ATOL:
                return False
    except (ValueError, RuntimeError, OSError):
        return False
    return True


# --- helpers ---------------------------------------------------------------------------------------


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
