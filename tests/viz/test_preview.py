"""Face previews (`a2bs.viz.preview`): real videos encoded by the wheel's ffmpeg and decoded back, the face
drawn from the curves (with negative controls), the writer's safety (no overwrite, no temp file after an
error or Ctrl-C), and the face video in a real bundle's validation report."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from audio_fixtures import write_tone

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError
from a2bs.mobile_validation import parity as P
from a2bs.mobile_validation import validate as V
from a2bs.viz import preview
from a2bs.viz.preview import FaceRenderer, lip_opening, render_preview

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SIZE = 128  # small faces keep the encoding tests fast; the geometry is relative to the size


def _frames(n: int, seed: int = 0) -> np.ndarray:
    """Smooth, speech-like curves in [0, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 30.0
    level, amount = rng.uniform(0.0, 0.4, 52), rng.uniform(0.0, 0.4, 52)
    return np.clip(level + amount * np.sin(rng.uniform(1, 8, 52) * t + rng.uniform(0, 6, 52)), 0, 1).astype(np.float32)


def _decode(path: Path) -> tuple[dict, np.ndarray]:
    """(metadata, frames (n, h, w, 3) uint8) decoded by ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
    return meta, frames


def _decoded_audio(path: Path) -> np.ndarray:
    raw = subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _ffmpeg_children() -> list[str]:
    """Command lines of this process's child processes that are ffmpeg (none may outlive a render)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with_cmd = Path(f"/proc/{pid}/cmdline")
            if with_cmd.exists() and b"ffmpeg" in with_cmd.read_bytes():
                found.append(pid)
    return found


# --- the video ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [30, 60])
def test_video_has_exact_frames_fps_and_audio_length(tmp_path: Path, fps: int) -> None:
    n = 47  # not a whole number of seconds, nor of AAC frames
    speech = np.random.default_rng(1).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)  # 1 s: cut to n / fps
    seen: list[int] = []
    out = render_preview(_frames(n), fps, tmp_path / "face.mp4", speech, size=SIZE, progress=seen.append)
    meta, frames = _decode(out)
    assert out == tmp_path / "face.mp4" and _leftovers(tmp_path) == []
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p") and meta["fps"] == fps
    assert len(frames) == n and frames.shape[1:] == (SIZE, SIZE, 3)
    assert meta["audio_codec"] == "aac"
    want = round(n * SAMPLE_RATE / fps)
    audio = _decoded_audio(out)
    assert abs(len(audio) - want) <= 1, (len(audio), want)
    assert seen[-1] == n and seen == sorted(seen) and all(k % fps == 0 for k in seen[:-1])
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_short_audio_file_is_padded_with_silence(tmp_path: Path) -> None:
    """An audio file a2bs reads (any rate, stereo) shorter than the animation: the sound is the file,
    then silence up to n / fps."""
    import soundfile as sf

    wav = tmp_path / "tone.wav"
    t = np.arange(22050 // 2) / 22050  # 0.5 s at 22.05 kHz, stereo
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(wav, np.stack([tone, tone], axis=1), 22050, subtype="PCM_16")
    n = 45  # 1.5 s at 30 fps
    out = render_preview(_frames(n), 30, tmp_path / "padded.mp4", wav, size=SIZE)
    audio = _decoded_audio(out)
    assert abs(len(audio) - n * SAMPLE_RATE // 30) <= 1
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(audio[1000:7000]) > 0.2 and rms(audio[10000:]) < 0.01  # the tone, then silence
    without = render_preview(_frames(n), 30, tmp_path / "silent.mp4", size=SIZE)
    meta, frames = _decode(without)
    assert "audio_codec" not in meta and len(frames) == n


def test_side_by_side_width_labels_and_title(tmp_path: Path) -> None:
    n = 12
    a, b = _frames(n, 0), _frames(n, 1)
    out = render_preview([a, b], 30, tmp_path / "pair.mp4", labels=["reference", "artifact"], title="clip", size=SIZE)
    _, frames = _decode(out)
    assert len(frames) == n and frames.shape[2] == 2 * SIZE and frames.shape[1] > SIZE
    assert frames.shape[1] % 2 == 0
    with pytest.raises(A2BSError, match="same length"):
        render_preview([a, b[:-1]], 30, tmp_path / "x.mp4", size=SIZE)
    with pytest.raises(A2BSError, match="2 labels for 1 animations"):
        render_preview(a, 30, tmp_path / "x.mp4", labels=["a", "b"], size=SIZE)
    assert _leftovers(tmp_path) == []


def test_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    """Was: a traceback (UnicodeEncodeError) for an output or clip whose name is Latin-1, as the title comes
    from the clip's name and the temp sound file from the output's."""
    clip = tmp_path / os.fsdecode(b"caf\xe9.wav")
    clip.write_bytes(write_tone(tmp_path, "t.wav", seconds=0.4).read_bytes())
    out = render_preview(_frames(12, 0), 30, tmp_path / os.fsdecode(b"p\xe9.mp4"), clip, title=clip.name, size=SIZE)
    assert len(_decode(out)[1]) == 12
    assert _leftovers(tmp_path) == []


def test_the_face_moves_with_the_curves(tmp_path: Path) -> None:
    """Negative control in the video: jawOpen = 1 differs from jawOpen = 0 in the mouth region, far beyond
    what the compression changes elsewhere; identical curves give (near-)identical decoded images."""
    n = 30
    frames = np.zeros((n, 52), np.float32)
    frames[10:20, INDEX["jawOpen"]] = 1.0
    _, video = _decode(render_preview(frames, 30, tmp_path / "jaw.mp4", size=256))
    video = video.astype(np.float32)
    mouth = (slice(int(0.6 * 256), int(0.95 * 256)), slice(int(0.3 * 256), int(0.7 * 256)))
    eyes = (slice(int(0.3 * 256), int(0.45 * 256)), slice(int(0.25 * 256), int(0.75 * 256)))
    opened = np.abs(video[15][mouth] - video[5][mouth]).mean()
    still = np.abs(video[5][mouth] - video[25][mouth]).mean()  # identical curves, different frames
    assert opened > 20 and still < 2 and opened > 10 * max(still, 0.1)
    assert np.abs(video[15][eyes] - video[5][eyes]).mean() < 2  # the jaw does not move the eyes


def _lips_frames() -> np.ndarray:
    """Neutral; sealed (mouthClose = jawOpen = 0.3); open (jawOpen 0.3, mouthClose 0); over-closed (0.3, 0.6);
    sealed with the jaw far down (0.8, 0.8)."""
    frames = np.zeros((5, 52), np.float32)
    for k, (jaw, close) in enumerate([(0, 0), (0.3, 0.3), (0.3, 0), (0.3, 0.6), (0.8, 0.8)]):
        frames[k, INDEX["jawOpen"]], frames[k, INDEX["mouthClose"]] = jaw, close
    return frames


def _mouth_interior(image: np.ndarray) -> int:
    """Pixels of the open mouth's inside (its dark red, or the teeth's white) around the lips of an RGB face."""
    size = image.shape[0]
    box = image[int(0.6 * size) : int(0.8 * size), int(0.3 * size) : int(0.7 * size)].astype(np.int16)
    r, g, b = box[..., 0], box[..., 1], box[..., 2]
    return int(((r < 130) & (g < 70) & (b < 80)).sum() + ((g > 225) & (b > 215)).sum())


def _chin(image: np.ndarray) -> int:
    """The lowest row of the head's outline down the middle of the face."""
    column = image[:, image.shape[1] // 2].astype(np.int16)
    return int(np.flatnonzero(np.abs(column - np.array(preview.SKIN_LINE)).sum(axis=1) < 60).max())


def test_lips_meet_when_mouth_close_equals_jaw_open(tmp_path: Path) -> None:
    """ARKit's lips: sealed when mouthClose = jawOpen (0.3), whatever the jaw (also at 0.8, with a longer face),
    open with mouthClose = 0, never opened further by mouthClose above jawOpen. In the decoded video (the
    neutral face gives compression's count of look-alike pixels) and in the exact drawing (none at all)."""
    frames = _lips_frames()
    _, video = _decode(render_preview(frames, 30, tmp_path / "lips.mp4", size=256))
    neutral, sealed, opened, over, sealed_low = (_mouth_interior(image) for image in video)
    assert sealed <= neutral + 3 and over <= neutral + 3 and sealed_low <= neutral + 3, (neutral, sealed, over)
    assert opened > 200, opened
    face = FaceRenderer(256)
    drawn = [np.asarray(face.draw(frame)) for frame in frames]
    assert [_mouth_interior(image) for image in drawn] == [0, 0, _mouth_interior(drawn[2]), 0, 0]
    assert _mouth_interior(drawn[2]) > 200
    chins = [_chin(image) for image in drawn]  # the jaw still drops with the lips sealed
    assert chins[0] < chins[1] == chins[2] == chins[3] < chins[4], chins
    # Negative control: the old mapping (the jaw scaled by mouthClose) draws the sealed frame with parted lips.
    old = lambda jaw, close, lower, funnel, press: 0.17 * jaw * (1 - 0.85 * close)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preview, "lip_opening", old)
        assert _mouth_interior(np.asarray(face.draw(frames[1]))) > 100


def test_lip_opening_is_arkits_lip_gap() -> None:
    """The formula the sample apps share: jawOpen - mouthClose (clipped at 0) times the jaw constant; press
    thins, never opens; lowerDown and funnel part the lips on their own."""
    assert lip_opening(0.3, 0.3, 0, 0, 0) == 0 and lip_opening(0.8, 0.8, 0, 0, 0) == 0
    assert lip_opening(0.3, 0, 0, 0, 0) == pytest.approx(preview.LIP_OPENING_PER_JAW * 0.3)
    assert lip_opening(0.3, 0.6, 0, 0, 0) == 0 and lip_opening(0.3, 0.3, 0, 0, 1) == 0
    assert lip_opening(0.3, 0.1, 0, 0, 1) == pytest.approx(0.5 * lip_opening(0.3, 0.1, 0, 0, 0))
    assert lip_opening(0, 0, 1, 0, 0) > 0 and lip_opening(0, 0, 0, 1, 0) > 0
    assert lip_opening(2, -1, 0, 0, 0) == lip_opening(1, 0, 0, 0, 0)  # inputs clipped to [0, 1]


def test_renderer_is_exact_and_every_mapped_shape_shows() -> None:
    """The drawing itself (before compression): identical frames give identical pixels; each shape the face
    shows changes the picture, on the person's own side (their left on the viewer's right)."""
    face = FaceRenderer(256)
    neutral = np.zeros(52, np.float32)
    base = np.asarray(face.draw(neutral), dtype=np.int16)
    assert np.array_equal(base, np.asarray(face.draw(neutral.copy()), dtype=np.int16))
    shown = [n for n in ARKIT_BLENDSHAPES if n != "jawForward"]  # a frontal face cannot show the jaw moving forward
    one_sided = ("eye", "brow", "cheekSquint", "noseSneer", "mouthSmile", "mouthFrown", "mouthStretch", "mouthDimple")
    for name in shown:
        frame = neutral.copy()
        if name == "mouthClose":  # it brings the lips together while the jaw is open
            frame[INDEX["jawOpen"]] = 0.6
        before = np.asarray(face.draw(frame), dtype=np.int16)
        frame[INDEX[name]] = 1.0
        diff = np.abs(np.asarray(face.draw(frame), dtype=np.int16) - before).sum(axis=2)
        assert (diff > 30).sum() > 20, f"{name} does not change the face"
        if name.startswith(one_sided) and name.endswith(("Left", "Right")):
            viewer_left, viewer_right = diff[:, :128].sum(), diff[:, 128:].sum()
            own, other = (viewer_right, viewer_left) if name.endswith("Left") else (viewer_left, viewer_right)
            assert own > 2 * other, f"{name} moves the wrong side of the face"
    frame = neutral.copy()
    frame[INDEX["jawForward"]] = 1.0
    assert np.array_equal(np.asarray(face.draw(frame), dtype=np.int16), base)
    # values out of [0, 1] are clipped, as every writer does
    assert np.array_equal(np.asarray(face.draw(neutral - 1), dtype=np.int16), base)


def _skin_centre(image: np.ndarray) -> np.ndarray:
    """(x, y) centre of the face's skin pixels."""
    skin = np.abs(image.astype(np.int16) - np.array(preview.SKIN)).sum(axis=2) < 12
    ys, xs = np.nonzero(skin)
    return np.array([xs.mean(), ys.mean()])


def test_the_head_turns_nods_and_tilts_with_the_rotations(tmp_path: Path) -> None:
    """61 values (the life layer's rotations after the shapes): HeadYaw moves the face towards the person's
    right (the viewer's left), HeadPitch down, HeadRoll tilts it counter-clockwise on screen; zero rotations
    draw exactly the 52-value face; a video of 61-value frames renders, and a NaN rotation is named."""
    face = FaceRenderer(256)
    neutral = np.zeros(61, np.float32)
    base = np.asarray(face.draw(neutral))
    assert np.array_equal(base, np.asarray(face.draw(neutral[:52])))
    centre = _skin_centre(base)
    moved = {}
    for j, name in enumerate(("yaw", "pitch", "roll")):
        frame = neutral.copy()
        frame[52 + j] = 0.1
        moved[name] = np.asarray(face.draw(frame))
    dx, dy = _skin_centre(moved["yaw"]) - centre
    assert dx < -5 and abs(dy) < 1
    dx, dy = _skin_centre(moved["pitch"]) - centre
    assert dy > 5 and abs(dx) < 1
    top = lambda image: np.flatnonzero(np.abs(image[60].astype(np.int16) - preview.SKIN).sum(axis=1) < 12).mean()  # noqa: E731
    assert top(moved["roll"]) < top(base) - 5  # the top of the head leans to the viewer's left
    frames = np.concatenate([_frames(10), np.zeros((10, 9), np.float32)], axis=1)
    frames[5:, 52] = 0.1
    _, video = _decode(render_preview(frames, 30, tmp_path / "turn.mp4", size=SIZE))
    assert len(video) == 10 and np.abs(video[7].astype(np.int16) - video[2]).mean() > 1
    frames[3, 53] = np.nan
    with pytest.raises(A2BSError, match="frame 3 HeadPitch is nan"):
        render_preview(frames, 30, tmp_path / "nan.mp4", size=SIZE)


# --- safety ---------------------------------------------------------------------------------------


def test_existing_output_is_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "face.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(A2BSError, match="exists: pass --force"):
        render_preview(_frames(5), 30, out, size=SIZE)
    assert out.read_bytes() == b"keep me" and _leftovers(tmp_path) == []
    render_preview(_frames(5), 30, out, size=SIZE, force=True)
    assert len(_decode(out)[1]) == 5


@pytest.mark.parametrize(
    ("name", "frames", "says"),
    [
        ("face.mov", _frames(3), r"unsupported preview format '\.mov'.*\.mp4"),
        ("face.mp4", np.zeros((3, 51), np.float32), r"shape \(n, 52\) or \(n, 61\).*got \(3, 51\)"),
        ("face.mp4", np.zeros((0, 52), np.float32), "no frames"),
        ("face.mp4", [], "1 to 8 animations"),
    ],
)
def test_bad_requests_are_one_line_errors(tmp_path: Path, name: str, frames: object, says: str) -> None:
    with pytest.raises(A2BSError, match=says) as caught:
        render_preview(frames, 30, tmp_path / name, size=SIZE)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_nan_frames_and_missing_folder(tmp_path: Path) -> None:
    frames = _frames(2000)
    frames[1500, INDEX["mouthFunnel"]] = np.nan  # in the second chunk read
    with pytest.raises(A2BSError, match="frame 1500 mouthFunnel is nan"):
        render_preview(frames, 30, tmp_path / "nan.mp4", size=SIZE)
    with pytest.raises(A2BSError, match="animation 2 frame 1500"):
        render_preview([_frames(2000), frames], 30, tmp_path / "nan.mp4", size=SIZE)
    with pytest.raises(A2BSError, match="does not exist"):
        render_preview(_frames(3), 30, tmp_path / "missing" / "face.mp4", size=SIZE)
    with pytest.raises(A2BSError, match="1-D array"):
        render_preview(_frames(3), 30, tmp_path / "face.mp4", np.zeros((10, 2), np.float32), size=SIZE)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    """A KeyboardInterrupt in the middle (from the progress callback) stops ffmpeg and removes the temp
    video and the temp WAV; an existing output is untouched even with force."""
    out = tmp_path / "face.mp4"
    out.write_bytes(b"old")

    def interrupt(done: int) -> None:
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir())  # the temp file was being written
        raise KeyboardInterrupt

    audio = np.zeros(SAMPLE_RATE * 3, np.float32)
    with pytest.raises(KeyboardInterrupt):
        render_preview(_frames(90), 30, out, audio, size=SIZE, force=True, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.mp4"] and out.read_bytes() == b"old"
    assert _ffmpeg_children() == []


def test_ffmpeg_failure_names_its_last_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ffmpeg failure (an audio bitrate it refuses) is one line with ffmpeg's own last message."""
    monkeypatch.setattr(preview, "_AUDIO_BITRATE", "-5")
    with pytest.raises(A2BSError, match=r"cannot write .*face\.mp4: ffmpeg failed: .+") as caught:
        render_preview(_frames(40), 30, tmp_path / "face.mp4", np.zeros(SAMPLE_RATE, np.float32), size=SIZE)
    assert "\n" not in str(caught.value) and list(tmp_path.iterdir()) == []
    assert _ffmpeg_children() == []


def test_memory_mapped_animation_is_read_in_chunks(tmp_path: Path) -> None:
    """A .npy opened as a memory map (how an hour of animation arrives) renders without being loaded."""
    path = tmp_path / "anim.npy"
    np.save(path, _frames(70))
    frames = np.load(path, mmap_mode="r")
    out = render_preview(frames, 30, tmp_path / "mm.mp4", size=SIZE)
    assert len(_decode(out)[1]) == 70


def test_render_speed_figure() -> None:
    """The figure benchmarks/bench_preview.py records, printed here too (ms per frame, drawing only)."""
    frames = _frames(120)
    for faces in (1, 2):
        renderers = [FaceRenderer(480) for _ in range(faces)]
        started = time.perf_counter()
        for frame in frames:
            for r in renderers:
                r.draw(frame)
        ms = (time.perf_counter() - started) * 1000 / len(frames)
        print(f"\npreview drawing, {faces} face(s) of 480x480: {ms:.2f} ms per frame ({os.cpu_count()} cores)")
        assert ms < 20 * faces  # generous: the machine is shared; the benchmark records the real figure


# --- the validation report ------------------------------------------------------------------------


def test_validation_report_embeds_the_face_preview(trained_android_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "android"
    shutil.copytree(trained_android_bundle, bundle)
    report = V.validate_bundle(bundle, latency=False)
    assert report.passed, [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in report.failures()]
    data = json.loads((bundle / V.REPORT_JSON).read_text())
    (preview,) = data["previews"]
    default = report.manifest["default_variant"]
    assert preview["variant"] == default and preview["path"] == f"{P.PLOTS_DIR}/preview_{default}.mp4"
    video = bundle / preview["path"]
    meta, frames = _decode(video)
    assert len(frames) == preview["frames"] == round(P.PREVIEW_S * 30) and meta["fps"] == 30
    assert frames.shape[2] == 2 * P.PREVIEW_FACE_PX and meta["audio_codec"] == "aac"
    page = (bundle / V.REPORT_HTML).read_text()
    (embedded,) = re.findall(r"<video controls[^>]*src='data:video/mp4;base64,([A-Za-z0-9+/=]+)'", page)
    assert base64.b64decode(embedded) == video.read_bytes()
    assert f"<a href='{preview['path']}'>" in page
    (check,) = [c for c in report.checks if c.kind == "parity" and c.details.get("preview")]
    assert check.details["variant"] == default
    assert _leftovers(bundle / P.PLOTS_DIR) == []


def test_a_preview_failure_is_a_note_not_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's preview step on its own: a failing render gives a note; the page shows it."""
    from a2bs.mobile_validation.report import _previews

    def broken(*args: object, **kwargs: object) -> None:
        raise A2BSError("cannot write x.mp4: ffmpeg failed: out of disk")

    monkeypatch.setattr(P, "render_preview", broken)
    reference = _frames(200)
    clip = P._Clip(
        "speech.wav",
        np.zeros(200 * SAMPLE_RATE // 30, np.float32),
        np.zeros((1, 264)),
        reference,
        np.zeros((1, 1024)),
        np.zeros((1, 80)),
    )
    note = P._preview(tmp_path, "fp16", "runtime", clip, reference, 30)
    assert note["path"] is None
    assert note["note"] == "face preview not rendered: cannot write x.mp4: ffmpeg failed: out of disk"
    page = _previews({"previews": [note]}, tmp_path)
    assert "face preview not rendered" in page and "<video" not in page
