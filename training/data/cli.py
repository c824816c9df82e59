"""The data steps: ``prepare`` (decode, split, cache), ``resplit`` (whole sources held out),
``fetch-debian`` (the Debian packages' sounds), ``sing`` (sung lullabies as negatives) and
``audit`` (contact sheets of the positives)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from training import DEFAULT_DATA, RecipeError


def add_parsers(steps: Any) -> None:
    """The data steps of ``python -m training``, in the order a user runs them."""
    fetch_debian = steps.add_parser(
        "fetch-debian", help="apt-get download and dpkg -x the Debian packages for training"
    )
    fetch_debian.add_argument("dest", type=Path, help="folder for the .debs and unpacked packages")
    fetch_debian.add_argument("packages", nargs="*", help="package names (default: all)")
    fetch_debian.set_defaults(run=_fetch_debian)

    sing = steps.add_parser(
        "sing", help="render sung lullabies (FluidSynth's recorded voices) as negatives"
    )
    sing.add_argument("dest", type=Path, help="folder for the WAV files and manifest.csv")
    sing.add_argument("--per-tune", type=int, default=12, help="performances of each tune")
    sing.add_argument("--seconds", type=float, default=25.0, help="length of each performance")
    sing.set_defaults(run=_sing)

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
    prepare.add_argument(
        "--emogator",
        type=Path,
        help="a clone of github.com/fredbuhl/EmoGator: adult vocal bursts as negatives",
    )
    prepare.add_argument("--valid-fraction", type=float, default=0.1)
    prepare.add_argument("--limit", type=int, default=0, help="files per source/category")
    prepare.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes decoding and phone-coding recordings (default: one per core)",
    )
    prepare.set_defaults(run=_prepare)

    resplit = steps.add_parser(
        "resplit", help="a prepared cache with whole sources held out for validation"
    )
    resplit.add_argument(
        "cache", type=Path, help="the prepared cache to start from (its audio is linked)"
    )
    resplit.add_argument(
        "--valid-sources",
        nargs="+",
        required=True,
        metavar="SOURCE",
        help="negative sources held out whole (as summary.json names them)",
    )
    resplit.add_argument(
        "--keep",
        nargs="*",
        default=[],
        metavar="SOURCE",
        help="negative sources whose grouped split stays (emogator: its held-out contributors)",
    )
    resplit.set_defaults(run=_resplit)

    audit = steps.add_parser("audit", help="spectrogram sheets of the positives to audit by eye")
    audit.add_argument("--source", help="one source only, e.g. ios-16k (default: all)")
    audit.add_argument("--per-sheet", type=int, default=25)
    audit.add_argument("--out", type=Path, help="sheets and index.csv (default: <runs>/audit)")
    audit.set_defaults(run=_audit)


def _prepare(args: argparse.Namespace) -> None:
    from training.data.cache import build_cache
    from training.data.items import limit_items
    from training.data.sources import discover
    from training.data.split import grouped_split

    data = None if args.no_default_data else args.data
    items = discover(data, args.esc50, args.positives, args.negatives, args.debian, args.emogator)
    if args.limit:
        items = limit_items(items, args.limit)
    if not items:
        where = "no --data folder" if data is None else f"{data} (option --data)"
        raise RecipeError(
            f"no recordings found in {where}: it needs donateacry-corpus/ and "
            "negatives/manifest.csv (or --positives/--negatives/--esc50/--debian/--emogator)"
        )
    grouped_split(items, args.valid_fraction, args.seed)
    summary = build_cache(items, args.runs / "cache", args.workers)
    _print_brief(summary)
    print(f"{len(summary['skipped'])} files skipped: {summary['skipped'][:5]}")
    print(f"cache written to {args.runs / 'cache'} (summary.json: every source and licence)")


def _resplit(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from training.data.cache import Cache
    from training.data.split import source_split

    cache = Cache(args.cache)
    out = args.runs / "cache"
    known = {item.source for item in cache.items if item.label == 0}
    valid, keep = set(args.valid_sources), set(args.keep)
    if unknown := (valid | keep) - known:
        raise RecipeError(
            f"no negatives of {sorted(unknown)} in {args.cache}: it has {sorted(known)}"
        )
    items = [replace(item) for item in cache.items]
    source_split(items, valid, keep)
    how = {"from": str(args.cache.resolve()), "valid_sources": sorted(valid), "keep": sorted(keep)}
    _print_brief(cache.with_items(items).write_linked(out, how))
    print(f"cache written to {out} (its audio linked to {args.cache / 'audio.npy'})")


def _print_brief(summary: dict[str, Any]) -> None:
    """Each split's counts and minutes (summary.json has every source and licence too)."""
    brief = {
        split: {k: v for k, v in part.items() if k != "sources"}
        for split, part in summary["splits"].items()
    }
    print(json.dumps(brief, indent=2))


def _fetch_debian(args: argparse.Namespace) -> None:
    from subprocess import CalledProcessError

    from training.data.debian import PACKAGES, fetch

    try:
        roots = fetch(args.dest, args.packages or list(PACKAGES))
    except CalledProcessError as exc:
        raise RecipeError(
            f"`{' '.join(exc.cmd[:2])}` failed: it needs Debian bookworm's package lists "
            "(`apt-get update`)"
        ) from None
    print("python -m training prepare " + " ".join(f"--debian {root}" for root in roots))


def _sing(args: argparse.Namespace) -> None:
    from training.data.singing import all_tunes, render

    manifest = render(args.dest, all_tunes(args.seed), args.per_tune, args.seconds, args.seed)
    print(f"python -m training prepare --negatives {manifest}")


def _audit(args: argparse.Namespace) -> None:
    from training.data.audit import contact_sheets
    from training.data.cache import Cache

    out = args.out or args.runs / "audit"
    sheets = contact_sheets(Cache(args.runs / "cache"), out, args.source, args.per_sheet)
    print(f"{len(sheets)} sheets and index.csv written to {out}")
