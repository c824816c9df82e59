"""Night test assembly: the background plan, crying clips, episodes at known times and SNRs."""

from itertools import pairwise

import numpy as np
import pytest
from support import RATE, cry_like, quiet_noise

from training.data.augment import rms
from training.night.assemble import (
    EPISODE_SECONDS,
    MAX_STRETCH_SECONDS,
    MIN_GAP_SECONDS,
    QUIET,
    REFERENCE_FLOOR_DBFS,
    SNRS,
    Corpus,
    Night,
    Scene,
    Stretch,
    background,
    category_heard,
    cry_gain,
    crying,
    night_blocks,
    plan,
    plan_background,
    plan_crying,
    plan_scenes,
    usage,
)


def corpus() -> Corpus:
    positives = [cry_like(3.0, seed=s) for s in range(3)]
    negatives = [quiet_noise(4.0, level=0.02, seed=s) for s in range(3)]
    return Corpus(positives, negatives, ["speech", "rain", "speech"])


def db(x: float) -> float:
    return 20 * np.log10(x)


def test_background_plays_every_recording_once_before_any_again():
    lengths = [RATE * s for s in (2, 5, 3, 300, 1, 4, 2)]
    stretches = plan_background(lengths, 1800 * RATE, np.random.default_rng(0))
    order = [s.recording for s in stretches if s.recording is not None]
    n = len(lengths)
    assert len(order) >= 3 * n
    blocks = [order[k : k + n] for k in range(0, len(order), n)]
    assert all(sorted(block) == list(range(n)) for block in blocks[:-1])
    assert len(set(blocks[-1])) == len(blocks[-1])
    assert stretches[0].start == 0 and stretches[-1].end >= 1800 * RATE
    assert all(a.end == b.start for a, b in pairwise(stretches))
    for s in stretches:
        if s.recording is not None:  # one recording, whole or one contiguous part of it
            assert s.length == min(lengths[s.recording], MAX_STRETCH_SECONDS * RATE)
            assert 0 <= s.offset <= lengths[s.recording] - s.length
    assert not any(a.recording is b.recording is None for a, b in pairwise(stretches))
    quiet = sum(s.length for s in stretches if s.recording is None)
    assert 0.3 < quiet / stretches[-1].end < 0.7


def test_balanced_families_are_heard_about_as_long_as_each_other():
    """Many short adult bursts and one long dialogue: by recording, the bursts would fill the
    night; by family, each is heard about half the time, and every burst once before any
    again."""
    lengths = [2 * RATE] * 30 + [600 * RATE]
    families = ["adult vocal sounds"] * 30 + ["speech"]
    stretches = plan_background(lengths, 3600 * RATE, np.random.default_rng(0), families)
    played = [s for s in stretches if s.recording is not None]
    heard = {
        name: sum(s.length for s in played if families[s.recording] == name) for name in families
    }
    # never further apart than the longest stretch one recording plays
    assert abs(heard["adult vocal sounds"] - heard["speech"]) <= MAX_STRETCH_SECONDS * RATE
    assert heard["speech"] > 5 * MAX_STRETCH_SECONDS * RATE
    bursts = [s.recording for s in played if s.recording < 30]
    assert all(
        sorted(bursts[k : k + 30]) == list(range(30)) for k in range(0, len(bursts) - 29, 30)
    )
    unbalanced = plan_background(lengths, 3600 * RATE, np.random.default_rng(0))
    dialogue = sum(s.length for s in unbalanced if s.recording == 30)
    assert dialogue / sum(s.length for s in unbalanced if s.recording is not None) > 0.6


def test_one_family_plans_the_night_as_without_families():
    lengths = [RATE * s for s in (2, 5, 3, 300)]
    rng = np.random.default_rng
    alone = plan_background(lengths, 600 * RATE, rng(1))
    assert plan_background(lengths, 600 * RATE, rng(1), ["speech"] * 4) == alone


def test_crying_clips_are_used_once_before_any_again():
    lengths = [RATE * s for s in (3, 7, 2, 5, 4)]
    scenes = plan_crying(
        lengths, plan_scenes(1.0, 3, np.random.default_rng(1)), np.random.default_rng(2)
    )
    clips = [c for s in scenes for c in s.clips]
    blocks = [clips[k : k + len(lengths)] for k in range(0, len(clips), len(lengths))]
    assert all(sorted(block) == list(range(len(lengths))) for block in blocks[:-1])
    assert len(set(blocks[-1])) == len(blocks[-1])
    for s in scenes:
        need = round(s.cry_seconds * RATE)
        assert sum(lengths[c] for c in s.clips) >= need
        assert not s.clips or sum(lengths[c] for c in s.clips[:-1]) < need


def test_scenes_place_every_snr_with_durations_and_gaps_in_range():
    scenes = plan_scenes(hours=1.0, per_snr=3, rng=np.random.default_rng(0))
    truth = Night(scenes, []).truth
    assert sorted(t.snr_db for t in truth) == sorted(np.repeat(SNRS, 3).tolist())
    assert all(EPISODE_SECONDS[0] <= t.end - t.start <= EPISODE_SECONDS[1] + 1e-3 for t in truth)
    starts = [0.0] + [t.end for t in truth]
    assert all(t.start - s >= MIN_GAP_SECONDS - 1e-3 for s, t in zip(starts, truth, strict=False))
    assert Night(scenes, []).samples == pytest.approx(3600 * RATE, abs=RATE)


def test_every_source_gets_the_same_schedule_of_episodes():
    other = Corpus([cry_like(5.0)], [quiet_noise(30.0)], ["noise"])
    assert plan(corpus(), 1.0, 2, seed=5).truth == plan(other, 1.0, 2, seed=5).truth


@pytest.mark.parametrize("snr", SNRS)
def test_rendered_episode_has_the_requested_snr(snr):
    c = corpus()
    bed = plan_background([len(n) for n in c.negatives], 9 * RATE, np.random.default_rng(3))
    mixed = np.concatenate(list(night_blocks(c, Night([Scene(3.0, 6.0, snr, (0, 1))], bed))))
    under = background(c, bed, 0, 9 * RATE)
    assert len(mixed) == 9 * RATE
    np.testing.assert_array_equal(mixed[: 3 * RATE], under[: 3 * RATE])
    cry, under = mixed[3 * RATE :] - under[3 * RATE :], under[3 * RATE :]
    reference = max(rms(under), 10 ** (REFERENCE_FLOOR_DBFS / 20))
    assert db(rms(cry)) - db(reference) == pytest.approx(snr, abs=0.05)


def test_cry_over_silence_is_measured_against_the_floor():
    cry = crying(corpus(), (0,), 2 * RATE)
    gain = cry_gain(cry, np.zeros(2 * RATE, np.float32), 10.0)
    assert db(rms(gain * cry)) == pytest.approx(REFERENCE_FLOOR_DBFS + 10.0, abs=0.01)


def test_crying_clips_are_levelled_and_back_to_back():
    c = corpus()
    cry = crying(c, (2, 0, 1), 8 * RATE)
    assert len(cry) == 8 * RATE
    assert rms(cry[: 3 * RATE]) == pytest.approx(1.0, rel=0.01)
    np.testing.assert_allclose(cry[3 * RATE : 6 * RATE], c.positives[0] / rms(c.positives[0]))


def test_background_is_the_same_whatever_the_blocks():
    c = corpus()
    bed = plan_background([len(n) for n in c.negatives], 60 * RATE, np.random.default_rng(4))
    whole = background(c, bed, 0, 60 * RATE)
    parts = [background(c, bed, a, b) for a, b in ((0, 7 * RATE + 11), (7 * RATE + 11, 60 * RATE))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_false_alarms_are_put_on_the_recording_heard_last():
    bed = [
        Stretch(0, 4 * RATE, -40.0, recording=1),
        Stretch(4 * RATE, 10 * RATE, -70.0),
        Stretch(14 * RATE, 2 * RATE, -40.0, recording=2),
    ]
    c, night = corpus(), Night([Scene(16.0, 0.0, 0.0)], bed)
    assert category_heard(c, night, 3.0, 7.0) == "rain"
    assert category_heard(c, night, 10.0, 7.0) == "rain"  # quiet now, rain within the window
    assert category_heard(c, night, 12.0, 7.0) == QUIET
    assert category_heard(c, night, 15.0, 7.0) == "speech"


def test_usage_counts_distinct_recordings_and_the_most_repeated():
    c = corpus()
    night = plan(c, 0.25, 1, seed=0)
    u = usage(c, night)
    plays = [s.recording for s in night.background if s.start < night.samples]
    assert u["recordings_played"] == 3 == u["crying_clips_played"]
    assert u["most_plays_of_a_recording"] == max(plays.count(i) for i in range(3))
    assert sum(u["hours_by_category"].values()) == pytest.approx(night.samples / RATE / 3600)
    assert set(u["hours_by_category"]) == {"speech", "rain", QUIET}
