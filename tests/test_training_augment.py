"""Augmentation building blocks."""

from __future__ import annotations

import numpy as np

from cry_mqtt.features import logmel
from training.data.audio import PARAMS, WINDOW_SAMPLES
from training.data.augment import (
    AugmentConfig,
    band_limit,
    change_speed,
    fit_window,
    mix_at_snr,
    onset_window,
    rms,
    spec_augment,
)


def test_band_limit_removes_energy_above_4k_only() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, WINDOW_SAMPLES).astype(np.float32)
    mel = logmel(band_limit(noise), PARAMS)
    full = logmel(noise, PARAMS)
    top = mel[-20:].mean() - full[-20:].mean()
    bottom = mel[10:60].mean() - full[10:60].mean()
    assert top < -40
    assert abs(bottom) < 1


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * PARAMS.sample_rate / len(samples))


def test_change_speed_moves_pitch_and_tempo_together() -> None:
    t = np.arange(PARAMS.sample_rate) / PARAMS.sample_rate
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    for factor in (0.7, 1.5):
        played = change_speed(tone, factor)
        assert len(played) == round(len(tone) / factor)
        assert abs(peak_hz(played) - 500 * factor) < 3


def test_fit_window_crops_pads_and_shifts() -> None:
    rng = np.random.default_rng(0)
    long = np.arange(3 * WINDOW_SAMPLES, dtype=np.float32)
    assert len(fit_window(long)) == WINDOW_SAMPLES
    crop = fit_window(long, rng)
    assert np.all(np.diff(crop) == 1)  # a contiguous crop, no padding
    short = np.ones(WINDOW_SAMPLES // 2, np.float32)
    centred = fit_window(short)
    assert centred.sum() == len(short)
    assert centred[: WINDOW_SAMPLES // 4 - 1].sum() == 0
    shifted = [fit_window(np.ones(WINDOW_SAMPLES, np.float32), rng, 16000).sum() for _ in range(20)]
    assert min(shifted) < WINDOW_SAMPLES and min(shifted) >= WINDOW_SAMPLES - 16000


def test_onset_window_ends_in_a_crop_after_silence() -> None:
    rng = np.random.default_rng(0)
    clip = np.arange(1, 2 * WINDOW_SAMPLES + 1, dtype=np.float32)
    lengths = []
    for _ in range(50):
        window = onset_window(clip, rng, 32000)
        filled = np.flatnonzero(window)
        assert filled[-1] == WINDOW_SAMPLES - 1  # crying reaches the newest sample
        assert np.all(np.diff(filled) == 1) and np.all(np.diff(window[filled]) == 1)
        lengths.append(len(filled))
    assert min(lengths) >= 32000 and max(lengths) > 0.8 * WINDOW_SAMPLES
    short = np.ones(8000, np.float32)
    assert onset_window(short, rng, 32000)[-8000:].sum() == 8000


def test_mix_at_snr() -> None:
    rng = np.random.default_rng(1)
    signal, noise = rng.normal(0, 0.2, 16000), rng.normal(0, 0.01, 16000)
    mixed = mix_at_snr(signal, noise, 6.0)
    assert abs(20 * np.log10(rms(signal) / rms(mixed - signal)) - 6.0) < 1e-6


def test_spec_augment_masks_with_mean() -> None:
    mel = np.random.default_rng(2).normal(-50, 10, (128, 215)).astype(np.float32)
    cfg = AugmentConfig(freq_masks=1, max_freq_mask=20, time_masks=1, max_time_mask=30)
    masked = spec_augment(mel, np.random.default_rng(3), cfg)
    assert masked.shape == mel.shape
    changed = masked != mel
    assert changed.any()
    assert np.allclose(masked[changed], mel.mean())
