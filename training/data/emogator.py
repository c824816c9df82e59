"""EmoGator: adult vocal bursts (laughs, sobs, moans, screams, sighs) as negatives.

The data set is the public repository ``fredbuhl/EmoGator`` (arXiv 2301.00508), cloned as it is:
``data/mp3/NNNNNN-PP-T.mp3`` is contributor ``NNNNNN`` answering prompt ``PP`` (:data:`PROMPTS`)
in take ``T``. Each clip is one burst of about 2 s; one item chains a contributor's takes of one
prompt, so a window holds several bursts of one voice with its own room between them, not one
burst in silence. The contributor is the split group: a voice is never on both sides.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from training import RecipeError
from training.data.items import Item

SOURCE = "emogator"
LICENSE = "Apache-2.0 (the repository's licence; its README names no separate data licence)"
PROMPTS = (
    "adoration",
    "amusement",
    "anger",
    "awe",
    "confusion",
    "contempt",
    "contentment",
    "desire",
    "disappointment",
    "disgust",
    "distress",
    "ecstasy",
    "elation",
    "embarrassment",
    "fear",
    "guilt",
    "interest",
    "neutral",
    "pain",
    "pride",
    "realization",
    "relief",
    "romantic love",
    "sadness",
    "serenity",
    "shame",
    "surprise (negative)",
    "surprise (positive)",
    "sympathy",
    "triumph",
)
"""The prompts in the README's order: ``PP`` is the 1-based position."""
CATEGORY_PREFIX = "adult "
"""Each prompt is a category of its own: ``adult amusement``, ``adult sadness``, ..."""
_NAME = re.compile(r"(?P<contributor>\d{6})-(?P<prompt>\d{2})-(?P<take>\d+)\.mp3")


def category(prompt: int) -> str:
    """The category of prompt number ``prompt`` (1-based)."""
    return CATEGORY_PREFIX + PROMPTS[prompt - 1]


def emogator_items(root: Path) -> list[Item]:
    """One negative per contributor and prompt, its takes chained in order (the near-silent
    ones are dropped when the chain is decoded: :func:`training.data.items.load_item`); grouped by
    contributor."""
    folder = root / "data" / "mp3"
    if not folder.is_dir():
        raise RecipeError(
            f"{root} is not a clone of fredbuhl/EmoGator (no data/mp3/): "
            "git clone https://github.com/fredbuhl/EmoGator"
        )
    takes: dict[tuple[str, int], list[tuple[int, Path]]] = defaultdict(list)
    for path in folder.iterdir():
        name = _NAME.fullmatch(path.name)
        if name and 1 <= int(name["prompt"]) <= len(PROMPTS):
            key = (name["contributor"], int(name["prompt"]))
            takes[key].append((int(name["take"]), path))
    items = []
    for (contributor, prompt), paths in sorted(takes.items()):
        first, *rest = [str(path) for _, path in sorted(paths)]
        group = f"{SOURCE}:{contributor}"
        items.append(Item(first, 0, SOURCE, category(prompt), group, parts=rest, license=LICENSE))
    return items
