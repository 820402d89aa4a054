"""Frame sheet: the face at the centre of every p/b/m and in the middle of every pause of one real
utterance, for one or more checkpoints (one row each), with the lip gap jawOpen - mouthClose under each
face. What the seal and rest figures of bench_articulation mean, seen.

    python benchmarks/frame_sheet.py ../shared/eval/real-speech/aew_a0002 docs/frames_aew_a0002.png \\
        --checkpoint old=/tmp/old30 --checkpoint new=core/assets/checkpoints/default-30fps
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from a2bs.core.audio import load_audio
from a2bs.core.checkpoint import load_checkpoint
from a2bs.core.inference import infer_array
from a2bs.corpus.visemes import PAUSES
from a2bs.corpus.voices import read_segs
from a2bs.training import articulation as A
from a2bs.viz.preview import FaceRenderer

FACE = 150


def moments(phones: list[tuple[str, float, float]]) -> list[tuple[str, float]]:
    """(label, time) at the centre of each p/b/m >= 40 ms and of each pause >= 300 ms."""
    out = []
    for phone, start, end in phones:
        if A.arpabet_class(phone) in A.BILABIALS and end - start >= A.BILABIAL_MIN_S:
            out.append((phone, (start + end) / 2))
        elif phone in PAUSES and end - start >= A.PAUSE_MIN_S:
            out.append(("pause", (start + end) / 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("utterance", type=Path, help="path without suffix: .wav and .segs beside it")
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", action="append", required=True, help="LABEL=DIR (repeatable)")
    args = parser.parse_args()
    audio = load_audio(args.utterance.with_suffix(".wav"))
    picks = moments(read_segs(args.utterance.with_suffix(".segs")))
    renderer = FaceRenderer(FACE)
    rows = []
    for spec in args.checkpoint:
        label, path = spec.split("=", 1)
        ckpt = load_checkpoint(path)
        fps = ckpt.model.config.fps
        curves = infer_array(ckpt, audio)
        gap = A.lip_gap(curves)
        frames = [min(len(curves) - 1, round(t * fps)) for _, t in picks]
        rows.append((label, [(renderer.draw(curves[k]), gap[k]) for k in frames]))
    label_w, text_h = 60, 30
    sheet = Image.new("RGB", (label_w + FACE * len(picks), text_h + (FACE + text_h) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, (phone, t) in enumerate(picks):
        draw.text((label_w + j * FACE + 4, 8), f"{phone} {t:.2f}s", fill="black")
    for i, (label, faces) in enumerate(rows):
        y = text_h + i * (FACE + text_h)
        draw.text((4, y + FACE // 2), label, fill="black")
        for j, (face, g) in enumerate(faces):
            sheet.paste(face, (label_w + j * FACE, y))
            draw.text((label_w + j * FACE + 4, y + FACE + 6), f"gap {g:+.2f}", fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}: {len(picks)} moments x {len(rows)} checkpoints")


if __name__ == "__main__":
    main()
