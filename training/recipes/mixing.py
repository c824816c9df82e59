"""New runs mixed from the weights of others, at the cost of one network: a uniform soup of runs
that differ only in their seed, and WiSE-FT's mix of a trained run with the pretrained weights
it started from."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from training import RecipeError
from training.recipes.runs import CHECKPOINT, RunSummary, read_summary, write_summary
from training.recipes.weights import load_trained, network


def interpolate(run_dir: Path, out: Path, alpha: float) -> RunSummary:
    """Write to ``out`` the weight-space ensemble of the model trained in ``run_dir`` (YAMNet
    fine-tuned or the mn04 student) and the pretrained one (WiSE-FT: ``(1 - alpha) *
    pretrained + alpha * trained``). Interpolating the weights keeps more of what the
    pretrained network knows about sounds our data lacks than the trained end point does.
    Batch-norm counters are the trained model's."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    trained = read_summary(run_dir)
    start = network(trained.arch).state_dict()
    tuned = load_trained(run_dir).state_dict()
    summary = replace(
        trained,
        recipe="wise",
        training=f"{alpha:g} x the trained + {1 - alpha:g} x the pretrained weights (WiSE-FT "
        f"weight-space ensemble) of a run {trained.training}",
        settings=trained.settings | {"wise_alpha": alpha},
        runs=[str(run_dir)],
    )
    return _write_mixed(out, [start, tuned], [1 - alpha, alpha], summary)


def soup(run_dirs: list[Path], out: Path) -> RunSummary:
    """Write to ``out`` the mean of the weights of ``run_dirs``, runs of one recipe that differ
    only in their seed (a uniform model soup): fine-tuned from the same pretrained weights, they
    lie in one basin, so their mean averages out what each seed learned by chance at the cost
    of one network. The summary is the recipe's, with the runs, their seeds and their wall
    time added up."""
    if len(run_dirs) < 2:
        raise RecipeError("a soup takes two or more runs")
    summaries = [read_summary(d) for d in run_dirs]
    recipes = [_recipe(s) for s in summaries]
    differ = sorted(
        k
        for k in set().union(*recipes)
        if len({json.dumps(r.get(k), sort_keys=True) for r in recipes}) > 1
    )
    if differ:
        raise RecipeError(
            "a soup takes runs of one recipe that differ only in their seed; "
            f"{', '.join(map(str, run_dirs))} differ in {', '.join(differ)}"
        )
    states = [load_trained(d).state_dict() for d in run_dirs]
    first = summaries[0]
    summary = replace(
        first,
        recipe="soup",
        training=f"a uniform soup (the mean of the weights) of {len(run_dirs)} runs that differ "
        f"only in their seed, each {first.training}",
        seeds=[seed for s in summaries for seed in s.seeds],
        best_epoch=None,
        history=[],
        runs=[str(d) for d in run_dirs],
        total_seconds=sum(s.total_seconds for s in summaries),
    )
    return _write_mixed(out, states, [1 / len(states)] * len(states), summary)


def _recipe(summary: RunSummary) -> dict[str, object]:
    """What runs of one recipe share: the network, the recipe and each of its settings."""
    shared = {"arch": summary.arch, "recipe": summary.recipe, "epochs": summary.epochs}
    return shared | summary.settings


def _write_mixed(
    out: Path, states: list[dict[str, torch.Tensor]], weights: list[float], summary: RunSummary
) -> RunSummary:
    """Save the weighted sum of ``states`` (integer buffers from the last) as the run ``out``."""
    mixed = {
        k: sum(w * s[k] for s, w in zip(states, weights, strict=True))
        if v.is_floating_point()
        else v
        for k, v in states[-1].items()
    }
    out.mkdir(parents=True, exist_ok=True)
    torch.save(mixed, out / CHECKPOINT)
    write_summary(out, summary)
    return summary
