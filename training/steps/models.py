"""The steps that make and measure model files: ``export`` (ONNX with its metadata), ``evaluate``
(metrics, plots, model card) and ``independent`` (the independent set)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cry_mqtt.detector import DEFAULT_VOTES, Votes, votes_fit
from training.data import DEFAULT_DATA, RecipeError


def add_parsers(steps: Any) -> None:
    """The model steps of ``python -m training``."""
    export = steps.add_parser("export", help="ONNX with metadata, parity check")
    export.add_argument(
        "--run-dir", type=Path, help="checkpoint and fit summary (default: <runs>/<arch>)"
    )
    export.add_argument(
        "--out", type=Path, help="ONNX file (default: cry-<arch>.onnx in the run's folder)"
    )
    export.add_argument(
        "--threshold",
        type=float,
        help="default threshold to ship (e.g. the night sweep's pick); "
        "default: the lowest with <= 1%% false positives on validation negatives",
    )
    export.add_argument(
        "--votes",
        type=int,
        nargs=2,
        metavar=("K", "N"),
        action=_VotesAction,
        default=[DEFAULT_VOTES.trigger_windows, DEFAULT_VOTES.of_windows],
        help="detector rule the file carries: ON when K of the last N windows reach the "
        "threshold (e.g. the night sweep's pick; default: %(default)s)",
    )
    export.add_argument(
        "--hop",
        type=_positive_seconds,
        default=DEFAULT_VOTES.hop_seconds,
        help="the scoring hop in seconds the votes were chosen at (default: %(default)s); the "
        "agent scores at it unless detection.hop_seconds sets another",
    )
    export.add_argument(
        "--pool-top",
        type=int,
        default=1,
        help="yamnet, mn04: a window scores the mean of its N highest patches (default 1: the "
        "maximum)",
    )
    export.add_argument(
        "--zero-shot",
        action="store_true",
        help="yamnet, mn04: the pretrained tagger's own crying output, no run folder needed",
    )
    export.set_defaults(run=_export)

    evaluate = steps.add_parser("evaluate", help="metrics, plots and model card")
    evaluate.add_argument(
        "--model", type=Path, help="ONNX file (default: <runs>/<arch>/cry-<arch>.onnx)"
    )
    evaluate.add_argument(
        "--independent",
        type=Path,
        action="append",
        default=[],
        help="a result of python -m training independent for the card (repeatable)",
    )
    evaluate.add_argument(
        "--night",
        type=Path,
        action="append",
        default=[],
        help="a night.json of python -m training night for the card (repeatable)",
    )
    evaluate.set_defaults(run=_evaluate)

    independent = steps.add_parser(
        "independent", help="measure models on the independent set (sources never trained on)"
    )
    independent.add_argument(
        "--model", type=Path, action="append", default=[], help="model to score (repeatable)"
    )
    independent.add_argument(
        "--saved", type=Path, action="append", default=[], help="a saved result to report too"
    )
    independent.add_argument(
        "--data", type=Path, default=DEFAULT_DATA / "independent", help="the independent set"
    )
    independent.add_argument(
        "--cache", type=Path, help="its decoded clips (default: <runs>/independent)"
    )
    independent.add_argument(
        "--out", type=Path, help="one result per model (default: <runs>/independent-results)"
    )
    independent.add_argument("--threshold", type=float, help="default: each model's own")
    independent.add_argument("--limit-per-label", type=int, help="only the first N clips per label")
    independent.add_argument("--report", type=Path, help="write a Markdown report here")
    independent.add_argument(
        "--fuse",
        type=Path,
        action="append",
        default=[],
        help="saved results to fuse into one more row (the sum of their clip logits)",
    )
    independent.set_defaults(run=_independent)


class _VotesAction(argparse.Action):
    """``--votes K N``, refused before anything runs unless 1 <= K <= N."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if not votes_fit(*values):
            parser.error("--votes K N: need 1 <= K <= N")
        setattr(namespace, self.dest, values)


def _positive_seconds(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError("need a hop above 0 seconds")
    return seconds


def _export(args: argparse.Namespace) -> None:
    from training.export import default_output, export

    run_dir = args.run_dir or args.runs / args.arch
    out = args.out or default_output(args.arch, run_dir)
    zero_shot = args.arch if args.zero_shot else None
    votes = Votes(*args.votes, args.hop)
    info = export(
        args.runs / "cache", run_dir, out, args.threshold, args.pool_top, zero_shot, votes
    )
    print(json.dumps(json.loads(info.to_metadata()["cry_mqtt"]), indent=2))


def _evaluate(args: argparse.Namespace) -> None:
    from training.evaluation.evaluate import evaluate
    from training.export import default_output

    model = args.model or default_output(args.arch, args.runs / args.arch)
    independent = [json.loads(path.read_text()) for path in args.independent]
    nights = [json.loads(path.read_text()) for path in args.night]
    report = evaluate(args.runs / "cache", model, args.runs, independent, nights)
    print(report)


def _independent(args: argparse.Namespace) -> None:
    from training.evaluation.independent import measure_models

    if not args.model and not args.saved:
        raise RecipeError("give at least one --model or --saved result")
    measure_models(
        args.model,
        args.saved,
        args.data,
        args.cache or args.runs / "independent",
        args.out or args.runs / "independent-results",
        args.threshold,
        args.limit_per_label,
        args.fuse,
        args.report,
    )
