"""Audio sources: each yields mono float32 blocks at the model's sample rate.

- :class:`MicrophoneSource`: sounddevice; the callback only copies into a bounded queue.
- :class:`FileSource`: any recording FFmpeg reads (PyAV), optionally paced in real time;
  :func:`read_audio` decodes a whole one the same way (training uses it).
- :class:`RawSource`: raw s16le mono at the model's rate from a binary stream.
- :class:`StdinSource`: standard input, a recording or raw s16le, told apart by its first bytes.
- :class:`CommandSource`: a command writing raw s16le to stdout (ffmpeg reading a camera),
  restarted with back-off whenever it dies.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np

if TYPE_CHECKING:
    from av.container import InputContainer

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


def decode(container: InputContainer, rate: int) -> Iterator[np.ndarray]:
    """The first audio stream of ``container`` as mono float32 chunks at ``rate`` (FFmpeg's
    decoder and resampler: the agent and training read recordings the same way)."""
    import av  # FFmpeg costs 17 MB of memory: only for recordings, not the microphone

    # Planar float at the stream's own channel layout; the mix-down is a plain mean, as for the
    # microphone (FFmpeg's own down-mix weights channels by layout).
    resampler = av.AudioResampler(format="fltp", rate=rate)
    for frame in container.decode(container.streams.audio[0]):
        for out in resampler.resample(frame):
            yield out.to_ndarray().mean(axis=0, dtype=np.float32)
    for out in resampler.resample(None):
        yield out.to_ndarray().mean(axis=0, dtype=np.float32)


def read_audio(path: Path, rate: int) -> np.ndarray:
    """A whole recording as mono float32 at ``rate`` (empty if it holds no samples)."""
    import av

    with av.open(str(path)) as container:
        chunks = list(decode(container, rate))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


class FileSource:
    """A recording in any format FFmpeg reads, from a path or a binary stream (standard input),
    mixed down to mono, resampled and optionally paced in real time."""

    def __init__(
        self,
        file: Path | BinaryIO,
        rate: int,
        realtime: bool,
        block_seconds: float = 0.1,
        name: str | None = None,
    ) -> None:
        import av

        self.name = name or str(file)
        if isinstance(file, Path) and file.is_file() and file.stat().st_size == 0:
            raise AudioError(f"{self.name}: holds no audio samples (the file is empty)")
        try:
            self._container = av.open(str(file) if isinstance(file, Path) else file)
        except FileNotFoundError:
            raise AudioError(f"{self.name}: no such file") from None
        except IsADirectoryError:
            raise AudioError(f"{self.name}: is a folder, not a recording") from None
        except (av.FFmpegError, OSError) as exc:
            raise AudioError(
                f"{self.name}: not a recording FFmpeg can read ({_reason(exc)})"
            ) from exc
        if not self._container.streams.audio:
            self._container.close()
            raise AudioError(f"{self.name}: holds no audio stream")
        self._rate = rate
        self._block = max(1, round(block_seconds * rate))
        self._pace = _Pacer(rate, realtime)

    def blocks(self) -> Iterator[np.ndarray]:
        """Blocks of about ``block_seconds``; :class:`AudioError` if the file holds no audio."""
        import av

        total, pending, pending_len = 0, [], 0
        with self._container:
            try:
                for chunk in decode(self._container, self._rate):
                    pending.append(chunk)
                    pending_len += len(chunk)
                    if pending_len >= self._block:
                        self._pace(pending_len)
                        yield np.concatenate(pending)
                        total, pending, pending_len = total + pending_len, [], 0
            except av.FFmpegError as exc:
                raise AudioError(
                    f"{self.name}: cannot decode after {total / self._rate:.1f} s ({_reason(exc)})"
                ) from exc
        if pending_len:
            self._pace(pending_len)
            yield np.concatenate(pending)
        elif total == 0:
            raise AudioError(f"{self.name}: holds no audio samples")

    @property
    def format(self) -> str:
        """FFmpeg's short name of the container format (``wav``, ``mov``, ``flac``...)."""
        return self._container.format.name.split(",")[0]


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


CONTAINER_MAGIC = (
    b"RIFF",
    b"RF64",
    b"FORM",
    b"fLaC",
    b"OggS",
    b"ID3",
    b"caff",
    b"#!AMR",
    b"\x1aE\xdf\xa3",
)
"""How recordings begin: WAV, AIFF, FLAC, Ogg, MP3 with tags, CAF, AMR, Matroska/WebM (MP4,
M4A and 3GP say ``ftyp`` at byte 4)."""


def open_recording(name: str, rate: int, realtime: bool, block_seconds: float = 0.1) -> AudioSource:
    """A recording given on the command line: a path, or ``-`` for standard input."""
    if name == "-":
        return StdinSource(sys.stdin.buffer, rate, realtime, block_seconds)
    return FileSource(Path(name), rate, realtime, block_seconds)


class StdinSource:
    """Standard input: a recording in any format FFmpeg reads as a stream (recognised by its
    first bytes), else raw s16le mono at the target rate. Nothing is read before :meth:`blocks`."""

    def __init__(self, stream: BinaryIO, rate: int, realtime: bool, block_seconds: float) -> None:
        self._stream = stream
        self._args = (rate, realtime, block_seconds)

    def blocks(self) -> Iterator[np.ndarray]:
        head = self._stream.read(12)
        if not head:
            raise AudioError("standard input: no audio (it is empty)")
        stream = _Prefixed(head, self._stream)
        if head[4:8] == b"ftyp":
            yield from self._mp4(stream)
        elif head.startswith(CONTAINER_MAGIC):
            source = FileSource(stream, *self._args, name="standard input")
            log.info("standard input holds a %s recording", source.format)
            yield from source.blocks()
        else:
            log.info(
                "standard input: raw s16le mono at %d Hz (no recording format seen)", self._args[0]
            )
            yield from RawSource(stream, *self._args).blocks()

    def _mp4(self, stream: BinaryIO) -> Iterator[np.ndarray]:
        """MP4, M4A or 3GP: readable from a pipe only when the index comes before the audio."""
        try:
            yield from FileSource(stream, *self._args, name="standard input").blocks()
        except AudioError as exc:
            raise AudioError(
                f"{exc}; an MP4, M4A or 3GP file usually keeps its index at the end, where a "
                "pipe cannot reach: give the file's path instead of -"
            ) from exc


class _Prefixed(io.RawIOBase):
    """A read-only stream: ``head`` (bytes already read to sniff the format), then ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._head:
            data = self._rest.read(len(buffer))
        else:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


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


CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/?#]*@")
"""The user-info part of a URL (``rtsp://user:password@``), up to its last ``@``."""
STDERR_LINES = 20
"""Lines of a command's stderr logged per run; the rest are counted."""


class Redactor:
    """Removes credentials from text: URL user-info and the strings the config marks secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = CREDENTIALS.sub(r"\1***@", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class CommandSource:
    """A command whose stdout is raw s16le mono at the target rate (ffmpeg reading a camera).

    The command runs once: when it exits, or sends nothing for ``stall_seconds``, the source
    fails with :class:`AudioError` and the agent starts a new one after a back-off. Its stderr
    goes to the log line by line, with credentials removed (ffmpeg prints its input URL, password
    and all, on every failure); the last line explains the failure.
    """

    def __init__(
        self,
        command: list[str],
        rate: int,
        block_seconds: float,
        stall_seconds: float,
        redact: Redactor | None = None,
    ) -> None:
        self._redact = redact or Redactor()
        self._name = Path(command[0]).name
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise AudioError(f"cannot run audio command {command[0]}: {exc.strerror}") from exc
        log.info("audio command %s started", command[0])  # its arguments may hold passwords
        self._bytes = 2 * max(1, round(block_seconds * rate))
        self._stall = stall_seconds
        self._last_line = ""
        self._stderr = threading.Thread(target=self._log_stderr, daemon=True)
        self._stderr.start()

    def _log_stderr(self) -> None:
        assert self._process.stderr is not None
        logged = 0
        for raw in self._process.stderr:
            line = self._redact(raw.decode("utf-8", "replace").rstrip())
            if not line:
                continue
            self._last_line = line
            logged += 1
            if logged <= STDERR_LINES:
                log.warning("%s: %s", self._name, line)
        if logged > STDERR_LINES:
            log.warning("%s: %d more lines not logged", self._name, logged - STDERR_LINES)

    def _failure(self, what: str) -> AudioError:
        self._stderr.join(timeout=1.0)
        return AudioError(f"{what}: {self._last_line}" if self._last_line else what)

    def blocks(self) -> Iterator[np.ndarray]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        decode = _S16Decoder()
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], self._stall)
                if not ready:
                    raise self._failure(f"audio command sent nothing for {self._stall:.0f} s")
                chunk = os.read(fd, self._bytes)
                if not chunk:
                    code = self._process.wait()
                    raise self._failure(f"audio command exited with status {code}")
                yield decode(chunk)
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._stderr.join(timeout=1.0)
            self._process.stdout.close()
            self._process.stderr.close()


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
        what = (
            "no microphone found (PortAudio sees no input device)"
            if device is None
            else f"no input device {device!r} ({exc})"
        )
        raise AudioError(
            f"{what}. `cry-mqtt devices` lists the inputs (set audio.device); "
            "a camera's audio works with audio.source: command; `cry-mqtt --input FILE` runs the "
            "agent on a recording (`cry-mqtt score FILE` scores one offline)"
        ) from exc


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
