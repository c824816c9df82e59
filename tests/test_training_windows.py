"""Training windows: which positives are used, source balance and the codec rate of negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_fixtures import RATE, hiss, make_cache

from training.augment import AugmentConfig
from training.data import PARAMS, holds_events
from training.windows import TrainSet, validation_windows


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


def test_validation_windows_flag_positives_without_crying(tmp_path: Path) -> None:
    windows = validation_windows(make_cache(tmp_path, "valid"))
    flat = [not e for e, label in zip(windows.crying, windows.labels, strict=True) if label]
    assert sum(flat) == 2
    assert windows.crying[windows.labels == 0].all()
