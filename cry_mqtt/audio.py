"""Audio sources: each yields mono float32 blocks at the model's sample rate.

- :class:`MicrophoneSource`: sounddevice; the callback only copies into a bounded queue.
- :class:`FileSource`: any recording FFmpeg reads (PyAV), optionally paced in real time;
  :func:`read_audio` decodes a whole one the same way (training uses it).
- :class:`RawSource`: raw s16le mono at 16 kHz (:data:`RAW_RATE`) from a binary stream.
- :class:`StdinSource`: standard input, a recording or raw s16le, told apart by its first bytes.
- :class:`CommandSource`: a command writing raw s16le at 16 kHz to stdout (ffmpeg reading a camera),
  restarted with back-off whenever it dies; :class:`Redactor` keeps its credentials out of the log.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
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
            with interruptible():
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
        decode = _S16Decoder()
        while chunk := self._stream.read(self._bytes):
            block = decode(chunk)
            self._pace(len(block))
            yield self._resample(block)
        if len(tail := self._resample(np.zeros(0, np.float32), last=True)):
            yield tail


STDERR_LINES = 20
"""Lines of a command's stderr logged per run; the rest are counted."""
STDERR_LINE_BYTES = 500
"""The longest line of a command's stderr kept (ffmpeg's progress output never ends a line)."""
LINE_END = re.compile(rb"[\r\n]")
PRIVATE_ENV = ("SUPERVISOR_TOKEN", "HASSIO_TOKEN")
PRIVATE_ENV_PREFIX = "CRY_MQTT_"
"""What the agent's environment holds that an audio command must not see (the broker password)."""
RATE_WINDOW_SECONDS = 5.0
RATE_TOLERANCE = (0.75, 1.33)
"""Samples a live command may send per second of wall clock, as fractions of the target rate;
outside them two windows in a row, it writes another rate or more channels (a camera's 48 kHz)."""
PR_SET_PDEATHSIG = 1
try:  # looked up before any fork: the child must not load libraries
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the signal handlers still stop the command
    _PRCTL = None


def url_credentials(arguments: Iterable[str]) -> list[str]:
    """The user-info of every URL in ``arguments`` exactly as written, whatever characters it
    holds (``admin:S3#cret`` of ``rtsp://admin:S3#cret@cam``), and percent-decoded."""
    found = []
    for argument in arguments:
        for after_scheme in argument.split("://")[1:]:  # up to the next URL, if any
            user_info = after_scheme[: max(0, after_scheme.rfind("@"))]
            found += [user_info, urllib.parse.unquote(user_info)]
    return found


class Redactor:
    """Removes credentials from text: the secrets it is given (the user-info of the configured
    URLs, ``audio.redact``) exactly, and the user-info of any other URL. Linear in the text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def extended(self, secrets: Iterable[str]) -> Redactor:
        """This redactor with more secrets."""
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str, cut: bool = False) -> str:
        """``text`` without credentials; ``cut``: it was cut short, maybe inside a secret."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        words = re.split(r"(\s+)", text)
        for i, word in enumerate(words):
            scheme, at = word.find("://"), word.rfind("@")
            if scheme != -1 and at > scheme:
                words[i] = f"{word[: scheme + 3]}***{word[at:]}"
        if cut and "://" in words[-1]:
            words[-1] = ""  # a URL cut before its '@' may end in half a password
        text = "".join(words)
        if cut:
            text = self._without_partial_secret(text)
        return text

    def _without_partial_secret(self, text: str) -> str:
        for secret in self._secrets:
            for n in range(min(len(secret) - 1, len(text)), 0, -1):
                if text.endswith(secret[:n]):
                    return text[:-n]
        return text


def _child_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in PRIVATE_ENV and not key.startswith(PRIVATE_ENV_PREFIX)
    }


def _die_with_parent() -> None:
    """In the child before ``exec``: SIGKILL when the agent dies, however it dies (Linux; the
    signal follows the thread that started the child, and the agent starts it on its main one)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))


class _RateCheck:
    """Fails a live stream whose samples do not keep pace with the wall clock. The clock starts
    once the reader has caught up: what the command wrote before (a start's backlog) is no rate."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._start: float | None = None
        self._samples = 0
        self._strikes = 0

    def caught_up(self) -> None:
        """Nothing is waiting to be read."""
        if self._start is None:
            self._start = time.monotonic()

    def __call__(self, samples: int) -> None:
        if self._start is None:
            return
        now = time.monotonic()
        self._samples += samples
        if now - self._start < RATE_WINDOW_SECONDS:
            return
        per_second = self._samples / (now - self._start)
        low, high = RATE_TOLERANCE
        ok = low <= per_second / self._rate <= high
        self._strikes = 0 if ok else self._strikes + 1
        self._start, self._samples = now, 0
        if self._strikes >= 2:  # not for one window: a network hiccup may be caught up
            raise AudioError(
                f"audio command sends about {per_second:.0f} samples a second, not "
                f"{self._rate}: it must write raw s16le mono at {self._rate} Hz (ffmpeg: -ac 1 "
                f"-ar {self._rate} -f s16le -)"
            )


class CommandSource:
    """A command whose stdout is raw s16le mono at :data:`RAW_RATE` (ffmpeg reading a camera),
    resampled to the target rate.

    The command runs once: when it exits, sends nothing for ``stall_seconds``, or sends samples
    faster or slower than real time (another rate), the source fails with :class:`AudioError`
    and the agent starts a new one after a back-off. Its stderr goes to the log line by line,
    bounded, with credentials removed (ffmpeg prints its input URL, password and all, on every
    failure); the last line explains the failure. The command gets none of the agent's secrets
    in its environment and is killed when the agent dies.
    """

    def __init__(
        self,
        command: list[str],
        rate: int,
        block_seconds: float,
        stall_seconds: float,
        redact: Redactor | None = None,
    ) -> None:
        self._redact = (redact or Redactor()).extended(url_credentials(command))
        self._name = Path(command[0]).name
        try:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=_child_environment(),
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise AudioError(f"cannot run audio command {command[0]}: {exc.strerror}") from exc
        log.info("audio command %s started", command[0])  # its arguments may hold passwords
        self._resample = Resampler(RAW_RATE, rate)
        self._bytes = 2 * max(1, round(block_seconds * RAW_RATE))
        self._stall = stall_seconds
        self._last_line = ""
        self._logged = 0
        self._stderr = threading.Thread(target=self._log_stderr, daemon=True)
        self._stderr.start()

    def _log_stderr(self) -> None:
        """Lines end at ``\n`` or ``\r``; one longer than :data:`STDERR_LINE_BYTES` is cut."""
        assert self._process.stderr is not None
        fd = self._process.stderr.fileno()
        pending, cutting = b"", False
        while chunk := os.read(fd, 65536):
            *lines, pending = LINE_END.split(pending + chunk)
            for line in lines:
                if not cutting:
                    self._line(line)
                cutting = False
            if len(pending) > STDERR_LINE_BYTES:
                if not cutting:
                    self._line(pending[:STDERR_LINE_BYTES], cut=True)
                pending, cutting = b"", True
        if pending and not cutting:
            self._line(pending)
        if self._logged > STDERR_LINES:
            log.warning("%s: %d more lines not logged", self._name, self._logged - STDERR_LINES)

    def _line(self, raw: bytes, cut: bool = False) -> None:
        line = self._redact(raw.decode("utf-8", "replace"), cut).strip()
        if not line:
            return
        self._last_line = f"{line} [...]" if cut else line
        self._logged += 1
        if self._logged <= STDERR_LINES:
            log.warning("%s: %s", self._name, self._last_line)

    def _failure(self, what: str) -> AudioError:
        self._stderr.join(timeout=1.0)
        return AudioError(f"{what}: {self._last_line}" if self._last_line else what)

    def blocks(self) -> Iterator[np.ndarray]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        decode = _S16Decoder()
        check_rate = _RateCheck(RAW_RATE)
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0)
                if not ready:
                    check_rate.caught_up()
                    with interruptible():
                        ready, _, _ = select.select([fd], [], [], self._stall)
                if not ready:
                    raise self._failure(f"audio command sent nothing for {self._stall:.0f} s")
                chunk = os.read(fd, self._bytes)
                if not chunk:
                    code = self._process.wait()
                    raise self._failure(f"audio command exited with status {code}")
                block = decode(chunk)
                check_rate(len(block))
                yield self._resample(block)
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._stderr.join(timeout=1.0)
            self._process.stdout.close()
            self._process.stderr.close()


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
    ) -> None:
        sd = import_sounddevice()
        self._sd = sd
        self._stall = stall_seconds
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
            while True:
                block = self._next_block()
                if self._overflows != reported and time.monotonic() >= next_report:
                    log.warning("audio buffer overflowed %d times so far", self._overflows)
                    reported, next_report = self._overflows, time.monotonic() + 60
                yield self._resample(_mono(block))
        finally:
            self._stream.close(ignore_errors=True)

    def _next_block(self) -> np.ndarray:
        # Not interruptible: a signal raising inside the queue's lock could leave it held.
        deadline = time.monotonic() + self._stall
        while (left := deadline - time.monotonic()) > 0:
            try:
                return self._queue.get(timeout=min(left, POLL_SECONDS))
            except queue.Empty:
                check_stop()
        raise AudioError(f"input device {self._name!r} stopped sending audio")


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
