"""YAMNet fine-tuning end to end on a few real clips: finetune, the weight-space mix with the
pretrained network, export of the streaming file, evaluate, agent load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cry_mqtt.features import YAMNET
from cry_mqtt.model import CryModel, default_model_path
from training.__main__ import main
from training.nets.yamnet import BABY_CRY, CryPatches, pretrained
from training.recipes.weights import load_trained as load


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    main(["--runs", str(runs), "prepare", "--data", str(data_dir), "--limit", "2"])
    main(["--runs", str(runs), "finetune", "--epochs", "1", "--batch-size", "4", "--workers", "0"])
    return runs


def test_fine_tuning_moves_only_the_top_layers_and_keeps_a_log(runs: Path) -> None:
    summary = json.loads((runs / "yamnet" / "fit_summary.json").read_text())
    assert summary["epochs"] == 1 and len(summary["history"]) == 1
    assert summary["history"][-1]["drift"] > 0
    tuned, start = load(runs / "yamnet").yamnet, pretrained()
    frozen = len(tuned.layers) - summary["settings"]["trained_layers"]
    for k, (a, b) in enumerate(zip(tuned.layers, start.layers, strict=True)):
        same = all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
        assert same == (k < frozen), f"layer {k}"
    assert not torch.equal(tuned.classifier.weight[BABY_CRY], start.classifier.weight[BABY_CRY])


def test_zero_epochs_keep_yamnet_as_audioset_left_it(runs: Path, tmp_path: Path) -> None:
    zero = tmp_path / "runs"
    zero.mkdir()
    (zero / "cache").symlink_to(runs / "cache")
    main(["--runs", str(zero), "finetune", "--epochs", "0", "--batch-size", "4", "--workers", "0"])
    summary = json.loads((zero / "yamnet" / "fit_summary.json").read_text())
    assert summary["epochs"] == 0 and [row["epoch"] for row in summary["history"]] == [0]
    assert {"valid_loss", "balanced_acc", "roc_auc"} <= summary["history"][0].keys()
    start = CryPatches(pretrained()).state_dict()
    for name, value in load(zero / "yamnet").state_dict().items():
        assert torch.equal(value, start[name]), name


def test_wise_mixes_the_weights_and_exports_a_streaming_model(runs: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "wise"
    main(["--runs", str(runs), "wise", "--alpha", "0.25", "--out", str(mixed)])
    tuned, start = load(runs / "yamnet").state_dict(), CryPatches(pretrained()).state_dict()
    for name, value in load(mixed).state_dict().items():
        torch.testing.assert_close(value, 0.75 * start[name] + 0.25 * tuned[name])
    assert json.loads((mixed / "fit_summary.json").read_text())["settings"]["wise_alpha"] == 0.25

    shipped = default_model_path().read_bytes()
    main(["--runs", str(runs), "--arch", "yamnet", "export", "--run-dir", str(mixed)])
    model_path = mixed / "cry-yamnet.onnx"  # in the run's folder; the packaged model untouched
    assert default_model_path().read_bytes() == shipped
    main(["--runs", str(runs), "--arch", "yamnet", "evaluate", "--model", str(model_path)])
    card = (mixed / "yamnet-MODEL_CARD.md").read_text()
    assert "WiSE-FT" in card and "0.25 x the trained" in card
    model = CryModel(model_path)
    assert model.info.features == YAMNET and model.info.window_patches == 13
    assert model.info.details["run"]["settings"]["wise_alpha"] == 0.25
    assert 0.5 <= model.info.threshold < 1
