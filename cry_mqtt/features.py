"""Log-mel features shared by training and the agent.

Three front ends, each described by :class:`FeatureParams` and so by a model file's metadata:

- librosa's default (the CNN's): power spectrum, Slaney mel filters, decibels;
- YAMNet's (tensorflow/models ``research/audioset/yamnet``, :data:`YAMNET`): a 25-ms window
  zero-padded to a 512-point FFT, magnitude spectrum, HTK mel filters as
  ``tf.signal.linear_to_mel_weight_matrix`` builds them, ``log(mel + 0.001)``;
- EfficientAT's (fschmid56/EfficientAT ``models/preprocess.py``, :data:`EFFICIENTAT`): 32 kHz,
  pre-emphasis, a symmetric 800-sample Hann window in a 1024-point FFT, power spectrum, Kaldi's
  mel filters (the HTK formula; the Nyquist bin, beyond ``fmax``, weighs nothing) and
  ``log(mel + 1e-5)``. Its ``(x + 4.5) / 5`` normalisation belongs to the network.

Frames are not centred (no edge padding) and the logarithm uses a fixed reference with no
``top_db`` clipping, so every frame depends only on its own samples (and, with pre-emphasis, the
one before them). That is what lets :class:`StreamingLogMel` compute only the frames that are new
since the previous hop and still equal :func:`logmel` over the whole window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

AMIN = 1e-10
"""Power floor before the logarithm (as librosa's ``power_to_db``)."""

SILENCE_DBFS = -100.0
"""Level reported for digital silence."""


_REQUIRED = ("sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax")
"""Keys every model file names; the later ones default to librosa's front end."""


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the log-mel front end; a model file carries the values it was trained with.

    The defaults are librosa's front end as the CNN uses it; :data:`YAMNET` is YAMNet's.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    win_length: int | None = None
    """Samples per frame, Hann-windowed and zero-padded to ``n_fft``; None means ``n_fft``."""
    mel_scale: Literal["slaney", "htk"] = "slaney"
    """``slaney``: librosa's area-normalised filters; ``htk``: TensorFlow's unnormalised ones."""
    power: float = 2.0
    """Exponent of the spectrum's magnitude: 2 for power, 1 for magnitude."""
    log_offset: float | None = None
    """None: decibels of the mel energies; a number: their natural log after adding it."""
    preemphasis: float = 0.0
    """``y[n] = x[n + 1] - preemphasis * x[n]`` before framing (0: none); a frame then also
    needs the sample after it."""
    window: Literal["periodic", "symmetric"] = "periodic"
    """Hann window shape: ``periodic`` (TensorFlow's, librosa's) or ``symmetric`` (torch's
    ``periodic=False``)."""

    def __post_init__(self) -> None:
        if not 0 < self.frame_length <= self.n_fft:
            raise ValueError("win_length must be in (0, n_fft]")
        if not 0 < self.hop_length <= self.frame_length:
            raise ValueError("hop_length must be in (0, win_length]")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError("need 0 <= fmin < fmax <= sample_rate / 2")
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', not {self.mel_scale!r}")
        if self.power not in (1.0, 2.0):
            raise ValueError("power must be 1 (magnitude) or 2 (power)")
        if self.log_offset is not None and not self.log_offset > 0:
            raise ValueError("log_offset must be positive")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError("preemphasis must be in [0, 1)")
        if self.window not in ("periodic", "symmetric"):
            raise ValueError(f"window must be 'periodic' or 'symmetric', not {self.window!r}")

    @property
    def frame_length(self) -> int:
        """Samples in one frame."""
        return self.win_length or self.n_fft

    @property
    def lookahead(self) -> int:
        """Samples a frame needs beyond its own: one after it with pre-emphasis."""
        return 1 if self.preemphasis else 0

    def frames_in(self, n_samples: int) -> int:
        """Number of whole frames in ``n_samples`` samples."""
        n = self.frame_length + self.lookahead
        return 0 if n_samples < n else 1 + (n_samples - n) // self.hop_length

    def samples_for(self, n_frames: int) -> int:
        """Number of samples that ``n_frames`` consecutive frames span."""
        return self.frame_length + self.lookahead + (n_frames - 1) * self.hop_length

    def hops_in(self, seconds: float) -> int:
        """Frame hops nearest to ``seconds``, at least one (a scoring hop in whole frames)."""
        return max(1, round(seconds * self.sample_rate / self.hop_length))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureParams:
        """Build from a mapping, rejecting unknown keys and missing required ones."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        missing = set(_REQUIRED) - set(data)
        if unknown or missing:
            raise ValueError(
                f"feature parameters: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        return cls(**data)


YAMNET = FeatureParams(
    n_fft=512,
    win_length=400,
    hop_length=160,
    n_mels=64,
    fmin=125.0,
    fmax=7500.0,
    mel_scale="htk",
    power=1.0,
    log_offset=0.001,
)
"""YAMNet's published front end (``yamnet/params.py``): 25-ms window, 10-ms hop."""

EFFICIENTAT = FeatureParams(
    sample_rate=32000,
    n_fft=1024,
    win_length=800,
    hop_length=320,
    n_mels=128,
    fmin=0.0,
    fmax=15000.0,
    mel_scale="htk",
    power=2.0,
    log_offset=1e-5,
    preemphasis=0.97,
    window="symmetric",
)
"""EfficientAT's front end (its ``AugmentMelSTFT`` in evaluation mode): 25-ms window, 10-ms hop
at 32 kHz, 128 bands up to 15 kHz."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    mel[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_region = mel >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_region] - 15.0))
    return hz


def _hz_to_mel_htk(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def _htk_filterbank(params: FeatureParams) -> np.ndarray:
    """Triangles in HTK mel, peak 1, DC bin zero: ``tf.signal.linear_to_mel_weight_matrix``."""
    fft_mel = _hz_to_mel_htk(np.linspace(0.0, params.sample_rate / 2, params.n_fft // 2 + 1))
    edges = np.linspace(_hz_to_mel_htk(params.fmin), _hz_to_mel_htk(params.fmax), params.n_mels + 2)
    lower = (fft_mel[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - fft_mel[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[:, 0] = 0.0
    return weights.astype(np.float32)


def mel_filterbank(params: FeatureParams) -> np.ndarray:
    """Triangular mel filters of ``params.mel_scale``, shape ``(n_mels, n_fft // 2 + 1)``."""
    if params.mel_scale == "htk":
        return _htk_filterbank(params)
    fft_hz = np.linspace(0.0, params.sample_rate / 2, params.n_fft // 2 + 1)
    mel_edges = np.linspace(
        _hz_to_mel(np.array([params.fmin]))[0],
        _hz_to_mel(np.array([params.fmax]))[0],
        params.n_mels + 2,
    )
    hz_edges = _mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.astype(np.float32)


FRAMES_PER_BATCH = 128
"""Frames transformed at once. The agent's first window (7 s, 700 frames at 32 kHz) in one batch
held about 15 MB of spectra in float64 at its peak; in batches of this size it holds 3 MB."""


class LogMel:
    """Turns frames of samples into log-mel columns; holds the window and filterbank."""

    def __init__(self, params: FeatureParams) -> None:
        self.params = params
        n = np.arange(params.frame_length)
        period = len(n) if params.window == "periodic" else len(n) - 1
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * n / period)).astype(np.float32)
        self._mel = mel_filterbank(params)

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Log-mel of ``frames`` (shape ``(k, frame_length)``), shape ``(n_mels, k)``."""
        p = self.params
        spectrum = np.fft.rfft(frames * self._window, n=p.n_fft, axis=1)
        energy = np.square(spectrum.real)
        energy += np.square(spectrum.imag)
        if p.power == 1.0:
            np.sqrt(energy, out=energy)
        mel = self._mel @ energy.T
        if p.log_offset is None:
            mel = 10.0 * np.log10(np.maximum(mel, AMIN))
        else:
            mel = np.log(mel + p.log_offset)
        return mel.astype(np.float32, copy=False)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel of a whole signal, shape ``(n_mels, frames_in(len(samples)))``."""
        samples = np.asarray(samples, dtype=np.float32)
        p = self.params
        count = p.frames_in(len(samples))
        if count == 0:
            return np.zeros((p.n_mels, 0), dtype=np.float32)
        if p.preemphasis:
            samples = samples[1:] - np.float32(p.preemphasis) * samples[:-1]
        frames = np.lib.stride_tricks.sliding_window_view(samples, p.frame_length)[:: p.hop_length]
        batch = FRAMES_PER_BATCH
        if count <= batch:
            return self.frames(frames[:count])
        return np.concatenate(
            [self.frames(frames[i : min(i + batch, count)]) for i in range(0, count, batch)], axis=1
        )


def logmel(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Log-mel spectrogram of mono float samples at ``params.sample_rate``."""
    return LogMel(params)(samples)


class StreamingLogMel:
    """Log-mel for an endless stream: each call computes only the frames completed by new audio.

    Concatenating the outputs of :meth:`push` equals :func:`logmel` of the concatenated input.
    """

    def __init__(self, params: FeatureParams) -> None:
        self._logmel = LogMel(params)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed samples; return the log-mel columns of the frames they complete."""
        p = self._logmel.params
        buffer = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        columns = self._logmel(buffer)
        consumed = columns.shape[1] * p.hop_length
        self._pending = buffer[consumed:]
        return columns

    def reset(self) -> None:
        """Forget buffered audio, e.g. after a gap in the source."""
        self._pending = np.zeros(0, dtype=np.float32)


def dbfs(samples: np.ndarray) -> float:
    """RMS level of float32 samples in dB relative to full scale (1.0)."""
    if len(samples) == 0:
        return SILENCE_DBFS
    mean_square = float(np.dot(samples, samples)) / len(samples)
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS
