"""Grouped k-fold cross-validation of the training recipe.

The 90:10 split validates on about a hundred positive clips, too few to tell a change of a few
hundredths from luck. Here every group (Donate-a-cry app uuid, negative recording) is validated
once, by the model of the fold that never saw it: the recipe's metrics come with their spread
over folds, and every positive gets an out-of-fold score. The positives missed out of fold are
the uploads to listen to first when cleaning the corpus.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from training.data.augment import AugmentConfig
from training.data.cache import Cache
from training.data.split import grouped_folds
from training.evaluation.metrics import compute_metrics
from training.evaluation.validation import score_validation
from training.export import load_window_model, torch_predict, validation_threshold
from training.recipes.fit import fit

RESULT = "fold.json"
# name in compute_metrics -> column heading
COLUMNS = {
    "balanced_accuracy": "bal. acc",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "recall": "recall",
    "recall_ios": "recall 16k",
    "fpr": "FPR",
    "fpr_band_limited": "FPR low-passed",
}


def run_fold(
    cache: Cache, fold: int, valid_groups: set[str], out: Path, settings: dict[str, Any]
) -> dict[str, Any]:
    """Fit on every group but ``valid_groups``, score them at the fold's own 1%-FPR threshold;
    the result (also written to ``out/fold.json``) holds the metrics and each positive's score."""
    fold_cache = cache.resplit(valid_groups)
    fit_options = {k: v for k, v in settings.items() if k != "folds"}
    summary = fit(fold_cache, out, **fit_options)
    window_model = load_window_model(out)
    scored = score_validation(fold_cache, partial(torch_predict, window_model))
    windows = scored.windows
    threshold = validation_threshold(scored)
    groups = {i.path: i.group for i in fold_cache.items}
    result = {
        "fold": fold,
        "settings": settings,
        "augment": summary.augment,
        "fit_minutes": round(summary.total_seconds / 60, 1),
        "best_epoch": summary.best_epoch,
        "metrics": compute_metrics(scored, threshold),
        "positives": [
            {
                "path": path,
                "group": groups[path],
                "source": source,
                "crying": bool(crying),
                "score": round(float(score), 4),
                "threshold": threshold,
            }
            for path, source, crying, score, label in zip(
                windows.paths,
                windows.sources,
                windows.crying,
                scored.scores,
                windows.labels,
                strict=True,
            )
            if label
        ],
    }
    (out / RESULT).write_text(json.dumps(result, indent=1))
    return result


def crossval(cache: Cache, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Run (or resume) every fold of ``settings["folds"]``-fold grouped cross-validation.

    ``settings`` holds ``folds``, ``seed`` and the keyword arguments of
    :func:`training.recipes.fit.fit`.
    A fold whose ``fold.json`` was written with the same settings and augmentation is not
    fitted again.
    """
    fold_of = grouped_folds(cache.items, settings["folds"], settings["seed"])
    # through JSON so that tuples compare equal to the lists read back from fold.json
    recipe = {"settings": settings, "augment": json.loads(json.dumps(asdict(AugmentConfig())))}
    results = []
    for fold in range(settings["folds"]):
        run = out / f"fold-{fold}"
        done = run / RESULT
        if done.is_file():
            result = json.loads(done.read_text())
            if {k: result.get(k) for k in recipe} == recipe:
                results.append(result)
                continue
        valid = {group for group, f in fold_of.items() if f == fold}
        results.append(run_fold(cache, fold, valid, run, settings))
    report = summarize(results)
    (out / "crossval.json").write_text(json.dumps(report, indent=1))
    return report


def _recall(positives: list[dict[str, Any]]) -> float:
    return round(float(np.mean([p["score"] >= p["threshold"] for p in positives])), 4)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-fold metrics with their mean and standard deviation, and the out-of-fold recall of
    all positives pooled (each at its own fold's threshold), by source and by group."""
    per_fold = {name: [r["metrics"][name] for r in results] for name in COLUMNS}
    positives = [p for r in results for p in r["positives"]]
    sources = sorted({p["source"] for p in positives})
    missed = [p for p in positives if p["score"] < p["threshold"]]
    clips = Counter(p["group"] for p in positives)
    return {
        "settings": results[0]["settings"],
        "folds": results,
        "mean": {k: round(float(np.mean(v)), 4) for k, v in per_fold.items()},
        "std": {k: round(float(np.std(v, ddof=1)), 4) for k, v in per_fold.items()},
        "pooled": {
            "positives": len(positives),
            "recall": _recall(positives),
            "recall_by_source": {
                s: _recall([p for p in positives if p["source"] == s]) for s in sources
            },
            "with_crying": sum(p["crying"] for p in positives),
            "recall_with_crying": _recall([p for p in positives if p["crying"]]),
            "recall_with_crying_by_source": {
                s: _recall([p for p in positives if p["source"] == s and p["crying"]])
                for s in sources
            },
            "missed": len(missed),
            "groups": len(clips),
            "groups_with_misses": len({p["group"] for p in missed}),
            "missed_by_group": [
                {"group": g, "missed": n, "clips": clips[g]}
                for g, n in Counter(p["group"] for p in missed).most_common()
            ],
        },
    }


def write_misses(report: dict[str, Any], path: Path) -> None:
    """The positives missed out of fold, lowest score first: the listening list."""
    rows = sorted(
        (p for r in report["folds"] for p in r["positives"] if p["score"] < p["threshold"]),
        key=lambda p: p["score"],
    )
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "source", "group", "crying", "score", "fold_threshold"])
        for p in rows:
            name, threshold = Path(p["path"]).name, round(p["threshold"], 4)
            writer.writerow([name, p["source"], p["group"], p["crying"], p["score"], threshold])


def markdown(report: dict[str, Any], misses_name: str) -> str:
    """The cross-validation report."""
    s, pooled = report["settings"], report["pooled"]
    folds = report["folds"]

    def row(label: str, values: dict[str, float]) -> str:
        return (
            f"| {label} |"
            + " |" * 4
            + " "
            + " | ".join(f"{values[k]:.4f}" for k in COLUMNS)
            + " | | |"
        )

    lines = [
        f"# Cross-validation of the training recipe ({s['folds']} grouped folds)",
        "",
        f"`python -m training --arch {s['arch']} crossval --folds {s['folds']} --epochs "
        f"{s['epochs']}`: the whole corpus split into {s['folds']} folds grouped by source (a "
        "Donate-a-cry app uuid or a negative recording is in one fold only) and stratified like "
        "the 90:10 split. Each fold is validated by a model fitted on the others with the "
        f"shipped recipe ({s['epochs']} epochs, seed {s['seed']}), at its own threshold: the "
        "lowest with <= 1% false positives on that fold's negative windows, overall and in each "
        "category.",
        "",
        "| fold | positives | 16 kHz | negative windows | threshold | "
        + " | ".join(COLUMNS.values())
        + " | best epoch | fit min |",
        "| --- " * (len(COLUMNS) + 7) + "|",
    ]
    for r in folds:
        m = r["metrics"]
        ios = sum(p["source"] == "ios-16k" for p in r["positives"])
        lines.append(
            f"| {r['fold']} | {m['windows']['positives']} | {ios} | {m['windows']['negatives']} "
            f"| {m['threshold']:.3f} | "
            + " | ".join(f"{m[k]:.4f}" for k in COLUMNS)
            + f" | {r['best_epoch']} | {r['fit_minutes']:.1f} |"
        )
    lines += [
        row("mean", report["mean"]),
        row("std", report["std"]),
        "",
        "## Every positive, out of fold",
        "",
        f"Each of the {pooled['positives']} positive clips scored once, by the model that never "
        "saw its group, at that fold's threshold:",
        "",
        "| positives | recall |",
        "| --- | --- |",
        f"| all | {pooled['recall']:.4f} |",
        *(f"| {k} | {v:.4f} |" for k, v in pooled["recall_by_source"].items()),
        f"| those holding crying ({pooled['with_crying']}) | {pooled['recall_with_crying']:.4f} |",
        *(
            f"| {k}, holding crying | {v:.4f} |"
            for k, v in pooled["recall_with_crying_by_source"].items()
        ),
        "",
        "Positives holding crying are those that the audit of the 16 kHz uploads did not list "
        "(`positives-audit.md`) and that hold sound events "
        "(`training.data.items.holds_crying`); the others are still validated, and count in every "
        "other row.",
        "",
        f"{pooled['missed']} clips are missed, from {pooled['groups_with_misses']} of the "
        f"{pooled['groups']} groups (Donate-a-cry app installations). Those with most misses:",
        "",
        "| group | missed | clips |",
        "| --- | --- | --- |",
        *(
            f"| {g['group'].partition(':')[2]} | {g['missed']} | {g['clips']} |"
            for g in pooled["missed_by_group"][:10]
        ),
        "",
        f"[`{misses_name}`]({misses_name}) lists the missed clips, lowest score first: "
        "the uploads to listen to first when cleaning the positives.",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict[str, Any], docs: Path) -> Path:
    """``docs/crossval.md`` and its listening list ``docs/crossval-missed.csv``."""
    misses = docs / "crossval-missed.csv"
    write_misses(report, misses)
    path = docs / "crossval.md"
    path.write_text(markdown(report, misses.name))
    return path
