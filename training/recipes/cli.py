"""The training recipes' steps: ``fit`` (the CNN), ``finetune`` (YAMNet), ``distil`` (the mn04
student), ``wise`` and ``soup`` (weights mixed from runs), ``crossval`` (the fit recipe,
cross-validated)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training import REPO_ROOT

if TYPE_CHECKING:
    from training.recipes.runs import RunSummary


def add_parsers(steps: Any) -> None:
    """The training steps of ``python -m training``."""
    fit = steps.add_parser("fit", help="train with fastai (lr_find + one-cycle)")
    _add_fit_options(fit)
    fit.set_defaults(run=_fit)

    finetune = steps.add_parser(
        "finetune", help="fine-tune AudioSet-pretrained YAMNet without forgetting (runs/yamnet)"
    )
    finetune.add_argument("--epochs", type=int, default=4, help="0: YAMNet unchanged")
    finetune.add_argument("--batch-size", type=int, default=16)
    finetune.add_argument("--lr", type=float, default=1e-4, help="max learning rate")
    finetune.add_argument("--workers", type=int, default=1, help="data loader processes")
    finetune.add_argument("--trained-layers", type=int, default=2, help="top layers trained")
    finetune.add_argument(
        "--forgetting", type=float, default=1.0, help="weight of the other 520 outputs' loss"
    )
    finetune.add_argument(
        "--drift", type=float, default=1e-3, help="L2 weight toward the pretrained weights"
    )
    finetune.set_defaults(run=_finetune)

    distil = steps.add_parser(
        "distil",
        help="train the mn04 student, distilled from mn04 and YAMNet (runs/mn04)",
    )
    distil.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="2-3 minutes each on two cores; 0 saves mn04 as AudioSet left it (zero-shot)",
    )
    distil.add_argument("--batch-size", type=int, default=16)
    distil.add_argument("--lr", type=float, default=2e-4, help="max learning rate")
    distil.add_argument("--workers", type=int, default=1, help="data loader processes")
    distil.add_argument(
        "--softening",
        type=float,
        default=0.25,
        help="share of the crying target taken from the fused teachers instead of the label",
    )
    distil.add_argument(
        "--forgetting", type=float, default=1.0, help="weight of the other 526 outputs' loss"
    )
    distil.add_argument(
        "--category-balance",
        type=float,
        default=0.5,
        help="share of negative windows drawn with equal weight per category (the rest by length)",
    )
    distil.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="share of negative windows played 0.7-1.5 times as fast (pitch and tempo)",
    )
    distil.set_defaults(run=_distil)

    wise = steps.add_parser(
        "wise",
        help="mix trained and pretrained weights (WiSE-FT) of a yamnet or mn04 run into a new run",
    )
    wise.add_argument("--alpha", type=float, default=0.5, help="share of the fine-tuned weights")
    wise.add_argument("--source", type=Path, help="fine-tuned run (default: <runs>/yamnet)")
    wise.add_argument("--out", type=Path, help="new run (default: <runs>/yamnet-wise<alpha>)")
    wise.set_defaults(run=_wise)

    soup = steps.add_parser(
        "soup", help="average the weights of runs of one recipe with different seeds into a new run"
    )
    soup.add_argument("sources", type=Path, nargs="+", help="yamnet or mn04 runs")
    soup.add_argument("--out", type=Path, required=True, help="new run")
    soup.set_defaults(run=_soup)

    crossval = steps.add_parser(
        "crossval", help="grouped k-fold cross-validation of the fit recipe"
    )
    crossval.add_argument("--folds", type=int, default=5)
    _add_fit_options(crossval)
    crossval.add_argument(
        "--report", action="store_true", help="write docs/crossval.md and its listening list"
    )
    crossval.add_argument("--out", type=Path, help="folds and results (default: <runs>/crossval)")
    crossval.add_argument("--docs", type=Path, default=REPO_ROOT / "docs")
    crossval.set_defaults(run=_crossval)


def _fit(args: argparse.Namespace) -> None:
    from training.data.cache import Cache
    from training.recipes.fit import fit

    _report(fit(Cache(args.runs / "cache"), args.runs / args.arch, **_fit_options(args)))


def _finetune(args: argparse.Namespace) -> None:
    from training.data.cache import Cache
    from training.recipes.finetune import fit_yamnet

    summary = fit_yamnet(
        Cache(args.runs / "cache"),
        args.runs / "yamnet",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        seed=args.seed,
        trained_layers=args.trained_layers,
        forgetting=args.forgetting,
        drift=args.drift,
    )
    _report(summary)


def _distil(args: argparse.Namespace) -> None:
    from training.data.cache import Cache
    from training.recipes.distil import fit_student

    summary = fit_student(
        Cache(args.runs / "cache"),
        args.runs / "mn04",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        seed=args.seed,
        softening=args.softening,
        forgetting=args.forgetting,
        category_balance=args.category_balance,
        speed=args.speed,
    )
    _report(summary)


def _report(summary: RunSummary) -> None:
    """One line on a finished run: its size, time and the kept epoch's validation metrics."""
    kept = next((h for h in summary.history if h["epoch"] == summary.best_epoch), None)
    metrics = kept or (summary.history[-1] if summary.history else {})
    print(
        f"{summary.arch} ({summary.recipe}): {summary.params:,} params, "
        f"{summary.macs_per_window / 1e6:.1f} MMAC/window, {summary.epochs} epochs in "
        f"{summary.total_seconds / 60:.1f} min; epoch {metrics.get('epoch', '-')}: "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch")
    )


def _wise(args: argparse.Namespace) -> None:
    from training.recipes.mixing import interpolate

    out = args.out or args.runs / f"yamnet-wise{args.alpha:g}"
    interpolate(args.source or args.runs / "yamnet", out, args.alpha)
    print(f"{out}: pretrained and fine-tuned weights mixed at alpha {args.alpha:g}")


def _soup(args: argparse.Namespace) -> None:
    from training.recipes.mixing import soup

    soup(args.sources, args.out)
    print(f"{args.out}: the mean of the weights of {len(args.sources)} runs")


def _crossval(args: argparse.Namespace) -> None:
    from training.data.cache import Cache
    from training.evaluation.crossval import crossval, write_report

    settings = {"folds": args.folds, **_fit_options(args)}
    report = crossval(Cache(args.runs / "cache"), args.out or args.runs / "crossval", settings)
    pooled = {k: v for k, v in report["pooled"].items() if k != "missed_by_group"}
    print(json.dumps({"mean": report["mean"], "std": report["std"], "pooled": pooled}, indent=1))
    if args.report:
        print(f"{write_report(report, args.docs)} written")


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`training.recipes.fit.fit` given on the command line."""
    return {
        "arch": args.arch,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "workers": args.workers,
        "seed": args.seed,
        "lr_find_iters": args.lr_find_iters,
        "weight_average": args.weight_average,
    }


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, help="max learning rate (default: lr_find)")
    parser.add_argument("--lr-find-iters", type=int, default=60, help="lr_find mini-batches")
    parser.add_argument("--workers", type=int, default=1, help="data loader processes")
    parser.add_argument(
        "--weight-average",
        type=float,
        default=0.0,
        help="validate and keep a weight average with this decay per step, e.g. 0.99 "
        "(default 0: the raw weights)",
    )
