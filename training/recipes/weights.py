"""A run's network and weights: a fresh network of an architecture, the trained weights of a run
folder, and the summary of a pretrained tagger taken as AudioSet left it (zero-shot)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from cry_mqtt.features import EFFICIENTAT, YAMNET
from training import RecipeError
from training.data.audio import WINDOW_SECONDS
from training.data.cache import Cache
from training.nets import efficientat, yamnet
from training.nets.cnn import build
from training.recipes.runs import CHECKPOINT, RunSummary, read_summary

TAGGERS = {"yamnet": (yamnet, YAMNET, "YAMNet"), "mn04": (efficientat, EFFICIENTAT, "mn04")}
"""Each pretrained AudioSet tagger's module, front end and name."""


def tagger_macs(arch: str) -> int:
    """Multiply-accumulates of the tagger ``arch`` for one window (its patches)."""
    module, params, _ = TAGGERS[arch]
    frames = params.frames_in(round(WINDOW_SECONDS * params.sample_rate))
    return module.MACS_PER_PATCH * module.PATCHES.count(frames)


def zero_shot(
    arch: str, cache: Cache, started: float, history: list[dict[str, float]] = ()
) -> RunSummary:
    """The summary of the pretrained tagger ``arch`` as AudioSet left it (``history``: its
    validation metrics as epoch 0, where measured)."""
    if arch not in TAGGERS:
        raise RecipeError(f"no pretrained tagger {arch!r} to take zero-shot: {sorted(TAGGERS)}")
    module, _, name = TAGGERS[arch]
    return RunSummary(
        arch=arch,
        recipe="zero-shot",
        training=f"none: {name}'s AudioSet weights unchanged (zero-shot)",
        params=sum(p.numel() for p in network(arch).parameters()),
        macs_per_window=tagger_macs(arch),
        epochs=0,
        seeds=[],
        best_epoch=None,
        total_seconds=round(time.perf_counter() - started, 1),
        torch_threads=torch.get_num_threads(),
        data=cache.summary["splits"],
        pretrained=module.PROVENANCE,
        history=list(history),
    )


def network(arch: str) -> nn.Module:
    """A fresh network of ``arch``: a pretrained tagger as AudioSet left it (as a patch network),
    or a CNN initialised at random."""
    if arch == "mn04":
        return efficientat.pretrained()
    if arch == "yamnet":
        return yamnet.CryPatches(yamnet.pretrained())
    return build(arch)


def load_trained(run_dir: Path) -> nn.Module:
    """The network of ``run_dir`` with its trained weights, in evaluation mode."""
    model = network(read_summary(run_dir).arch)
    model.load_state_dict(torch.load(run_dir / CHECKPOINT, map_location="cpu"))
    return model.eval()
