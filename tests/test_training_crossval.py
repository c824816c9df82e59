"""Grouped cross-validation: every positive scored once out of fold, report and resumption."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from training_fixtures import write_tone

from training.data.cache import Cache, build_cache
from training.data.items import folder_items
from training.evaluation.crossval import crossval, write_report

SETTINGS = {
    "folds": 2,
    "arch": "cnn",
    "epochs": 1,
    "batch_size": 4,
    "lr": 1e-3,
    "workers": 0,
    "seed": 0,
    "lr_find_iters": 12,
    "weight_average": 0.0,
}


def tiny_cache(root: Path) -> Cache:
    """Six crying-like tones (one group each, two of them 16 kHz iOS) and four 'fans'."""
    for i in range(6):
        write_tone(root / "pos" / f"{i}.wav", 3.0, hz=400 + 60 * i)
    for i in range(4):
        write_tone(root / "neg" / "fan" / f"{i}.wav", 9.0, hz=1500 + 200 * i)
    items = folder_items(root / "pos", 1) + folder_items(root / "neg", 0)
    for item in items[:2]:
        item.source = "ios-16k"
    for item in items:
        item.split = "train"
    build_cache(items, root / "cache")
    return Cache(root / "cache")


def test_resplit_moves_whole_groups_and_recounts(tmp_path: Path) -> None:
    cache = tiny_cache(tmp_path)
    valid = {cache.items[0].group, cache.items[-1].group}
    other = cache.resplit(valid)
    assert [i.path for i in other.split("valid")] == [cache.items[0].path, cache.items[-1].path]
    assert other.summary["splits"]["valid"]["positives"] == 1
    assert other.summary["splits"]["train"]["positives"] == 5
    assert all(i.split == "train" for i in cache.items)  # the original is untouched


def test_every_positive_is_scored_once_out_of_fold(tmp_path: Path) -> None:
    cache = tiny_cache(tmp_path)
    out = tmp_path / "crossval"
    report = crossval(cache, out, SETTINGS)

    scored = [p["path"] for fold in report["folds"] for p in fold["positives"]]
    assert sorted(scored) == sorted(i.path for i in cache.items if i.label)
    for fold in report["folds"]:
        assert fold["metrics"]["windows"]["negatives"] > 0
        assert 0.5 <= fold["metrics"]["threshold"] <= 0.99
    pooled = report["pooled"]
    assert pooled["positives"] == 6 and set(pooled["recall_by_source"]) == {"ios-16k", "pos"}
    missed = sum(p["score"] < p["threshold"] for f in report["folds"] for p in f["positives"])
    assert pooled["missed"] == missed
    assert set(report["mean"]) == set(report["std"])

    page = write_report(report, tmp_path).read_text()
    assert "| mean |" in page and "| std |" in page
    with open(tmp_path / "crossval-missed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == missed
    assert [float(r["score"]) for r in rows] == sorted(float(r["score"]) for r in rows)

    # A second run with the same recipe reuses the folds instead of fitting again ...
    checkpoint = out / "fold-0" / "model.pth"
    before = checkpoint.stat().st_mtime_ns
    assert crossval(cache, out, SETTINGS)["mean"] == report["mean"]
    assert checkpoint.stat().st_mtime_ns == before
    # ... but not a fold fitted with other augmentation.
    done = out / "fold-0" / "fold.json"
    result = json.loads(done.read_text())
    result["augment"]["p_onset"] += 0.5
    done.write_text(json.dumps(result))
    crossval(cache, out, SETTINGS)
    assert checkpoint.stat().st_mtime_ns != before
