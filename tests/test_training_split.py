"""The grouped 90:10 split."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from training.data.items import Item, donateacry_items
from training.data.split import grouped_folds, grouped_split


def synthetic_items() -> list[Item]:
    rng = random.Random(0)
    items = []
    for source in ("android-8k", "ios-16k"):
        for g in range(120):
            items += [
                Item(f"{source}{g}-{k}", 1, source, "crying", f"u{source}{g}")
                for k in range(rng.choice([1, 1, 2, 5, 12]))
            ]
    for category in ("speech", "music", "fan"):
        items += [Item(f"{category}{g}", 0, "x", category, f"f{category}{g}") for g in range(30)]
    return items


def sides(items: list[Item]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for item in items:
        found[item.group].add(item.split)
    return found


def test_no_group_on_both_sides_and_about_ten_percent_per_stratum() -> None:
    items = synthetic_items()
    grouped_split(items, 0.1, seed=1)
    assert all(len(s) == 1 for s in sides(items).values())
    for key in ("android-8k", "ios-16k", "speech", "music", "fan"):
        part = [i for i in items if key in (i.source, i.category)]
        share = sum(i.split == "valid" for i in part) / len(part)
        assert 0.05 < share < 0.15, (key, share)


def test_split_is_deterministic_and_seeded() -> None:
    a, b, c = synthetic_items(), synthetic_items(), synthetic_items()
    grouped_split(a, seed=3)
    grouped_split(b, seed=3)
    grouped_split(c, seed=4)
    assert [i.split for i in a] == [i.split for i in b]
    assert [i.split for i in a] != [i.split for i in c]


def test_small_strata_keep_a_training_group() -> None:
    items = [Item("a", 0, "x", "rare", "g1"), Item("b", 0, "x", "rare", "g2")]
    items.append(Item("c", 0, "x", "single", "g3"))
    grouped_split(items)
    assert sorted(i.split for i in items[:2]) == ["train", "valid"]
    assert items[2].split == "train"


def test_real_donateacry_uuids_never_cross(data_dir: Path) -> None:
    items = donateacry_items(data_dir / "donateacry-corpus")
    assert len(items) == 1128
    grouped_split(items)
    assert all(len(s) == 1 for s in sides(items).values())
    valid = sum(i.split == "valid" for i in items)
    assert 90 < valid < 140


def test_folds_keep_groups_whole_and_share_every_stratum() -> None:
    items = synthetic_items()
    fold_of = grouped_folds(items, 5, seed=1)
    assert set(fold_of) == {i.group for i in items} and set(fold_of.values()) == set(range(5))
    for key in ("android-8k", "ios-16k", "speech", "music", "fan"):
        part = [i for i in items if key in (i.source, i.category)]
        sizes = [sum(fold_of[i.group] == f for i in part) for f in range(5)]
        assert max(sizes) - min(sizes) <= 12, (key, sizes)  # at most one of the largest groups
    assert grouped_folds(items, 5, seed=1) == fold_of
    assert grouped_folds(items, 5, seed=2) != fold_of


def test_single_group_strata_do_not_all_land_in_one_fold() -> None:
    items = [Item(f"{c}", 0, "x", f"category{c}", f"g{c}") for c in range(20)]
    assert len(set(grouped_folds(items, 5).values())) > 1
