"""The weight average that fit validates and keeps instead of the last step's weights."""

from __future__ import annotations

import torch
from fastai.callback.core import Callback
from fastai.callback.tracker import SaveModelCallback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import BCEWithLogitsLossFlat
from torch import nn
from torch.utils.data import TensorDataset

from training.recipes.fit import WeightAverage


class RawWeights(Callback):
    """Records the weights training goes on from, after every epoch's swapping is done."""

    order = WeightAverage.order + 1

    def before_fit(self) -> None:
        self.seen: list[dict[str, torch.Tensor]] = []

    def after_epoch(self) -> None:
        self.seen.append({k: v.clone() for k, v in self.learn.model.state_dict().items()})


def test_the_average_is_validated_and_kept_and_training_goes_on_from_raw_weights(tmp_path) -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).float()
    data = TensorDataset(x, y)
    dls = DataLoaders(
        DataLoader(data, bs=16, shuffle=True), DataLoader(data, bs=64), device=torch.device("cpu")
    )
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    learn = Learner(dls, model, loss_func=BCEWithLogitsLossFlat(), path=tmp_path)
    average, raw = WeightAverage(0.9), RawWeights()
    learn.fit(1, 0.05, cbs=[SaveModelCallback(fname="best"), average, raw])

    averaged = average.average.module.state_dict()
    for name, value in raw.seen[-1].items():
        assert torch.equal(value, average.raw[name])  # training goes on from the raw weights
    assert not torch.allclose(averaged["0.weight"], average.raw["0.weight"])
    for name, value in learn.model.state_dict().items():
        assert torch.equal(value, averaged[name])  # the checkpoint kept is the average...
    recorded_valid_loss = learn.recorder.values[-1][1]
    assert abs(learn.validate()[0] - recorded_valid_loss) < 1e-6  # ...and so is what was validated
