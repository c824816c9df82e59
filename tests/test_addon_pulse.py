"""The add-on's microphone: PulseAudio, ALSA's pulse plugin, PortAudio, sounddevice, the agent.

With ``audio: true`` the Supervisor gives an add-on its PulseAudio server and an
``/etc/asound.conf`` whose default ALSA device is PulseAudio. Here a PulseAudio server of the
test's own (user mode, a private socket, a sine source, never exiting when idle) and the same
ALSA configuration stand in for them, and the agent opens the default input as the add-on does.
"""

import glob
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from addon_support import addon_config, write_agent_config, write_options
from support import BASE, agent, stop_agent

from cry_mqtt.addon import TOKEN_ENV

TONE_HZ = 440
TONE_RMS = 0.5 / 2**0.5  # module-sine-source plays at half scale
# In the foreground, without the default script (-n), never exiting when idle, without the shared
# memory, real-time scheduling and pid file that a sandbox may not allow.
SERVER_FLAGS = (
    "--daemonize=no",
    "-n",
    "--exit-idle-time=-1",
    "--disable-shm=yes",
    "--realtime=no",
    "--high-priority=no",
    "--use-pid-file=no",
    "--log-target=stderr",
)

# What the Supervisor mounts as /etc/asound.conf (supervisor/data/asound.tmpl), after ALSA's own.
SUPERVISOR_ASOUND = """
</usr/share/alsa/alsa.conf>
pcm.!default {
    type pulse
    hint { show on description "Default ALSA Output (Home Assistant PulseAudio Sound Server)" }
}
ctl.!default { type pulse }
"""

PROBE = """
import json, sys, time
from pathlib import Path
import numpy as np
from cry_mqtt.cli import open_source
from cry_mqtt.config import load_config

source = open_source(load_config(Path(sys.argv[1])), 16000, None, False)
blocks, marks = [], []  # (time, samples so far) after each block
for block in source.blocks():
    blocks.append(block)
    marks.append((time.monotonic(), sum(map(len, blocks))))
    if marks[-1][1] >= 16000 * 7:
        break
x = np.concatenate(blocks)[16000:]  # past the resampler's start
peak = np.argmax(np.abs(np.fft.rfft(x))) * 16000 / len(x)
rms = float(np.sqrt(np.mean(x**2)))
# Samples a second past the stream's start, which may come as one burst of what PulseAudio had
# buffered.
t0, n0 = next(m for m in marks if m[1] >= 16000 * 3)
t1, n1 = marks[-1]
print(json.dumps({"rate": (n1 - n0) / (t1 - t0), "rms": rms, "peak_hz": peak}))
"""


@pytest.fixture
def pulse_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an add-on with ``audio: true``, its PulseAudio server running."""
    binary = shutil.which("pulseaudio")
    if binary is None:
        pytest.skip("pulseaudio is not installed (apt-get install pulseaudio libasound2-plugins)")
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        pytest.fail("ALSA's PulseAudio plugin is missing: install libasound2-plugins")
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True, mode=0o700)
    server_env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run")}
    server_env["XDG_CONFIG_HOME"] = str(home / "config")
    server_env.pop("PULSE_SERVER", None)
    sock = tmp_path / "pulse.sock"
    log_path = tmp_path / "pulse.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                binary,
                *SERVER_FLAGS,
                *("-L", f"module-native-protocol-unix socket={sock} auth-anonymous=1"),
                *("-L", f"module-sine-source source_name=nursery rate=48000 frequency={TONE_HZ}"),
            ],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait_for_socket(sock, server, log_path)
        asound = tmp_path / "asound.conf"
        asound.write_text(SUPERVISOR_ASOUND)
        yield {**server_env, "PULSE_SERVER": f"unix:{sock}", "ALSA_CONFIG_PATH": str(asound)}
    finally:
        server.terminate()
        server.wait(10)


def _wait_for_socket(path: Path, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"pulseaudio exited with status {server.returncode}: {log.read_text()}")
        with socket.socket(socket.AF_UNIX) as client:
            try:
                client.connect(str(path))
                return
            except OSError:
                time.sleep(0.05)
    pytest.fail(f"pulseaudio did not open {path}: {log.read_text()}")


def addon_agent_config(tmp_path: Path, supervisor_url: str) -> Path:
    """The agent's config from the add-on's untouched options, as ``run.sh`` writes it."""
    options = write_options(tmp_path / "options.json", addon_config()["options"])
    config = tmp_path / "cry-mqtt.yaml"
    env = {**os.environ, TOKEN_ENV: "token", "XDG_STATE_HOME": str(tmp_path / "data")}
    run = write_agent_config(options, config, supervisor_url, env)
    assert run.returncode == 0, run.stderr
    return config


def test_the_agents_default_microphone_hears_pulseaudio(tmp_path, pulse_env, supervisor):
    supervisor.broker(host="127.0.0.1", port=1883)
    config = addon_agent_config(tmp_path, supervisor.url)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, config],
        env=pulse_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    heard = json.loads(probe.stdout)
    assert abs(heard["peak_hz"] - TONE_HZ) <= 2
    assert heard["rms"] == pytest.approx(TONE_RMS, rel=0.05)
    # Once the stream runs, PulseAudio's clock paces it: 16,000 samples a second.
    assert heard["rate"] == pytest.approx(16000, rel=0.1)


def test_the_add_on_reports_the_sound_pulseaudio_carries(
    tmp_path, pulse_env, supervisor, broker, subscriber
):
    supervisor.broker(host="127.0.0.1", port=broker.port)
    config = addon_agent_config(tmp_path, supervisor.url)
    run = agent(config, env={**pulse_env, "XDG_STATE_HOME": str(tmp_path / "data")})
    try:
        level = str(round(20 * math.log10(TONE_RMS)))  # dBFS, as the sound level sensor shows it
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/sound_level" and m.payload == level, 60)
        assert subscriber.payloads(f"{BASE}/audio_problem")[-1] == "OFF"
    finally:
        err = stop_agent(run, timeout=20)
    assert run.returncode == 0, err
    assert "listening on 'default'" in err
    assert subscriber.payloads(f"{BASE}/availability")[-1] == "offline"
