"""Negative controls of the CI gate: bundles that must FAIL `a2bs validate`, each caught by a named check.

Each control is derived from a bundle of the TRAINED default (built once per session) by editing one
model file, or the manifest, the way a converter bug would, then re-recording the manifest's sha256 and
sizes: integrity, manifest and size checks pass, so only the parity checks can catch it. A control that
passed validation would prove the gate blind to that fault. docs/VALIDATION.md lists which check catches
which control.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from a2bs.convert.bundle import sha256, size_bytes
from a2bs.core.audio import bundled_audio_dir
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.deploy import DeployStep
from a2bs.core.parity import ACTIVE_STD
from a2bs.mobile_validation import parity as P
from a2bs.mobile_validation import validate as V

END_TO_END = ("parity", "end-to-end blendshapes")
WEIGHTS = ("parity", "decompressed weights")
STRICT_KINDS = {"integrity", "manifest", "size"}  # a control must pass these: only parity may catch it


@pytest.fixture(scope="module")
def reference30(trained30: Checkpoint) -> np.ndarray:
    """The trained model's offline output on the bundled clips, as the harness computes it."""
    clips = P._prepare_clips(trained30, sorted(bundled_audio_dir().glob("*.wav")))
    return np.concatenate([c.reference for c in clips])


def _only(bundle: Path, out: Path, variant: str) -> tuple[Path, dict]:
    """A copy of `bundle` holding the front end and one step variant (the default), manifest to match."""
    shutil.copytree(bundle, out, ignore=shutil.ignore_patterns("report.*", "validation_plots"))
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in [e for e in manifest["files"] if e["role"] == "step" and e["variant"] != variant]:
        path = out / entry["path"]
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        manifest["files"].remove(entry)
    manifest["default_variant"] = variant
    manifest.pop("validation", None)
    return out, manifest


def _seal(bundle: Path, manifest: dict) -> Path:
    """Re-record every file's sha256 and size, as a converter that believed its output would."""
    for entry in manifest["files"]:
        entry["sha256"], entry["bytes"] = sha256(bundle / entry["path"]), size_bytes(bundle / entry["path"])
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return bundle


def _replace_once(data: bytes, old: np.ndarray, new: np.ndarray) -> bytes:
    """Overwrite the one place a tensor's bytes sit in a model file with same-sized new values."""
    old_bytes, new_bytes = np.ascontiguousarray(old).tobytes(), np.ascontiguousarray(new, old.dtype).tobytes()
    assert len(old_bytes) == len(new_bytes) and data.count(old_bytes) == 1, "tensor not found once in the file"
    at = data.index(old_bytes)
    return data[:at] + new_bytes + data[at + len(old_bytes) :]


def _edit_tflite(bundle: Path, manifest: dict, edit: Callable[[bytes], bytes]) -> Path:
    (step,) = [e for e in manifest["files"] if e["role"] == "step"]
    path = bundle / step["path"]
    path.write_bytes(edit(path.read_bytes()))
    return _seal(bundle, manifest)


def _decoder(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The step's output layer (52 x hidden weights, 52 biases) as stored (float32) in the TFLite file."""
    step = DeployStep(ckpt.model)
    return step.decoder_weight.numpy().astype(np.float32), step.decoder_bias.numpy().astype(np.float32)


def _validate(bundle: Path, ckpt: Checkpoint) -> V.Report:
    return V.validate_bundle(bundle, latency=False, reference=ckpt)


def _assert_caught(report: V.Report, expected: set[tuple[str, str]]) -> None:
    failed = {(c.kind, c.name) for c in report.failures()}
    reasons = [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in report.failures()]
    assert not report.passed, "the negative control PASSED validation: the gate is blind to it"
    assert expected <= failed, reasons
    assert not {k for k, _ in failed} & STRICT_KINDS, f"caught by a non-parity check, not by parity: {reasons}"
    assert all(c.runtime != "not run" for c in report.failures()), f"a check did not run: {reasons}"


# --- Android: edits of the trained dynamic_int8 (default) step ----------------------------------------


def test_control_ignores_the_audio(
    trained_android_bundle: Path, trained30: Checkpoint, reference30: np.ndarray, tmp_path: Path
) -> None:
    """The output layer's weights zeroed, its biases set so every frame is the reference's mean."""
    bundle, manifest = _only(trained_android_bundle, tmp_path / "b", "dynamic_int8")
    weight, bias = _decoder(trained30)
    mean = np.clip(reference30.mean(axis=0), 1e-4, 1 - 1e-4)
    logit = np.log(mean / (1 - mean)).astype(np.float32)
    still = np.zeros_like(weight)
    _edit_tflite(bundle, manifest, lambda d: _replace_once(_replace_once(d, weight, still), bias, logit))
    report = _validate(bundle, trained30)
    _assert_caught(report, {END_TO_END})
    (check,) = [c for c in report.failures() if (c.kind, c.name) == END_TO_END]
    assert check.details["rel_mae"] > 0.3 and check.details["min_correlation"] < 0.5, check.reason


def test_control_weights_shuffled_in_one_layer(
    trained_android_bundle: Path, trained30: Checkpoint, tmp_path: Path
) -> None:
    """One int8 FULLY_CONNECTED matrix's values permuted in place (same values, wrong places)."""
    bundle, manifest = _only(trained_android_bundle, tmp_path / "b", "dynamic_int8")
    step_path = bundle / next(e["path"] for e in manifest["files"] if e["role"] == "step")
    matrix = max(_int8_matrices(step_path).values(), key=lambda m: m.size)  # the largest layer
    shuffled = np.random.default_rng(0).permutation(matrix.reshape(-1)).reshape(matrix.shape)
    _edit_tflite(bundle, manifest, lambda d: _replace_once(d, matrix, shuffled))
    _assert_caught(_validate(bundle, trained30), {END_TO_END, WEIGHTS})


def _int8_matrices(path: Path) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    weights = {op["inputs"][1] for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"}
    return {
        d["name"]: interpreter.get_tensor(d["index"])
        for d in interpreter.get_tensor_details()
        if d["index"] in weights and d["dtype"] == np.int8 and len(d["shape"]) == 2
    }


def _least_alike_moving_pair(reference: np.ndarray) -> tuple[int, int]:
    """Two shapes that both move and resemble each other least (a swap of near twins could hide)."""
    moving = np.flatnonzero(reference.std(axis=0) >= 2 * ACTIVE_STD)
    corr = np.corrcoef(reference[:, moving].T)
    i, j = np.unravel_index(np.argmin(corr), corr.shape)
    return int(moving[i]), int(moving[j])


def test_control_two_outputs_swapped(
    trained_android_bundle: Path, trained30: Checkpoint, reference30: np.ndarray, tmp_path: Path
) -> None:
    """Two blendshape outputs exchanged (their rows of the output layer): every other shape is exact."""
    bundle, manifest = _only(trained_android_bundle, tmp_path / "b", "dynamic_int8")
    i, j = _least_alike_moving_pair(reference30)
    weight, bias = _decoder(trained30)
    order = np.arange(len(bias))
    order[[i, j]] = order[[j, i]]
    _edit_tflite(bundle, manifest, lambda d: _replace_once(_replace_once(d, weight, weight[order]), bias, bias[order]))
    report = _validate(bundle, trained30)
    _assert_caught(report, {END_TO_END})
    (check,) = [c for c in report.failures() if (c.kind, c.name) == END_TO_END]
    assert {ARKIT_BLENDSHAPES[i], ARKIT_BLENDSHAPES[j]} & {w["shape"] for w in check.details["worst_frames"]}


def test_control_output_one_frame_late(trained_android_bundle: Path, trained30: Checkpoint, tmp_path: Path) -> None:
    """The manifest tells the app one look-ahead frame fewer: every output frame comes one frame late."""
    bundle, manifest = _only(trained_android_bundle, tmp_path / "b", "dynamic_int8")
    timeline = manifest["timeline"]
    assert timeline["lookahead_frames"] >= 1
    timeline["lookahead_frames"] -= 1
    timeline["latency_ms"] = round(1000 * timeline["lookahead_frames"] / manifest["fps"] + 32, 1)  # consistent
    report = _validate(_seal(bundle, manifest), trained30)
    _assert_caught(report, {END_TO_END})


def test_control_nan_in_one_shape(trained_android_bundle: Path, trained30: Checkpoint, tmp_path: Path) -> None:
    bundle, manifest = _only(trained_android_bundle, tmp_path / "b", "dynamic_int8")
    _, bias = _decoder(trained30)
    broken = bias.copy()
    broken[ARKIT_BLENDSHAPES.index("jawOpen")] = np.nan
    _edit_tflite(bundle, manifest, lambda d: _replace_once(d, bias, broken))
    report = _validate(bundle, trained30)
    _assert_caught(report, {END_TO_END})
    (check,) = [c for c in report.failures() if (c.kind, c.name) == END_TO_END]
    assert "NaN" in check.reason


# --- iOS: a quantization recipe with a deliberately coarse codebook --------------------------------


def test_control_coarse_codebook(trained_ios_bundle: Path, trained30: Checkpoint, tmp_path: Path) -> None:
    """The fp16 step palettized with a 2-entry (1-bit) k-means table, shipped as `palettize4`."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from a2bs.convert.coreml import _linear_weights_config, _palettize_config

    bundle, manifest = _only(trained_ios_bundle, tmp_path / "b", "palettize4")
    (entry,) = [e for e in manifest["files"] if e["role"] == "step"]
    fp16 = ct.models.MLModel(str(trained_ios_bundle / "a2bs_step_fp16.mlpackage"), skip_model_load=True)
    coarse = cto.palettize_weights(fp16, _linear_weights_config(_palettize_config(1)))
    shutil.rmtree(bundle / entry["path"])
    coarse.save(str(bundle / entry["path"]))
    _assert_caught(_validate(_seal(bundle, manifest), trained30), {END_TO_END, WEIGHTS})
