"""Templated English sentences for the synthetic corpus, rich in bilabials, labiodentals and rounded vowels."""

from __future__ import annotations

import re

import numpy as np


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


_W = {
    "name": _words(
        "Bob Mary Molly Paul Bobby Emma Maggie Pam Ben Bill Mabel Bruno Fiona Vivian Victor Oliver Ruth Luke "
        "Sue Owen Joe Rosa Ruby Hugo Martha Arthur Thomas Boris Wanda Walter Maya Ava Noah Sophie Peter"
    ),
    "noun": _words(
        "boat moon balloon bubble map pepper book box bottle puppy baby apple banana pumpkin mop broom "
        "coffee muffin waffle violin voice fox wolf fish shoe spoon soup goose tooth room pool ball park farm "
        "car star heart garden market harbour ocean road window robot rope umbrella hammer feather "
        "mirror father mother brother river valley village forest mountain paper pizza piano camera blanket "
        "football movie photo phone novel puzzle oven fountain lemon cookie tomato potato orange flower"
    ),
    "plural": _words(
        "boats balloons bubbles maps apples bananas pumpkins shoes spoons boots books boxes puppies "
        "feathers violins movies photos muffins waffles flowers lemons potatoes tomatoes stars rooms"
    ),
    "verb": _words(
        "bought found moved opened painted fixed borrowed pushed pulled dropped filled folded washed "
        "carried brought wrapped mopped baked cooked played watched loved showed followed booked"
    ),
    "adj": _words(
        "big blue brown purple pink warm cool huge small smooth soft rough heavy happy funny fluffy "
        "famous foolish old new bright dark gloomy lovely vivid marvellous proper humble awful"
    ),
    "adv": _words("slowly quickly happily boldly calmly softly proudly barely probably maybe obviously"),
    "place": _words(
        "by the pool|in the boat|at the market|on the roof|near the harbour|in the garden|under the moon|"
        "at home|by the fountain|in the valley|on the farm|in the room|by the river|at the park|in the forest",
        "|",
    ),
    "time": _words(
        "on Monday|at noon|in the morning|before lunch|after school|tomorrow|at five|at half past two|"
        "last summer|every Friday|in November|all afternoon|by midnight",
        "|",
    ),
    "number": _words("two|four|five|seven|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|ninety|a hundred", "|"),
    "interj": _words("Oh|Wow|Well|Hmm|Oh boy|Ah|Whoa|Oh my|Hooray|Okay|Ouch|Yes|No|Um, well", "|"),
}
_TEMPLATES = (
    "{name} {verb} {a_adj} {noun} {place}.",
    "{name} and {name2} {verb} {number} {plural} {time}.",
    "Would you move the {adj} {noun} {place}, please?",
    "Who {verb} the {noun}? {name} did, {time}.",
    "{interj}, the {noun} is {adv} {adj}!",
    "Maybe {name} will bring a {noun} {time}, or maybe not.",
    "I think the {adj} {noun} fell off the {noun2}.",
    "{name}, look at the {adj} {plural}! They are moving {adv}.",
    "Five fluffy {plural} moved very far from the {noun}.",
    "Do you remember the {noun} we {verb} {time}?",
    "My brother Bob bought {number} {adj} {plural}.",
    "Oh, who knew the {noun} would be so {adj}?",
    "Please put the {noun} back in the box, {name}.",
    "We saw {a_adj} {noun} {place}, and it was {adj}.",
    "{interj}! {name} {verb} my {noun} again.",
    "Mom made {number} {plural} for the {adj} party.",
    "The {noun} is {adj}; the {noun2}, however, is {adj2}.",
    "You moved the moon, {name}? Prove it.",
    "{name} is {adv} waiting {place}. Are you coming?",
    "Father thought of {number} {plural} {time}.",
)
_FIELD = re.compile(r"\{(\w+)\}")


def generate_sentence(rng: np.random.Generator) -> str:
    """One templated utterance (one or two sentences, ~1.5-6 s of speech), deterministic for `rng`."""
    tpl = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]

    def pick(key: str) -> str:
        words = _W[key]
        return words[int(rng.integers(len(words)))]

    def fill(m: re.Match) -> str:
        key = m.group(1)
        if key == "a_adj":
            w = pick("adj")
            return ("an " if w[0] in "aeiou" else "a ") + w
        return pick(key.rstrip("2"))

    return _FIELD.sub(fill, tpl)
