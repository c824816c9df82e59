"""The model card's account of the model: what it is, its size and cost, how its weights came
about (the model table's rows) and the training log."""

from __future__ import annotations

import os
from typing import Any

from training.evaluation.card.results import threshold_origin
from training.recipes.runs import RunSummary


def model_section(evaluation: dict[str, Any], run: RunSummary) -> list[str]:
    """The title, what the model does, and the table of its size, cost and training."""
    top = evaluation.get("pool_top", 1)
    pooling = "maximum cry logit" if top == 1 else f"mean of the {top} highest cry logits"
    return [
        f"# Model card: {evaluation['model'].split('/')[-1]} ({evaluation['version']})",
        "",
        INTROS[run.arch].format(pooling=pooling),
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | `{evaluation['arch']}` |",
        f"| parameters | {evaluation['params']:,} |",
        f"| MACs per 7-s window | {evaluation['macs_per_window'] / 1e6:,.1f} M |",
        f"| ONNX file | {evaluation['file_mb']:.2f} MB |",
        f"| onnxruntime, 1 thread, batch 1 | {evaluation['ms_per_window']:.2f} ms per window |",
        f"| default threshold | {evaluation['metrics']['threshold']:.4f} "
        f"({threshold_origin(evaluation)}) |",
        "| detector votes | ON when {trigger_windows} of the last {of_windows} windows, scored "
        "every {hop_seconds:g} s, reach the threshold |".format(**evaluation["votes"]),
        *([presets_row(evaluation["presets"])] if evaluation.get("presets") else []),
        *([_memory_row(evaluation)] if evaluation.get("learn") else []),
        *([f"| starting weights | {run.pretrained} |"] if run.pretrained else []),
        f"| training | {run.training}{_seeds(run)} |",
        *([f"| fit wall time | {_wall(run)} |"] if run.trained else []),
        "",
    ]


STREAMING_GRAPH = (
    "The graph is streaming: it takes the patches completed since the previous call and the "
    "window's per-patch logits so far, and returns P(cry) and the new logits, so the agent runs "
    "the network only on new audio. The ONNX metadata key `cry_mqtt` holds the feature "
    "parameters, patching, window length, default threshold and detector votes, training-data "
    "summary and the validation metrics below."
)
YAMNET_INTRO = (
    "Scores 7-second windows of 16 kHz audio for infant crying with YAMNet, Google's AudioSet "
    "classifier (MobileNet v1, 521 classes; tensorflow/models `research/audioset/yamnet`, "
    "Apache-2.0), whose weights are read from `../shared/data/pretrained/yamnet/` (TFLite "
    'conversions with int8 weights, dequantised) and whose "Baby cry, infant cry" unit (class '
    "20) is the cry output. Front end: YAMNet's (25-ms window, 10-ms hop, 512-point FFT magnitude, "
    "64 HTK mel bands 125-7500 Hz, log(mel + 0.001); `cry_mqtt.features.YAMNET`). A window's "
    "P(cry) is the sigmoid of the {pooling} over its 13 patches of 0.96 s at a 0.48-s hop. "
    + STREAMING_GRAPH
)
MN04_INTRO = (
    "Scores 7-second windows of 32 kHz audio for infant crying with EfficientAT mn04_as "
    "(fschmid56/EfficientAT, MIT; a MobileNetV3 at width 0.4 trained on AudioSet, 527 classes), "
    "whose weights are read from `../shared/data/pretrained/efficientat/` and whose "
    '"Baby cry, infant cry" unit (class 23) is the cry output. Front end: '
    "EfficientAT's (pre-emphasis 0.97, 25-ms symmetric Hann window, 10-ms hop, 1024-point FFT "
    "power, 128 mel bands to 15 kHz, log(mel + 1e-5); `cry_mqtt.features.EFFICIENTAT`). A "
    "window's P(cry) is the sigmoid of the {pooling} over its 12 patches of 1 s at a 0.5-s hop. "
    + STREAMING_GRAPH
)
CNN_INTRO = (
    "Scores 7-second windows of 16 kHz audio for infant crying. Input: log-mel dB "
    "`(batch, 128, 215)` from `cry_mqtt.features.logmel` (n_fft 2048, hop 512, 0-8 kHz, frames "
    "not centred); output: P(cry) `(batch,)`. Per-window level normalisation and the sigmoid "
    "are inside the graph; the ONNX metadata key `cry_mqtt` holds the feature parameters, "
    "window length, default threshold and detector votes, training-data summary and the metrics "
    "below."
)


INTROS = {"yamnet": YAMNET_INTRO, "mn04": MN04_INTRO, "cnn": CNN_INTRO, "resnet34": CNN_INTRO}
"""What each network is and how it scores a window (``{pooling}``: the streaming files' pooling)."""


def presets_row(presets: list[dict[str, Any]]) -> str:
    """The sensitivity presets the file offers Home Assistant's select, most sensitive first."""
    offered = "; ".join(
        f"{p['name']}: {p['threshold']:g}, {p['trigger_windows']} of {p['of_windows']}"
        for p in presets
    )
    return (
        f"| sensitivity presets | {offered} (chosen on the tuning night's sweep; "
        "`docs/sensitivity-presets.md`) |"
    )


def _memory_row(evaluation: dict[str, Any]) -> str:
    """What the file gives the agent's "That was not crying" memory."""
    return (
        f'| "not crying" memory | an embedding of {evaluation["embedding_size"]:,} values per '
        "window (the last hidden layer of the patches its score pools, their mean at unit "
        "length); a window is like a remembered false alarm "
        f"at cosine similarity >= {evaluation['learn']['similarity']:g} "
        "(`python -m training memory`; `docs/not-crying-memory.md`) |"
    )


def _seeds(run: RunSummary) -> str:
    seeds = ", ".join(map(str, run.seeds))
    kept = f", epoch {run.best_epoch}" if run.best_epoch is not None else ""
    return f" (seed{'s' if len(run.seeds) > 1 else ''} {seeds}{kept})" if seeds else ""


def _wall(run: RunSummary) -> str:
    minutes = f"{run.total_seconds / 60:.1f} min"
    if len(run.runs) > 1:
        return f"{minutes} for the {len(run.runs)} runs"
    return f"{minutes} in all on {os.cpu_count()} CPU cores, {run.torch_threads} torch threads"


def training_log(run: RunSummary) -> list[str]:
    """The per-epoch table of a run that trained (none for zero-shot or a soup)."""
    if not run.trained or not run.history:
        return []
    return [
        "## Training log (per epoch; balanced accuracy at 0.5)",
        "",
        "| epoch | train loss | valid loss | bal. acc | ROC-AUC |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['valid_loss']:.4f} "
            f"| {h['balanced_acc']:.4f} | {h['roc_auc']:.4f} |"
            for h in run.history
        ),
        "",
    ]
