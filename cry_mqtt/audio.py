"""What every audio source shares: the interface, the errors, resampling, pacing, raw s16le
and telling a muted input from a quiet room.

Each source, in its own module, yields mono float32 blocks at the model's sample rate:

- :class:`~cry_mqtt.microphone.MicrophoneSource`: sounddevice; the callback only copies into a
  bounded queue.
- :class:`~cry_mqtt.recording.FileSource`: any recording FFmpeg reads (PyAV), optionally paced in
  real time; :func:`~cry_mqtt.recording.read_audio` decodes a whole one the same way (training
  uses it); :class:`~cry_mqtt.recording.StdinSource` and :class:`~cry_mqtt.recording.RawSource`
  read standard input, a recording or raw s16le at 16 kHz (:data:`RAW_RATE`).
- :class:`~cry_mqtt.command.CommandSource`: a command writing raw s16le at 16 kHz to stdout
  (ffmpeg reading a camera).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np


class AudioError(Exception):
    """An audio source cannot be opened or read."""


class AudioSource(Protocol):
    def blocks(self) -> Iterator[np.ndarray]:
        """Mono float32 blocks at the target rate; ends when the source does."""
        ...


def mono(block: np.ndarray) -> np.ndarray:
    """A block of one or more channels mixed down to one by a plain mean."""
    return block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block


class Resampler:
    """Streaming resampler to the target rate (a no-op when the rates agree): each call takes
    the next block of one stream."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        import soxr

        self._stream = (
            None
            if source_rate == target_rate
            else soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32")
        )

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        return block if self._stream is None else self._stream.resample_chunk(block, last=last)


class MutedInput:
    """Tells a muted input from a quiet room: no real microphone sends exact digital zeros, a
    muted one (or a camera's muted audio track) sends nothing else."""

    def __init__(self, rate: int, seconds: float) -> None:
        self._limit = round(rate * seconds)
        self._zeros = 0

    def __call__(self, block: np.ndarray) -> bool:
        """Whether the input has sent only exact zeros for ``seconds``, up to this block."""
        self._zeros = 0 if block.any() else self._zeros + len(block)
        return self._zeros >= self._limit


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """A whole signal at another rate, by the resampler the sources use."""
    return Resampler(source_rate, target_rate)(samples, last=True)


class Pacer:
    """Sleeps so that audio is released no faster than real time."""

    def __init__(self, rate: int, realtime: bool) -> None:
        self._rate = rate
        self._realtime = realtime
        self._start = time.monotonic()
        self._samples = 0

    def __call__(self, n: int) -> None:
        self._samples += n
        if self._realtime:
            delay = self._start + self._samples / self._rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class S16Decoder:
    """Raw signed 16-bit little-endian bytes to float32, keeping an odd byte for the next read."""

    def __init__(self) -> None:
        self._carry = b""

    def __call__(self, chunk: bytes) -> np.ndarray:
        data = self._carry + chunk
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0


RAW_RATE = 16000
"""The rate of raw s16le input (standard input, an audio command), whatever the model's rate: it
is resampled to the model's, so the same ffmpeg line serves every model file."""
