import json
from datetime import UTC, datetime

import pytest

from cry_mqtt.commands import CommandError, command_parsers, parse_switch, parse_threshold
from cry_mqtt.config import Config, DeviceConfig, MqttConfig
from cry_mqtt.detector import Detector, DetectorSettings, Episode, Preset
from cry_mqtt.homeassistant import (
    Topics,
    command_keys,
    discovery_messages,
    episode_attributes,
    percent,
    preset_attributes,
    preset_state,
)

PRESETS = ["Quiet room", "Balanced", "Noisy room"]


def payloads(config: Config | None = None) -> dict[str, dict]:
    messages = discovery_messages(config or Config(), "v1", 180, presets=PRESETS)
    return {t: json.loads(p) for t, p in messages.items()}


def by_component(messages: dict[str, dict]) -> dict[str, dict]:
    return {topic.split("/")[1] + "/" + topic.split("/")[3]: p for topic, p in messages.items()}


def test_one_retained_config_per_entity_under_the_discovery_prefix():
    messages = payloads()
    assert sorted(messages) == [
        "homeassistant/binary_sensor/cry_mqtt_nursery/audio_problem/config",
        "homeassistant/binary_sensor/cry_mqtt_nursery/crying/config",
        "homeassistant/button/cry_mqtt_nursery/forget/config",
        "homeassistant/button/cry_mqtt_nursery/not_crying/config",
        "homeassistant/button/cry_mqtt_nursery/test/config",
        "homeassistant/image/cry_mqtt_nursery/last_episode/config",
        "homeassistant/number/cry_mqtt_nursery/threshold/config",
        "homeassistant/select/cry_mqtt_nursery/preset/config",
        "homeassistant/sensor/cry_mqtt_nursery/confidence/config",
        "homeassistant/sensor/cry_mqtt_nursery/crying_minutes_tonight/config",
        "homeassistant/sensor/cry_mqtt_nursery/episodes_tonight/config",
        "homeassistant/sensor/cry_mqtt_nursery/longest_episode_tonight/config",
        "homeassistant/sensor/cry_mqtt_nursery/sound_level/config",
        "homeassistant/switch/cry_mqtt_nursery/paused/config",
        "homeassistant/switch/cry_mqtt_nursery/recording/config",
    ]


def test_the_learning_buttons_are_removed_where_the_model_cannot_learn():
    """An empty retained config removes an entity an earlier model file made."""
    messages = discovery_messages(Config(), "v1", 180, learns=False)
    learning = {
        t: p for t, p in messages.items() if "/button/" in t and not t.endswith("test/config")
    }
    assert sorted(learning) == [
        "homeassistant/button/cry_mqtt_nursery/forget/config",
        "homeassistant/button/cry_mqtt_nursery/not_crying/config",
    ]
    assert set(learning.values()) == {""}
    not_crying = by_component(payloads())["button/not_crying"]
    assert not_crying["default_entity_id"] == "button.baby_not_crying"
    assert not_crying["json_attributes_topic"] == "cry_mqtt/nursery/not_crying/attributes"
    assert not_crying["command_topic"] == "cry_mqtt/nursery/not_crying/set"


def test_the_sensitivity_offers_the_models_presets_or_is_removed():
    select = by_component(payloads())["select/preset"]
    assert select["default_entity_id"] == "select.baby_cry_sensitivity"
    assert select["options"] == PRESETS and select["entity_category"] == "config"
    assert select["command_topic"] == "cry_mqtt/nursery/preset/set"
    assert select["state_topic"] == "cry_mqtt/nursery/preset"
    assert select["json_attributes_topic"] == "cry_mqtt/nursery/preset/attributes"
    without = discovery_messages(Config(), "v1", 180)  # an older model file names none
    assert without["homeassistant/select/cry_mqtt_nursery/preset/config"] == ""


def test_the_sensitivity_shows_the_preset_in_force_and_whether_the_slider_moved_it():
    presets = [Preset("Quiet room", 0.35, 1, 1), Preset("Balanced", 0.5, 3, 5)]
    detector = Detector(DetectorSettings(0.5, 3, 5, 10.0))
    assert preset_state(presets, None, detector.settings) == "Balanced"  # the model's own
    detector.apply(presets[0].applied(detector.settings))
    assert preset_state(presets, "Quiet room", detector.settings) == "Quiet room"
    attributes = json.loads(preset_attributes(presets, "Quiet room", detector))
    assert attributes["presets"] == {
        "Quiet room": "35 %, 1 of 1 windows",
        "Balanced": "50 %, 3 of 5 windows",
    }
    assert not attributes["fine_tuned"] and attributes["threshold"] == 35.0
    detector.set_threshold(0.4)
    assert json.loads(preset_attributes(presets, "Quiet room", detector))["fine_tuned"]
    assert preset_state(presets, None, detector.settings) == "None"  # no preset: unknown


def test_binary_sensor_is_baby_crying_on_old_and_new_releases():
    crying = by_component(payloads())["binary_sensor/crying"]
    assert crying["object_id"] == "baby_crying"
    assert crying["default_entity_id"] == "binary_sensor.baby_crying"
    assert crying["device_class"] == "sound"
    assert (crying["payload_on"], crying["payload_off"]) == ("ON", "OFF")
    assert crying["state_topic"] == "cry_mqtt/nursery/crying"
    assert crying["json_attributes_topic"] == "cry_mqtt/nursery/crying/attributes"
    assert crying["expire_after"] == 180


def test_every_entity_shares_device_availability_and_origin():
    for payload in payloads().values():
        assert payload["availability"][0] == {
            "topic": "cry_mqtt/nursery/availability",
            "payload_available": "online",
            "payload_not_available": "offline",
        }
        assert payload["availability_mode"] == "all"
        assert payload["device"]["identifiers"] == ["cry_mqtt_nursery"]
        assert payload["device"]["name"] == "Baby monitor"
        assert payload["origin"]["name"] == "cry-mqtt"
        assert payload["unique_id"].startswith("cry_mqtt_nursery_")
        topic = payload.get("state_topic") or payload.get("image_topic") or payload["command_topic"]
        assert topic.startswith("cry_mqtt/nursery/")
        assert "Baby monitor" not in payload["name"]


def test_what_needs_audio_is_unavailable_during_an_audio_problem():
    entities = by_component(payloads())
    problem = entities["binary_sensor/audio_problem"]
    assert problem["device_class"] == "problem" and problem["entity_category"] == "diagnostic"
    assert problem["state_topic"] == "cry_mqtt/nursery/audio_problem"
    audio = {
        "topic": "cry_mqtt/nursery/audio_problem",
        "payload_available": "OFF",
        "payload_not_available": "ON",
    }
    for key in ("binary_sensor/crying", "sensor/confidence", "sensor/sound_level"):
        assert entities[key]["availability"][1] == audio
    for key in ("number/threshold", "switch/paused", "switch/recording", "image/last_episode",
                "binary_sensor/audio_problem", "sensor/episodes_tonight"):  # fmt: skip
        assert len(entities[key]["availability"]) == 1


def test_what_detection_decides_is_unavailable_while_paused():
    """Paused, crying would read "not crying" and the confidence 0: neither is true."""
    entities = by_component(payloads())
    paused = {
        "topic": "cry_mqtt/nursery/paused",
        "payload_available": "OFF",
        "payload_not_available": "ON",
    }
    for key in ("binary_sensor/crying", "sensor/confidence"):
        assert entities[key]["availability"][2] == paused
    assert len(entities["sensor/sound_level"]["availability"]) == 2  # the room is still heard


def test_sensors_and_settings():
    entities = by_component(payloads())
    confidence = entities["sensor/confidence"]
    assert confidence["unit_of_measurement"] == "%"
    assert confidence["state_class"] == "measurement"
    level = entities["sensor/sound_level"]
    assert level["unit_of_measurement"] == "dBFS" and level["entity_category"] == "diagnostic"
    assert "device_class" not in level
    threshold = entities["number/threshold"]
    assert threshold["entity_category"] == "config"
    assert (threshold["min"], threshold["max"], threshold["step"]) == (1, 99, 1)
    assert threshold["command_topic"] == "cry_mqtt/nursery/threshold/set"
    assert threshold["state_topic"] == "cry_mqtt/nursery/threshold"
    paused = entities["switch/paused"]
    assert paused["entity_category"] == "config"
    assert paused["command_topic"] == "cry_mqtt/nursery/paused/set"


def test_two_instances_never_share_ids_or_topics():
    a = payloads(Config(device=DeviceConfig(instance_id="nursery")))
    b = payloads(Config(device=DeviceConfig(instance_id="bedroom", entity_prefix="twins")))
    assert not set(a) & set(b)
    ids = lambda m, key: {p[key] for p in m.values() if key in p}  # noqa: E731
    for key in ("unique_id", "state_topic", "image_topic", "default_entity_id"):
        assert not ids(a, key) & ids(b, key)
    assert by_component(b)["binary_sensor/crying"]["default_entity_id"] == (
        "binary_sensor.twins_crying"
    )


def test_prefixes_come_from_the_config():
    config = Config(mqtt=MqttConfig(discovery_prefix="ha", base_topic="home/cry"))
    topics = Topics.from_config(config)
    assert topics.availability == "home/cry/nursery/availability"
    assert topics.homeassistant_status == "ha/status"
    assert all(t.startswith("ha/") for t in payloads(config))


@pytest.mark.parametrize(("payload", "prob"), [(b"85", 0.85), (b" 42.5 ", 0.425), (b"1", 0.01)])
def test_threshold_commands_in_percent(payload, prob):
    assert parse_threshold(payload) == pytest.approx(prob)


@pytest.mark.parametrize(
    "payload", [b"", b"abc", b"0", b"100", b"nan", b"inf", b"-5", b"\xff\xfe", b"5" * 100]
)
def test_bad_threshold_commands_are_rejected(payload):
    with pytest.raises(CommandError):
        parse_threshold(payload)


def test_switch_commands():
    assert parse_switch(b"ON") is True
    assert parse_switch(b"off") is False
    with pytest.raises(CommandError, match="expected ON or OFF: 'maybe'"):  # as sent
        parse_switch(b"maybe")


def test_a_preset_command_names_one_of_the_presets():
    parse = command_parsers(["Quiet room", "Balanced"])["preset"]
    assert parse(b" Balanced ") == "Balanced"
    with pytest.raises(CommandError, match="expected one of Quiet room, Balanced: 'Loud'"):
        parse(b"Loud")
    with pytest.raises(CommandError, match="expected one of none"):
        command_parsers([])["preset"](b"Balanced")


def test_every_entity_that_takes_commands_has_a_parser():
    assert set(command_keys()) == set(command_parsers([]))


def test_an_episode_under_way_has_its_duration_so_far():
    started = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    ongoing = episode_attributes(Episode(start=10.0, peak=0.9), started, now=25.0)
    assert ongoing == {
        "episode_start": "2026-12-06T03:00:00+00:00",
        "episode_duration_s": 15.0,
        "peak_confidence": 90.0,
    }
    ended = episode_attributes(Episode(start=10.0, peak=0.9, end=40.0), started, now=41.0)
    assert ended["episode_duration_s"] == 30.0


def test_percent_payloads():
    assert percent(0.85) == "85"
    assert percent(0.7345) == "73.5"
    assert percent(0.0) == "0"


def test_the_last_episode_is_an_image_and_the_night_keeps_statistics():
    entities = by_component(payloads())
    image = entities["image/last_episode"]
    assert image["default_entity_id"] == "image.baby_last_episode"
    assert image["image_topic"] == "cry_mqtt/nursery/last_episode"
    assert image["content_type"] == "image/png" and "state_topic" not in image
    night = {key.split("/")[1]: p for key, p in entities.items() if key.endswith("_tonight")}
    assert night["episodes_tonight"]["state_class"] == "total_increasing"
    assert night["crying_minutes_tonight"]["state_class"] == "total_increasing"
    assert night["longest_episode_tonight"]["state_class"] == "measurement"
    for key in ("crying_minutes_tonight", "longest_episode_tonight"):
        assert night[key]["unit_of_measurement"] == "min"
        assert night[key]["device_class"] == "duration"
    test = entities["button/test"]
    assert test["command_topic"] == "cry_mqtt/nursery/test/set" and "state_topic" not in test
    assert (
        test["payload_press"] == "PRESS" and test["default_entity_id"] == "button.baby_test_monitor"
    )
    recording = entities["switch/recording"]
    assert recording["command_topic"] == "cry_mqtt/nursery/recording/set"
    assert recording["default_entity_id"] == "switch.baby_cry_recording"
