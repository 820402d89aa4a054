"""Streaming writers (CSV / JSON / NPY) and the Live Link Face CSV reader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from a2bs.core.animation_io import _csv_rows, format_timecode, open_writer, read_live_link_face_csv
from a2bs.core.blendshapes import (
    ARKIT_BLENDSHAPES,
    LIVE_LINK_FACE_BLENDSHAPES,
    LIVE_LINK_FACE_COLUMNS,
    LIVE_LINK_FACE_ROTATIONS,
)
from a2bs.core.errors import A2BSError


def _frames(n: int, seed: int = 0) -> np.ndarray:
    """Random frames whose columns are distinguishable: column j lies in [j/52, (j+1)/52)."""
    rng = np.random.default_rng(seed)
    return ((np.arange(52) + rng.random((n, 52))) / 52).astype(np.float32)


def _write(path: Path, frames: np.ndarray, fps: int = 30, chunks=(7, 0, 50), **kw) -> None:
    """Write in uneven chunks (including an empty one) to exercise chunk boundaries."""
    with open_writer(path, fps=fps, n_frames=len(frames), **kw) as w:
        start = 0
        for size in chunks:
            w.write(frames[start : start + size])
            start += size
        w.write(frames[start:])


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))  # includes hidden .part temp files


# --- round trips --------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path) -> None:
    frames = _frames(100)
    out = tmp_path / "out.csv"
    _write(out, frames)
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(LIVE_LINK_FACE_COLUMNS)
    assert len(lines) == 101
    row = lines[1].split(",")
    assert len(row) == len(LIVE_LINK_FACE_COLUMNS) == 63
    assert row[1] == "61"
    assert row[-9:] == ["0"] * 9
    assert all(len(v) == 8 and v[1] == "." for v in row[2:54])  # fixed 6 decimals

    read, timecodes, fps = read_live_link_face_csv(out)
    assert read.dtype == np.float32 and read.shape == (100, 52)
    np.testing.assert_allclose(read, frames, atol=5e-7 + 1e-7)
    assert (np.floor(read * 52).astype(int) == np.arange(52)).all()  # column order preserved
    assert timecodes[0] == "00:00:00:00.000" and timecodes[-1] == "00:00:03:09.000"
    assert fps == 30
    assert _listing(tmp_path) == ["out.csv"]


def test_csv_value_formatting(tmp_path: Path) -> None:
    frames = np.zeros((3, 52), dtype=np.float32)
    frames[0, :4] = [0.0, 1.0, 0.5, 0.25]
    frames[1, :3] = [-0.2, 1.3, 0.1234564]  # out of range values are clipped
    out = tmp_path / "v.csv"
    _write(out, frames, chunks=())
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert rows[0][2:6] == ["0.000000", "1.000000", "0.500000", "0.250000"]
    assert rows[1][2:5] == ["0.000000", "1.000000", "0.123456"]


@pytest.mark.parametrize(
    ("fps", "frame", "expected"),
    [
        (30, 0, "00:00:00:00.000"),
        (30, 29, "00:00:00:29.000"),
        (30, 30, "00:00:01:00.000"),
        (30, 1800, "00:01:00:00.000"),
        (60, 59, "00:00:00:59.000"),
        (60, 60, "00:00:01:00.000"),
    ],
)
def test_csv_timecodes(tmp_path: Path, fps: int, frame: int, expected: str) -> None:
    assert format_timecode(frame, fps) == expected
    out = tmp_path / "t.csv"
    _write(out, np.zeros((frame + 1, 52), dtype=np.float32), fps=fps, chunks=(frame // 2,))
    lines = out.read_text().splitlines()
    assert lines[1 + frame].split(",")[0] == expected
    assert read_live_link_face_csv(out)[1][frame] == expected


def test_timecode_hours() -> None:
    assert format_timecode(30 * 3600, 30) == "01:00:00:00.000"
    assert format_timecode(60 * 3600 * 25 + 61, 60) == "25:00:01:01.000"  # not wrapped at 24
    assert format_timecode(30 * 3600 * 123 + 5, 30) == "123:00:00:05.000"


@pytest.mark.parametrize("start", [0, 30 * 3600 * 99 + 30 * 3599, 30 * 3600 * 123])
def test_csv_rows_vectorized_matches_reference(start: int) -> None:
    """The vectorized timecodes (and the >= 100 hours fallback) match format_timecode."""
    frames = _frames(40)
    rows = _csv_rows(frames, start, 30).decode().splitlines()
    assert len(rows) == 40
    for i, row in enumerate(rows):
        fields = row.split(",")
        assert fields[0] == format_timecode(start + i, 30)
        assert fields[1] == "61"
        assert fields[2:54] == [f"{v:.6f}" for v in frames[i].astype(np.float64)]


def test_json_round_trip(tmp_path: Path) -> None:
    frames = _frames(75)
    out = tmp_path / "out.json"
    _write(out, frames, fps=60, metadata={"audio": "talk.wav", "model": "a2bs-v1"})
    with open(out) as f:
        doc = json.load(f)
    assert list(doc) == ["fps", "blendshapes", "frame_count", "metadata", "frames"]
    assert doc["fps"] == 60
    assert doc["blendshapes"] == list(ARKIT_BLENDSHAPES)
    assert doc["frame_count"] == 75
    assert doc["metadata"] == {"audio": "talk.wav", "model": "a2bs-v1"}
    got = np.array(doc["frames"])
    assert got.shape == (75, 52)
    np.testing.assert_allclose(got, np.round(frames.astype(np.float64), 6), atol=1.5e-6)
    assert np.allclose(got, np.round(got, 6), atol=1e-12)  # rounded to 6 decimals
    assert _listing(tmp_path) == ["out.json"]


def test_json_empty_and_default_metadata(tmp_path: Path) -> None:
    out = tmp_path / "empty.json"
    with open_writer(out, fps=30, n_frames=0):
        pass
    doc = json.loads(out.read_text())
    assert doc["frames"] == [] and doc["frame_count"] == 0 and doc["metadata"] == {}


def test_json_metadata_must_serialize(tmp_path: Path) -> None:
    with pytest.raises(A2BSError, match="not JSON-serializable"):
        open_writer(tmp_path / "m.json", fps=30, n_frames=1, metadata={"x": object()})
    assert _listing(tmp_path) == []


def test_npy_round_trip(tmp_path: Path) -> None:
    frames = _frames(90)
    frames[3, 5] = 1.5  # clipped
    out = tmp_path / "out.npy"
    _write(out, frames)
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (90, 52)
    np.testing.assert_array_equal(got, np.clip(frames, 0, 1))
    assert _listing(tmp_path) == ["out.npy"]


# --- head and eye rotations (the life layer's) ------------------------------------------------------------


def _rotations(n: int, seed: int = 1) -> np.ndarray:
    """Radians of both signs, with the cases the text formats must get right: 0, -0.0, a value that
    rounds to zero from below, pi."""
    rot = np.random.default_rng(seed).uniform(-0.3, 0.3, (n, 9))
    rot[0, :5] = [0.0, -0.0, -4e-7, np.pi, -np.pi]
    return rot


def _write_both(path: Path, frames: np.ndarray, rotations: np.ndarray, chunks=(7, 0, 50), **kw) -> None:
    with open_writer(path, fps=30, n_frames=len(frames), rotations=True, **kw) as w:
        start = 0
        for size in (*chunks, len(frames)):
            w.write(frames[start : start + size], rotations[start : start + size])
            start += size


def test_csv_rotation_columns(tmp_path: Path) -> None:
    """The 9 columns after the shapes hold the rotations in radians with 6 decimals, a sign only when
    negative (as Live Link Face writes them); the reader still reads the shapes."""
    frames, rotations = _frames(60), _rotations(60)
    out = tmp_path / "rot.csv"
    _write_both(out, frames, rotations)
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert len(rows) == 60 and all(len(r) == 63 for r in rows)
    assert rows[0][-9:][:5] == ["0.000000", "0.000000", "0.000000", "3.141593", "-3.141593"]
    got = np.array([[float(v) for v in r[-9:]] for r in rows])
    np.testing.assert_allclose(got, rotations, atol=5e-7 + 1e-12)
    assert all(v == f"{float(v):.6f}" or v == "0.000000" for r in rows for v in r[-9:])
    read, _, _ = read_live_link_face_csv(out)
    np.testing.assert_allclose(read, frames, atol=6e-7)
    # the >= 100 hours path formats them the same way
    late = _csv_rows(frames[:3], 30 * 3600 * 120, 30, rotations[:3]).decode().splitlines()
    assert [r.split(",")[-9:] for r in late] == [r[-9:] for r in rows[:3]]


def test_json_and_npy_rotations(tmp_path: Path) -> None:
    frames, rotations = _frames(45), _rotations(45)
    _write_both(tmp_path / "r.json", frames, rotations, metadata={"life": "natural"})
    doc = json.loads((tmp_path / "r.json").read_text())
    assert list(doc) == [
        "fps", "blendshapes", "frame_count", "metadata", "frames", "rotation_names", "rotation_unit", "rotations",
    ]  # fmt: skip
    assert doc["rotation_names"] == list(LIVE_LINK_FACE_ROTATIONS) and doc["rotation_unit"] == "radians"
    np.testing.assert_allclose(np.array(doc["rotations"]), rotations, atol=5e-7 + 1e-12)
    np.testing.assert_allclose(np.array(doc["frames"]), frames, atol=6e-7)
    _write_both(tmp_path / "r.npy", frames, rotations)
    got = np.load(tmp_path / "r.npy")
    assert got.shape == (45, 61) and got.dtype == np.float32
    np.testing.assert_array_equal(got[:, :52], frames)
    np.testing.assert_array_equal(got[:, 52:], rotations.astype(np.float32))
    assert _listing(tmp_path) == ["r.json", "r.npy"]  # the JSON spool is gone


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
@pytest.mark.parametrize(
    ("opened_with", "rotations", "match"),
    [
        (False, np.zeros((3, 9)), "opened without head and eye rotations"),
        (True, None, "opened with head and eye rotations"),
        (True, np.zeros((3, 8)), r"rotations of shape \(3, 9\)"),
        (True, np.full((3, 9), 3.2), "frame 0 HeadYaw is 3.2"),
        (True, np.where(np.eye(3, 9) > 0, np.nan, 0.0), "frame 0 HeadYaw is nan"),
    ],
)
def test_bad_rotations_abort(tmp_path: Path, suffix: str, opened_with: bool, rotations, match: str) -> None:
    out = tmp_path / f"bad{suffix}"
    with pytest.raises(A2BSError, match=match), open_writer(out, 30, 3, rotations=opened_with) as w:
        w.write(_frames(3), rotations)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_output_has_normal_permissions(tmp_path: Path, suffix: str) -> None:
    """mkstemp creates 0600 files; the result must follow the umask like any other file."""
    out = tmp_path / f"p{suffix}"
    _write(out, _frames(3), chunks=())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --- reader -------------------------------------------------------------------------------


def _llf_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    lines = [",".join(columns)] + [",".join(r[c] for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _capture_rows(frames: np.ndarray) -> list[dict[str, str]]:
    """Live Link Face-like rows: 60 fps capture on a 30 fps timecode with sub-frames."""
    rows = []
    for k, frame in enumerate(frames):
        sec, sub = divmod(k, 60)
        row = {
            "Timecode": f"17:46:{sec + 1:02d}:{sub // 2:02d}.{500 * (sub % 2):03d}",
            "BlendShapeCount": "61",
        }
        row.update({name: repr(float(v)) for name, v in zip(LIVE_LINK_FACE_BLENDSHAPES, frame, strict=True)})
        row.update({r: "0.01" for r in LIVE_LINK_FACE_ROTATIONS})
        rows.append(row)
    return rows


def test_read_shuffled_columns(tmp_path: Path) -> None:
    frames = _frames(150, seed=3)
    columns = list(LIVE_LINK_FACE_COLUMNS)
    np.random.default_rng(1).shuffle(columns)
    path = tmp_path / "capture.csv"
    _llf_csv(path, columns, _capture_rows(frames))
    read, timecodes, fps = read_live_link_face_csv(path)
    np.testing.assert_array_equal(read, frames)
    assert timecodes[:3] == ["17:46:01:00.000", "17:46:01:00.500", "17:46:01:01.000"]
    assert fps == 60  # rows per whole second, not the timecode rate


def test_read_optional_columns_and_short_file(tmp_path: Path) -> None:
    """Rotations and BlendShapeCount are optional; fps is None without a whole second."""
    frames = _frames(10)
    columns = ["Timecode", *LIVE_LINK_FACE_BLENDSHAPES]
    path = tmp_path / "min.csv"
    _llf_csv(path, columns, _capture_rows(frames))
    read, timecodes, fps = read_live_link_face_csv(path)
    np.testing.assert_array_equal(read, frames)
    assert len(timecodes) == 10 and fps is None


def test_read_missing_column(tmp_path: Path) -> None:
    columns = [c for c in LIVE_LINK_FACE_COLUMNS if c != "JawOpen"]
    path = tmp_path / "bad.csv"
    _llf_csv(path, columns, _capture_rows(_frames(2)))
    with pytest.raises(A2BSError, match=r"missing column.*JawOpen"):
        read_live_link_face_csv(path)


def test_read_unknown_column(tmp_path: Path) -> None:
    columns = [*LIVE_LINK_FACE_COLUMNS, "Confidence"]
    rows = _capture_rows(_frames(2))
    for r in rows:
        r["Confidence"] = "1"
    path = tmp_path / "bad.csv"
    _llf_csv(path, columns, rows)
    with pytest.raises(A2BSError, match="unknown column 'Confidence'"):
        read_live_link_face_csv(path)


@pytest.mark.parametrize("value", ["nan", "", "abc", "inf"])
def test_read_bad_value_names_line_and_column(tmp_path: Path, value: str) -> None:
    rows = _capture_rows(_frames(5))
    rows[3]["MouthFunnel"] = value
    path = tmp_path / "bad.csv"
    _llf_csv(path, list(LIVE_LINK_FACE_COLUMNS), rows)
    with pytest.raises(A2BSError, match="line 5, column MouthFunnel") as info:
        read_live_link_face_csv(path)
    assert "\n" not in str(info.value)


def test_read_wrong_field_count_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(",".join(LIVE_LINK_FACE_COLUMNS) + "\n00:00:00:00.000,61,0.5\n")
    with pytest.raises(A2BSError, match="line 2 has 3 fields"):
        read_live_link_face_csv(path)
    with pytest.raises(A2BSError, match="no such file"):
        read_live_link_face_csv(tmp_path / "nope.csv")


# --- path checks --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_existing_file_without_force_is_untouched(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    out.write_text("precious")
    with pytest.raises(A2BSError) as info:
        open_writer(out, fps=30, n_frames=1)
    assert str(info.value) == f"{out} exists: pass --force to overwrite"
    assert out.read_text() == "precious"
    assert _listing(tmp_path) == [f"out{suffix}"]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_existing_file_with_force_is_replaced(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    out.write_text("old")
    _write(out, _frames(4), force=True, chunks=())
    assert out.read_bytes() != b"old"
    assert _listing(tmp_path) == [f"out{suffix}"]


def test_file_appearing_meanwhile_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    w = open_writer(out, fps=30, n_frames=1)
    w.write(_frames(1))
    out.write_text("someone else's")
    with pytest.raises(A2BSError, match="exists"):
        w.close()
    assert out.read_text() == "someone else's"
    assert _listing(tmp_path) == ["out.csv"]


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(A2BSError) as info:
        open_writer(tmp_path / "out.txt", fps=30, n_frames=1)
    assert str(info.value) == "unsupported output format '.txt': use .csv, .json or .npy"


def test_missing_parent_directory(tmp_path: Path) -> None:
    with pytest.raises(A2BSError, match="does not exist: create it first") as info:
        open_writer(tmp_path / "results" / "run1" / "out.csv", fps=30, n_frames=1)
    assert "mkdir -p" in str(info.value)
    assert not (tmp_path / "results").exists()


def test_directory_as_path(tmp_path: Path) -> None:
    d = tmp_path / "anim.csv"
    d.mkdir()
    with pytest.raises(A2BSError, match="is a directory"):
        open_writer(d, fps=30, n_frames=1, force=True)


def test_parent_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 555 does not stop root (tests may run as root), so fake the permission check.
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(A2BSError, match="permission denied"):
        open_writer(tmp_path / "out.csv", fps=30, n_frames=1)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(("fps", "n_frames"), [(0, 10), (30, -1), (29.97, 10)])
def test_bad_fps_or_frame_count(tmp_path: Path, fps, n_frames) -> None:
    with pytest.raises(A2BSError):
        open_writer(tmp_path / "out.csv", fps=fps, n_frames=n_frames)
    assert _listing(tmp_path) == []


# --- atomicity ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_exception_in_with_block_leaves_nothing(tmp_path: Path, suffix: str, exc: type) -> None:
    out = tmp_path / f"out{suffix}"
    with pytest.raises(exc), open_writer(out, fps=30, n_frames=10) as w:
        w.write(_frames(5))
        parts = [n for n in _listing(tmp_path) if n.endswith(".part")]
        assert len(parts) == 1 and parts[0].startswith(f".out{suffix}.")
        assert f".out{suffix}.lock" in _listing(tmp_path)  # the writer's lock, released with it
        raise exc("stop")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_exception_keeps_existing_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    out.write_text("old")
    with pytest.raises(RuntimeError), open_writer(out, fps=30, n_frames=10, force=True) as w:
        w.write(_frames(10))
        raise RuntimeError
    assert out.read_text() == "old"
    assert _listing(tmp_path) == [f"out{suffix}"]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_too_few_frames_at_close_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    with pytest.raises(A2BSError, match="9 of 10 frames written"), open_writer(out, fps=30, n_frames=10) as w:
        w.write(_frames(9))
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".json", ".npy"])
def test_too_many_frames_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    with pytest.raises(A2BSError, match="more than the 10 declared"), open_writer(out, 30, 10) as w:
        w.write(_frames(6))
        w.write(_frames(6))
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    ("chunk", "match"),
    [
        (np.zeros((4, 51), dtype=np.float32), r"shape \(n, 52\)"),
        (np.zeros(52, dtype=np.float32), r"shape \(n, 52\)"),
        (np.full((4, 52), np.nan, dtype=np.float32), "frame 0 eyeBlinkLeft is nan"),
    ],
)
def test_bad_chunk_aborts(tmp_path: Path, chunk: np.ndarray, match: str) -> None:
    out = tmp_path / "out.csv"
    w = open_writer(out, fps=30, n_frames=4)
    with pytest.raises(A2BSError, match=match):
        w.write(chunk)
    assert _listing(tmp_path) == []
    with pytest.raises(A2BSError, match="already aborted"):
        w.close()


def test_close_and_abort_are_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "out.npy"
    w = open_writer(out, fps=30, n_frames=2)
    w.write(_frames(2))
    w.close()
    w.close()
    w.abort()  # after a successful close: no effect
    assert _listing(tmp_path) == ["out.npy"]
