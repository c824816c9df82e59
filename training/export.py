"""ONNX export with the metadata the agent configures itself from: a window model (log-mel window
in, P(cry) out) or a streaming YAMNet or mn04 model (new patches and state in, P(cry) and state
out). The default threshold and the metadata's validation metrics come from the validation side
scored in PyTorch (:mod:`training.evaluation.validation`, :mod:`training.evaluation.metrics`)."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from cry_mqtt.config import THRESHOLD_MAX
from cry_mqtt.detector import DEFAULT_VOTES, Votes
from cry_mqtt.features import EFFICIENTAT, YAMNET, FeatureParams, logmel
from cry_mqtt.model import EMPTY_LOGIT, CryModel, ModelInfo, Patches
from cry_mqtt.recording import read_audio
from cry_mqtt.selftest import TEST_RECORDING
from training import RecipeError
from training.data.audio import PARAMS, WINDOW_SECONDS
from training.data.cache import Cache
from training.evaluation.metrics import MAX_FPR, compute_metrics
from training.evaluation.validation import Predict, Scored, score_validation
from training.nets import efficientat, yamnet
from training.nets.streaming import StreamingCry, predict_windows
from training.recipes.runs import read_summary
from training.recipes.weights import load_trained, network, zero_shot

OPSET = 18
MIN_THRESHOLD = 0.5
PARITY_TOLERANCE = 1e-4


class WindowProbability(nn.Module):
    """The exported graph of a window model: the trained network's logit through the sigmoid."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(logmel))


STREAMING = {
    "yamnet": (YAMNET, yamnet.PATCHES),
    "mn04": (EFFICIENTAT, efficientat.PATCHES),
}
"""Front end and patches of each streaming architecture (a pretrained AudioSet tagger)."""


def default_output(arch: str, run_dir: Path) -> Path:
    """Where export writes without ``--out``: ``cry-<arch>.onnx`` in the run's folder, never the
    packaged model (replacing that takes an ``--out`` that names it)."""
    return run_dir / f"cry-{arch}.onnx"


def load_window_model(run_dir: Path) -> WindowProbability:
    """The fitted window model of ``run_dir`` in eval mode."""
    return WindowProbability(load_trained(run_dir)).eval()


def torch_predict(model: WindowProbability, mels: np.ndarray, batch: int = 128) -> np.ndarray:
    """P(cry) from PyTorch for ``(n, n_mels, frames)`` windows."""
    with torch.no_grad():
        parts = [model(torch.from_numpy(mels[i : i + batch])) for i in range(0, len(mels), batch)]
    return torch.cat(parts).numpy()


def pick_threshold(
    negative_scores: np.ndarray,
    categories: list[str] | None = None,
    max_fpr: float = MAX_FPR,
) -> float:
    """The lowest threshold (``score >= threshold`` is crying) with at most ``max_fpr`` of the
    negatives above it, and with ``categories`` (one per score) also of each category's (a
    category of fewer than ``1 / max_fpr`` windows then has none above it), clipped to
    :data:`MIN_THRESHOLD`..:data:`~cry_mqtt.config.THRESHOLD_MAX` (the highest a user can set).

    It sits :data:`PARITY_TOLERANCE` above the highest rejected score, so that the window still
    counts as rejected when onnxruntime, not PyTorch, scores it.
    """
    groups = [negative_scores]
    if categories is not None:
        names = np.array(categories)
        groups += [negative_scores[names == name] for name in sorted(set(categories))]
    threshold = max(_lowest_threshold(group, max_fpr) for group in groups)
    return float(np.clip(threshold, MIN_THRESHOLD, THRESHOLD_MAX))


def validation_threshold(scored: Scored) -> float:
    """:func:`pick_threshold` of the validation negatives in ``scored``, by category."""
    negative = scored.windows.labels == 0
    categories = [c for c, n in zip(scored.windows.categories, negative, strict=True) if n]
    return pick_threshold(scored.scores[negative], categories)


def _lowest_threshold(negative_scores: np.ndarray, max_fpr: float) -> float:
    allowed = int(np.floor(max_fpr * len(negative_scores)))
    return float(np.sort(negative_scores)[::-1][allowed]) + PARITY_TOLERANCE


def data_summary(cache: Cache) -> dict[str, Any]:
    """Compact training-data description for the metadata."""
    return {
        split: {k: v for k, v in part.items() if k != "groups"}
        for split, part in cache.summary["splits"].items()
    }


def export(
    cache_dir: Path,
    run_dir: Path,
    out: Path,
    threshold: float | None = None,
    pool_top: int = 1,
    zero_shot_arch: str | None = None,
    votes: Votes = DEFAULT_VOTES,
    memory_similarity: float | None = None,
    presets: list[dict[str, Any]] | None = None,
) -> ModelInfo:
    """Write ``out`` from the checkpoint in ``run_dir`` or, with ``zero_shot_arch`` (``yamnet``,
    ``mn04``), from that pretrained tagger as AudioSet left it; the run's summary goes into the
    metadata (``run``), so the file describes itself to ``evaluate``. The threshold (unless
    given) and the validation metrics come from the validation split. A streaming model's window
    scores the mean of its ``pool_top`` highest patch logits; ``votes`` is the detector rule the
    file carries, ``memory_similarity`` the false-alarm memory's (:func:`learn_details`),
    ``presets`` the sensitivity presets (:mod:`training.night.presets`).
    Raises if the file, scored as the agent scores it, and PyTorch disagree by
    more than 1e-4."""
    trained = None if zero_shot_arch else read_summary(run_dir)
    cache = Cache(cache_dir)
    summary = trained or zero_shot(zero_shot_arch, cache, time.perf_counter())
    front_end = STREAMING.get(summary.arch)
    if front_end is not None:
        params, patches = front_end
        model = network(summary.arch).eval() if zero_shot_arch else load_trained(run_dir)
        predict = partial(predict_windows, model, patches=patches, top=pool_top)
    else:
        window_model = load_window_model(run_dir)
        predict = partial(torch_predict, window_model)
        params = PARAMS
    scored = score_validation(cache, predict, params)
    fpr_threshold = validation_threshold(scored)
    threshold = fpr_threshold if threshold is None else threshold
    version = f"{summary.arch}-{time.strftime('%Y%m%d.%H%M')}"
    details = {
        "arch": summary.arch,
        "run": {k: v for k, v in asdict(summary).items() if k != "data"},
        "training_data": data_summary(cache),
        "validation": compute_metrics(scored, threshold),
        "threshold_at_1pct_fpr": fpr_threshold,
        **learn_details(memory_similarity),
        **({"presets": presets} if presets else {}),
    }
    if front_end is not None:
        details |= {"pool_top": pool_top}
        info = streaming_info(params, patches, threshold, version, details, votes)
        write_streaming_onnx(model, info, out)
    else:
        info = ModelInfo(PARAMS, WINDOW_SECONDS, threshold, version, details, votes=votes)
        write_onnx(window_model, info, scored.windows.mels[:2], out)
    check_parity(out, predict, scored.windows.mels[:32])
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), threshold {threshold:.4f}")
    return info


def learn_details(similarity: float | None) -> dict[str, Any]:
    """The metadata that lets the agent learn a parent's false alarms (``learn``), if
    ``similarity`` is given."""
    return {} if similarity is None else {"learn": {"similarity": similarity}}


def regraph(
    like: Path,
    out: Path,
    memory_similarity: float | None = None,
    presets: list[dict[str, Any]] | None = None,
) -> ModelInfo:
    """Write ``out``: today's streaming graph around the pretrained tagger that the zero-shot
    model file ``like`` holds, with ``like``'s metadata as it is (no cache needed). The scores,
    and so the metrics it carries, must stay the same: :func:`check_parity` holds them to it on
    the bundled crying recording and on noise, and so refuses a file of trained weights. A
    ``memory_similarity`` and ``presets`` given join the metadata."""
    old = CryModel(like)
    if old.info.patches is None or old.info.details.get("arch") not in STREAMING:
        raise RecipeError(f"{like}: --like takes a zero-shot yamnet or mn04 model file")
    details = old.info.details | learn_details(memory_similarity)
    info = replace(old.info, details=details | ({"presets": presets} if presets else {}))
    write_streaming_onnx(network(info.details["arch"]).eval(), info, out)
    check_parity(out, old.predict, parity_windows(info), str(like))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) with the metadata of {like}")
    return info


def parity_windows(info: ModelInfo) -> np.ndarray:
    """Log-mel windows of the bundled crying recording (turned round by every quarter second,
    so that the cries fall on every patch) and of noise."""
    p = info.features
    samples = p.samples_for(info.window_frames)
    crying = np.resize(read_audio(TEST_RECORDING, p.sample_rate), samples)
    noise = np.random.default_rng(0).normal(0, 0.05, samples).astype(np.float32)
    cuts = [np.roll(crying, shift) for shift in range(0, samples, p.sample_rate // 4)] + [noise]
    return np.stack([logmel(cut, p)[:, : info.window_frames] for cut in cuts])


def write_onnx(model: WindowProbability, info: ModelInfo, example: np.ndarray, out: Path) -> None:
    """Export a window ``model`` (dynamic batch) with ``info`` as metadata to ``out``."""
    _save(
        torch.onnx.export(
            model,
            (torch.from_numpy(example),),
            input_names=["logmel"],
            output_names=["p_cry"],
            opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            dynamo=True,
        ),
        info,
        out,
    )


def streaming_info(
    features: FeatureParams,
    patches: Patches,
    threshold: float,
    version: str,
    details: dict[str, Any],
    votes: Votes = DEFAULT_VOTES,
) -> ModelInfo:
    """Metadata of a streaming model: its front end, 7-s window and patches."""
    return ModelInfo(features, WINDOW_SECONDS, threshold, version, details, patches, votes)


def write_streaming_onnx(model: nn.Module, info: ModelInfo, out: Path) -> None:
    """Export a patch network (``patch_logit``) as a streaming graph (:class:`StreamingCry`)
    with ``info`` to ``out``."""
    assert info.patches is not None
    count = info.window_patches
    example = (
        torch.zeros(2, info.features.n_mels, info.patches.frames),
        torch.full((count,), EMPTY_LOGIT),
    )
    _save(
        torch.onnx.export(
            StreamingCry(model, count, info.details.get("pool_top", 1)).eval(),
            example,
            input_names=["patches", "state"],
            output_names=["prob", "new_state", "embedding"],
            opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("n", min=1, max=count)}, None),
            external_data=False,
            dynamo=True,
        ),
        info,
        out,
    )


def _save(program: torch.onnx.ONNXProgram, info: ModelInfo, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    proto = program.model_proto
    store_int8_weights(proto)
    onnx.helper.set_model_props(proto, info.to_metadata())
    onnx.checker.check_model(proto)
    onnx.save(proto, out)


def int8_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``weight`` as int8 values and one scale per output channel (row), if every row is an
    exact multiple of its scale, as the dequantised TFLite kernels are; else None."""
    rows = weight.reshape(len(weight), -1).astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    steps = np.arange(127, 0, -1)  # largest |int8| value in a row, the finest scale first
    scales = np.ones(len(rows))
    for i, (row, top) in enumerate(zip(rows, peak, strict=True)):
        if top == 0:
            continue
        q = row[None, :] * steps[:, None] / top
        exact = np.abs(q - np.round(q)).max(axis=1) <= INT8_TOLERANCE
        if not exact.any():
            return None
        scales[i] = top / steps[np.argmax(exact)]
    values = np.round(rows / scales[:, None]).astype(np.int8).reshape(weight.shape)
    return values, scales.astype(np.float32)


INT8_TOLERANCE = 1e-3
"""Largest distance of a weight from a multiple of its scale, in scales, that still counts as
exact (the float32 rounding of the dequantised values)."""


def store_int8_weights(proto: onnx.ModelProto) -> None:
    """Store in place every weight matrix of ``proto`` that is int8 values times a per-channel
    scale (YAMNet's, read from the int8 TFLite file) as just that, dequantised by the graph:
    the file is a quarter of the size and computes the same. Fine-tuned weights stay float."""
    graph = proto.graph
    for tensor in list(graph.initializer):
        weight = onnx.numpy_helper.to_array(tensor)
        packed = int8_rows(weight) if weight.ndim > 1 and weight.size > 1000 else None
        if packed is None:
            continue
        values, scales = packed
        name = tensor.name
        graph.initializer.remove(tensor)
        graph.initializer.extend(
            [
                onnx.numpy_helper.from_array(values, f"{name}.int8"),
                onnx.numpy_helper.from_array(scales, f"{name}.scale"),
                onnx.numpy_helper.from_array(np.zeros(len(scales), np.int8), f"{name}.zero"),
            ]
        )
        node = onnx.helper.make_node(
            "DequantizeLinear", [f"{name}.int8", f"{name}.scale", f"{name}.zero"], [name], axis=0
        )
        graph.node.insert(0, node)


def check_parity(
    path: Path, predict: Predict, mels: np.ndarray, reference: str = "PyTorch"
) -> float:
    """Max abs difference between the file as the agent runs it and ``predict`` (PyTorch's, or
    another file's) on ``mels``; raises above 1e-4."""
    diff = float(np.max(np.abs(CryModel(path).predict(mels) - predict(mels))))
    if not diff <= PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and {reference} differ by {diff:.2e} (> {PARITY_TOLERANCE})")
    print(f"ONNX/{reference} parity on {len(mels)} windows: max abs diff {diff:.2e}")
    return diff
