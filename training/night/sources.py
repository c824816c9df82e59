"""The two sources of a night: training's validation side, and the independent evaluation set
(``<data>/independent/``), which is for measuring only."""

from __future__ import annotations

from pathlib import Path

import av

from training.data import PARAMS, discover, holds_crying, load_audio, trim_silence
from training.night.assemble import Corpus
from training.split import grouped_split


def load_validation(data: Path, valid_fraction: float = 0.1, seed: int = 42) -> Corpus:
    """The validation side of training's grouped split of ``data`` (same fraction and seed as
    ``python -m training prepare``), decoded and trimmed of digital silence as there; undecodable
    or too-short files, and positives that hold no crying (:func:`holds_crying`), are skipped."""
    items = discover(data)
    grouped_split(items, valid_fraction, seed)
    corpus = Corpus([], [], [])
    for item in items:
        if item.split != "valid":
            continue
        try:
            samples = trim_silence(load_audio(Path(item.path)))
        except (av.error.FFmpegError, IndexError):
            continue
        if len(samples) < PARAMS.frame_length:
            continue
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
