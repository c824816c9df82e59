"""The validation plots of the model card: ROC, precision-recall, confusion matrix and the
scores per category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from training.evaluation.validation import Scored
from training.plotting import plt, save

CARD_DPI = 72


def plot(scored: Scored, threshold: float, out: Path, prefix: str) -> list[Path]:
    """The card's plots as small PNGs ``<out>/<prefix>roc.png``, ``...pr.png``,
    ``...confusion.png`` and ``...scores.png``."""
    figures = {
        "roc": roc(scored),
        "pr": precision_recall(scored),
        "confusion": confusion(scored, threshold),
        "scores": score_histograms(scored, threshold),
    }
    return [save(fig, out / f"{prefix}{name}.png", CARD_DPI) for name, fig in figures.items()]


def roc(scored: Scored) -> plt.Figure:
    """ROC curves of all windows, of the 16 kHz positives only, and against low-passed
    negatives."""
    labels, scores = scored.windows.labels, scored.scores
    ios = (labels == 0) | (np.array(scored.windows.sources) == "ios-16k")
    curves = {
        "all": (labels, scores),
        "ios-16k only": (labels[ios], scores[ios]),
        "negatives low-passed": (
            np.r_[np.ones((labels == 1).sum()), np.zeros(len(scored.band_limited_scores))],
            np.r_[scores[labels == 1], scored.band_limited_scores],
        ),
    }
    fig, ax = plt.subplots(figsize=(4, 3.4))
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.set(xscale="log", xlim=(1e-3, 1), xlabel="false-positive rate", ylabel="recall", title="ROC")
    ax.legend(fontsize=7)
    return fig


def precision_recall(scored: Scored) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4, 3.4))
    precision, recall, _ = precision_recall_curve(scored.windows.labels, scored.scores)
    ax.plot(recall, precision)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    return fig


def confusion(scored: Scored, threshold: float) -> plt.Figure:
    """The confusion matrix at ``threshold``."""
    labels, hit = scored.windows.labels, scored.scores >= threshold
    matrix = np.array([[np.sum(~hit & (labels == t)), np.sum(hit & (labels == t))] for t in (0, 1)])
    fig, ax = plt.subplots(figsize=(3.4, 3))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["other", "cry"], yticklabels=["other", "cry"])
    ax.set(xlabel="predicted", ylabel="true", title=f"threshold {threshold:.3f}")
    return fig


def score_histograms(scored: Scored, threshold: float) -> plt.Figure:
    """The scores of the positives per source, of the negatives per category and of all
    negatives low-passed and phone-coded, with the threshold."""
    labels, scores = scored.windows.labels, scored.scores
    sources = np.array(scored.windows.sources)
    categories = np.array(scored.windows.categories)
    groups: dict[str, np.ndarray] = {}
    for src in sorted(set(sources[labels == 1])):
        groups[f"cry: {src}"] = scores[(labels == 1) & (sources == src)]
    for cat in sorted(set(categories[labels == 0])):
        groups[cat] = scores[(labels == 0) & (categories == cat)]
    groups["all negatives, low-passed 4 kHz"] = scored.band_limited_scores
    groups["all negatives, AMR-NB 8 kHz"] = scored.phone_scores
    cols = 4
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(8, 1.5 * rows), sharex=True)
    for ax, (name, values) in zip(axes.flat, groups.items(), strict=False):
        ax.hist(values, bins=np.linspace(0, 1, 21), color="tab:red" if "cry" in name else None)
        ax.axvline(threshold, color="k", lw=0.8)
        ax.set_title(f"{name} (n={len(values)})", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle("validation scores per category (line: threshold)", fontsize=8)
    return fig
