"""Trainer: loss, take loading (with its bad-input rules), a short training run whose loss falls,
resume, and two-process data-parallel training on gloo."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import write_audio
from entry_points import one_error, run

from a2bs.cli import main as cli
from a2bs.core.animation_io import open_writer
from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.blendshapes import INDEX, LIVE_LINK_FACE_COLUMNS
from a2bs.core.checkpoint import load_checkpoint
from a2bs.core.constants import LOG_EPS
from a2bs.core.errors import A2BSError
from a2bs.core.features import MelFrontEnd, mel_edges_hz
from a2bs.core.life import LIFE_SHAPES
from a2bs.corpus.dataset import load_takes, resample_curves, split_takes
from a2bs.training.articulation import auc
from a2bs.training.trainer import (
    TrainConfig,
    colour_channel,
    drop_emotion,
    lip_gap_loss,
    predict,
    prepare,
    raw_log_mels,
    specialization,
    stream_uncommitment,
    train,
    training_loss,
    warp_vocal_tract,
)


def _energy_curves(audio: np.ndarray, fps: int) -> np.ndarray:
    """A learnable target: jawOpen follows the speech envelope, mouthClose its complement."""
    n = -(-len(audio) * fps // 16000)
    hop = 16000 / fps
    env = np.array([np.sqrt(np.mean(audio[int(k * hop) : int(k * hop) + 512] ** 2) + 1e-12) for k in range(n)])
    env = np.clip(env / (env.max() + 1e-9), 0, 1)
    curves = np.full((n, 52), 0.05, np.float32)
    curves[:, INDEX["jawOpen"]] = env
    curves[:, INDEX["mouthClose"]] = 1 - env
    return curves


def _write_take(folder: Path, name: str, audio: np.ndarray, fps: int = 60) -> None:
    write_audio(folder, f"{name}.wav", audio, 16000)
    curves = _energy_curves(audio, fps)
    with open_writer(folder / f"{name}.csv", fps, len(curves)) as writer:
        writer.write(curves)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    takes = root / "takes"
    takes.mkdir()
    for clip in sorted(bundled_audio_dir().glob("*.wav")):
        audio = load_audio(clip)
        for i, part in enumerate(np.array_split(audio, 3)):
            _write_take(takes, f"{clip.stem}_{i}", part)
    (root / "corpus.json").write_text(json.dumps({"split": {"validation": ["speech_en_gb_f_2"]}}))
    return root


def test_loss_components() -> None:
    target = torch.zeros(1, 4, 52)
    pred = torch.full((1, 4, 52), 0.5)
    mask = torch.ones(1, 4)
    total, parts = training_loss(pred, target, mask, torch.tensor(0.7), 30)
    assert parts["mse"] == pytest.approx(0.25) and parts["l1"] == pytest.approx(0.5)
    assert parts["temporal"] == pytest.approx(0.0)  # constant offset: no temporal error
    assert total.item() == pytest.approx(0.25 + 0.1 * 0.5 + 0.5 * (0.25 + 0.5 * 0.25))
    # padded frames do not count
    pred[:, 2:] = 7.0
    mask[:, 2:] = 0
    assert training_loss(pred, target, mask, torch.tensor(0.7), 30)[1]["mse"] == pytest.approx(0.25)


def test_lip_gap_loss_weights_sealed_frames_and_aims_closures_below_zero() -> None:
    """Three target frames: a bilabial closure (jaw 0.1, sealed), a pause at rest (jaw 0.03, sealed), an open
    vowel (gap 0.3). A prediction equal to the targets costs nothing without a margin; with margin 0.04 only
    the closure costs (0.04^2 x its weight 1 + boost over the total weight); a lip that stops 0.05 short
    of the seal costs `boost` times more than the same error on the open vowel."""
    j, m = INDEX["jawOpen"], INDEX["mouthClose"]
    target = torch.zeros(1, 3, 52)
    target[0, 0, [j, m]] = 0.1
    target[0, 1, [j, m]] = 0.03
    target[0, 2, j] = 0.3
    mask = torch.ones(1, 3)
    assert lip_gap_loss(target.clone(), target, mask, 4.0).item() == pytest.approx(0.0)
    boost = 4.0
    total_weight = 2 * (1 + boost) + 1
    margin = lip_gap_loss(target.clone(), target, mask, boost, seal_margin=0.04).item()
    assert margin == pytest.approx(0.04**2 * (1 + boost) / total_weight)
    short = target.clone()
    short[0, 0, m] -= 0.05  # the closure stops 0.05 short
    wide = target.clone()
    wide[0, 2, m] -= 0.05  # the open vowel 0.05 wider
    ratio = lip_gap_loss(short, target, mask, boost).item() / lip_gap_loss(wide, target, mask, boost).item()
    assert ratio == pytest.approx(1 + boost)


def test_resample_curves() -> None:
    t60 = np.arange(120) / 60
    curves = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * t60)] * 52, axis=1)
    down = resample_curves(curves, 60, 30, 60)
    assert down.shape == (60, 52)
    expected = 0.5 + 0.4 * np.sin(2 * np.pi * np.arange(60) / 30)
    np.testing.assert_allclose(down[1:-1, 0], expected[1:-1], atol=0.01)  # edges: one-sided smoothing
    up = resample_curves(down, 30, 60, 120)
    np.testing.assert_allclose(up[2:-2, 0], curves[2:-2, 0], atol=0.01)


def test_auc() -> None:
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5


def test_bad_takes_are_skipped_with_reasons(tmp_path: Path) -> None:
    audio = load_audio(bundled_audio_dir() / "speech_en_us.wav")[:32000]
    _write_take(tmp_path, "good", audio)
    write_audio(tmp_path, "no_csv.wav", audio, 16000)
    (tmp_path / "no_audio.csv").write_text((tmp_path / "good.csv").read_text())
    # missing column
    lines = (tmp_path / "good.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("JawOpen")
    (tmp_path / "missing_col.csv").write_text(
        "\n".join(",".join(c for j, c in enumerate(line.split(",")) if j != drop) for line in lines) + "\n"
    )
    write_audio(tmp_path, "missing_col.wav", audio, 16000)
    # NaN
    bad = [*lines[:5], lines[5].replace(lines[5].split(",")[5], "nan", 1), *lines[6:]]
    (tmp_path / "nan.csv").write_text("\n".join(bad) + "\n")
    write_audio(tmp_path, "nan.wav", audio, 16000)
    # length mismatch: the CSV of a 2 s take next to 4 s of audio
    (tmp_path / "long_audio.csv").write_text((tmp_path / "good.csv").read_text())
    write_audio(tmp_path, "long_audio.wav", np.concatenate([audio, audio]), 16000)
    # 24 fps capture
    with open_writer(tmp_path / "fps24.csv", 24, 48) as w:
        w.write(np.zeros((48, 52), np.float32))
    write_audio(tmp_path, "fps24.wav", audio, 16000)

    takes, report = load_takes(tmp_path, 30)
    assert [t.name for t in takes] == ["good"]
    reasons = dict(report.skipped)
    assert "no audio" in reasons["no_audio"]
    assert "no Live Link Face CSV" in reasons["no_csv"]
    assert "JawOpen" in reasons["missing_col"]
    assert "nan" in reasons["nan"].lower() or "NaN" in reasons["nan"]
    assert "apart" in reasons["long_audio"]
    assert "at 24 fps" in reasons["fps24"]
    assert takes[0].curves.shape == (60, 52)  # 2 s at 30 fps, resampled from the 60 fps CSV
    assert LIVE_LINK_FACE_COLUMNS[0] == "Timecode"


def test_no_takes_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(A2BSError, match="no usable takes"):
        load_takes(tmp_path, 30)
    with pytest.raises(A2BSError, match="not found"):
        load_takes(tmp_path / "missing", 30)


def test_a_wrong_init_fails_before_the_data_loads(tmp_path: Path) -> None:
    """Loading a corpus takes minutes: a bad --init is reported first (the data here is missing too)."""
    config = TrainConfig(data=[str(tmp_path / "missing")], out=str(tmp_path / "out"), fps=30, init=str(tmp_path))
    with pytest.raises(A2BSError, match=r"no config\.json"):
        train(config)
    with pytest.raises(A2BSError, match="not found"):  # the control: without --init the data is read
        train(dataclasses.replace(config, init=None))


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--out", "run", "--lr", "nan"], "--lr must be a finite number"),
        (["--out", "run", "--lr", "-1"], "--lr must be in (0, 1]"),
        (["--out", "a_file"], "--out a_file is a file"),
    ],
    ids=["lr-nan", "lr-negative", "out-is-a-file"],
)
def test_bad_training_options_are_one_line_before_any_work(
    extra: list[str], says: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Was: --lr nan / -1 trained (NaN weights, or ascent), --out naming a file gave NotADirectoryError.
    The data folder is missing too: these options are refused first."""
    monkeypatch.chdir(tmp_path)
    Path("a_file").write_text("kept")
    code, _, err = run(monkeypatch, capsys, cli.main, "a2bs", "train", "--data", "missing", *extra)
    one_error(code, err, says)
    assert sorted(os.listdir()) == ["a_file"] and Path("a_file").read_text() == "kept"


def test_split_uses_corpus_json(corpus: Path) -> None:
    takes, _ = load_takes(corpus, 30)
    train_takes, val_takes = split_takes(corpus, takes)
    assert [t.name for t in val_takes] == ["speech_en_gb_f_2"]
    assert len(train_takes) == 5


def _config(corpus: Path | list[str], out: Path, **kw) -> TrainConfig:
    data = corpus if isinstance(corpus, list) else str(corpus)
    defaults = {"epochs": 3, "steps_per_epoch": 6, "batch_size": 2, "seq_frames": 12, "lr": 1e-3}
    return TrainConfig(data=data, out=str(out), **(defaults | kw))


@pytest.mark.slow
def test_short_training_run_learns_and_resumes(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_config(corpus, out), progress=False, log=lambda _: None)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # the loss falls
    assert rows[-1]["mae"] < rows[0]["mae"] + 1e-6
    for key in ("mae_mouth", "mae_expression", "s_overall", "auc_jaw"):
        assert key in rows[-1]
    ckpt = load_checkpoint(out / "best")
    assert ckpt.trained and ckpt.fps == 30
    # refuses to clobber a run, resumes one
    with pytest.raises(A2BSError, match="--resume"):
        train(_config(corpus, out), progress=False, log=lambda _: None)
    train(_config(corpus, out, epochs=4), resume=True, progress=False, log=lambda _: None)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


@pytest.mark.slow
def test_data_parallel_two_processes(corpus: Path, tmp_path: Path) -> None:
    """torchrun with two CPU processes on gloo: both take part, rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    a2bs = Path(sys.executable).with_name("a2bs")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--no-python",
        str(a2bs),
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "1",
        "--seq-frames",
        "8",
        "--no-progress",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 process(es)" in result.stdout
    assert load_checkpoint(out / "last").trained
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_bad_phone_files_and_corpus_json_are_reasons_not_crashes(corpus: Path, tmp_path: Path) -> None:
    """One bad take never stops a run: NaN phone times are a skip reason; a broken corpus.json and a
    split with every take in validation are one-line errors before any training."""
    data = tmp_path / "data"
    (data / "takes").mkdir(parents=True)
    for f in (corpus / "takes").iterdir():
        (data / "takes" / f.name).write_bytes(f.read_bytes())
    (data / "takes" / "speech_en_us_0.phones.json").write_text('{"phones": [["m", NaN, 0.5]]}')
    (data / "takes" / "speech_en_us_1.phones.json").write_text('{"phones": [["m", 0.1, 0.5], ["aa", 0.5, 0.9]]}')
    takes, report = load_takes(data, 30)
    assert "speech_en_us_0" not in {t.name for t in takes}
    assert "not finite" in dict(report.skipped)["speech_en_us_0"]
    assert next(t for t in takes if t.name == "speech_en_us_1").phones == [("m", 0.1, 0.5), ("aa", 0.5, 0.9)]
    (data / "corpus.json").write_text('{"split": {"val": "speech_en_us_1"}}')
    with pytest.raises(A2BSError, match="must be a list"):
        split_takes(data, takes)
    (data / "corpus.json").write_text("[" * 100000)
    with pytest.raises(A2BSError, match="not valid JSON"):
        split_takes(data, takes)
    (data / "corpus.json").write_text(json.dumps({"split": {"val": [t.name for t in takes]}}))
    with pytest.raises(A2BSError, match="nothing left to train on"):
        train(_config(data, tmp_path / "run"), progress=False, log=lambda _: None)


@pytest.mark.slow
def test_several_datasets_mix_with_their_own_splits(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    logged: list[str] = []
    train(_config([str(corpus), str(corpus)], out, epochs=1, steps_per_epoch=2), progress=False, log=logged.append)
    assert "10 training takes, 2 validation takes" in "\n".join(logged)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    # the emotion ablation and the four articulation contrasts are part of every validation
    for key in ("neutral_emotion_mae_expression", "auc_closure", "auc_rounding", "auc_labiodental"):
        assert key in row


# --- stream specialization and channel colour (docs/DECISIONS.md) ---------------------------------
def test_drop_emotion_uses_the_neutral_vector_at_the_asked_rate() -> None:
    emotion = torch.randn(2000, 264)
    dropped = drop_emotion(emotion, 0.3, np.random.default_rng(0))
    zero_rows = (dropped == 0).all(dim=1)
    assert 0.25 < float(zero_rows.float().mean()) < 0.35
    assert torch.equal(dropped[~zero_rows], emotion[~zero_rows])  # the others are untouched
    assert torch.equal(drop_emotion(emotion, 0.0, np.random.default_rng(0)), emotion)


def test_colour_channel_is_one_gain_curve_per_sequence_and_keeps_silence() -> None:
    fe = MelFrontEnd(np.full(80, -2.0), np.full(80, 3.0))
    raw = torch.log(torch.rand(3, 40, 80) * 10 + 0.01)
    raw[2, :5] = float(np.log(LOG_EPS))  # digital silence
    coloured = colour_channel(fe.normalize(raw), fe, 6.0, np.random.default_rng(1))
    delta = fe.denormalize(coloured) - raw
    assert float(delta[:2].std(dim=1).max()) < 1e-3  # the same gain on every frame of a sequence ...
    assert float((delta[0, 0] - delta[1, 0]).abs().max()) > 0.1  # ... a different one per sequence
    assert float(delta[0, 0].std()) > 0.05  # a colour over the bins, not only a level
    assert float(delta[2, :5].abs().max()) < 1e-3  # silence stays silent
    assert torch.equal(colour_channel(fe.normalize(raw), fe, 0.0, np.random.default_rng(1)), fe.normalize(raw))


def test_warp_vocal_tract_moves_formants_by_one_factor_per_sequence() -> None:
    """A formant at 1.5 kHz lands at a * 1.5 kHz, one a per sequence within 1 +/- warp; warp 0 is the identity."""
    fe = MelFrontEnd(np.full(80, -2.0), np.full(80, 3.0))
    centres = mel_edges_hz()[1:-1]
    formant = torch.from_numpy(-(np.log(centres / 1500.0) ** 2) / 0.01).float()
    raw = formant[None, None, :].repeat(6, 4, 1)
    warped = warp_vocal_tract(fe.normalize(raw), fe, 0.15, np.random.default_rng(3))
    peaks = centres[fe.denormalize(warped).argmax(dim=2).numpy()]  # (6, 4) Hz
    factors = np.exp(np.random.default_rng(3).uniform(-np.log1p(0.15), np.log1p(0.15), 6))  # the same draws
    assert (peaks == peaks[:, :1]).all()  # one factor for every frame of a sequence
    spacing = np.diff(centres)[np.searchsorted(centres, 1500 * factors)]
    assert (np.abs(peaks[:, 0] - 1500 * factors) <= spacing).all(), (peaks[:, 0], 1500 * factors)
    assert peaks[:, 0].max() - peaks[:, 0].min() > 200  # the voices differ
    assert torch.equal(warp_vocal_tract(fe.normalize(raw), fe, 0.0, np.random.default_rng(3)), fe.normalize(raw))


@pytest.mark.slow
def test_specialization_weight_makes_the_streams_commit(corpus: Path, tmp_path: Path) -> None:
    """With the term the blendshapes commit to one stream; without it (the negative control) they stay mixed."""
    uncommitted = {}
    for weight in (0.0, 1.0):
        out = tmp_path / f"w{weight}"
        train(_config(corpus, out, specialization_weight=weight, epochs=2), progress=False, log=lambda _: None)
        uncommitted[weight] = float(stream_uncommitment(load_checkpoint(out / "last").model).detach())
    assert uncommitted[0.0] > 0.9, uncommitted  # 50/50 start, barely moved
    assert uncommitted[1.0] < uncommitted[0.0] - 0.03, uncommitted  # measured: 0.944 -> 0.891


def test_routing_the_life_shapes_to_emotion_leaves_every_other_shape_as_it_was(corpus: Path, tmp_path: Path) -> None:
    """--route-life-to-emotion from a trained model: the eye* and brow* shapes end on the emotion stream with
    the weights of the shapes already there, S_overall rises, their outputs change, and every other shape's
    output (and every other weight, the normalization included) is the init's bit for bit. Without --init it
    is refused before any work."""
    init = tmp_path / "init"
    train(_config(corpus, init, epochs=2, specialization_weight=1.0), progress=False, log=lambda _: None)
    base = load_checkpoint(init / "last")
    routed_out = tmp_path / "routed"
    config = _config(corpus, routed_out, init=str(init / "last"), route_life_to_emotion=True, epochs=1)
    train(config, progress=False, log=lambda _: None)
    routed = load_checkpoint(routed_out / "last")
    life = [INDEX[n] for n in LIFE_SHAPES]
    rest = [i for i in range(52) if i not in life]
    w_base, _ = base.model.stream_weights()
    w_routed, _ = routed.model.stream_weights()
    on_emotion = [i for i in range(52) if w_base[i] < 0.5]
    assert on_emotion and (w_routed[life] == w_routed[on_emotion[0]]).all()
    assert torch.equal(w_routed[rest], w_base[rest])
    assert specialization(routed.model) > specialization(base.model)
    for name, value in base.model.state_dict().items():
        if name not in ("queries", "decoder_weight", "decoder_bias", "theta_mel", "theta_emotion"):
            assert torch.equal(routed.model.state_dict()[name], value), name
    takes = load_takes(corpus, 30)[0][:1]
    take = prepare(takes, raw_log_mels(takes, base.model), base.model, base.emotion_stats)[0]
    before, after = predict(base.model, take), predict(routed.model, take)
    assert np.array_equal(before[:, rest], after[:, rest])
    assert np.abs(before[:, life] - after[:, life]).max() > 1e-3
    with pytest.raises(A2BSError, match="--route-life-to-emotion fine-tunes a trained model"):
        _config(corpus, tmp_path / "x", route_life_to_emotion=True)
