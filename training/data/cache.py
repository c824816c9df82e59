"""The prepared cache that every later step reads: the decoded recordings (and each one's
phone-coded copy) in one float32 array, the item table with its split, and the summary of every
source and licence for the model card."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import asdict, replace
from multiprocessing import Pool
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
from tqdm import tqdm

from training import RecipeError
from training.data.audio import PARAMS, phone_codec, trim_silence
from training.data.items import Item, is_phone_recording, load_item

UNSTATED = "unstated"


def data_sources(items: list[Item]) -> list[dict[str, Any]]:
    """Files and minutes per (class, category, source, licence), for the model card."""
    rows: dict[tuple[int, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        row = rows[(item.label, item.category, item.source, item.license or UNSTATED)]
        row[0] += 1
        row[1] += item.length
    return [
        {
            "label": label,
            "category": category,
            "source": source,
            "license": license,
            "files": files,
            "minutes": round(samples / PARAMS.sample_rate / 60, 2),
        }
        for (label, category, source, license), (files, samples) in sorted(rows.items())
    ]


def summarize(items: list[Item]) -> dict[str, Any]:
    """Counts and minutes per split, class, source and category, and :func:`data_sources`."""
    rate = PARAMS.sample_rate
    summary: dict[str, Any] = {}
    for split in sorted({i.split for i in items}):
        part = [i for i in items if i.split == split]
        by: dict[str, dict[str, int]] = {"positives": {}, "negatives": {}}
        minutes: dict[str, float] = defaultdict(float)
        for item in part:
            key = item.source if item.label else item.category
            table = by["positives" if item.label else "negatives"]
            table[key] = table.get(key, 0) + 1
            minutes[item.category] += item.length / rate / 60
        summary[split] = {
            "positives": sum(i.label for i in part),
            "negatives": sum(1 - i.label for i in part),
            "groups": len({i.group for i in part}),
            "minutes": round(sum(i.length for i in part) / rate / 60, 1),
            "positives_by_source": dict(sorted(by["positives"].items())),
            "negatives_by_category": dict(sorted(by["negatives"].items())),
            "minutes_by_category": {k: round(v, 2) for k, v in sorted(minutes.items())},
            "sources": data_sources(part),
        }
    return summary


class Cache:
    """Decoded audio (one float32 array) plus the item table, as written by :func:`build_cache`."""

    def __init__(self, root: Path) -> None:
        if not (root / "items.json").is_file():
            raise RecipeError(f"no prepared data in {root}: run `python -m training prepare` first")
        self.root = root
        self.items = [Item(**d) for d in json.loads((root / "items.json").read_text())]
        self.audio = np.load(root / "audio.npy", mmap_mode="r")
        self.summary = json.loads((root / "summary.json").read_text())

    def samples(self, item: Item, phone: bool = False) -> np.ndarray:
        """The decoded 16 kHz samples of one item, or their phone-codec version."""
        start = item.phone_offset if phone else item.offset
        return np.asarray(self.audio[start : start + item.length], dtype=np.float32)

    def split(self, name: str, label: int | None = None) -> list[Item]:
        """Items of one split, optionally of one class."""
        return [i for i in self.items if i.split == name and label in (None, i.label)]

    def resplit(self, valid_groups: set[str]) -> Cache:
        """The same audio with ``valid_groups`` as the validation split and the rest training."""
        return self.with_items(
            [replace(i, split="valid" if i.group in valid_groups else "train") for i in self.items]
        )

    def with_items(self, items: list[Item]) -> Cache:
        """The same audio with ``items`` (its recordings, split anew), the summary recounted."""
        other = copy.copy(self)
        other.items = items
        other.summary = {**self.summary, "splits": summarize(items)}
        return other

    def write_linked(self, root: Path, split: dict[str, Any]) -> dict[str, Any]:
        """Write this cache to ``root``, its audio linked there, not copied; ``split`` says how
        its items were split, and the summary keeps it. Returns the summary."""
        audio = root / "audio.npy"
        if audio.exists() and not audio.is_symlink():
            raise RecipeError(f"{root} holds decoded audio of its own: split into another folder")
        root.mkdir(parents=True, exist_ok=True)
        audio.unlink(missing_ok=True)
        audio.symlink_to((self.root / "audio.npy").resolve())
        (root / "items.json").write_text(json.dumps([asdict(i) for i in self.items]))
        summary = {**self.summary, "split": split}
        (root / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def _npy_header(f: BinaryIO, length: int) -> None:
    """The header of a 1-D float32 ``.npy`` file, 128 bytes for any ``length`` below 2**62."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (length,)}
    np.lib.format.write_array_header_1_0(f, header)


def _decoded(item: Item) -> tuple[np.ndarray, np.ndarray | None] | str:
    """A recording decoded and trimmed, with its phone-codec twin unless it is a phone recording
    already (the codec is most of the cost: AMR-NB encodes at about 120x real time); or why
    it is skipped."""
    try:
        samples = trim_silence(load_item(item))
    except (av.error.FFmpegError, IndexError) as exc:
        return f"{item.path}: {exc}"
    if len(samples) < PARAMS.frame_length:
        return f"{item.path}: too short or near-silent"
    return samples, None if is_phone_recording(item) else phone_codec(samples)


def build_cache(items: list[Item], root: Path, workers: int = 1) -> dict[str, Any]:
    """Decode ``items`` (their ``split`` already set) into ``root``, plus a phone-codec version
    of each recording that is not already one, in ``workers`` processes; returns the summary.
    The cache is the same for any number of workers."""
    root.mkdir(parents=True, exist_ok=True)
    kept, offset, failed = [], 0, []
    # Each recording goes to disk as it is decoded, in the items' order, so memory holds a few
    # at a time; the header, written first for the largest length, is rewritten with the real
    # one (same size).
    with (
        open(root / "audio.npy", "wb") as f,
        Pool(workers) if workers > 1 else nullcontext() as pool,
    ):
        _npy_header(f, 2**62 - 1)
        data_start = f.tell()
        decoded = pool.imap(_decoded, items, chunksize=4) if pool else map(_decoded, items)
        for item, result in tqdm(
            zip(items, decoded, strict=True), total=len(items), desc="decode", unit="file"
        ):
            if isinstance(result, str):
                failed.append(result)
                continue
            samples, phone = result
            item.offset, item.length = offset, len(samples)
            offset += len(samples)
            f.write(samples.astype("<f4").tobytes())
            if phone is None:
                item.phone_offset = item.offset
            else:
                item.phone_offset = offset
                offset += len(samples)
                f.write(phone.astype("<f4").tobytes())
            kept.append(item)
        f.seek(0)
        _npy_header(f, offset)
        assert f.tell() == data_start
    (root / "items.json").write_text(json.dumps([asdict(i) for i in kept]))
    summary = {"splits": summarize(kept), "skipped": failed}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
