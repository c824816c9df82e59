"""The processing path shared by the agent and ``cry-mqtt score``.

Audio in, streaming log-mel, a loudness gate, the model every hop over the latest window, and
the detector. It knows nothing of sources or MQTT.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import Detector, DetectorSettings, Episode
from cry_mqtt.features import StreamingLogMel, dbfs, logmel
from cry_mqtt.model import CryModel


@dataclass(frozen=True)
class WindowResult:
    """One scored window: ``t`` is its end in seconds since the stream started."""

    t: float
    prob: float
    dbfs: float
    gated: bool
    on: bool
    changed: Episode | None
    """The episode that started or ended with this window, if any."""


def detector_settings(detection: DetectionConfig, threshold: float) -> DetectorSettings:
    """Detector settings from the ``detection`` config section and the effective threshold."""
    return DetectorSettings(
        threshold=threshold,
        trigger=detection.trigger_windows,
        window=detection.of_windows,
        hold_seconds=detection.hold_seconds,
        cooldown_seconds=detection.cooldown_seconds,
    )


class Pipeline:
    """Scores the latest window every hop and runs the detector on the result."""

    def __init__(
        self, model: CryModel, detection: DetectionConfig, threshold: float | None = None
    ) -> None:
        """``threshold`` defaults to the configured one, else the model's own."""
        threshold = threshold or detection.threshold or model.info.threshold
        self._model = model
        self._params = p = model.info.features
        self._frames = model.info.window_frames
        self._window_samples = p.samples_for(self._frames)
        self.hop_frames = max(1, round(detection.hop_seconds * p.sample_rate / p.hop_length))
        self.gate_dbfs = detection.gate_dbfs
        self.detector = Detector(detector_settings(detection, threshold))
        self.paused = False
        self._features = StreamingLogMel(p)
        # Log-mel columns in a ring (oldest at _next) and the newest samples, enough to cover
        # the window plus one chunk of input, for the gate's level.
        self._ring = np.zeros((p.n_mels, self._frames), dtype=np.float32)
        self._next = 0
        self._samples = np.zeros(self._window_samples + p.n_fft, dtype=np.float32)
        self._total_samples = 0
        self._origin = 0  # sample where the frame grid starts (moves on restart)
        self._filled = 0
        self._since_score = 0
        self.repaired_samples = 0
        """Count of non-finite or out-of-range input samples, replaced before processing."""

    @property
    def hop_seconds(self) -> float:
        """The effective hop: the configured one rounded to whole feature frames."""
        return self.hop_frames * self._params.hop_length / self._params.sample_rate

    @property
    def now(self) -> float:
        """Seconds of audio received so far."""
        return self._total_samples / self._params.sample_rate

    def push(self, samples: np.ndarray) -> list[WindowResult]:
        """Feed mono float32 samples at the model's rate; returns the windows they complete."""
        samples = self._repair(np.asarray(samples, dtype=np.float32))
        chunk = self._params.n_fft
        results = []
        for start in range(0, len(samples), chunk):
            results.extend(self._push_chunk(samples[start : start + chunk]))
        return results

    def run(self, blocks: Iterable[np.ndarray]) -> Iterator[WindowResult]:
        """Every window of a finite stream: :meth:`push` each block, then :meth:`finish`."""
        for block in blocks:
            yield from self.push(block)
        yield from self.finish()

    def restart(self) -> Episode | None:
        """After a gap in the audio: the next window is scored once it is whole again.

        Ends an episode under way and returns it.
        """
        self._features.reset()
        self._origin = self._total_samples
        self._filled = 0
        self._since_score = 0
        return self.detector.reset(self.now)

    def finish(self) -> list[WindowResult]:
        """End of input: a stream shorter than one window is scored once, padded with silence."""
        if self._filled >= self._frames or self._origin > 0 or self._total_samples == 0:
            return []
        real = self._samples[-self._total_samples :]
        padded = np.zeros(self._window_samples, dtype=np.float32)
        padded[: len(real)] = real
        return [self._score(self._window_samples, logmel(padded, self._params), dbfs(real))]

    def _push_chunk(self, samples: np.ndarray) -> list[WindowResult]:
        n = len(samples)
        self._samples[:-n] = self._samples[n:]
        self._samples[-n:] = samples
        self._total_samples += n
        results = []
        columns = self._features.push(samples)
        for column in columns.T:
            self._ring[:, self._next] = column
            self._next = (self._next + 1) % self._frames
            self._filled += 1
            self._since_score += 1
            if self._filled >= self._frames and self._since_score >= self.hop_frames:
                self._since_score = 0
                p = self._params
                end = self._origin + (self._filled - 1) * p.hop_length + p.n_fft
                window = np.concatenate(
                    [self._ring[:, self._next :], self._ring[:, : self._next]], 1
                )
                results.append(self._score(end, window, self._level(end)))
        return results

    def _repair(self, samples: np.ndarray) -> np.ndarray:
        """Replace NaN and infinities, clip to full scale (a broken device must not break us)."""
        bad = np.count_nonzero(~np.isfinite(samples) | (np.abs(samples) > 1.0))
        if bad:
            self.repaired_samples += bad
            samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        return samples

    def _level(self, end: int) -> float:
        """dBFS of the window that ends at sample ``end`` of the stream."""
        stop = len(self._samples) - (self._total_samples - end)
        return dbfs(self._samples[stop - self._window_samples : stop])

    def _score(self, end: int, window: np.ndarray, level: float) -> WindowResult:
        t = end / self._params.sample_rate
        gated = self.paused or level < self.gate_dbfs
        prob = 0.0 if gated else float(self._model.predict(window[None])[0])
        changed = self.detector.reset(t) if self.paused else self.detector.update(t, prob)
        return WindowResult(t, prob, level, gated, self.detector.on, changed)


def episodes(results: Iterable[WindowResult], end: float) -> list[tuple[float, float]]:
    """(ON time, OFF time) of every episode in ``results``; one still open ends at ``end``."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for result in results:
        if result.changed is None:
            continue
        if result.changed.end is None:
            start = result.t
        elif start is not None:
            spans.append((start, result.t))
            start = None
    if start is not None:
        spans.append((start, end))
    return spans
