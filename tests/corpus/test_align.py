"""Real speech: ARPAbet visemes, the speaking-style curriculum, forced alignment (`a2bs data align`)
and the articulation scores of the benchmark."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from a2bs.core.blendshapes import INDEX
from a2bs.core.errors import A2BSError
from a2bs.corpus import coarticulation, motion, synth, visemes
from a2bs.corpus.align import (
    Aligner,
    AlignmentError,
    Perturbation,
    build_aligned_corpus,
    perturb,
    read_lines,
    transcript_words,
)
from a2bs.corpus.dataset import load_takes, split_takes
from a2bs.corpus.voices import read_segs, read_texts
from a2bs.training import articulation as A

SENTENCES = {
    "bob": "Bob bought a big blue map by the pool.",
    "five": "Five very fine violins moved off the farm.",
    "who": "Who would move the moon for you?",
}


def _espeak_line(folder: Path, name: str, text: str, voice: str) -> list[tuple[str, float, float]]:
    """A real-looking line: espeak-ng speech written as FLAC with its transcript; returns espeak's phones."""
    _, audio, phones, _ = synth.speak(text, voice, 160, 50, np.random.default_rng(0))
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{name}.flac", audio, 16000)
    (folder / f"{name}.txt").write_text(text + "\n")
    return phones


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner()


# ---- ARPAbet visemes and the speaking style ------------------------------------------------------
def test_arpabet_phones_make_the_expected_shapes() -> None:
    phones = [
        ("pau", 0.0, 0.3),
        ("m", 0.3, 0.4),
        ("aa1", 0.4, 0.6),
        ("f", 0.6, 0.7),
        ("uw1", 0.7, 0.9),
        ("pau", 0.9, 1.3),
    ]
    y, unknown = coarticulation.phones_to_curves(phones, 39, 30, accent=visemes.ARPABET_ACCENT)
    assert not unknown

    def at(t: float, shape: str) -> float:
        return float(y[round(t * 30), INDEX[shape]])

    assert at(0.35, "mouthClose") == at(0.35, "jawOpen") and at(0.5, "jawOpen") > 0.45  # /m/: lips sealed
    assert at(0.65, "mouthRollLower") > 0.35 and at(0.8, "mouthPucker") > 0.5
    # unstressed vowels are weaker than stressed ones; "ax" is AH0
    weak, _ = coarticulation.phones_to_curves(
        [("pau", 0, 0.2), ("aa0", 0.2, 0.5), ("pau", 0.5, 0.7)], 21, 30, accent=visemes.ARPABET_ACCENT
    )
    assert weak[10, INDEX["jawOpen"]] < y[15, INDEX["jawOpen"]]
    assert visemes.phone_spec("ah0", visemes.ARPABET_ACCENT) == visemes.ARPABET["ax"]
    _, unknown = coarticulation.phones_to_curves([("qq", 0, 0.2)], 6, 30, accent=visemes.ARPABET_ACCENT)
    assert unknown == {"qq": 1}


def test_speaking_style_drives_expression_levels() -> None:
    names = {"pitch_range": 5, "loudness_range": 11, "rate": 81, "pitch_level": 0}
    calm = np.zeros(88)
    lively = np.zeros(88)
    for key, i in names.items():
        _, mean, sd = motion.STYLE_FEATURES[key]
        calm[i] = mean - sd
        lively[i] = mean + 1.5 * sd
    lively[81] = motion.STYLE_FEATURES["rate"][1]  # same rate: only range, loudness and pitch differ
    calm[81] = lively[81]
    a, b = motion.SpeakingStyle.from_egemaps(calm), motion.SpeakingStyle.from_egemaps(lively)
    assert b.arousal > a.arousal + 1.0 and b.brightness > a.brightness
    la, lb = a.levels(), b.levels()
    assert lb["brow_up"] > la["brow_up"] + 0.1 and lb["smile"] > la["smile"] + 0.05
    assert motion.SpeakingStyle.from_egemaps(np.full(88, np.nan)) == motion.SpeakingStyle()
    # the same phones and rng with two styles: brows differ, mouth shapes do not
    _, audio, phones, _ = synth.speak("Who would move the moon?", "en-us", 160, 50, np.random.default_rng(1))
    ya, _ = synth.face_curves(phones, audio, 30, np.random.default_rng(2), style=a)
    yb, _ = synth.face_curves(phones, audio, 30, np.random.default_rng(2), style=b)
    assert yb[:, INDEX["browInnerUp"]].mean() > ya[:, INDEX["browInnerUp"]].mean() + 0.08
    np.testing.assert_array_equal(ya[:, INDEX["jawOpen"]], yb[:, INDEX["jawOpen"]])


# ---- alignment -----------------------------------------------------------------------------------
def test_transcript_words() -> None:
    assert transcript_words("Don't  stop—now, O'Brien!") == ["don't", "stop", "now", "o'brien"]
    for bad, reason in (("", "no English words"), ("Привет мир", "no English words"), ("I have 3 cats", "digits")):
        with pytest.raises(AlignmentError, match=reason):
            transcript_words(bad)


def test_alignment_matches_espeak_timing(tmp_path: Path, aligner: Aligner) -> None:
    """Aligning espeak-ng speech to its own text recovers espeak's phone boundaries (its events)."""
    truth = _espeak_line(tmp_path, "bob", SENTENCES["bob"], "en-us")
    audio = sf.read(tmp_path / "bob.flac", dtype="float32")[0]
    phones = aligner.align(audio, SENTENCES["bob"])
    assert phones[0][1] == 0.0 and phones[-1][2] == pytest.approx(len(audio) / 16000)
    assert all(a < b for _, a, b in phones) and all(p[2] == q[1] for p, q in itertools.pairwise(phones))
    labels = [p for p, _, _ in phones if p != "pau"]
    assert labels[:3] == ["b", "aa1", "b"] and "m" in labels
    # the bilabials' starts agree with espeak's own events to within 50 ms
    ours = [a for p, a, _ in phones if p in ("b", "m", "p")]
    theirs = [a for p, a, _ in truth if p in ("b", "m", "p")]
    assert len(ours) == len(theirs)
    assert np.median(np.abs(np.array(ours) - np.array(theirs))) < 0.05


def test_mismatched_transcript_is_refused(tmp_path: Path, aligner: Aligner) -> None:
    _espeak_line(tmp_path, "five", SENTENCES["five"], "en-gb")
    audio = sf.read(tmp_path / "five.flac", dtype="float32")[0]
    with pytest.raises(AlignmentError, match=r"does not match|differ"):
        aligner.align(audio, "Grandmother cooked spaghetti with tomatoes and garlic yesterday evening.")
    with pytest.raises(AlignmentError, match="dictionary"):
        aligner.align(audio, "Five very fine zxqvbrl moved off the farm.")


def test_perturbation_stretches_phones() -> None:
    _, audio, _, _ = synth.speak(SENTENCES["who"], "en-us+f2", 170, 50, np.random.default_rng(3))
    phones = [("pau", 0.0, 0.5), ("uw1", 0.5, len(audio) / 16000)]
    y, stretched = perturb(audio, phones, Perturbation(1.1, 1.2, 1.3, 1.12))
    assert len(y) / len(audio) == pytest.approx(1.12, abs=0.01)
    assert stretched[0][2] == pytest.approx(0.5 * len(y) / len(audio))
    assert stretched[-1][2] == pytest.approx(len(y) / 16000)


def test_build_aligned_corpus(tmp_path: Path) -> None:
    """Two speakers, one held out; bad lines are skipped with reasons and leave nothing behind."""
    src = tmp_path / "lines"
    _espeak_line(src / "anna", "bob", SENTENCES["bob"], "en-us+f3")
    _espeak_line(src / "anna", "five", SENTENCES["five"], "en-us+f3")
    _espeak_line(src / "tom", "who", SENTENCES["who"], "en-gb+m3")
    (src / "anna" / "orphan.txt").write_text("No audio for me.\n")
    _espeak_line(src / "anna", "empty", SENTENCES["who"], "en-us+f3")
    (src / "anna" / "empty.txt").write_text("   \n")
    _espeak_line(src / "anna", "wrong", SENTENCES["five"], "en-us+f3")
    (src / "anna" / "wrong.txt").write_text("Grandmother cooked spaghetti with tomatoes and garlic yesterday.\n")
    out = tmp_path / "corpus"
    logged: list[str] = []
    manifest = build_aligned_corpus(src, out, fps=30, copies=1, workers=1, val_speakers=["tom"], log=logged.append)
    assert manifest["speaker_disjoint_validation"] and manifest["val_speakers"] == ["tom"]
    assert sorted(manifest["split"]["val"]) == ["tom_who", "tom_who_v1"]
    assert sorted(manifest["split"]["train"]) == ["anna_bob", "anna_bob_v1", "anna_five", "anna_five_v1"]
    reasons = {s["line"]: s["reason"] for s in manifest["skipped"]}
    assert "no audio file" in reasons["anna_orphan"] and "no English words" in reasons["anna_empty"]
    assert "match" in reasons["anna_wrong"] or "differ" in reasons["anna_wrong"]
    assert not list((out / "takes").glob("anna_wrong*")) and not list(tmp_path.glob(".corpus*"))
    assert "skipped anna_wrong" in "\n".join(logged)
    takes, report = load_takes(out, 30)
    assert not report.skipped and len(takes) == 6
    _, val_takes = split_takes(out, takes)
    assert {t.name for t in val_takes} == {"tom_who", "tom_who_v1"}
    take = next(t for t in takes if t.name == "anna_bob_v1")
    assert take.emotion_raw is not None and take.emotion_raw.shape == (264,)  # cached, matches the file
    record = json.loads((out / "takes" / "anna_bob_v1.phones.json").read_text())
    assert record["perturbation"]["duration"] != 1.0 and record["speaker"] == "anna"
    # bilabial phones seal the lips in the targets (ARKit: mouthClose = jawOpen)
    mid = [take.curves[round((a + b) / 2 * 30)] for p, a, b in take.phones if p == "b"]
    assert mid and max(abs(float(c[INDEX["jawOpen"]]) - float(c[INDEX["mouthClose"]])) for c in mid) <= 0.005
    with pytest.raises(A2BSError, match="exists"):
        build_aligned_corpus(src, out, fps=30, copies=0, workers=1)
    with pytest.raises(A2BSError, match="not among"):
        build_aligned_corpus(src, tmp_path / "c2", fps=30, copies=0, workers=1, val_speakers=["nobody"])


def test_changed_audio_invalidates_the_emotion_cache(tmp_path: Path) -> None:
    src = tmp_path / "lines"
    _espeak_line(src, "bob", SENTENCES["bob"], "en-us")
    out = tmp_path / "corpus"
    build_aligned_corpus(src, out, fps=30, copies=0, workers=1, log=lambda _: None)
    assert load_takes(out, 30)[0][0].emotion_raw is not None
    wav = out / "takes" / "bob.wav"
    audio = sf.read(wav, dtype="float32")[0]
    sf.write(wav, audio * 0.5, 16000, subtype="PCM_16")
    assert load_takes(out, 30)[0][0].emotion_raw is None


def test_read_lines_tsv(tmp_path: Path) -> None:
    _espeak_line(tmp_path / "audio", "bob", SENTENCES["bob"], "en-us")
    (tmp_path / "transcripts.tsv").write_text(
        "utt_id\tspeaker\trelative_flac_path\ttext\n"
        f"u1\tann\taudio/bob.flac\t{SENTENCES['bob']}\nu1\tann\taudio/bob.flac\tagain\nu3\tann\t\tno path\n"
    )
    lines, skipped = read_lines(tmp_path)
    assert [line.name for line in lines] == ["u1", "u1_2"] and lines[0].speaker == "ann"
    assert skipped == [("u3", "line 4 of transcripts.tsv has no audio path")]
    (tmp_path / "transcripts.tsv").write_text("name\twords\nx\ty\n")
    with pytest.raises(A2BSError, match="'text' column"):
        read_lines(tmp_path)


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"text\tpath\nna\xefve caf\xe9\ta.wav\n", "not UTF-8 text"), (b"text\tpath\n" + b"w" * 200_000, "field larger")],
    ids=["latin-1", "huge-field"],
)
def test_a_malformed_transcripts_table_is_one_error(tmp_path: Path, body: bytes, says: str) -> None:
    """`a2bs data align` and `a2bs data voices` read transcripts.tsv through one reader. Was: a
    UnicodeDecodeError (a table saved as Latin-1) or a csv.Error traceback."""
    table = tmp_path / "transcripts.tsv"
    table.write_bytes(body)
    for read in (lambda: read_lines(tmp_path), lambda: read_texts(table)):
        with pytest.raises(A2BSError, match=r"transcripts\.tsv") as excinfo:
            read()
        assert says in str(excinfo.value) and "\n" not in str(excinfo.value)


# ---- articulation scores -------------------------------------------------------------------------
def test_contrast_aucs_and_controls() -> None:
    phones = [
        ("pau", 0, 0.2),
        ("m", 0.2, 0.3),
        ("aa", 0.3, 0.5),
        ("t", 0.5, 0.6),
        ("f", 0.6, 0.7),
        ("uw", 0.7, 0.9),
        ("iy", 0.9, 1.1),
        ("b", 1.1, 1.2),
        ("s", 1.2, 1.3),
        ("pau", 1.3, 1.5),
    ]
    truth, _ = coarticulation.phones_to_curves(phones, 45, 30, accent=visemes.ARPABET_ACCENT)
    aucs = A.contrast_aucs([A.contrast_samples(truth, phones, 30)])
    assert all(v == 1.0 for v in aucs.values()), aucs
    # negative control: a face that ignores the phones scores chance
    flat = np.full_like(truth, 0.2)
    assert all(v == 0.5 for v in A.contrast_aucs([A.contrast_samples(flat, phones, 30)]).values())
    # a face three frames late: the closure peaks come out ~100 ms late
    late = np.concatenate([np.repeat(truth[:1], 3, axis=0), truth[:-3]])
    assert np.mean(A.peak_offsets_ms(late, phones, 30, "closure")) == pytest.approx(
        np.mean(A.peak_offsets_ms(truth, phones, 30, "closure")) + 100, abs=20
    )


def test_speaker_mean_interval_is_wide_for_a_few_phones_and_narrow_for_many() -> None:
    rng = np.random.default_rng(0)

    def speaker(n: int) -> list[dict[str, tuple[list[float], list[float]]]]:
        pos, neg = list(rng.normal(1, 1, n)), list(rng.normal(0, 1, n))
        return [{name: (pos, neg) for name in A.CONTRASTS}]

    many, few = speaker(300), speaker(3)
    narrow = A.speaker_mean_interval({"lj": many}, reps=300)
    wide = A.speaker_mean_interval({"axb": few}, reps=300)
    point = A.contrast_aucs(many)["jaw"]  # about 0.76
    assert narrow["jaw"][0] < point < narrow["jaw"][1] and narrow["jaw"][1] - narrow["jaw"][0] < 0.1, narrow
    assert wide["jaw"][1] - wide["jaw"][0] > 0.4, wide  # three phones a class: the AUC can be read to +-0.2 at best
    # a speaker without a class (slt has no rounded vowel) drops out of that contrast's mean, not to NaN
    no_rounding = [{name: (([], []) if name == "rounding" else many[0][name]) for name in A.CONTRASTS}]
    both = A.speaker_mean_interval({"lj": many, "slt": no_rounding}, reps=50)
    assert all(np.isfinite(both[k]).all() for k in both), both


def test_schwa_is_in_no_contrast() -> None:
    """Festival's "ax" and CMUdict's AH0 are schwa, a reduced vowel: not an open vowel; stressed AH is."""
    jaw = A.CONTRASTS["jaw"]
    assert A.arpabet_class("ax") == A.arpabet_class("AH0") == "ax"
    assert all("ax" not in c.positive | c.negative for c in A.CONTRASTS.values())
    assert A.arpabet_class("ah1") == A.arpabet_class("ah") == "ah" and "ah" in jaw.positive
    # a schwa with a closed jaw between an open vowel and a bilabial leaves the jaw contrast at 1
    curves = np.zeros((30, 52), dtype=np.float32)
    curves[0:10, INDEX["jawOpen"]] = 0.8
    phones = [("aa1", 0.0, 10 / 30), ("ax", 10 / 30, 20 / 30), ("m", 20 / 30, 1.0)]
    assert A.contrast_aucs([A.contrast_samples(curves, phones, 30)])["jaw"] == 1.0
    counted_as_open = [("aa1", 0.0, 10 / 30), ("ah1", 10 / 30, 20 / 30), ("m", 20 / 30, 1.0)]
    assert A.contrast_aucs([A.contrast_samples(curves, counted_as_open, 30)])["jaw"] == 0.75


def test_espeak_phone_classes() -> None:
    assert A.arpabet_class("m", espeak=True) == "m" and A.arpabet_class("aI", espeak=True) == "ay"
    assert A.arpabet_class("u:", espeak=True) == "uw" and A.arpabet_class("@", espeak=True) is None
    assert A.is_espeak([("_", 0, 1), ("aI", 1, 2)]) and not A.is_espeak([("pau", 0, 1), ("ay1", 1, 2)])


def test_loudness_baseline_and_segs(tmp_path: Path) -> None:
    audio = np.concatenate([np.zeros(8000), 0.5 * np.sin(np.arange(8000) / 5.0), np.zeros(8000)])
    y = A.loudness_jaw(audio, 30, 45)
    jaw = y[:, INDEX["jawOpen"]]
    assert jaw[22] == pytest.approx(1.0, abs=0.05) and jaw[5] == pytest.approx(0.0, abs=0.05)
    assert np.count_nonzero(y[:, [i for i in range(52) if i != INDEX["jawOpen"]]]) == 0
    segs = tmp_path / "a.segs"
    segs.write_text("#\n0.1300 100 pau\n0.3100 100 ao\n0.4200 100 th\n")
    assert read_segs(segs) == [("pau", 0.0, 0.13), ("ao", 0.13, 0.31), ("th", 0.31, 0.42)]


# ---- more voices: Festival and Flite with their own phone timings (`a2bs data voices`) -------------
def test_voices_speak_with_timings_that_align_uses(tmp_path: Path) -> None:
    """Each voice writes wav + txt + segs; `a2bs data align` uses the given timings (no aligner), and a
    broken timing file is a skip reason, not a crash."""
    from a2bs.corpus.voices import missing_voices, read_texts, speak_lines

    texts_file = tmp_path / "texts.txt"
    texts_file.write_text(f"{SENTENCES['bob']}\n\n{SENTENCES['five']}\n{SENTENCES['bob']}\n")
    texts = read_texts(texts_file)
    assert texts == [SENTENCES["bob"], SENTENCES["five"]]  # blank and repeated lines dropped
    src = tmp_path / "voices"
    written = speak_lines(texts, src, ["kal", "rms"], log=lambda _: None)
    assert written == {"kal": 2, "rms": 2} and not list(tmp_path.glob(".voices*"))
    for voice in ("kal", "rms"):
        phones = read_segs(src / voice / f"{voice}_0000.segs")
        audio, rate = sf.read(src / voice / f"{voice}_0000.wav")
        assert rate == 16000 and abs(phones[-1][2] - len(audio) / rate) < 0.3
        assert [p for p, _, _ in phones if p in ("b", "m", "p")] == list("bbbbbmpbp")  # "Bob bought a big ..."
    (src / "kal" / "kal_0001.segs").write_text("#\n0.5 100 f\n0.2 100 ay\n")  # times go backwards
    out = tmp_path / "corpus"
    manifest = build_aligned_corpus(src, out, fps=30, copies=0, workers=1, val_speakers=["rms"], log=lambda _: None)
    assert manifest["split"] == {"train": ["kal_kal_0000"], "val": ["rms_rms_0000", "rms_rms_0001"]}
    assert "backwards" in manifest["skipped"][0]["reason"]
    record = json.loads((out / "takes" / "kal_kal_0000.phones.json").read_text())
    assert record["timings"].endswith("kal_0000.segs")
    given = [(p, round(a, 3)) for p, a, _ in read_segs(src / "kal" / "kal_0000.segs")]
    assert [(p, round(a, 3)) for p, a, _ in record["phones"]][: len(given)] == given  # used as given
    # the evaluation set's speakers are refused, as are unknown voices and an existing folder
    assert "evaluation set" in missing_voices(["slt"])[0] and "unknown voice" in missing_voices(["bob"])[0]
    with pytest.raises(A2BSError, match="evaluation set"):
        speak_lines(texts, tmp_path / "v2", ["awb"])
    with pytest.raises(A2BSError, match="text file not found"):
        read_texts(tmp_path / "missing.tsv")
    (tmp_path / "bad.tsv").write_text("name\tpath\nx\ty\n")
    with pytest.raises(A2BSError, match="no 'text' column"):
        read_texts(tmp_path / "bad.tsv")
    with pytest.raises(A2BSError, match="exists"):
        speak_lines(texts, src, ["kal"])


def test_retarget_rebuilds_targets_and_adds_background(tmp_path: Path) -> None:
    """A corpus made with old targets (here: over-closed bilabials written into its CSV) gets today's
    targets from its stored phones; with a background folder, non-speech stretches with rest targets."""
    from a2bs.core.animation_io import open_writer
    from a2bs.corpus.align import retarget_corpus

    src = tmp_path / "lines"
    _espeak_line(src, "bob", SENTENCES["bob"], "en-us")
    old = tmp_path / "old"
    build_aligned_corpus(src, old, fps=30, copies=0, workers=1, log=lambda _: None)
    take = load_takes(old, 30)[0][0]
    stale = take.curves.copy()
    stale[:, INDEX["mouthClose"]] = np.minimum(1.0, stale[:, INDEX["jawOpen"]] + 0.3)  # lips through each other
    with open_writer(old / "takes" / "bob.csv", fps=30, n_frames=len(stale), force=True) as w:
        w.write(stale)

    new = tmp_path / "new"
    retarget_corpus(old, new, log=lambda _: None)
    fresh = load_takes(new, 30)[0][0]
    assert fresh.curves.shape == take.curves.shape and fresh.emotion_raw is not None  # same audio, cache holds

    def gaps(curves: np.ndarray) -> list[float]:  # smallest lip gap over each bilabial, one frame either side
        gap = curves[:, INDEX["jawOpen"]] - curves[:, INDEX["mouthClose"]]
        return [float(gap[max(0, int(a * 30) - 1) : int(b * 30) + 2].min()) for p, a, b in take.phones if p in "pbm"]

    assert min(gaps(stale)) < -0.2  # the control: the stale targets are over-closed
    assert all(-0.01 <= g <= 0.01 for g in gaps(fresh.curves))  # today's: sealed, not pushed through

    room = tmp_path / "room"  # a recording with quiet stretches: a faint hiss, speech in the middle
    speech = sf.read(src / "bob.flac", dtype="float32")[0]
    hiss = 0.003 * np.random.default_rng(1).standard_normal(len(speech) + 32000).astype(np.float32)
    hiss[16000 : 16000 + len(speech)] += speech
    room.mkdir()
    sf.write(room / "r.wav", hiss, 16000)
    padded = tmp_path / "padded"
    retarget_corpus(old, padded, background=room, log=lambda _: None)
    with_room = load_takes(padded, 30)[0][0]
    lead = json.loads((padded / "takes" / "bob.phones.json").read_text())["augmentation"]["background"]["pad_s"][0]
    assert len(with_room.curves) > len(take.curves) and lead >= 0.3
    head = with_room.curves[: int(lead * 30) - 3]
    assert head[:, INDEX["jawOpen"]].max() <= 0.04  # rest on the added non-speech
    assert np.abs(head[:, INDEX["jawOpen"]] - head[:, INDEX["mouthClose"]]).max() <= 0.01  # lips together
    aligned = tmp_path / "aligned"  # the same background when aligning
    made = build_aligned_corpus(src, aligned, fps=30, copies=0, workers=1, background=room, log=lambda _: None)
    assert made["background"] == str(room.resolve())
    record = json.loads((aligned / "takes" / "bob.phones.json").read_text())
    assert record["phones"][0][0] == "sil" and record["augmentation"]["background"]["pad_s"][0] >= 0.3
    (tmp_path / "no_audio").mkdir()
    with pytest.raises(A2BSError, match="no room tone"):
        build_aligned_corpus(src, tmp_path / "a2", fps=30, copies=0, workers=1, background=tmp_path / "no_audio")
    speaker = json.loads((old / "corpus.json").read_text())["speakers"][0]
    resplit = retarget_corpus(old, tmp_path / "resplit", val_speakers=[speaker], log=lambda _: None)
    assert resplit["split"] == {"train": [], "val": ["bob"]} and resplit["speaker_disjoint_validation"]
    with pytest.raises(A2BSError, match="not among"):
        retarget_corpus(old, tmp_path / "x", val_speakers=["nobody"], log=lambda _: None)
    with pytest.raises(A2BSError, match="exists"):
        retarget_corpus(old, new, log=lambda _: None)
    with pytest.raises(A2BSError, match=r"not an aligned corpus|no readable corpus\.json"):
        retarget_corpus(src, tmp_path / "x", log=lambda _: None)
