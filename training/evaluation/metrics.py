"""Validation metrics from scores alone (numpy and scikit-learn): rates, ROC and PR areas, the
recall within a false-positive budget. :mod:`~training.evaluation.independent` and ``export``
use them without the plots or the card."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

if TYPE_CHECKING:
    from training.evaluation.validation import Scored

MAX_FPR = 0.01
"""The false-positive budget: recall is compared at it (:func:`recall_at_fpr`) and the default
threshold is the lowest within it."""


def rate(flags: np.ndarray) -> float:
    """Share of true flags, rounded to 4 places (NaN when empty)."""
    return round(float(np.mean(flags)), 4) if len(flags) else float("nan")


def rate_by(keys: list[str], flags: np.ndarray) -> dict[str, float]:
    """:func:`rate` of ``flags`` per distinct key."""
    names = np.array(keys)
    return {k: rate(flags[names == k]) for k in sorted(set(keys))}


def compute_metrics(scored: Scored, threshold: float) -> dict[str, Any]:
    """Threshold-free and at-threshold metrics (``score >= threshold`` counts as crying)."""
    labels, scores = scored.windows.labels, scored.scores
    pos, neg = labels == 1, labels == 0
    hit = scores >= threshold
    band_hit = scored.band_limited_scores >= threshold
    recall, fpr = rate(hit[pos]), rate(hit[neg])
    sources = np.array(scored.windows.sources)
    ios = pos & (sources == "ios-16k")
    crying = pos & scored.windows.crying
    recall_crying = rate(hit[crying])
    both = np.concatenate([scores[pos], scored.band_limited_scores])
    both_labels = np.r_[np.ones(pos.sum()), np.zeros(len(scored.band_limited_scores))]
    return {
        "windows": {"positives": int(pos.sum()), "negatives": int(neg.sum())},
        "threshold": threshold,
        "accuracy": rate(hit == pos),
        "balanced_accuracy": round((recall + 1 - fpr) / 2, 4),
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "pr_auc": round(float(average_precision_score(labels, scores)), 4),
        "recall": recall,
        "fpr": fpr,
        "recall_ios": rate(hit[ios]),
        "roc_auc_ios": round(float(roc_auc_score(labels[ios | neg], scores[ios | neg])), 4)
        if ios.any()
        else float("nan"),
        "recall_by_source": rate_by([s for s, p in zip(sources, pos, strict=True) if p], hit[pos]),
        "fpr_by_category": rate_by(
            [c for c, n in zip(scored.windows.categories, neg, strict=True) if n], hit[neg]
        ),
        "fpr_band_limited": rate(band_hit),
        "fpr_phone_codec": rate(scored.phone_scores >= threshold),
        "roc_auc_band_limited": round(float(roc_auc_score(both_labels, both)), 4),
        "positives_without_crying": int((pos & ~crying).sum()),
        "balanced_accuracy_with_crying": round((recall_crying + 1 - fpr) / 2, 4),
        "roc_auc_with_crying": round(
            float(roc_auc_score(labels[crying | neg], scores[crying | neg])), 4
        ),
        "recall_with_crying": recall_crying,
        "recall_ios_with_crying": rate(hit[crying & ios]),
        "at_1pct_fpr": recall_at_fpr(labels, scores),
        "at_1pct_fpr_with_crying": recall_at_fpr(labels[crying | neg], scores[crying | neg]),
    }


def recall_at_fpr(
    labels: np.ndarray, scores: np.ndarray, max_fpr: float = MAX_FPR
) -> dict[str, float | None]:
    """The largest recall with a false-positive rate <= ``max_fpr``, its FPR and the lowest
    threshold that keeps it (``None`` where only a threshold above every score does)."""
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    i = int(np.searchsorted(fpr, max_fpr, side="right")) - 1
    threshold = float(thresholds[i]) if np.isfinite(thresholds[i]) else None
    return {
        "recall": round(float(tpr[i]), 4),
        "fpr": round(float(fpr[i]), 4),
        "threshold": threshold,
    }
