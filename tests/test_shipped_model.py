"""The shipped model through the whole agent and a real broker, on real recordings."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from support import RATE, Subscriber, quiet_noise, write_wav

from cry_mqtt.audio import read_audio
from cry_mqtt.features import YAMNET
from cry_mqtt.model import CryModel, default_model_path

pytestmark = pytest.mark.skipif(
    not default_model_path().exists(), reason="the trained default model is not shipped yet"
)

CRIES = [
    "donateacry-ios-upload-bucket/021DCB9F-2FC6-4247-859F-E58EDB682B79-1429977251-1.0-f-26-dk.caf",
    "donateacry-ios-upload-bucket/026895D0-6B93-4D1F-846F-AA279AD33991-1436865240-1.1-m-04-hu.caf",
    "donateacry-android-upload-bucket/006dbee7-715a-46ee-b592-1c4e7affb788-1430218353124-1.7-f-26-hu.3gp",
    "donateacry-android-upload-bucket/01a592eb-513d-4431-b7ba-b0fba5a00908-1430339263195-1.7-m-04-hu.3gp",
]
HOUSEHOLD = [
    "household/household__dishwasher_0.flac",
    "household/household__vacuuming_0.flac",
    "household/household__aircon_0.flac",
    "household/household__street_0.flac",
    "blanket/ambient__white-noise.flac",
    "blanket/ambient__rain.flac",
    "lullabies",
    "emodb",
]


def run_agent(tmp_path, port, wav) -> Subscriber:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {port}}}\nstate_file: {tmp_path / 'state.json'}\n"
    )
    sub = Subscriber(port)
    done = subprocess.run(
        [sys.executable, "-m", "cry_mqtt", "--config", str(config), "--input", str(wav), "--fast"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sub.wait_for(lambda m: m.topic.endswith("/availability") and m.payload == "offline")
    return sub


def test_the_shipped_model_follows_the_contract():
    info = CryModel(default_model_path()).info
    assert info.window_seconds == 7.0
    assert info.features == YAMNET
    assert info.patches is not None and info.window_patches == 13
    assert info.details["arch"] == "yamnet"
    assert 0 < info.threshold < 1
    assert default_model_path().stat().st_size <= 20_000_000


def test_real_crying_turns_the_sensor_on_then_off(tmp_path, broker, data_dir):
    corpus = data_dir / "donateacry-corpus"
    crying = np.concatenate([read_audio(corpus / name, RATE) for name in CRIES])
    audio = np.concatenate([quiet_noise(5), crying, quiet_noise(30)])
    sub = run_agent(tmp_path, broker.port, write_wav(tmp_path / "cry.wav", audio))
    states = sub.payloads("cry_mqtt/nursery/crying")
    assert "ON" in states
    assert states[-1] == "OFF"


def test_household_sounds_never_turn_the_sensor_on(tmp_path, broker, data_dir):
    negatives = data_dir / "negatives"
    parts = []
    for name in HOUSEHOLD:
        path = negatives / name
        files = sorted(path.glob("*.flac"))[:6] if path.is_dir() else [path]
        for file in files:
            sound, rate = soundfile.read(str(file), dtype="float32")
            assert rate == 16000
            parts.append(sound[: 30 * rate])
    audio = np.concatenate(parts)
    assert len(audio) > 180 * 16000
    sub = run_agent(tmp_path, broker.port, write_wav(tmp_path / "house.wav", audio))
    assert "ON" not in sub.payloads("cry_mqtt/nursery/crying")
    assert sub.payloads("cry_mqtt/nursery/confidence")


def independent_clips(data_dir, category: str, detail: str = "", count: int = 12) -> np.ndarray:
    """The first ``count`` clips of a category (and class) of the independent set, back to back."""
    root = data_dir / "independent"
    with open(root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] == category]
    rows = [r for r in rows if detail in r["detail"]][:count]
    return np.concatenate([read_audio(root / r["path"], RATE) for r in rows])


def test_laughter_and_a_parent_talking_to_a_child_never_turn_the_sensor_on(
    tmp_path, broker, data_dir
):
    """Sounds the training data does not hold, from the independent set."""
    audio = np.concatenate(
        [
            independent_clips(data_dir, "conversation"),
            independent_clips(data_dir, "nonverbal", "laughing"),
            independent_clips(data_dir, "esc50", "human laugh", 8),
        ]
    )
    assert len(audio) > 120 * 16000
    sub = run_agent(tmp_path, broker.port, write_wav(tmp_path / "talk.wav", audio))
    assert "ON" not in sub.payloads("cry_mqtt/nursery/crying")
    assert sub.payloads("cry_mqtt/nursery/confidence")
