"""The agent end to end against a real Mosquitto broker started by each test."""

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import Broker, Subscriber, cry_like, free_port, quiet_noise, write_wav

from cry_mqtt.mqtt import Throttle

DISCOVERY = "homeassistant/{}/cry_mqtt_nursery/{}/config"
BASE = "cry_mqtt/nursery"


def write_config(tmp_path: Path, port: int, model: Path | None, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    model_line = f"model: {{path: {model}}}\n" if model else ""
    path.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {port}}}\n"
        f"state_file: {tmp_path / 'state.json'}\n{model_line}{extra}"
    )
    return path


def agent(config: Path, *args: str, stdin=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cry_mqtt", "--config", str(config), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=stdin is None,
    )


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def states(sub: Subscriber, key: str) -> list[str]:
    return sub.payloads(f"{BASE}/{key}")


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


def assert_no_audio_leaves(subscriber: Subscriber) -> None:
    """Privacy: every payload is a state word, a number, or a small JSON object of known keys."""
    allowed_json = {
        "model_version",
        "episode_start",
        "episode_duration_s",
        "peak_confidence",
        "error",
        "windows_at_threshold",
        "windows_needed",
        "of_windows",
        "threshold",
        "rule",
        "meaning",
    }
    for message in subscriber.messages:
        payload = message.payload
        if message.topic.endswith("/set") or message.topic == "homeassistant/status":
            continue  # sent by the test, playing Home Assistant
        assert message.topic.startswith((f"{BASE}/", "homeassistant/")), message.topic
        if message.topic.startswith("homeassistant/"):
            assert len(payload) < 2000 and "state_topic" in json.loads(payload)
        elif payload in ("ON", "OFF", "online", "offline"):
            continue
        elif payload.startswith("{"):
            assert set(json.loads(payload)) <= allowed_json, payload
        else:
            assert len(payload) <= 6 and np.isfinite(float(payload)), payload


def test_live_commands_pause_and_shutdown(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    run.stdin.write(s16(quiet_noise(8)))
    run.stdin.flush()
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
    assert json.loads((tmp_path / "state.json").read_text()) == {"threshold": 0.8, "paused": True}

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
    run.stdin.write(s16(cry_like(12)))
    run.stdin.flush()
    time.sleep(3)
    assert "ON" not in states(subscriber, "crying")

    stopped = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=10)
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


CRY_THEN_QUIET = """
import os, sys, time
import numpy as np
t = np.arange(16000 * 12) / 16000
cry = 0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 1.5) < 1.2)
quiet = np.random.default_rng(0).normal(0, 0.003, 16000 * 3)
os.write(1, (np.concatenate([quiet, cry]) * 32767).astype("<i2").tobytes())
while True:
    os.write(1, (quiet[:1600] * 32767).astype("<i2").tobytes())
    time.sleep(0.1)
"""


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
            run.send_signal(signal.SIGTERM)
            run.communicate(timeout=10)
            broker.stop()
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0


@pytest.fixture
def secured_broker(tmp_path):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "parent", "right"], check=True)
    broker = Broker(tmp_path, extra_config=f"password_file {passwords}\n", anonymous=False)
    broker.start()
    yield broker
    broker.stop()


def test_refused_credentials_exit_1_with_one_line(tmp_path, secured_broker, fixture_model):
    extra = "mqtt: {host: 127.0.0.1, port: %d, username: parent, password: wrong}\n"
    config = tmp_path / "bad.yaml"
    config.write_text(f"model: {{path: {fixture_model}}}\n" + extra % secured_broker.port)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    run.stdin.write(s16(quiet_noise(2)))
    run.stdin.flush()
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("cry-mqtt: MQTT broker refused the credentials")
    assert "wrong" not in err.decode()
    assert "check mqtt.username and the password" in err.decode()
    assert "Unspecified error" not in err.decode() and "reconnecting" not in err.decode()


def test_check_command(tmp_path, secured_broker, fixture_model):
    good = tmp_path / "good.yaml"
    good.write_text(
        f"model: {{path: {fixture_model}}}\n"
        f"audio: {{source: command, command: [{sys.executable}]}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {secured_broker.port}, username: parent}}\n"
    )
    ok = subprocess.run(
        [sys.executable, "-m", "cry_mqtt", "check", "--config", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"CRY_MQTT_PASSWORD": "right", "PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "mqtt: ok" in ok.stdout and "model: ok" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "cry_mqtt", "check", "--config", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"CRY_MQTT_PASSWORD": "wrong", "PATH": "/usr/bin:/bin"},
    )
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
    assert err.strip().count("\n") == 0 and "no input device 'no-such-mic'" in err
    assert "`cry-mqtt devices` lists the inputs" in err and "--input FILE" in err


def test_after_a_broker_restart_the_current_state_comes_back_not_a_backlog(
    tmp_path, fixture_model, record_property
):
    first = Broker(tmp_path).start()
    port = first.port
    run = agent(
        write_config(tmp_path, port, fixture_model),
        "--input",
        "-",
        "--fast",
        stdin=subprocess.PIPE,
    )
    try:
        sub = Subscriber(port)
        run.stdin.write(s16(quiet_noise(8)))
        run.stdin.flush()
        sub.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        sub.close()
        first.stop()  # retained messages are gone with it (no persistence)

        # While the broker is away the baby cries: many windows, many confidence values.
        run.stdin.write(s16(cry_like(30)))
        run.stdin.flush()
        time.sleep(1)
        second = Broker(tmp_path, port=port).start()
        back = time.monotonic()
        late = Subscriber(port)
        try:
            late.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON", timeout=10)
            late.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
            late.wait_for(lambda m: m.topic == DISCOVERY.format("binary_sensor", "crying"))
            record_property("recovery_s", round(time.monotonic() - back, 2))
            assert time.monotonic() - back < 5.0  # with the default reconnect back-off
            time.sleep(1)
            assert late.payloads(f"{BASE}/crying") == ["ON"]
            assert len(late.payloads(f"{BASE}/confidence")) == 1
        finally:
            late.close()
            run.communicate(timeout=10)
            second.stop()
    finally:
        if run.poll() is None:
            run.kill()


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
        assert subscriber.payloads(f"cry_mqtt/{room}/crying") == ["OFF", "ON", "OFF"]
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
    passwords = tmp_path / "passwd"

    def broker_with_password(password: str, port: int = 0) -> Broker:
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "parent", password])
        extra = f"password_file {passwords}\n"  # anonymous allowed: the test's own subscriber
        return Broker(tmp_path, port=port, extra_config=extra).start()

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
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=10)
        broker.stop()
    assert run.returncode == 0, err
    refused = "MQTT broker refused the credentials: Not authorized (check mqtt.username and the"
    assert err.count(refused) == 1, err  # then at most once a minute
    assert err.count("connected to MQTT broker") == 2 and "right" not in err


def test_throttle_lets_a_burst_through_then_counts(caplog):
    warn = Throttle("bad things", logging.WARNING, burst=2, period=0.5)
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
