"""Recordings: a file in any format FFmpeg reads (PyAV), or standard input holding one or raw
s16le at 16 kHz. PyAV is imported only when a recording is opened: FFmpeg costs the agent 17 MB
of memory that a microphone or a camera command does not need."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from cry_mqtt.audio import RAW_RATE, AudioError, AudioSource, Pacer, Resampler, S16Decoder
from cry_mqtt.stopping import interruptible

if TYPE_CHECKING:
    from av.container import InputContainer

log = logging.getLogger(__name__)


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
        self._pace = Pacer(rate, realtime)

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


class RawSource:
    """Raw signed 16-bit little-endian mono at :data:`RAW_RATE` from a binary stream, resampled
    to the target rate."""

    def __init__(self, stream: BinaryIO, rate: int, realtime: bool, block_seconds: float = 0.1):
        self._stream = stream
        self._bytes = 2 * max(1, round(block_seconds * RAW_RATE))
        self._pace = Pacer(RAW_RATE, realtime)
        self._resample = Resampler(RAW_RATE, rate)

    def blocks(self) -> Iterator[np.ndarray]:
        decode = S16Decoder()
        while chunk := self._stream.read(self._bytes):
            block = decode(chunk)
            self._pace(len(block))
            yield self._resample(block)
        if len(tail := self._resample(np.zeros(0, np.float32), last=True)):
            yield tail
