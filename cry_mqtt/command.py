"""An audio command: a child process writing raw s16le mono at 16 kHz to stdout (ffmpeg reading a
camera's stream), watched for what cameras and networks do.

- A slow start (ffmpeg probing an H.264 stream) gets ``start_seconds`` for its first audio; after
  that, ``stall_seconds`` of nothing is a failure.
- A link that stalls and then catches up (TCP) is no wrong rate: the rate is judged over the whole
  run, from the first audio, and only when the reader has caught up with the command.
- A command that closes its output but keeps running, or leaves children behind (a shell
  pipeline), is ended with its whole process group; no wait on it is without a time limit.
- Its stderr reaches the log line by line, bounded, and without credentials (:class:`Redactor`).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import logging
import os
import re
import select
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from cry_mqtt.audio import RAW_RATE, AudioError, Resampler, S16Decoder
from cry_mqtt.stopping import interruptible

log = logging.getLogger(__name__)

STDERR_LINES = 20
"""Lines of a command's stderr logged per run; the rest are counted."""
STDERR_LINE_BYTES = 500
"""The longest line of a command's stderr kept (ffmpeg's progress output never ends a line)."""
LINE_END = re.compile(rb"[\r\n]")
AUTHORIZATION = re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*).*")
"""An HTTP authorization header as ffmpeg prints it at ``-loglevel debug``: the rest of the line
is a credential (Basic: the password in base64; Digest: a response derived from it)."""
PRIVATE_ENV = ("SUPERVISOR_TOKEN", "HASSIO_TOKEN")
PRIVATE_ENV_PREFIX = "CRY_MQTT_"
"""What the agent's environment holds that an audio command must not see (the broker password)."""
RATE_SETTLE_SECONDS = 3.0
"""The rate clock starts at the last time the reader caught up in this long after the first
audio: by then a start's backlog has been read, however the reads and writes interleaved."""
RATE_TOLERANCE = (0.75, 1.33)
"""A live command's rate is judged over its whole run: it fails when the audio received strays
outside these fractions of the wall clock's *and* by more than a stall could explain
(``stall_seconds`` and one more). A camera at 48 kHz gains 2 s every second and fails about 6 s
after its first audio, one at 8 kHz loses 0.5 s a second and fails after about 15 s; a link that
stalls and catches up never strays that far."""
RATE_DRIFT_CAUGHT = 0.3
"""The rate check catches within :func:`rate_judged_within` a command whose audio drifts from
the wall clock by this much a second or more: 8, 11.025, 22.05, 24, 32, 44.1 or 48 kHz against
16 kHz, mono written as stereo."""


def rate_judged_within(stall_seconds: float) -> float:
    """Seconds after its first audio by which a command at a wrong rate has failed the rate
    check (:data:`RATE_DRIFT_CAUGHT`); 24 s at the default ``stall_seconds``."""
    return RATE_SETTLE_SECONDS + (stall_seconds + 1.0) / RATE_DRIFT_CAUGHT + 1.0


QUERY_SECRETS = re.compile(
    r"(?i)([?&;]\w*(?:pass|pwd|token|secret|auth|key)\w*=)((?:[^&;#\s'\":]|:(?!\s|$))*)"
)
"""A URL parameter that carries a password or a token (cameras that take it in the query)."""
EXIT_WAIT_SECONDS = 2.0
"""How long a command that closed its output may take to exit before it is killed."""
KILL_WAIT_SECONDS = 5.0
PR_SET_PDEATHSIG = 1
try:  # looked up before any fork: the child must not load libraries
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the signal handlers still stop the command
    _PRCTL = None


def url_credentials(arguments: Iterable[str]) -> list[str]:
    """What the URLs in ``arguments`` give away: the user-info of each exactly as written,
    whatever characters it holds (``admin:S3#cret`` of ``rtsp://admin:S3#cret@cam``), and
    percent-decoded; the password alone; and each as HTTP Basic authentication sends it."""
    found = []
    for argument in arguments:
        for after_scheme in argument.split("://")[1:]:  # up to the next URL, if any
            # The user-info ends at the last '@' of the authority (up to the first '/'), or, for
            # a password holding a '/', at the last '@' of all.
            authority = after_scheme.split("/", 1)[0]
            for at in {authority.rfind("@"), after_scheme.rfind("@")} - {-1, 0}:
                for form in (after_scheme[:at], urllib.parse.unquote(after_scheme[:at])):
                    password = form.partition(":")[2]
                    found += [form, password, base64.b64encode(form.encode()).decode()]
    return [secret for secret in found if secret]


class Redactor:
    """Removes credentials from text: the secrets it is given (what the configured URLs give
    away, ``audio.redact``) exactly, the user-info of any other URL, and the value of any
    authorization header. Linear in the text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def extended(self, secrets: Iterable[str]) -> Redactor:
        """This redactor with more secrets."""
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str, cut: bool = False) -> str:
        """``text`` without credentials; ``cut``: it was cut short, maybe inside a secret."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = AUTHORIZATION.sub(r"\1***", text)
        text = QUERY_SECRETS.sub(r"\1***", text)
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
        """``text`` cut short without the longest start of any secret that it ends in (and
        without the half character that the cut may leave)."""
        text = text.removesuffix("\ufffd")
        longest = max(
            (
                n
                for secret in self._secrets
                for n in range(min(len(secret) - 1, len(text)), 0, -1)
                if text.endswith(secret[:n])
            ),
            default=0,
        )
        return text[: len(text) - longest]


def _child_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in PRIVATE_ENV and not key.startswith(PRIVATE_ENV_PREFIX)
    }


def _die_with_parent() -> None:
    """In the child before ``exec``: SIGKILL when the agent dies, however it dies (Linux; the
    signal follows the thread that started the child, and the agent starts it on its main one).
    The child's own children are not covered: a pipeline's writers end by SIGPIPE once the
    agent's end of the pipe is gone."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))


class _RateCheck:
    """Fails a live stream whose samples do not keep pace with the wall clock, judged over the
    whole run (:data:`RATE_TOLERANCE`) and only when the reader has caught up with the command,
    so that a stall whose audio comes late (TCP) counts once all of it is in. Neither a slow
    start nor its backlog counts (:data:`RATE_SETTLE_SECONDS`)."""

    def __init__(self, rate: int, stall_seconds: float) -> None:
        self._rate = rate
        self._slack = stall_seconds + 1.0
        self._first_audio: float | None = None
        self._start: float | None = None
        self._samples = 0

    def received(self, samples: int) -> None:
        """``samples`` were read."""
        if self._first_audio is None:
            self._first_audio = time.monotonic()
        self._samples += samples

    def caught_up(self) -> None:
        """Nothing is waiting to be read: (re)start the clock, or judge the rate so far."""
        now = time.monotonic()
        if self._first_audio is None:
            return
        if self._start is None or now - self._first_audio < RATE_SETTLE_SECONDS:
            self._start, self._samples = now, 0
            return
        if (elapsed := now - self._start) <= 0:
            return
        audio = self._samples / self._rate
        low, high = RATE_TOLERANCE
        if not low <= audio / elapsed <= high and abs(audio - elapsed) > self._slack:
            raise AudioError(
                f"audio command sends about {self._samples / elapsed:.0f} samples a second, not "
                f"{self._rate}: it must write raw s16le mono at {self._rate} Hz (ffmpeg: -ac 1 "
                f"-ar {self._rate} -f s16le -)"
                + (", or its stream loses audio" if audio < elapsed else "")
            )


class CommandSource:
    """A command whose stdout is raw s16le mono at :data:`RAW_RATE` (ffmpeg reading a camera),
    resampled to the target rate.

    The command runs once: when it exits or closes its output, sends no audio within
    ``start_seconds`` or then nothing for ``stall_seconds``, or sends samples faster or slower
    than real time (another rate), the source fails with :class:`AudioError` and the agent
    starts a new one after a back-off. Its stderr goes to the log line by line, bounded, with
    credentials removed (ffmpeg prints its input URL, password and all, on every failure); the
    last line explains the failure. The command runs in a process group of its own, ended as a
    whole; it gets none of the agent's secrets in its environment and is killed when the agent
    dies.
    """

    def __init__(
        self,
        command: list[str],
        rate: int,
        block_seconds: float,
        stall_seconds: float,
        start_seconds: float,
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
                process_group=0,
            )
        except OSError as exc:
            raise AudioError(f"cannot run audio command {command[0]}: {exc.strerror}") from exc
        log.info("audio command %s started", command[0])  # its arguments may hold passwords
        self._resample = Resampler(RAW_RATE, rate)
        self._bytes = 2 * max(1, round(block_seconds * RAW_RATE))
        self._stall = stall_seconds
        self._start = start_seconds
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
                    self._line(pending)
                pending, cutting = b"", True
        if pending and not cutting:
            self._line(pending)
        if self._logged > STDERR_LINES:
            log.warning("%s: %d more lines not logged", self._name, self._logged - STDERR_LINES)

    def _line(self, raw: bytes) -> None:
        cut = len(raw) > STDERR_LINE_BYTES
        line = self._redact(raw[:STDERR_LINE_BYTES].decode("utf-8", "replace"), cut).strip()
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
        decode = S16Decoder()
        rate = _RateCheck(RAW_RATE, self._stall)
        # Before the first audio, the start's grace; after it, the stall limit.
        wait, silence = (
            self._start,
            (
                f"audio command sent no audio within {self._start:g} s of its start "
                "(audio.start_seconds)"
            ),
        )
        stalled = f"audio command sent nothing for {self._stall:g} s (audio.stall_seconds)"
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0)
                if not ready:
                    rate.caught_up()
                    with interruptible():
                        ready, _, _ = select.select([fd], [], [], wait)
                if not ready:
                    raise self._failure(silence)
                chunk = os.read(fd, self._bytes)
                if not chunk:
                    raise self._failure(self._closed())
                wait, silence = self._stall, stalled
                block = decode(chunk)
                rate.received(len(block))
                yield self._resample(block)
        finally:
            self._end()

    def _closed(self) -> str:
        """What the command did when its output closed: it exited, or it is stopped now."""
        try:
            return f"audio command exited with status {self._process.wait(EXIT_WAIT_SECONDS)}"
        except subprocess.TimeoutExpired:
            return "audio command closed its output but kept running (stopped it)"

    def _end(self) -> None:
        """Kill the command's whole process group (a shell pipeline's children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        try:
            self._process.wait(KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("audio command %d did not end after SIGKILL", self._process.pid)
        self._stderr.join(timeout=1.0)
        self._process.stdout.close()
        self._process.stderr.close()
