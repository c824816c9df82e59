"""Audio sources: each yields mono float32 blocks at the model's sample rate.

- :class:`MicrophoneSource`: sounddevice; the callback only copies into a bounded queue.
- :class:`FileSource`: any recording FFmpeg reads (PyAV), optionally paced in real time;
  :func:`read_audio` decodes a whole one the same way (training uses it).
- :class:`RawSource`: raw s16le mono at 16 kHz (:data:`RAW_RATE`) from a binary stream.
- :class:`StdinSource`: standard input, a recording or raw s16le, told apart by its first bytes.
- :class:`~cry_mqtt.command.CommandSource` (its own module): a command writing raw s16le at 16 kHz
  to stdout (ffmpeg reading a camera).

:class:`MutedInput` tells a muted live input from a quiet room.
"""

from __future__ import annotations

import io
import logging
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np

from cry_mqtt.stopping import POLL_SECONDS, check_stop, interruptible

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
        with interruptible():
            head = self._stream.read(12)
        if not head:
            raise AudioError("standard input: no audio (it is empty)")
        stream = _Prefixed(head, self._stream)
        if head[4:8] == b"ftyp":
            yield from self._mp4(stream)
        elif head.startswith(CONTAINER_MAGIC):
            source = FileSource(stream, *self._args, name="standard input")
            log.info("standard input holds a recording (%s)", source.format)
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
            with interruptible():
                data = self._rest.read(len(buffer))
        else:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


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


class RawSource:
    """Raw signed 16-bit little-endian mono at :data:`RAW_RATE` from a binary stream, resampled
    to the target rate."""

    def __init__(self, stream: BinaryIO, rate: int, realtime: bool, block_seconds: float = 0.1):
        self._stream = stream
        self._bytes = 2 * max(1, round(block_seconds * RAW_RATE))
        self._pace = _Pacer(RAW_RATE, realtime)
        self._resample = Resampler(RAW_RATE, rate)

    def blocks(self) -> Iterator[np.ndarray]:
        decode = S16Decoder()
        while chunk := self._stream.read(self._bytes):
            block = decode(chunk)
            self._pace(len(block))
            yield self._resample(block)
        if len(tail := self._resample(np.zeros(0, np.float32), last=True)):
            yield tail


def capture_rate(sd, device: str | int | None, channels: int, rate: int, info: dict) -> int:
    """The rate to open an input device at: the target rate where the device takes it (no
    resampling), else its default rate."""
    try:
        sd.check_input_settings(device=device, channels=channels, samplerate=rate)
    except (ValueError, sd.PortAudioError):
        return int(info["default_samplerate"])
    return rate


class MicrophoneSource:
    """An input device through sounddevice, at the target rate where it can, else at its own
    rate resampled to the target rate."""

    def __init__(
        self,
        device: str | int | None,
        rate: int,
        samplerate: int | None,
        channels: int,
        block_seconds: float,
        buffer_seconds: float,
        stall_seconds: float,
        start_seconds: float,
    ) -> None:
        sd = import_sounddevice()
        self._sd = sd
        self._stall = stall_seconds
        self._start = start_seconds
        info = find_input_device(device)
        try:
            self._device_rate = samplerate or capture_rate(sd, device, channels, rate, info)
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
        self._resample = Resampler(self._device_rate, rate)

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
            block = self._next_block(
                self._start, f"sent no audio within {self._start:g} s (audio.start_seconds)"
            )
            while True:
                if self._overflows != reported and time.monotonic() >= next_report:
                    log.warning("audio buffer overflowed %d times so far", self._overflows)
                    reported, next_report = self._overflows, time.monotonic() + 60
                yield self._resample(_mono(block))
                block = self._next_block(
                    self._stall,
                    f"stopped sending audio for {self._stall:g} s (audio.stall_seconds)",
                )
        finally:
            self._stream.close(ignore_errors=True)

    def _next_block(self, seconds: float, failure: str) -> np.ndarray:
        # Not interruptible: a signal raising inside the queue's lock could leave it held.
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                return self._queue.get(timeout=min(left, POLL_SECONDS))
            except queue.Empty:
                check_stop()
        raise AudioError(f"input device {self._name!r} {failure}")


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
        if device is None:
            what = "no microphone found (PortAudio sees no input device)"
        elif str(exc).startswith("No input device matching"):
            what = f"no input device matching {device!r}"
        else:
            what = f"no input device {device!r} ({exc})"
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
