"""The one canonical list of the 52 ARKit blendshapes and the orders derived from it.

Model outputs, CSV columns, manifests and sample apps all use `ARKIT_BLENDSHAPES` order,
which is the column order of Live Link Face's CSV export.
"""

from __future__ import annotations

ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawRight",
    "jawLeft",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRight",
    "mouthLeft",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
)


def pascal_case(name: str) -> str:
    """`jawOpen` -> `JawOpen` (the spelling Live Link Face and Unreal use)."""
    return name[0].upper() + name[1:]


LIVE_LINK_FACE_BLENDSHAPES: tuple[str, ...] = tuple(pascal_case(n) for n in ARKIT_BLENDSHAPES)
# Head and eye rotations that follow the 52 shapes in a Live Link Face CSV (written as zeros).
LIVE_LINK_FACE_ROTATIONS: tuple[str, ...] = (
    "HeadYaw",
    "HeadPitch",
    "HeadRoll",
    "LeftEyeYaw",
    "LeftEyePitch",
    "LeftEyeRoll",
    "RightEyeYaw",
    "RightEyePitch",
    "RightEyeRoll",
)
LIVE_LINK_FACE_COLUMNS: tuple[str, ...] = (
    "Timecode",
    "BlendShapeCount",
    *LIVE_LINK_FACE_BLENDSHAPES,
    *LIVE_LINK_FACE_ROTATIONS,
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}

# Groups used by the loss (mouth vs expression), metrics and the sample apps' UI.
GROUPS: dict[str, tuple[str, ...]] = {
    "jaw": tuple(n for n in ARKIT_BLENDSHAPES if n.startswith("jaw")),
    "mouth": tuple(n for n in ARKIT_BLENDSHAPES if n.startswith(("mouth", "tongue"))),
    "eyes": tuple(n for n in ARKIT_BLENDSHAPES if n.startswith("eye")),
    "brows": tuple(n for n in ARKIT_BLENDSHAPES if n.startswith("brow")),
    "cheeks_nose": tuple(n for n in ARKIT_BLENDSHAPES if n.startswith(("cheek", "nose"))),
}
# The face controls' regions (`a2bs.core.controls`): the lower face (jaw, mouth, tongue, cheekPuff) and the
# upper face (eyes, brows, cheekSquint, noseSneer). Together they are every shape once.
LOWER_FACE: tuple[str, ...] = GROUPS["jaw"] + GROUPS["mouth"] + ("cheekPuff",)
UPPER_FACE: tuple[str, ...] = tuple(n for n in ARKIT_BLENDSHAPES if n not in LOWER_FACE)
# The shapes the speaking style drives (corpus/motion.py `SpeakingStyle.levels`; the emotion stream carries
# them): what the face controls' expression strength scales.
STYLE_SHAPES: tuple[str, ...] = tuple(
    n + side
    for n in ("eyeSquint", "eyeWide", "browDown", "mouthSmile", "mouthFrown", "mouthDimple", "cheekSquint", "noseSneer")
    for side in ("Left", "Right")
)
# Speech-driven shapes (mouth + jaw) vs. expression shapes (everything else).
MOUTH_INDICES: tuple[int, ...] = tuple(INDEX[n] for n in GROUPS["jaw"] + GROUPS["mouth"])
EXPRESSION_INDICES: tuple[int, ...] = tuple(i for i in range(len(ARKIT_BLENDSHAPES)) if i not in MOUTH_INDICES)
# Shapes a viewer checks first for lip sync.
MOUTH_CRITICAL: tuple[str, ...] = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthPressLeft")

assert len(ARKIT_BLENDSHAPES) == 52 and len(set(ARKIT_BLENDSHAPES)) == 52
assert sorted(LOWER_FACE + UPPER_FACE) == sorted(ARKIT_BLENDSHAPES) and set(STYLE_SHAPES) <= set(ARKIT_BLENDSHAPES)
