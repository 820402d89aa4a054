"""Lines without a script (`a2bs data transcribe`): recognition of real speech, word error rate, lines the
recogniser cannot read skipped with a reason, a folder `a2bs data align` reads, one-line errors, nothing
half-written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import tone_signal, write_audio, write_silence

from a2bs.cli import main as cli
from a2bs.core.audio import load_audio
from a2bs.core.files import umask
from a2bs.corpus import transcribe as T
from a2bs.corpus.align import read_lines

DATA = Path(__file__).resolve().parents[1] / "data"
CATHY = DATA / "cathy_arctic_a0007_1592748422.flac"  # CC0, see tests/data/README.md
CATHY_TEXT = "And you always want to see it in the superlative degree."


@pytest.fixture(scope="module")
def recognizer() -> T.Recognizer:
    return T.Recognizer()


# ---- word error rate -----------------------------------------------------------------------------
def test_word_errors_counts_edits() -> None:
    assert T.word_errors([], []) == 0
    assert T.word_errors(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert T.word_errors(["a", "b", "c"], ["a", "x", "c"]) == 1  # substitution
    assert T.word_errors(["a", "b", "c"], ["a", "c"]) == 1  # deletion
    assert T.word_errors(["a", "b", "c"], ["a", "b", "b", "c", "d"]) == 2  # insertions
    assert T.word_errors(["a", "b"], []) == 2 and T.word_errors([], ["x"]) == 1
    assert T.word_errors(["the", "cat", "sat"], ["cat", "sat", "the"]) == 2  # order matters


def test_wer_normalizes_text() -> None:
    assert T.normalize_words("Don't  stop\u2014now, O\u2019Brien!") == ["don't", "stop", "now", "o'brien"]
    assert T.wer("Hello, World.", "hello world") == 0.0
    assert T.wer("one two three four", "one too three") == 0.5
    assert T.wer("yes", "yes yes yes") == 2.0  # insertions can exceed 1
    with pytest.raises(ValueError, match="no words"):
        T.wer(" ... ", "x")


# ---- recognition ---------------------------------------------------------------------------------
def test_real_speech_is_recognised_with_high_confidence(recognizer: T.Recognizer) -> None:
    audio = load_audio(CATHY)
    rec = recognizer.transcribe(audio)
    assert T.wer(CATHY_TEXT, rec.text) <= 0.1, rec.text
    assert rec.confidence >= T.MIN_CONFIDENCE and rec.word_rate >= 2 * T.MIN_WORD_RATE
    assert all(0 <= a < b <= rec.duration_s + 0.02 and 0 <= p <= 1 for _, a, b, p in rec.words)
    # negative control: the same sound reversed is not English, and its confidence says so
    backwards = recognizer.recognize(audio[::-1].copy())
    assert backwards.confidence < T.MIN_CONFIDENCE
    # the same line gives the same result whatever the decoder heard before (no state across lines)
    assert recognizer.recognize(audio) == rec


def test_unreadable_audio_is_skipped_with_a_reason(recognizer: T.Recognizer) -> None:
    rng = np.random.default_rng(0)
    cases = {
        "silence": np.zeros(32000, dtype=np.float32),
        "room tone": (0.0005 * rng.standard_normal(32000)).astype(np.float32),  # -66 dBFS
        "noise": (0.1 * rng.standard_normal(24000)).astype(np.float32),
        "tone": tone_signal(16000, 2.0)[:, 0],  # harmonics with a syllable-rate envelope: music-like
        "clipped": np.clip(load_audio(CATHY) * 20, -1, 1),
        "short": load_audio(CATHY)[:3200],
    }
    expected = {
        "silence": "silence",
        "room tone": "silence",
        "noise": "no words",
        "tone": "not speech",
        "clipped": "clipped",
        "short": "too short",
    }
    for name, audio in cases.items():
        with pytest.raises(T.Unreadable) as info:
            recognizer.transcribe(audio)
        assert info.value.kind == expected[name], (name, str(info.value))
        assert str(info.value), name


# ---- the folder and the command ------------------------------------------------------------------
def _speech_folder(root: Path) -> Path:
    """An utterances.tsv folder (no text column, as ../shared/data/real-speech-untranscribed): speech, silence,
    noise, a missing file and a row without a path."""
    (root / "audio" / "s1").mkdir(parents=True)
    speech = root / "audio" / "s1" / "a.flac"
    speech.write_bytes(CATHY.read_bytes())
    write_silence(root / "audio" / "s1", "quiet.wav", seconds=2.0)
    noise = (0.1 * np.random.default_rng(1).standard_normal(32000)).astype(np.float32)
    write_audio(root / "audio" / "s1", "noise.wav", noise, 16000)
    rows = [
        "utt_id\tspeaker\trelative_flac_path\tduration_s",
        "u1\ts1\taudio/s1/a.flac\t3.0",
        "u2\ts1\taudio/s1/quiet.wav\t2.0",
        "u3\ts1\taudio/s1/noise.wav\t2.0",
        "u4\ts1\taudio/s1/gone.flac\t1.0",
        "u5\ts1\t\t1.0",
    ]
    (root / "utterances.tsv").write_text("\n".join(rows) + "\n")
    return root


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple:
    monkeypatch.setattr(sys, "argv", ["a2bs", "data", "transcribe", *map(str, args)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_transcribe_writes_a_folder_align_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _speech_folder(tmp_path / "lines")
    out = tmp_path / "asr"
    code, stdout, err = _run(monkeypatch, capsys, src, "--out", out, "--workers", "1", "--no-progress")
    assert code == 0 and "Traceback" not in err, err
    assert "skipped 4" in stdout and "next: a2bs data align" in stdout
    summary = json.loads((out / "transcribe.json").read_text())
    assert summary["n_lines"] == 5 and summary["n_recognised"] == 1 and summary["n_skipped"] == 4
    assert summary["skipped_by_kind"] == {"no audio path": 1, "silence": 1, "no words": 1, "unreadable audio file": 1}
    assert all(s["reason"] for s in summary["skipped"])
    header, row = (out / "transcripts.tsv").read_text().splitlines()
    assert header.split("\t") == list(T.COLUMNS)
    fields = dict(zip(T.COLUMNS, row.split("\t"), strict=True))
    assert fields["text_source"] == "pocketsphinx" and float(fields["confidence"]) >= T.MIN_CONFIDENCE
    assert T.wer(CATHY_TEXT, fields["text"]) <= 0.1
    # `a2bs data align` reads it, and finds the source audio (referenced, not copied)
    lines, skipped = read_lines(out)
    assert not skipped and [(x.name, x.speaker, x.text) for x in lines] == [("u1", "s1", fields["text"])]
    assert lines[0].audio == (src / "audio" / "s1" / "a.flac").resolve() and not list(out.rglob("*.flac"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asr", "lines"]  # no temp folder left
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask()  # not the staging folder's 0700


def test_scripted_lines_keep_their_text_and_bare_audio_folders_work(tmp_path: Path) -> None:
    src = tmp_path / "takes" / "anna"
    src.mkdir(parents=True)
    sf.write(src / "hello.wav", load_audio(CATHY), 16000)
    (src / "hello.txt").write_text("And you always want to see it.\n")
    summary = T.transcribe_folder(tmp_path / "takes", tmp_path / "out", workers=1, log=lambda _: None)
    assert summary["n_scripted"] == 1 and summary["n_recognised"] == 0
    lines, _ = read_lines(tmp_path / "out")
    assert [(x.name, x.speaker, x.text) for x in lines] == [("anna_hello", "anna", "And you always want to see it.")]


@pytest.mark.parametrize(
    ("setup", "keywords"),
    [
        (lambda p: None, ("not found",)),
        (lambda p: p.mkdir(), ("no audio",)),
        (lambda p: (p.mkdir(), (p / "utterances.tsv").write_bytes(b"utt_id\tpath\nna\xefve\tx.wav\n")), ("UTF-8",)),
        (lambda p: (p.mkdir(), (p / "transcripts.tsv").write_text("name\ttext\nx\ty\n")), ("path column",)),
        (lambda p: (p.mkdir(), (p / "transcripts.tsv").write_text("utt_id\tpath\n")), ("no rows",)),
        (lambda p: _only_silence(p), ("could be used", "silence")),
    ],
)
def test_bad_input_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup, keywords
) -> None:
    src = tmp_path / "speech"
    setup(src)
    code, _, err = _run(monkeypatch, capsys, src, "--out", tmp_path / "asr", "--workers", "1", "--no-progress")
    assert code == 2 and "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(k.lower() in lines[0].lower() for k in keywords), lines[0]
    assert not (tmp_path / "asr").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _only_silence(folder: Path) -> None:
    folder.mkdir()
    write_silence(folder, "a.wav", seconds=1.0)


def test_existing_output_and_bad_threshold_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "speech"
    src.mkdir()
    (tmp_path / "asr").mkdir()
    for extra, key in (
        (["--out", tmp_path / "asr"], "exists"),
        (["--out", tmp_path / "x" / "y"], "does not exist"),
        (["--out", tmp_path / "new", "--min-confidence", "2"], "between 0 and 1"),
    ):
        code, _, err = _run(monkeypatch, capsys, src, *extra)
        assert code == 2 and err.startswith("error: ") and key in err and len(err.splitlines()) == 1, err
    code, out, _ = _run(monkeypatch, capsys, "--help")
    assert code == 0 and f"Default: {T.MIN_CONFIDENCE} (measured)" in " ".join(out.replace("│", " ").split())


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _speech_folder(tmp_path / "lines")
    calls = []

    def interrupted(line: object, min_confidence: float) -> dict:
        calls.append(line)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"utt_id": "x", "speaker": "s", "path": "p", "skipped": "silence", "kind": "silence"}

    monkeypatch.setattr(T, "_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.transcribe_folder(src, tmp_path / "asr", workers=1, log=lambda _: None)
    assert len(calls) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["lines"]
