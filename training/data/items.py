"""Labelled recordings (:class:`Item`) and the readers of the layouts they come in: the
Donate-a-cry corpus as distributed (``.3gp`` and ``.caf`` uploads), an ESC-50 download
(``audio/`` plus ``meta/esc50.csv``; its crying_baby class becomes positives, never negatives),
manifests (CSV with ``path`` and optional ``source``, ``category``, ``group`` and ``license``
columns) and plain folders. The other sources' readers sit beside this module
(:mod:`~training.data.debian`, :mod:`~training.data.emogator`, :mod:`~training.data.singing`)
and :mod:`~training.data.sources` gathers them all."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cry_mqtt.features import dbfs
from training.data.audio import AUDIO_SUFFIXES, PARAMS, holds_events, load_audio

ESC50_CRYING_BABY = 20


NO_CRYING = "no-crying"
"""Category of a positive upload that the audit found to hold no crying."""


AUDIT = Path(__file__).with_name("donateacry-no-crying.csv")


DONATEACRY_LICENSE = "ODbL (database), DbCL (contents)"


ESC50_LICENSE = "CC BY-NC 3.0"


@dataclass
class Item:
    """One labelled recording; ``group`` keeps related recordings on one side of the split."""

    path: str
    label: int
    source: str
    category: str
    group: str
    split: str = ""
    offset: int = 0
    length: int = 0
    phone_offset: int = 0
    """Where the same recording passed through the phone codec starts."""
    license: str = ""
    parts: list[str] = field(default_factory=list)
    """More files chained after ``path`` into one recording (:func:`load_item`)."""


NEAR_SILENT_DBFS = -50.0
"""A chained part quieter than this (RMS) is left out: a take in which nothing was heard."""


JOIN_FADE_SECONDS = 0.01


def load_item(item: Item) -> np.ndarray:
    """The decoded samples of ``item``: its file, or its files chained, each faded in and out
    over 10 ms so that the joins do not click, with the near-silent ones left out (empty if all
    of them are)."""
    if not item.parts:
        return load_audio(Path(item.path))
    ramp = np.linspace(0, 1, round(JOIN_FADE_SECONDS * PARAMS.sample_rate), dtype=np.float32)
    heard = []
    for path in (item.path, *item.parts):
        samples = load_audio(Path(path))
        if len(samples) > 2 * len(ramp) and dbfs(samples) >= NEAR_SILENT_DBFS:
            samples[: len(ramp)] *= ramp
            samples[-len(ramp) :] *= ramp[::-1]
            heard.append(samples)
    return np.concatenate(heard) if heard else np.zeros(0, np.float32)


def donateacry_uuid(path: Path) -> str:
    """The app-instance uuid (first five dash-separated fields of the file name), lower case."""
    return "-".join(path.stem.split("-")[:5]).lower()


def audited_no_crying(audit: Path = AUDIT) -> set[str]:
    """File names of the Donate-a-cry uploads that the audit (``docs/positives-audit.md``) found
    to hold no crying."""
    with open(audit, newline="") as f:
        return {row["file"] for row in csv.DictReader(f)}


def donateacry_items(root: Path, audit: Path = AUDIT) -> list[Item]:
    """Positives from both Donate-a-cry upload folders (Android ``.3gp``, iOS ``.caf``); those
    listed in ``audit`` get the category :data:`NO_CRYING`."""
    no_crying = audited_no_crying(audit)
    items = []
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in {".3gp", ".caf"}:
            continue
        source = "android-8k" if suffix == ".3gp" else "ios-16k"
        group = f"donateacry:{donateacry_uuid(path)}"
        category = NO_CRYING if path.name in no_crying else "crying"
        items.append(Item(str(path), 1, source, category, group, license=DONATEACRY_LICENSE))
    return items


def esc50_items(root: Path) -> list[Item]:
    """ESC-50 clips: class crying_baby (target 20) as positives, every other class as negatives.

    Clips cut from one freesound recording (``src_file``) form one group.
    """
    items = []
    with open(root / "meta" / "esc50.csv", newline="") as f:
        for row in csv.DictReader(f):
            label = int(int(row["target"]) == ESC50_CRYING_BABY)
            group = f"esc50:{row['src_file']}"
            path = root / "audio" / row["filename"]
            items.append(
                Item(str(path), label, "esc50", row["category"], group, license=ESC50_LICENSE)
            )
    return items


def speaker_prefix(path: Path) -> str:
    """A file name without its trailing ``_<n>``: ``so762_spk0003_1.opus`` -> ``so762_spk0003``."""
    return re.sub(r"_\d+$", "", path.stem)


def manifest_items(manifest: Path, label: int, by_speaker: bool = False) -> list[Item]:
    """Recordings listed in a CSV with ``path`` and optional ``source``/``category``/``group``/
    ``license`` columns; without ``group``, ``by_speaker`` makes the files sharing a
    :func:`speaker_prefix` one group, else each file is one.

    Paths are relative to the manifest's folder or, failing that, to its parent.
    """
    items = []
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            path = manifest.parent / row["path"]
            if not path.exists():
                path = manifest.parent.parent / row["path"]
            source = row.get("source") or manifest.parent.name
            category = row.get("category") or path.parent.name
            group = row.get("group") or (
                f"speaker:{speaker_prefix(path)}" if by_speaker else f"file:{path}"
            )
            license = row.get("license") or ""
            items.append(Item(str(path), label, source, category, group, license=license))
    return items


def folder_items(root: Path, label: int) -> list[Item]:
    """Every audio file under ``root``; its category is the sub-folder it sits in."""
    items = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES:
            category = path.parent.name if path.parent != root else root.name
            items.append(Item(str(path), label, root.name, category, f"file:{path}"))
    return items


def limit_items(items: list[Item], per_stratum: int) -> list[Item]:
    """One item from each of the first ``per_stratum`` groups of each (label, source, category),
    for quick runs."""
    groups: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    kept = []
    for item in items:
        seen = groups[(item.label, item.source, item.category)]
        if len(seen) < per_stratum and item.group not in seen:
            seen.add(item.group)
            kept.append(item)
    return kept


def is_phone_recording(item: Item) -> bool:
    return item.source == "android-8k"


def holds_crying(item: Item, samples: np.ndarray) -> bool:
    """False for a positive that the audit found to hold no crying or that holds no sound events
    (:func:`holds_events`): such clips are left out of training and reported apart."""
    return item.category != NO_CRYING and holds_events(samples)
