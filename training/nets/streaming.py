"""The graph of a streaming model file (see :mod:`cry_mqtt.model`), for any patch network.

A patch network has ``patch_embedding(patches)``: what it hears in each log-mel patch, given as
the agent cuts them, ``(n, n_mels, patch_frames)``, as ``(n, d)`` values; ``logit_of(embedding)``:
their crying logits; and ``patch_logit(patches)``: the two in one. YAMNet's
(:class:`training.nets.yamnet.CryPatches`) and EfficientAT's
(:class:`training.nets.efficientat.MobileNetAT`) both do.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cry_mqtt.model import Patches


def pool(logits: torch.Tensor, top: int = 1) -> torch.Tensor:
    """A window's logit from its patches' logits (the last dimension): the mean of the ``top``
    highest. With 1, the maximum, one crying patch is enough and a cry triggers as soon as it
    starts; with more, the window needs that many patches of crying, so one short sound that
    resembles a cry does not carry a whole window."""
    return logits.topk(top, dim=-1).values.mean(dim=-1)


class StreamingCry(nn.Module):
    """New patches ``(n, n_mels, patch_frames)`` and the window's per-patch logits in, P(cry)
    of the window ending with the newest patch, the new logits and the new patches' embeddings
    out (what a parent's "not crying" teaches the agent to recognise)."""

    def __init__(self, model: nn.Module, window_patches: int, top: int = 1) -> None:
        super().__init__()
        self.model = model
        self.window_patches = window_patches
        self.top = top

    def forward(
        self, patches: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embedding = self.model.patch_embedding(patches)
        state = torch.cat([state, self.model.logit_of(embedding)])[-self.window_patches :]
        return torch.sigmoid(pool(state, self.top)).reshape(1), state, embedding


def window_patches(windows: torch.Tensor, patches: Patches) -> torch.Tensor:
    """Log-mel windows ``(b, n_mels, frames)`` to their patches ``(b, p, n_mels, patch_frames)``,
    cut as the agent cuts them (every ``hop_frames`` from the window's first)."""
    return windows.unfold(2, patches.frames, patches.hop_frames).permute(0, 2, 1, 3)


def predict_windows(
    model: nn.Module, mels: np.ndarray, patches: Patches, batch: int = 16, top: int = 1
) -> np.ndarray:
    """P(cry) from PyTorch for log-mel windows ``(n, n_mels, frames)``: the mean of the ``top``
    highest patch logits (:func:`pool`)."""
    probs = []
    with torch.no_grad():
        for i in range(0, len(mels), batch):
            cut = window_patches(torch.from_numpy(mels[i : i + batch]), patches)
            b, p = cut.shape[:2]
            logits = model.patch_logit(cut.reshape(b * p, *cut.shape[2:]))
            probs.append(torch.sigmoid(pool(logits.reshape(b, p), top)))
    return torch.cat(probs).numpy()
