"""The viseme tables: phone -> viseme (espeak-ng and ARPAbet), viseme -> ARKit targets, dominance.

`PHONEMES` maps espeak-ng's English mnemonics and `ARPABET` the aligner's phones (real speech) to one
or more visemes (diphthongs are split in time); `VISEME_TARGETS` gives each viseme's ARKit values and
`DOMINANCE` how strongly and how far in time it pulls the curves (`a2bs.corpus.coarticulation`).
docs/VISEMES.md embeds these tables (`a2bs.corpus.synth.tables_markdown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
VOWEL_VISEMES = frozenset({"aa", "E", "ih", "oh", "ou"})
# Visemes whose lips meet: over the whole segment the lip gap (jawOpen - mouthClose, ARKit's lips
# touch when the two are equal) is 0 whatever the neighbours do; pressing is mouthPress/mouthRoll's job.
SEALED_VISEMES = frozenset({"PP"})


def _lr(name: str, value: float) -> dict[str, float]:
    return {f"{name}Left": value, f"{name}Right": value}


REST: dict[str, float] = {
    "jawOpen": 0.03, "mouthClose": 0.03, "mouthShrugUpper": 0.05, "mouthShrugLower": 0.05,
    "mouthRollLower": 0.03, **_lr("mouthPress", 0.06), **_lr("mouthDimple", 0.04),
}  # fmt: skip

# Absolute values of the mouth/jaw/tongue shapes for each viseme; unlisted shapes are 0 (sil: the rest pose).
# mouthClose is never above jawOpen: what counts is the lip gap jawOpen - mouthClose (ARKit's lips meet
# at 0), which `a2bs.corpus.coarticulation` blends as its own quantity.
VISEME_TARGETS: dict[str, dict[str, float]] = {
    "sil": REST,
    "PP": {"jawOpen": 0.08, "mouthClose": 0.08, **_lr("mouthPress", 0.45), "mouthRollLower": 0.22,
           "mouthRollUpper": 0.15, "mouthShrugLower": 0.12, "cheekPuff": 0.06},
    "FF": {"jawOpen": 0.10, "mouthRollLower": 0.50, **_lr("mouthUpperUp", 0.28), "mouthShrugUpper": 0.15,
           **_lr("mouthPress", 0.10), "mouthClose": 0.05, "jawForward": 0.06, **_lr("noseSneer", 0.05)},
    "TH": {"jawOpen": 0.16, "tongueOut": 0.30, **_lr("mouthUpperUp", 0.12), **_lr("mouthLowerDown", 0.10)},
    "DD": {"jawOpen": 0.18, **_lr("mouthUpperUp", 0.10), **_lr("mouthLowerDown", 0.12), **_lr("mouthStretch", 0.10)},
    "kk": {"jawOpen": 0.24, **_lr("mouthLowerDown", 0.10), **_lr("mouthStretch", 0.08)},
    "CH": {"jawOpen": 0.12, "mouthFunnel": 0.40, "mouthPucker": 0.22, **_lr("mouthUpperUp", 0.25),
           **_lr("mouthLowerDown", 0.18), "mouthShrugUpper": 0.15, "jawForward": 0.05},
    "SS": {"jawOpen": 0.06, **_lr("mouthStretch", 0.25), **_lr("mouthSmile", 0.10), **_lr("mouthUpperUp", 0.15),
           **_lr("mouthLowerDown", 0.15), "mouthClose": 0.05, "jawForward": 0.04},
    "nn": {"jawOpen": 0.16, **_lr("mouthLowerDown", 0.08), **_lr("mouthStretch", 0.08)},
    "RR": {"jawOpen": 0.14, "mouthPucker": 0.32, "mouthFunnel": 0.22, **_lr("mouthUpperUp", 0.08)},
    "aa": {"jawOpen": 0.62, **_lr("mouthLowerDown", 0.35), **_lr("mouthUpperUp", 0.12), **_lr("mouthStretch", 0.08)},
    "E": {"jawOpen": 0.38, **_lr("mouthLowerDown", 0.22), **_lr("mouthStretch", 0.22), **_lr("mouthSmile", 0.10),
          **_lr("mouthUpperUp", 0.10)},
    "ih": {"jawOpen": 0.20, **_lr("mouthStretch", 0.35), **_lr("mouthSmile", 0.22), **_lr("mouthUpperUp", 0.14),
           **_lr("mouthLowerDown", 0.10), **_lr("mouthDimple", 0.10)},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.50, "mouthPucker": 0.25, **_lr("mouthLowerDown", 0.12)},
    "ou": {"jawOpen": 0.12, "mouthPucker": 0.70, "mouthFunnel": 0.40},
}  # fmt: skip


@dataclass(frozen=True)
class Dominance:
    """Dominance of one articulatory segment at distance d (s) outside it; `alpha` inside it.

    Before the segment: alpha * (exp(-(d / tau_before)^2) + lead * exp(-d / TAU_LEAD)), i.e. a
    Gaussian anticipation plus a weak, slower preparatory rise; after it: alpha * exp(-(d / tau_after)^2).
    """

    alpha: float
    tau_before: float  # s, anticipation
    tau_after: float  # s, carry-over
    lead: float = 0.0  # weight of the slow preparatory component (relative to alpha)


TAU_LEAD = 0.05  # s

DOMINANCE: dict[str, Dominance] = {
    "sil": Dominance(1.5, 0.05, 0.05),  # scaled by pause length, see PAUSE_FULL_S
    "PP": Dominance(8.0, 0.025, 0.015, lead=0.04),
    "FF": Dominance(6.0, 0.025, 0.015, lead=0.04),
    "TH": Dominance(1.5, 0.025, 0.02),
    "DD": Dominance(0.8, 0.03, 0.02),
    "kk": Dominance(0.6, 0.03, 0.02),
    "CH": Dominance(2.0, 0.035, 0.025, lead=0.05),
    "SS": Dominance(1.5, 0.025, 0.02),
    "nn": Dominance(0.6, 0.03, 0.02),
    "RR": Dominance(1.2, 0.035, 0.025, lead=0.05),
    "aa": Dominance(1.0, 0.035, 0.03),
    "E": Dominance(1.0, 0.035, 0.03),
    "ih": Dominance(1.0, 0.035, 0.03),
    "oh": Dominance(1.2, 0.045, 0.035, lead=0.05),
    "ou": Dominance(2.0, 0.05, 0.035, lead=0.1),
}
# Pauses shorter than PAUSE_MIN_S are transparent (the lips do not close between words); the
# silence's dominance grows to full at PAUSE_FULL_S.
PAUSE_MIN_S = 0.08
PAUSE_FULL_S = 0.25


@dataclass(frozen=True)
class PhoneSpec:
    """How one espeak-ng phone is articulated."""

    parts: tuple[tuple[str, float], ...]  # (viseme, fraction of the phone's duration), in time order
    strength: float = 1.0  # scales the viseme's target values (and the speaker style's scales)
    dominance: float = 1.0  # multiplies the viseme's alpha

    @property
    def visemes(self) -> str:
        return "+".join(v for v, _ in self.parts)


def _p(*visemes: str, strength: float = 1.0, dominance: float = 1.0, split: Sequence[float] | None = None) -> PhoneSpec:
    fr = tuple(split) if split is not None else tuple([1.0 / len(visemes)] * len(visemes))
    return PhoneSpec(tuple(zip(visemes, fr, strict=True)), strength, dominance)


_WEAK = 0.4
# espeak-ng English mnemonics (ph_english and its accent tables), as reported in phoneme events.
PHONEMES: dict[str, PhoneSpec] = {
    # pauses
    "_": _p("sil"), "_:": _p("sil"), "_!": _p("sil"), "_|": _p("sil"), "_^": _p("sil"), "_#": _p("sil"),
    # bilabials, labiodentals, dentals
    "p": _p("PP"), "b": _p("PP"), "m": _p("PP"),
    "f": _p("FF"), "v": _p("FF"),
    "T": _p("TH"), "D": _p("TH", strength=0.8),
    # alveolars, velars, postalveolars
    "t": _p("DD"), "d": _p("DD"), "t#": _p("DD", strength=0.7, dominance=0.6), "t[": _p("DD"), "d#": _p("DD"),
    "n": _p("nn"), "n-": _p("nn"), "l": _p("nn"), "l/": _p("nn"), "L": _p("nn"), "@L": _p("E", "nn", strength=0.7),
    "k": _p("kk"), "g": _p("kk"), "N": _p("kk"), "x": _p("kk"), "?": _p("kk", strength=0.5, dominance=0.3),
    "tS": _p("CH"), "dZ": _p("CH"), "S": _p("CH"), "Z": _p("CH"),
    "s": _p("SS"), "z": _p("SS"),
    "r": _p("RR"), "r-": _p("RR", strength=0.7, dominance=0.6), "R": _p("RR"),
    "w": _p("ou", strength=1.0, dominance=1.5), "w#": _p("ou", dominance=1.5), "W": _p("ou", dominance=1.5),
    "j": _p("ih", strength=0.8, dominance=0.8),
    ";": _p("ih", strength=0.6, dominance=0.6),  # the [j] glide espeak inserts between i and a vowel ("media")
    "h": _p("E", strength=0.5, dominance=0.15),
    # monophthongs
    "a": _p("aa", strength=0.85), "a#": _p("aa", strength=0.6, dominance=_WEAK), "aa": _p("aa"), "A:": _p("aa"),
    "A": _p("aa"), "A@": _p("aa"), "V": _p("aa", strength=0.75),
    "E": _p("E"), "E2": _p("E"), "E3": _p("E"), "e": _p("E"), "e@": _p("E", strength=0.9),
    "I": _p("ih", strength=0.85), "I2": _p("ih", strength=0.7), "I#": _p("ih", strength=0.6, dominance=_WEAK),
    "i": _p("ih", strength=0.8), "i:": _p("ih"), "IR": _p("ih", "RR"),
    "0": _p("oh", strength=0.9), "O:": _p("oh"), "O": _p("oh"), "O@": _p("oh"), "O2": _p("oh", strength=0.85),
    "o@": _p("oh", "RR", split=(0.7, 0.3)), "o": _p("oh"),
    "U": _p("ou", strength=0.7), "u:": _p("ou"), "u": _p("ou", strength=0.8), "U@": _p("ou", "E", split=(0.6, 0.4)),
    "@": _p("E", strength=0.55, dominance=_WEAK), "@2": _p("E", strength=0.5, dominance=_WEAK),
    "@5": _p("E", strength=0.5, dominance=_WEAK), "@-": _p("E", strength=0.45, dominance=_WEAK),
    "3": _p("RR", strength=0.8, dominance=0.6),
    "3:": _p("E", "RR", strength=0.85), "VR": _p("aa", "RR", split=(0.6, 0.4)),
    # diphthongs (split in time)
    "aI": _p("aa", "ih", split=(0.55, 0.45)), "aI2": _p("aa", "ih", split=(0.55, 0.45)),
    "aI3": _p("aa", "ih", split=(0.55, 0.45)), "aI@": _p("aa", "ih", "E", split=(0.4, 0.3, 0.3)),
    "aU": _p("aa", "ou", split=(0.55, 0.45)), "aU@": _p("aa", "ou", "E", split=(0.4, 0.3, 0.3)),
    "eI": _p("E", "ih", split=(0.6, 0.4)), "OI": _p("oh", "ih", split=(0.5, 0.5)),
    "oU": _p("oh", "ou", split=(0.55, 0.45)), "@U": _p("E", "ou", split=(0.5, 0.5)),
    "i@": _p("ih", "E", split=(0.6, 0.4)), "i@3": _p("ih", "E", split=(0.6, 0.4)),
}  # fmt: skip
# American accents' LOT vowel is unrounded [ɑ].
ACCENT_OVERRIDES: dict[str, dict[str, PhoneSpec]] = {
    "en-us": {"0": _p("aa", strength=0.9)},
    "en-us-nyc": {"0": _p("aa", strength=0.9)},
}
UNKNOWN_PHONE = _p("E", strength=0.5, dominance=0.5)  # neutral half-open mouth

# ARPAbet (lower case, as in CMUdict / Festival segment files), for real speech aligned by
# `a2bs.corpus.align`. Vowels may carry a CMUdict stress digit ("ih0", "aa1"); unstressed ones are
# articulated weaker (`UNSTRESSED`). "ax" is unstressed AH (Festival's name for AH0).
ARPABET_ACCENT = "arpabet"  # the `accent` value that selects this table
ARPABET: dict[str, PhoneSpec] = {
    "pau": _p("sil"), "sil": _p("sil"), "sp": _p("sil"), "h#": _p("sil"),
    "p": _p("PP"), "b": _p("PP"), "m": _p("PP"),
    "f": _p("FF"), "v": _p("FF"),
    "th": _p("TH"), "dh": _p("TH", strength=0.8),
    "t": _p("DD"), "d": _p("DD"), "n": _p("nn"), "l": _p("nn"), "el": _p("E", "nn", strength=0.7),
    "en": _p("E", "nn", strength=0.7),
    "k": _p("kk"), "g": _p("kk"), "ng": _p("kk"),
    "ch": _p("CH"), "jh": _p("CH"), "sh": _p("CH"), "zh": _p("CH"),
    "s": _p("SS"), "z": _p("SS"),
    "r": _p("RR"), "er": _p("E", "RR", strength=0.85), "axr": _p("RR", strength=0.8, dominance=0.6),
    "w": _p("ou", dominance=1.5), "y": _p("ih", strength=0.8, dominance=0.8),
    "hh": _p("E", strength=0.5, dominance=0.15),
    "aa": _p("aa"), "ae": _p("aa", strength=0.85), "ah": _p("aa", strength=0.75),
    "ax": _p("E", strength=0.55, dominance=_WEAK), "ao": _p("oh"), "eh": _p("E"), "ih": _p("ih", strength=0.85),
    "iy": _p("ih"),
    "uh": _p("ou", strength=0.7), "uw": _p("ou"),
    "aw": _p("aa", "ou", split=(0.55, 0.45)), "ay": _p("aa", "ih", split=(0.55, 0.45)),
    "ey": _p("E", "ih", split=(0.6, 0.4)), "ow": _p("oh", "ou", split=(0.55, 0.45)),
    "oy": _p("oh", "ih", split=(0.5, 0.5)),
}  # fmt: skip
UNSTRESSED = (0.8, 0.7)  # (strength, dominance) factors of a vowel with stress digit 0
PAUSES = frozenset(k for table in (PHONEMES, ARPABET) for k, v in table.items() if v.parts == (("sil", 1.0),))


def _arpabet_spec(name: str) -> PhoneSpec | None:
    base = name.rstrip("012")
    if base == "ah" and name.endswith("0"):
        base = "ax"
    spec = ARPABET.get(base)
    if spec is not None and name.endswith("0") and base != "ax":
        spec = PhoneSpec(spec.parts, spec.strength * UNSTRESSED[0], spec.dominance * UNSTRESSED[1])
    return spec


def phone_spec(name: str, accent: str) -> PhoneSpec | None:
    if accent == ARPABET_ACCENT:
        return _arpabet_spec(name)
    over = ACCENT_OVERRIDES.get(accent, {})
    return over.get(name) or PHONEMES.get(name)
