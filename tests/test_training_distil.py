"""The mn04 student end to end on a few real clips: distil, WiSE-FT with the pretrained
weights, export of the streaming file, agent load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cry_mqtt.features import EFFICIENTAT
from cry_mqtt.model import CryModel
from training.__main__ import main
from training.data.augment import reverberate
from training.nets.efficientat import BABY_CRY, pretrained
from training.recipes.runs import CHECKPOINT
from training.recipes.weights import load_trained as load


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    main(["--runs", str(runs), "prepare", "--data", str(data_dir), "--limit", "2"])
    main(["--runs", str(runs), "distil", "--epochs", "1", "--batch-size", "4", "--workers", "0"])
    return runs


def test_the_student_learns_crying_and_keeps_audioset_statistics(runs: Path) -> None:
    summary = json.loads((runs / "mn04" / "fit_summary.json").read_text())
    assert summary["arch"] == "mn04" and len(summary["history"]) == 1
    assert any("YAMNet" in t for t in summary["settings"]["teachers"])
    assert summary["augment"]["p_reverb"] > 0
    student, start = load(runs / "mn04"), pretrained()
    row = student.classifier[5].weight[BABY_CRY]
    assert not torch.equal(row, start.classifier[5].weight[BABY_CRY])
    for (name, a), b in zip(student.named_buffers(), start.buffers(), strict=True):
        assert torch.equal(a, b), name  # batch-norm statistics stay AudioSet's


def test_wise_mixes_the_student_and_exports_a_streaming_model(runs: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "wise"
    main(["--runs", str(runs), "wise", "--alpha", "0.5", "--source", str(runs / "mn04"),
          "--out", str(mixed)])  # fmt: skip
    tuned, start = load(runs / "mn04").state_dict(), pretrained().state_dict()
    for name, value in load(mixed).state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.5 * start[name] + 0.5 * tuned[name])
    main(["--runs", str(runs), "--arch", "mn04", "export", "--run-dir", str(mixed)])
    model = CryModel(mixed / "cry-mn04.onnx")
    assert model.info.features == EFFICIENTAT and model.info.window_patches == 12
    assert model.info.details["run"]["settings"]["wise_alpha"] == 0.5


def test_soup_averages_seeds_of_one_recipe_and_refuses_others(runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed7"
    shutil.copytree(runs / "mn04", other)
    summary = json.loads((other / "fit_summary.json").read_text())
    (other / "fit_summary.json").write_text(json.dumps(summary | {"seeds": [7], "history": []}))
    state = load(other).state_dict()
    shifted = {k: v + 0.002 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(shifted, other / CHECKPOINT)
    soup = tmp_path / "soup"
    main(["--runs", str(runs), "soup", str(runs / "mn04"), str(other), "--out", str(soup)])
    for name, value in load(soup).state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, shifted[name] - 0.001)
    main(["--runs", str(runs), "--arch", "mn04", "export", "--run-dir", str(soup)])
    details = CryModel(soup / "cry-mn04.onnx").info.details
    assert details["run"]["seeds"] == [42, 7] and len(details["run"]["runs"]) == 2
    wall = json.loads((soup / "fit_summary.json").read_text())["total_seconds"]
    assert wall == pytest.approx(2 * summary["total_seconds"])  # both runs' time

    main(
        ["--runs", str(runs), "--arch", "mn04", "evaluate", "--model", str(soup / "cry-mn04.onnx")]
    )
    card = (soup / "mn04-MODEL_CARD.md").read_text()
    assert "32 kHz audio for infant crying with EfficientAT mn04_as" in card
    assert "each distilled with fastai (`python -m training distil`)" in card
    assert "a uniform soup (the mean of the weights) of 2 runs that differ only" in card
    assert "kept (seeds 42, 7) |" in card
    assert "softened 0.25 toward the fused teachers" in card
    assert (
        "4 kHz (20% of both classes), a synthetic room (RT60 0.2..0.8 s, 30% of windows), a "
        "random microphone noise floor" in card
    )
    assert "| EfficientAT mn04_as weights |" in card

    softer = summary["settings"] | {"softening": 0.9}
    (other / "fit_summary.json").write_text(json.dumps(summary | {"settings": softer}))
    with pytest.raises(SystemExit, match=r"differ only in their seed; .* differ in softening$"):
        main(["--runs", str(runs), "soup", str(runs / "mn04"), str(other), "--out", str(soup)])


def test_zero_epochs_keep_mn04_as_audioset_left_it(runs: Path, tmp_path: Path) -> None:
    """``distil --epochs 0`` is mn04's zero-shot run: exported, evaluated and carded like the
    student, so the two stand side by side on one split."""
    zero = tmp_path / "runs"
    zero.mkdir()
    (zero / "cache").symlink_to(runs / "cache")
    main(["--runs", str(zero), "distil", "--epochs", "0", "--batch-size", "4", "--workers", "0"])
    summary = json.loads((zero / "mn04" / "fit_summary.json").read_text())
    assert summary["epochs"] == 0 and summary["recipe"] == "zero-shot"
    assert [row["epoch"] for row in summary["history"]] == [0]
    assert {"valid_loss", "balanced_acc", "roc_auc"} <= summary["history"][0].keys()
    start = pretrained().state_dict()
    for name, value in load(zero / "mn04").state_dict().items():
        assert torch.equal(value, start[name]), name

    shutil.copytree(runs / "mn04", zero / "student")
    main(["--runs", str(zero), "--arch", "mn04", "export", "--run-dir", str(zero / "student")])
    main(["--runs", str(zero), "--arch", "mn04", "evaluate", "--model",
          str(zero / "student" / "cry-mn04.onnx")])  # fmt: skip
    main(["--runs", str(zero), "--arch", "mn04", "export", "--pool-top", "3"])
    main(["--runs", str(zero), "--arch", "mn04", "evaluate"])
    card = (zero / "mn04" / "mn04-MODEL_CARD.md").read_text()
    assert "| starting weights | EfficientAT mn04_as (fschmid56/EfficientAT, MIT) |" in card
    assert "mean of the 3 highest cry logits over its 12 patches of 1 s" in card
    assert "| training | none: mn04's AudioSet weights unchanged (zero-shot) |" in card
    assert "- EfficientAT mn04_as has never heard the Donate-a-cry uploads" in card
    assert "| student |" in card  # the student's row beside it, on the same split


def test_reverberation_keeps_the_level_and_spreads_the_sound() -> None:
    rng = np.random.default_rng(0)
    click = np.zeros(16000, np.float32)
    click[100] = 1.0
    wet = reverberate(click, 0.5, rng)
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(click**2)), rel=1e-3)
    tail = np.abs(wet[100 + 800 : 100 + 8000])
    assert tail.max() > 0 and tail[:1000].mean() > tail[-1000:].mean()  # it decays
