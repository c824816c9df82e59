"""What every fastai training run of the recipe shares (``fit``, ``finetune``, ``distil``): its
start (seed, folder), the learner over shuffled training items and the fixed validation windows
with its per-epoch metrics, the recorded history, and the summary fields every run writes."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import fastai.callback.schedule  # noqa: F401  (gives Learner its fit_one_cycle)
import numpy as np
import torch
from fastai.callback.progress import CSVLogger
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.metrics import AccumMetric
from fastai.torch_core import set_seed
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from torch import nn
from torch.utils.data import Dataset

from training.data.audio import WINDOW_SECONDS
from training.data.cache import Cache
from training.data.windows import TrainSet, ValidSet, Windows
from training.recipes.runs import RunSummary


def start_run(out: Path, seed: int) -> float:
    """Seed every generator (reproducibly), make the run folder ``out``; the start time for
    :func:`run_summary`."""
    started = time.perf_counter()
    set_seed(seed, reproducible=True)
    out.mkdir(parents=True, exist_ok=True)
    return started


def _roc_auc(targets: np.ndarray, probs: np.ndarray) -> float:
    return float(roc_auc_score(targets, probs)) if len(set(targets)) == 2 else float("nan")


def _balanced_accuracy(targets: np.ndarray, probs: np.ndarray) -> float:
    return float(balanced_accuracy_score(targets, probs >= 0.5))


def epoch_metrics() -> list[AccumMetric]:
    """The metrics fastai reports after each epoch, on sigmoid outputs (threshold 0.5 where one
    is needed)."""
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
    windows, with :func:`epoch_metrics` and ``history.csv`` in ``out``."""
    dls = DataLoaders(
        DataLoader(train, bs=batch_size, shuffle=True, drop_last=True, num_workers=workers),
        DataLoader(ValidSet(valid), bs=valid_batch),
        device=torch.device("cpu"),
    )
    return Learner(
        dls,
        model,
        loss_func=loss,
        metrics=epoch_metrics(),
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


def validation_only(learn: Learner) -> list[dict[str, float]]:
    """The history of a run that trains nothing (zero-shot): the validation loss and metrics
    of the unchanged model, as epoch 0."""
    values = learn.validate()
    names = ["epoch", "valid_loss", *(m.name for m in learn.metrics)]
    return [dict(zip(names, [0, *map(float, values)], strict=True))]


def run_summary(
    cache: Cache,
    train: TrainSet,
    started: float,
    seed: int,
    best: dict[str, float],
    history: list[dict[str, float]],
    **fields: Any,
) -> RunSummary:
    """A trained run's summary: ``fields`` (the recipe's: arch, recipe, training, params,
    macs_per_window, epochs, settings, pretrained), then what every run records: the seed, the
    kept epoch (``best``) and the history, the training set and its augmentation, the wall time
    since ``started`` (:func:`time.perf_counter`), torch's threads and the split."""
    return RunSummary(
        **fields,
        seeds=[seed],
        best_epoch=int(best["epoch"]),
        history=history,
        window_seconds=WINDOW_SECONDS,
        train_windows_per_epoch=len(train),
        augment=asdict(train.cfg),
        p_phone_negative=round(train.p_phone_negative, 4),
        positives_without_crying=train.left_out,
        total_seconds=round(time.perf_counter() - started, 1),
        torch_threads=torch.get_num_threads(),
        data=cache.summary["splits"],
    )
