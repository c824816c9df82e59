"""A night with a parent's "that was not crying": the agent's detector replayed over a night's
stored scores and embeddings, with its false-alarm memory (:mod:`cry_mqtt.memory`) between them.

The parent marks the first false alarm of each background recording as it ends (as one would,
having heard it); later sounds like a remembered one do not turn crying on, unless crying goes
on past the valve's ``override_seconds``. The same night without marks is the baseline: false
alarms per hour after the marks, and episodes heard (none may be lost to the memory, except
through the valve's delay, which the latency shows).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cry_mqtt.config import DetectionConfig, LearnConfig
from cry_mqtt.detector import Detector, DetectorSettings
from cry_mqtt.memory import FalseAlarms, Learned
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.pipeline import WindowResult, detector_settings, episodes
from training import DEFAULT_DATA, RecipeError
from training.night.assemble import Truth, plan, recording_heard
from training.night.cli import stream_night
from training.night.measure import Span, evaluate, matches, replay
from training.night.sources import load_independent


def replay_with_marks(
    results: list[WindowResult],
    settings: DetectorSettings,
    end: float,
    truth: list[Truth],
    window_seconds: float,
    recording_at: Callable[[float], int | None],
    memory: FalseAlarms,
    override_seconds: float,
) -> tuple[list[Span], list[Span]]:
    """The (ON, OFF) spans with the memory, and the false alarms the parent marked (the first
    of each recording, by :func:`recording_at` of its ON; one heard over quiet noise alone, or
    over a recording already marked, is not marked again)."""
    detector = Detector(settings)
    learned = Learned(memory, override_seconds, lambda: settings)
    changes, marked, recordings = [], [], set()
    for r in results:
        changed, _ = learned.update(detector, r.t, r.prob, r.embedding)
        if changed is None:
            continue
        changes.append(replace(r, on=detector.on, changed=changed))
        if changed.end is None or any(
            t.start <= changed.start < t.end + window_seconds for t in truth
        ):
            continue
        recording = recording_at(changed.start)
        if recording is not None and recording not in recordings and learned.mark():
            recordings.add(recording)
            marked.append((changed.start, changed.end))
    return episodes(changes, end), marked


def learning_metrics(
    truth: list[Truth],
    baseline: list[Span],
    learned: list[Span],
    marked: list[Span],
    total: float,
    window_seconds: float,
) -> dict[str, Any]:
    """The night without and with the parent's marks: false alarms (all, and those not marked,
    which the memory is there to prevent), episodes heard, the valve's delays."""
    without = evaluate(truth, baseline, total, window_seconds)
    with_marks = evaluate(truth, learned, total, window_seconds)
    hours = with_marks["non_crying_hours"]
    lost = [t for t, s in matches(truth, learned, window_seconds).items() if not s]
    heard_before = {t for t, s in matches(truth, baseline, window_seconds).items() if s}
    first_on = {t: s[0][0] for t, s in matches(truth, learned, window_seconds).items() if s}
    before = {t: s[0][0] for t, s in matches(truth, baseline, window_seconds).items() if s}
    delays = sorted(round(first_on[t] - before[t], 1) for t in first_on if t in before)
    unmarked = with_marks["false_alarms"] - len(marked)
    return {
        "without_marks": _summary(without),
        "with_marks": _summary(with_marks),
        "marked": len(marked),
        "false_alarms_after_marks": unmarked,
        "false_alarms_after_marks_per_hour": round(unmarked / hours, 4) if hours else 0.0,
        "false_alarms_without_marks_per_hour": without["false_alarms_per_hour"],
        "episodes_lost": len([t for t in lost if t in heard_before]),
        "episodes_delayed": len([d for d in delays if d > 0]),
        "longest_delay_s": max(delays, default=0.0),
    }


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("recall_snr_ge_0", "false_alarms", "false_alarms_per_hour", "latency_median_s")
    return {k: metrics[k] for k in keys}


def add_parser(steps: Any) -> None:
    """The ``learn-night`` step of ``python -m training``."""
    learn = steps.add_parser(
        "learn-night",
        help='the independent night with a parent\'s "not crying" marks (the false-alarm memory)',
    )
    learn.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    learn.add_argument("--model", type=Path, help="ONNX model (default: the packaged one)")
    learn.add_argument("--hours", type=float, default=4.0, help="length of the night")
    learn.add_argument("--per-snr", type=int, default=16, help="episodes at each SNR")
    learn.add_argument(
        "--independent", type=Path, help="independent set (default: <data>/independent)"
    )
    learn.add_argument(
        "--independent-cache",
        type=Path,
        help="its decoded clips (default: <runs>/independent)",
    )
    learn.add_argument(
        "--also",
        type=float,
        nargs=3,
        action="append",
        default=[],
        metavar=("THRESHOLD", "K", "N"),
        help="another detector setting to measure beside the file's (repeatable)",
    )
    learn.add_argument("--out", type=Path, help="result (default: <runs>/learn-night/<model>.json)")
    learn.set_defaults(run=learn_night_command)


def learn_night_command(args: argparse.Namespace) -> dict[str, Any]:
    """Stream the independent night once, then replay it at each setting with and without the
    parent's marks."""
    model = CryModel(args.model or default_model_path())
    learn = LearnConfig()
    memory_size = learn.max_false_alarms
    similarity = model.info.details.get("learn", {}).get("similarity")
    if model.embedding_size is None or similarity is None:
        raise RecipeError(f"{model.path}: outputs no embeddings or names no similarity")
    corpus = load_independent(
        args.independent or args.data / "independent",
        args.independent_cache or args.runs / "independent",
    )
    night = plan(corpus, args.hours, args.per_snr, args.seed)
    done = stream_night(model, corpus, night, DetectionConfig())
    base = detector_settings(DetectionConfig(), model.info)
    settings = [base] + [
        replace(base, threshold=t, trigger_windows=int(k), of_windows=int(n))
        for t, k, n in args.also
    ]
    window = model.info.window_seconds
    report: dict[str, Any] = {
        "model": model.path.name,
        "version": model.info.version,
        "similarity": similarity,
        "override_seconds": learn.override_seconds,
        "hours": round(done.total / 3600, 3),
        "seed": args.seed,
        "settings": [],
    }
    for s in settings:
        baseline = replay(done.results, s, done.total)
        spans, marked = replay_with_marks(
            done.results,
            s,
            done.total,
            night.truth,
            window,
            lambda t: recording_heard(night, t, window),
            FalseAlarms(similarity, memory_size),
            learn.override_seconds,
        )
        row = {
            "threshold": s.threshold,
            "votes": f"{s.trigger_windows} of {s.of_windows}",
            **learning_metrics(night.truth, baseline, spans, marked, done.total, window),
        }
        report["settings"].append(row)
        print(json.dumps(row))
    out = args.out or args.runs / "learn-night" / f"{model.path.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {out}")
    return report
