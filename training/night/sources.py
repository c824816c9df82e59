"""The two sources of a night: training's validation side, and the independent evaluation set
(``<data>/independent/``), which is for measuring only."""

from __future__ import annotations

from pathlib import Path

from training.data import Cache, holds_crying
from training.night.assemble import Corpus


def load_validation(cache: Cache) -> Corpus:
    """The validation side of a prepared cache: the held-out training sources of the split the
    model was trained and tuned against (decoded and trimmed as ``prepare`` left them);
    positives that hold no crying (:func:`holds_crying`) are skipped."""
    corpus = Corpus([], [], [])
    for item in cache.split("valid"):
        samples = cache.samples(item)
        if not item.label:
            corpus.negatives.append(samples)
            corpus.categories.append(item.category)
        elif holds_crying(item, samples):
            corpus.positives.append(samples)
    return corpus


def load_independent(folder: Path, cache: Path) -> Corpus:
    """The independent set in ``folder``: its manifest's label 1 clips are the crying, label 0
    the other recordings with their manifest category; decoded through (and into) the cache of
    :mod:`training.evaluation.independent` in ``cache``."""
    # Imported here: training.evaluation pulls in torch and fastai, which `python -m training`
    # should not load for every step.
    from training.evaluation.independent import load_clips, read_manifest

    clips = read_manifest(folder)
    audio, _ = load_clips(clips, folder, cache)
    corpus = Corpus([], [], [])
    for clip, samples in zip(clips, audio, strict=True):
        if clip.label:
            corpus.positives.append(samples)
        else:
            corpus.negatives.append(samples)
            corpus.categories.append(clip.category)
    return corpus
