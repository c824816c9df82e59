"""A training run's folder (``runs/<arch>/``): the weights and the one summary shape that every
recipe leaves there (:class:`RunSummary`), which ``export`` copies into the model file and
``evaluate`` and the model card read without asking which recipe made the run. Torch-free, so
the card can read it; :mod:`~training.recipes.weights` loads the weights."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from training import RecipeError
from training.data.audio import WINDOW_SECONDS

CHECKPOINT = "model.pth"
SUMMARY = "fit_summary.json"
RECIPES = ("fit", "finetune", "distil", "soup", "wise", "zero-shot")


@dataclass
class RunSummary:
    """How a run's weights came about, in one shape for every recipe."""

    arch: str
    """The network (:func:`network`)."""
    recipe: str
    """One of :data:`RECIPES`."""
    training: str
    """How the weights were made, one sentence for the model card, written by the recipe."""
    params: int
    macs_per_window: int
    epochs: int
    seeds: list[int]
    best_epoch: int | None
    """The epoch whose weights were kept (None: nothing trained, or a mix of runs)."""
    total_seconds: float
    torch_threads: int
    data: dict[str, Any]
    """The cache's split the run saw (:func:`training.data.cache.summarize`)."""
    pretrained: str = ""
    """The weights it started from and their licence (empty: trained from scratch)."""
    window_seconds: float = WINDOW_SECONDS
    augment: dict[str, Any] | None = None
    """The training windows' augmentation (None: nothing was trained)."""
    p_phone_negative: float | None = None
    positives_without_crying: int | None = None
    train_windows_per_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    """Per-epoch losses and validation metrics (epoch 0 alone: the unchanged model's)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The recipe's own settings: what a soup's runs must share."""
    runs: list[str] = field(default_factory=list)
    """The runs a soup or a WiSE mix was made of."""

    @property
    def trained(self) -> bool:
        return self.recipe != "zero-shot"

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str) -> RunSummary:
        """The summary in ``values``, or a :class:`RecipeError` naming what ``where`` lacks (a
        summary written before this shape)."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is f.default_factory is MISSING}
        missing = sorted(required - set(values))
        if missing or values["recipe"] not in RECIPES:
            lacks = ", ".join(missing) if missing else f"a known recipe ({values['recipe']!r})"
            raise RecipeError(
                f"{where} was written by an older recipe (it lacks {lacks}): run the step that "
                "made it again"
            )
        return cls(**{k: v for k, v in values.items() if k in names})


def read_summary(run_dir: Path) -> RunSummary:
    """The summary a finished training run wrote to ``run_dir``."""
    try:
        values = json.loads((run_dir / SUMMARY).read_text())
    except FileNotFoundError:
        raise RecipeError(
            f"no finished training run in {run_dir} ({SUMMARY} is missing; an interrupted run "
            "writes none): run `python -m training fit` or `finetune` to the end first"
        ) from None
    return RunSummary.from_dict(values, str(run_dir / SUMMARY))


def write_summary(run_dir: Path, summary: RunSummary) -> None:
    """Write ``summary`` to ``run_dir``."""
    (run_dir / SUMMARY).write_text(json.dumps(asdict(summary), indent=2, default=list))
