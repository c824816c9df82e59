"""What each crying episode leaves in the house: its audio and its picture.

The last seconds of audio are always at hand (:class:`PreRoll`); one Opus file per episode is
written as the audio comes (:class:`OpusFile`) into a folder bounded by count, age and size, the
oldest deleted first (:func:`prune`); :class:`EpisodeRecorder` ties them together and
:class:`EpisodeEvidence` adds the picture and the night's numbers for the agent. A failure (a
full disk, a read-only or missing folder) is logged once and loses that recording only:
detection never waits on it. No audio goes to the broker.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import av
import numpy as np

from cry_mqtt.audio import Resampler
from cry_mqtt.config import Config, RecordConfig
from cry_mqtt.features import FeatureParams
from cry_mqtt.picture import episode_picture
from cry_mqtt.state import NightTally
from cry_mqtt.throttle import Throttle

log = logging.getLogger(__name__)

OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
"""The sample rates Opus encodes; other audio is resampled to 16 kHz first."""
OPUS_BIT_RATE = 24000
OPUS_EFFORT = "3"
"""libopus's encoder complexity (0-10; 10 costs four times the CPU for a file as large)."""
SUFFIX = ".ogg"
PICTURE_SPAN_SECONDS = 60.0
"""The start of an episode that its picture shows, its lead included."""
PICTURE_EVERY_SECONDS = 10.0
"""While an episode lasts, its picture is drawn again this often (besides at ON and at OFF)."""
MAX_SCORES = 2400
"""Scores kept for the picture: more than its length at the shortest hop."""


def to_s16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit integers."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)


class PreRoll:
    """The last ``seconds`` of a stream, as 16-bit samples, by their index in the stream."""

    def __init__(self, rate: int, seconds: float) -> None:
        self._buffer = np.zeros(max(1, round(rate * seconds)), np.int16)
        self.end = 0
        """Index of the next sample of the stream."""

    def push(self, samples: np.ndarray) -> None:
        samples = samples[-len(self._buffer) :]
        at = self.end % len(self._buffer)
        first = min(len(samples), len(self._buffer) - at)
        self._buffer[at : at + first] = samples[:first]
        self._buffer[: len(samples) - first] = samples[first:]
        self.end += len(samples)

    def since(self, index: int) -> np.ndarray:
        """The samples from stream index ``index`` on, as far back as kept."""
        count = min(self.end - max(index, 0), len(self._buffer), self.end)
        if count <= 0:
            return self._buffer[:0].copy()
        start = (self.end - count) % len(self._buffer)
        return np.roll(self._buffer, -start)[:count].copy()


class OpusFile:
    """An Ogg Opus file written block by block (mono, 16-bit input)."""

    def __init__(self, path: Path, rate: int) -> None:
        self._rate = rate
        self._container = av.open(str(path), "w", format="ogg")
        self._stream = self._container.add_stream(
            "libopus", rate=rate, layout="mono", options={"compression_level": OPUS_EFFORT}
        )
        self._stream.bit_rate = OPUS_BIT_RATE
        self._pts = 0

    def write(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = self._rate, self._pts
        self._pts += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


def prune(folder: Path, keep_count: int, keep_seconds: float, keep_bytes: float) -> list[Path]:
    """Delete the oldest recordings in ``folder`` beyond ``keep_count`` files, older than
    ``keep_seconds`` or beyond ``keep_bytes`` in all; the deleted ones."""
    clips = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    now, total, deleted = time.time(), 0, []
    for count, clip in enumerate(clips, 1):
        stat = clip.stat()
        total += stat.st_size
        if count > keep_count or now - stat.st_mtime > keep_seconds or total > keep_bytes:
            clip.unlink(missing_ok=True)
            deleted.append(clip)
    return deleted


def free_path(folder: Path, stem: str) -> Path:
    """``folder/stem.ogg``, or ``stem-2.ogg``, ``stem-3.ogg``... where that is taken (two
    episodes begun in one second, as when a file is played faster than real time)."""
    path, n = folder / f"{stem}{SUFFIX}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{SUFFIX}"
    return path


class EpisodeRecorder:
    """Records each episode while :attr:`enabled`: from ``config.pre_roll_seconds`` before the
    window that turned crying on (``lead_seconds``: a window's length) to the OFF, at most
    ``config.max_episode_seconds``, to an Opus file in ``folder``."""

    def __init__(self, config: RecordConfig, folder: Path, rate: int, lead_seconds: float) -> None:
        self.config = config
        self.folder = folder
        self.enabled = config.enabled
        self._resample = None if rate in OPUS_RATES else Resampler(rate, 16000)
        self.rate = rate if self._resample is None else 16000
        self.lead_seconds = lead_seconds + config.pre_roll_seconds
        self._pre_roll = PreRoll(self.rate, self.lead_seconds)
        self._file: OpusFile | None = None
        self._path: Path | None = None
        self._left = 0
        self._failed = Throttle(log, "recording errors", logging.ERROR, burst=1, period=3600)

    def feed(self, block: np.ndarray) -> None:
        """The next audio block of the stream (float32 at the model's rate); with recording
        off, nothing is kept."""
        if not self.enabled and self._file is None:
            return
        samples = to_s16(block if self._resample is None else self._resample(block))
        self._pre_roll.push(samples)
        self._write(samples)

    def begin(self, wall: datetime) -> Path | None:
        """Start recording an episode that has just turned on (at wall-clock ``wall``), with the
        lead before it; its file, or None (recording is off, or it failed)."""
        self.end()
        if not self.enabled:
            return None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = free_path(self.folder, f"crying-{wall.strftime('%Y%m%d-%H%M%S')}")
            self._file = OpusFile(path, self.rate)
        except (OSError, av.error.FFmpegError) as exc:
            self._failed("cannot record episodes to %s: %s", self.folder, exc)
            return None
        self._path = path
        self._left = round(self.config.max_episode_seconds * self.rate)
        self._write(self._pre_roll.since(self._pre_roll.end - round(self.lead_seconds * self.rate)))
        return path

    def end(self) -> Path | None:
        """Finish the episode's file and prune the folder; the file, if one was written."""
        file, path, self._file, self._path = self._file, self._path, None, None
        if file is None or path is None:
            return None
        try:
            file.close()
            c = self.config
            prune(self.folder, c.keep_count, c.keep_days * 86400, c.keep_megabytes * 1e6)
        except (OSError, av.error.FFmpegError) as exc:
            self._failed("cannot finish the episode recording %s: %s", path, exc)
            return None
        return path if path.exists() else None

    def _write(self, samples: np.ndarray) -> None:
        if self._file is None or self._left <= 0 or not len(samples):
            return
        try:
            self._file.write(samples[: self._left])
            self._left -= len(samples)
        except (OSError, av.error.FFmpegError) as exc:
            self._failed("cannot write the episode recording %s: %s", self._path, exc)
            self._file = None


class EpisodeEvidence:
    """What each episode leaves a parent: its recording, its picture and its place in the night's
    numbers. Fed every audio block and every scored window; told when an episode begins and
    ends. The picture is drawn from the log-mel frames the model's front end computed."""

    def __init__(
        self, config: Config, features: FeatureParams, window_seconds: float, now: datetime
    ) -> None:
        self.recorder = EpisodeRecorder(
            config.record, config.record_folder(), features.sample_rate, window_seconds
        )
        self.tally = NightTally(config.night.start_time(), config.night_path(), now)
        self._frame_seconds = features.hop_length / features.sample_rate
        self._lead_frames = round(self.recorder.lead_seconds / self._frame_seconds)
        self._picture_frames = round(PICTURE_SPAN_SECONDS / self._frame_seconds)
        self._recent: deque[np.ndarray] = deque()
        """The latest windows' new frames: the lead's worth, and a window's more at most."""
        self._recent_frames = 0
        self._frames: list[np.ndarray] = []
        """The frames of the episode's picture, its lead first."""
        self._frames_left = 0
        self._scores: deque[tuple[float, float]] = deque(maxlen=MAX_SCORES)
        self._start: float | None = None
        """Stream second of the picture's first frame (None: no episode yet)."""
        self._onset = 0.0
        self._picture_due = float("inf")
        """Stream second when the ongoing episode's picture is drawn again."""
        self.clip: str | None = None
        """The file name of the last episode's recording (None: not recorded)."""

    def feed(self, block: np.ndarray) -> None:
        self.recorder.feed(block)

    def score(self, t: float, prob: float, columns: np.ndarray) -> None:
        """A window ending at stream second ``t`` scored ``prob``; ``columns``: its new frames
        (bands x frames)."""
        self._scores.append((t, prob))
        if not columns.size:
            return
        if self._frames_left > 0:
            self._frames.append(columns[:, : self._frames_left])
            self._frames_left -= self._frames[-1].shape[1]
        self._recent.append(columns)
        self._recent_frames += columns.shape[1]
        while self._recent_frames - self._recent[0].shape[1] >= self._lead_frames:
            self._recent_frames -= self._recent.popleft().shape[1]

    def begin(self, onset: float, wall: datetime) -> None:
        """An episode turned on at stream second ``onset`` (wall-clock ``wall``); the window
        scored then was already given to :meth:`score`."""
        lead = (
            np.concatenate(self._recent, axis=1)[:, -self._lead_frames :] if self._recent else None
        )
        self._frames = [] if lead is None else [lead]
        lead_frames = 0 if lead is None else lead.shape[1]
        self._frames_left = self._picture_frames - lead_frames
        self._onset, self._start = onset, onset - lead_frames * self._frame_seconds
        self._picture_due = onset + PICTURE_EVERY_SECONDS
        path = self.recorder.begin(wall)
        self.clip = path.name if path is not None else None

    def end(self, duration: float, wall: datetime) -> None:
        """The episode ended after ``duration`` seconds (wall-clock ``wall``)."""
        self._frames_left = 0
        self._picture_due = float("inf")
        if self.recorder.end() is None:
            self.clip = None
        self.tally.add(duration, wall)

    def picture(self, threshold: float) -> bytes | None:
        """The PNG of the episode so far (or of the last one), None before any."""
        if self._start is None:
            return None
        start = self._start
        mel = np.concatenate(self._frames, axis=1) if self._frames else np.zeros((1, 0))
        scores = [(t - start, p) for t, p in self._scores if t >= start]
        return episode_picture(mel, self._frame_seconds, scores, threshold, self._onset - start)

    def due_picture(self, t: float, threshold: float) -> bytes | None:
        """The ongoing episode's picture if it is due again at stream second ``t``, else None."""
        if t < self._picture_due:
            return None
        self._picture_due = t + PICTURE_EVERY_SECONDS
        return self.picture(threshold)
