"""Fixed validation windows and the randomly augmented training windows, as log-mel tensors."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset
from tqdm import tqdm

from cry_mqtt.features import LogMel
from training.augment import AugmentConfig, augment_window, band_limit, fit_window, spec_augment
from training.data import PARAMS, WINDOW_SAMPLES, Cache

MAX_SHIFT = PARAMS.sample_rate * 3 // 2


@dataclass
class Windows:
    """Log-mel windows ``(n, n_mels, frames)`` with a label, source and category for each."""

    mels: np.ndarray
    labels: np.ndarray
    sources: list[str]
    categories: list[str]


def recording_windows(samples: np.ndarray, hop: int = WINDOW_SAMPLES // 2) -> list[np.ndarray]:
    """Windows at a fixed hop over a recording; a recording of at most one window is centred."""
    if len(samples) <= WINDOW_SAMPLES:
        return [fit_window(samples)]
    return [
        samples[s : s + WINDOW_SAMPLES] for s in range(0, len(samples) - WINDOW_SAMPLES + 1, hop)
    ]


def validation_windows(
    cache: Cache, labels: tuple[int, ...] = (0, 1), band_limited: bool = False, phone: bool = False
) -> Windows:
    """Validation windows: each positive clip centred, negatives at a half-window hop.

    With ``band_limited`` every window is low-passed at 4 kHz first; with ``phone`` it is taken
    from the recording's phone-codec (8 kHz AMR-NB) version.
    """
    logmel = LogMel(PARAMS)
    mels, out_labels, sources, categories = [], [], [], []
    items = [i for i in cache.split("valid") if i.label in labels]
    for item in tqdm(items, desc="validation windows", unit="file", leave=False):
        samples = cache.samples(item, phone)
        chunks = [fit_window(samples)] if item.label else recording_windows(samples)
        for chunk in chunks:
            mels.append(logmel(band_limit(chunk) if band_limited else chunk))
            out_labels.append(item.label)
            sources.append(item.source)
            categories.append(item.category)
    return Windows(np.stack(mels), np.array(out_labels), sources, categories)


class ValidSet(Dataset):
    """Fixed windows as ``(log-mel, label)`` tensors."""

    def __init__(self, windows: Windows) -> None:
        self.mels = torch.from_numpy(windows.mels)
        self.labels = torch.from_numpy(windows.labels.astype(np.float32))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mels[index], self.labels[index]


class TrainSet(Dataset):
    """Class-balanced, freshly augmented training windows.

    An epoch holds each training positive once and as many negative windows, drawn from the
    negative recordings with weights proportional to their length (clipped to 2-30 s).
    """

    def __init__(self, cache: Cache, cfg: AugmentConfig | None = None) -> None:
        self.cache = cache
        self.cfg = cfg or AugmentConfig()
        self.positives = cache.split("train", 1)
        self.negatives = cache.split("train", 0)
        if not self.positives or not self.negatives:
            raise ValueError("training needs positives and negatives in the train split")
        seconds = np.array([i.length for i in self.negatives]) / PARAMS.sample_rate
        weights = np.clip(seconds, 2.0, 30.0)
        self.weights = weights / weights.sum()
        self.logmel = LogMel(PARAMS)
        self._limited_pid = 0

    def __len__(self) -> int:
        return 2 * len(self.positives)

    def negative_window(self, rng: np.random.Generator, phone: bool) -> np.ndarray:
        item = self.negatives[rng.choice(len(self.negatives), p=self.weights)]
        return fit_window(self.cache.samples(item, phone), rng)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._limited_pid != os.getpid():
            # NumPy's BLAS threads would compete with torch's for the cores: one per loader.
            threadpool_limits(1, user_api="blas")
            self._limited_pid = os.getpid()
        # Seeded from torch's generator, which fastai/torch seed per worker: reproducible runs.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        cfg = self.cfg
        label = int(index < len(self.positives))
        # Everything in a window went through the phone codec, or nothing but a phone positive.
        phone = rng.random() < cfg.p_phone
        if label:
            item = self.positives[index]
            foreground = fit_window(self.cache.samples(item, phone), rng, MAX_SHIFT)
            p_background = cfg.p_background_positive
        else:
            foreground = self.negative_window(rng, phone)
            p_background = cfg.p_background_negative
        use_background = rng.random() < p_background
        background = self.negative_window(rng, phone) if use_background else None
        samples = augment_window(foreground, background, label, rng, cfg)
        mel = spec_augment(self.logmel(samples), rng, cfg)
        return torch.from_numpy(mel), torch.tensor(float(label))
