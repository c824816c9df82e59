"""ONNX export: parity with PyTorch, metadata the agent accepts, threshold choice."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from cry_mqtt.model import CryModel, ModelInfo
from training.data.audio import PARAMS, WINDOW_SECONDS
from training.export import (
    WindowProbability,
    check_parity,
    int8_rows,
    pick_threshold,
    torch_predict,
    write_onnx,
)
from training.nets.cnn import build, count_macs, count_params


def random_window_model() -> WindowProbability:
    torch.manual_seed(0)
    model = build("cnn")
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return WindowProbability(model).eval()


def test_default_architecture_budget() -> None:
    model = build("cnn")
    assert count_params(model) <= 1_000_000
    assert count_macs(model, 128, 215) <= 30_000_000


def test_onnx_matches_pytorch_and_loads_in_agent(tmp_path: Path) -> None:
    window_model = random_window_model()
    info = ModelInfo(PARAMS, WINDOW_SECONDS, 0.7, "test", {"arch": "cnn"})
    frames = info.window_frames
    mels = np.random.default_rng(0).normal(-60, 20, (9, PARAMS.n_mels, frames)).astype(np.float32)
    path = tmp_path / "m.onnx"
    write_onnx(window_model, info, mels[:2], path)
    assert check_parity(path, partial(torch_predict, window_model), mels) <= 1e-4
    model = CryModel(path)
    assert model.info.threshold == 0.7
    assert model.info.details["arch"] == "cnn"
    expected = torch_predict(window_model, mels)
    for batch in (1, 4, 9):  # the batch axis is dynamic
        probs = model.predict(mels[:batch])
        assert probs.shape == (batch,)
        np.testing.assert_allclose(probs, expected[:batch], atol=1e-4)
    assert path.stat().st_size < 4_000_000


def test_pick_threshold_allows_at_most_one_percent() -> None:
    scores = np.linspace(0, 1, 1000, dtype=np.float32)
    threshold = pick_threshold(scores)
    assert np.mean(scores >= threshold) <= 0.01
    below_max = scores * 0.9
    # still at most 1% when onnxruntime's scores differ from PyTorch's within the parity bound
    assert np.mean(below_max + 5e-5 >= pick_threshold(below_max)) <= 0.01
    assert np.mean(scores >= threshold - 0.002) > 0.01
    assert pick_threshold(np.zeros(50, np.float32)) == 0.5


def test_pick_threshold_holds_every_category_to_one_percent() -> None:
    """Two laughs among a thousand quiet windows: 1% overall would let both through, but no
    category may have more than 1% of its windows above the threshold."""
    scores = np.concatenate([np.linspace(0, 0.5, 1000), [0.8, 0.9]]).astype(np.float32)
    categories = ["room"] * 1000 + ["laughter"] * 2
    assert pick_threshold(scores) == 0.5
    threshold = pick_threshold(scores, categories)
    assert 0.9 < threshold < 0.9 + 1e-3


def test_int8_weights_are_stored_as_int8_and_float_ones_stay() -> None:
    rng = np.random.default_rng(0)
    scales = rng.uniform(1e-3, 1e-2, (16, 1, 1, 1)).astype(np.float32)
    quantised = rng.integers(-127, 128, (16, 8, 3, 3)).astype(np.float32) * scales
    values, found = int8_rows(quantised)
    np.testing.assert_allclose(values * found[:, None, None, None], quantised, rtol=1e-6)
    assert values.dtype == np.int8
    assert int8_rows(rng.normal(size=(16, 72)).astype(np.float32)) is None
