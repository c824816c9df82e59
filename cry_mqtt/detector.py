"""The debounced cry detector: a pure state machine over window probabilities."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace


def votes_fit(trigger_windows: int, of_windows: int) -> bool:
    """Whether ``trigger_windows`` hits among the last ``of_windows`` scores can ever happen."""
    return 1 <= trigger_windows <= of_windows


@dataclass(frozen=True)
class Votes:
    """How many of the latest window scores must reach the threshold: a model file's rule (the
    one its tuning night picked), unless the ``detection`` config section sets its own.
    ``hop_seconds`` is the scoring hop it was chosen at: the same votes at another hop span
    another stretch of time."""

    trigger_windows: int
    of_windows: int
    hop_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not votes_fit(self.trigger_windows, self.of_windows):
            raise ValueError("need 1 <= trigger_windows <= of_windows")
        if not self.hop_seconds > 0:
            raise ValueError("need hop_seconds > 0")


DEFAULT_VOTES = Votes(3, 5, 1.0)
"""The rule a model is exported with unless given another: 3 of 5 at the 1-s hop keeps one
cry-like second from carrying an episode (docs/performance.md)."""


@dataclass(frozen=True)
class DetectorSettings:
    """ON when ``trigger_windows`` of the last ``of_windows`` scores reach ``threshold``; OFF
    after ``hold_seconds`` without one; no new episode within ``cooldown_seconds`` of the last
    OFF. The config's ``detection`` section gives them, the model file the threshold and votes
    it leaves unset."""

    threshold: float
    trigger_windows: int
    of_windows: int
    hold_seconds: float
    cooldown_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if not votes_fit(self.trigger_windows, self.of_windows):
            raise ValueError("need 1 <= trigger_windows <= of_windows")
        if self.hold_seconds < 0 or self.cooldown_seconds < 0:
            raise ValueError("hold and cooldown must not be negative")


@dataclass(frozen=True)
class Preset:
    """A named threshold and rule for the detector: one of a model file's sensitivity presets,
    chosen on its tuning night (a parent picks one in Home Assistant)."""

    name: str
    threshold: float
    trigger_windows: int
    of_windows: int

    def __post_init__(self) -> None:
        if not self.name or not 0.0 < self.threshold < 1.0:
            raise ValueError("a preset needs a name and a threshold in (0, 1)")
        if not votes_fit(self.trigger_windows, self.of_windows):
            raise ValueError("need 1 <= trigger_windows <= of_windows")

    def applied(self, settings: DetectorSettings) -> DetectorSettings:
        """``settings`` with this preset's threshold and rule."""
        return replace(
            settings,
            threshold=self.threshold,
            trigger_windows=self.trigger_windows,
            of_windows=self.of_windows,
        )


@dataclass(frozen=True)
class Episode:
    """A crying episode in stream seconds, as of when it started or ended (``end`` set)."""

    start: float
    peak: float
    end: float | None = None

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


class Detector:
    """Feed it one probability per scored window with :meth:`update`."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self._recent: deque[float] = deque(maxlen=settings.of_windows)
        self._last_off = float("-inf")
        self._start: float | None = None
        self._peak = 0.0
        self._last_hit = 0.0

    @property
    def on(self) -> bool:
        return self._start is not None

    @property
    def recent_hits(self) -> int:
        """How many of the last ``of_windows`` scores reach the threshold."""
        return sum(p >= self.settings.threshold for p in self._recent)

    @property
    def episode(self) -> Episode | None:
        """The episode under way, or ``None`` while OFF."""
        return None if self._start is None else Episode(self._start, self._peak)

    def set_threshold(self, threshold: float) -> None:
        """Change the threshold live; the recent history is kept."""
        self.apply(replace(self.settings, threshold=threshold))

    def apply(self, settings: DetectorSettings) -> None:
        """Change the settings live; the latest ``of_windows`` scores are kept."""
        if settings.of_windows != self._recent.maxlen:
            self._recent = deque(self._recent, maxlen=settings.of_windows)
        self.settings = settings

    def update(self, t: float, prob: float) -> Episode | None:
        """Account for the window ending at ``t``; returns the episode that started or ended."""
        s = self.settings
        hit = prob >= s.threshold
        self._recent.append(prob)
        if self._start is not None:
            if hit:
                self._last_hit = t
                self._peak = max(self._peak, prob)
            elif t - self._last_hit >= s.hold_seconds:
                return self._end(t)
            return None
        hits = [p for p in self._recent if p >= s.threshold]
        if len(hits) >= s.trigger_windows and t - self._last_off >= s.cooldown_seconds:
            self._start, self._peak, self._last_hit = t, max(hits), t
            return self.episode
        return None

    def reset(self, t: float) -> Episode | None:
        """Forget the history (pause, end of input); ends an episode under way at ``t``."""
        self._recent.clear()
        return self._end(t) if self._start is not None else None

    def _end(self, t: float) -> Episode:
        assert self._start is not None
        ended = Episode(self._start, self._peak, end=t)
        self._start = None
        self._last_off = t
        self._recent.clear()
        return ended
