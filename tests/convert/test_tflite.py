"""TFLite converter: every variant runs in the real LiteRT interpreter and matches the PyTorch reference.

The conversions use the TRAINED default checkpoints (their outputs move; an untrained model's sit near
0.12, so a model that outputs a constant would match it). Each parity test bounds the error absolutely
and *relative to how much the reference moves* (its deviation from its mean), and checks
`context_frame`, whose errors feed the attention context of later frames.
Parity is measured on 32 held-out real-speech frames; full_int8 is calibrated on 64 other frames of the
same calibration_set call (one call: its cost is a forward pass over the bundled clips, whatever n_frames).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import bundled_speech

from a2bs.convert import tflite
from a2bs.convert.common import CalibrationSet, ConversionError, calibration_set
from a2bs.convert.tflite import (
    DEFAULT_TFLITE_VARIANT,
    FRONT_END_FILE,
    TFLITE_VARIANTS,
    TFLiteRunner,
    _convert_module,
    convert_tflite,
    step_file_name,
)
from a2bs.core.audio import frame_centers, gather_windows, load_audio
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.deploy import (
    FRONT_END_INPUTS,
    FRONT_END_OUTPUTS,
    STEP_INPUTS,
    STEP_OUTPUTS,
    DeployFrontEnd,
    DeployStep,
    initial_state,
)
from a2bs.core.emotion import emotion_features_at
from a2bs.core.inference import infer_array
from a2bs.core.parity import parity_metrics
from a2bs.core.variants import PARITY_LIMITS

VARIANTS = list(TFLITE_VARIANTS)
# (blendshapes MAE, blendshapes MAE / reference frame-to-frame deviation, context_frame MAE / mean |context|)
LIMITS = {
    "fp32": (1e-5, 1e-3, 1e-5),
    "fp16": (1e-3, 0.01, 1e-3),
    "dynamic_int8": (0.02, 0.1, 0.03),
    "full_int8": (0.02, 0.4, 0.1),
}
MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def _frames30(trained30: Checkpoint) -> CalibrationSet:
    return calibration_set(trained30, n_frames=96)


@pytest.fixture(scope="module")
def calibration30(_frames30: CalibrationSet) -> CalibrationSet:
    """64 real-speech frames (2 of every 3) to calibrate full_int8, as the bundle builder's default."""
    keep = [i for i in range(len(_frames30.step_inputs)) if i % 3 != 1]
    return CalibrationSet([_frames30.step_inputs[i] for i in keep], [_frames30.front_end_inputs[i] for i in keep])


@pytest.fixture(scope="module")
def held_out30(_frames30: CalibrationSet) -> CalibrationSet:
    """The other 32 frames (1 of every 3): parity is measured on frames the calibration never saw."""
    return CalibrationSet(_frames30.step_inputs[1::3], _frames30.front_end_inputs[1::3])


@pytest.fixture(scope="module")
def bundle30(trained30: Checkpoint, calibration30: CalibrationSet, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """All four variants converted once into one folder, as the bundle builder does."""
    out = tmp_path_factory.mktemp("tflite30")
    records, messages = {}, []
    for variant in VARIANTS:
        records[variant] = convert_tflite(trained30, variant, out, calibration=calibration30, progress=messages.append)
    return {"out": out, "records": records, "messages": messages}


@pytest.fixture(scope="module")
def reference30(trained30: Checkpoint, held_out30: CalibrationSet) -> list[list[np.ndarray]]:
    step = DeployStep(trained30.model).eval()
    with torch.no_grad():
        return [[t.numpy() for t in step(*inputs)] for inputs in held_out30.step_inputs]


def _feeds(names, tensors) -> dict[str, np.ndarray]:
    return {n: t.numpy() for n, t in zip(names, tensors, strict=True)}


def test_variants_and_default() -> None:
    assert set(TFLITE_VARIANTS) == {"fp32", "fp16", "dynamic_int8", "full_int8"}
    assert DEFAULT_TFLITE_VARIANT in TFLITE_VARIANTS
    assert all(row.description for row in TFLITE_VARIANTS.values())
    assert list(tflite.RECIPES) == list(TFLITE_VARIANTS)  # one recipe per variant, keyed by its name


def test_records_files_and_progress(bundle30: dict) -> None:
    out = bundle30["out"]
    for variant, records in bundle30["records"].items():
        step, front = records
        assert (step.path, step.role, step.variant) == (Path(step_file_name(variant)), "step", variant)
        assert (front.path, front.role, front.variant) == (Path(FRONT_END_FILE), "front_end", "fp32")
        assert not step.path.is_absolute() and (out / step.path).is_file()
        assert any("MAE" in note for note in step.notes)
    assert sorted(p.name for p in out.iterdir()) == sorted([FRONT_END_FILE, *map(step_file_name, VARIANTS)])
    for stage in ("convert", "quantize", "verify", "save"):
        assert any(m.startswith("tflite ") and stage in m for m in bundle30["messages"]), stage
    # the fp32 step graph is exported once per process and checkpoint (earlier tests in the same
    # process may already have cached it), then reused by the other variants
    assert sum(m.endswith(": convert (cached)") for m in bundle30["messages"]) >= len(VARIANTS) - 1
    # the shared front end is converted once, then reused (not rewritten) by the later variants
    assert sum(m.startswith("tflite front end: convert") for m in bundle30["messages"]) == 1
    assert sum(m.startswith("tflite front end: reuse") for m in bundle30["messages"]) == len(VARIANTS) - 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_signature(bundle30: dict, variant: str, trained30: Checkpoint) -> None:
    from ai_edge_litert.interpreter import Interpreter

    path = bundle30["out"] / step_file_name(variant)
    signatures = Interpreter(model_path=str(path)).get_signature_list()
    assert set(signatures) == {"serving_default"}
    assert sorted(signatures["serving_default"]["inputs"]) == sorted(STEP_INPUTS)
    assert sorted(signatures["serving_default"]["outputs"]) == sorted(STEP_OUTPUTS)
    io = TFLiteRunner(path).signature_io()
    n = trained30.model.config.context_frames
    assert list(io["inputs"]) == list(STEP_INPUTS)  # argument order
    expected_in = {"mel_frames": (1, 3, 80), "context": (1, n - 1, 512), "emotion": (1, 264), "previous": (1, 52)}
    expected_out = {"blendshapes": (1, 52), "blendshapes_raw": (1, 52), "context_frame": (1, 512)}
    assert {k: v["shape"] for k, v in io["inputs"].items()} == expected_in
    assert {k: v["shape"] for k, v in io["outputs"].items()} == expected_out
    # float32 I/O in every variant (full_int8 keeps quantize/dequantize inside the graph)
    assert {v["dtype"] for v in [*io["inputs"].values(), *io["outputs"].values()]} == {"float32"}


def test_front_end_signature(bundle30: dict) -> None:
    io = TFLiteRunner(bundle30["out"] / FRONT_END_FILE).signature_io()
    assert io["inputs"] == {"pcm": {"shape": (1, N_FFT), "dtype": "float32", "quantization": None}}
    assert io["outputs"] == {"mel": {"shape": (1, 80), "dtype": "float32", "quantization": None}}


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_parity_on_real_speech(
    bundle30: dict, variant: str, held_out30: CalibrationSet, reference30: list[list[np.ndarray]]
) -> None:
    runner = TFLiteRunner(bundle30["out"] / step_file_name(variant))
    got = [runner(**_feeds(STEP_INPUTS, inputs)) for inputs in held_out30.step_inputs]
    stats = {}
    for i, name in enumerate(STEP_OUTPUTS):
        ref = np.stack([r[i] for r in reference30])
        out = np.stack([g[name] for g in got])
        err = np.abs(out - ref)
        stats[name] = (float(err.mean()), float(err.max()))
        if name != "context_frame":
            assert np.all((out >= 0) & (out <= 1)), name
    mae_limit, rel_limit, ctx_limit = LIMITS[variant]
    ref_raw = np.stack([r[1] for r in reference30])
    movement = float(np.abs(ref_raw - ref_raw.mean(0)).mean())  # how much the reference moves between frames
    ref_ctx = np.stack([r[2] for r in reference30])
    report = f"{variant}: " + ", ".join(f"{k} MAE {m:.2e} max {x:.2e}" for k, (m, x) in stats.items())
    print(report)
    assert stats["blendshapes"][0] < mae_limit, report
    assert stats["blendshapes_raw"][0] < mae_limit, report
    assert stats["blendshapes_raw"][0] / movement < rel_limit, f"{report}; frame-to-frame movement {movement:.2e}"
    assert stats["context_frame"][0] / float(np.abs(ref_ctx).mean()) < ctx_limit, report


def test_full_int8_is_integer_inside(bundle30: dict) -> None:
    """Every compute op is integer: int8, except the attention weights (SOFTMAX and the matmul reading it,
    int16, with QUANTIZE between the widths); float appears only at the QUANTIZE/DEQUANTIZE edges."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    data = (bundle30["out"] / step_file_name("full_int8")).read_bytes()
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    subgraph = graph.subgraphs[0]
    outputs = set(subgraph.outputs)
    dequantized, sixteen = [], []
    for op in subgraph.operators:
        code = graph.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        out_type = subgraph.tensors[op.outputs[0]].type
        if name == "DEQUANTIZE":
            dequantized.append(op.outputs[0])
        elif out_type == schema.TensorType.INT16:
            sixteen.append(name)
        else:
            assert out_type == schema.TensorType.INT8, f"{name} computes in {out_type}"
    assert sorted(set(sixteen)) == ["BATCH_MATMUL", "QUANTIZE", "SOFTMAX"]
    assert sixteen.count("SOFTMAX") == sixteen.count("BATCH_MATMUL") == 2  # mel and emotion attention
    assert outputs <= set(dequantized)
    assert len(outputs) == len(STEP_OUTPUTS)
    # The int8 BATCH_MATMUL kernel reads one scale per operand: per-channel scales on the constant
    # queries gave garbage attention logits (blendshape errors up to 0.6 on a trained checkpoint).
    for op in subgraph.operators:
        code = graph.operatorCodes[op.opcodeIndex]
        if names[max(code.builtinCode, code.deprecatedBuiltinCode)] == "BATCH_MATMUL":
            for i in op.inputs:
                scales = subgraph.tensors[i].quantization.scale
                assert scales is not None and len(scales) == 1, "BATCH_MATMUL operand with per-channel scales"


def test_front_end_parity(bundle30: dict, trained30: Checkpoint, held_out30: CalibrationSet) -> None:
    runner = TFLiteRunner(bundle30["out"] / FRONT_END_FILE)
    front = DeployFrontEnd(trained30.model).eval()
    audio = load_audio(bundled_speech())
    windows = gather_windows(audio, 0, frame_centers(0, len(audio) * 30 // SAMPLE_RATE, 30))[::7]
    pcms = [torch.from_numpy(w[None]) for w in windows] + held_out30.front_end_inputs + [torch.zeros(1, N_FFT)]
    errors = []
    with torch.no_grad():
        for pcm in pcms:
            got = runner(**{FRONT_END_INPUTS[0]: pcm.numpy()})[FRONT_END_OUTPUTS[0]]
            errors.append(np.abs(got - front(pcm).numpy()).max())
    assert max(errors) < 1e-3, f"front end max abs error {max(errors):.2e} on {len(pcms)} windows"


def _stream(step: TFLiteRunner, front: TFLiteRunner, ckpt: Checkpoint, audio: np.ndarray, emotion: np.ndarray):
    """Frame by frame, exactly as an app: front end -> mel history -> step -> ring buffer."""
    cfg = ckpt.model.config
    state = initial_state(ckpt.model)
    mel_frames, context = state["mel_frames"].numpy(), state["context"].numpy()
    previous = np.zeros((1, 52), np.float32)
    n_out = -(-len(audio) * cfg.fps // SAMPLE_RATE)
    frames = []
    for j in range(n_out + cfg.lookahead_frames):
        pcm = gather_windows(audio, 0, frame_centers(j, 1, cfg.fps))  # zeros beyond the ends
        mel = front(pcm=pcm)["mel"]
        mel_frames = np.concatenate([mel_frames[:, 1:], mel[:, None]], axis=1)
        out = step(mel_frames=mel_frames, context=context, emotion=emotion, previous=previous)
        context = np.concatenate([context[:, 1:], out["context_frame"][:, None]], axis=1)
        k = j - cfg.lookahead_frames
        if k >= 0:
            previous = out["blendshapes_raw"] if k == 0 else out["blendshapes"]
            frames.append(previous[0])
    return np.stack(frames)


@pytest.fixture(scope="module")
def speech_40_frames(trained30: Checkpoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    audio = load_audio(bundled_speech())
    start = 2 * SAMPLE_RATE  # inside the speech
    clip = audio[start : start + 40 * SAMPLE_RATE // 30]
    raw = emotion_features_at(clip, len(clip) / SAMPLE_RATE)
    emotion = trained30.emotion_stats.normalize(raw[None]).astype(np.float32)
    return clip, raw, emotion


# dynamic_int8: max over 40 frames x 52 shapes; measured 5.4e-3 (mean 1.9e-4) with the default of 2026-11-30
@pytest.mark.parametrize("variant, limit", [("fp32", 1e-4), (DEFAULT_TFLITE_VARIANT, 1e-2)])
def test_streaming_matches_offline_inference(
    bundle30: dict, trained30: Checkpoint, speech_40_frames: tuple, variant: str, limit: float
) -> None:
    clip, raw, emotion = speech_40_frames
    expected = infer_array(trained30, clip, emotion=raw)
    assert expected.shape == (40, 52)
    step = TFLiteRunner(bundle30["out"] / step_file_name(variant))
    front = TFLiteRunner(bundle30["out"] / FRONT_END_FILE)
    got = _stream(step, front, trained30, clip, emotion)
    assert got.shape == expected.shape
    err = np.abs(got - expected)
    assert err.max() < limit, f"{variant} streaming vs offline: max {err.max():.2e}, mean {err.mean():.2e}"


def test_file_sizes(bundle30: dict) -> None:
    for path in bundle30["out"].iterdir():
        assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size / 1e6:.2f} MB"
    sizes = {v: (bundle30["out"] / step_file_name(v)).stat().st_size for v in VARIANTS}
    assert sizes["fp16"] < 0.7 * sizes["fp32"] and sizes["dynamic_int8"] < 0.45 * sizes["fp32"]
    assert sizes["full_int8"] < 0.45 * sizes["fp32"]


def test_unknown_variant_is_rejected(trained30: Checkpoint, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown android variant 'int4'"):
        convert_tflite(trained30, "int4", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_overwritten(bundle30: dict, trained30: Checkpoint, tmp_path: Path) -> None:
    existing = bundle30["out"] / step_file_name("fp32")
    before = existing.read_bytes()
    with pytest.raises(ConversionError, match="exists") as info:
        convert_tflite(trained30, "fp32", bundle30["out"])
    assert info.value.stage == "save"
    assert existing.read_bytes() == before
    # a front end that does not match this checkpoint is refused, not replaced
    shutil.copy(existing, tmp_path / FRONT_END_FILE)
    with pytest.raises(ConversionError, match="front end") as info:
        convert_tflite(trained30, "fp32", tmp_path)
    assert info.value.stage == "save"
    assert not (tmp_path / step_file_name("fp32")).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [FRONT_END_FILE]  # no temp files left


def test_runner_checks_inputs(bundle30: dict) -> None:
    runner = TFLiteRunner(bundle30["out"] / FRONT_END_FILE)
    with pytest.raises(ValueError, match="missing"):
        runner()
    with pytest.raises(ValueError, match="unknown"):
        runner(pcm=np.zeros((1, N_FFT), np.float32), extra=np.zeros(1))
    with pytest.raises(ValueError, match="shape"):
        runner(pcm=np.zeros((1, 512), np.float32))
    out = runner(pcm=np.zeros((1, N_FFT), np.float64))  # cast to the model's float32
    assert out["mel"].dtype == np.float32 and out["mel"].shape == (1, 80)
    with pytest.raises(FileNotFoundError):
        TFLiteRunner(bundle30["out"] / "missing.tflite")


def test_unconvertible_operator_is_named() -> None:
    """DESIGN.md pitfall: torch.stft (complex tensors) does not convert; the error says where."""

    class Stft(torch.nn.Module):
        def forward(self, pcm: torch.Tensor) -> torch.Tensor:
            return torch.stft(pcm, 256, window=torch.hann_window(256), return_complex=True).abs()

    with pytest.raises(ConversionError, match="operator aten") as info:
        _convert_module(Stft(), ["pcm"], ["spec"], (torch.randn(1, N_FFT),), "stft")
    assert info.value.stage in ("export", "convert")


@torch.no_grad()
def _real_step_inputs(ckpt: Checkpoint, n: int = 4) -> list[tuple[torch.Tensor, ...]]:
    """Step inputs from real speech without a forward pass over whole clips (cheap at 60 fps)."""
    model, cfg = ckpt.model, ckpt.model.config
    audio = load_audio(bundled_speech())
    count = cfg.context_frames + 2 + n
    mel = model.front_end(torch.from_numpy(gather_windows(audio, 0, frame_centers(cfg.fps, count, cfg.fps))))
    kv = model.encode_frames(mel[None])[0]  # kv[t] encodes mel frames t .. t+2
    emotion = torch.zeros(1, 264)  # neutral
    inputs = []
    for i in range(n):  # newest mel frame i + N + 1; the step encodes it itself, the ring holds the N-1 before
        mel_frames = mel[i + cfg.context_frames + 2 - cfg.step_mel_frames : i + cfg.context_frames + 2][None]
        context = kv[i : i + cfg.context_frames - 1][None]
        inputs.append((mel_frames, context, emotion, torch.full((1, 52), 0.2)))
    return inputs


def test_60fps_default_variant(trained60: Checkpoint, tmp_path: Path) -> None:
    records = convert_tflite(trained60, DEFAULT_TFLITE_VARIANT, tmp_path)
    assert [r.path.name for r in records] == [step_file_name(DEFAULT_TFLITE_VARIANT), FRONT_END_FILE]
    runner = TFLiteRunner(tmp_path / records[0].path)
    io = runner.signature_io()
    assert io["inputs"]["context"]["shape"] == (1, 511, 512)
    step = DeployStep(trained60.model).eval()
    errors = []
    with torch.no_grad():
        for inputs in _real_step_inputs(trained60):
            expected = step(*inputs)[0].numpy()
            errors.append(np.abs(runner(**_feeds(STEP_INPUTS, inputs))["blendshapes"] - expected).mean())
    assert float(np.mean(errors)) < LIMITS[DEFAULT_TFLITE_VARIANT][0]
    for record in records:
        assert (tmp_path / record.path).stat().st_size < MAX_BYTES


def test_full_int8_attention_weights_need_16_bits_at_60fps(
    trained60: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 60 fps mel attention spreads over 515 keys; 8-bit softmax outputs round most weights to 0.
    Per frame, on frames not calibrated on, worst error relative to each shape's range; 8 bits is the
    negative control. The 60 fps default with detail tokens j, j-1, j-2 measured 0.23 with 16 bits, 0.54
    with 8 (through the app's frame loop, where errors feed the smoothing, 8 bits failed validation at
    0.91); the next one (j, j-2, j-4) 0.20 / 0.29, and mean error 0.057 / 0.080; the issue 26 default worst
    0.28 / 0.20 (the worst of 32 frames is noisy) and mean 0.072 / 0.098. The mean error must rise by a
    third with 8 bits (a no-op ATTENTION_WEIGHT_BITS gives 1.0). The mechanism is checked directly too, since how
    much the error rises depends on how much a checkpoint leans on the diffuse attention: the share of
    mel attention weights the quantized step stores as 0 (measured 5.6 % with 16 bits, 76.5 % with 8)."""
    frames = calibration_set(trained60, n_frames=96).step_inputs
    calibration, held_out = CalibrationSet(frames[:64], []), frames[64:]
    step = DeployStep(trained60.model).eval()
    with torch.no_grad():
        reference = np.stack([step(*inputs)[1][0].numpy() for inputs in held_out])
    limit = PARITY_LIMITS["activation_int8"].max_abs

    def measure(bits: int) -> tuple[float, float, float]:
        """Worst and mean error of the blendshapes, and the share of mel attention weights read as 0."""
        monkeypatch.setattr(tflite, "ATTENTION_WEIGHT_BITS", bits)
        out = tmp_path / f"bits{bits}"
        convert_tflite(trained60, "full_int8", out, calibration=calibration)
        step_path = out / step_file_name("full_int8")
        runner = TFLiteRunner(step_path)
        got = np.stack([runner(**_feeds(STEP_INPUTS, inputs))["blendshapes_raw"][0] for inputs in held_out])
        metrics = parity_metrics(reference, got)
        return metrics["rel_max"], metrics["rel_mae"], _zero_attention_share(step_path, held_out[:4])

    (sixteen, sixteen_mean, sixteen_zeros), (eight, eight_mean, eight_zeros) = measure(16), measure(8)
    print(
        f"worst / mean error: 16 bits {sixteen:.3f} / {sixteen_mean:.3f}, 8 bits {eight:.3f} / {eight_mean:.3f}; "
        f"mel attention weights read as 0: 16 bits {sixteen_zeros:.1%}, 8 bits {eight_zeros:.1%}"
    )
    assert sixteen < limit / 2
    # The mechanism, whatever the checkpoint: 8-bit softmax outputs erase most of the 515 weights.
    assert sixteen_zeros < 0.25 and eight_zeros > 0.5
    assert eight_mean > 1.3 * sixteen_mean


def _zero_attention_share(path: Path, step_inputs: list[tuple[torch.Tensor, ...]]) -> float:
    """Share of the mel attention's softmax outputs (the widest SOFTMAX of the graph) that the quantized
    step stores as 0, read from the interpreter's intermediate tensors over a few real frames."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the XNNPACK delegate: a delegated partition keeps no intermediate tensors.
    no_delegate = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_path=str(path), experimental_preserve_all_tensors=True, experimental_op_resolver_type=no_delegate
    )
    interpreter.allocate_tensors()
    softmax_outputs = [op["outputs"][0] for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    widest = max(softmax_outputs, key=lambda i: interpreter._get_tensor_details(i, 0)["shape"][-1])
    zero_point = interpreter._get_tensor_details(widest, 0)["quantization"][1]
    runner = interpreter.get_signature_runner()
    shares = []
    for inputs in step_inputs:
        runner(**_feeds(STEP_INPUTS, inputs))
        shares.append(float(np.mean(interpreter.get_tensor(widest) == zero_point)))
    return float(np.mean(shares))
