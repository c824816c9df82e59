"""A cheap student that keeps what two AudioSet teachers know: EfficientAT mn04 fine-tuned for
crying, distilled from mn04 itself and YAMNet on every training window.

The student starts as EfficientAT mn04_as (:mod:`training.nets.efficientat`), whose "Baby cry,
infant cry" output scores each 1-s patch and a window the maximum over its patches (the agent's
streaming file). Each augmented training window teaches it three things at once:

- crying: the window's label, softened toward the two teachers' fused crying score (the sum of
  YAMNet's and mn04's window logits, which ranks unseen crying better than either alone);
- everything else: on every patch, the other 526 AudioSet outputs are held to what the frozen
  original mn04 says of the same patch (learning without forgetting), so laughter, speech and
  music keep their own outputs;
- the batch-norm statistics stay AudioSet's (our batches are small and narrow).

No epoch is picked on the independent set: the checkpoint with the best validation (held-out
training sources) ROC-AUC is kept, and :func:`training.recipes.finetune.interpolate` mixes it
with the pretrained weights (WiSE-FT).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.callback.tracker import SaveModelCallback
from torch import nn
from torch.utils.data import Dataset

from cry_mqtt.features import EFFICIENTAT, YAMNET, LogMel
from training.data.audio import PARAMS
from training.data.augment import AugmentConfig
from training.data.cache import Cache
from training.data.windows import TrainSet, validation_windows
from training.nets import yamnet
from training.nets.efficientat import (
    BABY_CRY,
    PATCHES,
    PROVENANCE,
    STATE_DICT,
    MobileNetAT,
    normalise,
    pretrained,
)
from training.nets.streaming import pool, window_patches
from training.recipes.learner import (
    recorded_history,
    run_summary,
    start_run,
    validation_only,
    window_learner,
)
from training.recipes.runs import CHECKPOINT, RunSummary, write_summary
from training.recipes.weights import tagger_macs, zero_shot

AUGMENT = AugmentConfig(p_reverb=0.3)
"""The recipe's augmentation plus reverberation: a far-field nursery microphone."""
CROP_SECONDS = 3.0
FROZEN_LAYERS = 7
"""The stem and the first six blocks: the high-resolution, costly part of the network."""
BEST = "best"
"""fastai's name for the checkpoint SaveModelCallback keeps (``models/best.pth``)."""


class DistilSet(Dataset):
    """Augmented training crops for the student: ``(log-mel, target)`` with ``target = (label,
    YAMNet's crying logit)``; YAMNet hears the same augmented crop at 16 kHz.

    A crop is :data:`CROP_SECONDS` of a 7-s training window: four of the student's patches
    instead of twelve, a third of the cost, and the window's label still holds for it (the
    positives are crying all through).
    """

    def __init__(self, cache: Cache, category_balance: float, cfg: AugmentConfig = AUGMENT) -> None:
        self.windows = TrainSet(cache, cfg, EFFICIENTAT, category_balance)
        self.yamnet = yamnet.CryPatches(yamnet.pretrained()).eval()
        self.yamnet_mel = LogMel(YAMNET)
        self.crop = round(CROP_SECONDS * PARAMS.sample_rate)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.windows.rng()
        samples, label = self.windows.window(index, rng)
        start = int(rng.integers(0, len(samples) - self.crop + 1))
        samples = samples[start : start + self.crop]
        with torch.no_grad():
            patches = torch.from_numpy(yamnet.patches(self.yamnet_mel(samples)))
            teacher = self.yamnet.cry_logit(patches).max()
        target = torch.stack([torch.tensor(float(label)), teacher])
        return torch.from_numpy(self.windows.logmel(samples)), target


class Student(nn.Module):
    """The student seen by fastai: log-mel windows in, window crying logits out.

    The stem and the first :data:`FROZEN_LAYERS` layers keep their AudioSet weights (and run
    once for the student and its teacher); the layers above learn. In training mode each call
    also leaves :attr:`forgetting` (the other outputs against the frozen original's on the same
    patches) and :attr:`teacher_logit` (the original's window crying logit), for :class:`Loss`.
    """

    def __init__(self, student: MobileNetAT) -> None:
        super().__init__()
        self.student = student
        for param in student.features[:FROZEN_LAYERS].parameters():
            param.requires_grad_(False)
        self.teacher = copy.deepcopy(
            nn.ModuleList([student.features[FROZEN_LAYERS:], student.classifier])
        ).requires_grad_(False)
        self.others = torch.ones(student.classifier[5].out_features, dtype=torch.bool)
        self.others[BABY_CRY] = False
        self.forgetting = torch.zeros(())
        self.teacher_logit = torch.zeros(())

    def train(self, mode: bool = True) -> Student:
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d | nn.Dropout) or module is self.teacher:
                module.eval()
        return self

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        patches = window_patches(windows, PATCHES)
        b, p = patches.shape[:2]
        net = self.student
        with torch.no_grad():
            hidden = net.features[:FROZEN_LAYERS](
                normalise(patches.reshape(b * p, *patches.shape[2:]))
            )
        logits = net.classifier(net.features[FROZEN_LAYERS:](hidden))
        if self.training:
            upper, classifier = self.teacher
            with torch.no_grad():
                target = classifier(upper(hidden))
            self.forgetting = F.binary_cross_entropy_with_logits(
                logits[:, self.others], torch.sigmoid(target[:, self.others])
            )
            self.teacher_logit = pool(target[:, BABY_CRY].reshape(b, p))
        return pool(logits[:, BABY_CRY].reshape(b, p))


class Loss(nn.Module):
    """Cross-entropy of the window crying logit against the label softened by ``softening``
    toward the fused teachers, plus ``forgetting`` times the other outputs' distillation."""

    def __init__(self, model: Student, softening: float, forgetting: float) -> None:
        super().__init__()
        self.model = model
        self.softening = softening
        self.forgetting = forgetting

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == 1:  # validation: the label alone
            return F.binary_cross_entropy_with_logits(logits, targets)
        label, yamnet_logit = targets[:, 0], targets[:, 1]
        fused = torch.sigmoid(yamnet_logit + self.model.teacher_logit)
        soft = (1 - self.softening) * label + self.softening * fused
        loss = F.binary_cross_entropy_with_logits(logits, soft)
        return loss + self.forgetting * self.model.forgetting


def fit_student(
    cache: Cache,
    out: Path,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    workers: int,
    seed: int,
    softening: float,
    forgetting: float,
    category_balance: float,
    speed: float = 0.0,
    weights: Path = STATE_DICT,
) -> RunSummary:
    """Train the student on the cache's train split (``category_balance``: see
    :class:`TrainSet`; ``speed``: :attr:`AugmentConfig.p_speed`); the checkpoint with the best
    validation ROC-AUC and a summary go to ``out``. ``epochs=0`` saves mn04 unchanged (its
    zero-shot run, which ``evaluate`` can describe like any other)."""
    started = start_run(out, seed)
    student = pretrained(weights)
    model = Student(student)
    train = DistilSet(cache, category_balance, replace(AUGMENT, p_speed=speed))
    valid = validation_windows(cache, params=EFFICIENTAT)
    loss = Loss(model, softening, forgetting)
    learn = window_learner(train, valid, model, loss, out, batch_size, workers, train_bn=False)
    if epochs:
        keep = SaveModelCallback(monitor="roc_auc", comp=np.greater, fname=BEST, with_opt=False)
        learn.fit_one_cycle(epochs, lr, cbs=[keep])  # and loads the best epoch's weights at the end
        history = recorded_history(learn)
    else:
        history = validation_only(learn)
    torch.save(student.state_dict(), out / CHECKPOINT)
    if not epochs:
        summary = zero_shot("mn04", cache, started, history)
    else:
        summary = run_summary(
            cache,
            train.windows,
            started,
            seed,
            max(history, key=lambda row: row["roc_auc"]),
            history,
            arch="mn04",
            recipe="distil",
            training="distilled with fastai (`python -m training distil`): the stem, the first "
            f"six blocks and every batch-norm statistic frozen, {epochs} epochs one-cycle, "
            f"lr_max {lr:.2e}, batch {batch_size}, {len(train.windows)} crops of 3 s per epoch, "
            f"{category_balance:.0%} of the negatives drawn with equal weight per category; "
            f"loss: cross-entropy of the crying logit against the label softened {softening:g} "
            "toward the fused teachers (the sigmoid of YAMNet's plus mn04's crying logit on the "
            f"same crop) + {forgetting:g} x cross-entropy of the other 526 outputs against the "
            "frozen mn04's on every patch (learning without forgetting); the epoch with the "
            "best validation ROC-AUC kept",
            params=sum(p.numel() for p in student.parameters()),
            macs_per_window=tagger_macs("mn04"),
            epochs=epochs,
            pretrained=PROVENANCE,
            settings={
                "batch_size": batch_size,
                "lr_max": lr,
                "softening": softening,
                "forgetting_weight": forgetting,
                "category_balance": category_balance,
                "speed": speed,
                "teachers": [PROVENANCE, yamnet.PROVENANCE],
            },
        )
    write_summary(out, summary)
    return summary
