"""Model architectures: log-mel dB ``(batch, n_mels, frames)`` in, one cry logit per window out.

Input normalisation is part of every model (and so of the exported graph), as two channels: the
log-mel less the window's mean level, which makes scores independent of microphone gain, and the
log-mel less each band's mean over the window, which takes out what is steady (a fan's hum, a
microphone's colour) and leaves what changes, as crying does.
"""

from __future__ import annotations

import itertools

import torch
import torchvision
from torch import nn

ARCHS = ("cnn", "resnet34")
DB_SCALE = 20.0


class Normalize(nn.Module):
    """Log-mel dB ``(batch, n_mels, frames)`` to two scaled channels: less the window's mean,
    and less each band's mean over time."""

    channels = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        level = x - x.mean(dim=(2, 3), keepdim=True)
        change = x - x.mean(dim=3, keepdim=True)
        return torch.cat([level, change], dim=1) / DB_SCALE


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CompactCNN(nn.Module):
    """Five 3x3 conv stages with early downsampling (about 30 MMAC per 7-s window)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128, 128), dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [
            Normalize(),
            conv_bn(Normalize.channels, widths[0], stride=2),
            nn.MaxPool2d(2),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers.append(conv_bn(c_in, c_out))
            if c_out != widths[-1] or c_in != c_out:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * widths[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=2)
        pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.head(pooled).squeeze(1)


class ResNet34(nn.Module):
    """torchvision ResNet34 (random init) on the normalised channels: the 2019 write-up's model."""

    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.net = torchvision.models.resnet34(weights=None, num_classes=1)
        self.net.conv1 = nn.Conv2d(Normalize.channels, 64, 7, stride=2, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x)).squeeze(1)


def build(arch: str) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (one of :data:`ARCHS`)."""
    if arch == "cnn":
        return CompactCNN()
    if arch == "resnet34":
        return ResNet34()
    raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHS}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, n_mels: int, frames: int) -> int:
    """Multiply-accumulates of convolutions and linear layers for one window."""
    total = 0

    def hook(module: nn.Module, _: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out.numel() * kh * kw * module.in_channels // module.groups
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, n_mels, frames))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total
