"""Night test assembly: episodes at known times, crying mixed at a given SNR."""

import numpy as np
import pytest
from support import RATE, cry_like, quiet_noise

from training.augment import rms
from training.night import (
    EPISODE_SECONDS,
    MIN_GAP_SECONDS,
    REFERENCE_FLOOR_DBFS,
    SNRS,
    Corpus,
    Scene,
    background,
    cry_gain,
    crying,
    night_blocks,
    plan_night,
    render,
    truth_of,
)


def corpus() -> Corpus:
    positives = [cry_like(3.0, seed=s) for s in range(3)]
    negatives = [quiet_noise(4.0, level=0.02, seed=s) for s in range(3)]
    return Corpus(positives, negatives)


def db(x: float) -> float:
    return 20 * np.log10(x)


@pytest.mark.parametrize("snr", SNRS)
def test_rendered_episode_has_the_requested_snr(snr):
    scene = Scene(gap_seconds=3.0, cry_seconds=6.0, snr_db=snr, seed=7)
    rng = np.random.default_rng(scene.seed)
    gap, n = 3 * RATE, 6 * RATE
    bed = background(corpus(), gap + n, rng)
    mixed = render(corpus(), scene)
    assert len(mixed) == gap + n
    np.testing.assert_array_equal(mixed[:gap], bed[:gap])
    cry, under = mixed[gap:] - bed[gap:], bed[gap:]
    reference = max(rms(under), 10 ** (REFERENCE_FLOOR_DBFS / 20))
    assert db(rms(cry)) - db(reference) == pytest.approx(snr, abs=0.05)


def test_cry_over_silence_is_measured_against_the_floor():
    cry = crying(corpus(), 2 * RATE, np.random.default_rng(0))
    gain = cry_gain(cry, np.zeros(2 * RATE, np.float32), 10.0)
    assert db(rms(gain * cry)) == pytest.approx(REFERENCE_FLOOR_DBFS + 10.0, abs=0.01)


def test_crying_clips_are_levelled_and_back_to_back():
    cry = crying(corpus(), 8 * RATE, np.random.default_rng(1))
    assert len(cry) == 8 * RATE
    assert rms(cry[: 3 * RATE]) == pytest.approx(1.0, rel=0.01)


def test_plan_places_every_snr_with_durations_and_gaps_in_range():
    scenes = plan_night(hours=1.0, per_snr=3, seed=0)
    truth = truth_of(scenes)
    assert sorted(t.snr_db for t in truth) == sorted(np.repeat(SNRS, 3).tolist())
    assert all(EPISODE_SECONDS[0] <= t.end - t.start <= EPISODE_SECONDS[1] for t in truth)
    starts = [0.0] + [t.end for t in truth]
    assert all(t.start - s >= MIN_GAP_SECONDS - 1e-6 for s, t in zip(starts, truth, strict=False))
    assert sum(s.seconds for s in scenes) == pytest.approx(3600, abs=1)


def test_blocks_line_up_with_the_truth():
    scenes = [Scene(2.0, 3.0, 0.0, 1), Scene(1.5, 2.5, 20.0, 2), Scene(1.0, 0.0, 0.0, 3)]
    audio = np.concatenate(list(night_blocks(corpus(), scenes)))
    truth = truth_of(scenes)
    assert [(t.start, t.end) for t in truth] == [(2.0, 5.0), (6.5, 9.0)]
    assert len(audio) == 10 * RATE
    loud = rms(audio[round(6.5 * RATE) : 9 * RATE])
    assert loud > 5 * rms(audio[5 * RATE : round(6.5 * RATE)])
