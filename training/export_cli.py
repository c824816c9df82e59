"""The ``export`` step's command line (:mod:`training.export` does the work; it is imported only
when the step runs, so that ``--help`` stays fast)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cry_mqtt.detector import DEFAULT_VOTES, Votes, votes_fit


def add_parser(steps: Any) -> None:
    """``python -m training export``."""
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
    export.add_argument(
        "--memory-similarity",
        type=float,
        help="how alike a sound must be to a parent's remembered false alarm (python -m "
        "training memory picks it on the training sources); the agent learns only from a file "
        "that names one",
    )
    export.add_argument(
        "--presets",
        type=Path,
        metavar="NIGHT",
        help="a night.json of python -m training night --sweep: the sensitivity presets it "
        "chooses (quiet room, balanced, noisy room) go into the file",
    )
    export.add_argument(
        "--like",
        type=Path,
        metavar="MODEL",
        help="with --zero-shot: write today's graph around the tagger in the zero-shot model "
        "file MODEL, keeping its metadata (threshold, votes, metrics) as it is; no cache needed",
    )
    export.set_defaults(run=_export)


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
    from training.export import default_output, export, regraph
    from training.night.presets import choose_presets

    run_dir = args.run_dir or args.runs / args.arch
    out = args.out or default_output(args.arch, run_dir)
    zero_shot = args.arch if args.zero_shot else None
    votes = Votes(*args.votes, args.hop)
    presets = None if args.presets is None else choose_presets(json.loads(args.presets.read_text()))
    if args.like is not None:
        if not args.zero_shot:
            raise SystemExit("export: --like needs --zero-shot")
        info = regraph(args.like, out, args.memory_similarity, presets)
    else:
        info = export(
            args.runs / "cache",
            run_dir,
            out,
            args.threshold,
            args.pool_top,
            zero_shot,
            votes,
            args.memory_similarity,
            presets,
        )
    print(json.dumps(json.loads(info.to_metadata()["cry_mqtt"]), indent=2))
