"""The validation side of training's split, scored: its windows, and its negatives band-limited
and phone-coded, through any predict function (PyTorch in ``export`` and ``crossval``, the ONNX
file in ``evaluate``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cry_mqtt.features import FeatureParams
from training.data.audio import PARAMS
from training.data.cache import Cache
from training.data.windows import Windows, validation_windows

Predict = Callable[[np.ndarray], np.ndarray]
"""P(cry) of log-mel windows ``(n, n_mels, frames)``."""


@dataclass
class Scored:
    """Scores of the validation windows, and of the validation negatives low-passed at 4 kHz and
    passed through the phone codec."""

    windows: Windows
    scores: np.ndarray
    band_limited: Windows
    band_limited_scores: np.ndarray
    phone_scores: np.ndarray


def score_validation(cache: Cache, predict: Predict, params: FeatureParams = PARAMS) -> Scored:
    """Score the validation split, and its negatives band-limited to 4 kHz and phone-coded;
    ``params`` is the model's front end."""
    windows = validation_windows(cache, params=params)
    band_limited = validation_windows(cache, labels=(0,), band_limited=True, params=params)
    phone = validation_windows(cache, labels=(0,), phone=True, params=params)
    return Scored(
        windows,
        predict(windows.mels),
        band_limited,
        predict(band_limited.mels),
        predict(phone.mels),
    )
