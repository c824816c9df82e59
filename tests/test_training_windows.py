"""Training windows: which positives are used, source balance and the codec rate of negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from training_fixtures import write_tone

from training.augment import AugmentConfig
from training.data import (
    NO_CRYING,
    PARAMS,
    WINDOW_SAMPLES,
    Cache,
    build_cache,
    folder_items,
    holds_events,
)
from training.windows import TrainSet, validation_windows

RATE = PARAMS.sample_rate


def hiss(dbfs: float, samples: int = WINDOW_SAMPLES) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 10 ** (dbfs / 20), samples).astype(np.float32)


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


def make_cache(root: Path, split: str) -> Cache:
    """A phone positive, three full-band ones (one of them audited as holding no crying), a
    flat one and two negatives, all in ``split``."""
    for i in range(4):
        write_tone(root / "pos" / f"{i}.wav", 3.0, hz=400 + 50 * i)
    sf.write(root / "pos" / "flat.wav", hiss(-45), RATE)
    for i in range(2):
        write_tone(root / "neg" / f"{i}.wav", 9.0, hz=1000 + 300 * i)
    items = folder_items(root / "pos", 1) + folder_items(root / "neg", 0)
    items[0].source = "android-8k"
    items[1].category = NO_CRYING
    for item in items:
        item.split = split
    build_cache(items, root / "cache")
    return Cache(root / "cache")


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
