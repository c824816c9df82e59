"""The processing path shared by the agent and ``cry-mqtt score``.

Audio in, streaming log-mel, a loudness gate, the model every hop over the latest window, and
the detector. It knows nothing of sources or MQTT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import Detector, DetectorSettings, Episode, Preset, Votes
from cry_mqtt.features import StreamingLogMel, dbfs, logmel
from cry_mqtt.memory import Learned
from cry_mqtt.model import CryModel, ModelInfo

NO_COLUMNS = np.zeros((0, 0), np.float32)
CODEC_OVERSHOOT = 1.5
"""Decoded samples up to this far beyond full scale are a lossy codec's, clipped without a word."""


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
    columns: np.ndarray = field(default_factory=lambda: NO_COLUMNS)
    """The log-mel frames new since the previous window (the model's front end), for the
    episode's picture."""
    embedding: np.ndarray | None = None
    """What the model heard in the window (None: gated, or the model file outputs none)."""
    vetoed: bool = False
    """The window reached the threshold but sounded like a remembered false alarm."""


def scoring_hop(detection: DetectionConfig, model: ModelInfo) -> float:
    """Seconds between scores: the configured hop, else the one the model's votes were chosen
    at."""
    return model.votes.hop_seconds if detection.hop_seconds is None else detection.hop_seconds


def detector_settings(detection: DetectionConfig, model: ModelInfo) -> DetectorSettings:
    """Detector settings from the ``detection`` config section; its threshold and votes, else
    the model's."""
    if _model_votes_in_use(detection):
        votes = model.votes
    else:
        votes = Votes(
            detection.trigger_windows, detection.of_windows, scoring_hop(detection, model)
        )
    return DetectorSettings(
        threshold=detection.threshold or model.threshold,
        trigger_windows=votes.trigger_windows,
        of_windows=votes.of_windows,
        hold_seconds=detection.hold_seconds,
        cooldown_seconds=detection.cooldown_seconds,
    )


def _model_votes_in_use(detection: DetectionConfig) -> bool:
    """Whether the config leaves the votes to the model file (it sets both keys or neither)."""
    return detection.trigger_windows is None or detection.of_windows is None


def votes_hop_warning(detection: DetectionConfig, model: ModelInfo) -> str | None:
    """Why the model's votes may not mean what they were chosen to mean: they are in use (the
    config sets none) at a hop other than the one they were chosen at; else None."""
    votes, hop = model.votes, scoring_hop(detection, model)
    if not _model_votes_in_use(detection) or abs(hop - votes.hop_seconds) < 1e-6:
        return None
    return (
        f"the model's detector rule ({votes.trigger_windows} of {votes.of_windows} windows) was "
        f"chosen at a {votes.hop_seconds:g}-s hop; at detection.hop_seconds {hop:g} it spans "
        f"{votes.of_windows * hop:g} s instead of {votes.of_windows * votes.hop_seconds:g} s: "
        "set detection.trigger_windows and of_windows for this hop"
    )


class Pipeline:
    """Scores the latest window every hop and runs the detector on the result."""

    def __init__(
        self,
        model: CryModel,
        detection: DetectionConfig,
        threshold: float | None = None,
        learned: Callable[[Callable[[], DetectorSettings]], Learned] | None = None,
        preset: Preset | None = None,
    ) -> None:
        """A ``preset`` (chosen in Home Assistant) wins over the configured threshold and rule
        and the model's own, and ``threshold`` (a saved setting) over them all; ``learned``
        makes what stands between the scores and the detector (a parent's false alarms), given
        the detector's settings."""
        self._params = p = model.info.features
        self._frames = model.info.window_frames
        self._window_samples = p.samples_for(self._frames)
        self.hop_frames = p.hops_in(scoring_hop(detection, model.info))
        self.gate_dbfs = detection.gate_dbfs
        settings = detector_settings(detection, model.info)
        self.detector = Detector(settings if preset is None else preset.applied(settings))
        if threshold is not None:
            self.detector.set_threshold(threshold)
        self.learned = None if learned is None else learned(lambda: self.detector.settings)
        self.paused = False
        self._features = StreamingLogMel(p)
        # Input waits in _waiting until the next score is due; then exactly the samples up to
        # that point go through the features in one batch (one FFT call per hop, not per block).
        self._waiting: list[np.ndarray] = []
        self._waiting_len = 0
        self._scorer = model.scorer()
        # The window's samples, for the gate.
        self._samples = np.zeros(self._window_samples, dtype=np.float32)
        self._done_samples = 0  # samples that went through the features
        self._origin = 0  # sample where the frame grid starts (moves on restart)
        self._filled = 0  # frames since the origin
        self._score_at = self._frames  # frame count since the origin of the next score
        self.repaired_samples = 0
        """Count of non-finite or out-of-range input samples, replaced before processing."""

    @property
    def hop_seconds(self) -> float:
        """The effective hop: the configured one rounded to whole feature frames."""
        return self.hop_frames * self._params.hop_length / self._params.sample_rate

    def seconds_for_windows(self, n: int) -> float:
        """Seconds of audio from the start of a stream to the end of its ``n``-th window."""
        samples = self._window_samples + (n - 1) * self.hop_frames * self._params.hop_length
        return round(samples / self._params.sample_rate, 2)

    def too_short(self, windows: int) -> str | None:
        """Why a whole stream of ``windows`` scored windows could not turn crying on, if so."""
        s = self.detector.settings
        if windows >= s.trigger_windows:
            return None
        return (
            f"too short to detect: {windows} window(s), and the detector needs "
            f"{s.trigger_windows} of {s.of_windows} at the threshold "
            f"(at least {self.seconds_for_windows(s.trigger_windows):.1f} s of audio)"
        )

    @property
    def now(self) -> float:
        """Seconds of audio received so far."""
        return (self._done_samples + self._waiting_len) / self._params.sample_rate

    def push(self, samples: np.ndarray) -> list[WindowResult]:
        """Feed mono float32 samples at the model's rate; returns the windows they complete."""
        samples = self._repair(np.asarray(samples, dtype=np.float32))
        self._waiting.append(samples)
        self._waiting_len += len(samples)
        results = []
        while self._waiting_len >= (due := self._score_sample() - self._done_samples):
            results.append(self._advance(self._take(due)))
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
        self._done_samples += self._waiting_len
        self._waiting, self._waiting_len = [], 0
        self._features.reset()
        self._scorer.reset()
        self._origin = self._done_samples
        self._filled = 0
        self._score_at = self._frames
        return self._reset_detector(self.now)

    def _reset_detector(self, t: float) -> Episode | None:
        if self.learned is not None:
            self.learned.reset(t)
        return self.detector.reset(t)

    def finish(self) -> list[WindowResult]:
        """End of input: a stream shorter than one window is scored once, padded with silence."""
        if self._filled >= self._frames or self._origin > 0 or self.now == 0:
            return []
        done = self._samples[len(self._samples) - self._done_samples :]
        real = np.concatenate([done, *self._waiting])
        padded = np.zeros(self._window_samples, dtype=np.float32)
        padded[: len(real)] = real
        self._scorer.reset()
        self._scorer.push(logmel(padded, self._params))
        return [self._score(self._window_samples, dbfs(real))]

    def _score_sample(self) -> int:
        """The stream sample at which the frame of the next score is complete."""
        return self._origin + self._params.samples_for(self._score_at)

    def _take(self, n: int) -> np.ndarray:
        """The first ``n`` waiting samples, removed from the wait."""
        joined = np.concatenate(self._waiting) if len(self._waiting) > 1 else self._waiting[0]
        rest = joined[n:]
        self._waiting = [rest] if len(rest) else []
        self._waiting_len = len(rest)
        return joined[:n]

    def _advance(self, samples: np.ndarray) -> WindowResult:
        """Run ``samples`` through the features, up to the next score, and score."""
        n = min(len(samples), len(self._samples))
        self._samples[: len(self._samples) - n] = self._samples[n:]
        self._samples[-n:] = samples[-n:]
        self._done_samples += len(samples)
        columns = self._features.push(samples)
        self._scorer.push(columns)
        self._filled += columns.shape[1]
        self._score_at = self._filled + self.hop_frames
        return self._score(self._done_samples, dbfs(self._samples), columns)

    def _repair(self, samples: np.ndarray) -> np.ndarray:
        """Replace NaN and infinities, clip to full scale (a broken device must not break us).
        Only what no decoder gives is counted as repaired: a lossy codec overshoots full scale
        by up to :data:`CODEC_OVERSHOOT` (Opus, MP3, AAC: 1.09-1.12 for loud crying)."""
        if len(samples) == 0 or (samples.min() >= -1.0 and samples.max() <= 1.0):
            return samples  # the common case, and NaN fails these comparisons
        self.repaired_samples += np.count_nonzero(~(np.abs(samples) <= CODEC_OVERSHOOT))
        return np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)

    def _score(self, end: int, level: float, columns: np.ndarray = NO_COLUMNS) -> WindowResult:
        t = end / self._params.sample_rate
        gated = self.paused or level < self.gate_dbfs
        if gated:
            self._scorer.skip()
        prob = 0.0 if gated else self._scorer.score()
        embedding = None if gated else self._scorer.embedding()
        if self.paused:
            return WindowResult(t, prob, level, gated, False, self._reset_detector(t), columns)
        if self.learned is None:
            changed, counted = self.detector.update(t, prob), prob
        else:
            changed, counted = self.learned.update(self.detector, t, prob, embedding)
        on, vetoed = self.detector.on, counted < prob
        return WindowResult(t, prob, level, gated, on, changed, columns, embedding, vetoed)


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
