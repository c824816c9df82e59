"""The microphone path through PortAudio and ALSA, with a virtual capture device.

ALSA's ``file`` plugin plays a raw file as if it came from a sound card: sounddevice, the
callback, the bounded buffer and the resampler all run for real, at the device's own 48 kHz.
The plugin has no clock, so it delivers faster than real time.
"""

import os

import numpy as np
import pytest
from support import BASE, agent, cry_like, run_agent, stop_agent, write_config

ALSA_CONF = """
</usr/share/alsa/alsa.conf>
pcm.testmic_raw {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.testmic {{
    type plug
    slave {{ pcm "testmic_raw" format S16_LE rate 48000 channels 1 }}
    hint {{ show on description "cry-mqtt test microphone" }}
}}
"""


@pytest.fixture
def alsa_env(tmp_path) -> dict[str, str]:
    """Environment in which PortAudio sees one more input: ``testmic``, crying at 48 kHz."""
    if not os.path.exists("/usr/share/alsa/alsa.conf"):
        pytest.fail("ALSA's configuration is missing; install libasound2 (libportaudio2 brings it)")
    cry = cry_like(20.0)
    at_48k = np.repeat(cry, 3)  # crude, but the harmonics stay far below 8 kHz
    raw = tmp_path / "mic.raw"
    raw.write_bytes((at_48k * 32767).astype("<i2").tobytes())
    conf = tmp_path / "asound.conf"
    conf.write_text(ALSA_CONF.format(infile=raw))
    return {**os.environ, "ALSA_CONFIG_PATH": str(conf)}


def test_devices_lists_the_input(alsa_env):
    done = run_agent(None, "devices", env=alsa_env, timeout=30)
    assert "testmic" in done.stdout, done.stderr


def test_microphone_at_48k_feeds_the_agent(tmp_path, alsa_env, broker, subscriber, fixture_model):
    # The virtual device has no clock and runs ahead: a buffer big enough to keep every block.
    extra = "audio: {device: testmic, samplerate: 48000, buffer_seconds: 120}\n"
    config = write_config(tmp_path, broker.port, fixture_model, extra)
    check = run_agent(config, "check", env=alsa_env, timeout=30)
    assert check.returncode == 0 and "audio: ok (input device 'testmic')" in check.stdout, (
        check.stdout
    )
    run = agent(config, env=alsa_env)
    try:
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
    finally:
        err = stop_agent(run)
    assert run.returncode == 0, err
    assert "listening on 'testmic' at 48000 Hz" in err
    assert subscriber.payloads(f"{BASE}/availability")[-1] == "offline"
