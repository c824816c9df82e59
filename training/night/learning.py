"""Nights with a parent's "that was not crying": the agent's detector replayed over stored scores
and embeddings, with its false-alarm memory (:mod:`cry_mqtt.memory`) between them.

The parent marks every false alarm as it ends (as one would, having been woken by it); a later
sound like a remembered one does not turn crying on, unless crying goes on past the valve's
``override_seconds``. The same nights without marks are the baseline: the false alarms a parent
is woken by, and the episodes heard (none may be lost to the memory, except through the valve's
delay, which the latency shows).

Two measurements: the independent night (every recording once before any is heard again, so a
false alarm seldom comes back), and homes: each a few of the independent recordings heard night
after night (the white-noise machine, the lullaby, the sibling a home has), where the memory
learns on the first night what it is to prevent on the next ones.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cry_mqtt.config import DetectionConfig, LearnConfig
from cry_mqtt.detector import Detector, DetectorSettings
from cry_mqtt.memory import FalseAlarms, Learned
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.pipeline import WindowResult, detector_settings, episodes
from training import RecipeError
from training.night.assemble import Corpus, Truth, plan
from training.night.measure import PipelinePass, Span, evaluate, matches, replay, stream_night
from training.night.sources import add_night_options, load_independent


def replay_with_marks(
    results: list[WindowResult],
    settings: DetectorSettings,
    end: float,
    truth: list[Truth],
    window_seconds: float,
    memory: FalseAlarms,
    override_seconds: float,
) -> tuple[list[Span], list[Span]]:
    """The (ON, OFF) spans with the memory, and the false alarms the parent marked: every one,
    as it ends."""
    detector = Detector(settings)
    learned = Learned(memory, override_seconds, lambda: settings)
    changes, marked = [], []
    for r in results:
        changed, _ = learned.update(detector, r.t, r.prob, r.embedding)
        if changed is None:
            continue
        changes.append(replace(r, on=detector.on, changed=changed))
        if changed.end is None or any(
            t.start <= changed.start < t.end + window_seconds for t in truth
        ):
            continue
        learned.mark()
        marked.append((changed.start, changed.end))
    return episodes(changes, end), marked


def learning_metrics(
    truth: list[Truth],
    baseline: list[Span],
    learned: list[Span],
    total: float,
    window_seconds: float,
) -> dict[str, Any]:
    """The nights without and with the parent's marks: the false alarms, the episodes heard,
    those lost and the valve's delays."""
    without = evaluate(truth, baseline, total, window_seconds)
    with_marks = evaluate(truth, learned, total, window_seconds)
    heard_before = {t: s[0][0] for t, s in matches(truth, baseline, window_seconds).items() if s}
    heard_now = {t: s[0][0] for t, s in matches(truth, learned, window_seconds).items() if s}
    delays = [heard_now[t] - on for t, on in heard_before.items() if t in heard_now]
    return {
        "without_marks": _summary(without),
        "with_marks": _summary(with_marks),
        "episodes_lost": len(heard_before.keys() - heard_now.keys()),
        "episodes_delayed": sum(d > 0 for d in delays),
        "longest_delay_s": round(max(delays, default=0.0), 1),
    }


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "recall_snr_ge_0",
        "false_alarms",
        "non_crying_hours",
        "false_alarms_per_hour",
        "latency_median_s",
    )
    return {k: metrics[k] for k in keys}


def joined(passes: list[PipelinePass]) -> tuple[list[WindowResult], list[Truth], float]:
    """Nights one after the other as one stream: their windows and episodes, and its length."""
    results, truth, offset = [], [], 0.0
    for done in passes:
        results += [replace(r, t=r.t + offset) for r in done.results]
        truth += [replace(t, start=t.start + offset, end=t.end + offset) for t in done.night.truth]
        offset += done.total
    return results, truth, offset


def home(corpus: Corpus, recordings: int, rng: np.random.Generator) -> Corpus:
    """A home: all the crying, and ``recordings`` of the other recordings at random."""
    chosen = rng.choice(len(corpus.negatives), recordings, replace=False)
    return Corpus(
        corpus.positives,
        [corpus.negatives[i] for i in chosen],
        [corpus.categories[i] for i in chosen],
    )


def measure(
    passes: list[PipelinePass],
    settings: DetectorSettings,
    memory: FalseAlarms,
    override_seconds: float,
    window_seconds: float,
) -> dict[str, Any]:
    """The nights of ``passes`` replayed without and with marks (the memory carried from night
    to night), measured on the first night and on the later ones."""
    results, truth, total = joined(passes)
    baseline = replay(results, settings, total)
    spans, marked = replay_with_marks(
        results, settings, total, truth, window_seconds, memory, override_seconds
    )
    first = passes[0].total
    parts = {"first_night": (0.0, first)}
    if len(passes) > 1:
        parts["later_nights"] = (first, total)
    report: dict[str, Any] = {"marked": len(marked)}
    for name, (lo, hi) in parts.items():

        def within(items: list[Any], lo: float = lo, hi: float = hi) -> list[Any]:
            return [x for x in items if lo <= x[0] < hi]

        report[name] = learning_metrics(
            [t for t in truth if lo <= t.start < hi],
            within(baseline),
            within(spans),
            hi - lo,
            window_seconds,
        )
    return report


def add_parser(steps: Any) -> None:
    """The ``learn-night`` step of ``python -m training``."""
    learn = steps.add_parser(
        "learn-night",
        help='independent nights with a parent\'s "not crying" marks (the false-alarm memory)',
    )
    add_night_options(learn, hours=4.0, per_snr=16)
    learn.add_argument(
        "--homes",
        type=int,
        default=0,
        help="homes, each --recordings of the independent recordings night after night "
        "(default: none, the independent night alone)",
    )
    learn.add_argument("--nights", type=int, default=3, help="nights in each home")
    learn.add_argument("--recordings", type=int, default=50, help="recordings of each home")
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
    """Stream the nights once, then replay them at each setting with and without the parent's
    marks."""
    model = CryModel(args.model or default_model_path())
    learn = LearnConfig()
    similarity = model.info.details.get("learn", {}).get("similarity")
    if model.embedding_size is None or similarity is None:
        raise RecipeError(f"{model.path}: outputs no embeddings or names no similarity")
    corpus = load_independent(
        args.independent or args.data / "independent",
        args.independent_cache or args.runs / "independent",
    )
    rng = np.random.default_rng(args.seed)
    if args.homes:
        places = {
            f"home {k + 1}": (home(corpus, args.recordings, rng), args.nights)
            for k in range(args.homes)
        }
    else:
        places = {"independent night": (corpus, 1)}
    streamed = {
        name: [
            stream_night(
                model,
                place,
                plan(place, args.hours, args.per_snr, args.seed + n),
                DetectionConfig(),
            )
            for n in range(nights)
        ]
        for name, (place, nights) in places.items()
    }
    base = detector_settings(DetectionConfig(), model.info)
    settings = [base] + [
        replace(base, threshold=t, trigger_windows=int(k), of_windows=int(n))
        for t, k, n in args.also
    ]
    report: dict[str, Any] = {
        "model": model.path.name,
        "version": model.info.version,
        "similarity": similarity,
        "override_seconds": learn.override_seconds,
        "hours_per_night": args.hours,
        "seed": args.seed,
        "homes": args.homes and {"nights": args.nights, "recordings": args.recordings},
        "settings": [],
    }
    for s in settings:
        row = {"threshold": s.threshold, "votes": f"{s.trigger_windows} of {s.of_windows}"}
        for name, passes in streamed.items():
            memory = FalseAlarms(similarity, learn.max_false_alarms)
            row[name] = measure(
                passes, s, memory, learn.override_seconds, model.info.window_seconds
            )
        report["settings"].append(row)
        print(json.dumps(row))
    out = args.out or args.runs / "learn-night" / f"{model.path.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {out}")
    return report
