"""The CNN trained from scratch with fastai: lr_find, one-cycle with mixup, the best epoch's
weights (the learner, its metrics and the summary fields are :mod:`training.recipes.learner`'s)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp
from fastai.callback.schedule import minimum, steep, valley
from fastai.callback.tracker import SaveModelCallback
from fastai.losses import BCEWithLogitsLossFlat
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from training.data.audio import PARAMS
from training.data.cache import Cache
from training.data.windows import TrainSet, validation_windows
from training.nets.cnn import build, count_macs, count_params
from training.plotting import plt, save
from training.recipes.learner import recorded_history, run_summary, start_run, window_learner
from training.recipes.runs import CHECKPOINT, RunSummary, write_summary


class WeightAverage(Callback):
    """Validate and checkpoint an exponential moving average of the weights (BatchNorm
    statistics included) instead of the last step's.

    One-cycle at a high learning rate leaves the raw weights jumping from epoch to epoch (the
    validation loss with them); the average is smoother, so the best epoch is picked less by luck.
    The average is swapped in for validation and the raw weights swapped back after
    :class:`SaveModelCallback` has saved it.
    """

    order = SaveModelCallback.order + 1

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def before_fit(self) -> None:
        self.average = AveragedModel(
            self.learn.model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )

    def after_step(self) -> None:
        self.average.update_parameters(self.learn.model)

    def before_validate(self) -> None:
        self.raw = copy.deepcopy(self.learn.model.state_dict())
        self.learn.model.load_state_dict(self.average.module.state_dict())

    def after_epoch(self) -> None:
        self.learn.model.load_state_dict(self.raw)


def fit(
    cache: Cache,
    out: Path,
    arch: str = "cnn",
    epochs: int = 30,
    batch_size: int = 64,
    lr: float | None = None,
    workers: int = 1,
    seed: int = 42,
    mixup: float = 0.4,
    lr_find_iters: int = 60,
    weight_average: float = 0.0,
) -> RunSummary:
    """Train ``arch`` on the cache's train split; writes the best weights and a summary to ``out``.

    Without ``lr`` the learning rate is lr_find's "minimum" suggestion (the loss minimum / 10),
    clipped to 1e-3..1e-2. ``weight_average`` is the decay per step of the weight average that
    is validated and kept (0: the raw weights).
    """
    start = start_run(out, seed)
    valid = validation_windows(cache)
    train = TrainSet(cache)
    if len(train) < batch_size:  # a quick run's tiny split would give no whole batch at all
        print(f"batch size {batch_size} > {len(train)} training windows: using {len(train)}")
        batch_size = len(train)
    model = build(arch)
    learn = window_learner(
        train, valid, model, BCEWithLogitsLossFlat(), out, batch_size, workers, valid_batch=128,
        model_dir="checkpoints",
    )  # fmt: skip
    suggestion = learn.lr_find(
        num_it=lr_find_iters, show_plot=False, suggest_funcs=(minimum, steep, valley)
    )
    learn.recorder.plot_lr_find()
    save(plt.gcf(), out / "lr_find.png", dpi=80)
    lr_max = lr or float(np.clip(suggestion.minimum, 1e-3, 1e-2))
    print(f"lr_find {suggestion}; training at lr_max {lr_max:.2e}")
    fit_start = time.perf_counter()
    cbs = [MixUp(mixup), SaveModelCallback(monitor="valid_loss", fname="best")]
    if weight_average:
        cbs.append(WeightAverage(weight_average))
    learn.fit_one_cycle(epochs, lr_max, cbs=cbs)
    torch.save(learn.model.state_dict(), out / CHECKPOINT)
    history = recorded_history(learn)
    best = min(history, key=lambda h: h["valid_loss"])
    averaged = f", as its weight average (decay {weight_average} a step)" if weight_average else ""
    summary = run_summary(
        cache,
        train,
        start,
        seed,
        best,
        history,
        arch=arch,
        recipe="fit",
        training=f"trained from scratch with fastai (`python -m training fit`): {epochs} epochs "
        f"one-cycle, lr_max {lr_max:.2e} (lr_find), batch {batch_size}, {len(train)} windows per "
        f"epoch, mixup {mixup}; the epoch with the lowest validation loss kept{averaged}",
        params=count_params(model),
        macs_per_window=count_macs(model, PARAMS.n_mels, valid.mels.shape[2]),
        epochs=epochs,
        settings={
            "batch_size": batch_size,
            "lr_find": {k: float(v) for k, v in suggestion._asdict().items()},
            "lr_max": lr_max,
            "mixup_alpha": mixup,
            "weight_average": weight_average,
            "fit_seconds": round(time.perf_counter() - fit_start, 1),
        },
    )
    write_summary(out, summary)
    return summary
