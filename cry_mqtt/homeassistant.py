"""Home Assistant MQTT discovery: every topic and payload, built in one place from data.

Pure functions only; :mod:`cry_mqtt.mqtt` moves the bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cry_mqtt import __version__
from cry_mqtt.config import THRESHOLD_MAX, THRESHOLD_MIN, Config
from cry_mqtt.detector import Detector, DetectorSettings, Episode, Preset
from cry_mqtt.memory import Learned
from cry_mqtt.state import Night

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
PRESS = "PRESS"
SLIDER_MIN, SLIDER_MAX = round(THRESHOLD_MIN * 100), round(THRESHOLD_MAX * 100)
"""Bounds of the threshold entity, in percent."""
MAX_ERROR_CHARS = 600
"""The longest audio error published (a retained payload Home Assistant keeps in its history)."""


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity: its component, key (part of ids and topics) and extras."""

    component: str
    key: str
    name: str
    entity_suffix: str
    options: dict[str, Any] = field(default_factory=dict)
    command: bool = False
    """It has a command topic."""
    attributes: bool = False
    """It has a JSON attributes topic."""
    needs_audio: bool = False
    """It is unavailable while the audio source has a problem."""
    needs_detection: bool = False
    """It is unavailable while detection is paused (it would read "not crying")."""
    state_key: str | None = "state_topic"
    """The discovery key of its state topic (an image's is ``image_topic``; a button has none)."""
    needs: str | None = None
    """What the model file must offer for it (``learn``: embeddings and a similarity;
    ``presets``): without it, the entity is removed."""


ENTITIES = (
    Entity(
        "binary_sensor",
        "crying",
        "Crying",
        "crying",
        {"device_class": "sound", "payload_on": ON, "payload_off": OFF, "icon": "mdi:baby-face"},
        attributes=True,
        needs_audio=True,
        needs_detection=True,
    ),
    Entity(
        "sensor",
        "confidence",
        "Cry confidence (peak)",
        "cry_confidence",
        {
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "suggested_display_precision": 0,
            "icon": "mdi:percent",
        },
        attributes=True,
        needs_audio=True,
        needs_detection=True,
    ),
    Entity(
        "sensor",
        "sound_level",
        "Sound level",
        "sound_level",
        {
            "unit_of_measurement": "dBFS",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "suggested_display_precision": 0,
            "icon": "mdi:volume-high",
        },
        needs_audio=True,
    ),
    Entity(
        "number",
        "threshold",
        "Cry threshold",
        "cry_threshold",
        {
            "min": SLIDER_MIN,
            "max": SLIDER_MAX,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "%",
            "entity_category": "config",
            "icon": "mdi:tune",
        },
        command=True,
    ),
    Entity(
        "switch",
        "paused",
        "Pause detection",
        "cry_detection_paused",
        {"payload_on": ON, "payload_off": OFF, "entity_category": "config", "icon": "mdi:pause"},
        command=True,
    ),
    Entity(
        "switch",
        "recording",
        "Record episodes",
        "cry_recording",
        {"payload_on": ON, "payload_off": OFF, "entity_category": "config", "icon": "mdi:record"},
        command=True,
    ),
    Entity(
        "button",
        "test",
        "Test the monitor",
        "test_monitor",
        {"payload_press": PRESS, "entity_category": "diagnostic", "icon": "mdi:bell-ring"},
        command=True,
        state_key=None,
    ),
    Entity(
        "select",
        "preset",
        "Sensitivity",
        "cry_sensitivity",
        {"entity_category": "config", "icon": "mdi:tune-variant"},
        command=True,
        attributes=True,
        needs="presets",
    ),
    Entity(
        "button",
        "not_crying",
        "That was not crying",
        "not_crying",
        {"payload_press": PRESS, "icon": "mdi:emoticon-happy-outline"},
        command=True,
        attributes=True,
        state_key=None,
        needs="learn",
    ),
    Entity(
        "button",
        "forget",
        "Forget false alarms",
        "forget_false_alarms",
        {"payload_press": PRESS, "entity_category": "config", "icon": "mdi:delete-sweep"},
        command=True,
        state_key=None,
        needs="learn",
    ),
    Entity(
        "image",
        "last_episode",
        "Last episode",
        "last_episode",
        {"content_type": "image/png", "icon": "mdi:waveform"},
        state_key="image_topic",
    ),
    *(
        Entity(
            "sensor",
            key,
            name,
            key,
            {"state_class": state_class, "icon": icon}
            | ({"unit_of_measurement": "min", "device_class": "duration"} if minutes else {}),
        )
        for key, name, state_class, minutes, icon in (
            (
                "episodes_tonight",
                "Crying episodes tonight",
                "total_increasing",
                False,
                "mdi:counter",
            ),
            (
                "crying_minutes_tonight",
                "Crying tonight",
                "total_increasing",
                True,
                "mdi:timer-outline",
            ),
            (
                "longest_episode_tonight",
                "Longest episode tonight",
                "measurement",
                True,
                "mdi:timer-sand",
            ),
        )
    ),
    Entity(
        "binary_sensor",
        "audio_problem",
        "Audio problem",
        "audio_problem",
        {
            "device_class": "problem",
            "payload_on": ON,
            "payload_off": OFF,
            "entity_category": "diagnostic",
        },
        attributes=True,
    ),
)


@dataclass(frozen=True)
class Topics:
    """Every topic of one agent instance."""

    base: str
    discovery_prefix: str
    node_id: str

    @classmethod
    def from_config(cls, config: Config) -> Topics:
        instance = config.device.instance_id
        return cls(
            base=f"{config.mqtt.base_topic}/{instance}",
            discovery_prefix=config.mqtt.discovery_prefix,
            node_id=f"cry_mqtt_{instance}",
        )

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    def attributes(self, key: str) -> str:
        return f"{self.base}/{key}/attributes"

    @property
    def homeassistant_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def state(self, key: str) -> str:
        return f"{self.base}/{key}"

    def command(self, key: str) -> str:
        return f"{self.base}/{key}/set"

    def discovery(self, entity: Entity) -> str:
        return f"{self.discovery_prefix}/{entity.component}/{self.node_id}/{entity.key}/config"


def discovery_messages(
    config: Config,
    model_version: str,
    expire_after: int,
    learns: bool = True,
    presets: Sequence[str] = (),
) -> dict[str, str]:
    """Retained discovery configs by topic, one per entity (per-entity discovery). The select
    offers the model's ``presets``; an entity whose needs the model does not meet (``learns``
    False, no presets) gets an empty payload, which removes it from Home Assistant."""
    offered = {need for need, met in (("learn", learns), ("presets", presets)) if met}
    topics = Topics.from_config(config)
    device = {
        "identifiers": [topics.node_id],
        "name": config.device.name,
        "manufacturer": "cry-mqtt",
        "model": f"Cry detector (model {model_version})",
        "sw_version": __version__,
    }
    origin = {
        "name": "cry-mqtt",
        "sw_version": __version__,
        "support_url": "https://github.com/cry-mqtt/cry-mqtt",
    }
    online = {
        "topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
    }
    # The audio problem sensor and the pause switch double as availability for what needs audio
    # and what needs detection.
    audio = {
        "topic": topics.state("audio_problem"),
        "payload_available": OFF,
        "payload_not_available": ON,
    }
    detection = {
        "topic": topics.state("paused"),
        "payload_available": OFF,
        "payload_not_available": ON,
    }
    messages = {}
    for entity in ENTITIES:
        if entity.needs is not None and entity.needs not in offered:
            messages[topics.discovery(entity)] = ""
            continue
        object_id = f"{config.device.entity_prefix}_{entity.entity_suffix}"
        payload: dict[str, Any] = {
            "name": entity.name,
            "unique_id": f"{topics.node_id}_{entity.key}",
            "object_id": object_id,
            "default_entity_id": f"{entity.component}.{object_id}",
            **({entity.state_key: topics.state(entity.key)} if entity.state_key else {}),
            "availability": [
                online,
                *([audio] if entity.needs_audio else []),
                *([detection] if entity.needs_detection else []),
            ],
            "availability_mode": "all",
            "device": device,
            "origin": origin,
            **entity.options,
        }
        if entity.command:
            payload["command_topic"] = topics.command(entity.key)
        if entity.attributes:
            payload["json_attributes_topic"] = topics.attributes(entity.key)
        if entity.key == "crying":
            payload["expire_after"] = expire_after
        if entity.key == "preset":
            payload["options"] = list(presets)
        messages[topics.discovery(entity)] = json.dumps(payload, sort_keys=True)
    return messages


def episode_attributes(episode: Episode, started: datetime | None, now: float) -> dict[str, Any]:
    """The crying sensor's account of ``episode`` at stream time ``now`` (as it starts, goes
    on or ends); ``started``: its wall-clock start."""
    return {
        "episode_start": started.isoformat(timespec="seconds") if started else None,
        "episode_duration_s": round(episode.duration(now), 1),
        "peak_confidence": float(percent(episode.peak)),
    }


def crying_attributes(model_version: str, episode: dict[str, Any], detector: Detector) -> str:
    """The crying sensor's attributes: the model, the last episode and the detector's rule."""
    return _attributes(model_version=model_version, **episode, **_agreement(detector))


def confidence_attributes(
    window_seconds: float, telemetry_seconds: float, detector: Detector
) -> str:
    """The confidence sensor's attributes: what its peak means and the detector's rule."""
    return _attributes(
        meaning=f"highest chance of crying in any {window_seconds:g}-s window over the last "
        f"{telemetry_seconds:g} s; one window alone does not turn crying on",
        **_agreement(detector),
    )


def night_states(night: Night) -> dict[str, str]:
    """The night's numbers as the states of its three sensors."""
    return {
        "episodes_tonight": str(night.episodes),
        "crying_minutes_tonight": f"{night.crying_seconds / 60:.1f}",
        "longest_episode_tonight": f"{night.longest_seconds / 60:.1f}",
    }


def memory_attributes(learned: Learned) -> str:
    """The "not crying" button's attributes: what the memory holds and what it has done."""
    m = learned.memory
    return _attributes(
        false_alarms_remembered=m.episodes,
        of_at_most=m.max_episodes,
        windows_remembered=len(m.vectors),
        windows_kept_from_crying=learned.vetoed,
        override_seconds=learned.override_seconds,
        meaning="sounds like a remembered false alarm do not turn crying on, unless crying goes "
        f"on for {learned.override_seconds:g} s",
    )


def preset_state(presets: Sequence[Preset], chosen: str | None, settings: DetectorSettings) -> str:
    """The select's state: the preset chosen, else the one whose threshold and rule are in force,
    else ``None`` (Home Assistant shows no option)."""
    for preset in presets:
        if preset.name == chosen or (chosen is None and preset.applied(settings) == settings):
            return preset.name
    return "None"


def preset_attributes(presets: Sequence[Preset], chosen: str | None, detector: Detector) -> str:
    """The select's attributes: what each preset sets, and whether the slider fine-tuned the
    one in force."""
    preset = next((p for p in presets if p.name == chosen), None)
    return _attributes(
        presets={
            p.name: f"{percent(p.threshold)} %, {p.trigger_windows} of {p.of_windows} windows"
            for p in presets
        },
        fine_tuned=preset is not None and preset.applied(detector.settings) != detector.settings,
        threshold=float(percent(detector.settings.threshold)),
        rule=_rule(detector.settings),
    )


def audio_problem_attributes(error: str | None) -> str:
    """The audio problem sensor's attributes: the error, cut to :data:`MAX_ERROR_CHARS`."""
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 6] + " [...]"
    return _attributes(error=error)


def _agreement(detector: Detector) -> dict[str, Any]:
    """How the recent windows stand against the detector's rule (the state's explanation)."""
    s = detector.settings
    return {
        "windows_at_threshold": detector.recent_hits,
        "windows_needed": s.trigger_windows,
        "of_windows": s.of_windows,
        "threshold": float(percent(s.threshold)),
        "rule": _rule(s),
    }


def _rule(s: DetectorSettings) -> str:
    return (
        f"on when {s.trigger_windows} of the last {s.of_windows} windows reach "
        f"{percent(s.threshold)} %, off after {s.hold_seconds:g} s without one"
    )


def _attributes(**attributes: Any) -> str:
    return json.dumps(attributes, sort_keys=True)


def command_keys() -> tuple[str, ...]:
    """Keys of the entities that accept commands."""
    return tuple(e.key for e in ENTITIES if e.command)


def percent(prob: float) -> str:
    """A probability as the percent payload of the confidence and threshold entities."""
    return f"{round(prob * 100, 1):g}"


def switch(value: bool) -> str:
    return ON if value else OFF
