"""A log message at a bounded rate."""

from __future__ import annotations

import logging
import threading
import time


class Throttle:
    """A log message that lets ``burst`` lines through per ``period`` and holds back the rest,
    counted in a line of their own with the next one after the period: a flood of bad commands
    or failed connections stays readable."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        level: int,
        burst: int = 10,
        period: float = 60.0,
    ) -> None:
        self._log = log
        self._what = what
        self._level = level
        self._burst = burst
        self._period = period
        self._lock = threading.Lock()
        self._window_end = 0.0
        self._count = 0
        self._held = 0

    def __call__(self, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now >= self._window_end:
                if self._held:
                    self._log.log(self._level, "%d more %s not logged", self._held, self._what)
                self._window_end, self._count, self._held = now + self._period, 0, 0
            self._count += 1
            if self._count > self._burst:
                self._held += 1
                return
        self._log.log(self._level, message, *args)
