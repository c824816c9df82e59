"""The two sources of a night: training's validation side, and the independent evaluation set
(``<data>/independent/``), which is for measuring only."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from training import DEFAULT_DATA
from training.data.cache import Cache
from training.data.items import holds_crying
from training.data.singing import CATEGORY as SINGING
from training.evaluation.independent import load_clips, read_manifest
from training.night.assemble import Corpus


def load_validation(cache: Cache) -> Corpus:
    """The validation side of a prepared cache: the held-out training sources of the split the
    model was trained and tuned against (decoded and trimmed as ``prepare`` left them);
    positives that hold no crying (:func:`holds_crying`) are skipped."""
    recordings = ((item, cache.samples(item)) for item in cache.split("valid"))
    return corpus_of(
        (item.label, item.category, samples)
        for item, samples in recordings
        if not item.label or holds_crying(item, samples)
    )


def load_independent(folder: Path, cache: Path) -> Corpus:
    """The independent set in ``folder``: its manifest's label 1 clips are the crying, label 0
    the other recordings with their manifest category; decoded through (and into) the cache of
    :mod:`training.evaluation.independent` in ``cache``."""
    clips = read_manifest(folder)
    audio, _ = load_clips(clips, folder, cache)
    return corpus_of(
        (clip.label, clip.category, samples) for clip, samples in zip(clips, audio, strict=True)
    )


FAMILIES = {
    "adult vocal sounds": ("adult ", "laughter", "human-sounds", "coughs-sneezes"),
    "speech": (
        "adult-speech",
        "children-speech",
        "dialogue",
        "game-voices",
        "speech",
        "spoken-",
        "telephone-",
    ),
    "music and singing": ("music", "hold-music", SINGING),
}
"""The kinds of sound a tuning night balances (``night --families``), each a list of category
name prefixes (EmoGator's prompts are ``adult <prompt>``); any other category is
:data:`OTHER_FAMILY`."""
OTHER_FAMILY = "household and outdoors"


def family(category: str) -> str:
    """The :data:`FAMILIES` entry ``category`` belongs to."""
    for name, prefixes in FAMILIES.items():
        if category.startswith(prefixes):
            return name
    return OTHER_FAMILY


def corpus_of(recordings: Iterable[tuple[int, str, np.ndarray]]) -> Corpus:
    """A corpus of ``(label, category, samples)``: label 1 is crying, the rest background."""
    corpus = Corpus([], [], [])
    for label, category, samples in recordings:
        if label:
            corpus.positives.append(samples)
        else:
            corpus.negatives.append(samples)
            corpus.categories.append(category)
    return corpus


def add_night_options(parser: argparse.ArgumentParser, hours: float, per_snr: int) -> None:
    """The options every step that streams a model's nights takes: the data, the model, the
    nights."""
    add_data_options(parser)
    parser.add_argument("--model", type=Path, help="ONNX model (default: the packaged one)")
    parser.add_argument("--hours", type=float, default=hours, help="length of each night")
    parser.add_argument("--per-snr", type=int, default=per_snr, help="episodes at each SNR")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Where the nights' recordings are: the shared data and the independent set."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument(
        "--independent", type=Path, help="independent set (default: <data>/independent)"
    )
    parser.add_argument(
        "--independent-cache",
        type=Path,
        help="its decoded clips, shared with python -m training independent "
        "(default: <runs>/independent)",
    )
