"""The model card's account of the model: what it is, its size and cost, how its weights came
about (the model table's rows) and the training log."""

from __future__ import annotations

import os
from typing import Any

from training.evaluation.card.results import threshold_origin


def model_section(evaluation: dict[str, Any], fit_summary: dict[str, Any]) -> list[str]:
    """The title, what the model does, and the table of its size, cost and training."""
    return [
        f"# Model card: {evaluation['model'].split('/')[-1]} ({evaluation['version']})",
        "",
        _intro(evaluation, fit_summary),
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
        *_training_rows(fit_summary),
        *([f"| note | {fit_summary['note']} |"] if "note" in fit_summary else []),
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
    '"Baby cry, infant cry" unit (class 23) is the cry output{training}. Front end: '
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


def _intro(evaluation: dict[str, Any], fit_summary: dict[str, Any]) -> str:
    top = evaluation.get("pool_top", 1)
    pooling = "maximum cry logit" if top == 1 else f"mean of the {top} highest cry logits"
    if evaluation["arch"] == "yamnet":
        return YAMNET_INTRO.format(pooling=pooling)
    if evaluation["arch"] == "mn04":
        training = (
            ", unchanged (zero-shot)"
            if not fit_summary["epochs"]
            else ", fine-tuned on our data by distillation from two AudioSet teachers, YAMNet "
            "(Apache-2.0) and mn04 itself (the training rows below)"
        )
        return MN04_INTRO.format(pooling=pooling, training=training)
    return CNN_INTRO


def _training_rows(fit_summary: dict[str, Any]) -> list[str]:
    """The model table's rows on how the weights came about."""
    f = fit_summary
    if f["arch"] == "mn04":
        return _student_rows(f)
    cores = _cores(f)
    if f["arch"] != "yamnet":
        return [
            f"| fit wall time | {f['total_seconds'] / 60:.1f} min in all "
            f"({f['fit_seconds'] / 60:.1f} min one-cycle, rest lr_find and setup) {cores} |",
            f"| training | {f['epochs']} epochs one-cycle, lr_max {f['lr_max']:.2e}, batch "
            f"{f['batch_size']}, {f['train_windows_per_epoch']} windows per epoch, mixup "
            f"{f['mixup_alpha']}, seed {f['seed']}, best epoch {f['best_epoch']} (lowest valid "
            f"loss) kept{_weights(f)} |",
        ]
    if not f["epochs"]:
        return ["| training | none: YAMNet's AudioSet weights unchanged (zero-shot) |"]
    return [
        f"| fit wall time | {f['total_seconds'] / 60:.1f} min in all {cores} |",
        f"| training | top {f['trained_layers']} of 14 layers and the classifier fine-tuned "
        f"(the rest frozen), {f['epochs']} epochs one-cycle, lr_max {f['lr_max']:.2e}, batch "
        f"{f['batch_size']}, {f['train_windows_per_epoch']} windows per epoch, seed {f['seed']}, "
        "last epoch kept; loss: cross-entropy of the window's max-pooled cry logit + "
        f"{f['forgetting_weight']:g} x cross-entropy of the other 520 outputs against the "
        "original network's on the same patches (learning without forgetting) + "
        f"{f['drift_weight']:g} x squared distance to the pretrained weights (L2-SP; "
        f"{f['drift']:.3g} at the end) |",
        *_wise_row(f),
    ]


def _cores(f: dict[str, Any]) -> str:
    return f"on {os.cpu_count()} CPU cores, {f['torch_threads']} torch threads"


def _student_rows(f: dict[str, Any]) -> list[str]:
    """The model table's rows for mn04: zero-shot, one distilled run or a soup of runs."""
    if not f["epochs"]:
        return ["| training | none: mn04's AudioSet weights unchanged (zero-shot) |"]
    if "soup" in f:
        kept = (
            f"a uniform soup (the mean of the weights) of {len(f['soup'])} runs with seeds "
            f"{', '.join(map(str, f['seed']))}, each kept at its epoch with the best validation "
            "ROC-AUC"
        )
        wall = f"{f['total_seconds'] / 60:.1f} min for the {len(f['soup'])} runs"
    else:
        kept = f"seed {f['seed']}, epoch {f['best']['epoch']} kept (best validation ROC-AUC)"
        wall = f"{f['total_seconds'] / 60:.1f} min in all {_cores(f)}"
    return [
        f"| fit wall time | {wall} |",
        "| training | distilled with fastai (`python -m training distil`): the stem, the first "
        f"six blocks and every batch-norm statistic frozen, {f['epochs']} epochs one-cycle, "
        f"lr_max {f['lr_max']:.2e}, batch {f['batch_size']}, {f['train_windows_per_epoch']} "
        f"crops of 3 s per epoch, {f['category_balance']:.0%} of the negatives drawn with equal "
        "weight per category; loss: cross-entropy of the crying logit against the label "
        f"softened {f['softening']:g} toward the fused teachers (the sigmoid of YAMNet's plus "
        f"mn04's crying logit on the same crop) + {f['forgetting_weight']:g} x cross-entropy of "
        "the other 526 outputs against the frozen mn04's on every patch (learning without "
        f"forgetting); {kept} |",
        *_wise_row(f),
    ]


def _wise_row(fit_summary: dict[str, Any]) -> list[str]:
    alpha = fit_summary.get("wise_alpha")
    if alpha is None:
        return []
    return [
        f"| weights | {alpha:g} x the fine-tuned + {1 - alpha:g} x the pretrained (WiSE-FT "
        "weight-space ensemble; the training log below is the fine-tuning's) |"
    ]


def training_log(fit_summary: dict[str, Any]) -> list[str]:
    """The per-epoch table; none for a model that was not trained (zero-shot) or a soup."""
    if not fit_summary["epochs"] or "history" not in fit_summary:
        return []
    return [
        "## Training log (per epoch; balanced accuracy at 0.5)",
        "",
        "| epoch | train loss | valid loss | bal. acc | ROC-AUC |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['valid_loss']:.4f} "
            f"| {h['balanced_acc']:.4f} | {h['roc_auc']:.4f} |"
            for h in fit_summary["history"]
        ),
        "",
    ]


def _weights(fit_summary: dict[str, Any]) -> str:
    decay = fit_summary.get("weight_average")
    return f", as its weight average (decay {decay} per step)" if decay else ""
