"""The graph of a streaming model file (see :mod:`cry_mqtt.model`), for any patch network.

A patch network has ``patch_logit(patches)``: the crying logit of each log-mel patch, given as
the agent cuts them, ``(n, n_mels, patch_frames)``. YAMNet's (:class:`training.yamnet.CryPatches`)
and EfficientAT's (:class:`training.efficientat.MobileNetAT`) both do.
"""

from __future__ import annotations

import torch
from torch import nn


def pool(logits: torch.Tensor, top: int = 1) -> torch.Tensor:
    """A window's logit from its patches' logits (the last dimension): the mean of the ``top``
    highest. With 1, the maximum, one crying patch is enough and a cry triggers as soon as it
    starts; with more, the window needs that many patches of crying, so one short sound that
    resembles a cry does not carry a whole window."""
    return logits.topk(top, dim=-1).values.mean(dim=-1)


class StreamingCry(nn.Module):
    """New patches ``(n, n_mels, patch_frames)`` and the window's per-patch logits in, P(cry)
    of the window ending with the newest patch and the new logits out."""

    def __init__(self, model: nn.Module, window_patches: int, top: int = 1) -> None:
        super().__init__()
        self.model = model
        self.window_patches = window_patches
        self.top = top

    def forward(
        self, patches: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.patch_logit(patches)
        state = torch.cat([state, logits])[-self.window_patches :]
        return torch.sigmoid(pool(state, self.top)).reshape(1), state
