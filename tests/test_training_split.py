"""The grouped 90:10 split."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import make_cache

from training.__main__ import main
from training.data.cache import Cache
from training.data.items import Item, donateacry_items
from training.data.split import grouped_folds, grouped_split, source_split


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


def test_source_split_holds_out_whole_sources_and_keeps_what_it_is_told() -> None:
    items = synthetic_items()
    grouped_split(items, 0.1, seed=1)
    for i, item in enumerate(i for i in items if i.label == 0):
        item.source = ("held", "kept", "other")[i % 3]
    before = [i.split for i in items]
    source_split(items, valid_sources={"held"}, keep_sources={"kept"})
    for item, split in zip(items, before, strict=True):
        if item.label == 1 or item.source == "kept":
            assert item.split == split
        else:
            assert item.split == ("valid" if item.source == "held" else "train")
    assert {i.split for i in items if i.source == "kept"} == {"train", "valid"}


def test_resplit_writes_a_cache_of_the_same_audio_that_says_how(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, "train")
    held = cache.split("train", 0)[0].source
    runs = tmp_path / "lso"
    main(["--runs", str(runs), "resplit", str(tmp_path / "cache"), "--valid-sources", held])
    other = Cache(runs / "cache")
    assert (runs / "cache" / "audio.npy").resolve() == (tmp_path / "cache" / "audio.npy").resolve()
    assert {i.path for i in other.split("valid")} == {i.path for i in cache.split("train", 0)}
    assert [i.split for i in other.split("train")] == [i.split for i in cache.split("train", 1)]
    item = other.split("valid")[0]
    assert np.array_equal(other.samples(item), cache.samples(item))
    assert other.summary["split"]["valid_sources"] == [held]
    assert other.summary["splits"]["valid"]["negatives"] == 2


def test_resplit_names_a_source_the_cache_lacks(tmp_path: Path) -> None:
    make_cache(tmp_path, "train")
    with pytest.raises(SystemExit) as stop:
        main(["--runs", str(tmp_path / "lso"), "resplit", str(tmp_path / "cache"),
              "--valid-sources", "moodist"])  # fmt: skip
    assert "no negatives of ['moodist']" in str(stop.value)
    assert "it has ['neg']" in str(stop.value)


def test_resplit_never_overwrites_a_prepared_cache(tmp_path: Path) -> None:
    make_cache(tmp_path, "train")
    before = (tmp_path / "cache" / "items.json").read_text()
    with pytest.raises(SystemExit) as stop:
        main(["--runs", str(tmp_path), "resplit", str(tmp_path / "cache"),
              "--valid-sources", "neg"])  # fmt: skip
    assert "holds decoded audio of its own" in str(stop.value)
    assert (tmp_path / "cache" / "items.json").read_text() == before
