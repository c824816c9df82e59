"""Audio sources: each yields mono float32 blocks at the model's sample rate.

- :class:`MicrophoneSource`: sounddevice; the callback only copies into a bounded queue.
- :class:`FileSource`: anything soundfile reads, optionally paced in real time.
- :class:`RawSource`: raw s16le mono at the model's rate from a binary stream (stdin).
- :class:`CommandSource`: a command writing raw s16le to stdout (ffmpeg reading a camera),
  restarted with back-off whenever it dies.
"""

from __future__ import annotations

import logging
import queue
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

log = logging.getLogger(__name__)


class AudioError(Exception):
    """An audio source cannot be opened or read."""


class AudioSource(Protocol):
    def blocks(self) -> Iterator[np.ndarray]:
        """Mono float32 blocks at the target rate; ends when the source does."""
        ...


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block


class _Resampler:
    """Streaming resampler to the target rate (a no-op when the rates agree)."""

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


class _Pacer:
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


class FileSource:
    """An audio file of any format soundfile reads, resampled and mixed down to mono."""

    def __init__(self, path: Path, rate: int, realtime: bool, block_seconds: float = 0.1) -> None:
        import soundfile

        try:
            self._file = soundfile.SoundFile(str(path))
        except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
            raise AudioError(f"cannot read audio file {path}: {exc}") from exc
        self._rate = rate
        self._block = max(1, round(block_seconds * self._file.samplerate))
        self._resample = _Resampler(self._file.samplerate, rate)
        self._pace = _Pacer(rate, realtime)

    def blocks(self) -> Iterator[np.ndarray]:
        with self._file:
            while True:
                data = self._file.read(self._block, dtype="float32", always_2d=True)
                last = len(data) < self._block
                out = self._resample(_mono(data), last=last)
                if len(out):
                    self._pace(len(out))
                    yield out
                if last:
                    return


class RawSource:
    """Raw signed 16-bit little-endian mono at the target rate from a binary stream."""

    def __init__(self, stream: BinaryIO, rate: int, realtime: bool, block_seconds: float = 0.1):
        self._stream = stream
        self._bytes = 2 * max(1, round(block_seconds * rate))
        self._pace = _Pacer(rate, realtime)

    def blocks(self) -> Iterator[np.ndarray]:
        carry = b""
        while chunk := self._stream.read(self._bytes):
            data = carry + chunk
            whole = len(data) - len(data) % 2
            carry = data[whole:]
            block = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
            self._pace(len(block))
            yield block


class CommandSource:
    """A command whose stdout is raw s16le mono at the target rate, restarted when it dies."""

    def __init__(self, command: list[str], rate: int, max_backoff: float, block_seconds: float):
        self._command = command
        self._rate = rate
        self._max_backoff = max_backoff
        self._block_seconds = block_seconds

    def blocks(self) -> Iterator[np.ndarray]:
        backoff = 1.0
        while True:
            started = time.monotonic()
            try:
                process = subprocess.Popen(
                    self._command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
                )
            except OSError as exc:
                raise AudioError(f"cannot run audio command {self._command[0]}: {exc}") from exc
            log.info("audio command started: %s", shlex.join(self._command))
            try:
                yield from RawSource(
                    process.stdout, self._rate, False, self._block_seconds
                ).blocks()
            finally:
                if process.poll() is None:
                    process.terminate()
                code = process.wait()
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.warning("audio command exited with status %s; restarting in %.0f s", code, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)


class MicrophoneSource:
    """An input device through sounddevice, at its own rate, resampled to the target rate."""

    def __init__(
        self,
        device: str | int | None,
        rate: int,
        samplerate: int | None,
        channels: int,
        block_seconds: float,
        buffer_seconds: float,
    ) -> None:
        sd = import_sounddevice()
        info = find_input_device(device)
        try:
            self._device_rate = int(samplerate or info["default_samplerate"])
            self._queue: queue.Queue[np.ndarray] = queue.Queue(
                maxsize=max(1, round(buffer_seconds / block_seconds))
            )
            self._overflows = 0
            self._stream = sd.InputStream(
                device=device,
                samplerate=self._device_rate,
                channels=channels,
                dtype="float32",
                blocksize=round(block_seconds * self._device_rate),
                callback=self._callback,
            )
        except (ValueError, sd.PortAudioError) as exc:
            raise AudioError(f"cannot open input device {device!r}: {exc}") from exc
        self._name = info["name"]
        self._resample = _Resampler(self._device_rate, rate)

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self._overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self._overflows += 1

    def blocks(self) -> Iterator[np.ndarray]:
        log.info("listening on %r at %d Hz", self._name, self._device_rate)
        reported, next_report = 0, 0.0
        with self._stream:
            while True:
                try:
                    block = self._queue.get(timeout=2.0)
                except queue.Empty:
                    raise AudioError(
                        f"input device {self._name!r} stopped delivering audio"
                    ) from None
                if self._overflows != reported and time.monotonic() >= next_report:
                    log.warning("audio buffer overflowed %d times so far", self._overflows)
                    reported, next_report = self._overflows, time.monotonic() + 60
                yield self._resample(_mono(block))


def import_sounddevice():
    """sounddevice, or an :class:`AudioError` saying that PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(
            f"sounddevice cannot load PortAudio ({exc}); install libportaudio2"
        ) from exc
    return sounddevice


def find_input_device(device: str | int | None) -> dict:
    """sounddevice's description of an input device (by index or name part; None: default)."""
    sd = import_sounddevice()
    try:
        return sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioError(f"no usable input device {device!r}: {exc}") from exc


def list_input_devices() -> list[str]:
    """One line per input device: index, name, channels and default rate."""
    sd = import_sounddevice()
    lines = []
    for index, device in enumerate(sd.query_devices()):
        if device["max_input_channels"] > 0:
            marker = "*" if index == sd.default.device[0] else " "
            lines.append(
                f"{marker}{index:3d}  {device['name']}  "
                f"({device['max_input_channels']} ch, {device['default_samplerate']:.0f} Hz)"
            )
    return lines
