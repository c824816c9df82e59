import io
import sys
import time

import numpy as np
import pytest
import soundfile
from support import RATE

from cry_mqtt.audio import AudioError, CommandSource, FileSource, RawSource
from cry_mqtt.features import dbfs


def test_file_source_mixes_down_and_resamples(tmp_path):
    t = np.arange(44100 * 2) / 44100
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "stereo.flac"
    soundfile.write(str(path), np.stack([left, left], axis=1), 44100)
    out = np.concatenate(list(FileSource(path, RATE, realtime=False).blocks()))
    assert abs(len(out) - 2 * RATE) <= 2
    assert out.dtype == np.float32
    assert dbfs(out[1000:-1000]) == pytest.approx(dbfs(left.astype(np.float32)), abs=0.1)


def test_file_source_paces_in_real_time(tmp_path):
    path = tmp_path / "half.wav"
    soundfile.write(str(path), np.zeros(RATE // 2, dtype=np.float32), RATE)
    start = time.monotonic()
    total = sum(len(b) for b in FileSource(path, RATE, realtime=True).blocks())
    assert total == RATE // 2
    assert time.monotonic() - start >= 0.4


def test_unreadable_file(tmp_path):
    with pytest.raises(AudioError, match="cannot read audio file"):
        FileSource(tmp_path / "missing.wav", RATE, realtime=False)


class Trickle(io.RawIOBase):
    """A stream that returns odd-sized pieces, as a pipe may."""

    def __init__(self, data: bytes):
        self._data = data

    def readinto(self, buffer) -> int:
        n = min(len(buffer), 333, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n

    def readable(self) -> bool:
        return True


def test_raw_source_keeps_samples_across_odd_reads():
    samples = (np.arange(5000) % 200 - 100).astype("<i2")
    out = np.concatenate(list(RawSource(Trickle(samples.tobytes()), RATE, False).blocks()))
    assert np.array_equal(out, samples.astype(np.float32) / 32768)


def test_command_source_fails_when_the_command_exits():
    script = "import sys; sys.stdout.buffer.write(b'\\x00\\x40' * 1600); sys.exit(3)"
    blocks = CommandSource([sys.executable, "-c", script], RATE, 0.1, 5.0).blocks()
    received = 0
    with pytest.raises(AudioError, match="exited with status 3"):
        for block in blocks:
            assert np.all(block == 0.5)
            received += len(block)
    assert received == 1600


def test_command_source_fails_when_the_command_stalls():
    script = "import os, time; os.write(1, b'0' * 320); time.sleep(60)"
    source = CommandSource([sys.executable, "-c", script], RATE, 0.1, 1.0)
    start = time.monotonic()
    with pytest.raises(AudioError, match="sent nothing for 1 s"):
        list(source.blocks())
    assert time.monotonic() - start < 10


def test_missing_command_is_an_audio_error():
    with pytest.raises(AudioError, match="cannot run audio command"):
        CommandSource(["/nonexistent/ffmpeg"], RATE, 0.1, 5.0)


def test_odd_rate_and_many_channels(tmp_path):
    path = tmp_path / "odd.wav"
    soundfile.write(str(path), 0.1 * np.ones((11025, 3), dtype=np.float32), 11025)
    out = np.concatenate(list(FileSource(path, RATE, realtime=False).blocks()))
    assert abs(len(out) - RATE) <= 2
    assert np.allclose(out[2000:-2000], 0.1, atol=0.01)
