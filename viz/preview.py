"""Face previews: blendshape curves as an H.264 video of a simple 2D face, with the sound.

Lip sync is judged by eye and ear, not from curves. `render_preview` draws the sample apps' flat face
(android_sample Face.kt, ios_sample FaceView.swift: same layout and mapping, plus the shapes the apps
leave out) for each frame, side by side for several animations of the same length (e.g. the PyTorch
reference | an artifact), and encodes it with the ffmpeg binary of the imageio-ffmpeg wheel.

Streaming: each frame is drawn (Pillow, 2x supersampled for antialiasing), piped as raw RGB to ffmpeg
and forgotten; the animation is read in chunks (a memory-mapped .npy works), so an hour of animation
renders in bounded memory. The video is exactly n / fps seconds at exactly `fps`; the audio is padded
with silence or cut to that length. Written like every output of the project: a hidden temp file beside
`out`, renamed at the end; an existing `out` is kept unless `force`; any error or Ctrl-C removes the temp
files and stops ffmpeg. Expected problems are one-line `A2BSError`s.

Mapping (ARKit Left / Right are the person's own sides: their left is drawn on the viewer's right):
jaw: jawOpen drops the chin, jawLeft / jawRight shift chin and mouth;
lips: as in ARKit, they part by jawOpen - mouthClose (sealed when the two are equal, whatever the jaw; see
`lip_opening`, the formula the sample apps share), mouthFunnel rounds and opens, mouthPucker
narrows and thickens, mouthSmile* / mouthFrown* lift / lower each corner, mouthStretch* / mouthDimple*
widen each side, mouthLeft / mouthRight shift, mouthRollLower / mouthRollUpper roll a lip in (thinner),
mouthUpperUp* raise the upper lip (with mouthRollLower: f / v, upper teeth on the lower lip),
mouthLowerDown* lower the lower lip, mouthShrugUpper / mouthShrugLower push the lips up, mouthPress*
thin and close the lips, tongueOut; eyes: eyeBlink* closes the lids, eyeWide* opens them wider,
eyeSquint* narrows them, eyeLook* moves the iris; brows: browInnerUp, browDown*, browOuterUp*;
cheeks: cheekPuff widens the lower face, cheekSquint* raises the cheeks and lower lids; noseSneer* lifts
the nostril wings and wrinkles the nose. Frames of 61 values carry the Live Link Face rotations after the
52 shapes (the life layer's, core/life.py): the whole face turns with HeadYaw (positive: towards the
person's right, the side eyeLookOutRight looks to), nods with HeadPitch (positive: down) and tilts with
HeadRoll (positive: the top of the head towards the person's right); the eyes are drawn from eyeLook*.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import imageio_ffmpeg
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFont

from a2bs.core.audio import stream_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, LIVE_LINK_FACE_ROTATIONS
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError, raise_if_interrupted
from a2bs.core.files import OutputLock, check_new_file, fsync_dir, temp_prefix, umask
from a2bs.viz.plots import displayable

__all__ = ["FaceRenderer", "lip_opening", "render_preview"]

N_SHAPES = len(ARKIT_BLENDSHAPES)
N_WITH_ROTATIONS = N_SHAPES + len(LIVE_LINK_FACE_ROTATIONS)  # 61: the shapes, then the Live Link Face rotations
HEAD_RADIUS = 0.37  # the head's half-width, in fractions of the face: how far a turn moves the features
NECK = (0.5, 0.92)  # where the head tilts about
SUPERSAMPLE = 2  # drawn at twice the size, then box-filtered down: antialiased edges for ~1 ms a frame
_CHUNK = 1024  # frames read (and checked) at a time
_MAX_FACES = 8
_CRF = 20  # x264 quality: flat colours compress to a few kB a second at this setting
_AUDIO_BITRATE = "96k"

BACKGROUND = (236, 239, 243)
SKIN = (250, 219, 189)
SKIN_LINE = (196, 140, 105)
NOSE = (205, 148, 112)
BLUSH = (246, 186, 172)
INK = (59, 42, 32)
BROW = (92, 62, 40)
WHITE = (255, 255, 255)
IRIS = (84, 110, 140)
PUPIL = (20, 20, 24)
LIP = (196, 92, 98)
LIP_LINE = (150, 60, 66)
MOUTH = (84, 24, 30)
TEETH = (250, 248, 240)
TONGUE = (214, 108, 118)
STRIP = (255, 255, 255)
STRIP_TEXT = (40, 40, 48)

# Sample points of the curves: K along each quadratic curve, the eye's lid curves, the head's outline.
_T = np.linspace(0.0, 1.0, 17)
_W0, _W1, _W2 = (1 - _T) ** 2, 2 * _T * (1 - _T), _T**2
_U = np.linspace(-1.0, 1.0, 17)
_LID = np.sqrt(1 - _U**2)
_THETA = np.linspace(0.0, np.pi, 91)  # half of the head's outline: right ear, chin, left ear
_COS, _SIN = np.cos(_THETA), np.sin(_THETA)
_TEETH_T = (_T > 0.12) & (_T < 0.88)  # upper teeth: most of the opening
_LOWER_TEETH_T = (_T > 0.25) & (_T < 0.75)
_TONGUE_T = (_T > 0.2) & (_T < 0.8)


# The lips' geometry, in fractions of the face's size. The same formula and constants are written in the sample
# apps (ios_sample A2BSEngine FaceGeometry.swift, android_sample engine FaceGeometry.kt); tests compare them.
LIP_OPENING_PER_JAW = 0.17  # per unit of jawOpen - mouthClose
LIP_OPENING_PER_LOWER_DOWN = 0.04  # per unit of mouthLowerDown (mean of the two sides)
LIP_OPENING_PER_FUNNEL = 0.03
LIP_OPENING_PRESS = 0.5  # mouthPress = 1 halves the opening (pressing thins the lips, never opens them)
UPPER_LIP_SHARE = 0.2  # the upper lip takes this share of the opening, the lower lip (on the jaw) the rest
CHIN_DROP_PER_JAW = 0.07  # the chin drops with jawOpen, sealed lips or not


def lip_opening(jaw_open: float, mouth_close: float, lower_down: float, funnel: float, press: float) -> float:
    """The gap between the lips at the middle of the mouth, in fractions of the face's size (inputs clipped to
    [0, 1]; `lower_down` and `press` are the means of their Left / Right shapes). ARKit's lips meet when
    mouthClose equals jawOpen, so the jaw parts them by jawOpen - mouthClose, never below 0."""

    def unit(x: float) -> float:
        return min(1.0, max(0.0, x))

    opening = LIP_OPENING_PER_JAW * max(0.0, unit(jaw_open) - unit(mouth_close))
    opening += LIP_OPENING_PER_LOWER_DOWN * unit(lower_down) + LIP_OPENING_PER_FUNNEL * unit(funnel)
    return opening * (1 - LIP_OPENING_PRESS * unit(press))


def _quad(p0: tuple[float, float], c: tuple[float, float], p2: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the quadratic Bezier curve p0 -> p2 with control point c at the sample points _T."""
    return _W0 * p0[0] + _W1 * c[0] + _W2 * p2[0], _W0 * p0[1] + _W1 * c[1] + _W2 * p2[1]


def _flat(x: np.ndarray, y: np.ndarray) -> list[float]:
    """Pillow's flat point list [x0, y0, x1, y1, ...]."""
    xy = np.empty((len(x), 2))
    xy[:, 0], xy[:, 1] = x, y
    return xy.ravel().tolist()


def _band(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> list[float]:
    """The polygon between two curves drawn left to right: curve a forward, then curve b backward."""
    return _flat(np.concatenate([xa, xb[::-1]]), np.concatenate([ya, yb[::-1]]))


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


class FaceRenderer:
    """Draws one face of `size` x `size` pixels from one frame of the 52 values (ARKIT_BLENDSHAPES order).

    Geometry is in fractions of the face (as in the sample apps), scaled to the supersampled canvas."""

    def __init__(self, size: int = 480) -> None:
        self.size = size
        self.s = float(size * SUPERSAMPLE)
        side = size * SUPERSAMPLE
        self._canvas = Image.new("RGB", (side, side), BACKGROUND)
        self._draw = ImageDraw.Draw(self._canvas)
        # What never moves, drawn once: the background and the upper half of the head.
        self._base = Image.new("RGB", (side, side), BACKGROUND)
        self._half_head(ImageDraw.Draw(self._base), -0.45 * self.s, 0.0, 0.0)

    def draw(self, frame: np.ndarray) -> Image.Image:
        """The face for one frame: 52 values (clipped to [0, 1]), or 61 with the Live Link Face rotations
        (radians) after them; a new `size` x `size` RGB image."""
        values = np.asarray(frame, dtype=np.float64)
        v = dict(zip(ARKIT_BLENDSHAPES, np.clip(values[:N_SHAPES], 0.0, 1.0).tolist(), strict=True))
        self._canvas.paste(self._base)
        self._head(v)
        for side in (-1, 1):  # screen side -1 shows the person's right, +1 their left
            self._eye(v, side)
            self._brow(v, side)
        self._nose(v)
        self._mouth(v)
        if len(values) == N_WITH_ROTATIONS and values[N_SHAPES : N_SHAPES + 3].any():
            return self._turned(*values[N_SHAPES : N_SHAPES + 3].tolist()).reduce(SUPERSAMPLE)
        return self._canvas.reduce(SUPERSAMPLE)

    def _turned(self, yaw: float, pitch: float, roll: float) -> Image.Image:
        """The drawn face moved as the head turns: shifted sideways by the yaw and down by the pitch (as far
        as the face's surface moves: the head's radius times the sine), tilted by the roll about the neck."""
        s = self.s
        dx, dy = -HEAD_RADIUS * s * np.sin(yaw), HEAD_RADIUS * s * np.sin(pitch)
        c, n = np.cos(roll), np.sin(roll)
        px, py = NECK[0] * s, NECK[1] * s
        # output (x, y) <- input R^-1 (x - pivot - d) + pivot, R turning counter-clockwise on screen by `roll`
        ox, oy = -px - dx, -py - dy
        data = (c, -n, c * ox - n * oy + px, n, c, n * ox + c * oy + py)
        return self._canvas.transform(
            self._canvas.size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=BACKGROUND
        )

    # --- parts ------------------------------------------------------------------------------------

    @staticmethod
    def _side(v: dict[str, float], name: str, side: int) -> float:
        """`name` + Right for screen side -1, + Left for +1."""
        return v[name + ("Right" if side < 0 else "Left")]

    def _half_head(self, d: ImageDraw.ImageDraw, height: float, shift: float, puff: float) -> None:
        """Half of the head's ellipse, from ear to ear through the chin (`height` > 0) or the crown (< 0);
        the outline is a band between two curves (no line joins to show at the ears)."""
        s = self.s
        cx, cy, a, w = 0.5 * s, 0.47 * s, 0.37 * s, 0.004 * s
        along = np.abs(_SIN)
        x = a * _COS * (1 + 0.12 * puff * along) + shift * along
        y = height * _SIN
        d.polygon(_flat(cx + x, cy + y), fill=SKIN)
        grow, shrink = 1 + w / a, 1 - w / a
        d.polygon(_band(cx + x * grow, cy + y * grow, cx + x * shrink, cy + y * shrink), fill=SKIN_LINE)

    def _head(self, v: dict[str, float]) -> None:
        s, d = self.s, self._draw
        puff = v["cheekPuff"]
        cx = 0.5 * s
        # The upper half is fixed (in `_base`); the lower half drops with the jaw, shifts with jawLeft /
        # jawRight and widens at the cheeks with cheekPuff.
        shift = 0.03 * s * (v["jawLeft"] - v["jawRight"])
        self._half_head(d, (0.45 + CHIN_DROP_PER_JAW * v["jawOpen"]) * s, shift, puff)
        for side in (-1, 1):  # cheeks: rounder and further out when puffed, raised by cheekSquint
            r = 0.045 * s * (1 + 0.6 * puff)
            x0 = cx + side * (0.2 + 0.02 * puff) * s
            y0 = (0.58 - 0.03 * self._side(v, "cheekSquint", side)) * s
            d.ellipse((x0 - r, y0 - 0.7 * r, x0 + r, y0 + 0.7 * r), fill=BLUSH)

    def _eye(self, v: dict[str, float], side: int) -> None:
        s, d = self.s, self._draw
        ex, ey, a, b = (0.5 + 0.15 * side) * s, 0.38 * s, 0.062 * s, 0.032 * s
        blink, wide, squint = (self._side(v, n, side) for n in ("eyeBlink", "eyeWide", "eyeSquint"))
        cheek = self._side(v, "cheekSquint", side)
        # Lid heights above / below the centre line at the middle of the eye; a blink brings the upper lid
        # down onto the lower one (a closed eye is the lower lid's arc).
        lower = b * (0.8 - 0.35 * squint - 0.4 * cheek)
        upper = b * (0.8 + 0.45 * wide - 0.3 * squint) * (1 - blink) - lower * blink
        d.ellipse((ex - a, ey - 1.3 * b, ex + a, ey + 1.3 * b), fill=WHITE)
        # Gaze: In is towards the nose; screen side -1 is the person's right eye, so Out points left there.
        r = 0.8 * b
        look_x = self._side(v, "eyeLookOut", side) - self._side(v, "eyeLookIn", side)
        look_y = self._side(v, "eyeLookDown", side) - self._side(v, "eyeLookUp", side)
        gx, gy = ex + side * look_x * (a - r - 0.004 * s), ey + look_y * 0.6 * b
        d.ellipse((gx - r, gy - r, gx + r, gy + r), fill=IRIS)
        d.ellipse((gx - 0.45 * r, gy - 0.45 * r, gx + 0.45 * r, gy + 0.45 * r), fill=PUPIL)
        h = 0.18 * r
        d.ellipse((gx + 0.3 * r - h, gy - 0.35 * r - h, gx + 0.3 * r + h, gy - 0.35 * r + h), fill=WHITE)
        # Lids: skin from each lid line outwards hides the eyeball (it is taller than any opening).
        x = ex + a * _U
        top, bottom = ey - upper * _LID, ey + lower * _LID
        cover = 1.7 * b
        pad = 0.004 * s
        d.polygon([*_flat(x, top), ex + a + pad, ey - cover, ex - a - pad, ey - cover], fill=SKIN)
        d.polygon([*_flat(x, bottom), ex + a + pad, ey + cover, ex - a - pad, ey + cover], fill=SKIN)
        d.line(_flat(x, bottom), fill=SKIN_LINE, width=max(1, round(0.004 * s)))
        d.line(_flat(x, top), fill=INK, width=max(1, round(0.009 * s)))

    def _brow(self, v: dict[str, float], side: int) -> None:
        s, d = self.s, self._draw
        down, outer_up = self._side(v, "browDown", side), self._side(v, "browOuterUp", side)
        y = 0.29 * s
        inner = ((0.5 + side * (0.07 - 0.01 * down)) * s, y - 0.06 * s * v["browInnerUp"] + 0.04 * s * down)
        outer = ((0.5 + side * 0.24) * s, y - 0.05 * s * outer_up + 0.015 * s * down)
        control = ((inner[0] + outer[0]) / 2, min(inner[1], outer[1]) - 0.02 * s)
        width = 0.022 * s
        d.line(_flat(*_quad(inner, control, outer)), fill=BROW, width=round(width))
        for px, py in (inner, outer):  # round caps
            d.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=BROW)

    def _nose(self, v: dict[str, float]) -> None:
        s, d = self.s, self._draw
        sneer_r, sneer_l = v["noseSneerRight"], v["noseSneerLeft"]
        wing_r = (0.5 - 0.04 - 0.006 * sneer_r) * s, (0.53 - 0.025 * sneer_r) * s
        wing_l = (0.5 + 0.04 + 0.006 * sneer_l) * s, (0.53 - 0.025 * sneer_l) * s
        d.line(_flat(*_quad(wing_r, (0.5 * s, 0.585 * s), wing_l)), fill=NOSE, width=round(0.008 * s))
        for side, sneer in ((-1, sneer_r), (1, sneer_l)):
            nx, ny, w, h = (0.5 + side * 0.018) * s, (0.548 - 0.012 * sneer) * s, 0.008 * s, 0.0045 * s
            d.ellipse((nx - w, ny - h, nx + w, ny + h), fill=NOSE)
            if sneer > 0.05:  # wrinkles on the side of the bridge, darker as the sneer grows
                colour = _mix(SKIN, NOSE, min(1.0, 1.5 * sneer))
                for k in range(2):
                    y0 = (0.455 + 0.025 * k) * s
                    d.line(
                        ((0.5 + side * 0.012) * s, y0, (0.5 + side * 0.035) * s, y0 - 0.012 * s),
                        fill=colour,
                        width=round(0.005 * s),
                    )

    def _mouth(self, v: dict[str, float]) -> None:
        s, d = self.s, self._draw
        pucker, funnel = v["mouthPucker"], v["mouthFunnel"]
        press = (v["mouthPressLeft"] + v["mouthPressRight"]) / 2
        narrowing = 0.5 * pucker + 0.3 * funnel
        mx = 0.5 * s + 0.03 * s * (v["jawLeft"] - v["jawRight"] + v["mouthLeft"] - v["mouthRight"])
        my = 0.68 * s

        def corner(side: int) -> tuple[float, float]:
            smile, frown = self._side(v, "mouthSmile", side), self._side(v, "mouthFrown", side)
            widening = (
                1 + 0.3 * smile + 0.3 * self._side(v, "mouthStretch", side) + 0.1 * self._side(v, "mouthDimple", side)
            )
            half = 0.12 * s * max(0.35, widening - narrowing)
            return mx + side * half, my - 0.04 * s * smile + 0.035 * s * frown

        left, right = corner(-1), corner(1)
        lower_down = (v["mouthLowerDownLeft"] + v["mouthLowerDownRight"]) / 2
        opening = s * lip_opening(v["jawOpen"], v["mouthClose"], lower_down, funnel, press)
        lift = 0.015 * s * (v["mouthUpperUpLeft"] + v["mouthUpperUpRight"]) + 0.01 * s * v["mouthShrugUpper"]
        # A quadratic curve reaches half-way to its control point: controls sit at twice the offset.
        shrug = 0.012 * s * v["mouthShrugLower"]  # the chin pushes the lower lip (and the seam a little) up
        inner_top = my - 2 * (lift + UPPER_LIP_SHARE * opening + 0.4 * shrug)
        inner_bottom = max(inner_top, my + 2 * ((1 - UPPER_LIP_SHARE) * opening - shrug))
        fullness = (1 - 0.5 * press) * (1 + 0.5 * pucker + 0.3 * funnel)
        upper_lip = 0.022 * s * (1 - 0.75 * v["mouthRollUpper"]) * fullness
        lower_lip = 0.028 * s * (1 - 0.75 * v["mouthRollLower"]) * fullness
        tx, ty = _quad(left, (mx, inner_top), right)
        bx, by = _quad(left, (mx, inner_bottom), right)
        ox, oy = _quad(left, (mx, inner_top - 2 * upper_lip), right)
        ux, uy = _quad(left, (mx, inner_bottom + 2 * max(0.0, lower_lip - shrug)), right)
        d.polygon(_band(ox, oy, ux, uy), fill=LIP, outline=LIP_LINE, width=max(1, round(0.006 * s)))
        if inner_bottom - inner_top > 0.006 * s:
            d.polygon(_band(tx, ty, bx, by), fill=MOUTH)
            gap = by - ty
            m = _TONGUE_T
            d.polygon(_band(tx[m], by[m] - np.minimum(gap[m], 0.035 * s), tx[m], by[m]), fill=TONGUE)
            m = _LOWER_TEETH_T
            lower_teeth = by[m] - np.minimum(gap[m], 0.014 * s)
            d.polygon(_band(tx[m], lower_teeth, tx[m], by[m]), fill=TEETH)
            m = _TEETH_T
            upper_teeth = ty[m] + np.minimum(gap[m], 0.026 * s)
            d.polygon(_band(tx[m], ty[m], tx[m], upper_teeth), fill=TEETH)
        else:
            d.line(_flat(tx, ty), fill=LIP_LINE, width=max(1, round(0.006 * s)))
        tongue = v["tongueOut"]
        if tongue > 0.02:
            w, h = 0.045 * s, 0.05 * s * tongue
            ty0 = (inner_bottom + my) / 2
            d.ellipse(
                (mx - w, ty0 - h, mx + w, ty0 + h + 0.02 * s * tongue),
                fill=TONGUE,
                outline=LIP_LINE,
                width=max(1, round(0.004 * s)),
            )


# --- the video ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _font(pixels: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=pixels)


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


class _Layout:
    """Where the faces, the title strip (top) and the label strip (bottom) sit; the static parts, drawn once."""

    def __init__(self, faces: int, size: int, labels: list[str] | None, title: str | None) -> None:
        self.size = size
        self.title_h = _even(size * 0.075) if title else 0
        self.label_h = _even(size * 0.075) if labels else 0
        self.width, self.height = faces * size, self.title_h + size + self.label_h
        self.canvas = Image.new("RGB", (self.width, self.height), STRIP)
        draw = ImageDraw.Draw(self.canvas)
        font = _font(max(8, round(size * 0.045)))
        if title:
            draw.text(
                (self.width / 2, self.title_h / 2),
                _fit(displayable(title), self.width * 0.96, font),
                font=font,
                fill=STRIP_TEXT,
                anchor="mm",
            )
        for j, label in enumerate(labels or []):
            draw.text(
                ((j + 0.5) * size, self.title_h + size + self.label_h / 2),
                _fit(displayable(label), size * 0.94, font),
                font=font,
                fill=STRIP_TEXT,
                anchor="mm",
            )
        self.clock_font = _font(max(8, round(size * 0.035)))

    def put(self, j: int, face: Image.Image) -> None:
        self.canvas.paste(face, (j * self.size, self.title_h))

    def clock(self, k: int, fps: int) -> None:
        """Time and frame number in the first face's top-left corner (background there: the head is round)."""
        text = f"{k / fps:.2f} s\n#{k}"
        ImageDraw.Draw(self.canvas).multiline_text(
            (0.02 * self.size, self.title_h + 0.015 * self.size), text, font=self.clock_font, fill=STRIP_TEXT
        )


def _fit(text: str, width: float, font: Any) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    text = " ".join(str(text).split())
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def check_preview_path(out: str | Path, force: bool = False) -> Path:
    """The checks `render_preview` makes before any drawing, for callers that want them earlier."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise A2BSError(f"unsupported preview format '{out.suffix}': the preview is an H.264 video, use .mp4")
    return check_new_file(out, force=force, example="preview")


def _check_frames(frames: Any, out: Path) -> list[Any]:
    """The animations to draw side by side: each (n, 52), all of the same length, every value finite.
    Read in chunks, so a memory-mapped .npy is never loaded whole."""
    streams = [frames] if isinstance(frames, np.ndarray) else list(frames)
    if not streams or len(streams) > _MAX_FACES:
        raise A2BSError(f"cannot write {out}: give 1 to {_MAX_FACES} animations, got {len(streams)}")
    for j, stream in enumerate(streams):
        shape = np.shape(stream)
        if len(shape) != 2 or shape[1] not in (N_SHAPES, N_WITH_ROTATIONS):
            raise A2BSError(
                f"cannot write {out}: expected frames of shape (n, {N_SHAPES}) or (n, {N_WITH_ROTATIONS}) with "
                f"the rotations, got {shape}" + (f" (animation {j + 1})" if len(streams) > 1 else "")
            )
        if shape[0] != np.shape(streams[0])[0]:
            raise A2BSError(
                f"cannot write {out}: animations side by side must have the same length, got "
                f"{', '.join(str(len(s)) for s in streams)} frames"
            )
        for i in range(0, shape[0], _CHUNK):
            try:
                chunk = np.asarray(stream[i : i + _CHUNK], dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise A2BSError(f"cannot write {out}: frames are not numbers ({exc})") from None
            bad = ~np.isfinite(chunk)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                which = f"animation {j + 1} " if len(streams) > 1 else ""
                name = (*ARKIT_BLENDSHAPES, *LIVE_LINK_FACE_ROTATIONS)[col]
                raise A2BSError(f"cannot write {out}: {which}frame {i + int(row)} {name} is {chunk[row, col]}")
    if np.shape(streams[0])[0] == 0:
        raise A2BSError(f"cannot write {out}: no frames to render")
    return streams


def _write_wav(path: Path, audio: str | Path | np.ndarray, n_samples: int) -> None:
    """`audio` (a file a2bs reads, or 16 kHz mono samples) as exactly `n_samples` at 16 kHz: cut, or
    padded with silence. Streamed block by block."""
    if isinstance(audio, str | os.PathLike):
        blocks = stream_audio(audio)
    else:
        samples = np.asarray(audio)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.number):
            raise A2BSError(f"preview audio must be 16 kHz mono samples (a 1-D array), got shape {samples.shape}")
        if not np.isfinite(samples).all():
            raise A2BSError("preview audio holds NaN or infinite samples")
        blocks = iter([samples.astype(np.float32, copy=False)])
    written = 0
    # bytes: soundfile encodes a str path as strict UTF-8, which a non-UTF-8 (e.g. Latin-1) file name is not
    with sf.SoundFile(os.fsencode(path), "w", samplerate=SAMPLE_RATE, channels=1, subtype="FLOAT", format="WAV") as f:
        for block in blocks:
            piece = np.clip(block[: n_samples - written], -1.0, 1.0)
            f.write(piece)
            written += len(piece)
            if written >= n_samples:
                break
        silence = np.zeros(min(n_samples - written, 1 << 16), dtype=np.float32)
        while written < n_samples:
            piece = silence[: n_samples - written]
            f.write(piece)
            written += len(piece)


def _ffmpeg_exe() -> str:
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise A2BSError(f"no ffmpeg binary for the preview: {exc} (reinstall imageio-ffmpeg)") from None


def _last_line(log: IO[bytes]) -> str:
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _hidden_temp(out: Path, suffix: str) -> Path:
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=temp_prefix(out, suffix), suffix=suffix)
    except OSError as exc:
        raise A2BSError(f"cannot write to directory {out.parent}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600; give the result normal permissions
    finally:
        os.close(fd)
    return Path(name)


def render_preview(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: int,
    out: str | Path,
    audio: str | Path | np.ndarray | None = None,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    size: int = 480,
) -> Path:
    """Render `frames` ((n, 52) in ARKIT_BLENDSHAPES order, or (n, 61) with the Live Link Face rotations after
    the shapes, or a list of such arrays of the same length,
    drawn side by side with `labels` under them) as an H.264 .mp4 of exactly n / fps seconds at `fps`,
    each face `size` x `size` pixels, with `audio` (an audio file, or 16 kHz mono float samples) padded
    or cut to that length. `progress(frames_done)` is called about once a second of video and at the end.
    Returns `out`. Raises A2BSError (one line) for bad input, an existing `out` without `force`, an
    unwritable folder or an ffmpeg failure; leaves no temp file behind on any error or Ctrl-C."""
    out = check_preview_path(out, force)
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or not 1 <= fps <= 240:
        raise A2BSError(f"fps must be an integer in [1, 240], got {fps!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size % 2 or not 64 <= size <= 2048:
        raise A2BSError(f"preview size must be an even number of pixels in [64, 2048], got {size!r}")
    fps = int(fps)
    streams = _check_frames(frames, out)
    if labels is not None and len(labels) != len(streams):
        raise A2BSError(f"cannot write {out}: {len(labels)} labels for {len(streams)} animations")
    n = len(streams[0])
    exe = _ffmpeg_exe()
    layout = _Layout(len(streams), size, [str(label) for label in labels] if labels else None, title)
    faces = [FaceRenderer(size) for _ in streams]

    with OutputLock(out):
        if os.path.lexists(out) and not force:  # checked again under the lock
            raise A2BSError(f"{out} exists: pass --force to overwrite")
        tmp = _hidden_temp(out, ".part")
        wav = None
        try:
            cmd = [
                exe,
                "-hide_banner",
                "-nostats",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{layout.width}x{layout.height}",
                "-framerate",
                str(fps),
                "-i",
                "pipe:0",
            ]
            if audio is not None:
                wav = _hidden_temp(out, ".wav")
                _write_wav(wav, audio, (n * SAMPLE_RATE + fps // 2) // fps)
                cmd += [
                    "-f",
                    "wav",
                    "-i",
                    str(wav),
                    "-map",
                    "0:v:0",
                    "-map",
                    "1:a:0",
                    "-c:a",
                    "aac",
                    "-b:a",
                    _AUDIO_BITRATE,
                ]
            cmd += [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "animation",
                "-crf",
                str(_CRF),
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
                str(tmp),
            ]
            _encode(cmd, out, streams, faces, layout, fps, progress)
            if not force and os.path.lexists(out):
                raise A2BSError(f"{out} exists: pass --force to overwrite")
            os.replace(tmp, out)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise A2BSError(f"cannot write {out}: {exc.strerror or exc}") from exc
            raise
        finally:
            if wav is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(wav)
    fsync_dir(out.parent)
    return out


def _encode(
    cmd: list[str],
    out: Path,
    streams: list[Any],
    faces: list[FaceRenderer],
    layout: _Layout,
    fps: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Draw every frame into ffmpeg's stdin; ffmpeg is stopped (killed) on any error or Ctrl-C."""
    n = len(streams[0])
    with tempfile.TemporaryFile() as log:
        # A session of its own: Ctrl-C reaches only Python, which stops ffmpeg and cleans up. The child
        # execs ffmpeg at once, so JAX's warning about forking a multithreaded process (it is loaded during
        # validation) does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
        assert proc.stdin is not None
        try:
            try:
                for i in range(0, n, _CHUNK):
                    chunks = [np.asarray(stream[i : i + _CHUNK], dtype=np.float32) for stream in streams]
                    for r in range(len(chunks[0])):
                        for j, chunk in enumerate(chunks):
                            layout.put(j, faces[j].draw(chunk[r]))
                        layout.clock(i + r, fps)
                        proc.stdin.write(layout.canvas.tobytes())
                        done = i + r + 1
                        if done % fps == 0 or done == n:
                            raise_if_interrupted()
                            if progress is not None:
                                progress(done)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped reading: its exit status and message say why
            if proc.wait() != 0:
                raise A2BSError(f"cannot write {out}: ffmpeg failed: {_last_line(log)}")
        except BaseException:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
            with contextlib.suppress(OSError):
                proc.stdin.close()
            raise
