"""The Markdown model card, section by section (:mod:`.model`, :mod:`.data`, :mod:`.results`),
from ``evaluation.json``'s content, the run's summary, the independent results and the nights."""

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

__all__ = ["model_card", "nights_section", "race_section"]


def model_card(
    evaluation: dict[str, Any],
    fit_summary: dict[str, Any],
    others: list[dict[str, Any]],
    plots: list[Path],
    independent: list[dict[str, Any]] | None = None,
    nights: list[dict[str, Any]] | None = None,
) -> str:
    """The Markdown model card: ``evaluation`` (this model's ``evaluation.json``) beside
    ``others`` (other runs' on the same split), with the run's summary, the plots, the
    independent results and the nights (``night.json`` of ``python -m training night``)."""
    sections = [
        model_section(evaluation, fit_summary),
        data_section(evaluation, fit_summary),
        independent_section(independent or []),
        nights_section(nights or []),
        race_section(nights or []),
        validation_section(evaluation),
        architectures_section(evaluation, others),
        training_log(fit_summary),
        ["## Plots", "", *(f"![{p.stem}]({p.name})" for p in plots), ""],
        SOURCES,
        sources_by_category(fit_summary["data"]),
        limitations_section(evaluation, fit_summary),
    ]
    return "\n".join(line for section in sections for line in section)
