"""The independent night's source, read from a few real clips of the independent set, and a real
night built from them: episodes at the planned times and SNRs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import make_cache

from cry_mqtt.config import DetectionConfig
from cry_mqtt.features import EFFICIENTAT
from cry_mqtt.model import CryModel, Patches
from training.data.audio import load_audio
from training.data.augment import rms
from training.export import streaming_info, write_streaming_onnx
from training.nets.efficientat import pretrained
from training.night.assemble import (
    REFERENCE_FLOOR_DBFS,
    SNRS,
    Corpus,
    background,
    night_blocks,
    plan,
)
from training.night.measure import run_pipeline
from training.night.sources import OTHER_FAMILY, family, load_independent, load_validation

PER_CATEGORY = 2


@pytest.fixture(scope="module")
def rows(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A copy of the independent set's manifest with its first clips of every category, its
    folders linked to the real ones."""
    real = data_dir / "independent"
    with open(real / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, everything = reader.fieldnames, list(reader)
    kept = [
        r
        for category in dict.fromkeys(r["category"] for r in everything)
        for r in [r for r in everything if r["category"] == category][:PER_CATEGORY]
    ]
    folder = tmp_path_factory.mktemp("independent")
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(kept)
    for top in {r["path"].split("/")[0] for r in kept}:
        (folder / top).symlink_to(real / top)
    return folder, kept


@pytest.fixture(scope="module")
def corpus(rows: tuple[Path, list[dict]], tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder, _ = rows
    return load_independent(folder, tmp_path_factory.mktemp("cache"))


def test_label_1_clips_are_the_crying_and_label_0_the_background(rows, corpus):
    folder, kept = rows
    crying = [r for r in kept if r["label"] == "1"]
    other = [r for r in kept if r["label"] == "0"]
    assert crying and len(other) > len(crying)
    assert len(corpus.positives) == len(crying) and len(corpus.negatives) == len(other)
    assert corpus.categories == [r["category"] for r in other]
    assert "cry" not in corpus.categories
    for row, samples in zip(crying, corpus.positives, strict=True):
        np.testing.assert_array_equal(samples, load_audio(folder / row["path"]))
    for row, samples in zip(other, corpus.negatives, strict=True):
        assert len(samples) / 16000 == pytest.approx(float(row["seconds"]), abs=0.05)


def test_episodes_lie_at_the_planned_times_with_the_planned_snrs(corpus):
    night = plan(corpus, hours=0.25, per_snr=1, seed=3)
    audio = np.concatenate(list(night_blocks(corpus, night)))
    bed = background(corpus, night.background, 0, night.samples)
    assert len(audio) == len(bed) == night.samples
    added = audio - bed
    crying = np.zeros(len(audio), bool)
    for t in night.truth:
        start, end = round(t.start * 16000), round(t.end * 16000)
        crying[start:end] = True
        reference = max(rms(bed[start:end]), 10 ** (REFERENCE_FLOOR_DBFS / 20))
        # a loud episode may clip a few samples, as a microphone would
        assert 20 * np.log10(rms(added[start:end]) / reference) == pytest.approx(t.snr_db, abs=0.5)
        assert rms(added[start : start + 1600]) > 0 and rms(added[end - 1600 : end]) > 0
    assert not added[~crying].any()
    assert sorted(t.snr_db for t in night.truth) == sorted(SNRS)


def test_the_validation_night_is_the_caches_validation_side(tmp_path: Path) -> None:
    """The night tunes on the held-out side of the split the model was trained against: the
    cache's, not a new split of the data folder; positives without crying stay out."""
    cache = make_cache(tmp_path, "valid")
    corpus = load_validation(cache)
    assert len(corpus.negatives) == len(corpus.categories) == 2
    assert len(corpus.positives) == 3  # the audited upload holding no crying is left out
    assert not load_validation(make_cache(tmp_path / "t", "train")).positives


def test_a_32_khz_model_hears_the_16_khz_night_resampled(data_dir: Path, tmp_path: Path) -> None:
    """The night's 16 kHz audio reaches a 32 kHz model at its rate: windows at the same times."""
    path = tmp_path / "mn04.onnx"
    state = data_dir / "pretrained" / "efficientat" / "mn04_as_mAP_432.pt"
    write_streaming_onnx(
        pretrained(state), streaming_info(EFFICIENTAT, Patches(100, 50), 0.3, "t", {}), path
    )
    blocks = [np.zeros(16000 * 5, np.float32), 0.1 * np.ones(16000 * 5, np.float32)]
    results, _, seconds = run_pipeline(CryModel(path), DetectionConfig(gate_dbfs=-100.0), blocks)
    assert seconds == pytest.approx(10.0, abs=0.05)
    assert [round(r.t) for r in results] == [7, 8, 9, 10]


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        ("adult sadness", "adult vocal sounds"),
        ("laughter", "adult vocal sounds"),
        ("adult-speech", "speech"),
        ("dialogue", "speech"),
        ("telephone-speech-8k", "speech"),
        ("sung lullaby", "music and singing"),
        ("hold-music", "music and singing"),
        ("rain", OTHER_FAMILY),
        ("effects", OTHER_FAMILY),
    ],
)
def test_every_category_has_a_family(category: str, kind: str) -> None:
    assert family(category) == kind
