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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cry_mqtt.features import YAMNET
from training.data.cache import Cache
from training.data.windows import TrainSet, validation_windows
from training.nets import streaming
from training.nets.streaming import pool
from training.nets.yamnet import BABY_CRY, PATCHES, PROVENANCE, TFLITE, CryPatches, pretrained
from training.recipes.learner import (
    recorded_history,
    run_summary,
    start_run,
    validation_only,
    window_learner,
)
from training.recipes.runs import CHECKPOINT, RunSummary, write_summary
from training.recipes.weights import tagger_macs, zero_shot


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
) -> RunSummary:
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
    if not epochs:
        summary = zero_shot("yamnet", cache, start, history)
    else:
        history[-1]["drift"] = float(windows.drift().detach())  # L2-SP's distance at the end
        summary = run_summary(
            cache,
            train,
            start,
            seed,
            history[-1],
            history,
            arch="yamnet",
            recipe="finetune",
            training=f"top {trained_layers} of 14 layers and the classifier fine-tuned (the rest "
            f"frozen), {epochs} epochs one-cycle, lr_max {lr:.2e}, batch {batch_size}, "
            f"{len(train)} windows per epoch, the last epoch kept; loss: cross-entropy of the "
            f"window's max-pooled cry logit + {forgetting:g} x cross-entropy of the other 520 "
            "outputs against the original network's on the same patches (learning without "
            f"forgetting) + {drift:g} x squared distance to the pretrained weights (L2-SP)",
            params=sum(p.numel() for p in model.parameters()),
            macs_per_window=tagger_macs("yamnet"),
            epochs=epochs,
            pretrained=PROVENANCE,
            settings={
                "batch_size": batch_size,
                "lr_max": lr,
                "trained_layers": trained_layers,
                "forgetting_weight": forgetting,
                "drift_weight": drift,
                "weights": weights.name,
            },
        )
    write_summary(out, summary)
    return summary
