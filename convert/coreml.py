"""CoreML converter: the deploy-time step and the mel front end as ML programs (`.mlpackage`) for iPhone.

A bundle gets one step model per variant, `a2bs_step_<variant>.mlpackage`, and one shared front end,
`a2bs_front_end.mlpackage` (1024 PCM samples -> 80 normalized log-mel values, fp32 compute: DESIGN.md
measured log-mel errors of 0.15-0.34 with fp16). The front end is written by whichever call finds it
missing, so a bundle holding only `palettize4` still gets one; a later call for another variant reuses
it after checking that it was built from the same mel statistics (a mismatch raises). Nothing existing
is ever overwritten: the bundle layer above removes outputs for `--force`.

Pipeline: `torch.export.export(module, example_inputs).run_decompositions({})` -> `ct.convert(...,
convert_to="mlprogram")` (the `torch.jit.trace` path breaks on numpy 2.4), then the compression pass of
the variant on the converted fp16 program (`coremltools.optimize.coreml`). Inputs and outputs are fp32
in every variant (`np.float32` tensors in Swift / MLMultiArray .float32): one I/O contract for all
variants, the front end and the TFLite artifacts; the cast to fp16 happens inside the model (`cast`
ops at the inputs and outputs; the largest input, the (1, N-1, 512) context ring, is 131k / 262k values).

Variants (weights of the 12 Linear layers only; biases, LayerNorm parameters and the attention
constants -- pre-scaled queries, the additive position bias and the decoder's per-blendshape weights,
which go straight into softmax logits or a sigmoid -- stay fp16; `WEIGHT_THRESHOLD` keeps tensors of
<= 2048 elements uncompressed in any case):

========== ======================================================= ======== =========================
variant    weights / activations                                   target   MIL ops it adds
========== ======================================================= ======== =========================
fp16       fp16 / fp16                                             iOS16    (cast for fp32 I/O)
int8       int8 linear symmetric, one scale per output channel     iOS16    constexpr_affine_dequantize
palettize6 6-bit k-means LUT (64 entries) per weight matrix        iOS16    constexpr_lut_to_dense
palettize4 4-bit k-means LUT (16 entries) per weight matrix        iOS16    constexpr_lut_to_dense
w8a8       int8 per-channel weights, 8-bit activations calibrated  iOS17    quantize, dequantize,
           on real speech (`CalibrationSet.step_inputs`)                    constexpr_affine_dequantize
========== ======================================================= ======== =========================

(w8a8 is the exception to "attention constants stay fp16": they are operands of matmul/add/mul ops
whose inputs the quantizer makes 8-bit, so they are stored per-tensor 8-bit like activations.)
Sizes of every variant, and the front end's (fp32, 2.3 MB), are in docs/VALIDATION.md (generated).

Deployment targets (`MINIMUM_DEPLOYMENT_TARGET`, each row's `deployment_target` in core/variants.py)
------------------------------------------------------------------------------
A14 iPhones shipped with iOS 14 and run every release since. ML programs need iOS15; the compression
ops need more: `constexpr_affine_dequantize` (per-channel int8 weights) and `constexpr_lut_to_dense`
(per-tensor LUTs) exist from iOS16, the activation `quantize`/`dequantize` ops from iOS17, and the
iOS18 opset adds per-grouped-channel LUTs, per-block int8 and LUTs with per-channel scales
(`constexpr_blockwise_shift_scale` and the iOS18 `constexpr_lut_to_dense`).
Choice: per-variant targets, each the lowest one its ops allow, with iOS16 as the bundle floor:
* fp16, int8, palettize6, palettize4 and the front end: iOS16. fp16 alone would run on iOS15, but one
  floor for all weight-only variants means an app built against a bundle can switch variants without
  changing its deployment target, and every A14 device can update to iOS16.
* w8a8: iOS17 (`quantize`/`dequantize` on activations do not exist before). Note that A14's Neural
  Engine has no int8 x int8 path (Apple: "from iPhone 15 Pro onwards", i.e. A17 Pro / M4): on A14, w8a8 runs its 8-bit
  activations as quantize/dequantize pairs around fp16 compute -- a numerics-and-size preview for newer
  NPUs, not a speed-up. Prefer int8 or palettize6 on A14.
* Not iOS18: measured on the test checkpoint, per-grouped-channel k-means (group 8/16/32) and
  per-channel scales gave no lower output error than one LUT per matrix (this model's Linear weights
  have similar ranges across output channels), so raising the floor to iOS18 would buy nothing.
  Rechecked on the trained 60 fps default (2026-12-01, 4-bit k-means emulated in torch on 48 real
  frames): mean blendshape error 1.56e-3 with one LUT per matrix, 1.51e-3 / 1.40e-3 with groups of 16 /
  8 output channels, mean correlation 0.9978 -> 0.9986 / 0.9989: still not worth the iOS18 floor. It
  is a one-line change of `_palettize_config` plus the target.

w8a8 on Linux: `coremltools.optimize.coreml.linear_quantize_activations` calibrates by calling
`MLModel.predict`, which needs macOS. Instead the torch module is quantized in torch:
`coremltools.optimize.torch.quantization.LinearQuantizer` inserts fake-quant (weights int8 symmetric per
channel, activations 8-bit symmetric, min/max observers), forward passes over the real-speech
calibration inputs set the activation ranges, then torch.ao's reference conversion with *decomposed*
quantize/dequantize ops (`quantized_decomposed::*`, which `torch.export` and coremltools' export
frontend understand -- `LinearQuantizer.finalize()` emits quantized tensors that `torch.export` cannot
trace) and the weights are pre-quantized to int8 buffers so that coremltools turns them into
`constexpr_affine_dequantize` constants. Uses torch.ao / coremltools private helpers
(`_convert_to_reference_decomposed_fx`, `LinearQuantizer._qconfig_mapping`): any failure is raised as
`ConversionError("quantize:w8a8", ...)`, never replaced by an fp16 model.

Known coremltools 9.0 issue worked around: k-means with `num_kmeans_workers > 1` uses a class-level
process pool that the pass's `__del__` closes without resetting, so the second palettization in a
process fails with "Pool not running"; we use one worker (the k-means of this model takes ~2 s).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2bs.convert.common import (
    ArtifactFile,
    CalibrationSet,
    ConversionError,
    calibration_set,
)
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import FMAX, FMIN, LOG_EPS, N_FFT, N_MELS, SAMPLE_RATE
from a2bs.core.deploy import (
    FRONT_END_INPUTS,
    FRONT_END_OUTPUTS,
    STEP_INPUTS,
    STEP_OUTPUTS,
    DeployFrontEnd,
    DeployStep,
    mel_history_names,
)
from a2bs.core.files import size_bytes
from a2bs.core.progress import Progress
from a2bs.core.variants import default_variant, find_variant, platform_variants
from a2bs.runtime.coreml_package import ct, program_ops

COREML_VARIANTS = platform_variants("ios")  # name -> row of core/variants.py
DEFAULT_COREML_VARIANT = default_variant("ios")
MINIMUM_DEPLOYMENT_TARGET = ct.target.iOS16  # the bundle floor; see the module docstring
FRONT_END_DEPLOYMENT_TARGET = ct.target.iOS16
FRONT_END_PACKAGE = "a2bs_front_end.mlpackage"
WEIGHT_THRESHOLD = 2048  # tensors with at most this many elements are never compressed

STEP_DESCRIPTIONS = {
    "mel_frames": "Normalized log-mel frames {history} (oldest first), each the front end's `mel`",
    "context": "Ring of the last N-1 `context_frame` outputs, oldest first (initial: silence state)",
    "emotion": "z-normalized eGeMAPS functionals (3 x 88, windows ending t, t-0.3 s, t-0.6 s); zeros = neutral",
    "previous": "The previous output frame's smoothed blendshapes (before the first frame: its blendshapes_raw)",
    "blendshapes": "Smoothed ARKit blendshape weights in [0, 1], order in metadata 'blendshapes'",
    "blendshapes_raw": "Unsmoothed blendshape weights in [0, 1] (the first frame after a reset uses these)",
    "context_frame": "Encoded newest mel frame: append to the context ring, drop the oldest",
}
FRONT_END_DESCRIPTIONS = {
    "pcm": "1024 samples of 16 kHz mono PCM in [-1, 1], centred on sample round(j * 16000 / fps)",
    "mel": "80 normalized log-mel values of frame j (one row of the step's mel_frames)",
}


def step_package_name(variant: str) -> str:
    return f"a2bs_step_{variant}.mlpackage"


# --------------------------------------------------------------------------------------------------
# conversion


def convert_coreml(
    ckpt: Checkpoint,
    variant: str,
    out_dir: Path,
    *,
    calibration: CalibrationSet | None = None,
    metadata: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> list[ArtifactFile]:
    """Write `<out_dir>/a2bs_step_<variant>.mlpackage` and, if the bundle has none yet, the front end.

    Returns the records of the packages this call wrote (paths relative to `out_dir`): the step, plus
    the front end when it was written now. An existing front end is reused when its mel statistics
    match `ckpt` and is reported by no record. `calibration` feeds the w8a8 activation ranges (default:
    `calibration_set(ckpt)`, real speech); other variants ignore it. `metadata` entries (strings) are
    added to both models' user-defined metadata.

    Raises ValueError for an unknown variant or bad metadata, ConversionError naming the stage
    ("export", "convert", "quantize:<variant>", "save") otherwise -- including when the step package
    already exists (nothing is overwritten) or the existing front end belongs to another checkpoint.
    """
    row = find_variant("ios", variant)  # ValueError for an unknown one
    target = getattr(ct.target, row.deployment_target)
    extra = _check_metadata(metadata)
    report: Callable[[str], None] = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    step_path = out_dir / step_package_name(variant)
    front_path = out_dir / FRONT_END_PACKAGE
    if step_path.exists():
        raise ConversionError("save", f"{step_path} exists: not overwritten (remove it, or pass --force)")
    fingerprint = front_end_fingerprint(ckpt)
    write_front_end = not front_path.exists()
    if not write_front_end:
        _check_existing_front_end(front_path, fingerprint)

    step_model = _convert_step(ckpt, variant, calibration, report)
    _set_metadata(step_model, ckpt, "step", variant, target, extra)
    models = []
    if write_front_end:
        front_model = _convert_front_end(ckpt, report)
        _set_metadata(front_model, ckpt, "front_end", "fp32", FRONT_END_DEPLOYMENT_TARGET, extra)
        front_model.user_defined_metadata["front_end_fingerprint"] = fingerprint
        models.append((front_model, front_path))
    models.append((step_model, step_path))

    report(f"coreml {variant}: save")
    _save_atomically(models, out_dir)

    records = []
    if write_front_end:
        records.append(
            ArtifactFile(
                Path(FRONT_END_PACKAGE), "front_end", "fp32", "fp32 weights, fp32 compute, fp32 inputs/outputs",
                [f"minimum deployment target {_target_name(FRONT_END_DEPLOYMENT_TARGET)}",
                 f"{size_bytes(front_path) / 1e6:.2f} MB"],
            )
        )  # fmt: skip
    notes = [f"minimum deployment target {_target_name(target)}", f"{size_bytes(step_path) / 1e6:.2f} MB",
             row.description, *([RECIPES[row.recipe].note] if RECIPES[row.recipe].note else [])]  # fmt: skip
    records.append(ArtifactFile(Path(step_path.name), "step", variant, row.precision, notes))
    return records


def _convert_step(ckpt: Checkpoint, variant: str, calibration: CalibrationSet | None, report: Progress) -> Any:
    row = find_variant("ios", variant)
    recipe = RECIPES[row.recipe]
    step = DeployStep(ckpt.model).eval()
    example = step.example_inputs()
    module: nn.Module = step
    if recipe.before_export is not None:
        with _stage(f"quantize:{variant}"):
            if calibration is None:
                report(f"coreml {variant}: calibration data (real speech)")
                calibration = calibration_set(ckpt)
            report(f"coreml {variant}: calibrate activations")
            module = recipe.before_export(step, example, calibration)
    report(f"coreml {variant}: export")
    with _stage("export"), torch.no_grad():
        exported = torch.export.export(module, example).run_decompositions({})
    report(f"coreml {variant}: convert")
    with _stage("convert"):
        mlmodel = ct.convert(
            exported,
            convert_to="mlprogram",
            minimum_deployment_target=getattr(ct.target, row.deployment_target),
            inputs=[
                ct.TensorType(name=name, shape=tuple(x.shape), dtype=np.float32)
                for name, x in zip(STEP_INPUTS, example, strict=True)
            ],
            outputs=[ct.TensorType(name=n, dtype=np.float32) for n in STEP_OUTPUTS],
            compute_precision=ct.precision.FLOAT16,
        )
        _check_names(mlmodel, STEP_INPUTS, STEP_OUTPUTS)
    if recipe.after_convert is not None:
        report(f"coreml {variant}: quantize")
        with _stage(f"quantize:{variant}"):
            mlmodel = recipe.after_convert(mlmodel)
            _check_names(mlmodel, STEP_INPUTS, STEP_OUTPUTS)
    with _stage(f"quantize:{variant}"):
        missing = recipe.adds_ops - program_ops(mlmodel.get_spec())[0].keys()
        if missing:  # never ship an uncompressed model under a compressed variant's name
            raise RuntimeError(f"the converted program has no {sorted(missing)} ops")
    return mlmodel


def _convert_front_end(ckpt: Checkpoint, report: Progress) -> Any:
    front = DeployFrontEnd(ckpt.model).eval()
    example = front.example_inputs()
    report("coreml front_end: export")
    with _stage("export"), torch.no_grad():
        exported = torch.export.export(front, example).run_decompositions({})
    report("coreml front_end: convert")
    with _stage("convert"):
        mlmodel = ct.convert(
            exported,
            convert_to="mlprogram",
            minimum_deployment_target=FRONT_END_DEPLOYMENT_TARGET,
            inputs=[ct.TensorType(name=FRONT_END_INPUTS[0], shape=tuple(example[0].shape), dtype=np.float32)],
            outputs=[ct.TensorType(name=FRONT_END_OUTPUTS[0], dtype=np.float32)],
            compute_precision=ct.precision.FLOAT32,
        )
        _check_names(mlmodel, FRONT_END_INPUTS, FRONT_END_OUTPUTS)
    return mlmodel


def _linear_weights_config(op_config: Any) -> Any:
    """Compress only the weights of `linear` ops (see the module docstring for why)."""
    return ct.optimize.coreml.OptimizationConfig(op_type_configs={"linear": op_config})


def _palettize_config(nbits: int) -> Any:
    return ct.optimize.coreml.OpPalettizerConfig(
        mode="kmeans", nbits=nbits, granularity="per_tensor", num_kmeans_workers=1, weight_threshold=WEIGHT_THRESHOLD
    )


def _int8_weights(mlmodel: Any) -> Any:
    cto = ct.optimize.coreml
    op_config = cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD
    )
    return cto.linear_quantize_weights(mlmodel, _linear_weights_config(op_config))


def _palettize(nbits: int) -> Callable[[Any], Any]:
    def palettize(mlmodel: Any) -> Any:
        return ct.optimize.coreml.palettize_weights(mlmodel, _linear_weights_config(_palettize_config(nbits)))

    return palettize


# --- w8a8 -----------------------------------------------------------------------------------------


class _Int8Linear(nn.Module):
    """A Linear whose weight is stored as int8 with per-output-channel scales and dequantized with the
    decomposed op, which coremltools folds into a `constexpr_affine_dequantize` constant."""

    def __init__(self, reference: nn.Module) -> None:
        super().__init__()
        if reference.weight_qscheme not in (torch.per_channel_affine, torch.per_channel_symmetric):
            raise RuntimeError(f"expected per-channel weight quantization, got {reference.weight_qscheme}")
        if reference.weight_dtype != torch.qint8:
            raise RuntimeError(f"expected int8 weights, got {reference.weight_dtype}")
        self.axis = int(reference.weight_axis_int)
        qmin, qmax = reference.weight_quant_min, reference.weight_quant_max
        self.qmin = -128 if qmin is None else int(qmin)
        self.qmax = 127 if qmax is None else int(qmax)
        scale = reference.weight_scale.detach().to(torch.float32).clone()
        zero_point = reference.weight_zero_point.detach().to(torch.int64).clone()
        qweight = torch.ops.quantized_decomposed.quantize_per_channel(
            reference.weight.detach().to(torch.float32), scale, zero_point, self.axis, self.qmin, self.qmax, torch.int8
        )
        self.register_buffer("qweight", qweight)
        self.register_buffer("scale", scale)
        self.register_buffer("zero_point", zero_point)
        bias = reference.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.ops.quantized_decomposed.dequantize_per_channel(
            self.qweight, self.scale, self.zero_point, self.axis, self.qmin, self.qmax, torch.int8
        )
        return F.linear(x, weight, self.bias)


def _check_calibration(calibration: CalibrationSet, example: tuple[torch.Tensor, ...]) -> None:
    if not calibration.step_inputs:
        raise RuntimeError("the calibration set has no step inputs")
    for i, inputs in enumerate(calibration.step_inputs):
        shapes = [tuple(x.shape) for x in inputs]
        expected = [tuple(x.shape) for x in example]
        if shapes != expected:
            raise RuntimeError(f"calibration input {i} has shapes {shapes}, the step expects {expected} (another fps?)")


@contextmanager
def _single_thread() -> Iterator[None]:
    """Batch-1 passes over tiny tensors: intra-op threads only add synchronization (3x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _float_softmax_outputs(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Remove the 8-bit quantizer on each softmax output, so attention weights stay fp16.

    The mel attention spreads over N + 3 keys (259 at 30 fps, 515 at 60 fps): a typical weight (~1/N)
    is below one 8-bit step (1/255), so most weights rounded to 0. On the 60 fps default that alone made
    the w8a8 step fail (worst error 1.46 of a shape's range, correlation 0.57; float softmax outputs:
    0.17 and 0.975, measured with torch fake quantization through the app's frame loop)."""
    graph = prepared.graph
    removed = 0
    for node in list(graph.nodes):
        source = node.args[0] if node.op == "call_module" and node.args else None
        is_softmax = isinstance(source, torch.fx.Node) and source.op == "call_function" and source.target in (
            torch.softmax, F.softmax)  # fmt: skip
        if is_softmax and "activation_post_process" in str(node.target):
            node.replace_all_uses_with(source)
            graph.erase_node(node)
            removed += 1
    if removed == 0:
        raise RuntimeError("found no softmax output quantizer to remove (has the quantizer's graph changed?)")
    graph.lint()
    prepared.recompile()
    return prepared


def _quantize_w8a8(step: DeployStep, example: tuple[torch.Tensor, ...], calibration: CalibrationSet) -> nn.Module:
    """Fake-quantize in torch, calibrate on real inputs, return an exportable reference-quantized module."""
    from coremltools.optimize.torch.quantization import (
        LinearQuantizer,
        LinearQuantizerConfig,
        ModuleLinearQuantizerConfig,
    )
    from coremltools.optimize.torch.quantization._backend_config import get_backend_config
    from torch.ao.nn.quantized.reference import Linear as ReferenceLinear
    from torch.ao.quantization.quantize_fx import _convert_to_reference_decomposed_fx

    _check_calibration(calibration, example)
    config = LinearQuantizerConfig(
        global_config=ModuleLinearQuantizerConfig(
            quantization_scheme="symmetric",
            weight_dtype=torch.qint8,
            weight_per_channel=True,
            activation_dtype=torch.quint8,
            weight_observer="min_max",
            activation_observer="min_max",  # a moving average would be dominated by the first frames
            milestones=None,  # observers and fake quantization on from the first pass
        )
    )
    quantizer = LinearQuantizer(copy.deepcopy(step), config)
    prepared = _float_softmax_outputs(quantizer.prepare(example_inputs=example))
    # Post-training calibration: observers only (fake quantization off, as in PTQ): simulating the
    # quantization on every pass would cost ~2x the time and change the ranges little.
    # The weights' observers need one pass (weights do not change).
    prepared.apply(torch.ao.quantization.disable_fake_quant)
    with torch.no_grad(), _single_thread():
        for i, inputs in enumerate(calibration.step_inputs):
            prepared(*inputs)
            if i == 0:
                for module in prepared.modules():
                    if getattr(module, "weight_fake_quant", None) is not None:
                        module.weight_fake_quant.apply(torch.ao.quantization.disable_observer)
    prepared.apply(torch.ao.quantization.enable_fake_quant)
    prepared.eval()
    reference = _convert_to_reference_decomposed_fx(
        prepared, qconfig_mapping=quantizer._qconfig_mapping, backend_config=get_backend_config()
    )
    swapped = 0
    for name, module in list(reference.named_modules()):
        if isinstance(module, ReferenceLinear):
            parent_name, _, child = name.rpartition(".")
            parent = reference.get_submodule(parent_name) if parent_name else reference
            setattr(parent, child, _Int8Linear(module))
            swapped += 1
    if swapped == 0:
        raise RuntimeError("LinearQuantizer quantized no Linear layer")
    return reference.eval()


# --- metadata, names, saving ----------------------------------------------------------------------


# --- recipes: how each variant of core/variants.py is built ------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How the step of a Core ML variant is made: an optional pass on the torch module before export
    (activation quantization calibrated on real speech), an optional compression pass on the converted
    fp16 program, the MIL ops that prove the pass ran, and a note for the manifest."""

    adds_ops: frozenset[str] = frozenset()
    before_export: Callable[[DeployStep, tuple[torch.Tensor, ...], CalibrationSet], nn.Module] | None = None
    after_convert: Callable[[Any], Any] | None = None
    note: str = ""


_WEIGHTS_ONLY = "compressed: the 12 Linear weight matrices; biases, LayerNorm and attention constants fp16"
RECIPES: dict[str, Recipe] = {
    "fp16": Recipe(),
    "int8_weights": Recipe(frozenset({"constexpr_affine_dequantize"}), after_convert=_int8_weights, note=_WEIGHTS_ONLY),
    "palettize6": Recipe(frozenset({"constexpr_lut_to_dense"}), after_convert=_palettize(6), note=_WEIGHTS_ONLY),
    "palettize4": Recipe(frozenset({"constexpr_lut_to_dense"}), after_convert=_palettize(4), note=_WEIGHTS_ONLY),
    "w8a8": Recipe(frozenset({"quantize", "dequantize", "constexpr_affine_dequantize"}), before_export=_quantize_w8a8,
                   note="8-bit: Linear weights (per channel), activations and the attention constants (per tensor)"),
}  # fmt: skip


def _package_version() -> str:
    try:
        return importlib.metadata.version("a2bs")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _target_name(target: Any) -> str:
    return target.name


def _common_metadata(ckpt: Checkpoint, role: str, variant: str, target: Any, compute: str) -> dict[str, str]:
    cfg = ckpt.model.config
    return {
        "role": role,
        "variant": variant,
        "blendshapes": json.dumps(list(ARKIT_BLENDSHAPES)),
        "fps": str(cfg.fps),
        "context_frames": str(cfg.context_frames),
        "lookahead_frames": str(cfg.lookahead_frames),
        "sample_rate": str(SAMPLE_RATE),
        "n_fft": str(N_FFT),
        "n_mels": str(N_MELS),
        "fmin": str(FMIN),
        "fmax": str(FMAX),
        "log_eps": str(LOG_EPS),
        "minimum_deployment_target": _target_name(target),
        "compute_precision": compute,
        "io_dtype": "float32",
        "trained": str(ckpt.trained).lower(),
    }


def _reserved_keys() -> frozenset[str]:
    keys = {"role", "variant", "blendshapes", "fps", "context_frames", "lookahead_frames", "sample_rate"}
    keys |= {"n_fft", "n_mels", "fmin", "fmax", "log_eps", "minimum_deployment_target", "compute_precision"}
    keys |= {"io_dtype", "trained", "front_end_fingerprint"}
    return frozenset(keys)


def _check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ValueError(f"metadata keys and values must be strings: {bad!r}")
    clash = sorted(set(metadata) & _reserved_keys())
    if clash:
        raise ValueError(f"metadata keys {clash} are set by the converter and cannot be overridden")
    return dict(metadata)


def _set_metadata(mlmodel: Any, ckpt: Checkpoint, role: str, variant: str, target: Any, extra: dict[str, str]) -> None:
    step = role == "step"
    mlmodel.author = "a2bs"
    mlmodel.license = "Apache-2.0"
    mlmodel.version = _package_version()
    if step:
        mlmodel.short_description = (
            f"a2bs speech -> 52 ARKit blendshapes, one frame per call at {ckpt.fps} fps "
            f"({variant}: {find_variant('ios', variant).description})"
        )
    else:
        mlmodel.short_description = "a2bs mel front end: 1024 PCM samples (16 kHz) -> 80 normalized log-mel values"
    descriptions = STEP_DESCRIPTIONS if step else FRONT_END_DESCRIPTIONS
    history = ", ".join(mel_history_names(ckpt.model.config))
    for name in STEP_INPUTS if step else FRONT_END_INPUTS:
        mlmodel.input_description[name] = descriptions[name].format(history=history)
    for name in STEP_OUTPUTS if step else FRONT_END_OUTPUTS:
        mlmodel.output_description[name] = descriptions[name]
    compute = "float16" if step else "float32"
    mlmodel.user_defined_metadata.update(_common_metadata(ckpt, role, variant, target, compute))
    mlmodel.user_defined_metadata.update(extra)


def _check_names(mlmodel: Any, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
    desc = mlmodel.get_spec().description
    got_in = tuple(f.name for f in desc.input)
    got_out = tuple(f.name for f in desc.output)
    if got_in != tuple(inputs) or got_out != tuple(outputs):
        raise RuntimeError(f"feature names {got_in} -> {got_out}, expected {tuple(inputs)} -> {tuple(outputs)}")


def front_end_fingerprint(ckpt: Checkpoint) -> str:
    """sha256 of everything the front end computes with (DFT and mel matrices, mel statistics)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(ckpt.model.front_end.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_existing_front_end(path: Path, fingerprint: str) -> None:
    try:
        found = dict(ct.utils.load_spec(str(path)).description.metadata.userDefined).get("front_end_fingerprint")
    except Exception as exc:  # a broken package is a conflict too: do not reuse or overwrite it
        raise ConversionError("save", f"{path} exists but cannot be read ({exc}): remove it") from exc
    if found != fingerprint:
        raise ConversionError(
            "save", f"{path} exists and was built from another checkpoint (mel statistics differ): not overwritten"
        )


def _save_atomically(models: list[tuple[Any, Path]], out_dir: Path) -> None:
    """Save every package into a temp folder inside `out_dir`, then rename each into place."""
    with _stage("save"):
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".a2bs-coreml-", dir=out_dir))
        try:
            for mlmodel, target in models:
                mlmodel.save(str(tmp / target.name))
            for _, target in models:
                if target.exists():
                    raise ConversionError("save", f"{target} appeared during the conversion: not overwritten")
                os.rename(tmp / target.name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


_OPERATOR_PATTERNS = (
    re.compile(r"\b((?:aten|quantized_decomposed|prims|quantized)(?:::|\.)\w+)"),
    re.compile(r"[Uu]nsupported (?:fx node|op(?:erator)?|node)\s*[:'\"`]?\s*(\w+)"),
    re.compile(r"\bop(?:erator)?\s+['\"`](\w+)['\"`]"),
    re.compile(r"PyTorch convert function for op '(\w+)'"),
)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 600:
        text = text[:600] + "..."
    message = f"{type(exc).__name__}: {text}"
    for pattern in _OPERATOR_PATTERNS:
        match = pattern.search(str(exc))
        if match:
            return f"operator {match.group(1)}: {message}"
    return message


@contextmanager
def _stage(stage: str) -> Iterator[None]:
    """Run one stage: failures become ConversionError(stage, ...); the libraries' warnings about their
    own internals (coremltools calling its deprecated op registry, torch.ao's deprecation, torch's
    pytree) are dropped -- nothing a user of the converter can act on, printed dozens of times."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(coremltools|torch)(\.|$)")
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec")
            yield
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(stage, _describe(exc)) from exc
