"""Configuration: a YAML file validated at load time into typed, frozen settings.

Every section is a dataclass; its fields, type hints and ``_range`` bounds are the schema. Loading
rejects unknown keys, wrong types and out-of-range values with a message that names the file and
the dotted key. ``config.example.yaml`` documents every key with its default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cry_mqtt.detector import votes_fit

PASSWORD_ENV = "CRY_MQTT_PASSWORD"
HEARTBEAT_ENV = "CRY_MQTT_HEARTBEAT_FILE"
ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
THRESHOLD_MIN, THRESHOLD_MAX = 0.01, 0.99
"""The thresholds a user can set: in this file, on Home Assistant's slider, as a saved setting."""


class ConfigError(Exception):
    """The configuration file is missing, unparsable or invalid."""


EXIT_CONFIG = 2
"""Exit status of ``cry-mqtt`` and of the add-on's start on a :class:`ConfigError`."""


def _range(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    return field(default=default, metadata={"min": lo, "max": hi})


SECRET = {"secret": True}
"""Field metadata of a key whose value no message shows (a password, a command with a URL)."""


@dataclass(frozen=True)
class DeviceConfig:
    """How this agent appears in Home Assistant; the instance id keeps two agents apart."""

    instance_id: str = "nursery"
    name: str = "Baby monitor"
    entity_prefix: str = "baby"


@dataclass(frozen=True)
class AudioConfig:
    """Where audio comes from."""

    source: Literal["microphone", "file", "command"] = "microphone"
    device: str | int | None = None
    samplerate: int | None = _range(None, 8000, 384000)
    channels: int = _range(1, 1, 32)
    file: Path | None = None
    command: list[str] | None = field(default=None, repr=False, metadata=SECRET)
    redact: list[str] = field(default_factory=list, repr=False, metadata=SECRET)
    """Strings never to log from what the command prints (URL passwords are always removed)."""
    block_seconds: float = _range(0.1, 0.01, 1.0)
    buffer_seconds: float = _range(10.0, 1.0, 600.0)
    start_seconds: float = _range(30.0, 1.0, 600.0)
    stall_seconds: float = _range(5.0, 1.0, 600.0)
    restart_max_seconds: float = _range(60.0, 1.0, 3600.0)
    muted_seconds: float = _range(60.0, 5.0, 3600.0)


@dataclass(frozen=True)
class ModelConfig:
    """The ONNX model; ``None`` is the model shipped with the package."""

    path: Path | None = None
    threads: int = _range(1, 1, 16)


@dataclass(frozen=True)
class DetectionConfig:
    """Scoring cadence, loudness gate and debouncing (the detector's shipped defaults)."""

    threshold: float | None = _range(None, THRESHOLD_MIN, THRESHOLD_MAX)
    hop_seconds: float | None = _range(None, 0.25, 7.0)
    """None: the hop the model file's votes were chosen at."""
    # 30 dB below the quiet end of the training crying (the 5th percentile of the loudest 7-s
    # window of each Donate-a-cry clip, -50.7 dBFS): crying across a room is still scored.
    gate_dbfs: float = _range(-80.0, -100.0, 0.0)
    trigger_windows: int | None = _range(None, 1, 50)
    of_windows: int | None = _range(None, 1, 50)
    """Both None: the model file's votes."""
    hold_seconds: float = _range(10.0, 0.0, 3600.0)
    cooldown_seconds: float = _range(0.0, 0.0, 3600.0)


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker: ``enabled``, a CA file or a client certificate turns it on (a key
    file alone does not)."""

    enabled: bool = False
    ca_certs: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MqttConfig:
    """Broker connection and topic layout."""

    host: str = "localhost"
    port: int = _range(1883, 1, 65535)
    username: str | None = None
    password: str | None = field(default=None, repr=False, metadata=SECRET)
    password_file: Path | None = None
    client_id: str | None = None
    keepalive: int = _range(15, 5, 3600)
    """The broker declares the agent gone (its will: ``offline``) within 1.5-2 x this many seconds
    of a dark link, and the agent notices a dead broker within about twice it."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    discovery_prefix: str = "homeassistant"
    base_topic: str = "cry_mqtt"
    telemetry_seconds: float = _range(5.0, 0.25, 3600.0)
    state_refresh_seconds: float = _range(60.0, 5.0, 3600.0)
    reconnect_max_seconds: float = _range(5.0, 1.0, 600.0)


@dataclass(frozen=True)
class RecordConfig:
    """Every crying episode's audio, kept in the house as an Opus file (never sent to the
    broker): from ``pre_roll_seconds`` before the window that turned crying on to the OFF."""

    enabled: bool = True
    folder: Path | None = None
    """None: ``episodes/`` beside the state file."""
    pre_roll_seconds: float = _range(5.0, 0.0, 30.0)
    max_episode_seconds: float = _range(600.0, 10.0, 7200.0)
    keep_count: int = _range(200, 1, 100_000)
    keep_days: float = _range(30.0, 0.1, 3650.0)
    keep_megabytes: float = _range(500.0, 1.0, 1_000_000.0)


@dataclass(frozen=True)
class LearnConfig:
    """A parent's "that was not crying" (a button in Home Assistant), remembered: a sound like a
    remembered false alarm does not turn crying on, unless crying goes on past
    ``override_seconds``. Needs a model file that outputs embeddings and names a similarity."""

    enabled: bool = True
    override_seconds: float = _range(30.0, 5.0, 600.0)
    max_false_alarms: int = _range(50, 1, 1000)
    """The oldest false alarm is forgotten beyond this many."""
    similarity: float | None = _range(None, 0.5, 0.999)
    """How alike a sound must be to a remembered one; None: the model file's."""


@dataclass(frozen=True)
class NightConfig:
    """The night in numbers: episodes and minutes of crying since ``start`` (local time,
    ``HH:MM``), every day."""

    start: str = "18:00"

    def start_time(self) -> dt.time:
        return dt.time.fromisoformat(self.start)


@dataclass(frozen=True)
class Config:
    """The whole agent configuration."""

    device: DeviceConfig = field(default_factory=DeviceConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    night: NightConfig = field(default_factory=NightConfig)
    learn: LearnConfig = field(default_factory=LearnConfig)
    state_file: Path | None = None
    heartbeat_file: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def mqtt_password(self) -> str | None:
        """The broker password: from ``password_file``, else the environment, else the file."""
        if self.mqtt.password_file is not None:
            try:
                return self.mqtt.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"mqtt.password_file: cannot read {self.mqtt.password_file}: {exc.strerror}"
                ) from exc
        return os.environ.get(PASSWORD_ENV) or self.mqtt.password

    def mqtt_password_source(self) -> str:
        """Where :meth:`mqtt_password` takes the password from, in words for a message."""
        if self.mqtt.password_file is not None:
            return f"mqtt.password_file ({self.mqtt.password_file})"
        if os.environ.get(PASSWORD_ENV):
            overridden = ", which wins over mqtt.password" if self.mqtt.password else ""
            return f"the {PASSWORD_ENV} environment variable{overridden}"
        return "mqtt.password" if self.mqtt.password is not None else "none given"

    def heartbeat_path(self) -> Path | None:
        """The file touched while the audio loop runs (for container health checks)."""
        if self.heartbeat_file is not None:
            return self.heartbeat_file
        env = os.environ.get(HEARTBEAT_ENV)
        return Path(env) if env else None

    def state_path(self) -> Path:
        """Where settings changed from Home Assistant are kept across restarts."""
        if self.state_file is not None:
            return self.state_file
        root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return root / "cry-mqtt" / f"{self.device.instance_id}.json"

    def night_path(self) -> Path:
        """Where the night's numbers are kept across restarts: beside the state file."""
        return self.state_path().with_suffix(".night.json")

    def memory_path(self) -> Path:
        """Where the false alarms a parent marked are kept: beside the state file."""
        return self.state_path().with_suffix(".memory.npz")

    def record_folder(self) -> Path:
        """Where episodes are recorded: ``record.folder``, else ``episodes/`` beside the state
        file."""
        return self.record.folder or self.state_path().parent / "episodes"


def keys_set(config: Any, defaults: Any = None, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ from the defaults: those the file set."""
    defaults = type(config)() if defaults is None else defaults
    keys = []
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            keys += keys_set(value, default, f"{prefix}{f.name}.")
        elif value != default:
            keys.append(prefix + f.name)
    return keys


def load_config(path: Path | None, audio_given: bool = False) -> Config:
    """Read and validate a YAML configuration; ``None`` gives the defaults.

    ``audio_given``: the command line names the audio (``--input``), so the configured source
    need not be complete.
    """
    if path is None:
        return Config()
    try:
        raw = yaml.load(path.read_bytes().decode("utf-8-sig"), _Loader) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        before = exc.object[: exc.start]
        line, column = before.count(b"\n") + 1, exc.start - before.rfind(b"\n")
        raise ConfigError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
            "save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None
    try:
        config = _build(Config, raw, "", path.parent)
        _check(config, audio_given)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in a mapping (the last one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *defaults' is meant to be overridden
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


UNQUOTED_VALUES = {
    "*": "found undefined alias",
    "!": "could not determine a constructor for the tag",
}
"""YAML's words for an unquoted value that starts with ``*`` or ``!``, whose text they quote."""


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """One line: the file, the line and column of the problem, and what it is."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    for start, problem_text in UNQUOTED_VALUES.items():
        if problem.startswith(problem_text):
            problem = (
                f"{problem_text} (a value that starts with {start!r} must be quoted; not shown: "
                "it may be a password)"
            )
    context, begun = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and begun is not None and mark is not None and begun.line != mark.line:
        context += f" that began on line {begun.line + 1}"
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _check(config: Config, audio_given: bool) -> None:
    """Rules that involve more than one key."""
    for key, value in (
        ("device.instance_id", config.device.instance_id),
        ("device.entity_prefix", config.device.entity_prefix),
    ):
        if not ID_PATTERN.match(value):
            raise ConfigError(f"{key}: use only letters, digits, '_' and '-' (got {value!r})")
    detection = config.detection
    votes = (detection.trigger_windows, detection.of_windows)
    if (votes[0] is None) != (votes[1] is None):
        if votes[0] is None:
            given, other = "of_windows", "trigger_windows"
        else:
            given, other = "trigger_windows", "of_windows"
        raise ConfigError(
            f"detection.{given}: set it and detection.{other} together, "
            "or neither (the model's own rule)"
        )
    if votes[0] is not None and not votes_fit(*votes):
        raise ConfigError("detection.trigger_windows: must not exceed detection.of_windows")
    audio = config.audio
    if audio.source == "file" and audio.file is None and not audio_given:
        raise ConfigError("audio.file: required when audio.source is 'file'")
    if audio.source == "command" and not audio.command and not audio_given:
        raise ConfigError("audio.command: required when audio.source is 'command'")
    if config.mqtt.password is not None and config.mqtt.password_file is not None:
        raise ConfigError("mqtt.password: give either password or password_file, not both")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", config.night.start):
        raise ConfigError(
            f"night.start: expected a time of day as HH:MM (got {config.night.start!r})"
        )
    for key, topic in (
        ("mqtt.base_topic", config.mqtt.base_topic),
        ("mqtt.discovery_prefix", config.mqtt.discovery_prefix),
    ):
        if not topic or any(c in topic for c in "#+") or topic.startswith("/"):
            raise ConfigError(f"{key}: not a valid topic prefix (got {topic!r})")


def _build(cls: type, data: Any, prefix: str, base: Path) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating every key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'top level'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{prefix}{key}'{hint}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            key = prefix + f.name
            value = _convert(
                hints[f.name], data[f.name], key, base, f.metadata.get("secret", False)
            )
            _check_range(f, value, key)
            values[f.name] = value
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, base: Path, secret: bool = False) -> Any:
    """Check ``value`` against type ``hint`` and convert it (paths relative to the file);
    errors about a ``secret`` value name only its kind."""
    got = _KINDS.get(type(value), "another kind of value") if secret else repr(value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        options = tuple(o for o in options if o is not type(None))
        if len(options) == 1:
            return _convert(options[0], value, key, base, secret)
        errors = []
        for option in options:
            try:
                return _convert(option, value, key, base, secret)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise ConfigError(f"{key}: {' or '.join(errors)}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{key}: must be one of {', '.join(map(str, choices))} (got {value!r})"
            )
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list (got {got})")
        return [_convert(item, v, f"{key}[{i}]", base, secret) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", base)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: expected a path (got {got})")
        return base / Path(value).expanduser()
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (bool, int, float, str) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{key}: expected {_describe(hint)} (got {got})")
    if hint is float and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number (got {value})")
    return value


_KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing",
}


def _describe(hint: type) -> str:
    return _KINDS[hint]


def _check_range(f: dataclasses.Field, value: Any, key: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if value is None or isinstance(value, str):
        return
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: must be >= {lo} (got {value})")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be <= {hi} (got {value})")
