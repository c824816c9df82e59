"""Helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from training.data.audio import PARAMS, WINDOW_SAMPLES
from training.data.cache import Cache, build_cache
from training.data.items import NO_CRYING, folder_items

RATE = PARAMS.sample_rate


def write_tone(path: Path, seconds: float, rate: int = 44100, hz: float = 440.0) -> Path:
    """A short synthetic wav file."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path


def hiss(dbfs: float, samples: int = WINDOW_SAMPLES) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 10 ** (dbfs / 20), samples).astype(np.float32)


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
