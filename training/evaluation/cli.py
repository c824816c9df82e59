"""The steps that measure model files: ``evaluate`` (metrics, plots, model card) and
``independent`` (the independent set)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cry_mqtt.model import CryModel
from training import DEFAULT_DATA, RecipeError


def add_parsers(steps: Any) -> None:
    """The measuring steps of ``python -m training``."""
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

    memory = steps.add_parser(
        "memory",
        help="pick the false-alarm memory's similarity on the training sources "
        "(export --memory-similarity carries it)",
    )
    memory.add_argument("--model", type=Path, help="ONNX model (default: the packaged one)")
    memory.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    memory.add_argument(
        "--emogator", type=Path, help="a clone of fredbuhl/EmoGator: adult sobs and moans"
    )
    memory.add_argument("--workers", type=int, default=2, help="processes scoring recordings")
    memory.add_argument("--out", type=Path, help="result (default: <runs>/memory/<model>.json)")
    memory.set_defaults(run=_memory)


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


def _memory(args: argparse.Namespace) -> None:
    from cry_mqtt.model import default_model_path
    from training.data.sources import discover
    from training.evaluation.memory import calibrate, hear_all

    model = args.model or default_model_path()
    heard = hear_all(model, discover(args.data, emogator=args.emogator), args.workers)
    result = calibrate(heard, CryModel(model).info.threshold)
    out = args.out or args.runs / "memory" / f"{model.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model.name, **result}, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    print(f"written to {out}; export --memory-similarity {result['pick']} carries the pick")
