"""Fixed validation windows and the randomly augmented training windows, as log-mel tensors."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset
from tqdm import tqdm

from cry_mqtt.audio import resample
from cry_mqtt.features import FeatureParams, LogMel
from training.data.audio import PARAMS, WINDOW_SAMPLES
from training.data.augment import (
    AugmentConfig,
    augment_window,
    band_limit,
    change_speed,
    fit_window,
    onset_window,
    spec_augment,
)
from training.data.cache import Cache
from training.data.items import Item, holds_crying, is_phone_recording


@dataclass
class Windows:
    """Log-mel windows ``(n, n_mels, frames)`` with the label, source, category and path of the
    recording each comes from; ``crying`` is False for windows of a positive clip that holds no
    crying (:func:`holds_crying`)."""

    mels: np.ndarray
    labels: np.ndarray
    sources: list[str]
    categories: list[str]
    crying: np.ndarray
    paths: list[str]


class FrontEnd:
    """A model's log-mel of training audio (16 kHz), resampled first to the model's rate as the
    agent resamples a 16 kHz source."""

    def __init__(self, params: FeatureParams) -> None:
        self._logmel = LogMel(params)
        self._rate = params.sample_rate

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return self._logmel(resample(samples, PARAMS.sample_rate, self._rate))


def recording_windows(samples: np.ndarray, hop: int = WINDOW_SAMPLES // 2) -> list[np.ndarray]:
    """Windows at a fixed hop over a recording; a recording of at most one window is centred."""
    if len(samples) <= WINDOW_SAMPLES:
        return [fit_window(samples)]
    return [
        samples[s : s + WINDOW_SAMPLES] for s in range(0, len(samples) - WINDOW_SAMPLES + 1, hop)
    ]


def validation_windows(
    cache: Cache,
    labels: tuple[int, ...] = (0, 1),
    band_limited: bool = False,
    phone: bool = False,
    params: FeatureParams = PARAMS,
) -> Windows:
    """Validation windows: each positive clip centred, negatives at a half-window hop.

    With ``band_limited`` every window is low-passed at 4 kHz first; with ``phone`` it is taken
    from the recording's phone-codec (8 kHz AMR-NB) version. ``params`` is the model's front end.
    """
    logmel = FrontEnd(params)
    mels, out_labels, sources, categories, crying, paths = [], [], [], [], [], []
    items = [i for i in cache.split("valid") if i.label in labels]
    for item in tqdm(items, desc="validation windows", unit="file", leave=False):
        samples = cache.samples(item, phone)
        chunks = [fit_window(samples)] if item.label else recording_windows(samples)
        has_crying = not item.label or holds_crying(item, cache.samples(item))
        for chunk in chunks:
            mels.append(logmel(band_limit(chunk) if band_limited else chunk))
            out_labels.append(item.label)
            sources.append(item.source)
            categories.append(item.category)
            crying.append(has_crying)
            paths.append(item.path)
    return Windows(
        np.stack(mels), np.array(out_labels), sources, categories, np.array(crying), paths
    )


class ValidSet(Dataset):
    """Fixed windows as ``(log-mel, label)`` tensors."""

    def __init__(self, windows: Windows) -> None:
        self.mels = torch.from_numpy(windows.mels)
        self.labels = torch.from_numpy(windows.labels.astype(np.float32))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mels[index], self.labels[index]


def negative_weights(negatives: list[Item], category_balance: float = 0.0) -> np.ndarray:
    """Draw probabilities of ``negatives``: by length (clipped to 2-30 s), mixed with a share
    ``category_balance`` of draws that give each category the same weight (by length within
    it)."""
    seconds = np.array([i.length for i in negatives]) / PARAMS.sample_rate
    by_length = np.clip(seconds, 2.0, 30.0)
    categories = [i.category for i in negatives]
    per_category: Counter[str] = Counter()
    for category, weight in zip(categories, by_length, strict=True):
        per_category[category] += weight
    by_category = by_length / np.array([per_category[c] for c in categories])
    return (1 - category_balance) * by_length / by_length.sum() + category_balance * (
        by_category / len(per_category)
    )


class TrainSet(Dataset):
    """Class-balanced, freshly augmented training windows.

    An epoch holds as many positive windows as there are training positives, drawn with equal
    weight per source (8 kHz Android, 16 kHz iOS, ...), and as many negative windows, drawn from
    the negative recordings with weights proportional to their length (clipped to 2-30 s). With
    ``category_balance`` that share of the negative draws gives every category (laughter,
    music, dialogue, ...) equal weight instead, so that a few short laughs are heard as often
    as hours of music.
    Positives that hold no crying (:func:`holds_crying`) are left out; a share
    ``p_onset`` of the others fill only the end of the window (:func:`onset_window`), as crying
    does in the agent's window seconds after it starts.

    Phone recordings always come with their background through the phone codec too; other
    positives take it with probability ``p_phone``, and negatives at the rate that makes
    P(phone codec | crying) = P(phone codec | not crying), so that neither the codec nor the
    missing band above 4 kHz says anything about the label. With ``p_speed`` a negative may play
    faster or slower (:attr:`AugmentConfig.p_speed`).
    """

    def __init__(
        self,
        cache: Cache,
        cfg: AugmentConfig | None = None,
        params: FeatureParams = PARAMS,
        category_balance: float = 0.0,
    ) -> None:
        self.cache = cache
        self.cfg = cfg or AugmentConfig()
        self.max_shift = round(self.cfg.max_shift_seconds * PARAMS.sample_rate)
        self.min_onset = round(self.cfg.min_onset_seconds * PARAMS.sample_rate)
        positives = cache.split("train", 1)
        self.positives = [i for i in positives if holds_crying(i, cache.samples(i))]
        self.left_out = len(positives) - len(self.positives)
        self.negatives = cache.split("train", 0)
        if not self.positives or not self.negatives:
            raise ValueError("training needs positives and negatives in the train split")
        per_source = Counter(i.source for i in self.positives)
        weights = np.array([1.0 / per_source[i.source] for i in self.positives])
        self.positive_weights = weights / weights.sum()
        phone_share = sum(
            w
            for i, w in zip(self.positives, self.positive_weights, strict=True)
            if is_phone_recording(i)
        )
        self.p_phone_negative = phone_share + (1 - phone_share) * self.cfg.p_phone
        self.negative_weights = negative_weights(self.negatives, category_balance)
        self.logmel = FrontEnd(params)
        self._limited_pid = 0

    def __len__(self) -> int:
        return 2 * len(self.positives)

    def negative_window(
        self, rng: np.random.Generator, phone: bool, speed: float = 1.0
    ) -> np.ndarray:
        item = self.negatives[rng.choice(len(self.negatives), p=self.negative_weights)]
        samples = self.cache.samples(item, phone)
        if speed != 1.0:
            needed = int(np.ceil(WINDOW_SAMPLES * speed))
            start = int(rng.integers(0, max(1, len(samples) - needed + 1)))
            samples = change_speed(samples[start : start + needed], speed)
        return fit_window(samples, rng)

    def speed(self, rng: np.random.Generator) -> float:
        """The playing speed of one item: 1, or with probability ``p_speed`` a factor drawn
        log-uniformly from ``speed_range`` (no draw at 0, so recipes without it keep their
        random stream)."""
        if self.cfg.p_speed == 0 or rng.random() >= self.cfg.p_speed:
            return 1.0
        return float(np.exp(rng.uniform(*np.log(self.cfg.speed_range))))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng()
        samples, label = self.window(index, rng)
        mel = spec_augment(self.logmel(samples), rng, self.cfg)
        return torch.from_numpy(mel), torch.tensor(float(label))

    def rng(self) -> np.random.Generator:
        """A generator for one item, seeded from torch's, which fastai/torch seed per worker
        (reproducible runs)."""
        if self._limited_pid != os.getpid():
            # NumPy's BLAS threads would compete with torch's for the cores: one per loader.
            threadpool_limits(1, user_api="blas")
            self._limited_pid = os.getpid()
        return np.random.default_rng(int(torch.randint(0, 2**62, ())))

    def window(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """The augmented samples of item ``index`` (the first half positive) and its label."""
        cfg = self.cfg
        label = int(index < len(self.positives))
        speed = self.speed(rng)
        if label:
            item = self.positives[rng.choice(len(self.positives), p=self.positive_weights)]
            phone = is_phone_recording(item) or rng.random() < cfg.p_phone
            samples = self.cache.samples(item, phone)
            if rng.random() < cfg.p_onset:
                foreground = onset_window(samples, rng, self.min_onset)
            else:
                foreground = fit_window(samples, rng, self.max_shift)
            if speed < 1.0:
                band_edge = PARAMS.sample_rate / (4 if phone else 2)
                foreground = band_limit(foreground, band_edge * speed)
            p_background = cfg.p_background_positive
        else:
            phone = rng.random() < self.p_phone_negative
            foreground = self.negative_window(rng, phone, speed)
            p_background = cfg.p_background_negative
        use_background = rng.random() < p_background
        background = self.negative_window(rng, phone) if use_background else None
        return augment_window(foreground, background, rng, cfg), label
