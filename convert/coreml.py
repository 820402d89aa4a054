"""Core ML converter: the deploy-time step and the mel front end as ML programs (`.mlpackage`) for iPhone.

`torch.export` then `ct.convert(..., convert_to="mlprogram")` (fp16 compute for the step, fp32 for the
front end), then the compression pass of the variant's `Recipe` (core/variants.py names the variants).
Inputs and outputs are float32 in every variant, one I/O contract with the LiteRT artifacts. Every
package is checked against PyTorch in the NumPy MIL executor before it is moved into the bundle. Why
these recipes and deployment targets, with the measurements: docs/DECISIONS.md ("Core ML converter").
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2bs.convert.common import (
    CHECK_FRAMES,
    ArtifactFile,
    CalibrationSet,
    ConversionError,
    Recipe,
    SelfCheck,
    calibration_set,
    check_targets,
    front_end_check_inputs,
    recipes_for,
    save_atomically,
    stage,
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
from a2bs.core.parity import FRONT_END_ATOL, abs_errors, compressed_problem, float_excess
from a2bs.core.progress import Progress
from a2bs.core.variants import default_variant, find_variant, platform_variants
from a2bs.runtime.coreml_package import ct, program_ops

COREML_VARIANTS = platform_variants("ios")  # name -> row of core/variants.py
DEFAULT_COREML_VARIANT = default_variant("ios")
MINIMUM_DEPLOYMENT_TARGET = ct.target.iOS16  # the bundle floor (docs/DECISIONS.md)
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
    progress: Progress | None = None,
    overwrite: bool = False,
) -> list[ArtifactFile]:
    """Write `<out_dir>/a2bs_step_<variant>.mlpackage` and the bundle's fp32 front end
    `a2bs_front_end.mlpackage` (the `Converter` contract of convert/common.py). Both carry the
    checkpoint's name in their metadata; the front end also the fingerprint of its mel statistics,
    which decides whether a later call may reuse it. The packages are checked in the NumPy MIL executor
    on real speech (core/parity.py's gross-failure limits) before they are moved into `out_dir`."""
    row = find_variant("ios", variant)  # ValueError for an unknown one
    recipe = RECIPES[variant]
    target = getattr(ct.target, row.deployment_target)
    extra = {"checkpoint": ckpt.name}
    report: Progress = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    step_path = out_dir / step_package_name(variant)
    front_path = out_dir / FRONT_END_PACKAGE
    fingerprint = front_end_fingerprint(ckpt)
    reuse_front = check_targets(step_path, front_path, overwrite, lambda p: _front_end_matches(p, fingerprint))
    if calibration is None:
        report(f"coreml {variant}: calibration data (real speech)")
        calibration = calibration_set(ckpt)

    step_model = _convert_step(ckpt, variant, calibration, report)
    _set_metadata(step_model, ckpt, "step", variant, target, extra)
    writers = {step_path: lambda path: step_model.save(str(path))}
    if not reuse_front:
        front_model = _convert_front_end(ckpt, report)
        _set_metadata(front_model, ckpt, "front_end", "fp32", FRONT_END_DEPLOYMENT_TARGET, extra)
        front_model.user_defined_metadata["front_end_fingerprint"] = fingerprint
        writers[front_path] = lambda path: front_model.save(str(path))
    checks: dict[Path, SelfCheck] = {}

    def verify(staged: dict[Path, Path]) -> None:
        report(f"coreml {variant}: verify")
        check_stage = "convert" if recipe == Recipe() else f"quantize:{variant}"
        checks[step_path] = _check_step(staged[step_path], ckpt, calibration, check_stage)
        if front_path in staged:
            front_check = _check_front_end(staged[front_path], ckpt, calibration)
            if front_check is not None:
                checks[front_path] = front_check

    report(f"coreml {variant}: save")
    save_atomically(out_dir, writers, overwrite=overwrite, verify=verify)
    notes = [
        f"minimum deployment target {target.name}",
        f"{size_bytes(step_path) / 1e6:.2f} MB",
        row.description,
        *([recipe.note] if recipe.note else []),
    ]
    return [
        ArtifactFile(Path(step_path.name), "step", variant, row.precision, notes, check=checks.get(step_path)),
        ArtifactFile(
            Path(FRONT_END_PACKAGE),
            "front_end",
            "fp32",
            "fp32 weights, fp32 compute, fp32 inputs/outputs",
            [f"minimum deployment target {FRONT_END_DEPLOYMENT_TARGET.name}", f"{size_bytes(front_path) / 1e6:.2f} MB"],
            check=checks.get(front_path),
        ),
    ]


def _convert_step(ckpt: Checkpoint, variant: str, calibration: CalibrationSet, report: Progress) -> Any:
    row = find_variant("ios", variant)
    recipe = RECIPES[variant]
    step = DeployStep(ckpt.model).eval()
    example = step.example_inputs()
    module: nn.Module = step
    if recipe.before_export is not None:
        with _stage(f"quantize:{variant}"):
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
    """Compress only the weights of `linear` ops (why: docs/DECISIONS.md, "Core ML converter")."""
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
        is_softmax = (
            isinstance(source, torch.fx.Node)
            and source.op == "call_function"
            and source.target in (torch.softmax, F.softmax)
        )
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


# --- recipes: how each variant of core/variants.py is built ------------------------------------

_WEIGHTS_ONLY = "compressed: the 12 Linear weight matrices; biases, LayerNorm and attention constants fp16"
_INT8 = frozenset({"constexpr_affine_dequantize"})  # the MIL ops that prove each compression pass ran
_LUT = frozenset({"constexpr_lut_to_dense"})
RECIPES: dict[str, Recipe] = recipes_for(
    "ios",
    {
        "fp16": Recipe(),
        "int8": Recipe(after_convert=_int8_weights, adds_ops=_INT8, note=_WEIGHTS_ONLY),
        "palettize6": Recipe(after_convert=_palettize(6), adds_ops=_LUT, note=_WEIGHTS_ONLY),
        "palettize4": Recipe(after_convert=_palettize(4), adds_ops=_LUT, note=_WEIGHTS_ONLY),
        "w8a8": Recipe(
            before_export=_quantize_w8a8,
            adds_ops=_INT8 | {"quantize", "dequantize"},
            note="8-bit: Linear weights (per channel), activations and the attention constants (per tensor)",
        ),
    },
)


# --- metadata, names, checks -----------------------------------------------------------------------


def _package_version() -> str:
    try:
        return importlib.metadata.version("a2bs")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


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
        "minimum_deployment_target": target.name,
        "compute_precision": compute,
        "io_dtype": "float32",
        "trained": str(ckpt.trained).lower(),
    }


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


def _front_end_matches(path: Path, fingerprint: str) -> bool:
    """True if the package at `path` was built from the same mel statistics (its fingerprint metadata)."""
    try:
        found = dict(ct.utils.load_spec(str(path)).description.metadata.userDefined).get("front_end_fingerprint")
    except Exception as exc:  # a broken package is a conflict too: do not reuse or overwrite it
        raise ConversionError("save", f"{path} exists but cannot be read ({exc}): remove it") from exc
    return found == fingerprint


@torch.no_grad()
def _check_step(path: Path, ckpt: Checkpoint, calibration: CalibrationSet, check_stage: str) -> SelfCheck:
    """Run the staged step in the NumPy MIL executor on real speech; refuse a gross failure."""
    from a2bs.runtime.mil_executor import MILExecutor

    reference = DeployStep(ckpt.model).eval()
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in STEP_OUTPUTS}
    with _stage(check_stage, "the NumPy MIL executor cannot run the model"):
        runner = MILExecutor(path)
        for inputs in calibration.step_inputs[:CHECK_FRAMES]:
            got = runner(**{name: x.numpy() for name, x in zip(STEP_INPUTS, inputs, strict=True)})
            for name, expected in zip(STEP_OUTPUTS, reference(*inputs), strict=True):
                pairs[name].append((expected.numpy(), got[name]))
    if not pairs[STEP_OUTPUTS[0]]:
        raise ConversionError(check_stage, "the calibration set has no step inputs to check the model on")
    problem = compressed_problem(pairs[STEP_OUTPUTS[1]])
    if problem:
        raise ConversionError(check_stage, problem)
    mae, worst = abs_errors(pairs[STEP_OUTPUTS[0]])
    compute = "fp16" if runner.fp16_compute else "fp32"
    return SelfCheck(STEP_OUTPUTS[0], mae, worst, len(pairs[STEP_OUTPUTS[0]]), f"{_EXECUTOR}, {compute} compute")


@torch.no_grad()
def _check_front_end(path: Path, ckpt: Checkpoint, calibration: CalibrationSet) -> SelfCheck | None:
    """Run the staged front end in the NumPy MIL executor: an fp32 program matches PyTorch to round-off.
    Returns its figures on real speech (None when the calibration set holds no PCM windows)."""
    from a2bs.runtime.mil_executor import MILExecutor

    reference = DeployFrontEnd(ckpt.model).eval()
    inputs = front_end_check_inputs(reference, calibration)
    with _stage("convert", "the NumPy MIL executor cannot run the front end"):
        runner = MILExecutor(path)
        pairs = [
            (reference(pcm).numpy(), runner(**{FRONT_END_INPUTS[0]: pcm.numpy()})[FRONT_END_OUTPUTS[0]])
            for (pcm,) in inputs
        ]
    worst = float_excess(pairs, FRONT_END_ATOL)
    if worst is not None:
        raise ConversionError(
            "convert",
            f"front end: the fp32 Core ML program differs from PyTorch by {worst:.3g} (limit {FRONT_END_ATOL:g}): "
            "a converter miscompile, not round-off",
        )
    real = pairs[2:]  # the first two inputs are synthetic
    if not real:
        return None
    mae, worst_real = abs_errors(real)
    compute = "fp16" if runner.fp16_compute else "fp32"
    return SelfCheck(FRONT_END_OUTPUTS[0], mae, worst_real, len(real), f"{_EXECUTOR}, {compute} compute")


_EXECUTOR = "NumPy MIL executor"


@contextmanager
def _stage(name: str, what: str = "") -> Iterator[None]:
    """Run one stage (common.stage: failures become ConversionError(name, ...)), dropping the libraries'
    warnings about their own internals (coremltools calling its deprecated op registry, torch.ao's
    deprecation, torch's pytree): nothing a user of the converter can act on, printed dozens of times."""
    with stage(name, what), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(coremltools|torch)(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec")
        yield
