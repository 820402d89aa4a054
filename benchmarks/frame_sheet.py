"""Frame sheets: one real utterance, chosen moments, one row of faces per animation.

Articulation (the default): the face at the centre of every p/b/m and in the middle of every pause, for one
or more checkpoints, with the lip gap jawOpen - mouthClose under each face. What the seal and rest figures
of bench_articulation mean, seen.

The life layer (`--life PRESET`): the moments of its events (a blink closed, a look away, a nod at an
accent, a brow raise, the settling nod at a phrase end) for the first checkpoint with the layer off and on,
the head angles and the eyelid under each face.

    python benchmarks/frame_sheet.py ../shared/eval/real-speech/aew_a0002 docs/frames_aew_a0002.png \\
        --checkpoint old=/tmp/old30 --checkpoint new=core/assets/checkpoints/default-30fps
    python benchmarks/frame_sheet.py ../shared/eval/real-speech/aew_a0002 docs/life_aew_a0002.png \\
        --checkpoint default=core/assets/checkpoints/default-30fps --life natural
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from a2bs.core.audio import frame_centers, gather_windows, load_audio
from a2bs.core.blendshapes import INDEX
from a2bs.core.checkpoint import load_checkpoint
from a2bs.core.inference import infer_array
from a2bs.core.life import PRESETS, LifeLayer
from a2bs.corpus.visemes import PAUSES
from a2bs.corpus.voices import read_segs
from a2bs.training import articulation as A
from a2bs.viz.preview import FaceRenderer

FACE = 150
# the life layer's events shown, in this order, and where in the event its frame is taken (seconds after it)
LIFE_MOMENTS = {"blink": 0.08, "aversion": 0.1, "nod": 0.15, "brow": 0.2, "settle": 0.35}


def moments(phones: list[tuple[str, float, float]]) -> list[tuple[str, float]]:
    """(label, time) at the centre of each p/b/m >= 40 ms and of each pause >= 300 ms."""
    out = []
    for phone, start, end in phones:
        if A.arpabet_class(phone) in A.BILABIALS and end - start >= A.BILABIAL_MIN_S:
            out.append((phone, (start + end) / 2))
        elif phone in PAUSES and end - start >= A.PAUSE_MIN_S:
            out.append(("pause", (start + end) / 2))
    return out


def life_rows(audio: np.ndarray, curves: np.ndarray, fps: int, preset: str) -> tuple[list, list]:
    """(picks, rows): the first event of each kind in LIFE_MOMENTS (a blink: its most closed frame), and
    the rows "off" (the model's curves) and the preset, each face captioned with head yaw / pitch and lid."""
    windows = gather_windows(audio, 0, frame_centers(0, len(curves), fps))
    layer = LifeLayer(PRESETS[preset], fps, seed=0, log=True)
    shapes, rotations = layer.process(curves, windows)
    lid = shapes[:, INDEX["eyeBlinkLeft"]]
    picks = [("neutral", 0)]
    for kind, after in LIFE_MOMENTS.items():
        event = next((e for e in layer.log if e.kind == kind and e.frame > 10), None)
        if event is not None:
            k = event.frame + round(after * fps)
            if kind == "blink":
                k = event.frame + int(np.argmax(lid[event.frame : event.frame + round(0.3 * fps)]))
            picks.append((kind, min(k, len(curves) - 1)))
    quiet = (k for k in range(fps, len(curves)) if abs(rotations[k, :3]).max() < 0.005 and lid[k] < 0.1)
    picks[0] = ("no event", next(quiet, 0))
    zeros = np.zeros_like(rotations)
    rows = []
    for label, frames, rot in (("off", curves, zeros), (preset, shapes, rotations)):
        faces = []
        for _, k in picks:
            frame = np.concatenate([frames[k], rot[k]])
            yaw, pitch = np.degrees(rot[k, :2])
            faces.append((frame, f"{yaw:+.1f} {pitch:+.1f} deg, lid {frames[k, INDEX['eyeBlinkLeft']]:.2f}"))
        rows.append((label, faces))
    return [(kind, k / fps) for kind, k in picks], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("utterance", type=Path, help="path without suffix: .wav and .segs beside it")
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", action="append", required=True, help="LABEL=DIR (repeatable)")
    parser.add_argument("--life", choices=sorted(PRESETS), help="the life layer's moments, off and on")
    args = parser.parse_args()
    audio = load_audio(args.utterance.with_suffix(".wav"))
    renderer = FaceRenderer(FACE)
    rows = []
    if args.life:
        ckpt = load_checkpoint(args.checkpoint[0].split("=", 1)[1])
        picks, life = life_rows(audio, infer_array(ckpt, audio), ckpt.model.config.fps, args.life)
        rows = [(label, [(renderer.draw(frame), text) for frame, text in faces]) for label, faces in life]
    else:
        picks = moments(read_segs(args.utterance.with_suffix(".segs")))
        for spec in args.checkpoint:
            label, path = spec.split("=", 1)
            ckpt = load_checkpoint(path)
            fps = ckpt.model.config.fps
            curves = infer_array(ckpt, audio)
            gap = A.lip_gap(curves)
            frames = [min(len(curves) - 1, round(t * fps)) for _, t in picks]
            rows.append((label, [(renderer.draw(curves[k]), f"gap {gap[k]:+.2f}") for k in frames]))
    label_w, text_h = 60, 30
    sheet = Image.new("RGB", (label_w + FACE * len(picks), text_h + (FACE + text_h) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, (phone, t) in enumerate(picks):
        draw.text((label_w + j * FACE + 4, 8), f"{phone} {t:.2f}s", fill="black")
    for i, (label, faces) in enumerate(rows):
        y = text_h + i * (FACE + text_h)
        draw.text((4, y + FACE // 2), label, fill="black")
        for j, (face, caption) in enumerate(faces):
            sheet.paste(face, (label_w + j * FACE, y))
            draw.text((label_w + j * FACE + 4, y + FACE + 6), caption, fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}: {len(picks)} moments x {len(rows)} rows")


if __name__ == "__main__":
    main()
