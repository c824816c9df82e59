"""Training windows: which positives are used, source balance and the codec rate of negatives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import RATE, hiss, make_cache

from training.data.audio import PARAMS, holds_events
from training.data.augment import AugmentConfig
from training.data.items import Item
from training.data.windows import TrainSet, negative_weights, validation_windows


def test_holds_events_rejects_only_quiet_steady_noise() -> None:
    quiet = hiss(-45)
    assert not holds_events(quiet)
    assert holds_events(hiss(-12))  # loud steady sound counts (continuous crying is)
    t = np.arange(RATE // 2) / RATE
    bursts = quiet.copy()
    for start in (RATE, 3 * RATE, 5 * RATE):
        bursts[start : start + len(t)] += 0.2 * np.sin(2 * np.pi * 450 * t)
    assert 10 * np.log10(np.mean(bursts**2)) < -20  # quiet overall, yet it holds events
    assert holds_events(bursts)


def test_train_set_balances_sources_and_matches_the_codec_rate(tmp_path: Path) -> None:
    train = TrainSet(make_cache(tmp_path, "train"), AugmentConfig(p_phone=0.2))
    assert train.left_out == 2  # the flat upload and the audited one
    by_source: dict[str, float] = {}
    for item, weight in zip(train.positives, train.positive_weights, strict=True):
        by_source[item.source] = by_source.get(item.source, 0.0) + weight
    assert by_source == pytest.approx({"android-8k": 0.5, "pos": 0.5})
    # P(codec | crying) = 0.5 (phone recordings) + 0.5 * 0.2 (the rest) = 0.6, and negatives match
    assert train.p_phone_negative == pytest.approx(0.6)
    mel, label = train[0]
    assert tuple(mel.shape) == (PARAMS.n_mels, 215) and float(label) == 1.0
    assert float(train[len(train) - 1][1]) == 0.0


def test_speed_moves_the_pitch_of_negatives_only(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, "train")
    plain = AugmentConfig(
        p_background_positive=0, p_background_negative=0, p_band_limit=0, p_noise_floor=0
    )
    for factor in (0.7, 1.5):
        cfg = replace(plain, p_phone=0, p_speed=1.0, speed_range=(factor, factor))
        train = TrainSet(cache, cfg)
        rng = np.random.default_rng(0)
        negative, _ = train.window(len(train) - 1, rng)
        assert min(abs(peak_hz(negative) - hz * factor) for hz in (1000, 1300)) < 5
        positive, _ = train.window(0, rng)
        assert min(abs(peak_hz(positive) - hz) for hz in (400, 500, 550)) < 5


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * RATE / len(samples))


def test_category_balance_gives_a_few_short_laughs_the_weight_of_hours_of_music() -> None:
    def item(category: str, seconds: float) -> Item:
        return Item(
            f"{category}.wav",
            0,
            "debian",
            category,
            category,
            length=int(seconds * PARAMS.sample_rate),
        )

    negatives = [item("music", 600.0) for _ in range(20)] + [item("laughter", 1.0)] * 2
    laughter = slice(20, 22)
    by_length = negative_weights(negatives)
    # lengths clip to 2-30 s: two 1-s laughs weigh 4 against 20 * 30
    assert by_length[laughter].sum() == pytest.approx(4 / 604)
    assert negative_weights(negatives, 1.0)[laughter].sum() == pytest.approx(0.5)
    half = negative_weights(negatives, 0.5)
    assert half.sum() == pytest.approx(1.0)
    assert half[laughter].sum() == pytest.approx(0.5 * 4 / 604 + 0.25)


def test_validation_windows_flag_positives_without_crying(tmp_path: Path) -> None:
    windows = validation_windows(make_cache(tmp_path, "valid"))
    flat = [not e for e, label in zip(windows.crying, windows.labels, strict=True) if label]
    assert sum(flat) == 2
    assert windows.crying[windows.labels == 0].all()
