"""EfficientAT's mn04_as (fschmid56/EfficientAT, MIT) in PyTorch, loading its AudioSet state dict.

The network is MobileNetV3-Large's layout at width 0.4: a stride-2 stem, 15 inverted-residual
blocks (squeeze-excitation over channels where the table says so), a 1x1 convolution to 384
channels, global average pooling and an MLP head to 527 AudioSet logits. It reads log-mel
spectrograms of :data:`cry_mqtt.features.EFFICIENTAT` and of any length of a few frames or more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cry_mqtt.features import EFFICIENTAT
from cry_mqtt.model import Patches
from training import DEFAULT_DATA

PROVENANCE = "EfficientAT mn04_as (fschmid56/EfficientAT, MIT)"
"""What the model card and run summaries name as its source and licence."""
STATE_DICT = DEFAULT_DATA / "pretrained" / "efficientat" / "mn04_as_mAP_432.pt"
N_CLASSES = 527
BABY_CRY = 23
"""AudioSet class "Baby cry, infant cry" (``class_labels_indices.csv``)."""
WIDTH = 0.4
PATCH_FRAMES = 100
"""Frames per streaming patch: 1 s at the 10-ms hop, the window the zero-shot tagger was
measured on here."""
PATCH_HOP_FRAMES = 50
"""Frames between patch starts (0.5 s)."""
PATCHES = Patches(PATCH_FRAMES, PATCH_HOP_FRAMES)
MACS_PER_PATCH = 11_000_000
"""Multiply-adds of one 1-s patch (its README: about 0.11 G per 10 s)."""
MEL_SHIFT, MEL_SCALE = 4.5, 5.0
"""The network sees ``(log_mel + 4.5) / 5``, EfficientAT's fixed normalisation."""

# MobileNetV3-Large at width 1: (kernel, expanded, out, squeeze-excite, hard-swish, stride).
BLOCKS = [
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
]
STEM, HEAD = 16, 1280


def channels(width: float, n: float) -> int:
    """``n * width`` rounded to a multiple of 8, never more than 10% below it (MobileNet's rule)."""
    v = n * width
    rounded = max(8, int(v + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * v else rounded


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: type | None = None
) -> nn.Sequential:
    """Convolution without bias, batch norm (EfficientAT's eps and momentum), activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=0.001, momentum=0.01),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: the mean over frequency and time, a bottleneck, a sigmoid gate."""

    def __init__(self, c: int) -> None:
        super().__init__()
        squeeze = channels(1.0, c // 4)
        self.fc1 = nn.Linear(c, squeeze)
        self.fc2 = nn.Linear(squeeze, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (k x k), optional squeeze-excite, project (1x1), residual."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, hs: bool,
                 stride: int) -> None:  # fmt: skip
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(_conv_bn(c_in, expanded, 1, act=act))
        layers.append(_conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(SqueezeExcite(expanded))
        layers.append(_conv_bn(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetAT(nn.Module):
    """Log-mel ``(n, 128, frames)`` (:data:`EFFICIENTAT`) to AudioSet logits ``(n, 527)``."""

    def __init__(self, width: float = WIDTH, dropout: float = 0.2) -> None:
        super().__init__()
        c = channels(width, STEM)
        layers: list[nn.Module] = [_conv_bn(1, c, 3, 2, act=nn.Hardswish)]
        for kernel, expanded, out, se, hs, stride in BLOCKS:
            out = channels(width, out)
            layers.append(
                InvertedResidual(c, kernel, channels(width, expanded), out, se, hs, stride)
            )
            c = out
        layers.append(_conv_bn(c, 6 * c, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6 * c, channels(width, HEAD)),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(channels(width, HEAD), N_CLASSES),
        )

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The hidden layer of the head (512 values at width 0.4), before its dropout."""
        return self.classifier[:4](self.features(normalise(mel)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(normalise(mel)))

    def patch_embedding(self, mel: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` of patches as the agent cuts them (the streaming graph's body)."""
        return self.embed(mel)

    def logit_of(self, embedding: torch.Tensor) -> torch.Tensor:
        """The "Baby cry, infant cry" logit alone, ``(n,)``, of patch embeddings."""
        row = self.classifier[5]
        return self.classifier[4](embedding) @ row.weight[BABY_CRY] + row.bias[BABY_CRY]

    def patch_logit(self, mel: torch.Tensor) -> torch.Tensor:
        return self.logit_of(self.patch_embedding(mel))


def normalise(mel: torch.Tensor) -> torch.Tensor:
    """The network's input: log-mel ``(n, 128, frames)`` scaled, as one channel."""
    return ((mel + MEL_SHIFT) / MEL_SCALE)[:, None]


def _renamed(key: str) -> str:
    """A state-dict key of the upstream network as this one names it (its squeeze-excitation
    sits in a list of concurrent layers, of which mn04_as has one)."""
    return key.replace("conc_se_layers.0.", "")


def load_state_dict(model: MobileNetAT, path: Path = STATE_DICT) -> MobileNetAT:
    """Copy EfficientAT's state dict at ``path`` into ``model`` (strictly); returns it."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({_renamed(k): v for k, v in state.items()})
    return model


def pretrained(path: Path = STATE_DICT) -> MobileNetAT:
    """mn04_as with its AudioSet weights, in evaluation mode."""
    return load_state_dict(MobileNetAT(), path).eval()


def patches(mel: np.ndarray, hop: int = PATCH_HOP_FRAMES) -> np.ndarray:
    """Patches ``(n, 128, 100)`` of a log-mel spectrogram ``(128, frames)`` at ``hop`` frames."""
    if mel.shape[0] != EFFICIENTAT.n_mels:
        raise ValueError(f"expected {EFFICIENTAT.n_mels} mel bands, got {mel.shape[0]}")
    if mel.shape[1] < PATCH_FRAMES:
        return np.zeros((0, EFFICIENTAT.n_mels, PATCH_FRAMES), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(mel, PATCH_FRAMES, axis=1)[:, ::hop]
    return np.ascontiguousarray(view.transpose(1, 0, 2), dtype=np.float32)
