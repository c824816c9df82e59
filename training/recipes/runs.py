"""A training run's folder (``runs/<arch>/``): the weights and the summary that ``fit``,
``finetune``, ``distil`` and ``wise`` leave there, and that ``export`` and ``evaluate`` read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training import RecipeError

CHECKPOINT = "model.pth"
SUMMARY = "fit_summary.json"


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The summary a finished training run wrote to ``run_dir``."""
    try:
        return json.loads((run_dir / SUMMARY).read_text())
    except FileNotFoundError:
        raise RecipeError(
            f"no finished training run in {run_dir} ({SUMMARY} is missing; an interrupted run "
            "writes none): run `python -m training fit` or `finetune` to the end first"
        ) from None


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``summary`` (sets as lists) to ``run_dir``."""
    (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2, default=list))
