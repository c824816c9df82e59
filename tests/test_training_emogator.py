"""EmoGator's layout: one chained negative per contributor and prompt, near-silent takes out, a
contributor on one side of the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cry_mqtt.features import dbfs
from training import RecipeError
from training.data.audio import PARAMS, load_audio
from training.data.cache import Cache, build_cache
from training.data.emogator import LICENSE, SOURCE, category, emogator_items
from training.data.sources import discover
from training.data.split import grouped_split

RATE = 48000


def write_burst(path: Path, seconds: float, level_dbfs: float, hz: float) -> Path:
    """An MP3 at 48 kHz, as EmoGator's: a voiced burst (harmonics of ``hz``) at ``level_dbfs``."""
    t = np.arange(round(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 4))
    tone *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(tone**2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone.astype(np.float32), RATE, format="MP3")
    return path


def make_emogator(root: Path, contributors: int = 3, prompts: tuple[int, ...] = (2, 24)) -> Path:
    """A clone's layout: ``data/mp3/NNNNNN-PP-T.mp3``; take 3 of contributor 1's prompt 24 is
    near-silent, and a stray file that is not a burst sits beside them."""
    folder = root / "data" / "mp3"
    for contributor in range(1, contributors + 1):
        for prompt in prompts:
            for take in (1, 2, 3):
                quiet = (contributor, prompt, take) == (1, 24, 3)
                write_burst(
                    folder / f"{contributor:06d}-{prompt:02d}-{take}.mp3",
                    1.5 + 0.1 * take,
                    -65.0 if quiet else -25.0,
                    200.0 + 50 * take,
                )
    (folder / "README.txt").write_text("not a burst")
    return root


def test_one_item_per_contributor_and_prompt_with_its_takes_in_order(tmp_path: Path) -> None:
    items = emogator_items(make_emogator(tmp_path / "EmoGator"))
    assert len(items) == 6
    first = items[0]
    assert Path(first.path).name == "000001-02-1.mp3"
    assert [Path(p).name for p in first.parts] == ["000001-02-2.mp3", "000001-02-3.mp3"]
    assert (first.label, first.source, first.category) == (0, SOURCE, "adult amusement")
    assert (
        {i.category for i in items}
        == {category(2), category(24)}
        == {
            "adult amusement",
            "adult sadness",
        }
    )
    assert {i.group for i in items} == {f"emogator:{n:06d}" for n in (1, 2, 3)}
    assert all(i.license == LICENSE for i in items)


def test_chained_bursts_leave_the_near_silent_take_out(tmp_path: Path) -> None:
    root = make_emogator(tmp_path / "EmoGator")
    items = discover(None, emogator=root)
    for item in items:
        item.split = "train"
    build_cache(items, tmp_path / "cache")
    cache = Cache(tmp_path / "cache")
    lengths = {(i.group, i.category): i.length / PARAMS.sample_rate for i in cache.items}
    # Three takes of 1.6, 1.7 and 1.8 s chained (MP3 adds a few ms of padding each).
    assert lengths[("emogator:000002", "adult sadness")] == pytest.approx(5.1, abs=0.1)
    # Contributor 1's near-silent third take is left out of its chain.
    assert lengths[("emogator:000001", "adult sadness")] == pytest.approx(3.3, abs=0.1)
    chained = cache.samples(cache.items[-1])
    assert dbfs(chained) > -30
    take = load_audio(Path(cache.items[-1].path))
    assert np.corrcoef(chained[8000 : 8000 + 4000], take[8000 : 8000 + 4000])[0, 1] > 0.99


def test_a_contributor_is_never_on_both_sides_of_the_split(tmp_path: Path) -> None:
    items = emogator_items(make_emogator(tmp_path / "EmoGator", contributors=20))
    grouped_split(items, 0.1, seed=3)
    sides: dict[str, set[str]] = {}
    for item in items:
        sides.setdefault(item.group, set()).add(item.split)
    assert all(len(s) == 1 for s in sides.values())
    held_out = [g for g, s in sides.items() if s == {"valid"}]
    assert 1 <= len(held_out) <= 3
    # A held-out contributor takes every prompt with them, so each prompt is on the tuning side.
    valid = [i for i in items if i.split == "valid"]
    assert {i.category for i in valid} == {"adult amusement", "adult sadness"}


def test_a_folder_that_is_not_a_clone_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"not a clone of fredbuhl/EmoGator.*git clone"):
        emogator_items(tmp_path)
