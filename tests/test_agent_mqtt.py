"""The agent end to end against a real Mosquitto broker started by each test."""

import json
import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from support import (
    BASE,
    CRY_THEN_QUIET,
    DISCOVERY,
    Broker,
    Subscriber,
    agent,
    assert_no_audio_leaves,
    cry_like,
    feed,
    free_port,
    quiet_noise,
    run_agent,
    states,
    stop_agent,
    write_config,
    write_wav,
)

from cry_mqtt.config import load_config
from cry_mqtt.mqtt import MqttLink
from cry_mqtt.throttle import Throttle


def test_recording_with_crying_end_to_end(tmp_path, broker, subscriber, fixture_model):
    audio = np.concatenate([quiet_noise(10), cry_like(20), quiet_noise(30)])
    wav = write_wav(tmp_path / "night.wav", audio)
    run = agent(write_config(tmp_path, broker.port, fixture_model), "--input", str(wav), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err

    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    for component, key in [
        ("binary_sensor", "crying"),
        ("sensor", "confidence"),
        ("sensor", "sound_level"),
        ("number", "threshold"),
        ("switch", "paused"),
        ("binary_sensor", "audio_problem"),
    ]:
        config = json.loads(subscriber.payloads(DISCOVERY.format(component, key))[0])
        assert config["unique_id"] == f"cry_mqtt_nursery_{key}"
        assert config["availability"][0]["topic"] == f"{BASE}/availability"
        assert config["state_topic"] == f"{BASE}/{key}"
    assert states(subscriber, "availability") == ["online", "offline"]
    assert states(subscriber, "crying") == ["OFF", "ON", "OFF"]
    attributes = [json.loads(p) for p in states(subscriber, "crying/attributes")]
    assert attributes[-1]["peak_confidence"] > 90
    assert 10 <= attributes[-1]["episode_duration_s"] <= 40
    assert max(float(p) for p in states(subscriber, "confidence")) > 90
    assert min(float(p) for p in states(subscriber, "sound_level")) < -45
    assert states(subscriber, "threshold") == ["50"]
    assert_no_audio_leaves(subscriber)


def test_live_commands_pause_and_shutdown(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    feed(run, quiet_noise(8))
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")

    subscriber.publish(f"{BASE}/threshold/set", "80")
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/threshold" and m.payload == "80")
    for bad in ["abc", "250", "", "1e999"]:
        subscriber.publish(f"{BASE}/threshold/set", bad)
    subscriber.publish(f"{BASE}/paused/set", "SIDEWAYS")
    subscriber.publish(f"{BASE}/paused/set", "ON")
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/paused" and m.payload == "ON")
    assert states(subscriber, "threshold") == ["50", "80"]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved == {"threshold": 0.8, "paused": True, "recording": True}

    # Home Assistant restarts: configs and states come again.
    before = len(subscriber.payloads(DISCOVERY.format("binary_sensor", "crying")))
    restarted = time.monotonic()
    subscriber.publish("homeassistant/status", "online")
    subscriber.wait_for(
        lambda m: len(subscriber.payloads(DISCOVERY.format("binary_sensor", "crying"))) > before,
        timeout=10,
    )
    record_property("reannounce_s", round(time.monotonic() - restarted, 2))

    # Paused: a loud cry does not turn the sensor on.
    feed(run, cry_like(12))
    time.sleep(3)
    assert "ON" not in states(subscriber, "crying")

    stopped = time.monotonic()
    err = stop_agent(run)
    record_property("sigterm_exit_s", round(time.monotonic() - stopped, 2))
    assert time.monotonic() - stopped < 2.0
    assert run.returncode == 0
    assert states(subscriber, "availability")[-1] == "offline"
    assert "rejected MQTT command" in err.decode()
    assert_no_audio_leaves(subscriber)
    assert err.decode().count("rejected MQTT command") == 5

    # Settings survive a restart.
    again = Subscriber(broker.port)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        again.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
        again.wait_for(lambda m: m.topic == f"{BASE}/threshold" and m.payload == "80")
        again.wait_for(lambda m: m.topic == f"{BASE}/paused" and m.payload == "ON")
    finally:
        run.communicate(timeout=10)
        again.close()


def test_broker_down_at_start(tmp_path, fixture_model, record_property):
    """The agent keeps listening while the broker is away and reports the present once it is up."""
    script = tmp_path / "mic.py"
    script.write_text(CRY_THEN_QUIET)
    port = free_port()
    extra = f"audio: {{source: command, command: [{sys.executable}, {script}]}}\n"
    run = agent(write_config(tmp_path, port, fixture_model, extra))
    try:
        time.sleep(3)  # the crying is detected meanwhile, with nobody to tell
        assert run.poll() is None
        broker = Broker(tmp_path, port=port).start()
        up = time.monotonic()
        sub = Subscriber(port)
        try:
            sub.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
            sub.wait_for(lambda m: m.topic == DISCOVERY.format("binary_sensor", "crying"))
            sub.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
            record_property("recovery_s", round(time.monotonic() - up, 2))
            assert time.monotonic() - up < 5.0
        finally:
            sub.close()
            stop_agent(run)
            broker.stop()
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0


@pytest.fixture
def secured_broker(tmp_path):
    broker = Broker(tmp_path, anonymous=False, users={"parent": "right"}).start()
    yield broker
    broker.stop()


def test_refused_credentials_exit_1_with_one_line(tmp_path, secured_broker, fixture_model):
    extra = "mqtt: {host: 127.0.0.1, port: %d, username: parent, password: wrong}\n"
    config = tmp_path / "bad.yaml"
    config.write_text(f"model: {{path: {fixture_model}}}\n" + extra % secured_broker.port)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    feed(run, quiet_noise(2))
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("cry-mqtt: MQTT broker refused the credentials")
    assert "wrong" not in err.decode()
    assert "check mqtt.username and the password; the password: mqtt.password" in err.decode()
    assert "Unspecified error" not in err.decode() and "reconnecting" not in err.decode()


def test_a_refused_password_says_where_it_came_from(tmp_path, secured_broker, fixture_model):
    """A stale CRY_MQTT_PASSWORD wins over the right password in the file: the refusal says so."""
    extra = "mqtt: {host: 127.0.0.1, port: %d, username: parent, password: right}\n"
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {{path: {fixture_model}}}\n" + extra % secured_broker.port)
    env = {**os.environ, "CRY_MQTT_PASSWORD": "stale"}
    run = agent(config, "--input", "-", stdin=subprocess.PIPE, env=env)
    feed(run, quiet_noise(2))
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1
    assert (
        "the password: the CRY_MQTT_PASSWORD environment variable, which wins over mqtt.password"
    ) in err.decode()


def test_check_command(tmp_path, secured_broker, fixture_model):
    good = tmp_path / "good.yaml"
    good.write_text(
        f"model: {{path: {fixture_model}}}\n"
        f"audio: {{source: command, command: [{sys.executable}]}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {secured_broker.port}, username: parent}}\n"
    )

    def check(password: str) -> subprocess.CompletedProcess:
        env = {"CRY_MQTT_PASSWORD": password, "PATH": "/usr/bin:/bin"}
        return run_agent(good, "check", env=env, timeout=30)

    ok = check("right")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "mqtt: ok" in ok.stdout and "model: ok" in ok.stdout
    assert "test: ok (the test recording of crying turned crying on at threshold 0.5" in ok.stdout
    bad = check("wrong")
    assert bad.returncode == 1
    assert "mqtt: FAILED: broker refused the connection" in bad.stdout
    assert "wrong" not in bad.stdout + bad.stderr


def test_missing_model_is_one_line_and_exit_1(tmp_path, broker):
    config = write_config(tmp_path, broker.port, tmp_path / "absent.onnx")
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    _, err = run.communicate(b"", timeout=30)
    assert run.returncode == 1
    assert err.decode().strip() == f"cry-mqtt: model file not found: {tmp_path / 'absent.onnx'}"


def test_missing_microphone_is_one_line_and_exit_1(tmp_path, broker, fixture_model):
    config = write_config(tmp_path, broker.port, fixture_model, "audio: {device: no-such-mic}\n")
    run = agent(config)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1
    assert err.strip().count("\n") == 0 and "no input device matching 'no-such-mic'" in err
    assert "`cry-mqtt devices` lists the inputs" in err and "--input FILE" in err


def test_two_rooms_on_one_broker_do_not_collide(tmp_path, broker, subscriber, fixture_model):
    wav = write_wav(tmp_path / "cry.wav", np.concatenate([cry_like(10), quiet_noise(4)]))
    runs = []
    for room in ("nursery", "bedroom"):
        folder = tmp_path / room
        folder.mkdir()
        extra = f"device: {{instance_id: {room}, entity_prefix: {room}}}\n"
        config = write_config(folder, broker.port, fixture_model, extra)
        runs.append(agent(config, "--input", str(wav)))  # real time: both connected at once
    for run in runs:
        _, err = run.communicate(timeout=90)
        assert run.returncode == 0, err
        assert "disconnected" not in err
    for room in ("nursery", "bedroom"):
        assert subscriber.payloads(f"cry_mqtt/{room}/availability") == ["online", "offline"]
        crying = subscriber.payloads(f"cry_mqtt/{room}/crying")
        assert [state for state in crying if state] == ["OFF", "ON", "OFF"]
        crying = json.loads(
            subscriber.payloads(f"homeassistant/binary_sensor/cry_mqtt_{room}/crying/config")[0]
        )
        assert crying["default_entity_id"] == f"binary_sensor.{room}_crying"


def test_entities_explain_a_high_confidence_while_crying_stays_off(
    tmp_path, broker, subscriber, fixture_model
):
    extra = "detection: {trigger_windows: 20, of_windows: 20}\n"  # more than a 10-s cry gives
    config = write_config(tmp_path, broker.port, fixture_model, extra)
    config.write_text(config.read_text().replace("mqtt: {", "mqtt: {telemetry_seconds: 1, ", 1))
    burst = np.concatenate([quiet_noise(8), cry_like(10), quiet_noise(8)])
    wav = write_wav(tmp_path / "burst.wav", burst)
    run = agent(config, "--input", str(wav), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert states(subscriber, "crying") == ["OFF"]
    assert max(float(p) for p in states(subscriber, "confidence")) > 90
    attributes = [json.loads(p) for p in states(subscriber, "confidence/attributes")]
    agreed = max(a["windows_at_threshold"] for a in attributes)
    assert 1 <= agreed < 20
    last = attributes[-1]
    assert last["windows_needed"] == 20 and last["of_windows"] == 20 and last["threshold"] == 50
    assert (
        last["rule"] == "on when 20 of the last 20 windows reach 50 %, off after 10 s without one"
    )
    assert last["meaning"].startswith(
        "highest chance of crying in any 7-s window over the last 1 s"
    )
    crying = json.loads(states(subscriber, "crying/attributes")[-1])
    assert crying["rule"] == last["rule"] and "windows_at_threshold" in crying


def test_refused_credentials_after_a_broker_restart_are_retried(tmp_path, fixture_model):
    """A live agent outlasts a broker that comes back refusing its password (say, a password file
    being edited): it retries with back-off, says why, and reconnects once the password works."""

    def broker_with_password(password: str, port: int = 0) -> Broker:
        # Anonymous logins allowed: the test's own subscriber.
        return Broker(tmp_path, port=port, users={"parent": password}).start()

    broker = broker_with_password("right")
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    extra = f"audio: {{source: command, command: [{sys.executable}, {mic}]}}\n"
    config = write_config(tmp_path, broker.port, fixture_model, extra)
    config.write_text(
        config.read_text().replace("mqtt: {", "mqtt: {username: parent, password: right, ", 1)
    )
    run = agent(config)
    try:
        sub = Subscriber(broker.port)
        sub.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
        sub.close()
        broker.stop()
        broker = broker_with_password("changed", broker.port)
        time.sleep(6)  # several refused attempts
        assert run.poll() is None
        broker.stop()
        broker = broker_with_password("right", broker.port)
        back = Subscriber(broker.port)
        try:
            back.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
            back.wait_for(lambda m: m.topic == f"{BASE}/crying")
        finally:
            back.close()
    finally:
        err = stop_agent(run)
        broker.stop()
    assert run.returncode == 0, err
    refused = "MQTT broker refused the credentials: Not authorized (check mqtt.username and the"
    assert err.count(refused) == 1, err  # then at most once a minute
    assert err.count("connected to MQTT broker") == 2 and "right" not in err


def test_throttle_lets_a_burst_through_then_counts(caplog):
    warn = Throttle(
        logging.getLogger("cry_mqtt.test"), "bad things", logging.WARNING, burst=2, period=0.5
    )
    with caplog.at_level(logging.WARNING, logger="cry_mqtt"):
        for i in range(5):
            warn("bad thing %d", i)
        time.sleep(0.6)
        warn("bad thing %d", 5)
    assert caplog.messages == [
        "bad thing 0",
        "bad thing 1",
        "3 more bad things not logged",
        "bad thing 5",
    ]


def test_an_announcement_never_overwrites_a_newer_state(tmp_path, broker, subscriber):
    """Home Assistant's ``online`` makes another thread announce every state while the audio
    loop changes them: the broker must see each topic's values in the order they were set."""
    link = MqttLink(load_config(write_config(tmp_path, broker.port, None)), None, {}, print)
    link.start()
    assert link.wait_for_broker(10)
    topic = f"{BASE}/confidence"
    announcing = threading.Event()
    announcing.set()

    def announce() -> None:
        while announcing.is_set():
            link.announce()

    announcer = threading.Thread(target=announce)
    announcer.start()
    try:
        for value in range(300):
            link.publish_state(topic, str(value))
    finally:
        announcing.clear()
        announcer.join()
    subscriber.wait_for(lambda m: m.topic == topic and m.payload == "299")
    time.sleep(0.5)
    link.stop()
    values = [int(v) for v in subscriber.payloads(topic)]
    assert values == sorted(values) and values[-1] == 299


def test_an_episode_under_way_says_how_long_and_a_pause_says_why_it_ended(
    tmp_path, broker, subscriber, fixture_model
):
    run = agent(
        write_config(tmp_path, broker.port, fixture_model),
        "--input",
        "-",
        "--fast",
        stdin=subprocess.PIPE,
    )
    try:
        feed(run, np.concatenate([quiet_noise(2), cry_like(30)]))
        subscriber.wait_for(
            lambda m: (
                m.topic == f"{BASE}/crying/attributes"
                and json.loads(m.payload).get("episode_duration_s", 0) >= 10
                and states(subscriber, "crying")[-1:] == ["ON"]  # still crying
            )
        )
        subscriber.publish(f"{BASE}/paused/set", "ON")
        deadline = time.monotonic() + 20
        while states(subscriber, "crying")[-1:] != ["OFF"]:  # a block applies it, once it came
            assert time.monotonic() < deadline, "the pause never ended the episode"
            feed(run, quiet_noise(0.1))
            time.sleep(0.1)
    finally:
        _, err = run.communicate(timeout=20)
    assert "crying stopped after " in err.decode() and " s (detection paused)" in err.decode()
