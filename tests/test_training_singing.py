"""Sung lullabies rendered with FluidSynth: the MIDI the module writes sings the notes it names,
every performance is a negative of its tune's group, and ``prepare --negatives`` reads them."""

from __future__ import annotations

import csv
import itertools
import os
import random
from pathlib import Path

import numpy as np
import pytest
from support import REQUIRE_FLUIDSYNTH_ENV

from training import RecipeError
from training.data.audio import PARAMS, load_audio
from training.data.items import manifest_items
from training.data.singing import (
    CATEGORY,
    TUNES,
    Note,
    all_tunes,
    fluidsynth,
    perform,
    random_tune,
    render,
    sing,
)
from training.data.split import grouped_split


@pytest.fixture(scope="module", autouse=True)
def needs_fluidsynth() -> None:
    try:
        fluidsynth()
    except RecipeError as exc:
        if os.environ.get(REQUIRE_FLUIDSYNTH_ENV):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def fundamental(audio: np.ndarray, rate: int) -> float:
    """The strongest period (autocorrelation) between 80 and 1000 Hz."""
    audio = audio - audio.mean()
    corr = np.correlate(audio, audio, "full")[len(audio) - 1 :]
    lo, hi = rate // 1000, rate // 80
    return rate / (lo + int(np.argmax(corr[lo:hi])))


@pytest.mark.parametrize("pitch", [57, 69])
def test_a_note_is_sung_at_its_pitch(tmp_path: Path, pitch: int) -> None:
    wav = tmp_path / "a.wav"
    perform(wav, [(53, [Note(pitch, 0.0, 1.5, 100)])], (5.0, 0.0), 0.8)
    audio = load_audio(wav)
    assert not wav.with_suffix(".mid").exists()
    steady = audio[int(0.4 * PARAMS.sample_rate) : int(1.2 * PARAMS.sample_rate)]
    assert np.sqrt(np.mean(steady**2)) > 0.01
    hz = 440.0 * 2 ** ((pitch - 69) / 12)
    assert fundamental(steady, PARAMS.sample_rate) == pytest.approx(hz, rel=0.03)


def test_a_tune_is_sung_in_order_and_repeated_to_length() -> None:
    notes = sing(TUNES["twinkle-twinkle"], random.Random(1), 20.0)
    starts = [n.start for n in notes]
    assert starts == sorted(starts)
    verse = [interval for interval, _ in TUNES["twinkle-twinkle"]]
    assert len(notes) % len(verse) == 0 and len(notes) > len(verse)
    assert notes[-len(verse)].start < 20.0 <= notes[-1].start + notes[-1].length
    assert [n.pitch - notes[0].pitch for n in notes] == verse * (len(notes) // len(verse))
    assert all(20 <= n.velocity <= 127 and n.length > 0 for n in notes)


def test_random_tunes_are_slow_steps_in_a_major_key() -> None:
    rng = random.Random(3)
    for _ in range(20):
        tune = random_tune(rng)
        pitches = [p for p, _ in tune if p is not None]
        assert all(p % 12 in (0, 2, 4, 5, 7, 9, 11) for p in pitches)
        assert max(abs(a - b) for a, b in itertools.pairwise(pitches)) <= 12
        assert sum(beats for _, beats in tune) >= 12
    assert all_tunes(5) == all_tunes(5) != all_tunes(6)


def test_render_writes_a_manifest_that_prepare_reads_one_group_per_tune(
    tmp_path: Path,
) -> None:
    tunes = {name: TUNES[name] for name in ("brahms-lullaby", "silent-night", "frere-jacques")}
    manifest = render(tmp_path / "singing", tunes, per_tune=2, seconds=4.0, seed=0)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    items = manifest_items(manifest, 0)
    assert {i.category for i in items} == {CATEGORY}
    assert {i.group for i in items} == {f"tune:{name}" for name in tunes}
    assert all(i.label == 0 and "MIT" in i.license for i in items)
    for item in items:
        audio = load_audio(Path(item.path))
        assert len(audio) >= 3.5 * PARAMS.sample_rate
        assert np.sqrt(np.mean(audio**2)) > 0.003
    grouped_split(items, 0.34, seed=1)
    for name in tunes:
        assert len({i.split for i in items if i.group == f"tune:{name}"}) == 1
    assert {i.split for i in items} == {"train", "valid"}
