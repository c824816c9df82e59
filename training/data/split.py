"""Splits grouped by source: a group (one Donate-a-cry app uuid, one negative recording, one
ESC-50 source file) never has items on both sides; or whole sources held out
(:func:`source_split`)."""

from __future__ import annotations

import random
from collections import defaultdict

from training.data.items import Item


def stratum(item: Item) -> tuple[int, str]:
    """Positives are balanced per source (8 kHz Android vs 16 kHz iOS), negatives per category."""
    return (item.label, item.source if item.label else item.category)


def _groups_by_stratum(
    items: list[Item],
) -> tuple[dict[str, list[Item]], dict[tuple[int, str], list[str]]]:
    """The items of each group, and the group names of each stratum (sorted)."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    strata: dict[tuple[int, str], list[str]] = defaultdict(list)
    for name in sorted(groups):
        strata[stratum(groups[name][0])].append(name)
    return groups, strata


def grouped_split(items: list[Item], valid_fraction: float = 0.1, seed: int = 42) -> None:
    """Set ``item.split`` to ``"train"`` or ``"valid"``, about ``valid_fraction`` of each stratum.

    Whole groups are assigned, in a seeded random order, until the stratum's validation share is
    reached; every stratum with at least two groups gets at least one validation group.
    """
    groups, strata = _groups_by_stratum(items)
    rng = random.Random(seed)
    valid: set[str] = set()
    for key in sorted(strata):
        names = strata[key]
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


def source_split(items: list[Item], valid_sources: set[str], keep_sources: set[str]) -> None:
    """Leave-source-out: every negative of ``valid_sources`` goes to validation, the positives
    and the negatives of ``keep_sources`` keep their ``split``, and every other negative goes to
    training. A tuning night built from such a validation side holds no recording, speaker,
    game or composer that a trained model has heard, as the independent nights do not."""
    for item in items:
        if item.label == 0 and item.source in valid_sources:
            item.split = "valid"
        elif item.label == 0 and item.source not in keep_sources:
            item.split = "train"


def grouped_folds(items: list[Item], folds: int, seed: int = 42) -> dict[str, int]:
    """The fold (``0..folds-1``) of every group, for cross-validation.

    Within each stratum the groups go, largest first (ties in seeded random order), to the fold
    that holds fewest of the stratum's items so far, so every fold gets about ``1/folds`` of
    each stratum.
    """
    groups, strata = _groups_by_stratum(items)
    rng = random.Random(seed)
    fold_of: dict[str, int] = {}
    for key in sorted(strata):
        names = strata[key]
        rng.shuffle(names)
        names.sort(key=lambda n: -len(groups[n]))
        load = [0] * folds
        first = rng.randrange(folds)  # small strata should not all start in fold 0
        for name in names:
            fold = min(range(folds), key=lambda f: (load[f], (f - first) % folds))
            fold_of[name] = fold
            load[fold] += len(groups[name])
    return fold_of
