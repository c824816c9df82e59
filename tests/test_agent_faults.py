"""Faults a monitor must survive, each against a real Mosquitto started by the test."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from support import (
    BASE,
    CRY_THEN_QUIET,
    DISCOVERY,
    RATE,
    Broker,
    Proxy,
    Subscriber,
    agent,
    assert_no_audio_leaves,
    changes,
    cry_like,
    feed,
    free_port,
    paced_command,
    quiet_noise,
    run_agent,
    s16,
    states,
    stop_agent,
    write_config,
    write_wav,
)

from cry_mqtt.mqtt import TAKEOVERS

FLAKY_CAMERA = textwrap.dedent(
    """
    # An ffmpeg stand-in: run 1 cries then dies, run 2 stalls, run 3 streams quietly.
    import os, pathlib, sys, time
    import numpy as np
    count = pathlib.Path(sys.argv[1])
    run = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(run))
    t = np.arange(16000 * 12) / 16000
    cry = (0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 1.5) < 1.2) * 32767).astype("<i2")
    quiet = (np.random.default_rng(0).normal(0, 100, 1600)).astype("<i2")
    if run == 1:
        os.write(1, cry.tobytes())
        sys.exit(1)
    if run == 2:
        os.write(1, quiet.tobytes())
        time.sleep(600)
    while True:
        os.write(1, quiet.tobytes())
        time.sleep(0.1)
    """
)


def test_audio_source_failure_is_reported_and_recovered(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    script = tmp_path / "camera.py"
    script.write_text(FLAKY_CAMERA)
    extra = (
        f"audio: {{source: command, command: [{sys.executable}, {script}, {tmp_path / 'runs'}],"
        " stall_seconds: 2, restart_max_seconds: 2}\n"
        f"heartbeat_file: {tmp_path / 'heartbeat'}\n"
    )
    run = agent(write_config(tmp_path, broker.port, fixture_model, extra))
    try:
        problem = f"{BASE}/audio_problem"
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
        subscriber.wait_for(lambda m: m.topic == problem and m.payload == "ON", timeout=10)
        failed = time.monotonic()
        subscriber.wait_for(
            lambda m: _then(states(subscriber, "audio_problem"), "ON", "OFF"), timeout=40
        )
        assert (tmp_path / "runs").read_text() == "3"
        # Two failures (exit, then a 2-s stall), back-offs of 1 s and 2 s, 20 s of streaming.
        record_property("recovery_s", round(time.monotonic() - failed, 2))
        # The problem was raised before crying went OFF: Home Assistant shows crying
        # unavailable, never a "not crying" that nobody hears, and never a stale ON.
        sequence = [
            (m.topic.rsplit("/", 1)[1], m.payload)
            for m in subscriber.messages
            if m.topic in (f"{BASE}/crying", problem)
        ]
        after = sequence[sequence.index(("crying", "ON")) + 1 :]
        assert after[:2] == [("audio_problem", "ON"), ("crying", "OFF")]
        errors = [json.loads(p)["error"] for p in subscriber.payloads(f"{problem}/attributes")]
        assert any("exited with status 1" in (e or "") for e in errors)
        assert any("sent nothing for 2 s (audio.stall_seconds)" in (e or "") for e in errors)
        assert time.time() - os.path.getmtime(tmp_path / "heartbeat") < 10
    finally:
        err = stop_agent(run)
    assert run.returncode == 0, err
    assert str(tmp_path / "runs") not in err  # command arguments (camera passwords) stay private
    assert_no_audio_leaves(subscriber)


def test_states_are_refreshed_for_expire_after(tmp_path, broker, subscriber, fixture_model):
    """The states are published again every period, whatever else fails (here the heartbeat
    file, every 5 s, which is logged once a minute)."""
    extra = (
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, state_refresh_seconds: 5}}\n"
        f"heartbeat_file: {tmp_path / 'no such folder' / 'heartbeat'}\n"
    )
    config = write_config(tmp_path, broker.port, fixture_model)
    config.write_text(config.read_text().split("\n", 1)[1] + extra)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        for _ in range(12):
            feed(run, quiet_noise(1))
            time.sleep(1)
        crying_config = json.loads(
            subscriber.payloads(DISCOVERY.format("binary_sensor", "crying"))[0]
        )
        assert crying_config["expire_after"] == 15
        assert len(states(subscriber, "crying")) >= 3  # first publish and two refreshes
    finally:
        _, err = run.communicate(timeout=10)
    assert err.decode().count("cannot touch heartbeat file") == 1


def test_sigint_goes_offline_within_two_seconds(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    run = agent(
        write_config(tmp_path, broker.port, fixture_model), "--input", "-", stdin=subprocess.PIPE
    )
    feed(run, quiet_noise(2))
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
    start = time.monotonic()
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=5)
    record_property("exit_s", round(time.monotonic() - start, 2))
    assert time.monotonic() - start < 2.0
    assert run.returncode == 0
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")


def test_a_stop_signal_is_raised_only_where_that_is_safe():
    """A signal that lands in plain code is only recorded: raised there, inside the import of
    soxr's extension module on the first audio block, it crashed the agent (SIGSEGV)."""
    script = textwrap.dedent(
        """
        import signal
        from cry_mqtt.stopping import Shutdown, install, interruptible
        install([signal.SIGHUP])
        signal.raise_signal(signal.SIGHUP)
        print("went on", flush=True)
        try:
            with interruptible():  # the next blocking read
                pass
        except Shutdown as stop:
            print("stopped:", stop)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (run.returncode, run.stdout) == (0, "went on\nstopped: SIGHUP\n"), run.stderr


def test_invalid_samples_are_repaired_not_fatal(tmp_path, broker, subscriber, fixture_model):
    audio = quiet_noise(20).astype(np.float64)
    audio[16000:20000] = np.nan
    audio[40000:41000] = np.inf
    audio[60000:90000] = 4.0  # far beyond full scale
    audio[100000:200000] = 0.0  # digital silence
    path = tmp_path / "broken.wav"
    soundfile.write(str(path), audio, 16000, subtype="DOUBLE")
    run = agent(write_config(tmp_path, broker.port, fixture_model), "--input", str(path), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "invalid audio samples (NaN, inf or clipped)" in err
    levels = [float(p) for p in states(subscriber, "sound_level")]
    assert levels and all(np.isfinite(levels))


def test_oversize_and_binary_commands_change_nothing(tmp_path, broker, subscriber, fixture_model):
    run = agent(
        write_config(tmp_path, broker.port, fixture_model), "--input", "-", stdin=subprocess.PIPE
    )
    try:
        feed(run, quiet_noise(2))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/threshold")
        subscriber.publish(f"{BASE}/threshold/set", b"7" * 1_000_000)
        subscriber.publish(f"{BASE}/paused/set", bytes(range(256)))
        subscriber.publish(f"{BASE}/threshold/set", "60")
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/threshold" and m.payload == "60")
        assert states(subscriber, "threshold") == ["50", "60"]
        assert states(subscriber, "paused") == ["OFF"]
    finally:
        _, err = run.communicate(timeout=10)
    assert err.decode().count("rejected MQTT command") == 2


def _make_certificates(folder):
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    for name, cn in (("server", "127.0.0.1"), ("client", "cry-mqtt")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        extensions = folder / f"{name}.ext"
        extensions.write_text(f"subjectAltName=IP:{cn}\n" if name == "server" else "")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
            "-extfile",
            str(extensions),
        )


def _tls_broker(tmp_path: Path, require_certificate: bool = False) -> tuple[Broker, int]:
    """A started broker with a plain listener and a TLS one (certificates made in
    ``tmp_path``); returns it and the TLS port."""
    _make_certificates(tmp_path)
    broker = Broker(tmp_path)
    tls_port = free_port()
    broker.extra_config = (
        f"listener {tls_port} 127.0.0.1\ncafile {tmp_path / 'ca.crt'}\n"
        f"certfile {tmp_path / 'server.crt'}\nkeyfile {tmp_path / 'server.key'}\n"
        + ("require_certificate true\n" if require_certificate else "")
    )
    return broker.start(), tls_port


def test_tls_with_client_certificates(tmp_path, fixture_model):
    broker, tls_port = _tls_broker(tmp_path, require_certificate=True)
    sub = Subscriber(broker.port)  # the plain listener, for the test's own eyes
    try:
        config = tmp_path / "tls.yaml"
        config.write_text(
            f"model: {{path: {fixture_model}}}\nstate_file: {tmp_path / 'state.json'}\n"
            f"mqtt: {{host: 127.0.0.1, port: {tls_port}, tls: {{ca_certs: ca.crt, "
            "certfile: client.crt, keyfile: client.key}}\n"
        )
        wav = write_wav(tmp_path / "a.wav", quiet_noise(8))
        run = agent(config, "--input", str(wav), "--fast")
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert sub.payloads(f"{BASE}/availability") == ["online", "offline"]
        # Without the client certificate the broker refuses the handshake.
        config.write_text(
            config.read_text().replace(", certfile: client.crt, keyfile: client.key", "")
        )
        check = run_agent(config, "check", timeout=60)
        assert check.returncode == 1
        assert "mqtt: FAILED" in check.stdout
    finally:
        sub.close()
        broker.stop()


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


@pytest.mark.slow
def test_soak_twelve_hours_of_audio(tmp_path, broker, subscriber, fixture_model, record_property):
    hours = float(os.environ.get("CRY_MQTT_SOAK_HOURS", "12"))
    hour = np.concatenate([quiet_noise(1500), cry_like(60), quiet_noise(2040)])
    hour_bytes = s16(hour)
    run = agent(
        write_config(tmp_path, broker.port, fixture_model),
        "--input",
        "-",
        "--fast",
        stdin=subprocess.PIPE,
    )
    samples: list[tuple[int, int]] = []

    def sample():
        samples.append((_rss_kb(run.pid), len(os.listdir(f"/proc/{run.pid}/task"))))

    try:
        for i in range(int(hours)):
            run.stdin.write(hour_bytes)
            run.stdin.flush()
            if i in (1, int(hours) - 1):
                time.sleep(0.5)
                sample()
        _, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    (rss_early, threads_early), (rss_late, threads_late) = samples
    record_property("rss_mb", [round(rss_early / 1024, 1), round(rss_late / 1024, 1)])
    record_property("threads", [threads_early, threads_late])
    assert rss_late - rss_early < 5 * 1024, (rss_early, rss_late)
    assert threads_late == threads_early
    assert changes(subscriber, "crying").count("ON") == int(hours)


def test_camera_password_never_reaches_the_log_or_the_broker(
    tmp_path, broker, subscriber, fixture_model
):
    script = tmp_path / "ffmpeg.py"  # fails as ffmpeg does, printing its input URL
    script.write_text(
        "import sys\nprint(sys.argv[1] + ': Connection refused', file=sys.stderr)\nsys.exit(1)\n"
    )
    url = "rtsp://parent:hunter2@camera.lan/stream"
    extra = (
        f'audio: {{source: command, command: [{sys.executable}, {script}, "{url}"],'
        " restart_max_seconds: 1}\n"
    )
    run = agent(write_config(tmp_path, broker.port, fixture_model, extra))
    try:
        subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/audio_problem/attributes" and "refused" in m.payload
        )
        time.sleep(2.5)  # two more tries
    finally:
        err = stop_agent(run)
    assert (
        err.count(f"{Path(sys.executable).name}: rtsp://***@camera.lan/stream: Connection refused")
        >= 2
    )
    assert f"audio command {sys.executable} started" in err and "hunter2" not in err
    [error] = {
        json.loads(p)["error"] for p in subscriber.payloads(f"{BASE}/audio_problem/attributes")
    } - {None}
    assert (
        error
        == "audio command exited with status 1: rtsp://***@camera.lan/stream: Connection refused"
    )
    assert not any("hunter2" in m.payload for m in subscriber.messages)


@pytest.fixture
def agent_past_a_broker(tmp_path, fixture_model) -> Iterator[tuple[Broker, subprocess.Popen]]:
    """An agent on standard input (``--fast``) whose first states have reached a broker of the
    test's own: that broker, for the test to stop, freeze or kill, and the agent."""
    broker = Broker(tmp_path).start()
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", "-", "--fast", stdin=subprocess.PIPE)
    try:
        sub = Subscriber(broker.port)
        feed(run, quiet_noise(8))
        sub.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        sub.close()
        yield broker, run
    finally:
        if run.poll() is None:
            run.kill()
        broker.stop()


def test_after_a_broker_restart_the_current_state_comes_back_not_a_backlog(
    tmp_path, agent_past_a_broker, record_property
):
    first, run = agent_past_a_broker
    first.stop()  # retained messages are gone with it (no persistence)

    # While the broker is away the baby cries: many windows, many confidence values.
    feed(run, cry_like(30))
    time.sleep(1)
    second = Broker(tmp_path, port=first.port).start()
    back = time.monotonic()
    late = Subscriber(first.port)
    try:
        late.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON", timeout=10)
        late.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
        late.wait_for(lambda m: m.topic == DISCOVERY.format("binary_sensor", "crying"))
        record_property("recovery_s", round(time.monotonic() - back, 2))
        assert time.monotonic() - back < 5.0  # with the default reconnect back-off
        time.sleep(1)
        assert states(late, "crying") == ["ON"]
        assert len(late.payloads(f"{BASE}/confidence")) == 1
    finally:
        late.close()
        run.communicate(timeout=10)
        second.stop()


def test_a_frozen_then_dead_broker_leaves_no_stale_state(tmp_path, agent_past_a_broker):
    """States published while the broker is frozen are never acknowledged; once a new broker is
    up, it must hold the current state only, not those stale ones replayed after it."""
    first, run = agent_past_a_broker
    first.freeze()
    feed(run, cry_like(20))  # ON, unacknowledged
    time.sleep(2)
    first.kill()
    time.sleep(1)
    feed(run, quiet_noise(20))  # OFF while there is no broker
    time.sleep(1)
    second = Broker(tmp_path, port=first.port).start()
    late = Subscriber(first.port)
    try:
        late.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
        time.sleep(2)  # room for anything paho would still replay
        assert states(late, "crying") == ["OFF"]
        seen = [m.topic for m in late.messages if m.payload]  # an empty one clears, no state
        assert all(seen.count(topic) == 1 for topic in seen), sorted(seen)
        fresh = Subscriber(first.port)  # what Home Assistant finds when it (re)subscribes
        try:
            retained = fresh.wait_for(lambda m: m.topic == f"{BASE}/audio_problem")
            assert (retained.payload, retained.retain) == ("OFF", True)
            time.sleep(0.5)
            assert fresh.payloads(f"{BASE}/crying") == []  # never retained: never stale
        finally:
            fresh.close()
    finally:
        late.close()
        run.communicate(timeout=10)
        second.stop()


def test_any_camera_password_stays_private(
    tmp_path, broker, subscriber, fixture_model, monkeypatch
):
    """A password holding '#', '/' or a space, the broker password in the environment and an
    endless ffmpeg progress line: none reaches the log, the broker or the camera command."""
    monkeypatch.setenv("CRY_MQTT_PASSWORD", "broker-31337")  # inherited by the agent
    script = tmp_path / "ffmpeg.py"
    script.write_text(
        "import os, sys\n"
        "sys.stderr.write('size=1kB time=00:00:01\\r' * 20000)\n"
        "print(sys.argv[1] + ': Connection refused', file=sys.stderr)\n"
        "print('broker-31337' in repr(os.environ), file=open(sys.argv[2], 'w'))\n"
        "sys.exit(1)\n"
    )
    url = "rtsp://admin:S3#c/ret pa55@camera.lan/stream"
    extra = (
        f'audio: {{source: command, command: [{sys.executable}, {script}, "{url}", '
        f"{tmp_path / 'leaked'}], restart_max_seconds: 1}}\n"
    )
    run = agent(write_config(tmp_path, broker.port, fixture_model, extra))
    try:
        subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/audio_problem/attributes" and "refused" in m.payload
        )
    finally:
        err = stop_agent(run)
    assert run.returncode == 0, err
    for secret in ("S3#c", "ret pa55", "S3", "pa55", "broker-31337"):
        assert secret not in err
        assert not any(secret in m.payload for m in subscriber.messages)
    assert "rtsp://***@camera.lan/stream: Connection refused" in err
    assert max(len(line) for line in err.splitlines()) < 600
    assert (tmp_path / "leaked").read_text() == "False\n"
    assert_no_audio_leaves(subscriber)


def _live_agent_log(tmp_path: Path, config: Path, seconds: float = 5.0) -> str:
    """Run a live agent (a camera stand-in) for ``seconds``, stop it; its log."""
    run = agent(config)
    time.sleep(seconds)
    assert run.poll() is None, run.communicate()[1]
    err = stop_agent(run)
    assert run.returncode == 0, err
    return err


@pytest.mark.parametrize(
    "case", ["no broker", "TLS to a plain port", "plain to a TLS port", "unknown CA", "wrong host"]
)
def test_a_live_agent_says_why_it_cannot_connect_at_a_bounded_rate(tmp_path, fixture_model, case):
    broker, tls_port = _tls_broker(tmp_path)
    port = {"no broker": free_port(), "TLS to a plain port": broker.port}.get(case, tls_port)
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    tls = {
        "no broker": "",
        "plain to a TLS port": "",
        "unknown CA": ", tls: {ca_certs: client.crt}",
    }.get(case, ", tls: {ca_certs: ca.crt}")
    host = "localhost" if case == "wrong host" else "127.0.0.1"
    config = write_config(
        tmp_path,
        port,
        fixture_model,
        f"audio: {{source: command, command: [{sys.executable}, {mic}]}}\n",
    )
    config.write_text(
        config.read_text().replace("mqtt: {host: 127.0.0.1", f"mqtt: {{host: {host}{tls}", 1)
    )
    try:
        err = _live_agent_log(tmp_path, config)
    finally:
        broker.stop()
    expected = {
        "no broker": f"cannot reach 127.0.0.1:{port}: Connection refused; retrying",
        "TLS to a plain port": f"cannot reach 127.0.0.1:{port}: the TLS handshake failed (",
        "plain to a TLS port": f"127.0.0.1:{port} closed the connection before answering: a TLS "
        "listener (set mqtt.tls.enabled) or a broker that refuses the agent's last will",
        "unknown CA": f"cannot reach 127.0.0.1:{port}: TLS: the broker's certificate is not "
        "accepted: self-signed certificate in certificate chain (mqtt.tls.ca_certs names the CA",
        "wrong host": f"cannot reach localhost:{port}: TLS: the broker's certificate is not "
        "accepted: Hostname mismatch, certificate is not valid for 'localhost'.",
    }[case]
    assert err.count(expected) == 1, err  # said once, not on every retry
    if case == "TLS to a plain port":
        assert f"is port {port} a TLS listener? (plain MQTT is usually 1883, TLS 8883)" in err
    assert "connected to MQTT broker" not in err


def test_a_hostile_broker_cannot_flood_the_agent(tmp_path, broker, subscriber, fixture_model):
    """Retained commands, thousands of `online` and of bad commands, huge payloads during an
    audio stall: nothing stale is applied, the log stays short and memory stays flat."""
    subscriber.publish(f"{BASE}/threshold/set", "10", retain=True)
    subscriber.publish(f"{BASE}/paused/set", "ON", retain=True)
    run = agent(
        write_config(tmp_path, broker.port, fixture_model), "--input", "-", stdin=subprocess.PIPE
    )
    audio_flows = threading.Event()
    audio_flows.set()

    def live_audio() -> None:  # until the stall
        while audio_flows.is_set():
            feed(run, quiet_noise(0.5))

    feeder = threading.Thread(target=live_audio)
    feeder.start()
    try:
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
        time.sleep(1)
        assert states(subscriber, "threshold") == ["50"] and states(subscriber, "paused") == ["OFF"]

        crying_config = DISCOVERY.format("binary_sensor", "crying")
        before = len(subscriber.payloads(crying_config))
        threads = len(os.listdir(f"/proc/{run.pid}/task"))
        for _ in range(2000):
            subscriber.client.publish("homeassistant/status", "online", qos=1)
        for _ in range(2000):
            subscriber.client.publish(f"{BASE}/threshold/set", "abc", qos=1)
        subscriber.publish(f"{BASE}/threshold/set", "60")
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/threshold" and m.payload == "60")
        assert len(os.listdir(f"/proc/{run.pid}/task")) <= threads + 1
        time.sleep(3.5)  # the longest re-announce delay
        # One pending re-announcement at a time, not one per message (and one thread each).
        assert 1 <= len(subscriber.payloads(crying_config)) - before <= 10

        audio_flows.clear()
        feeder.join()
        time.sleep(2)  # the agent has read what is in the pipe: the audio stalls
        rss = _rss_kb(run.pid)
        for _ in range(10):
            subscriber.publish(f"{BASE}/threshold/set", b"7" * 8_000_000)
        big = [p for p in subscriber.payloads(f"{BASE}/threshold/set") if len(p) > 64]
        assert len(big) == 10  # the agent got them too, at about the same time
        time.sleep(1)
        assert _rss_kb(run.pid) - rss < 40 * 1024
        subscriber.publish(f"{BASE}/threshold/set", "70")  # applied once audio flows again
        feed(run, quiet_noise(2))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/threshold" and m.payload == "70")
    finally:
        _, err = run.communicate(timeout=20)
    err = err.decode()
    assert err.count("rejected MQTT command") == 10, err  # the first ten, then once a minute
    assert "threshold: retained on the broker, ignored" in err
    assert "paused: retained on the broker, ignored" in err
    changes = [
        t
        for i, t in enumerate(states(subscriber, "threshold"))
        if t not in states(subscriber, "threshold")[:i]
    ]
    assert changes == ["50", "60", "70"] and set(states(subscriber, "paused")) == {"OFF"}


def test_two_agents_with_one_instance_id_are_told_why(tmp_path, broker, fixture_model):
    runs = []
    for room in ("one", "two"):
        folder = tmp_path / room
        folder.mkdir()
        config = write_config(folder, broker.port, fixture_model)  # both "nursery"
        runs.append(agent(config, "--input", "-", stdin=subprocess.PIPE))
    for run in runs:
        feed(run, quiet_noise(1))
    time.sleep(15)  # they take the session from each other every second or so, at first
    errors = [run.communicate(timeout=20)[1].decode() for run in runs]
    hint = (
        "times in a row within seconds: another client probably uses the same client id "
        "'cry-mqtt-nursery' (two agents with device.instance_id 'nursery'? each needs its own), "
        "or the broker refuses what the agent publishes"
    )
    assert any(hint in err for err in errors), errors
    assert all(err.count(hint) <= 1 for err in errors)
    # Then the one told waits 30-90 s: the other keeps the session, and Home Assistant no
    # longer hears the two rooms' states in turn every second.
    connections = sum(err.count("connected to MQTT broker") for err in errors)
    assert connections <= 2 * TAKEOVERS + 2, errors


SILENT_CAMERA = """
import os, pathlib, sys, time
import numpy as np
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
t = np.arange(16000 * 12) / 16000
cry = 0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 1.5) < 1.2)
os.write(1, (cry * 32767).astype("<i2").tobytes())
time.sleep(600)  # then silent: no write, so no SIGPIPE would ever end it
"""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT, signal.SIGKILL], ids=str)
def test_any_stop_signal_leaves_no_camera_command_behind(
    tmp_path, broker, subscriber, fixture_model, signum
):
    script = tmp_path / "camera.py"
    script.write_text(SILENT_CAMERA)
    pid_file = tmp_path / "camera.pid"
    extra = (
        f"audio: {{source: command, command: [{sys.executable}, {script}, {pid_file}], "
        "stall_seconds: 60}\n"
    )
    run = agent(write_config(tmp_path, broker.port, fixture_model, extra))
    try:
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
        camera = int(pid_file.read_text())
        run.send_signal(signum)
        _, err = run.communicate(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    if signum != signal.SIGKILL:  # handled: OFF first, then offline, exit 0
        assert run.returncode == 0, err
        assert states(subscriber, "crying")[-2:] == ["ON", "OFF"]
        assert f"stopping ({signal.Signals(signum).name})" in err
    deadline = time.monotonic() + 10
    while not _gone(camera) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(camera)


def test_a_camera_at_48_khz_raises_the_audio_problem_and_keeps_it(
    tmp_path, broker, subscriber, fixture_model
):
    command = ", ".join(json.dumps(part) for part in paced_command(48000, 60))
    extra = f"audio: {{source: command, command: [{command}]}}\n"
    run = agent(write_config(tmp_path, broker.port, fixture_model, extra))
    attributes = f"{BASE}/audio_problem/attributes"
    try:
        problem = subscriber.wait_for(lambda m: m.topic == attributes and "a second" in m.payload)
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/audio_problem" and m.payload == "ON")
        deadline = time.monotonic() + 30  # the restarted camera streams, then fails again
        while time.monotonic() < deadline:
            if sum("a second" in p for p in subscriber.payloads(attributes)) >= 2:
                break
            time.sleep(0.2)
    finally:
        stop_agent(run)
    error = json.loads(problem.payload)["error"]
    assert error.startswith("audio command sends about 4") and "not 16000" in error
    assert sum("a second" in p for p in subscriber.payloads(attributes)) >= 2
    problem_states = states(subscriber, "audio_problem")
    assert "OFF" not in problem_states[problem_states.index("ON") :]  # no flapping


def _command_config(tmp_path: Path, port: int, model: Path, command: list[str], extra="") -> Path:
    """A live agent's config whose audio is ``command``, plus the audio keys of ``extra``."""
    argv = ", ".join(json.dumps(part) for part in command)
    return write_config(
        tmp_path, port, model, f"audio: {{source: command, command: [{argv}]{extra}}}\n"
    )


def _then(sequence: list[str], first: str, then: str) -> bool:
    """Whether ``then`` comes after ``first`` in ``sequence``."""
    return first in sequence and then in sequence[sequence.index(first) + 1 :]


def _problems(subscriber: Subscriber) -> list[str | None]:
    attributes = subscriber.payloads(f"{BASE}/audio_problem/attributes")
    return [json.loads(payload)["error"] for payload in attributes]


def test_a_camera_that_starts_late_and_stalls_is_heard_throughout(
    tmp_path, broker, subscriber, fixture_model
):
    """ffmpeg probing an H.264 stream for 6 s, then a TCP link that stalls 3 s twice and
    catches up: no audio problem until the camera's stream ends."""
    command = paced_command(
        RATE, 24, backlog_seconds=6, first_byte_after=6, stalls=((3, 3), (13, 3.5))
    )
    run = agent(_command_config(tmp_path, broker.port, fixture_model, command))
    try:
        ended = subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/audio_problem/attributes" and "exited" in m.payload,
            timeout=60,
        )
    finally:
        stop_agent(run)
    assert json.loads(ended.payload)["error"] == "audio command exited with status 0"
    assert [error for error in _problems(subscriber) if error] == [
        "audio command exited with status 0"
    ]


MUTED_MICROPHONE = """
import os, time
import numpy as np
start = time.monotonic()
noise = (np.random.default_rng(0).normal(0, 30, 1600)).astype("<i2").tobytes()
for i in range(600):
    os.write(1, bytes(3200) if i < 90 else noise)  # 9 s of exact zeros, then a quiet room
    time.sleep(max(0, start + (i + 1) / 10 - time.monotonic()))
"""


def test_a_muted_input_is_an_audio_problem_until_it_sounds_again(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    script = tmp_path / "muted.py"
    script.write_text(MUTED_MICROPHONE)
    config = _command_config(
        tmp_path, broker.port, fixture_model, [sys.executable, str(script)], ", muted_seconds: 5"
    )
    run = agent(config)
    problem = f"{BASE}/audio_problem"
    try:
        subscriber.wait_for(lambda m: m.topic == problem and m.payload == "OFF")
        started = time.monotonic()
        subscriber.wait_for(lambda m: m.topic == problem and m.payload == "ON", timeout=20)
        record_property("muted_reported_s", round(time.monotonic() - started, 2))
        subscriber.wait_for(lambda m: _then(states(subscriber, "audio_problem"), "ON", "OFF"))
        record_property("sound_back_s", round(time.monotonic() - started, 2))
        # Sound came back 9 s in: cleared then, not after a restarted source's 20 s.
        assert time.monotonic() - started < 14
    finally:
        err = stop_agent(run)
    assert [error for error in _problems(subscriber) if error] == [
        "the input has sent only digital silence (exact zeros) for 5 s: is the microphone or the "
        "camera muted? (audio.muted_seconds)"
    ]
    assert "digital silence" in err and "audio is back" in err


def test_a_dark_network_shows_the_agent_offline_within_the_keepalive_bound(
    tmp_path, broker, subscriber, fixture_model, record_property
):
    """A link that stops carrying anything, both ways, while its connections stay open: the
    broker publishes the will within 1.5-2 x keepalive; once it is back the agent reconnects."""
    proxy = Proxy(broker.port)
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    config = _command_config(tmp_path, proxy.port, fixture_model, [sys.executable, str(mic)])
    config.write_text(
        config.read_text().replace(f"port: {proxy.port}}}", f"port: {proxy.port}, keepalive: 5}}")
    )
    run = agent(config)
    availability = f"{BASE}/availability"
    try:
        subscriber.wait_for(lambda m: m.topic == availability and m.payload == "online")
        time.sleep(1)
        proxy.dark()
        dark = time.monotonic()
        subscriber.wait_for(
            lambda m: m.topic == availability and m.payload == "offline", timeout=20
        )
        record_property("offline_after_s", round(time.monotonic() - dark, 2))
        # 1.5 x keepalive after the last packet the broker got (up to a keepalive before the
        # dark), checked about once a second: 10 s here, against 90 s at the old 60-s keepalive.
        assert time.monotonic() - dark < 3 * 5
        proxy.light()
        light = time.monotonic()
        subscriber.wait_for(
            lambda m: (
                m.topic == availability
                and m.payload == "online"
                and subscriber.payloads(availability).count("online") == 2
            ),
            timeout=30,
        )
        record_property("online_again_s", round(time.monotonic() - light, 2))
    finally:
        err = stop_agent(run)
        proxy.close()
    assert run.returncode == 0, err


def test_a_crashed_broker_restored_from_its_autosave_serves_no_stale_crying(
    tmp_path, fixture_model
):
    """Mosquitto with persistence, killed (-9) while the baby cries, and the agent gone too:
    the restarted broker must not tell Home Assistant that the baby cries."""
    saved = tmp_path / "mosquitto-db"
    saved.mkdir()
    broker = Broker(tmp_path, persistence=saved).start()
    run = agent(
        write_config(tmp_path, broker.port, fixture_model), "--input", "-", stdin=subprocess.PIPE
    )
    try:
        sub = Subscriber(broker.port)
        feed(run, cry_like(20))
        sub.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON", timeout=30)
        sub.close()
        time.sleep(2.5)  # an autosave or two
        run.kill()
        broker.kill()
    finally:
        if run.poll() is None:
            run.kill()
        run.wait(5)
        broker.stop()
    assert any(saved.iterdir())  # the broker did save its state
    restarted = Broker(tmp_path, port=broker.port, persistence=saved).start()
    fresh = Subscriber(restarted.port)
    try:
        fresh.wait_for(lambda m: m.topic == f"{BASE}/audio_problem")  # retained, restored
        time.sleep(1)
        assert fresh.payloads(f"{BASE}/crying") == []
    finally:
        fresh.close()
        restarted.stop()


def test_a_port_that_never_answers_is_not_called_a_tls_listener(tmp_path, fixture_model):
    """A server that accepts the connection and says nothing: no CONNACK within keepalive."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    config = _command_config(tmp_path, port, fixture_model, [sys.executable, str(mic)])
    config.write_text(
        config.read_text().replace(f"port: {port}}}", f"port: {port}, keepalive: 5}}")
    )
    try:
        err = _live_agent_log(tmp_path, config, seconds=10)
    finally:
        server.close()
    assert (
        f"127.0.0.1:{port} accepted the connection but sent no MQTT answer within 5 s "
        "(mqtt.keepalive): is it an MQTT broker's port?; retrying"
    ) in err
    assert "TLS" not in err


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        (
            "retain_available false",  # refuses the retained will, before answering
            "closed the connection before answering: a TLS listener (set mqtt.tls.enabled) or a "
            "broker that refuses the agent's last will, retained at QoS 1",
        ),
        (
            "max_packet_size 400",  # refuses the discovery messages, after answering
            "closed the connection 3 times in a row within seconds: another client probably uses "
            "the same client id 'cry-mqtt-nursery' (two agents with device.instance_id "
            "'nursery'? each needs its own), or the broker refuses what the agent publishes",
        ),
    ],
)
def test_a_broker_that_refuses_what_the_agent_sends_is_named_as_a_cause(
    tmp_path, fixture_model, setting, said
):
    broker = Broker(tmp_path, extra_config=f"{setting}\n").start()
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    config = _command_config(tmp_path, broker.port, fixture_model, [sys.executable, str(mic)])
    try:
        err = _live_agent_log(tmp_path, config, seconds=8)
    finally:
        broker.stop()
    assert err.count(said) == 1, err


CRIES_ON_ITS_SECOND_RUN = """
import os, pathlib, sys, time
import numpy as np
count = pathlib.Path(sys.argv[1])
run = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(run))
if run == 1:
    sys.exit(1)
t = np.arange(16000 * 30) / 16000
cry = (0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 1.5) < 1.2) * 32767).astype("<i2")
start = time.monotonic()
for i in range(300):
    os.write(1, cry[1600 * i : 1600 * (i + 1)].tobytes())
    time.sleep(max(0, start + (i + 1) / 10 - time.monotonic()))
"""


def test_crying_heard_clears_the_audio_problem_at_once(tmp_path, broker, subscriber, fixture_model):
    """A restarted camera clears the problem after 20 s of streaming, or as soon as it hears
    crying: Home Assistant must not hide that crying behind an unavailable sensor."""
    script = tmp_path / "camera.py"
    script.write_text(CRIES_ON_ITS_SECOND_RUN)
    command = [sys.executable, str(script), str(tmp_path / "runs")]
    run = agent(_command_config(tmp_path, broker.port, fixture_model, command))
    try:
        subscriber.wait_for(lambda m: _then(states(subscriber, "audio_problem"), "ON", "OFF"))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
    finally:
        stop_agent(run)
    sequence = [
        (m.topic.rsplit("/", 1)[1], m.payload, m.retain)
        for m in subscriber.messages
        if m.topic in (f"{BASE}/crying", f"{BASE}/audio_problem")
    ]
    problem = sequence.index(("audio_problem", "ON", False))
    assert sequence[problem + 1 : problem + 3] == [
        ("audio_problem", "OFF", False),
        ("crying", "ON", False),
    ]


def test_a_live_agent_without_a_broker_says_so_after_ten_seconds(tmp_path, fixture_model):
    port = free_port()
    mic = tmp_path / "mic.py"
    mic.write_text(CRY_THEN_QUIET)
    config = _command_config(tmp_path, port, fixture_model, [sys.executable, str(mic)])
    err = _live_agent_log(tmp_path, config, seconds=20)
    said = (
        rf"no MQTT connection for 1\d s \(cannot reach 127\.0\.0\.1:{port}: Connection "
        r"refused\): listening, but Home Assistant hears nothing; retrying"
    )
    assert len(re.findall(said, err)) == 1, err  # then not again for 10 minutes
    assert "crying detected" in err  # it listened all along


def test_a_crying_state_retained_by_an_older_agent_is_cleared(
    tmp_path, broker, subscriber, fixture_model
):
    """Older agents retained the crying state: after an upgrade the broker would keep serving
    their last value (an ON, for good) to every new subscriber."""
    subscriber.publish(f"{BASE}/crying", "ON", retain=True)
    run = agent(
        write_config(tmp_path, broker.port, fixture_model), "--input", "-", stdin=subprocess.PIPE
    )
    try:
        feed(run, quiet_noise(2))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "online")
    finally:
        run.communicate(timeout=20)
    fresh = Subscriber(broker.port)  # Home Assistant, restarting
    try:
        fresh.wait_for(lambda m: m.topic == f"{BASE}/availability")
        time.sleep(0.5)
        assert fresh.payloads(f"{BASE}/crying") == []
    finally:
        fresh.close()
