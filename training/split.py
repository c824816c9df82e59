"""Train/validation split grouped by source: a group (one Donate-a-cry app uuid, one negative
recording, one ESC-50 source file) never has items on both sides."""

from __future__ import annotations

import random
from collections import defaultdict

from training.data import Item


def stratum(item: Item) -> tuple[int, str]:
    """Positives are balanced per source (8 kHz Android vs 16 kHz iOS), negatives per category."""
    return (item.label, item.source if item.label else item.category)


def grouped_split(items: list[Item], valid_fraction: float = 0.1, seed: int = 42) -> None:
    """Set ``item.split`` to ``"train"`` or ``"valid"``, about ``valid_fraction`` of each stratum.

    Whole groups are assigned, in a seeded random order, until the stratum's validation share is
    reached; every stratum with at least two groups gets at least one validation group.
    """
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    strata: dict[tuple[int, str], list[str]] = defaultdict(list)
    for name, members in groups.items():
        strata[stratum(members[0])].append(name)
    rng = random.Random(seed)
    valid: set[str] = set()
    for key in sorted(strata):
        names = sorted(strata[key])
        rng.shuffle(names)
        target = valid_fraction * sum(len(groups[n]) for n in names)
        taken = 0
        for name in names[:-1]:
            if taken and taken + len(groups[name]) / 2 > target:
                break
            valid.add(name)
            taken += len(groups[name])
    for item in items:
        item.split = "valid" if item.group in valid else "train"
