"""Stop signals: the handler records one; :class:`Shutdown` is raised only where that is safe.

An exception raised by a signal handler surfaces at whatever bytecode runs next, including Python
code that native code runs: one raised while an extension module initialises (soxr's, imported
on the first audio block) crashes the interpreter. So the agent checks for a stop between audio
blocks (:func:`check_stop`); only a blocking system call (:func:`interruptible`) is broken off at
once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType

POLL_SECONDS = 0.2
"""The longest a wait that cannot be interrupted (a queue, an event) goes without a check."""


class Shutdown(Exception):
    """A stop signal arrived: the agent stops cleanly."""


class _State:
    received: str | None = None
    interruptible = False


_state = _State()


def install(signals: Iterable[signal.Signals]) -> None:
    """Handle each of ``signals`` as a request to stop."""
    for signum in signals:
        signal.signal(signum, _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    _state.received = _state.received or signal.Signals(signum).name
    if _state.interruptible:
        _state.interruptible = False  # raised once: a second signal must not break the clean stop
        raise Shutdown(_state.received)


def check_stop() -> None:
    """Raise :class:`Shutdown` if a stop signal has arrived."""
    if _state.received is not None:
        raise Shutdown(_state.received)


@contextmanager
def interruptible() -> Iterator[None]:
    """Around one blocking system call that runs no Python code (a read of a pipe, a select): a
    stop signal raises :class:`Shutdown` at once instead of after the call returns."""
    _state.interruptible = True
    try:
        check_stop()  # after the flag is up: a signal from now on raises, none is missed
        yield
    finally:
        _state.interruptible = False
