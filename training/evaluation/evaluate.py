"""The ``evaluate`` step: the ONNX file as the agent loads it, scored on the validation side of
the split (:mod:`~training.evaluation.validation`, :mod:`~training.evaluation.metrics`), with its
plots (:mod:`~training.evaluation.plots`), its model card (:mod:`~training.evaluation.card`) and
its evaluation beside the other models' on the same split."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cry_mqtt.model import CryModel, default_model_path
from training import RecipeError
from training.data.cache import Cache
from training.evaluation.card import model_card
from training.evaluation.metrics import compute_metrics
from training.evaluation.plots import plot
from training.evaluation.validation import score_validation
from training.recipes.runs import RunSummary

EVALUATIONS = "evaluations"
"""The folder of ``runs`` that holds every evaluated model's ``<label>.json``: its run folder's
name, or the packaged model's file stem."""


def run_of(model: CryModel, where: Path) -> RunSummary:
    """The run summary that ``export`` copied into ``model``'s metadata, with its training data."""
    details = model.info.details
    if "run" not in details:
        raise RecipeError(
            f"{where} carries no run summary (exported before files described their run): "
            "export it again"
        )
    return RunSummary.from_dict(details["run"] | {"data": details["training_data"]}, str(where))


def evaluate(
    cache_dir: Path,
    model_path: Path,
    runs: Path,
    independent: list[dict[str, Any]] | None = None,
    nights: list[dict[str, Any]] | None = None,
) -> str:
    """Score the validation split with the ONNX file as the agent loads it; write plots and a
    model card next to the model, and its evaluation to ``runs/evaluations/``,
    where the card finds the other models evaluated on the same split; return a short summary.
    The run that made the weights is the one the file's metadata describes. ``independent``
    holds results of :mod:`training.evaluation.independent` and ``nights`` those of ``python -m
    training night`` (this model's and others') for the card."""
    model = CryModel(model_path)
    run = run_of(model, model_path)
    scored = score_validation(Cache(cache_dir), model.predict, model.info.features)
    threshold = model.info.threshold
    metrics = compute_metrics(scored, threshold)
    at_fpr = model.info.details.get("threshold_at_1pct_fpr", threshold)
    packaged = model_path.resolve() == default_model_path().resolve()
    prefix = "" if packaged else f"{run.arch}-"
    label = model_path.stem if packaged else model_path.parent.name  # the run's folder
    plots = plot(scored, threshold, model_path.parent, prefix)
    evaluation = {
        "arch": run.arch,
        "run": label,
        "model": str(model_path),
        "version": model.info.version,
        "votes": asdict(model.info.votes),
        "file_mb": round(model_path.stat().st_size / 1e6, 3),
        "params": run.params,
        "macs_per_window": run.macs_per_window,
        "ms_per_window": round(CryModel(model_path, threads=1).window_cpu_ms(), 2),
        "fit_minutes": round(run.total_seconds / 60, 1),
        "epochs": run.epochs,
        "pool_top": model.info.details.get("pool_top", 1),
        "embedding_size": model.embedding_size,
        "learn": model.info.details.get("learn"),
        "presets": [asdict(preset) for preset in model.info.presets],
        "metrics": metrics,
        "threshold_at_1pct_fpr": at_fpr,
        "metrics_at_1pct_fpr": compute_metrics(scored, at_fpr),
    }
    saved = runs / EVALUATIONS / f"{label}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(evaluation, indent=2))
    others = [json.loads(p.read_text()) for p in sorted(saved.parent.glob("*.json")) if p != saved]
    card = model_card(evaluation, run, others, plots, independent, nights)
    card_path = model_path.parent / ("MODEL_CARD.md" if not prefix else f"{run.arch}-MODEL_CARD.md")
    card_path.write_text(card)
    return (
        f"{card_path} written\n"
        + json.dumps({k: v for k, v in evaluation.items() if k != "metrics"}, indent=2)
        + "\n"
        + json.dumps(metrics, indent=2)
    )
