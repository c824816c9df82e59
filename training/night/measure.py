"""Measuring a night: the agent's offline path over it, episode recall per SNR, false alarms per
hour (and per background category), latency, time to OFF; the detector sweep replays the agent's
:class:`Detector` over stored probabilities and picks the setting to ship."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from cry_mqtt.audio import Resampler
from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import Detector, DetectorSettings
from cry_mqtt.model import CryModel
from cry_mqtt.pipeline import Pipeline, WindowResult, detector_settings, episodes, scoring_hop
from training import RecipeError
from training.night.assemble import RATE, Corpus, Night, Truth, category_heard, night_blocks

NIGHT_TARGETS = {
    "false_alarms_per_hour": 0.1,
    "recall_snr_ge_0": 0.95,
    "latency_median_s": 3.0,
}
"""What a night at the shipped setting should reach."""
SETTING_KEYS = ("hop_s", "threshold", "trigger_windows", "of_windows", "hold_seconds")
Span = tuple[float, float]


def run_pipeline(
    model: CryModel, detection: DetectionConfig, blocks: Iterable[np.ndarray]
) -> tuple[list[WindowResult], list[Span], float]:
    """The agent's offline path: every window, the detected (ON, OFF) spans, seconds of audio."""
    pipeline = Pipeline(model, detection)
    results = list(pipeline.run(_at_rate(blocks, model.info.features.sample_rate)))
    return results, episodes(results, pipeline.now), pipeline.now


def _at_rate(blocks: Iterable[np.ndarray], rate: int) -> Iterator[np.ndarray]:
    """The night's 16 kHz blocks at the model's ``rate``, as the agent resamples a source."""
    resample = Resampler(RATE, rate)
    for block in blocks:
        yield resample(block)
    if len(tail := resample(np.zeros(0, np.float32), last=True)):
        yield tail


@dataclass
class PipelinePass:
    """One run of the agent's offline path over a night."""

    corpus: Corpus
    night: Night
    results: list[WindowResult]
    spans: list[Span]
    total: float
    realtime_factor: float


def stream_night(
    model: CryModel, corpus: Corpus, night: Night, detection: DetectionConfig
) -> PipelinePass:
    """Stream ``night`` through the agent's offline path with ``detection``."""
    started = time.perf_counter()
    results, spans, total = run_pipeline(model, detection, night_blocks(corpus, night))
    return PipelinePass(
        corpus, night, results, spans, total, total / (time.perf_counter() - started)
    )


def replay(results: list[WindowResult], settings: DetectorSettings, end: float) -> list[Span]:
    """The (ON, OFF) spans the agent's detector gives with ``settings`` on stored scores."""
    detector = Detector(settings)
    changes = []
    for r in results:
        changed = detector.update(r.t, r.prob)
        if changed is not None:
            changes.append(replace(r, on=detector.on, changed=changed))
    return episodes(changes, end)


def matches(
    truth: list[Truth], spans: list[Span], window_seconds: float
) -> dict[Truth, list[Span]]:
    """The detections of each episode: those turning ON between its onset and ``window_seconds``
    after its end (while scored windows still hold crying)."""
    return {t: [s for s in spans if t.start <= s[0] < t.end + window_seconds] for t in truth}


def false_alarms(truth: list[Truth], spans: list[Span], window_seconds: float) -> list[Span]:
    """The detections that belong to no episode."""
    matched = {s for hits in matches(truth, spans, window_seconds).values() for s in hits}
    return [s for s in spans if s not in matched]


def evaluate(
    truth: list[Truth], spans: list[Span], total: float, window_seconds: float
) -> dict[str, Any]:
    """Episode recall per SNR, false alarms per hour of non-crying audio, latency and time to OFF.

    Latency is onset to the first ON; time to OFF is end to the last OFF of the episode.
    """
    detected = matches(truth, spans, window_seconds)
    alarms = len(false_alarms(truth, spans, window_seconds))
    crying_seconds = sum(t.end + window_seconds - t.start for t in truth)
    quiet_hours = max(total - crying_seconds, 0.0) / 3600
    hits = {t: s for t, s in detected.items() if s}
    latency = np.array([s[0][0] - t.start for t, s in hits.items()])
    to_off = np.array([s[-1][1] - t.end for t, s in hits.items()])
    recall = {
        f"{snr:+g}": _share([bool(detected[t]) for t in truth if t.snr_db == snr])
        for snr in sorted({t.snr_db for t in truth})
    }
    loud = [bool(detected[t]) for t in truth if t.snr_db >= 0]
    return {
        "episodes": len(truth),
        "recall_by_snr_db": recall,
        "recall_snr_ge_0": _share(loud),
        "false_alarms": alarms,
        "non_crying_hours": round(quiet_hours, 3),
        "false_alarms_per_hour": round(alarms / quiet_hours, 4) if quiet_hours else 0.0,
        "latency_median_s": _stat(latency, 50),
        "latency_p90_s": _stat(latency, 90),
        "time_to_off_median_s": _stat(to_off, 50),
        "time_to_off_p90_s": _stat(to_off, 90),
        "retriggers_per_episode": round(sum(len(s) - 1 for s in hits.values()) / len(hits), 3)
        if hits
        else 0.0,
    }


def false_alarms_by_category(
    corpus: Corpus, night: Night, spans: list[Span], window_seconds: float
) -> dict[str, int]:
    """False alarms counted by the category of the background recording heard last within the
    model's window before each one turned ON."""
    counts = Counter(
        category_heard(corpus, night, on, window_seconds)
        for on, _ in false_alarms(night.truth, spans, window_seconds)
    )
    return dict(sorted(counts.items()))


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def _stat(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if len(values) else float("nan")


def meets_targets(metrics: dict[str, Any]) -> bool:
    """The issue's targets: FA/h, recall at SNR >= 0 dB, median latency."""
    return (
        metrics["false_alarms_per_hour"] <= NIGHT_TARGETS["false_alarms_per_hour"]
        and metrics["recall_snr_ge_0"] >= NIGHT_TARGETS["recall_snr_ge_0"]
        and metrics["latency_median_s"] <= NIGHT_TARGETS["latency_median_s"]
    )


@dataclass(frozen=True)
class Grid:
    """The detector settings the sweep tries (for each hop)."""

    thresholds: tuple[float, ...] = tuple(np.round(np.arange(0.30, 0.96, 0.05), 2))
    k_of_n: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (2, 3), (3, 4), (3, 5), (4, 6))
    holds: tuple[float, ...] = (5.0, 10.0, 20.0)

    def curve_at(self, setting: dict[str, Any]) -> Grid:
        """These thresholds alone, at the votes and hold of ``setting`` (a threshold curve)."""
        return Grid(
            self.thresholds,
            ((setting["trigger_windows"], setting["of_windows"]),),
            (setting["hold_seconds"],),
        )

    def settings(self) -> Iterator[DetectorSettings]:
        for threshold, (k, n), hold in itertools.product(self.thresholds, self.k_of_n, self.holds):
            yield DetectorSettings(float(threshold), k, n, hold)


def sweep(
    truth: list[Truth],
    scored: dict[float, tuple[list[WindowResult], float]],
    grid: Grid,
    window_seconds: float,
) -> list[dict[str, Any]]:
    """Metrics of every grid setting at every hop (``scored`` maps hop to windows and length)."""
    rows = []
    for hop, (results, total) in scored.items():
        for settings in grid.settings():
            spans = replay(results, settings, total)
            rows.append(
                {"hop_s": hop, **asdict(settings), **evaluate(truth, spans, total, window_seconds)}
            )
    return rows


def pick(rows: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """The setting to ship: :func:`pick_at_hop` at the current hop (the agent's 1-s default,
    which also keeps the cost target); if that answers later than the latency target, the
    same pick at a faster hop where one answers within it with no more false alarms and no
    fewer episodes heard (a streaming model scores only its new patches, so its cost hardly
    depends on the hop)."""
    hop = current.get("hop_s")
    chosen = pick_at_hop([r for r in rows if hop is None or r["hop_s"] == hop], current)
    if hop is None or chosen["latency_median_s"] <= NIGHT_TARGETS["latency_median_s"]:
        return chosen
    faster = [
        r
        for r in rows
        if r["hop_s"] < hop
        and r["false_alarms"] <= chosen["false_alarms"]
        and r["recall_snr_ge_0"] >= chosen["recall_snr_ge_0"]
        and r["latency_median_s"] <= NIGHT_TARGETS["latency_median_s"]
    ]
    return pick_at_hop(faster, {**current, "hop_s": None}) if faster else chosen


def pick_at_hop(rows: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """Among ``rows``, those within the false-alarm target at the night's resolution of one
    false alarm (or, if none is, those with the fewest), one that meets every target if any
    does; then the highest recall at SNR >= 0 dB, then at -5 dB, the lowest median latency,
    the fewest false alarms, and the closest to ``current``."""
    return min(within_budget(rows), key=_ranking(current))


def within_budget(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one night within the false-alarm target at the night's resolution of one
    false alarm (or, if none is, those with the fewest)."""
    fewest = min(r["false_alarms"] for r in rows)
    return [
        r
        for r in rows
        if r["false_alarms_per_hour"] <= NIGHT_TARGETS["false_alarms_per_hour"]
        or r["false_alarms"] <= max(1, fewest)
    ]


def _ranking(current: dict[str, Any]) -> Callable[[dict[str, Any]], tuple]:
    def key(r: dict[str, Any]) -> tuple:
        distance = sum(r[k] != v for k, v in current.items())
        low = r["recall_by_snr_db"].get("-5", 0.0)
        return (
            not meets_targets(r),
            -r["recall_snr_ge_0"],
            -low,
            r["latency_median_s"],
            r["false_alarms"],
            distance,
        )

    return key


def pick_on_nights(
    nights: Sequence[list[dict[str, Any]]], current: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The setting within budget on every night's sweep (:func:`within_budget`, each at its
    own resolution), ranked as :func:`pick_at_hop` ranks one night, on the nights pooled:
    episodes and hours added, the slowest median latency. If no setting is within budget on
    every night, those with the fewest false alarms in all. Returns the pooled row and each
    night's row at that setting."""
    by_night = [{_setting(r): r for r in rows} for rows in nights]
    common = set.intersection(*(set(rows) for rows in by_night))
    if not common:
        raise RecipeError("the nights' sweeps share no setting")
    pooled = {s: _pooled([rows[s] for rows in by_night]) for s in common}
    feasible = set.intersection(
        *({_setting(r) for r in within_budget([rows[s] for s in common])} for rows in by_night)
    )
    if not feasible:
        fewest = min(r["false_alarms"] for r in pooled.values())
        feasible = {s for s, r in pooled.items() if r["false_alarms"] == fewest}
    rank = _ranking(current)
    best = min(feasible, key=lambda s: rank(pooled[s]))
    return pooled[best], [rows[best] for rows in by_night]


def at_hop_and_hold(rows: list[dict[str, Any]], setting: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep rows at the hop and hold of ``setting``."""
    return [
        r
        for r in rows
        if r["hop_s"] == setting["hop_s"] and r["hold_seconds"] == setting["hold_seconds"]
    ]


def _setting(row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in SETTING_KEYS)


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting's rows of several nights read as one night."""
    episodes = sum(r["episodes"] for r in rows)

    def share(value: Callable[[dict[str, Any]], float]) -> float:
        return round(sum(value(r) * r["episodes"] for r in rows) / episodes, 4)

    alarms = sum(r["false_alarms"] for r in rows)
    hours = sum(r["non_crying_hours"] for r in rows)
    return {
        **{k: rows[0][k] for k in SETTING_KEYS},
        "episodes": episodes,
        "recall_by_snr_db": {
            snr: share(lambda r, snr=snr: r["recall_by_snr_db"][snr])
            for snr in rows[0]["recall_by_snr_db"]
        },
        "recall_snr_ge_0": share(lambda r: r["recall_snr_ge_0"]),
        "false_alarms": alarms,
        "non_crying_hours": round(hours, 3),
        "false_alarms_per_hour": round(alarms / hours, 4) if hours else 0.0,
        "latency_median_s": max(r["latency_median_s"] for r in rows),
    }


def detection_config(setting: dict[str, Any], base: DetectionConfig) -> DetectionConfig:
    """``base`` with the hop, threshold, k-of-n and hold of a sweep row or setting."""
    return replace(
        base,
        threshold=setting["threshold"],
        hop_seconds=setting["hop_s"],
        trigger_windows=setting["trigger_windows"],
        of_windows=setting["of_windows"],
        hold_seconds=setting["hold_seconds"],
    )


def current_setting(detection: DetectionConfig, model: CryModel) -> dict[str, Any]:
    """The sweep-row fields of a detection config (threshold and votes resolved as the pipeline
    does)."""
    settings = detector_settings(detection, model.info)
    return {
        "hop_s": scoring_hop(detection, model.info),
        "threshold": round(settings.threshold, 2),
        "trigger_windows": settings.trigger_windows,
        "of_windows": settings.of_windows,
        "hold_seconds": settings.hold_seconds,
    }
