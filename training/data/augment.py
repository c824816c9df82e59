"""Waveform and spectrogram augmentation.

Most positives are 8 kHz AMR-NB phone recordings. Negatives are passed through that codec (cached
at ``prepare``) exactly as often as positive windows come out of it, and both classes are
band-limited at one rate, so that neither "nothing above 4 kHz" nor the codec's sound carries
information about the label (see :class:`training.data.windows.TrainSet`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from training.data.audio import PARAMS, WINDOW_SAMPLES


def band_limit(samples: np.ndarray, cutoff_hz: float = 4000.0) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` the way an 8 kHz recording does (resample down/up)."""
    low = soxr.resample(samples, PARAMS.sample_rate, int(2 * cutoff_hz))
    return soxr.resample(low, int(2 * cutoff_hz), PARAMS.sample_rate)[: len(samples)]


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """``samples`` played ``factor`` times as fast: pitch and tempo move together (above 1 higher
    and shorter). Slowed audio keeps nothing above ``factor`` times its old band edge."""
    return soxr.resample(samples, round(PARAMS.sample_rate * factor), PARAMS.sample_rate).astype(
        np.float32
    )


def fit_window(
    samples: np.ndarray, rng: np.random.Generator | None = None, max_shift: int = 0
) -> np.ndarray:
    """Exactly one window of samples: a crop of longer audio, shorter audio placed in zeros.

    Without ``rng`` the crop or placement is centred; with it, it is uniformly random, and audio
    of about one window may move by up to ``max_shift`` samples (partly out of the window).
    """
    n, size = len(samples), WINDOW_SAMPLES
    max_shift = min(max_shift, n // 2)
    slack = size - n
    low, high = min(0, slack) - max_shift, max(0, slack) + max_shift
    start = (low + high) // 2 if rng is None else int(rng.integers(low, high + 1))
    out = np.zeros(size, np.float32)
    src_from, dst_from = max(0, -start), max(0, start)
    count = min(n - src_from, size - dst_from)
    out[dst_from : dst_from + count] = samples[src_from : src_from + count]
    return out


def onset_window(samples: np.ndarray, rng: np.random.Generator, min_samples: int) -> np.ndarray:
    """One window that ends in a random crop of ``samples``, ``min_samples`` up to a whole
    window long, after silence: what the agent's window holds seconds after crying starts."""
    length = min(len(samples), int(rng.integers(min_samples, WINDOW_SAMPLES + 1)))
    start = int(rng.integers(0, len(samples) - length + 1))
    out = np.zeros(WINDOW_SAMPLES, np.float32)
    out[WINDOW_SAMPLES - length :] = samples[start : start + length]
    return out


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``noise`` scaled to ``snr_db`` below it (by RMS)."""
    scale = rms(signal) / rms(noise) / 10 ** (snr_db / 20)
    return signal + scale * noise


def reverberate(samples: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``samples`` heard in a room: convolved with a synthetic impulse response (the direct
    sound, then exponentially decaying noise reaching -60 dB after ``rt60`` seconds), at the
    same RMS level."""
    n = int(rt60 * PARAMS.sample_rate)
    decay = np.exp(-6.9 * np.arange(n) / n)  # ln(1000): -60 dB at n
    response = rng.normal(0.0, 1.0, n) * decay * np.sqrt(7.0 / n)
    response[0] = 1.0
    wet = np.fft.irfft(
        np.fft.rfft(samples, 2 * len(samples)) * np.fft.rfft(response, 2 * len(samples))
    )[: len(samples)]
    return (wet * rms(samples) / max(rms(wet), 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the training augmentation."""

    max_shift_seconds: float = 1.5
    p_onset: float = 0.3
    """Share of positives that fill only the end of the window (crying that has just started)."""
    min_onset_seconds: float = 2.0
    p_background_positive: float = 0.8
    p_background_negative: float = 0.5
    p_phone: float = 0.2
    """Phone-codec probability of a full-band positive (negatives' rate is derived to match)."""
    snr_db: tuple[float, float] = (-5.0, 30.0)
    level_dbfs: tuple[float, float] = (-50.0, -12.0)
    p_band_limit: float = 0.2
    p_speed: float = 0.0
    """Probability that a negative plays at another speed (:func:`change_speed`, factor
    log-uniform in ``speed_range``): adults' voices raised toward a child's pitch, laughs and
    speech slowed toward moans and sobs, which the teachers then name. A positive drawn at a
    factor below 1 takes the slowed audio's band limit instead, so that an empty top band says
    nothing about the label."""
    speed_range: tuple[float, float] = (0.7, 1.5)
    p_reverb: float = 0.0
    """Probability of a synthetic room (a far-field microphone); RT60 in ``rt60_seconds``."""
    rt60_seconds: tuple[float, float] = (0.2, 0.8)
    p_noise_floor: float = 0.8
    noise_floor_dbfs: tuple[float, float] = (-90.0, -55.0)
    freq_masks: int = 2
    max_freq_mask: int = 16
    time_masks: int = 2
    max_time_mask: int = 24


def augment_window(
    foreground: np.ndarray,
    background: np.ndarray | None,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> np.ndarray:
    """One training window: optional room reverberation of the foreground, background mix,
    level, band-limit, microphone noise floor.

    ``foreground`` and ``background`` are already one window long.
    """
    x = foreground
    if rng.random() < cfg.p_reverb:
        x = reverberate(x, rng.uniform(*cfg.rt60_seconds), rng)
    if background is not None and rms(background) > 1e-5 and rms(x) > 1e-5:
        x = mix_at_snr(x, background, rng.uniform(*cfg.snr_db))
    if rms(x) > 1e-5:
        x = x * (10 ** (rng.uniform(*cfg.level_dbfs) / 20) / rms(x))
    if rng.random() < cfg.p_band_limit:
        x = band_limit(x)
    if rng.random() < cfg.p_noise_floor:
        level = 10 ** (rng.uniform(*cfg.noise_floor_dbfs) / 20)
        x = x + rng.normal(0.0, level, len(x))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def spec_augment(mel: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """SpecAugment-style frequency and time masks, filled with the window's mean level."""
    mel = mel.copy()
    fill = float(mel.mean())
    n_mels, frames = mel.shape
    for _ in range(cfg.freq_masks):
        width = int(rng.integers(0, cfg.max_freq_mask + 1))
        start = int(rng.integers(0, n_mels - width + 1))
        mel[start : start + width] = fill
    for _ in range(cfg.time_masks):
        width = int(rng.integers(0, cfg.max_time_mask + 1))
        start = int(rng.integers(0, frames - width + 1))
        mel[:, start : start + width] = fill
    return mel
