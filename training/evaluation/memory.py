"""How alike two sounds must be for the agent's false-alarm memory (:mod:`cry_mqtt.memory`) to
take one for the other: picked on the training sources, never on the independent set.

Every recording is scored through the agent's pipeline, keeping each window's embedding. What a
parent would mark are the negative windows that come near the threshold (at least
:data:`NEAR_THRESHOLD` of it: adult sobs and moans, with EmoGator among the sources); a memory
holding every one of them at once must veto no crying window (the positives' windows at the
threshold), so the pick is the lowest similarity at which at most :data:`MAX_CRYING_VETOED` of
them are as alike. What it buys is measured on the negatives: remembering a recording's first
window, the share of its later windows the memory recognises (a steady sound's, many; speech's,
few).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel
from cry_mqtt.pipeline import Pipeline
from training import RecipeError
from training.data.items import Item, load_item

SIMILARITIES = tuple(round(float(s), 2) for s in np.arange(0.80, 0.995, 0.01))
MAX_CRYING_VETOED = 0.0
NEAR_THRESHOLD = 0.5


@dataclass
class Heard:
    """One recording's scored windows: their P(cry) and unit embeddings."""

    item: Item
    probs: np.ndarray
    embeddings: np.ndarray


def hear(model: CryModel, item: Item) -> Heard:
    """Score ``item`` through the agent's pipeline (every window, ungated)."""
    pipeline = Pipeline(model, DetectionConfig(gate_dbfs=-200.0))
    results = [r for r in pipeline.run([load_item(item)]) if r.embedding is not None]
    size = model.embedding_size or 0
    embeddings = np.stack([r.embedding for r in results]) if results else np.zeros((0, size))
    return Heard(item, np.array([r.prob for r in results]), embeddings.astype(np.float32))


def hear_all(model: Path, items: list[Item], workers: int) -> list[Heard]:
    """:func:`hear` every item, in ``workers`` processes (one onnxruntime thread each)."""
    with Pool(workers, initializer=_open, initargs=(model,)) as pool:
        return pool.map(_hear, items, chunksize=8)


_model: CryModel | None = None


def _open(path: Path) -> None:
    global _model
    _model = CryModel(path)


def _hear(item: Item) -> Heard:
    assert _model is not None
    return hear(_model, item)


def calibrate(heard: list[Heard], threshold: float) -> dict[str, Any]:
    """The similarity sweep and its pick (see the module's docstring); raises
    :class:`RecipeError` where no negative comes near the threshold."""
    crying = np.concatenate([h.embeddings[h.probs >= threshold] for h in heard if h.item.label])
    negatives = [h for h in heard if not h.item.label and len(h.probs)]
    near = [h for h in negatives if h.probs.max() >= NEAR_THRESHOLD * threshold]
    if not near:
        raise RecipeError("no negative comes near the threshold: add hard negatives (--emogator)")
    marked = np.concatenate([h.embeddings[h.probs >= NEAR_THRESHOLD * threshold] for h in near])
    likeness = (crying @ marked.T).max(axis=1)
    later = np.concatenate([h.embeddings[1:] @ h.embeddings[0] for h in negatives])
    rows = [
        {
            "similarity": s,
            "crying_vetoed": round(float(np.mean(likeness >= s)), 4),
            "later_recognised": round(float(np.mean(later >= s)), 4),
        }
        for s in SIMILARITIES
    ]
    safe = [r for r in rows if r["crying_vetoed"] <= MAX_CRYING_VETOED]
    return {
        "threshold": threshold,
        "crying_windows": len(crying),
        "negative_recordings": len(negatives),
        "near_threshold": {
            "recordings": len(near),
            "windows": len(marked),
            "categories": dict(Counter(h.item.category for h in near).most_common()),
        },
        "crying_likeness_max": round(float(likeness.max()), 4),
        "rows": rows,
        "pick": safe[0]["similarity"] if safe else None,
    }
