"""Configuration: a YAML file validated at load time into typed, frozen settings.

Every section is a dataclass; its fields, type hints and ``ranged`` bounds are the schema
(:mod:`cry_mqtt.validation` checks a file against it). Loading rejects unknown keys, wrong types
and out-of-range values with a message that names the file and the dotted key.
``config.example.yaml`` documents every key with its default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cry_mqtt.detector import votes_fit
from cry_mqtt.validation import SECRET, ConfigError, build, ranged, read_yaml

PASSWORD_ENV = "CRY_MQTT_PASSWORD"
HEARTBEAT_ENV = "CRY_MQTT_HEARTBEAT_FILE"
ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
THRESHOLD_MIN, THRESHOLD_MAX = 0.01, 0.99
"""The thresholds a user can set: in this file, on Home Assistant's slider, as a saved setting."""
EXIT_CONFIG = 2
"""Exit status of ``cry-mqtt`` and of the add-on's start on a :class:`ConfigError`."""


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
    samplerate: int | None = ranged(None, 8000, 384000)
    channels: int = ranged(1, 1, 32)
    file: Path | None = None
    command: list[str] | None = field(default=None, repr=False, metadata=SECRET)
    redact: list[str] = field(default_factory=list, repr=False, metadata=SECRET)
    """Strings never to log from what the command prints (URL passwords are always removed)."""
    block_seconds: float = ranged(0.1, 0.01, 1.0)
    buffer_seconds: float = ranged(10.0, 1.0, 600.0)
    start_seconds: float = ranged(30.0, 1.0, 600.0)
    stall_seconds: float = ranged(5.0, 1.0, 600.0)
    restart_max_seconds: float = ranged(60.0, 1.0, 3600.0)
    muted_seconds: float = ranged(60.0, 5.0, 3600.0)


@dataclass(frozen=True)
class ModelConfig:
    """The ONNX model; ``None`` is the model shipped with the package."""

    path: Path | None = None
    threads: int = ranged(1, 1, 16)


@dataclass(frozen=True)
class DetectionConfig:
    """Scoring cadence, loudness gate and debouncing (the detector's shipped defaults)."""

    threshold: float | None = ranged(None, THRESHOLD_MIN, THRESHOLD_MAX)
    hop_seconds: float | None = ranged(None, 0.25, 7.0)
    """None: the hop the model file's votes were chosen at."""
    # 30 dB below the quiet end of the training crying (the 5th percentile of the loudest 7-s
    # window of each Donate-a-cry clip, -50.7 dBFS): crying across a room is still scored.
    gate_dbfs: float = ranged(-80.0, -100.0, 0.0)
    trigger_windows: int | None = ranged(None, 1, 50)
    of_windows: int | None = ranged(None, 1, 50)
    """Both None: the model file's votes."""
    hold_seconds: float = ranged(10.0, 0.0, 3600.0)
    cooldown_seconds: float = ranged(0.0, 0.0, 3600.0)


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
    port: int = ranged(1883, 1, 65535)
    username: str | None = None
    password: str | None = field(default=None, repr=False, metadata=SECRET)
    password_file: Path | None = None
    client_id: str | None = None
    keepalive: int = ranged(15, 5, 3600)
    """The broker declares the agent gone (its will: ``offline``) within 1.5-2 x this many seconds
    of a dark link, and the agent notices a dead broker within about twice it."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    discovery_prefix: str = "homeassistant"
    base_topic: str = "cry_mqtt"
    telemetry_seconds: float = ranged(5.0, 0.25, 3600.0)
    state_refresh_seconds: float = ranged(60.0, 5.0, 3600.0)
    reconnect_max_seconds: float = ranged(5.0, 1.0, 600.0)


@dataclass(frozen=True)
class RecordConfig:
    """Every crying episode's audio, kept in the house as an Opus file (never sent to the
    broker): from ``pre_roll_seconds`` before the window that turned crying on to the OFF."""

    enabled: bool = True
    folder: Path | None = None
    """None: ``episodes/`` beside the state file."""
    pre_roll_seconds: float = ranged(5.0, 0.0, 30.0)
    max_episode_seconds: float = ranged(600.0, 10.0, 7200.0)
    keep_count: int = ranged(200, 1, 100_000)
    keep_days: float = ranged(30.0, 0.1, 3650.0)
    keep_megabytes: float = ranged(500.0, 1.0, 1_000_000.0)


@dataclass(frozen=True)
class LearnConfig:
    """A parent's "that was not crying" (a button in Home Assistant), remembered: a sound like a
    remembered false alarm does not turn crying on, unless crying goes on past
    ``override_seconds``. Needs a model file that outputs embeddings and names a similarity."""

    enabled: bool = True
    override_seconds: float = ranged(30.0, 5.0, 600.0)
    max_false_alarms: int = ranged(50, 1, 1000)
    """The oldest false alarm is forgotten beyond this many."""
    similarity: float | None = ranged(None, 0.5, 0.999)
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
    raw = read_yaml(path)
    try:
        config = build(Config, raw, "", path.parent)
        _check(config, audio_given)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


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
