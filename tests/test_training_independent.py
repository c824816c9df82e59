"""The independent evaluation set, measured on a few real clips with the shipped model
(``python -m training independent``), and without torch or fastai."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cry_mqtt.model import CryModel, default_model_path
from training.__main__ import main
from training.evaluation import independent
from training.evaluation.metrics import MAX_FPR

PER_LABEL = 6


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("independent-cache")


@pytest.fixture(scope="module")
def result(data_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """The first clips of each label, decoded into an empty cache and scored."""
    return independent.evaluate_independent(
        default_model_path(), data_dir / "independent", cache_dir, limit_per_label=PER_LABEL
    )


def test_one_score_per_clip_of_the_subset(result: dict[str, Any]) -> None:
    rows = result["scores"]
    assert [r["label"] for r in rows].count(1) == [r["label"] for r in rows].count(0) == PER_LABEL
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert result["clips"] == {"crying": PER_LABEL, "not_crying": PER_LABEL}
    assert result["timing"]["decoded_clips"] == 2 * PER_LABEL
    assert result["timing"]["windows"] >= len(rows)


def test_metrics_agree_with_the_scores(result: dict[str, Any]) -> None:
    rows = result["scores"]
    pos = np.array([r["score"] for r in rows if r["label"] == 1])
    neg = np.array([r["score"] for r in rows if r["label"] == 0])
    threshold = result["threshold"]
    assert threshold == CryModel(default_model_path()).info.threshold
    assert result["recall"] == round(float(np.mean(pos >= threshold)), 4)
    assert result["fpr"] == round(float(np.mean(neg >= threshold)), 4)
    # ROC-AUC is the share of (crying, other) pairs in the right order, ties counting half.
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert 0.0 <= result["roc_auc"] <= 1.0
    assert result["roc_auc"] == pytest.approx(pairs.mean(), abs=1e-4)

    at = result["at_1pct_fpr"]
    if at["threshold"] is None:
        assert at["recall"] == 0.0
    else:
        assert at["recall"] == round(float(np.mean(pos >= at["threshold"])), 4)
        assert np.mean(neg >= at["threshold"]) <= MAX_FPR

    assert result["fpr_by_category"].keys() == {r["category"] for r in rows if r["label"] == 0}
    assert result["recall_by_source"].keys() == {r["source"] for r in rows if r["label"] == 1}
    false_positives = [r["score"] for r in result["worst_false_positives"]]
    assert false_positives == sorted(neg, reverse=True)
    assert [r["score"] for r in result["worst_misses"]] == sorted(pos)


def test_recall_at_fpr_takes_the_lowest_threshold_within_the_budget() -> None:
    labels = np.r_[np.ones(4), np.zeros(200)]
    scores = np.r_[[0.9, 0.8, 0.3, 0.1], np.linspace(0.0, 0.5, 198), [0.85, 0.95]]
    # Two negatives (1%) score above 0.8; the next one down, at 0.5, would make it 1.5%.
    at = independent.recall_at_fpr(labels, scores)
    assert at == {"recall": 0.5, "fpr": 0.01, "threshold": 0.8}


def test_markdown_mentions_every_category(result: dict[str, Any]) -> None:
    section = independent.markdown_section(result)
    table = independent.comparison_table([result, result])
    for category in {r["category"] for r in result["scores"]}:
        assert category in section
    for category in result["fpr_by_category"]:
        assert f"FPR {category}" in table.splitlines()[0]
    assert len(table.splitlines()) == 4
    assert all(row.count("|") == table.splitlines()[0].count("|") for row in table.splitlines())


def test_command_line_reuses_the_cache(
    result: dict[str, Any],
    data_dir: Path,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = []
    monkeypatch.setattr(independent, "load_audio", decoded.append)
    cache = cache_dir / independent.CACHE_FILE
    mtime = cache.stat().st_mtime_ns
    args = ["--model", str(default_model_path()), "--data", str(data_dir / "independent")]
    args += ["--cache", str(cache_dir), "--out", str(tmp_path), "--limit-per-label", str(PER_LABEL)]
    saved = str(tmp_path / f"{default_model_path().stem}.json")
    args += ["--fuse", saved, "--fuse", saved]  # the result written by this call, fused with itself
    main(["independent", *args, "--report", str(tmp_path / "independent.md")])

    assert decoded == []
    assert cache.stat().st_mtime_ns == mtime
    again = json.loads((tmp_path / f"{default_model_path().stem}.json").read_text())
    assert again["timing"]["decoded_clips"] == 0
    assert again["scores"] == result["scores"]
    page = (tmp_path / "independent.md").read_text()
    assert independent.comparison_table([again]) in page
    assert independent.markdown_section(again) in page
    stem = default_model_path().stem
    fused = json.loads((tmp_path / f"fusion-{stem}-{stem}.json").read_text())
    assert fused == independent.fuse([again, again])  # saved for the model card's table


def test_quieter_crying_is_measured_through_the_default_gate(result: dict[str, Any]) -> None:
    """The crying clips 20 and 30 dB quieter: never heard more often than at full level, and
    the clips the gate drops whole count as missed."""
    quiet = result["quiet_crying"]
    assert list(quiet) == ["-20 dB", "-30 dB"]
    for q in quiet.values():
        assert q["gate_dbfs"] == -80.0
        assert 0.0 <= q["all_gated"] <= 1.0 - q["recall"] + 1e-9
    assert quiet["-30 dB"]["all_gated"] >= quiet["-20 dB"]["all_gated"]


def test_a_fusion_row_sums_the_clip_logits(result: dict[str, Any]) -> None:
    """A model fused with itself doubles every logit: the same ranking, scores pushed outward."""
    fused = independent.fuse([result, result])
    assert fused["roc_auc"] == result["roc_auc"]
    for one, two in zip(result["scores"], fused["scores"], strict=True):
        p = min(max(one["score"], 1e-7), 1 - 1e-7)
        assert two["score"] == pytest.approx(p**2 / (p**2 + (1 - p) ** 2), abs=1e-6)
    assert "fusion of" in independent.report([result, fused])


@pytest.mark.parametrize(
    "module",
    ["training.evaluation.independent", "training.evaluation.card", "training.night"],
)
def test_the_onnx_only_evaluation_loads_neither_torch_nor_fastai(module: str) -> None:
    """The independent evaluation, the model card and the night test run ONNX files alone."""
    code = f"import sys, {module}; print(sorted({{'torch', 'fastai'}} & set(sys.modules)))"
    repo = Path(__file__).resolve().parent.parent
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
