"""Training with fastai: DataLoaders over augmented windows, lr_find, one-cycle, best checkpoint."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.callback.mixup import MixUp
from fastai.callback.progress import CSVLogger
from fastai.callback.schedule import minimum, steep, valley
from fastai.callback.tracker import SaveModelCallback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import BCEWithLogitsLossFlat
from fastai.metrics import AccumMetric
from fastai.torch_core import set_seed
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset

from training.arch import build, count_macs, count_params
from training.data import PARAMS, WINDOW_SECONDS, Cache, RecipeError
from training.windows import TrainSet, ValidSet, Windows, validation_windows

CHECKPOINT = "model.pth"
SUMMARY = "fit_summary.json"


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The summary a finished ``fit`` or ``finetune`` wrote to ``run_dir``."""
    try:
        return json.loads((run_dir / SUMMARY).read_text())
    except FileNotFoundError:
        raise RecipeError(
            f"no finished training run in {run_dir} ({SUMMARY} is missing; an interrupted run "
            "writes none): run `python -m training fit` or `finetune` to the end first"
        ) from None


def _roc_auc(targets: np.ndarray, probs: np.ndarray) -> float:
    return float(roc_auc_score(targets, probs)) if len(set(targets)) == 2 else float("nan")


def _balanced_accuracy(targets: np.ndarray, probs: np.ndarray) -> float:
    return float(balanced_accuracy_score(targets, probs >= 0.5))


def metrics() -> list[AccumMetric]:
    """Validation metrics on sigmoid outputs (threshold 0.5 where one is needed)."""
    return [
        AccumMetric(f, activation="sigmoid", to_np=True, invert_arg=True, name=name)
        for f, name in ((_balanced_accuracy, "balanced_acc"), (_roc_auc, "roc_auc"))
    ]


def window_learner(
    train: Dataset,
    valid: Windows,
    model: nn.Module,
    loss: nn.Module,
    out: Path,
    batch_size: int,
    workers: int,
    valid_batch: int = 32,
    **kwargs: Any,
) -> Learner:
    """A fastai learner on the CPU over shuffled training items and the fixed validation
    windows, with the validation metrics and ``history.csv`` in ``out``."""
    dls = DataLoaders(
        DataLoader(train, bs=batch_size, shuffle=True, drop_last=True, num_workers=workers),
        DataLoader(ValidSet(valid), bs=valid_batch),
        device=torch.device("cpu"),
    )
    return Learner(
        dls,
        model,
        loss_func=loss,
        metrics=metrics(),
        path=out,
        cbs=[CSVLogger(fname="history.csv")],
        **kwargs,
    )


def recorded_history(learn: Learner) -> list[dict[str, float]]:
    """Every epoch's losses and metrics as fastai's recorder kept them."""
    names = ["epoch", *learn.recorder.metric_names[1:-1]]
    return [
        dict(zip(names, [i, *map(float, v)], strict=True))
        for i, v in enumerate(learn.recorder.values)
    ]


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
) -> dict[str, Any]:
    """Train ``arch`` on the cache's train split; writes the best weights and a summary to ``out``.

    Without ``lr`` the learning rate is lr_find's "minimum" suggestion (the loss minimum / 10),
    clipped to 1e-3..1e-2. ``weight_average`` is the decay per step of the weight average that
    is validated and kept (0: the raw weights).
    """
    start = time.perf_counter()
    set_seed(seed, reproducible=True)
    out.mkdir(parents=True, exist_ok=True)
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
    plt.gcf().savefig(out / "lr_find.png", dpi=80)
    plt.close("all")
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
    summary = {
        "arch": arch,
        "params": count_params(model),
        "macs_per_window": count_macs(model, PARAMS.n_mels, valid.mels.shape[2]),
        "window_seconds": WINDOW_SECONDS,
        "epochs": epochs,
        "batch_size": batch_size,
        "train_windows_per_epoch": len(train),
        "lr_find": {k: float(v) for k, v in suggestion._asdict().items()},
        "lr_max": lr_max,
        "mixup_alpha": mixup,
        "weight_average": weight_average,
        "augment": asdict(train.cfg),
        "p_phone_negative": round(train.p_phone_negative, 4),
        "positives_without_crying": train.left_out,
        "seed": seed,
        "best_epoch": best["epoch"],
        "best": best,
        "history": history,
        "fit_seconds": round(time.perf_counter() - fit_start, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
        "data": cache.summary["splits"],
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary
