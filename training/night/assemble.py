"""Assembling a night: crying episodes at known times and SNRs over long stretches of distinct
background recordings with quiet room noise between them, rendered one scene at a time."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from training.data.audio import PARAMS
from training.data.augment import rms

RATE = PARAMS.sample_rate
SNRS = (-5.0, 0.0, 10.0, 20.0)
EPISODE_SECONDS = (5.0, 120.0)
BACKGROUND_DBFS = (-50.0, -30.0)
"""Level range of each background recording (RMS over the part played)."""
ROOM_NOISE_DBFS = (-75.0, -55.0)
"""Level range of the quiet stretches (room and microphone noise)."""
QUIET_SHARE = 0.5
"""Share of the background's time that is quiet: each recording is followed by quiet noise of
0 to 2 * QUIET_SHARE / (1 - QUIET_SHARE) times its length."""
MAX_STRETCH_SECONDS = 120.0
"""A longer recording plays as one contiguous part of this length, from a random point."""
REFERENCE_FLOOR_DBFS = -50.0
"""The SNR is taken against the background under the episode, but never below this level, so a
cry over a silent room is still as loud as one over a quiet sound."""
MIN_GAP_SECONDS = 40.0
QUIET = "quiet"
"""The category of the quiet stretches."""


@dataclass
class Corpus:
    """A night's source audio, 16 kHz mono: crying clips, and other recordings with the category
    of each."""

    positives: list[np.ndarray]
    negatives: list[np.ndarray]
    categories: list[str]


@dataclass(frozen=True)
class Truth:
    """A crying episode inserted into the night, in seconds of the stream."""

    start: float
    end: float
    snr_db: float


@dataclass(frozen=True)
class Scene:
    """A stretch of background followed by one crying episode (none if ``cry_seconds`` is 0),
    made of the crying clips ``clips`` back to back."""

    gap_seconds: float
    cry_seconds: float
    snr_db: float
    clips: tuple[int, ...] = ()


@dataclass(frozen=True)
class Stretch:
    """Background from sample ``start`` of the night for ``length`` samples: the recording
    ``recording`` from its sample ``offset``, or quiet noise from ``seed`` where it is None."""

    start: int
    length: int
    level_dbfs: float
    recording: int | None = None
    offset: int = 0
    seed: int = 0

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class Night:
    """A planned night: its scenes (with their crying clips) and the background under them."""

    scenes: list[Scene]
    background: list[Stretch] = field(repr=False)

    @property
    def samples(self) -> int:
        return scene_bounds(self.scenes)[-1][2]

    @property
    def truth(self) -> list[Truth]:
        """Where the episodes lie in the stream."""
        return [
            Truth(onset / RATE, end / RATE, scene.snr_db)
            for scene, (_, onset, end) in zip(self.scenes, scene_bounds(self.scenes), strict=True)
            if end > onset
        ]


def cycle(n: int, rng: np.random.Generator) -> Iterator[int]:
    """``0..n-1`` in random order, over and over: every index once before any comes again."""
    while True:
        yield from rng.permutation(n).tolist()


def plan_scenes(hours: float, per_snr: int, rng: np.random.Generator) -> list[Scene]:
    """``per_snr`` episodes at each SNR in random order, durations log-uniform over 5-120 s,
    separated by random background gaps (at least :data:`MIN_GAP_SECONDS`) that fill ``hours``."""
    snrs = rng.permutation(np.repeat(SNRS, per_snr))
    lo, hi = np.log(EPISODE_SECONDS)
    durations = np.exp(rng.uniform(lo, hi, len(snrs)))
    slack = hours * 3600 - durations.sum() - (len(snrs) + 1) * MIN_GAP_SECONDS
    if slack <= 0:
        raise ValueError(f"{hours} h is too short for {len(snrs)} episodes")
    shares = rng.uniform(0, 1, len(snrs) + 1)
    gaps = MIN_GAP_SECONDS + slack * shares / shares.sum()
    scenes = [
        Scene(float(g), float(d), float(s)) for g, d, s in zip(gaps, durations, snrs, strict=False)
    ]
    return [*scenes, Scene(float(gaps[-1]), 0.0, 0.0)]


def scene_bounds(scenes: list[Scene]) -> list[tuple[int, int, int]]:
    """(start, episode onset, end) of every scene, in samples of the night."""
    bounds, start = [], 0
    for scene in scenes:
        onset = start + round(scene.gap_seconds * RATE)
        end = onset + round(scene.cry_seconds * RATE)
        bounds.append((start, onset, end))
        start = end
    return bounds


def plan_crying(
    lengths: Sequence[int], scenes: list[Scene], rng: np.random.Generator
) -> list[Scene]:
    """``scenes`` with the crying clips (of ``lengths`` samples) of each episode: clips back to
    back until the episode is full, every clip used once before any is used again."""
    order = cycle(len(lengths), rng)
    planned = []
    for scene in scenes:
        need, clips = round(scene.cry_seconds * RATE), []
        while need > 0:
            clips.append(next(order))
            need -= lengths[clips[-1]]
        planned.append(replace(scene, clips=tuple(clips)))
    return planned


def plan_background(
    lengths: Sequence[int],
    samples: int,
    rng: np.random.Generator,
    families: Sequence[str] | None = None,
) -> list[Stretch]:
    """At least ``samples`` samples of background: the recordings (of ``lengths`` samples) one
    at a time, each whole or as one contiguous part of at most :data:`MAX_STRETCH_SECONDS`,
    every recording once before any is heard again, each followed by a quiet stretch.

    With ``families`` (one per recording), every family is heard for about the same time: the
    next recording is the next of the family heard least so far, so a family of many short
    recordings does not fill the night."""
    longest = round(MAX_STRETCH_SECONDS * RATE)
    quiet_ratio = 2 * QUIET_SHARE / (1 - QUIET_SHARE)
    families = families or [""] * len(lengths)
    choose = _by_family(families, rng) if len(set(families)) > 1 else _in_turn(len(lengths), rng)
    heard: Counter[str] = Counter()
    stretches: list[Stretch] = []
    t = 0
    while t < samples:
        i = choose(heard)
        n = min(lengths[i], longest)
        heard[families[i]] += n
        offset = int(rng.integers(lengths[i] - n + 1))
        stretches.append(Stretch(t, n, rng.uniform(*BACKGROUND_DBFS), i, offset))
        t += n
        quiet = round(n * rng.uniform(0, quiet_ratio))
        if quiet:
            seed = int(rng.integers(2**32))
            stretches.append(Stretch(t, quiet, rng.uniform(*ROOM_NOISE_DBFS), seed=seed))
            t += quiet
    return stretches


def _in_turn(n: int, rng: np.random.Generator) -> Callable[[Counter], int]:
    """The chooser of :func:`plan_background` without families: the next of :func:`cycle`."""
    order = cycle(n, rng)
    return lambda _heard: next(order)


def _by_family(families: Sequence[str], rng: np.random.Generator) -> Callable[[Counter], int]:
    """The chooser of :func:`plan_background` over ``families``: given the samples heard of
    each family so far, the next recording of the family heard least (each family's
    recordings in its own :func:`cycle`)."""
    members: dict[str, list[int]] = {}
    for i, name in enumerate(families):
        members.setdefault(name, []).append(i)
    names = sorted(members)
    orders = {name: cycle(len(members[name]), rng) for name in names}

    def choose(heard: Counter) -> int:
        name = min(names, key=lambda n: heard[n])
        return members[name][next(orders[name])]

    return choose


def plan(
    corpus: Corpus,
    hours: float,
    per_snr: int,
    seed: int,
    families: Sequence[str] | None = None,
) -> Night:
    """A night of ``hours`` from ``corpus``. The episodes' times, lengths and SNRs depend on
    ``hours``, ``per_snr`` and ``seed`` only, so every corpus gets the same schedule. With
    ``families`` (one per background recording), each family is heard about as long as any
    other (:func:`plan_background`)."""
    rng = np.random.default_rng(seed)
    scenes = plan_scenes(hours, per_snr, rng)
    scenes = plan_crying([len(p) for p in corpus.positives], scenes, rng)
    samples = scene_bounds(scenes)[-1][2]
    lengths = [len(n) for n in corpus.negatives]
    return Night(scenes, plan_background(lengths, samples, rng, families))


def stretch_audio(corpus: Corpus, stretch: Stretch) -> np.ndarray:
    """The samples of one background stretch at its level."""
    if stretch.recording is None:
        rng = np.random.default_rng(stretch.seed)
        part = rng.standard_normal(stretch.length).astype(np.float32)
    else:
        recording = corpus.negatives[stretch.recording]
        part = recording[stretch.offset : stretch.offset + stretch.length]
    return part * np.float32(10 ** (stretch.level_dbfs / 20) / rms(part))


def background(corpus: Corpus, stretches: list[Stretch], start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` of the background planned as ``stretches``."""
    out = np.zeros(stop - start, np.float32)
    i = max(bisect_right(stretches, start, key=lambda s: s.start) - 1, 0)
    for stretch in stretches[i:]:
        if stretch.start >= stop:
            break
        a, b = max(stretch.start, start), min(stretch.end, stop)
        if a < b:
            out[a - start : b - start] = stretch_audio(corpus, stretch)[
                a - stretch.start : b - stretch.start
            ]
    return out


def crying(corpus: Corpus, clips: tuple[int, ...], n: int) -> np.ndarray:
    """``n`` samples of crying: the clips ``clips``, each brought to the same RMS, back to back."""
    parts = [corpus.positives[i] / np.float32(rms(corpus.positives[i])) for i in clips]
    return np.concatenate(parts)[:n]


def cry_gain(cry: np.ndarray, under: np.ndarray, snr_db: float) -> float:
    """Gain that puts ``cry`` ``snr_db`` above the background ``under`` it (RMS, floored)."""
    reference = max(rms(under), 10 ** (REFERENCE_FLOOR_DBFS / 20))
    return reference * 10 ** (snr_db / 20) / rms(cry)


def night_blocks(corpus: Corpus, night: Night) -> Iterator[np.ndarray]:
    """The night as audio blocks, one scene at a time (a whole night never sits in memory): the
    background, and the scene's episode mixed over its end."""
    for scene, (start, onset, end) in zip(night.scenes, scene_bounds(night.scenes), strict=True):
        audio = background(corpus, night.background, start, end)
        if end > onset:
            cry = crying(corpus, scene.clips, end - onset)
            under = audio[onset - start :]
            under += np.float32(cry_gain(cry, under, scene.snr_db)) * cry
        yield np.clip(audio, -1.0, 1.0)


def recording_heard(night: Night, t: float, window_seconds: float) -> int | None:
    """The background recording heard last in the ``window_seconds`` before ``t`` (None if
    only quiet noise was)."""
    end, start = round(t * RATE), round((t - window_seconds) * RATE)
    i = bisect_right(night.background, end, key=lambda s: s.start)
    for stretch in reversed(night.background[:i]):
        if stretch.end <= start:
            break
        if stretch.recording is not None:
            return stretch.recording
    return None


def category_heard(corpus: Corpus, night: Night, t: float, window_seconds: float) -> str:
    """The category of :func:`recording_heard` (:data:`QUIET` if only quiet noise was)."""
    recording = recording_heard(night, t, window_seconds)
    return QUIET if recording is None else corpus.categories[recording]


def usage(corpus: Corpus, night: Night) -> dict[str, Any]:
    """How many distinct recordings and crying clips the night used, how often the most
    repeated one was played, and the hours of background of every category."""
    samples = night.samples
    played = [s for s in night.background if s.start < samples]
    plays = Counter(s.recording for s in played if s.recording is not None)
    cries = Counter(c for scene in night.scenes for c in scene.clips)
    seconds: Counter[str] = Counter()
    for s in played:
        category = QUIET if s.recording is None else corpus.categories[s.recording]
        seconds[category] += (min(s.end, samples) - s.start) / RATE
    return {
        "recordings": len(corpus.negatives),
        "recording_minutes": round(sum(map(len, corpus.negatives)) / RATE / 60, 1),
        "recordings_played": len(plays),
        "most_plays_of_a_recording": max(plays.values(), default=0),
        "crying_clips": len(corpus.positives),
        "crying_minutes": round(sum(map(len, corpus.positives)) / RATE / 60, 1),
        "crying_clips_played": len(cries),
        "most_plays_of_a_crying_clip": max(cries.values(), default=0),
        "hours_by_category": {k: round(v / 3600, 3) for k, v in sorted(seconds.items())},
    }
