"""Command line: ``python -m training STEP``, the steps of the recipe, its evaluation and the night
test (``--help`` lists them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cry_mqtt.detector import DEFAULT_VOTES, Votes, votes_fit
from cry_mqtt.model import ModelError
from training.data import DEFAULT_DATA, DEFAULT_RUNS, REPO_ROOT, RecipeError
from training.night import add_parser as add_night_parser


def _prepare(args: argparse.Namespace) -> None:
    from training.data import build_cache, discover, limit_items
    from training.split import grouped_split

    data = None if args.no_default_data else args.data
    items = discover(data, args.esc50, args.positives, args.negatives, args.debian)
    if args.limit:
        items = limit_items(items, args.limit)
    if not items:
        where = "no --data folder" if data is None else f"{data} (option --data)"
        raise RecipeError(
            f"no recordings found in {where}: it needs donateacry-corpus/ and "
            "negatives/manifest.csv (or --positives/--negatives/--esc50/--debian)"
        )
    grouped_split(items, args.valid_fraction, args.seed)
    summary = build_cache(items, args.runs / "cache")
    brief = {
        split: {k: v for k, v in part.items() if k != "sources"}
        for split, part in summary["splits"].items()
    }
    print(json.dumps(brief, indent=2))
    print(f"{len(summary['skipped'])} files skipped: {summary['skipped'][:5]}")
    print(f"cache written to {args.runs / 'cache'} (summary.json: every source and licence)")


def _fetch_debian(args: argparse.Namespace) -> None:
    from subprocess import CalledProcessError

    from training.debian import PACKAGES, fetch

    try:
        roots = fetch(args.dest, args.packages or list(PACKAGES))
    except CalledProcessError as exc:
        raise RecipeError(
            f"`{' '.join(exc.cmd[:2])}` failed: it needs Debian bookworm's package lists "
            "(`apt-get update`)"
        ) from None
    print("python -m training prepare " + " ".join(f"--debian {root}" for root in roots))


def _fit(args: argparse.Namespace) -> None:
    from training.data import Cache
    from training.fit import fit

    summary = fit(Cache(args.runs / "cache"), args.runs / args.arch, **_fit_options(args))
    best = summary["best"]
    print(
        f"{args.arch}: {summary['params']:,} params, {summary['macs_per_window'] / 1e6:.1f} MMAC"
        f"/window, fit {summary['fit_seconds'] / 60:.1f} min "
        f"(total {summary['total_seconds'] / 60:.1f} min); best epoch {best['epoch']}: "
        + ", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "epoch")
    )


def _finetune(args: argparse.Namespace) -> None:
    from training.data import Cache
    from training.finetune import fit_yamnet

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
    print(
        f"yamnet: {summary['epochs']} epochs in {summary['total_seconds'] / 60:.1f} min, "
        f"drift {summary['drift']:.3g}; last: "
        + ", ".join(f"{k} {v:.4f}" for k, v in summary["best"].items() if k != "epoch")
    )


def _distil(args: argparse.Namespace) -> None:
    from training.data import Cache
    from training.distil import fit_student

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
    print(
        f"mn04: {summary['epochs']} epochs in {summary['total_seconds'] / 60:.1f} min; best: "
        + ", ".join(f"{k} {v:.4f}" for k, v in summary["best"].items())
    )


def _wise(args: argparse.Namespace) -> None:
    from training.finetune import interpolate

    out = args.out or args.runs / f"yamnet-wise{args.alpha:g}"
    interpolate(args.source or args.runs / "yamnet", out, args.alpha)
    print(f"{out}: pretrained and fine-tuned weights mixed at alpha {args.alpha:g}")


def _soup(args: argparse.Namespace) -> None:
    from training.finetune import soup

    soup(args.sources, args.out)
    print(f"{args.out}: the mean of the weights of {len(args.sources)} runs")


def _crossval(args: argparse.Namespace) -> None:
    from training.data import Cache
    from training.evaluation.crossval import crossval, write_report

    settings = {"folds": args.folds, **_fit_options(args)}
    report = crossval(Cache(args.runs / "cache"), args.out or args.runs / "crossval", settings)
    pooled = {k: v for k, v in report["pooled"].items() if k != "missed_by_group"}
    print(json.dumps({"mean": report["mean"], "std": report["std"], "pooled": pooled}, indent=1))
    if args.report:
        print(f"{write_report(report, args.docs)} written")


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`training.fit.fit` given on the command line."""
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


def _export(args: argparse.Namespace) -> None:
    from training.export import default_output, export

    run_dir = args.run_dir or args.runs / args.arch
    out = args.out or default_output(args.arch, run_dir)
    zero_shot = args.arch if args.zero_shot else None
    votes = Votes(*args.votes, args.hop)
    info = export(
        args.runs / "cache", run_dir, out, args.threshold, args.pool_top, zero_shot, votes
    )
    print(json.dumps(json.loads(info.to_metadata()["cry_mqtt"]), indent=2))


def _evaluate(args: argparse.Namespace) -> None:
    from training.evaluation.evaluate import evaluate
    from training.export import default_output

    model = args.model or default_output(args.arch, args.runs / args.arch)
    independent = [json.loads(path.read_text()) for path in args.independent]
    nights = [json.loads(path.read_text()) for path in args.night]
    report = evaluate(args.runs / "cache", model, args.runs, independent, nights)
    print(report)


def _independent(args: argparse.Namespace) -> None:
    from training.evaluation.independent import measure_models

    measure_models(
        args.model,
        args.saved,
        args.data,
        args.cache or args.runs / "independent",
        args.out or args.runs / "independent-results",
        args.threshold,
        args.limit_per_label,
        args.fuse,
        args.report,
    )


def _audit(args: argparse.Namespace) -> None:
    from training.audit import contact_sheets
    from training.data import Cache

    out = args.out or args.runs / "audit"
    sheets = contact_sheets(Cache(args.runs / "cache"), out, args.source, args.per_sheet)
    print(f"{len(sheets)} sheets and index.csv written to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument(
        "--runs", type=Path, default=DEFAULT_RUNS, help="cache and checkpoints (default: runs/)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--arch",
        choices=("cnn", "resnet34", "yamnet", "mn04"),
        default="cnn",
        help="model to export or evaluate (yamnet: the output of finetune; mn04: EfficientAT "
        "mn04_as, the output of distil, zero-shot with distil --epochs 0 or export --zero-shot)",
    )
    steps = parser.add_subparsers(dest="step", required=True)

    prepare = steps.add_parser("prepare", help="decode, split 90:10 by source, cache")
    prepare.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    prepare.add_argument("--no-default-data", action="store_true", help="ignore --data")
    prepare.add_argument("--esc50", type=Path, help="ESC-50 root (audio/, meta/esc50.csv)")
    prepare.add_argument(
        "--positives", type=Path, action="append", default=[], help="folder or manifest .csv"
    )
    prepare.add_argument(
        "--negatives", type=Path, action="append", default=[], help="folder or manifest .csv"
    )
    prepare.add_argument(
        "--debian",
        type=Path,
        action="append",
        default=[],
        help="a Debian package unpacked with dpkg -x (repeatable; see fetch-debian)",
    )
    prepare.add_argument("--valid-fraction", type=float, default=0.1)
    prepare.add_argument("--limit", type=int, default=0, help="files per source/category")
    prepare.set_defaults(run=_prepare)

    fetch_debian = steps.add_parser(
        "fetch-debian", help="apt-get download and dpkg -x the Debian packages for training"
    )
    fetch_debian.add_argument("dest", type=Path, help="folder for the .debs and unpacked packages")
    fetch_debian.add_argument("packages", nargs="*", help="package names (default: all)")
    fetch_debian.set_defaults(run=_fetch_debian)

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

    export = steps.add_parser("export", help="ONNX with metadata, parity check")
    export.add_argument(
        "--run-dir", type=Path, help="checkpoint and fit summary (default: <runs>/<arch>)"
    )
    export.add_argument(
        "--out", type=Path, help="ONNX file (default: cry-<arch>.onnx in the run's folder)"
    )
    export.add_argument(
        "--threshold",
        type=float,
        help="default threshold to ship (e.g. the night sweep's pick); "
        "default: the lowest with <= 1%% false positives on validation negatives",
    )
    export.add_argument(
        "--votes",
        type=int,
        nargs=2,
        metavar=("K", "N"),
        default=[DEFAULT_VOTES.trigger_windows, DEFAULT_VOTES.of_windows],
        help="detector rule the file carries: ON when K of the last N windows reach the "
        "threshold (e.g. the night sweep's pick; default: %(default)s)",
    )
    export.add_argument(
        "--hop",
        type=float,
        default=DEFAULT_VOTES.hop_seconds,
        help="the scoring hop in seconds the votes were chosen at (default: %(default)s); the "
        "agent warns when detection.hop_seconds differs",
    )
    export.add_argument(
        "--pool-top",
        type=int,
        default=1,
        help="yamnet, mn04: a window scores the mean of its N highest patches (default 1: the "
        "maximum)",
    )
    export.add_argument(
        "--zero-shot",
        action="store_true",
        help="yamnet, mn04: the pretrained tagger's own crying output, no run folder needed",
    )
    export.set_defaults(run=_export)

    evaluate = steps.add_parser("evaluate", help="metrics, plots and model card")
    evaluate.add_argument(
        "--model", type=Path, help="ONNX file (default: <runs>/<arch>/cry-<arch>.onnx)"
    )
    evaluate.add_argument(
        "--independent",
        type=Path,
        action="append",
        default=[],
        help="a result of python -m training independent for the card (repeatable)",
    )
    evaluate.add_argument(
        "--night",
        type=Path,
        action="append",
        default=[],
        help="a night.json of python -m training night for the card (repeatable)",
    )
    evaluate.set_defaults(run=_evaluate)

    independent = steps.add_parser(
        "independent", help="measure models on the independent set (sources never trained on)"
    )
    independent.add_argument(
        "--model", type=Path, action="append", default=[], help="model to score (repeatable)"
    )
    independent.add_argument(
        "--saved", type=Path, action="append", default=[], help="a saved result to report too"
    )
    independent.add_argument(
        "--data", type=Path, default=DEFAULT_DATA / "independent", help="the independent set"
    )
    independent.add_argument(
        "--cache", type=Path, help="its decoded clips (default: <runs>/independent)"
    )
    independent.add_argument(
        "--out", type=Path, help="one result per model (default: <runs>/independent-results)"
    )
    independent.add_argument("--threshold", type=float, help="default: each model's own")
    independent.add_argument("--limit-per-label", type=int, help="only the first N clips per label")
    independent.add_argument("--report", type=Path, help="write a Markdown report here")
    independent.add_argument(
        "--fuse",
        type=Path,
        action="append",
        default=[],
        help="saved results to fuse into one more row (the sum of their clip logits)",
    )
    independent.set_defaults(run=_independent)

    audit = steps.add_parser("audit", help="spectrogram sheets of the positives to audit by eye")
    audit.add_argument("--source", help="one source only, e.g. ios-16k (default: all)")
    audit.add_argument("--per-sheet", type=int, default=25)
    audit.add_argument("--out", type=Path, help="sheets and index.csv (default: <runs>/audit)")
    audit.set_defaults(run=_audit)

    add_night_parser(steps)

    args = parser.parse_args(argv)
    if args.step == "independent" and not args.model and not args.saved:
        independent.error("give at least one --model or --saved result")
    if args.step == "export" and not votes_fit(*args.votes):
        export.error("--votes K N: need 1 <= K <= N")
    if args.step == "export" and not args.hop > 0:
        export.error("--hop: need a hop above 0 seconds")
    try:
        args.run(args)
    except (RecipeError, ModelError) as exc:
        raise SystemExit(f"python -m training {args.step}: {exc}") from None


if __name__ == "__main__":
    main()
