"""Recordings: files FFmpeg reads, standard input, raw s16le at 16 kHz."""

import io
import time

import numpy as np
import pytest
import soundfile
from support import RATE, write_encoded

from cry_mqtt.audio import AudioError
from cry_mqtt.features import dbfs
from cry_mqtt.recording import FileSource, RawSource


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
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
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


def test_odd_rate_and_many_channels(tmp_path):
    path = tmp_path / "odd.wav"
    soundfile.write(str(path), 0.1 * np.ones((11025, 3), dtype=np.float32), 11025)
    out = np.concatenate(list(FileSource(path, RATE, realtime=False).blocks()))
    assert abs(len(out) - RATE) <= 2
    assert np.allclose(out[2000:-2000], 0.1, atol=0.01)


RECORDINGS = [
    ("memo.m4a", "ipod", "aac", RATE),  # a phone's voice memo
    ("upload.3gp", "3gp", "libopencore_amrnb", 8000),  # the Donate-a-cry Android uploads
    ("upload.caf", "caf", "alac", RATE),  # and the iOS ones
    ("song.mp3", "mp3", "libmp3lame", RATE),
    ("clip.opus", "ogg", "libopus", 48000),
    ("camera.webm", "webm", "libopus", 48000),
]


@pytest.mark.parametrize(("name", "container", "codec", "rate"), RECORDINGS)
def test_file_source_reads_what_ffmpeg_reads(tmp_path, name, container, codec, rate):
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * RATE) / RATE)
    write_encoded(tmp_path / name, tone, container, codec, rate)
    source = FileSource(tmp_path / name, RATE, realtime=False)
    out = np.concatenate(list(source.blocks()))
    assert abs(len(out) - 3 * RATE) < 0.1 * RATE
    assert dbfs(out[4000:-4000]) == pytest.approx(dbfs(tone.astype(np.float32)), abs=1.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not audio at all", "not a recording FFmpeg can read"), (None, "holds no audio samples")],
)
def test_unusable_recordings_say_why(tmp_path, content, message):
    path = tmp_path / "x.wav"
    if content is None:
        soundfile.write(str(path), np.zeros(0, dtype=np.float32), RATE)  # a header, no samples
    else:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=f"x.wav: {message}"):
        list(FileSource(path, RATE, realtime=False).blocks())


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_raw_input_is_16_khz_whatever_the_models_rate():
    """Raw s16le on standard input or from a command is 16 kHz; a 32 kHz model gets it
    resampled: twice the samples, the same tone, the same level."""
    tone = (_tone(16000, 2.0) * 32767).astype("<i2")
    out = np.concatenate(list(RawSource(Trickle(tone.tobytes()), 32000, False).blocks()))
    assert abs(len(out) - 2 * len(tone)) <= 64
    assert _peak_hz(out[4000:-4000], 32000) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(out[4000:-4000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
