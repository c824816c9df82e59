"""Command line: ``python -m training STEP``, the steps of the recipe, its evaluation and the night
test (``--help`` lists them in the order a user runs them). Each room wires its own steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from cry_mqtt.model import ModelError
from training import DEFAULT_RUNS, RecipeError, export_cli
from training.data import cli as data_cli
from training.evaluation import cli as evaluation_cli
from training.night import add_learning_parser, add_pick_parser, add_race_parser
from training.night import add_parser as add_night_parser
from training.recipes import cli as recipes_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument(
        "--runs", type=Path, default=DEFAULT_RUNS, help="cache and checkpoints (default: runs/)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--arch",
        choices=("cnn", "resnet34", "yamnet", "mn04"),
        default="cnn",
        help="model to export or evaluate (yamnet: the output of finetune; mn04: EfficientAT "
        "mn04_as, the output of distil, zero-shot with distil --epochs 0 or export --zero-shot)",
    )
    steps = parser.add_subparsers(dest="step", required=True)
    data_cli.add_parsers(steps)
    recipes_cli.add_parsers(steps)
    export_cli.add_parser(steps)
    evaluation_cli.add_parsers(steps)
    add_night_parser(steps)
    add_pick_parser(steps)
    add_race_parser(steps)
    add_learning_parser(steps)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (RecipeError, ModelError) as exc:
        raise SystemExit(f"python -m training {args.step}: {exc}") from None


if __name__ == "__main__":
    main()
