"""Fine-tuning YAMNet for crying without forgetting what AudioSet taught it.

The cry output starts as YAMNet's own "Baby cry, infant cry" unit and a window's logit is the
maximum over its 0.96-s patches (:func:`training.nets.streaming.pool`). The lower layers stay
frozen; the top ones learn from our windows under two restraints: the other 520 AudioSet outputs are
held to the original network's on every training patch (learning without forgetting), and the
weights are pulled toward the pretrained ones (L2-SP). ``epochs=0`` keeps YAMNet unchanged
(zero-shot).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cry_mqtt.features import YAMNET
from training import RecipeError
from training.data.cache import Cache
from training.data.windows import TrainSet, validation_windows
from training.nets import efficientat, streaming
from training.nets.streaming import pool
from training.nets.yamnet import BABY_CRY, MACS_PER_PATCH, PATCHES, TFLITE, CryPatches, pretrained
from training.recipes.learner import (
    recorded_history,
    run_summary,
    start_run,
    validation_only,
    window_learner,
)
from training.recipes.runs import CHECKPOINT, read_summary, write_summary


def window_patches(windows: torch.Tensor) -> torch.Tensor:
    """Log-mel windows ``(b, 64, frames)`` to their patches in YAMNet's layout ``(b, p, 96, 64)``,
    cut as the agent cuts them (every 48 frames from the window's first)."""
    return streaming.window_patches(windows, PATCHES).transpose(2, 3)


class CryWindows(nn.Module):
    """Training view of :class:`CryPatches`: log-mel windows in, window cry logits out.

    In training mode each call also leaves :attr:`forgetting`, the binary cross-entropy of the
    student's other 520 outputs against the frozen original's on the same patches.
    """

    def __init__(self, model: CryPatches, trained_layers: int) -> None:
        super().__init__()
        self.model = model
        layers = model.yamnet.layers
        self.split = len(layers) - trained_layers
        for param in layers[: self.split].parameters():
            param.requires_grad_(False)
        self.teacher = copy.deepcopy(nn.ModuleList([layers[self.split :], model.yamnet.classifier]))
        self.teacher.requires_grad_(False)
        self.start = [p.detach().clone() for p in self.trainable()]
        self.forgetting = torch.zeros(())

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def drift(self) -> torch.Tensor:
        """Squared distance of the trained weights from the pretrained ones (L2-SP)."""
        return sum(
            ((p - p0) ** 2).sum() for p, p0 in zip(self.trainable(), self.start, strict=True)
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        patches = window_patches(windows)
        b, p = patches.shape[:2]
        yamnet = self.model.yamnet
        with torch.no_grad():
            hidden = yamnet.layers[: self.split](patches.reshape(b * p, 1, *patches.shape[2:]))
        logits = yamnet.classifier(yamnet.layers[self.split :](hidden).mean(dim=(2, 3)))
        if self.training:
            upper, classifier = self.teacher
            with torch.no_grad():
                target = torch.sigmoid(classifier(upper(hidden).mean(dim=(2, 3))))
            others = torch.ones(logits.shape[1], dtype=torch.bool)
            others[BABY_CRY] = False
            self.forgetting = F.binary_cross_entropy_with_logits(
                logits[:, others], target[:, others]
            )
        return pool(logits[:, BABY_CRY].reshape(b, p))


class Loss(nn.Module):
    """Cross-entropy of the window logit, plus forgetting and drift in training."""

    def __init__(self, model: CryWindows, forgetting: float, drift: float) -> None:
        super().__init__()
        self.model = model
        self.weights = forgetting, drift

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        if self.model.training:
            forgetting, drift = self.weights
            loss = loss + forgetting * self.model.forgetting + drift * self.model.drift()
        return loss


def fit_yamnet(
    cache: Cache,
    out: Path,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    workers: int,
    seed: int,
    trained_layers: int,
    forgetting: float,
    drift: float,
    weights: Path = TFLITE,
) -> dict[str, Any]:
    """Fine-tune YAMNet on the cache's train split; the last epoch's weights and a summary go
    to ``out`` (no epoch is picked on validation). ``epochs=0`` saves YAMNet unchanged."""
    start = start_run(out, seed)
    model = CryPatches(pretrained(weights))
    windows = CryWindows(model, trained_layers)
    valid = validation_windows(cache, params=YAMNET)
    train = TrainSet(cache, params=YAMNET)
    loss = Loss(windows, forgetting, drift)
    learn = window_learner(train, valid, windows, loss, out, batch_size, workers, train_bn=False)
    if epochs:
        learn.fit_one_cycle(epochs, lr)
        history = recorded_history(learn)
    else:
        history = validation_only(learn)
    torch.save(model.state_dict(), out / CHECKPOINT)
    summary = run_summary(
        cache,
        train,
        start,
        arch="yamnet",
        params=sum(p.numel() for p in model.parameters()),
        macs_per_window=MACS_PER_PATCH * PATCHES.count(valid.mels.shape[2]),
        epochs=epochs,
        batch_size=batch_size,
        lr_max=lr,
        trained_layers=trained_layers,
        forgetting_weight=forgetting,
        drift_weight=drift,
        drift=float(windows.drift().detach()),
        pretrained=str(weights.name),
        seed=seed,
        best=history[-1],
        history=history,
    )
    write_summary(out, summary)
    return summary


def load(run_dir: Path) -> CryPatches:
    """The fine-tuned model of ``run_dir`` in evaluation mode."""
    model = CryPatches(pretrained())
    model.load_state_dict(torch.load(run_dir / CHECKPOINT, map_location="cpu"))
    return model.eval()


def load_trained(run_dir: Path) -> nn.Module:
    """The trained patch network of ``run_dir`` (fine-tuned YAMNet or the mn04 student)."""
    if read_summary(run_dir)["arch"] == "mn04":
        from training.recipes import distil

        return distil.load(run_dir)
    return load(run_dir)


def interpolate(run_dir: Path, out: Path, alpha: float) -> dict[str, Any]:
    """Write to ``out`` the weight-space ensemble of the model trained in ``run_dir`` (YAMNet
    fine-tuned or the mn04 student) and the pretrained one (WiSE-FT: ``(1 - alpha) *
    pretrained + alpha * trained``), with the training's summary and ``alpha``. Interpolating
    the weights keeps more of what the pretrained network knows about sounds our data lacks
    than the trained end point does. Batch-norm counters are the trained model's."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    summary = read_summary(run_dir)
    start = (
        efficientat.pretrained() if summary["arch"] == "mn04" else CryPatches(pretrained())
    ).state_dict()
    tuned = load_trained(run_dir).state_dict()
    summary |= {"wise_alpha": alpha, "fine_tuned": str(run_dir)}
    return _write_mixed(out, [start, tuned], [1 - alpha, alpha], summary)


def soup(run_dirs: list[Path], out: Path) -> dict[str, Any]:
    """Write to ``out`` the mean of the weights of ``run_dirs``, runs of one recipe that differ
    only in their seed (a uniform model soup): fine-tuned from the same pretrained weights, they
    lie in one basin, so their mean averages out what each seed learned by chance at the cost
    of one network. The summary is the recipe's, with the runs, their seeds and their wall
    time added up."""
    if len(run_dirs) < 2:
        raise RecipeError("a soup takes two or more runs")
    summaries = [read_summary(d) for d in run_dirs]
    recipes = [_recipe(s) for s in summaries]
    differ = sorted(
        k
        for k in set().union(*recipes)
        if len({json.dumps(r.get(k), sort_keys=True) for r in recipes}) > 1
    )
    if differ:
        raise RecipeError(
            "a soup takes runs of one recipe that differ only in their seed; "
            f"{', '.join(map(str, run_dirs))} differ in {', '.join(differ)}"
        )
    states = [load_trained(d).state_dict() for d in run_dirs]
    summary = recipes[0] | {
        "soup": [str(d) for d in run_dirs],
        "seed": [s["seed"] for s in summaries],
        "total_seconds": sum(s["total_seconds"] for s in summaries),
    }
    return _write_mixed(out, states, [1 / len(states)] * len(states), summary)


SEED_KEYS = ("seed", "best", "history", "total_seconds", "torch_threads")
"""Fit-summary keys that may differ between runs of one recipe."""


def _recipe(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in SEED_KEYS}


def _write_mixed(
    out: Path, states: list[dict[str, torch.Tensor]], weights: list[float], summary: dict[str, Any]
) -> dict[str, Any]:
    """Save the weighted sum of ``states`` (integer buffers from the last) as the run ``out``."""
    mixed = {
        k: sum(w * s[k] for s, w in zip(states, weights, strict=True))
        if v.is_floating_point()
        else v
        for k, v in states[-1].items()
    }
    out.mkdir(parents=True, exist_ok=True)
    torch.save(mixed, out / CHECKPOINT)
    write_summary(out, summary)
    return summary
