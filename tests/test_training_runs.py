"""One summary shape for every recipe: written and read back whole, an older shape refused with
the fields it lacks, and a model file that does not describe its run refused by ``evaluate``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from training import RecipeError
from training.__main__ import main
from training.recipes.runs import SUMMARY, RunSummary, read_summary, write_summary


def a_summary(**changes: object) -> RunSummary:
    values = dict(
        arch="mn04",
        recipe="distil",
        training="distilled",
        params=1,
        macs_per_window=2,
        epochs=1,
        seeds=[42],
        best_epoch=0,
        total_seconds=3.0,
        torch_threads=2,
        data={"train": {"positives": 1}},
    )
    return RunSummary(**values | changes)


def test_a_summary_is_read_back_as_it_was_written(tmp_path: Path) -> None:
    summary = a_summary(settings={"softening": 0.6}, history=[{"epoch": 0, "roc_auc": 0.9}])
    write_summary(tmp_path, summary)
    assert read_summary(tmp_path) == summary
    assert summary.trained and not a_summary(recipe="zero-shot").trained


def test_an_older_summary_is_refused_with_what_it_lacks(tmp_path: Path) -> None:
    old = {"arch": "cnn", "epochs": 3, "seed": 42, "params": 1, "best_epoch": 2}
    (tmp_path / SUMMARY).write_text(json.dumps(old))
    with pytest.raises(RecipeError, match=r"older recipe \(it lacks data, macs_per_window, "):
        read_summary(tmp_path)
    (tmp_path / SUMMARY).write_text(json.dumps(asdict(a_summary(recipe="bake"))))
    with pytest.raises(RecipeError, match=r"it lacks a known recipe \('bake'\)"):
        read_summary(tmp_path)


def test_evaluate_refuses_a_file_that_does_not_describe_its_run(
    fixture_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match=r"carries no run summary .*: export it again"):
        main(["--runs", str(tmp_path), "evaluate", "--model", str(fixture_model)])
