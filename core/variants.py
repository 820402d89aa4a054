"""Every model variant a bundle can hold, in one table (torch-free).

A variant is one precision recipe of the step model for one platform. Its row says which deployment
target it needs, which precision class judges its parity (limits with their reasons) and how close its
decompressed weights must stay to the float ones. The converters hold one recipe per variant name
(`RECIPES`, checked against this table), core/parity.py and the validation harness read the limits from
here, the tests are parametrized over the table, and `docs/VALIDATION.md`'s variant tables are generated
from it (`benchmarks/docs_tables.py`). Adding a variant is one row here plus its recipe in the converter.
"""

from __future__ import annotations

from dataclasses import dataclass

PLATFORMS = ("ios", "android")
# The android variants that get an offline model (`a2bs-convert android --offline`): the float ones. With int8
# activations a call's quantization ranges depend on the frames it holds, so its frames could not equal the step's.
OFFLINE_VARIANTS = ("fp32", "fp16")


@dataclass(frozen=True)
class ParityLimits:
    """Gates for end-to-end blendshapes of one precision class, each relative to how much the reference
    moves, and why. `mae` is the error in units of each shape's spread (std) of the reference, `max_abs`
    the worst error in units of that shape's range, `psnr_db` uses the reference's own range as the peak,
    `min_correlation` is over the shapes that move."""

    mae: float
    max_abs: float
    psnr_db: float
    min_correlation: float
    reason: str


PARITY_LIMITS: dict[str, ParityLimits] = {
    "fp32": ParityLimits(1e-4, 1e-3, 80.0, 0.99999, "same arithmetic as PyTorch; only summation order differs"),
    "fp16": ParityLimits(0.01, 0.05, 50.0, 0.9995, "fp16 weights/compute: ~3 significant digits per op"),
    "int8": ParityLimits(
        0.02, 0.1, 45.0, 0.999, "int8 per-channel weights (activations float or dynamically quantized)"
    ),
    "palettized": ParityLimits(0.1, 0.3, 35.0, 0.99, "4-6 bit weight look-up tables: coarser weights"),
    "activation_int8": ParityLimits(
        0.4, 0.7, 26.0, 0.95, "int8 weights and int8 activations (static calibration): the coarsest variant"
    ),
}
# Mel frames (normalized log-mel, roughly unit variance) from the fp32 front end: absolute MAE and max.
FRONT_END_LIMITS = ParityLimits(1e-4, 1e-2, 80.0, 0.9999, "fp32 DFT + mel matrices; log amplifies near-silence")


@dataclass(frozen=True)
class Variant:
    name: str
    platform: str  # ios | android
    precision_class: str  # the key of PARITY_LIMITS that judges its end-to-end parity
    deployment_target: str  # the oldest OS / runtime that runs it
    precision: str  # what is stored and computed in which precision (goes into the manifest)
    description: str
    # Relative RMS error ||W_decompressed - W|| / ||W|| allowed for each compressed weight matrix, and why
    # (None: weights are stored as float, nothing to decompress).
    weight_limit: tuple[float, str] | None = None
    calibrated: bool = False  # built with activation ranges from real-speech calibration
    default: bool = False  # the platform's default variant

    @property
    def limits(self) -> ParityLimits:
        return PARITY_LIMITS[self.precision_class]


_INT8_WEIGHTS = (0.01, "8-bit per-channel: step/2 ~ 0.2% of each channel's range")
_CALIBRATED_INT8 = (0.02, "8-bit weights with calibrated (w8a8: per-tensor) scales")
_ANDROID_TARGET = "LiteRT 1.4 (Android 11, API 30)"

VARIANTS: tuple[Variant, ...] = (
    Variant("fp16", "ios", "fp16", "iOS16",
            "fp16 weights, fp16 compute, fp32 inputs/outputs",
            "fp16 weights and compute (the reference CoreML artifact)", default=True),
    Variant("int8", "ios", "int8", "iOS16",
            "int8 per-channel weights (Linear layers), fp16 compute, fp32 inputs/outputs",
            "int8 weights, linear symmetric per output channel (weight-only), fp16 compute",
            weight_limit=_INT8_WEIGHTS),
    Variant("palettize6", "ios", "palettized", "iOS16",
            "6-bit k-means LUT weights (Linear layers), fp16 compute, fp32 inputs/outputs",
            "6-bit k-means palettized weights (64-entry LUT per weight matrix), fp16 compute",
            weight_limit=(0.04, "64-entry k-means table per tensor")),
    Variant("palettize4", "ios", "palettized", "iOS16",
            "4-bit k-means LUT weights (Linear layers), fp16 compute, fp32 inputs/outputs",
            "4-bit k-means palettized weights (16-entry LUT per weight matrix), fp16 compute",
            weight_limit=(0.15, "16-entry k-means table per tensor")),
    Variant("w8a8", "ios", "activation_int8", "iOS17",
            "int8 per-channel weights, 8-bit activations, fp16 compute, fp32 inputs/outputs",
            "int8 per-channel weights + 8-bit activations calibrated on real speech (iOS17), fp16 compute",
            weight_limit=_CALIBRATED_INT8, calibrated=True),
    Variant("fp32", "android", "fp32", _ANDROID_TARGET,
            "fp32 weights, fp32 compute",
            "float32 weights and compute: the reference (XNNPACK CPU, or the GPU delegate)"),
    Variant("fp16", "android", "fp16", _ANDROID_TARGET,
            "fp16 weights (FULLY_CONNECTED), fp32 compute on CPU / fp16 on GPU; fp32 I/O",
            "float16 weights, float32 I/O: half the size; CPU dequantizes weights at load, the GPU delegate "
            "computes in fp16"),
    Variant("dynamic_int8", "android", "int8", _ANDROID_TARGET,
            "int8 weights (FULLY_CONNECTED), activations quantized at run time; fp32 I/O",
            "dynamic-range int8: int8 per-channel FULLY_CONNECTED weights, activations quantized on the fly "
            "by the CPU kernels; attention BATCH_MATMULs stay float; float32 I/O (default: fastest on XNNPACK)",
            weight_limit=_INT8_WEIGHTS, default=True),
    Variant("full_int8", "android", "activation_int8", _ANDROID_TARGET,
            "int8 weights and activations (calibrated); fp32 I/O via QUANTIZE/DEQUANTIZE",
            "full-integer int8 weights and activations calibrated on real speech, for Hexagon DSP/NPU "
            "delegates; float32 I/O kept for app simplicity (QUANTIZE/DEQUANTIZE at the edges)",
            weight_limit=_CALIBRATED_INT8, calibrated=True),
)  # fmt: skip


def platform_variants(platform: str) -> dict[str, Variant]:
    """name -> row for one platform, in table order."""
    return {v.name: v for v in VARIANTS if v.platform == platform}


def default_variant(platform: str) -> str:
    (name,) = [v.name for v in VARIANTS if v.platform == platform and v.default]
    return name


def find_variant(platform: str, name: str) -> Variant:
    """The row of `name` on `platform`; ValueError naming the choices for an unknown one."""
    variants = platform_variants(platform)
    if name not in variants:
        raise ValueError(f"unknown {platform} variant {name!r}: use one of {', '.join(variants)}")
    return variants[name]
