"""YAMNet (tensorflow/models ``research/audioset/yamnet``, Apache-2.0) in PyTorch, with its
AudioSet-trained weights read from a TensorFlow Lite file.

The network is MobileNet v1 on log-mel patches of 96 frames by 64 bands (0.96 s) and ends in 521
AudioSet class logits. The TFLite files hold the weights with batch normalisation folded into each
convolution's bias and most kernels quantised to int8 with per-channel scales; :func:`load_tflite`
dequantises them, so this network computes what the file computes in float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cry_mqtt.features import YAMNET
from cry_mqtt.model import Patches
from training import DEFAULT_DATA

PROVENANCE = "YAMNet (tensorflow/models research/audioset/yamnet, Apache-2.0)"
"""What the model card and run summaries name as its source and licence."""
TFLITE = DEFAULT_DATA / "pretrained" / "yamnet" / "yamnet-with-patches.tflite"
PATCH_FRAMES = 96
"""Frames per patch (0.96 s at YAMNet's 10-ms hop)."""
PATCH_HOP_FRAMES = 48
"""Frames between patch starts (0.48 s), as YAMNet's own framing."""
PATCHES = Patches(PATCH_FRAMES, PATCH_HOP_FRAMES)
MACS_PER_PATCH = 69_200_000
"""Multiply-adds of one patch (its README: about 69 M)."""
N_CLASSES = 521
BABY_CRY = 20
"""AudioSet class "Baby cry, infant cry" (``yamnet_class_map.csv``)."""
EMBEDDING = 1024

# (stride, output channels) of the 14 layers: a full convolution, then depthwise-separable ones.
LAYERS = [
    (2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
]  # fmt: skip


def _conv(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """Convolution with TensorFlow's 'same' padding (the extra row and column at the end), folded
    batch norm as its bias, and ReLU."""
    pad = nn.ZeroPad2d((0, 1, 0, 1) if stride == 2 else (kernel // 2,) * 4)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, groups=groups)
    return nn.Sequential(pad, conv, nn.ReLU()) if kernel > 1 else nn.Sequential(conv, nn.ReLU())


class YAMNet(nn.Module):
    """Log-mel patches ``(n, 96, 64)`` (YAMNet's front end) to AudioSet logits ``(n, 521)``."""

    def __init__(self) -> None:
        super().__init__()
        stride, channels = LAYERS[0]
        layers = [_conv(1, channels, 3, stride)]
        for stride, out in LAYERS[1:]:
            layers.append(
                nn.Sequential(
                    _conv(channels, channels, 3, stride, groups=channels),
                    _conv(channels, out, 1, 1),
                )
            )
            channels = out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(EMBEDDING, N_CLASSES)

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        """The 1024-d embedding of each patch (global average of the last layer)."""
        return self.layers(patches[:, None]).mean(dim=(2, 3))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(patches))


def _dequantised(interpreter, index: int) -> np.ndarray:
    detail = next(d for d in interpreter.get_tensor_details() if d["index"] == index)
    values = interpreter.get_tensor(index)
    if values.dtype == np.float32:
        return values
    quant = detail["quantization_parameters"]
    shape = [1] * values.ndim
    shape[quant["quantized_dimension"]] = -1
    scales = quant["scales"].reshape(shape) if len(quant["scales"]) > 1 else quant["scales"]
    zeros = quant["zero_points"].reshape(shape) if len(quant["scales"]) > 1 else 0
    return ((values.astype(np.float32) - zeros) * scales).astype(np.float32)


def load_tflite(model: YAMNet, path: Path = TFLITE) -> YAMNet:
    """Copy the weights of a YAMNet TFLite file into ``model`` (dequantised); returns it."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # the public API has no graph walk
    # Kernels reached through a DEQUANTIZE op are read from its int8 input.
    source = {
        int(op["outputs"][0]): int(op["inputs"][0]) for op in ops if op["op_name"] == "DEQUANTIZE"
    }
    wanted = ("CONV_2D", "DEPTHWISE_CONV_2D")
    convs = [op for op in ops if op["op_name"] in wanted]
    dense = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"][-1]  # the classifier
    modules = [m for m in model.layers.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(modules):
        raise ValueError(f"{path}: {len(convs)} convolutions, the network has {len(modules)}")

    def weights(op: dict) -> tuple[np.ndarray, np.ndarray]:
        kernel, bias = (int(i) for i in op["inputs"][1:3])
        return _dequantised(interpreter, source.get(kernel, kernel)), _dequantised(
            interpreter, bias
        )

    with torch.no_grad():
        for op, conv in zip(convs, modules, strict=True):
            kernel, bias = weights(op)
            if op["op_name"] == "DEPTHWISE_CONV_2D":  # (1, kh, kw, channels)
                kernel = kernel[0].transpose(2, 0, 1)[:, None]
            else:  # (out, kh, kw, in)
                kernel = kernel.transpose(0, 3, 1, 2)
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            conv.bias.copy_(torch.from_numpy(bias))
        kernel, bias = weights(dense)
        model.classifier.weight.copy_(torch.from_numpy(kernel))
        model.classifier.bias.copy_(torch.from_numpy(bias))
    return model


def pretrained(path: Path = TFLITE) -> YAMNet:
    """YAMNet with the AudioSet weights of ``path``, in evaluation mode."""
    return load_tflite(YAMNet(), path).eval()


def patches(mel: np.ndarray, hop: int = PATCH_HOP_FRAMES) -> np.ndarray:
    """Patches ``(n, 96, 64)`` of a log-mel spectrogram ``(64, frames)`` at ``hop`` frames."""
    if mel.shape[0] != YAMNET.n_mels:
        raise ValueError(f"expected {YAMNET.n_mels} mel bands, got {mel.shape[0]}")
    if mel.shape[1] < PATCH_FRAMES:
        return np.zeros((0, PATCH_FRAMES, YAMNET.n_mels), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(mel.T, PATCH_FRAMES, axis=0)[::hop]
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)


class CryPatches(nn.Module):
    """YAMNet whose "Baby cry, infant cry" logit scores each patch: ``(n, 96, 64)`` to ``(n,)``.

    The whole network is kept, so training can hold the other 520 AudioSet outputs to what the
    original model says (:meth:`forward` returns all 521 logits); the exported graph computes the
    cry logit alone.
    """

    def __init__(self, yamnet: YAMNet) -> None:
        super().__init__()
        self.yamnet = yamnet

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.yamnet(patches)

    def cry_logit(self, patches: torch.Tensor) -> torch.Tensor:
        return self.logit_of(self.yamnet.embed(patches))

    def logit_of(self, embedding: torch.Tensor) -> torch.Tensor:
        """The cry logit of patch embeddings ``(n, 1024)``."""
        row = self.yamnet.classifier
        return embedding @ row.weight[BABY_CRY] + row.bias[BABY_CRY]

    def patch_embedding(self, patches: torch.Tensor) -> torch.Tensor:
        """The 1024-d embedding of patches as the agent cuts them, ``(n, 64, 96)``."""
        return self.yamnet.embed(patches.transpose(1, 2))

    def patch_logit(self, patches: torch.Tensor) -> torch.Tensor:
        """:meth:`cry_logit` of patches as the agent cuts them, ``(n, 64, 96)``."""
        return self.logit_of(self.patch_embedding(patches))
