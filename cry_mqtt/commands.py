"""Commands from Home Assistant: each payload bounded, checked and turned into a value before
anything is applied; a bad one is a :class:`CommandError` (the agent rejects and logs it)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from cry_mqtt.homeassistant import OFF, ON, PRESS, SLIDER_MAX, SLIDER_MIN

MAX_COMMAND_BYTES = 64
PRESSES = frozenset({"test", "not_crying", "forget"})
"""The buttons: nothing to save."""


class CommandError(ValueError):
    """A command payload from MQTT that cannot be applied."""


def command_parsers(presets: Sequence[str]) -> dict[str, Callable[[bytes], Any]]:
    """The parser of each entity key that takes commands; ``presets``: the names the
    sensitivity select offers."""
    return {
        "threshold": parse_threshold,
        "paused": parse_switch,
        "recording": parse_switch,
        "test": parse_press,
        "not_crying": parse_press,
        "forget": parse_press,
        "preset": lambda payload: parse_choice(payload, presets),
    }


def parse_threshold(payload: bytes) -> float:
    """A threshold command in percent, as a probability in (0, 1)."""
    text = _text(payload)
    try:
        percent = float(text)
    except ValueError:
        raise CommandError(f"threshold: not a number: {text!r}") from None
    if not math.isfinite(percent) or not SLIDER_MIN <= percent <= SLIDER_MAX:
        raise CommandError(f"threshold: must be {SLIDER_MIN}..{SLIDER_MAX} %: {text!r}")
    return percent / 100.0


def parse_switch(payload: bytes) -> bool:
    """A switch command: ``ON`` or ``OFF``."""
    text = _text(payload)
    if text.upper() not in (ON, OFF):
        raise CommandError(f"switch: expected {ON} or {OFF}: {text!r}")
    return text.upper() == ON


def parse_press(payload: bytes) -> bool:
    """A button press: ``PRESS``."""
    text = _text(payload)
    if text.upper() != PRESS:
        raise CommandError(f"button: expected {PRESS}: {text!r}")
    return True


def _text(payload: bytes) -> str:
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"payload too long ({len(payload)} bytes)")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None


def parse_choice(payload: bytes, options: Sequence[str]) -> str:
    """A select command: one of ``options``."""
    text = _text(payload)
    if text not in options:
        raise CommandError(f"select: expected one of {', '.join(options) or 'none'}: {text!r}")
    return text
