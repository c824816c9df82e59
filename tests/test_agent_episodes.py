"""What each episode leaves a parent: its recording in the house, its picture in Home Assistant
and its place in the night's numbers; a folder that cannot be written loses the recording only."""

import json
import os
import struct
import time
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from support import (
    BASE,
    DISCOVERY,
    Subscriber,
    agent,
    assert_no_audio_leaves,
    cry_like,
    quiet_noise,
    states,
    write_config,
    write_wav,
)

from cry_mqtt.config import RecordConfig
from cry_mqtt.episodes import EpisodeRecorder, OpusFile, PreRoll, prune
from cry_mqtt.features import dbfs
from cry_mqtt.picture import HIT, ONSET, SCORE, SHADES, STRIP_HEIGHT, THRESHOLD, episode_picture
from cry_mqtt.recording import read_audio

RATE = 16000
QUIET_BEFORE = 10.0


def run_night(tmp_path: Path, broker, extra: str = "") -> tuple[str, str]:
    audio = np.concatenate([quiet_noise(QUIET_BEFORE), cry_like(20), quiet_noise(30)])
    wav = write_wav(tmp_path / "night.wav", audio)
    config = write_config(tmp_path, broker.port, tmp_path / "model.onnx", extra)
    run = agent(config, "--input", str(wav), "--fast")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    return out, err


@pytest.fixture
def model(tmp_path: Path, fixture_model: Path) -> Path:
    (tmp_path / "model.onnx").symlink_to(fixture_model)
    return tmp_path / "model.onnx"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_an_episode_is_recorded_pictured_and_counted(tmp_path, broker, subscriber, model):
    folder = tmp_path / "episodes"
    run_night(tmp_path, broker, f"record: {{folder: {folder}}}\n")
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    assert states(subscriber, "crying") == ["OFF", "ON", "OFF"]
    attributes = json.loads(states(subscriber, "crying/attributes")[-1])
    [clip] = sorted(folder.iterdir())
    assert attributes["clip"] == clip.name and clip.name.startswith("crying-")

    # From the pre-roll before the window that turned crying on, to the OFF.
    heard = read_audio(clip, RATE)
    lead = 5.0 + 6.9  # record.pre_roll_seconds + the fixture model's window
    assert len(heard) / RATE == pytest.approx(lead + attributes["episode_duration_s"], abs=1.5)
    assert dbfs(heard[:RATE]) < -40  # the quiet room before the crying began ...
    assert max(dbfs(heard[i : i + RATE]) for i in range(0, len(heard), RATE)) > -20  # ... crying

    # The picture: published at ON and at OFF, retained for a Home Assistant that starts later.
    pictures = [m.raw for m in subscriber.messages if m.topic == f"{BASE}/last_episode"]
    assert len(pictures) >= 2
    width, height = png_size(pictures[-1])
    assert 100 <= width <= 720 and height == 128 + 48 and len(pictures[-1]) < 100_000
    late = Subscriber(broker.port)
    try:
        retained = late.wait_for(lambda m: m.topic == f"{BASE}/last_episode")
        assert retained.retain and retained.raw == pictures[-1]
    finally:
        late.close()
    config = json.loads(subscriber.payloads(DISCOVERY.format("image", "last_episode"))[0])
    assert config["image_topic"] == f"{BASE}/last_episode"

    # The night in numbers, kept beside the state file.
    assert states(subscriber, "episodes_tonight") == ["0", "1"]
    minutes = float(states(subscriber, "crying_minutes_tonight")[-1])
    assert minutes == pytest.approx(attributes["episode_duration_s"] / 60, abs=0.051)
    assert states(subscriber, "longest_episode_tonight")[-1] == f"{minutes:.1f}"
    assert json.loads((tmp_path / "state.night.json").read_text())["episodes"] == 1
    assert states(subscriber, "recording") == ["ON"]
    assert_no_audio_leaves(subscriber)


def test_a_folder_that_cannot_be_written_loses_the_recording_only(
    tmp_path, broker, subscriber, model
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    _, err = run_night(tmp_path, broker, f"record: {{folder: {blocked / 'episodes'}}}\n")
    assert err.count("cannot record episodes to") == 1
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    assert states(subscriber, "crying") == ["OFF", "ON", "OFF"]
    assert json.loads(states(subscriber, "crying/attributes")[-1])["clip"] is None
    assert any(m.topic == f"{BASE}/last_episode" for m in subscriber.messages)
    assert states(subscriber, "episodes_tonight")[-1] == "1"


def test_recording_switched_off_keeps_the_picture_and_the_numbers(
    tmp_path, broker, subscriber, model
):
    folder = tmp_path / "episodes"
    run_night(tmp_path, broker, f"record: {{folder: {folder}, enabled: false}}\n")
    subscriber.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    assert not folder.exists()
    assert states(subscriber, "recording") == ["OFF"]
    assert any(m.topic == f"{BASE}/last_episode" for m in subscriber.messages)
    assert states(subscriber, "episodes_tonight")[-1] == "1"


def test_the_pre_roll_keeps_the_last_seconds_by_stream_index() -> None:
    roll = PreRoll(10, 1.0)  # ten samples
    roll.push(np.arange(7, dtype=np.int16))
    assert roll.since(0).tolist() == list(range(7))
    roll.push(np.arange(7, 15, dtype=np.int16))
    assert roll.end == 15 and roll.since(0).tolist() == list(range(5, 15))
    assert roll.since(12).tolist() == [12, 13, 14] and roll.since(15).tolist() == []
    roll.push(np.arange(15, 40, dtype=np.int16))  # more than it holds at once
    assert roll.since(0).tolist() == list(range(30, 40))


def test_an_opus_file_holds_what_was_written(tmp_path: Path) -> None:
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * RATE) / RATE) * 32767).astype(np.int16)
    opus = OpusFile(tmp_path / "a.ogg", RATE)
    for start in range(0, len(tone), 1600):
        opus.write(tone[start : start + 1600])
    opus.close()
    heard = read_audio(tmp_path / "a.ogg", RATE)
    assert len(heard) == pytest.approx(len(tone), abs=RATE // 50)
    assert dbfs(heard) == pytest.approx(dbfs(tone / 32768), abs=1.0)
    assert (tmp_path / "a.ogg").stat().st_size < 3 * 6000  # 24 kbit/s, a tone a little more


def test_the_folder_keeps_the_newest_within_count_age_and_size(tmp_path: Path) -> None:
    now = time.time()
    for i in range(6):
        clip = tmp_path / f"crying-{i}.ogg"
        clip.write_bytes(b"x" * 1000)
        os.utime(clip, (now - 3600 * i, now - 3600 * i))  # crying-0 is the newest
    (tmp_path / "notes.txt").write_text("not a recording")
    assert [p.name for p in prune(tmp_path, 4, 1e9, 1e9)] == ["crying-4.ogg", "crying-5.ogg"]
    assert [p.name for p in prune(tmp_path, 10, 2.5 * 3600, 1e9)] == ["crying-3.ogg"]
    assert [p.name for p in prune(tmp_path, 10, 1e9, 2500)] == ["crying-2.ogg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "crying-0.ogg",
        "crying-1.ogg",
        "notes.txt",
    ]


def decode_png(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The palette (n x 3) and the pixel indices (rows x columns) of a palette PNG."""
    chunks, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8 : at + 8 + length]
        assert (
            zlib.crc32(data[at + 4 : at + 8 + length])
            == struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0]
        )
        at += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()  # no row filter
    return np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3), rows[:, 1:]


def test_the_picture_draws_the_frames_the_scores_and_the_onset() -> None:
    frames = np.tile(np.linspace(-10, 0, 64)[:, None], (1, 3000))  # 30 s at 10 ms, 64 bands
    scores = [(float(t), 0.9 if 12 <= t <= 20 else 0.1) for t in range(7, 31)]
    data = episode_picture(frames, 0.01, scores, 0.5, onset=12.0)
    palette, pixels = decode_png(data)
    assert len(palette) == SHADES + 5 and pixels.shape == (128 + STRIP_HEIGHT, 3000 // 5)
    spectrogram, strip = pixels[:128], pixels[128:]
    assert spectrogram[0, 0] > spectrogram[-1, 0]  # the loudest band (the highest) on top
    onset_column = 12 * 100 // 5
    assert (pixels[:, onset_column] == ONSET).all()
    hits = np.flatnonzero((strip == HIT).any(axis=0))
    # a line between the scores: over the threshold from half-way up to 12 s, to half-way down
    assert (
        11 * 100 // 5 < hits.min() <= onset_column and 20 * 100 // 5 <= hits.max() < 21 * 100 // 5
    )
    assert (strip == THRESHOLD).any() and (strip == SCORE).any()
    assert len(data) < 20_000


def test_two_episodes_begun_in_one_second_keep_both_recordings(tmp_path: Path) -> None:
    """A file played faster than real time can begin two episodes in one wall-clock second."""
    recorder = EpisodeRecorder(RecordConfig(pre_roll_seconds=0.0), tmp_path, RATE, 1.0)
    wall = datetime(2026, 12, 7, 3, 0, 0)
    paths = []
    for _ in range(2):
        paths.append(recorder.begin(wall))
        recorder.feed(cry_like(2))
        assert recorder.end() == paths[-1]
    assert [p.name for p in paths] == ["crying-20261207-030000.ogg", "crying-20261207-030000-2.ogg"]
    seconds = [len(read_audio(p, RATE)) / RATE for p in paths]
    assert seconds == pytest.approx([2, 1 + 2], abs=0.1)  # the second has the first's last second
