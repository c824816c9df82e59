"""The Markdown model card, section by section (:mod:`.model`, :mod:`.data`, :mod:`.results`),
each a function over the same inputs: the model's evaluation, the summary of the run that made
it (:class:`~training.recipes.runs.RunSummary`, one shape for every recipe), the independent
results and the nights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.evaluation.card.data import SOURCES, data_section, sources_by_category
from training.evaluation.card.model import model_section, training_log
from training.evaluation.card.results import (
    architectures_section,
    independent_section,
    limitations_section,
    nights_section,
    race_section,
    validation_section,
)
from training.recipes.runs import RunSummary

__all__ = ["model_card", "nights_section", "race_section"]


def model_card(
    evaluation: dict[str, Any],
    run: RunSummary,
    others: list[dict[str, Any]],
    plots: list[Path],
    independent: list[dict[str, Any]] | None = None,
    nights: list[dict[str, Any]] | None = None,
) -> str:
    """The Markdown model card: ``evaluation`` (this model's ``evaluation.json``) beside
    ``others`` (other models' on the same split), with its run's summary, the plots, the
    independent results and the nights (``night.json`` of ``python -m training night``)."""
    sections = [
        model_section(evaluation, run),
        data_section(evaluation, run),
        independent_section(independent or []),
        nights_section(nights or []),
        race_section(nights or []),
        validation_section(evaluation),
        architectures_section(evaluation, others),
        training_log(run),
        ["## Plots", "", *(f"![{p.stem}]({p.name})" for p in plots), ""],
        SOURCES,
        sources_by_category(run.data),
        limitations_section(evaluation, run),
    ]
    return "\n".join(line for section in sections for line in section)
