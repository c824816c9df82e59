"""End to end on a few real clips: prepare, a very short fit, export, evaluate, agent load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cry_mqtt.detector import Votes
from cry_mqtt.features import logmel
from cry_mqtt.model import CryModel
from training.__main__ import main
from training.data.audio import PARAMS, WINDOW_SAMPLES, load_audio


def test_prepare_fit_export_evaluate(tmp_path: Path, data_dir: Path) -> None:
    runs = tmp_path / "runs"
    main(["--runs", str(runs), "prepare", "--data", str(data_dir), "--limit", "3"])
    summary = json.loads((runs / "cache" / "summary.json").read_text())["splits"]
    for split in ("train", "valid"):
        assert summary[split]["positives_by_source"].keys() == {"android-8k", "ios-16k"}
        assert summary[split]["negatives"] > 0

    # The default batch (64) is larger than this split's epoch: fit uses the whole epoch instead.
    main(["--runs", str(runs), "fit", "--epochs", "1", "--workers", "0", "--lr-find-iters", "12"])
    fit = json.loads((runs / "cnn" / "fit_summary.json").read_text())
    assert len(fit["history"]) == 1
    assert (runs / "cnn" / "lr_find.png").is_file()

    model_path = tmp_path / "model" / "cry-cnn.onnx"
    main(["--runs", str(runs), "export", "--out", str(model_path), "--votes", "2", "4",
          "--hop", "0.5"])  # fmt: skip
    main(["--runs", str(runs), "evaluate", "--model", str(model_path)])
    card = (model_path.parent / "cnn-MODEL_CARD.md").read_text()
    assert "balanced_accuracy" in card and "ios-16k" in card
    categories = sorted(summary["valid"]["negatives_by_category"])
    assert "| run | " + " | ".join(categories) + " |" in card  # validation FPR per category
    assert (
        "| detector votes | ON when 2 of the last 4 windows, scored every 0.5 s, reach the "
        "threshold |" in card
    )
    # every data source with its licence, the negatives-extra speech among them
    assert "| positive | crying | ios-16k | ODbL (database), DbCL (contents) |" in card
    assert (
        "| negative | spoken-digits-8k | Jakobovski/free-spoken-digit-dataset | CC BY-SA 4.0 |"
        in card
    )
    assert {p.name for p in model_path.parent.glob("*.png")} == {
        "cnn-roc.png", "cnn-pr.png", "cnn-confusion.png", "cnn-scores.png"
    }  # fmt: skip

    model = CryModel(model_path)
    assert model.info.features == PARAMS
    assert model.info.window_frames == 215
    assert model.info.votes == Votes(2, 4, 0.5)
    assert 0.5 <= model.info.threshold < 1
    assert model.info.details["validation"]["windows"]["positives"] > 0
    clip = sorted((data_dir / "donateacry-corpus").glob("*ios*/*.caf"))[-1]
    window = logmel(load_audio(clip)[:WINDOW_SAMPLES], PARAMS)
    if window.shape[1] < 215:
        window = np.pad(window, ((0, 0), (0, 215 - window.shape[1])), constant_values=-100)
    score = model.predict(window[None])
    assert score.shape == (1,) and 0.0 <= float(score[0]) <= 1.0


def test_steps_say_what_to_run_first(tmp_path: Path) -> None:
    runs = ["--runs", str(tmp_path)]
    with pytest.raises(
        SystemExit, match=r"prepare: no recordings found in .*nodata \(option --data\)"
    ):
        main([*runs, "prepare", "--data", str(tmp_path / "nodata")])
    with pytest.raises(
        SystemExit, match=r"fit: no prepared data in .*`python -m training prepare`"
    ):
        main([*runs, "fit"])
    (tmp_path / "cnn").mkdir()  # an interrupted fit leaves checkpoints but no summary
    with pytest.raises(SystemExit, match=r"export: no finished training run in .*cnn \(fit_summ"):
        main([*runs, "export"])
