"""The shipped model through the whole agent and a real broker, on real recordings."""

import csv

import numpy as np
import pytest
import soundfile
from support import CRIES, RATE, Subscriber, quiet_noise, run_agent, write_config, write_wav

from cry_mqtt.detector import DEFAULT_VOTES
from cry_mqtt.features import YAMNET
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.recording import read_audio

pytestmark = pytest.mark.skipif(
    not default_model_path().exists(), reason="the trained default model is not shipped yet"
)

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


def agent_on_recording(tmp_path, port, wav) -> Subscriber:
    """The messages of the agent with the shipped model, run on ``wav`` to its end."""
    sub = Subscriber(port)
    done = run_agent(write_config(tmp_path, port, None), "--input", wav, "--fast", timeout=300)
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
    assert info.votes == DEFAULT_VOTES
    assert default_model_path().stat().st_size <= 20_000_000
    # It lets a parent teach it "not crying" (python -m training memory picked the similarity).
    assert CryModel(default_model_path()).embedding_size == 1024
    assert info.details["learn"] == {"similarity": 0.96}
    # Its sensitivity presets (python -m training night --sweep chose them): Balanced is its own.
    quiet, balanced, noisy = info.presets
    assert (balanced.threshold, balanced.trigger_windows, balanced.of_windows) == (0.5, 3, 5)
    assert quiet.threshold < balanced.threshold < noisy.threshold


def test_real_crying_turns_the_sensor_on_then_off(tmp_path, broker, data_dir):
    corpus = data_dir / "donateacry-corpus"
    crying = np.concatenate([read_audio(corpus / name, RATE) for name in CRIES])
    audio = np.concatenate([quiet_noise(5), crying, quiet_noise(30)])
    sub = agent_on_recording(tmp_path, broker.port, write_wav(tmp_path / "cry.wav", audio))
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
    sub = agent_on_recording(tmp_path, broker.port, write_wav(tmp_path / "house.wav", audio))
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
    sub = agent_on_recording(tmp_path, broker.port, write_wav(tmp_path / "talk.wav", audio))
    assert "ON" not in sub.payloads("cry_mqtt/nursery/crying")
    assert sub.payloads("cry_mqtt/nursery/confidence")
