"""What the agent keeps across restarts: settings changed from Home Assistant
(:class:`SavedSettings`) and the night's numbers (:class:`NightTally`). Small JSON files, each
written whole and renamed over the old one, read defensively: a file that is missing, too large,
not JSON or holds a bad value is ignored with a warning, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cry_mqtt.config import THRESHOLD_MAX, THRESHOLD_MIN, Config
from cry_mqtt.detector import Preset

log = logging.getLogger(__name__)

MAX_STATE_BYTES = 4096


def read_json(path: Path) -> Any:
    """The JSON value in ``path`` (at most :data:`MAX_STATE_BYTES`); ``None`` if there is no
    file; :class:`ValueError` or :class:`OSError` if it cannot be read."""
    try:
        with path.open("rb") as file:
            text = file.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(text) > MAX_STATE_BYTES:
        raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
    return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a setting")


def write_json(path: Path, value: Any) -> bool:
    """Write ``value`` as JSON with :func:`replace_file`; whether it worked."""
    return replace_file(path, lambda file: file.write(json.dumps(value).encode()), "settings")


def replace_file(path: Path, write: Callable[[BinaryIO], Any], what: str) -> bool:
    """Write a new file with ``write`` and rename it over ``path``: a planted link is replaced,
    not written through, and a reader never sees half a file. A failure is logged (the file
    holds ``what``); whether it worked."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.error("cannot save the %s to %s: %s", what, path, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False


class SavedSettings:
    """Settings changed from Home Assistant: what is loaded is checked as a command from Home
    Assistant would be."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """The valid saved settings: ``threshold`` (a probability), ``paused`` and ``recording``
        (bools), ``preset`` (a name)."""
        try:
            data = read_json(self.path)
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("ignoring unreadable saved settings %s: %s", self.path, exc)
            return {}
        if data is None:
            return {}
        if not isinstance(data, dict):
            log.warning("ignoring saved settings %s: not a JSON object", self.path)
            return {}
        valid = {}
        threshold = data.get("threshold")
        if threshold is not None:
            if isinstance(threshold, float) and THRESHOLD_MIN <= threshold <= THRESHOLD_MAX:
                valid["threshold"] = threshold
            else:
                log.warning("ignoring saved threshold %.40r in %s", threshold, self.path)
        for key, kind in (("paused", bool), ("recording", bool), ("preset", str)):
            value = data.get(key)
            if isinstance(value, kind):
                valid[key] = value
            elif value is not None:
                log.warning("ignoring saved %s %.40r in %s", key, value, self.path)
        return valid

    def preset(self, saved: dict[str, Any], presets: Sequence[Preset]) -> Preset | None:
        """The preset ``saved`` names among the model's ``presets`` (another model's is
        ignored with a warning)."""
        name = saved.get("preset")
        found = next((p for p in presets if p.name == name), None)
        if name is not None and found is None:
            log.warning(
                "ignoring saved preset %.40r in %s: not one of the model's", name, self.path
            )
        return found

    def save(self, **values: Any) -> None:
        write_json(self.path, values)


def threshold_source(config: Config, saved: dict[str, Any], state_path: Path) -> str:
    """Where the threshold in force comes from: a setting saved from Home Assistant's slider wins
    over ``detection.threshold``, which wins over the model's own."""
    configured = config.detection.threshold
    if "threshold" in saved:
        said = "" if configured is None else f"; detection.threshold says {configured:g}"
        return f"saved from Home Assistant in {state_path}{said}"
    return "the model's" if configured is None else "detection.threshold"


@dataclass
class Night:
    """One night's numbers; ``night_of`` is the date (ISO) on which the night began."""

    night_of: str
    episodes: int = 0
    crying_seconds: float = 0.0
    longest_seconds: float = 0.0


def night_of(now: datetime, start: time) -> date:
    """The date on which the night holding ``now`` began (before ``start``, the day before)."""
    return now.date() if now.time() >= start else now.date() - timedelta(days=1)


class NightTally:
    """Crying since the night began (``start``, local time, every day): each episode counts in
    the night in which it ends. Kept in ``path``; a missing, unreadable or older night's file
    starts a fresh night."""

    def __init__(self, start: time, path: Path, now: datetime) -> None:
        self.start = start
        self.path = path
        self.night = self._load(night_of(now, start).isoformat())

    def roll(self, now: datetime) -> bool:
        """Begin a new night if ``now`` is past the night's end; whether it did."""
        today = night_of(now, self.start).isoformat()
        if today == self.night.night_of:
            return False
        self.night = Night(today)
        write_json(self.path, asdict(self.night))
        return True

    def add(self, seconds: float, now: datetime) -> None:
        """An episode of ``seconds`` ended at ``now``."""
        self.roll(now)
        night = self.night
        night.episodes += 1
        night.crying_seconds += seconds
        night.longest_seconds = max(night.longest_seconds, seconds)
        write_json(self.path, asdict(night))

    def _load(self, today: str) -> Night:
        try:
            data = read_json(self.path)
            if data is None:
                return Night(today)
            night = Night(**data)
            counts = (night.episodes, night.crying_seconds, night.longest_seconds)
            if not isinstance(night.episodes, int) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in counts
            ):
                raise ValueError("not a night's numbers")
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            log.warning("starting the night's numbers afresh: cannot read %s: %s", self.path, exc)
            return Night(today)
        return night if night.night_of == today else Night(today)
