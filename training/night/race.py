"""``python -m training race``: models, alone and confirmed by another, picked on one tuning night
and measured on the independent nights from stored window scores.

Each model is streamed once per night and hop through the agent's offline path and its window
scores are kept (``<out>/streams/``), so a finer grid or another rule costs seconds, not another
stream. The candidates are every model alone (each at every hop) and every model confirmed by
another (``--confirm-by``): a window counts only when the confirming model's window ending at
the same time reaches ``--confirm-at`` (the student confirmed by YAMNet, which an agent would
run only when the student votes). Each candidate's setting is picked on the tuning night by
:func:`~training.night.measure.pick`, its file's own setting the tie-break; the independent
nights are measured at the picks and never chosen on (their threshold curves at each pick are
information only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.pipeline import WindowResult, detector_settings
from training import RecipeError
from training.data.cache import Cache
from training.night.assemble import RATE, Corpus, Night, plan
from training.night.measure import (
    SETTING_KEYS,
    Grid,
    current_setting,
    detection_config,
    evaluate,
    false_alarms_by_category,
    pick,
    replay,
    stream_night,
    sweep,
)
from training.night.sources import add_data_options, family, load_independent, load_validation

CURVE_KEYS = ("threshold", "recall_snr_ge_0", "false_alarms", "latency_median_s")
ALIGN_SECONDS = 0.1
"""How far apart two models' windows may end and still be one window: each front end ends a
7-s window on its own frame grid, milliseconds apart."""


@dataclass(frozen=True)
class Scores:
    """A night's window scores at one hop: the windows' ends ``t`` in seconds, their
    probabilities, and the night's length in seconds."""

    t: np.ndarray
    prob: np.ndarray
    total: float

    def windows(self) -> list[WindowResult]:
        """The scores as the agent's window results, for :func:`replay` and :func:`sweep`."""
        return [
            WindowResult(t, p, 0.0, False, False, None)
            for t, p in zip(self.t.tolist(), self.prob.tolist(), strict=True)
        ]


@dataclass(frozen=True)
class NightPlan:
    """A named night and the corpus it is drawn from."""

    name: str
    corpus: Corpus
    night: Night


def scores_of(model: CryModel, where: NightPlan, hop: float, streams: Path) -> Scores:
    """``model``'s window scores on the night at ``hop``: read from ``streams`` if a run of the
    same model file on a night of the same length left them there, else streamed through the
    agent's offline path and saved there."""
    path = streams / f"{model.path.stem}-{where.name}-hop{hop:g}.npz"
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    if path.exists():
        with np.load(path) as saved:
            if (
                str(saved["model_sha256"]) == digest
                and int(saved["samples"]) == where.night.samples
            ):
                return Scores(saved["t"], saved["prob"], float(saved["total"]))
    done = stream_night(model, where.corpus, where.night, DetectionConfig(hop_seconds=hop))
    scores = Scores(
        np.array([r.t for r in done.results]), np.array([r.prob for r in done.results]), done.total
    )
    streams.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        t=scores.t,
        prob=scores.prob,
        total=scores.total,
        model_sha256=digest,
        samples=where.night.samples,
    )
    print(f"streamed {path.name} at {done.realtime_factor:.0f}x real time")
    return scores


def confirmed(scores: Scores, by: Scores, at: float) -> Scores:
    """``scores`` where the window of ``by`` that ends nearest in time (within
    :data:`ALIGN_SECONDS`) reaches ``at``, else 0: the window does not count."""
    if len(by.t) == 0:
        raise RecipeError("the confirming model scored no window")
    after = np.clip(np.searchsorted(by.t, scores.t), 1, len(by.t) - 1)
    before = after - 1
    nearest = np.where(
        np.abs(by.t[after] - scores.t) < np.abs(by.t[before] - scores.t), after, before
    )
    if np.any(np.abs(by.t[nearest] - scores.t) > ALIGN_SECONDS):
        raise RecipeError("the confirming model scored no window ending where the other's does")
    return Scores(scores.t, np.where(by.prob[nearest] >= at, scores.prob, 0.0), scores.total)


@dataclass(frozen=True)
class Candidate:
    """A way to decide: a model alone at its hops, or (with ``confirmer``, the confirming model's
    scores at the model's first hop) a model confirmed by another at each of ``confirm_at``.
    ``scores`` and ``confirmer`` are keyed by night name (and hop)."""

    name: str
    model: CryModel
    scores: dict[str, dict[float, Scores]]
    confirmer: dict[str, Scores] | None = None
    confirm_at: tuple[float, ...] = ()

    def rows(self, where: NightPlan, grid: Grid) -> list[dict[str, Any]]:
        """The sweep on ``where`` of every hop, or of every confirming threshold."""
        window = self.model.info.window_seconds
        if self.confirmer is None:
            return sweep(where.night.truth, self._at(where.name, None), grid, window)
        return [
            {**r, "confirm_at": at}
            for at in self.confirm_at
            for r in sweep(where.night.truth, self._at(where.name, at), grid, window)
        ]

    def measure(self, where: NightPlan, chosen: dict[str, Any], grid: Grid) -> dict[str, Any]:
        """The metrics on ``where`` at ``chosen``, and the threshold curve at its other
        settings (information only)."""
        hop, window = chosen["hop_s"], self.model.info.window_seconds
        windows, total = self._at(where.name, chosen.get("confirm_at"))[hop]
        config = detection_config(chosen, DetectionConfig())
        spans = replay(windows, detector_settings(config, self.model.info), total)
        return {
            **evaluate(where.night.truth, spans, total, window),
            "false_alarms_by_category": false_alarms_by_category(
                where.corpus, where.night, spans, window
            ),
            "thresholds_information_only": [
                {k: r[k] for k in CURVE_KEYS}
                for r in sweep(
                    where.night.truth, {hop: (windows, total)}, grid.curve_at(chosen), window
                )
            ],
        }

    def _at(self, night: str, at: float | None) -> dict[float, tuple[list[WindowResult], float]]:
        """The windows to replay at each hop: the model's own, or at its first hop those the
        confirming model confirms at ``at``."""
        own = self.scores[night]
        if self.confirmer is None or at is None:
            return {h: (s.windows(), s.total) for h, s in own.items()}
        hop, scores = next(iter(own.items()))
        return {hop: (confirmed(scores, self.confirmer[night], at).windows(), scores.total)}


def race(
    candidates: Sequence[Candidate], tuning: NightPlan, others: Sequence[NightPlan], grid: Grid
) -> list[dict[str, Any]]:
    """Each candidate's pick on ``tuning`` (its file's own setting the tie-break; at its slowest
    hop where it was not scored at the file's) and its metrics there and on each of ``others``
    at that pick."""
    results = []
    for candidate in candidates:
        own = current_setting(DetectionConfig(), candidate.model)
        rows = candidate.rows(tuning, grid)
        hops = {r["hop_s"] for r in rows}
        # not scored at the file's hop: pick at the slowest
        current = own if own["hop_s"] in hops else {**own, "hop_s": max(hops)}
        chosen_row = pick(rows, current)
        chosen = {k: chosen_row[k] for k in (*SETTING_KEYS, "confirm_at") if k in chosen_row}
        results.append(
            {
                "candidate": candidate.name,
                "model": candidate.model.path.name,
                "file_setting": own,
                "setting": chosen,
                "tuning": {k: v for k, v in chosen_row.items() if k not in chosen},
                **{where.name: candidate.measure(where, chosen, grid) for where in others},
            }
        )
        print(json.dumps({k: results[-1][k] for k in ("candidate", "setting")}))
    return results


def race_command(args: argparse.Namespace) -> dict[str, Any]:
    """``python -m training race``: streams what ``<out>/streams`` lacks, races the candidates,
    writes ``<out>/race.json`` and prints a table."""
    validation = load_validation(Cache(args.runs / "cache"))
    independent = load_independent(
        args.independent or args.data / "independent",
        args.independent_cache or args.runs / "independent",
    )
    families = [family(c) for c in validation.categories] if args.families else None
    tuning = NightPlan(
        f"tuning-{args.tuning_hours:g}h-seed{args.seed}",
        validation,
        plan(validation, args.tuning_hours, args.per_snr, args.seed, families),
    )
    others = [
        NightPlan(
            f"independent-{h:g}h-seed{args.seed}",
            independent,
            plan(independent, h, int(n), args.seed),
        )
        for h, n in args.independent_night or [(4.0, 16), (24.0, 96)]
    ]
    streams = (args.out or args.runs / "race") / "streams"

    def scored(model: CryModel, hops: Sequence[float]) -> dict[str, dict[float, Scores]]:
        return {
            w.name: {h: scores_of(model, w, h, streams) for h in hops} for w in (tuning, *others)
        }

    models = [CryModel(path) for path in args.models or [default_model_path()]]
    candidates = [Candidate(m.path.stem, m, scored(m, args.hops)) for m in models]
    if args.confirm_by:
        by, hop = CryModel(args.confirm_by), args.hops[0]
        theirs = {night: hops[hop] for night, hops in scored(by, [hop]).items()}
        others_alone = [c for c in candidates if c.model.path.resolve() != by.path.resolve()]
        if len(others_alone) == len(candidates):
            alone = Candidate(by.path.stem, by, {n: {hop: s} for n, s in theirs.items()})
            candidates.insert(0, alone)
        candidates += [
            Candidate(
                f"{c.name} confirmed by {by.path.stem}",
                c.model,
                {n: {hop: s[hop]} for n, s in c.scores.items()},
                theirs,
                tuple(args.confirm_at),
            )
            for c in others_alone
        ]
    start, stop, step = args.thresholds
    grid = Grid(
        tuple(np.round(np.arange(start, stop + step / 2, step), 2)), holds=tuple(args.holds)
    )
    report = {
        "seed": args.seed,
        "nights": {
            w.name: {
                "hours": round(w.night.samples / RATE / 3600, 3),
                "episodes": len(w.night.truth),
            }
            for w in (tuning, *others)
        },
        "thresholds": list(grid.thresholds),
        "holds": list(grid.holds),
        "candidates": race(candidates, tuning, others, grid),
    }
    streams.parent.joinpath("race.json").write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(table(report)))
    return report


def table(report: dict[str, Any]) -> list[str]:
    """The race as a Markdown table: each candidate's pick, and what it hears at it."""
    names = list(report["nights"])
    lines = [
        "| candidate | pick: threshold, votes, hop (confirmed at) | "
        + " | ".join(
            f"{n}: episodes at >= 0 dB, false alarms (an hour), median alarm" for n in names
        )
        + " |",
        "| --- | --- |" + " ---: |" * len(names),
    ]
    for c in report["candidates"]:
        s = c["setting"]
        pick_text = (
            f"{s['threshold']:g}, {s['trigger_windows']} of {s['of_windows']}, {s['hop_s']:g} s"
            + (f" ({s['confirm_at']:g})" if "confirm_at" in s else "")
        )
        cells = [c["tuning"], *(c[n] for n in names[1:])]
        lines.append(f"| {c['candidate']} | {pick_text} | " + " | ".join(map(_cell, cells)) + " |")
    return lines


def _cell(m: dict[str, Any]) -> str:
    alarms = f"{m['false_alarms']} ({m['false_alarms_per_hour']:.2f})"
    return f"{m['recall_snr_ge_0']:.3f}, {alarms}, {m['latency_median_s']:g} s"


def add_parser(steps: Any) -> None:
    """The ``race`` step of ``python -m training``."""
    racer = steps.add_parser(
        "race",
        help="models alone and confirmed by another, picked on one tuning night, measured on "
        "the independent nights (window scores kept)",
    )
    racer.add_argument(
        "models", type=Path, nargs="*", help="ONNX models (default: the packaged one)"
    )
    add_data_options(racer)
    racer.add_argument("--tuning-hours", type=float, default=24.0, help="the tuning night's length")
    racer.add_argument("--per-snr", type=int, default=16, help="its episodes at each SNR")
    racer.add_argument(
        "--families",
        action="store_true",
        help="the tuning night hears each family of sounds about as long as any other",
    )
    racer.add_argument(
        "--independent-night",
        type=float,
        nargs=2,
        action="append",
        metavar=("HOURS", "PER_SNR"),
        help="an independent night to measure at the picks (default: 4 16 and 24 96)",
    )
    racer.add_argument("--hops", type=float, nargs="+", default=[1.0], help="scoring hops (s)")
    racer.add_argument(
        "--thresholds",
        type=float,
        nargs=3,
        default=[0.30, 0.95, 0.05],
        metavar=("START", "STOP", "STEP"),
        help="the thresholds swept",
    )
    racer.add_argument("--holds", type=float, nargs="+", default=[10.0], help="holds swept (s)")
    racer.add_argument(
        "--confirm-by",
        type=Path,
        help="a model that confirms the others' windows, scored at the first hop (and raced "
        "alone there)",
    )
    racer.add_argument(
        "--confirm-at",
        type=float,
        nargs="+",
        default=[0.1, 0.2, 0.3, 0.4, 0.5],
        help="the confirming model's thresholds swept",
    )
    racer.add_argument("--out", type=Path, help="streams and race.json (default: <runs>/race)")
    racer.set_defaults(run=race_command)
