"""Every source of labelled recordings in one call: the standard data folder, the Debian
packages, EmoGator, ESC-50 and extra folders or manifests (sung lullabies come as a manifest).
Each layout's reader lives with its source (:mod:`~training.data.items`,
:mod:`~training.data.debian`, :mod:`~training.data.emogator`); this module only gathers them, so
none of them needs to import another."""

from __future__ import annotations

from pathlib import Path

from training.data.debian import debian_items
from training.data.emogator import emogator_items
from training.data.items import Item, donateacry_items, esc50_items, folder_items, manifest_items


def discover(
    data: Path | None,
    esc50: Path | None = None,
    positives: list[Path] = (),
    negatives: list[Path] = (),
    debian: list[Path] = (),
    emogator: Path | None = None,
) -> list[Item]:
    """All items from the standard data folder and any extra sources.

    ``data`` holds ``donateacry-corpus/``, ``negatives/manifest.csv`` and
    ``negatives-extra/manifest.csv`` (grouped by speaker), any of them may be missing; extra
    positives/negatives are folders or ``.csv`` manifests; ``debian`` are unpacked packages;
    ``emogator`` is a clone of the EmoGator repository (:mod:`training.data.emogator`).
    """
    items: list[Item] = []
    if data is not None:
        if (data / "donateacry-corpus").is_dir():
            items += donateacry_items(data / "donateacry-corpus")
        if (data / "negatives" / "manifest.csv").is_file():
            items += manifest_items(data / "negatives" / "manifest.csv", 0)
        if (data / "negatives-extra" / "manifest.csv").is_file():
            items += manifest_items(data / "negatives-extra" / "manifest.csv", 0, by_speaker=True)
    for root in debian:
        items += debian_items(root)
    if emogator is not None:
        items += emogator_items(emogator)
    if esc50 is not None:
        items += esc50_items(esc50)
    for label, roots in ((1, positives), (0, negatives)):
        for root in roots:
            items += (
                manifest_items(root, label) if root.suffix == ".csv" else folder_items(root, label)
            )
    return items
