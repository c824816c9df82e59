"""The agent against a real Home Assistant (2024.3.3, the last release for Python 3.11, in its own
virtual environment: ``tests/homeassistant-requirements.txt``), its MQTT integration pointed at the
test's broker: the entities appear, crying turns the sensor on and off, the last episode's picture
is served by Home Assistant, the buttons and the sensitivity select reach the agent, and
the night's sensors carry the state class that makes Home Assistant keep their statistics.

Home Assistant's states come back over MQTT (its ``mqtt_statestream`` integration), so the test
needs no login to read them; the button is pressed by an automation the test triggers over MQTT.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support import (
    BASE,
    REPO,
    Subscriber,
    agent,
    build_learning_model,
    cry_like,
    feed,
    free_port,
    quiet_noise,
    stop_agent,
    write_config,
)

REQUIRE_HA_ENV = "CRY_MQTT_REQUIRE_HOMEASSISTANT"
"""Set (to 1) by ``.ci/run``, which installs Home Assistant: there a missing one fails."""
HASS = Path(os.environ.get("CRY_MQTT_HASS", REPO / ".venv-ha" / "bin" / "hass"))
STATES = "hass_states"
PRESS_TOPIC = "test/press_the_test_button"
NOT_CRYING_TOPIC = "test/press_not_crying"
NOISY_TOPIC = "test/choose_a_noisy_room"
CONFIGURATION = """
homeassistant:
  name: Nursery test
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {http_port}
recorder:
  db_url: sqlite:///{folder}/home-assistant.db
  commit_interval: 1
mqtt_statestream:
  base_topic: {states}
  publish_attributes: true
automation:
  - alias: Press the test button
    trigger:
      platform: mqtt
      topic: {press}
    action:
      service: button.press
      target:
        entity_id: button.baby_test_monitor
  - alias: That was not crying
    trigger:
      platform: mqtt
      topic: {not_crying}
    action:
      service: button.press
      target:
        entity_id: button.baby_not_crying
  - alias: A noisy room
    trigger:
      platform: mqtt
      topic: {noisy}
    action:
      service: select.select_option
      target:
        entity_id: select.baby_cry_sensitivity
      data:
        option: Noisy room
logger:
  default: warning
"""


def mqtt_entry(port: int) -> dict:
    """Home Assistant's stored config entry of the MQTT integration, pointed at ``port``."""
    entry = {
        "entry_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
        "version": 1,
        "minor_version": 1,
        "domain": "mqtt",
        "title": "127.0.0.1",
        "data": {"broker": "127.0.0.1", "port": port, "discovery": True},
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "unique_id": None,
        "disabled_by": None,
    }
    return {"version": 1, "minor_version": 1, "key": "core.config_entries",
            "data": {"entries": [entry]}}  # fmt: skip


@pytest.fixture
def home_assistant(tmp_path: Path, broker) -> Iterator[int]:
    """A Home Assistant on the test's broker; its HTTP port."""
    if not HASS.is_file():
        message = f"needs Home Assistant at {HASS} (.ci/run installs it)"
        if os.environ.get(REQUIRE_HA_ENV):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path / "homeassistant"
    (folder / ".storage").mkdir(parents=True)
    http_port = free_port()
    (folder / "configuration.yaml").write_text(
        CONFIGURATION.format(
            http_port=http_port,
            folder=folder,
            states=STATES,
            press=PRESS_TOPIC,
            not_crying=NOT_CRYING_TOPIC,
            noisy=NOISY_TOPIC,
        )
    )
    (folder / ".storage" / "core.config_entries").write_text(json.dumps(mqtt_entry(broker.port)))
    births = Subscriber(broker.port)
    log = (tmp_path / "home-assistant.log").open("w")
    hass = subprocess.Popen(
        [str(HASS), "-c", str(folder), "--skip-pip"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        # Home Assistant's birth message: its MQTT integration is connected and subscribed.
        births.wait_for(
            lambda m: m.topic == "homeassistant/status" and m.payload == "online", timeout=120
        )
        yield http_port
    finally:
        births.close()
        hass.terminate()
        try:
            hass.wait(30)
        except subprocess.TimeoutExpired:
            hass.kill()
        log.close()


def ha_state(sub: Subscriber, entity: str, key: str = "state") -> list[str]:
    """What Home Assistant published of ``entity`` (``binary_sensor.baby_crying``): its states,
    or one attribute's values (JSON)."""
    domain, name = entity.split(".")
    return sub.payloads(f"{STATES}/{domain}/{name}/{key}")


def test_a_real_home_assistant_shows_hears_and_presses(
    tmp_path, broker, subscriber, home_assistant
):
    model = build_learning_model(tmp_path / "learning.onnx")  # a model that learns "not crying"
    config = write_config(
        tmp_path, broker.port, model, f"record: {{folder: {tmp_path / 'episodes'}}}\n"
    )
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(6))
        subscriber.wait_for(
            lambda m: ha_state(subscriber, "sensor.baby_episodes_tonight")[-1:] == ["0"],
            timeout=60,
        )
        # Crying: the sensor turns on and off in Home Assistant, the night counts it.
        feed(run, np.concatenate([cry_like(15), quiet_noise(25)]))
        subscriber.wait_for(lambda m: "on" in ha_state(subscriber, "binary_sensor.baby_crying"))
        subscriber.wait_for(
            lambda m: ha_state(subscriber, "sensor.baby_episodes_tonight")[-1:] == ["1"],
            timeout=40,
        )
        assert ha_state(subscriber, "binary_sensor.baby_crying")[-1] == "off"
        clip = json.loads(ha_state(subscriber, "binary_sensor.baby_crying", "clip")[-1])
        assert (tmp_path / "episodes" / clip).is_file()

        # The picture, as Home Assistant serves it to a dashboard or a notification.
        picture = [m.raw for m in subscriber.messages if m.topic == f"{BASE}/last_episode"][-1]
        token = json.loads(ha_state(subscriber, "image.baby_last_episode", "access_token")[-1])
        url = f"http://127.0.0.1:{home_assistant}/api/image_proxy/image.baby_last_episode"
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"{url}?token={token}", timeout=10) as answer:
                served = answer.read()
                assert answer.headers["Content-Type"] == "image/png"
            if served == picture or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert served == picture

        # "That was not crying", pressed in Home Assistant: the agent remembers the episode.
        subscriber.publish(NOT_CRYING_TOPIC, "press")
        feed(run, quiet_noise(2))
        remembered = "false_alarms_remembered"
        subscriber.wait_for(
            lambda m: ha_state(subscriber, "button.baby_not_crying", remembered)[-1:] == ["1"]
        )

        # The sensitivity, chosen in Home Assistant: the agent takes the preset's threshold.
        assert ha_state(subscriber, "select.baby_cry_sensitivity")[-1] == "Balanced"
        subscriber.publish(NOISY_TOPIC, "choose")
        feed(run, quiet_noise(2))
        subscriber.wait_for(
            lambda m: ha_state(subscriber, "number.baby_cry_threshold")[-1:] in (["90"], ["90.0"])
        )
        assert ha_state(subscriber, "select.baby_cry_sensitivity")[-1] == "Noisy room"

        # "Test the monitor", pressed in Home Assistant, reaches the agent and comes back ON.
        subscriber.publish(PRESS_TOPIC, "press")
        feed(run, quiet_noise(12))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/test/set" and m.payload == "PRESS")
        subscriber.wait_for(
            lambda m: "true" in ha_state(subscriber, "binary_sensor.baby_crying", "test")
        )
    finally:
        stop_agent(run)
    assert ha_state(subscriber, "binary_sensor.baby_crying")[-1] in ("on", "off", "unavailable")

    # The night's numbers keep statistics: Home Assistant has their state classes and units.
    for entity, state_class, unit in (
        ("sensor.baby_episodes_tonight", "total_increasing", None),
        ("sensor.baby_crying_minutes_tonight", "total_increasing", "min"),
        ("sensor.baby_longest_episode_tonight", "measurement", "min"),
    ):
        assert json.loads(ha_state(subscriber, entity, "state_class")[-1]) == state_class
        units = ha_state(subscriber, entity, "unit_of_measurement")
        assert (json.loads(units[-1]) if units else None) == unit
