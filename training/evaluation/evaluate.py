"""The ``evaluate`` step: the ONNX file as the agent loads it, scored on the validation side of
the split (:mod:`~training.evaluation.validation`, :mod:`~training.evaluation.metrics`), with its
plots (:mod:`~training.evaluation.plots`), its model card (:mod:`~training.evaluation.card`) and
``evaluation.json``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cry_mqtt.model import CryModel, default_model_path
from training.data.cache import Cache
from training.evaluation.card import model_card
from training.evaluation.metrics import compute_metrics
from training.evaluation.plots import plot
from training.evaluation.validation import score_validation
from training.recipes.runs import SUMMARY, read_summary


def evaluate(
    cache_dir: Path,
    model_path: Path,
    runs: Path,
    independent: list[dict[str, Any]] | None = None,
    nights: list[dict[str, Any]] | None = None,
) -> str:
    """Score the validation split with the ONNX file as the agent loads it; write plots, a model
    card next to the model and ``evaluation.json`` beside its fit summary (the model's folder,
    else ``runs/<arch>/``); return a short summary. ``independent`` holds results of
    :mod:`training.evaluation.independent` and ``nights`` those of ``python -m training night``
    (this model's and others') for the card."""
    model = CryModel(model_path)
    arch = model.info.details.get("arch", "model")
    scored = score_validation(Cache(cache_dir), model.predict, model.info.features)
    threshold = model.info.threshold
    metrics = compute_metrics(scored, threshold)
    at_fpr = model.info.details.get("threshold_at_1pct_fpr", threshold)
    packaged = model_path.resolve() == default_model_path().resolve()
    prefix = "" if packaged else f"{arch}-"
    plots = plot(scored, threshold, model_path.parent, prefix)
    run_dir = model_path.parent if (model_path.parent / SUMMARY).is_file() else runs / arch
    fit_summary = read_summary(run_dir)
    evaluation = {
        "arch": arch,
        "model": str(model_path),
        "version": model.info.version,
        "votes": asdict(model.info.votes),
        "file_mb": round(model_path.stat().st_size / 1e6, 3),
        "params": fit_summary["params"],
        "macs_per_window": fit_summary["macs_per_window"],
        "ms_per_window": round(CryModel(model_path, threads=1).window_cpu_ms(), 2),
        "fit_minutes": round(fit_summary["total_seconds"] / 60, 1),
        "epochs": fit_summary["epochs"],
        "pool_top": model.info.details.get("pool_top", 1),
        "metrics": metrics,
        "threshold_at_1pct_fpr": at_fpr,
        "metrics_at_1pct_fpr": compute_metrics(scored, at_fpr),
    }
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    others = [
        {**json.loads(p.read_text()), "run": p.parent.name}
        for p in sorted(runs.glob("*/evaluation.json"))
        if p.parent != run_dir
    ]
    card = model_card(evaluation, fit_summary, others, plots, independent, nights)
    card_path = model_path.parent / ("MODEL_CARD.md" if not prefix else f"{arch}-MODEL_CARD.md")
    card_path.write_text(card)
    return (
        f"{card_path} written\n"
        + json.dumps({k: v for k, v in evaluation.items() if k != "metrics"}, indent=2)
        + "\n"
        + json.dumps(metrics, indent=2)
    )
