"""Bundles from `a2bs-convert`: manifest contents, atomic writes, CLI errors, and the artifact
backend (`a2bs infer --backend tflite`) against the PyTorch reference on real speech."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech

from a2bs.cli import convert as convert_cli
from a2bs.cli import main as core_cli
from a2bs.convert.bundle import build_bundle, resolve_variants, sha256, size_bytes
from a2bs.core.animation_io import read_live_link_face_csv
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.deploy import STEP_INPUTS, STEP_OUTPUTS
from a2bs.core.errors import A2BSError
from a2bs.core.life import PRESETS, manifest_section, params_from_manifest


@pytest.mark.parametrize("name", ["android_bundle", "ios_bundle"])
def test_manifest_contents(name: str, request: pytest.FixtureRequest, ckpt30: Checkpoint) -> None:
    bundle: Path = request.getfixturevalue(name)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["blendshapes"] == list(ARKIT_BLENDSHAPES)
    groups = manifest["blendshape_groups"]
    assert sorted(n for names in groups.values() for n in names) == sorted(ARKIT_BLENDSHAPES)
    assert manifest["fps"] == 30 and manifest["sample_rate"] == 16000 and manifest["context_frames"] == 256
    assert manifest["timeline"]["lookahead_frames"] == ckpt30.model.config.lookahead_frames
    assert [i["name"] for i in manifest["models"]["step"]["inputs"]] == list(STEP_INPUTS)
    assert [o["name"] for o in manifest["models"]["step"]["outputs"]] == list(STEP_OUTPUTS)
    assert manifest["models"]["step"]["inputs"][1]["shape"] == [1, 255, 512]
    assert len(manifest["emotion"]["neutral"]) == 264 and not any(manifest["emotion"]["neutral"])
    assert len(manifest["mel"]["normalization"]["mean"]) == 80
    assert len(manifest["initial_state"]["context_frame"]) == 512
    assert manifest["smoothing_alpha"] == pytest.approx(float(ckpt30.model.alpha.detach()))
    roles = {(f["role"], f["variant"]) for f in manifest["files"]}
    assert ("step", manifest["default_variant"]) in roles and any(r == "front_end" for r, _ in roles)
    for entry in manifest["files"]:
        assert set(entry) >= {"path", "sha256", "bytes", "role", "variant"}
        path = bundle / entry["path"]
        assert entry["sha256"] == sha256(path) and entry["bytes"] == size_bytes(path)
        assert entry["bytes"] < 10_000_000
    assert (bundle / "README.md").read_text().count("step(") >= 1
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_manifest_and_readme_say_what_an_app_needs(ckpt30: Checkpoint, tmp_path: Path) -> None:
    """Was: the manifest carried the build machine's absolute checkpoint path; the bundle README said the sample
    app passes a style clip's emotion vector (it passes `neutral`); `smoothing_alpha` was unexplained, so an app
    could smooth the already smoothed output again."""
    from a2bs.convert.bundle import build_manifest, bundle_readme

    assert Path(ckpt30.source).is_absolute()  # the fixture is loaded from a temp folder
    manifest = build_manifest("android", ckpt30, [], tmp_path, "dynamic_int8")
    checkpoint = manifest["checkpoint"]
    assert checkpoint["source"] == Path(ckpt30.source).name and "/" not in json.dumps(checkpoint)
    assert len(checkpoint["fingerprint"]) == 64  # what identifies the weights
    assert replace(ckpt30, source=".").name == Path.cwd().name  # `--checkpoint .` is named after its folder
    readme = bundle_readme(manifest, [])
    expression = readme.split("## Expression")[1].split("\n## ")[0]
    for sentence in re.split(r"(?<=\.)\s", " ".join(expression.split())):
        if "sample app" in sentence:
            assert "`neutral`" in sentence, sentence
    smoothing = readme.split("## Smoothing")[1].split("\n## ")[0]
    assert f"{manifest['smoothing_alpha']:.3f}" in smoothing and "do not smooth" in smoothing
    blendshapes = next(o for o in manifest["models"]["step"]["outputs"] if o["name"] == STEP_OUTPUTS[0])
    assert "already smoothed" in blendshapes["description"]
    # the life layer the apps run: its parameters, algorithm version and RNG, read back exactly
    assert manifest["life"] == manifest_section(PRESETS["natural"])
    assert params_from_manifest(json.loads(json.dumps(manifest["life"])), "manifest.json") == PRESETS["natural"]
    life = readme.split("## The life layer")[1]
    assert "splitmix64" in life and "without `life`" in life and "docs/LIFE.md" in life


def test_variant_resolution() -> None:
    assert resolve_variants("android", None) == ["dynamic_int8"]
    assert resolve_variants("android", "fp32") == ["dynamic_int8", "fp32"]
    assert resolve_variants("ios", "all")[0] == "fp16" and len(resolve_variants("ios", "all")) == 5
    assert resolve_variants("android", "fp16", only=True) == ["fp16"]  # the shipped models' bundle
    for quantize in (None, "all"):
        with pytest.raises(A2BSError, match="--only needs --quantize VARIANT"):
            resolve_variants("android", quantize, only=True)
    with pytest.raises(A2BSError, match="unknown ios variant"):
        resolve_variants("ios", "int3")
    with pytest.raises(A2BSError, match="unknown platform"):
        resolve_variants("windows", None)


def test_existing_bundle_needs_force(android_bundle: Path, ckpt30: Checkpoint) -> None:
    before = (android_bundle / "manifest.json").read_bytes()
    with pytest.raises(A2BSError, match="--force"):
        build_bundle("android", ckpt30, ["dynamic_int8"], android_bundle, progress=lambda _: None)
    assert (android_bundle / "manifest.json").read_bytes() == before


def _convert(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["a2bs-convert", *args])
    capsys.readouterr()
    try:
        convert_cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["windows"], "unknown platform"),
        (["ios", "--quantize", "int3"], "unknown ios variant"),
        (["android", "--fps", "25"], "unsupported --fps"),
        (["android", "--checkpoint", "/nonexistent/ckpt"], "checkpoint not found"),
        (["ios", "--offline"], "goes with android bundles"),
        (["android", "--offline", "--quantize", "dynamic_int8", "--only"], "needs a float variant"),
    ],
)
def test_convert_cli_errors(monkeypatch, capsys, tmp_path: Path, args: list[str], message: str) -> None:
    code, err = _convert(monkeypatch, capsys, *args, "--out", str(tmp_path / "b"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "b").exists()


def test_convert_cli_out_is_a_file(monkeypatch, capsys, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep")
    code, err = _convert(monkeypatch, capsys, "android", "--out", str(target))
    assert code == 2 and "is a file" in err and target.read_text() == "keep"


def _infer(monkeypatch, capsys, *args: str | Path) -> int:
    monkeypatch.setattr(sys, "argv", ["a2bs", "infer", *map(str, args), "--no-progress"])
    try:
        core_cli.main()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


@pytest.mark.parametrize(("variant", "mae"), [("fp32", 1e-5), ("dynamic_int8", 5e-3)])
def test_tflite_backend_matches_torch_on_real_speech(
    monkeypatch,
    capsys,
    tmp_path: Path,
    android_bundle: Path,
    checkpoint_dirs: dict[int, Path],
    variant: str,
    mae: float,
) -> None:
    """The bundle, run frame by frame in the real LiteRT interpreter, equals offline torch inference."""
    audio = bundled_speech()
    assert _infer(monkeypatch, capsys, audio, "-o", tmp_path / "torch.csv", "--checkpoint", checkpoint_dirs[30]) == 0
    code = _infer(
        monkeypatch,
        capsys,
        audio,
        "-o",
        tmp_path / "tfl.csv",
        "--backend",
        "tflite",
        "--bundle",
        android_bundle,
        "--variant",
        variant,
    )
    assert code == 0
    reference = read_live_link_face_csv(tmp_path / "torch.csv")[0]
    got = read_live_link_face_csv(tmp_path / "tfl.csv")[0]
    assert got.shape == reference.shape
    assert np.abs(got - reference).mean() < mae


def test_coreml_backend_matches_torch_on_real_speech(
    monkeypatch, capsys, tmp_path: Path, ios_bundle: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    """The CoreML bundle, run frame by frame (Core ML on macOS, the NumPy MIL executor with fp16
    compute emulated elsewhere), equals offline torch inference to fp16 precision."""
    audio = bundled_speech()
    assert _infer(monkeypatch, capsys, audio, "-o", tmp_path / "torch.csv", "--checkpoint", checkpoint_dirs[30]) == 0
    assert (
        _infer(monkeypatch, capsys, audio, "-o", tmp_path / "cml.csv", "--backend", "coreml", "--bundle", ios_bundle)
        == 0
    )
    reference = read_live_link_face_csv(tmp_path / "torch.csv")[0]
    got = read_live_link_face_csv(tmp_path / "cml.csv")[0]
    assert got.shape == reference.shape
    assert np.abs(got - reference).mean() < 1e-3  # the fp16 bar is 0.01


def test_manifest_rows_carry_parity(ios_bundle: Path) -> None:
    readme = (ios_bundle / "README.md").read_text()
    assert "NumPy MIL executor" in readme and "not measured" not in readme


def test_backend_errors(monkeypatch, capsys, tmp_path: Path, android_bundle: Path, ios_bundle: Path) -> None:
    audio = bundled_speech()
    cases = [
        (["--backend", "tflite"], "needs --bundle"),
        (["--backend", "tflite", "--bundle", tmp_path], "no manifest.json"),
        (["--backend", "tflite", "--bundle", ios_bundle], "android bundle"),
        (["--backend", "tflite", "--bundle", android_bundle, "--variant", "fp16"], "no step model for variant"),
        (["--backend", "coreml", "--bundle", android_bundle], "ios bundle"),
        (["--bundle", android_bundle], "--backend tflite or coreml"),
    ]
    for extra, message in cases:
        code = _infer(monkeypatch, capsys, audio, "-o", tmp_path / "x.csv", *extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err and message in err[-1], (extra, err)
        assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("name", ["android_bundle", "ios_bundle"])
def test_emotion_from_through_the_bundles(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch, capsys
) -> None:
    """--emotion-from reaches the step model's emotion input: the input's own clip changes nothing,
    another clip changes the curves (the README documents how an app passes such a vector)."""
    bundle: Path = request.getfixturevalue(name)
    backend = "tflite" if name == "android_bundle" else "coreml"
    audio, sr = sf.read(bundled_speech(), dtype="float32")
    clip = tmp_path / "clip.wav"
    sf.write(clip, audio[: 2 * sr], sr)
    style = bundled_speech().with_name("speech_en_gb_f.wav")
    runs = {"plain": [], "self": ["--emotion-from", clip], "style": ["--emotion-from", style]}
    if backend == "coreml":  # the NumPy MIL executor is slow; "self" takes the same code path as for tflite
        del runs["self"]
    got = {}
    for label, extra in runs.items():
        code = _infer(
            monkeypatch, capsys, clip, "-o", tmp_path / f"{label}.csv", "--backend", backend, "--bundle", bundle, *extra
        )
        assert code == 0, capsys.readouterr().err
        got[label] = read_live_link_face_csv(tmp_path / f"{label}.csv")[0]
    if "self" in got:
        np.testing.assert_array_equal(got["self"], got["plain"])
    assert np.abs(got["style"] - got["plain"]).max() > 0
    assert "Expression (the emotion input)" in (bundle / "README.md").read_text()


def test_offline_model_gives_the_step_frames_and_the_build_refuses_one_that_does_not(
    trained30: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--offline` on the trained default: the bundle gains the offline model, described in the manifest, and
    validation checks it against the per-frame path. Negative control: an offline model whose frames are off by
    3e-5 (in PyTorch and LiteRT alike, so only the comparison with the step can tell) is refused, nothing kept."""
    from a2bs.convert import tflite
    from a2bs.core.deploy import DeployOffline
    from a2bs.mobile_validation.validate import validate_bundle

    out = build_bundle("android", trained30, ["fp16"], tmp_path / "b", progress=lambda _: None, offline=True).out
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"] if f["role"] == "offline"] == ["a2bs_offline_fp16.tflite"]
    assert manifest["models"]["offline"]["inputs"][0]["shape"][1] > 1  # many frames per call
    report = validate_bundle(out, latency=False)
    offline = [c for c in report.checks if c.name == "offline = per-frame"]
    assert report.passed and len(offline) == 1 and offline[0].value <= 1e-5

    class Off(DeployOffline):
        def forward(self, *inputs):
            raw, *rest = super().forward(*inputs)
            return (raw + 3e-5, *rest)

    monkeypatch.setattr(tflite, "DeployOffline", Off)
    with pytest.raises(tflite.ConversionError, match="verify:offline fp16"):
        build_bundle("android", trained30, ["fp16"], tmp_path / "bad", progress=lambda _: None, offline=True)
    assert not (tmp_path / "bad").exists()
