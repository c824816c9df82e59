"""Audio sources: each yields mono float32 blocks at the model's sample rate.

- :class:`MicrophoneSource`: sounddevice; the callback only copies into a bounded queue.
- :class:`FileSource`: anything soundfile reads, optionally paced in real time.
- :class:`RawSource`: raw s16le mono at the model's rate from a binary stream (stdin).
- :class:`CommandSource`: a command writing raw s16le to stdout (ffmpeg reading a camera),
  restarted with back-off whenever it dies.
"""

from __future__ import annotations

import logging
import os
import queue
import select
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


class _S16Decoder:
    """Raw signed 16-bit little-endian bytes to float32, keeping an odd byte for the next read."""

    def __init__(self) -> None:
        self._carry = b""

    def __call__(self, chunk: bytes) -> np.ndarray:
        data = self._carry + chunk
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0


class RawSource:
    """Raw signed 16-bit little-endian mono at the target rate from a binary stream."""

    def __init__(self, stream: BinaryIO, rate: int, realtime: bool, block_seconds: float = 0.1):
        self._stream = stream
        self._bytes = 2 * max(1, round(block_seconds * rate))
        self._pace = _Pacer(rate, realtime)

    def blocks(self) -> Iterator[np.ndarray]:
        decode = _S16Decoder()
        while chunk := self._stream.read(self._bytes):
            block = decode(chunk)
            self._pace(len(block))
            yield block


class CommandSource:
    """A command whose stdout is raw s16le mono at the target rate (ffmpeg reading a camera).

    The command runs once: when it exits, or sends nothing for ``stall_seconds``, the source
    fails with :class:`AudioError` and the agent starts a new one after a back-off.
    """

    def __init__(
        self, command: list[str], rate: int, block_seconds: float, stall_seconds: float
    ) -> None:
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise AudioError(f"cannot run audio command {command[0]}: {exc}") from exc
        log.info("audio command %s started", command[0])  # its arguments may hold passwords
        self._bytes = 2 * max(1, round(block_seconds * rate))
        self._stall = stall_seconds

    def blocks(self) -> Iterator[np.ndarray]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        decode = _S16Decoder()
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], self._stall)
                if not ready:
                    raise AudioError(f"audio command sent nothing for {self._stall:.0f} s")
                chunk = os.read(fd, self._bytes)
                if not chunk:
                    code = self._process.wait()
                    raise AudioError(f"audio command exited with status {code}")
                yield decode(chunk)
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process.stdout.close()


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
        stall_seconds: float,
    ) -> None:
        sd = import_sounddevice()
        self._sd = sd
        self._stall = stall_seconds
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
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise AudioError(f"cannot start input device {self._name!r}: {exc}") from exc
        try:
            while True:
                try:
                    block = self._queue.get(timeout=self._stall)
                except queue.Empty:
                    raise AudioError(f"input device {self._name!r} stopped sending audio") from None
                if self._overflows != reported and time.monotonic() >= next_report:
                    log.warning("audio buffer overflowed %d times so far", self._overflows)
                    reported, next_report = self._overflows, time.monotonic() + 60
                yield self._resample(_mono(block))
        finally:
            self._stream.close(ignore_errors=True)


def import_sounddevice():
    """sounddevice, or an :class:`AudioError` saying that PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(f"cannot load PortAudio ({exc}); install libportaudio2") from exc
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
