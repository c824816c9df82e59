"""Ingestion: find labelled recordings in the supported layouts, decode them to 16 kHz mono and
cache them for the later steps.

Layouts: the Donate-a-cry corpus as distributed (``.3gp`` and ``.caf`` uploads, decoded with
PyAV's bundled FFmpeg), an ESC-50 download (``audio/`` plus ``meta/esc50.csv``; its crying_baby
class becomes positives, never negatives), manifests (CSV with ``path``, ``source``, ``category``
and ``license`` columns), plain folders of audio files and Debian packages unpacked with
``dpkg -x`` (:mod:`training.debian`).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import soxr
from tqdm import tqdm

from cry_mqtt.features import AMIN, FeatureParams, dbfs, logmel
from cry_mqtt.recording import read_audio

PARAMS = FeatureParams()
AMIN_DB = 10 * np.log10(AMIN)
WINDOW_SECONDS = 7.0
WINDOW_SAMPLES = round(WINDOW_SECONDS * PARAMS.sample_rate)
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".3gp", ".caf", ".aac", ".opus", ".g722"}
ESC50_CRYING_BABY = 20
NO_CRYING = "no-crying"
"""Category of a positive upload that the audit found to hold no crying."""
AUDIT = Path(__file__).with_name("donateacry-no-crying.csv")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("CRY_MQTT_DATA", REPO_ROOT.parent / "shared" / "data"))
DEFAULT_RUNS = REPO_ROOT / "runs"
DONATEACRY_LICENSE = "ODbL (database), DbCL (contents)"
ESC50_LICENSE = "CC BY-NC 3.0"
UNSTATED = "unstated"


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


def load_audio(path: Path, sample_rate: int = PARAMS.sample_rate) -> np.ndarray:
    """Decode any FFmpeg-readable file to mono float32 at ``sample_rate``, as the agent does."""
    return read_audio(path, sample_rate)


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


def trim_silence(samples: np.ndarray, floor_dbfs: float = -90.0, frame: int = 512) -> np.ndarray:
    """Drop leading and trailing frames of digital silence (RMS below ``floor_dbfs``).

    The Android Donate-a-cry uploads start with about 0.3 s of it, while the recorder starts; left
    in, "a window that begins in dead silence" would be a cue for crying that no live microphone
    ever gives.
    """
    usable = len(samples) // frame * frame
    power = np.mean(np.square(samples[:usable].reshape(-1, frame), dtype=np.float64), axis=1)
    loud = np.flatnonzero(power >= 10 ** (floor_dbfs / 10))
    if len(loud) == 0:
        return samples[:0]
    end = len(samples) if loud[-1] == len(power) - 1 else (loud[-1] + 1) * frame
    return samples[loud[0] * frame : end]


def phone_codec(samples: np.ndarray, bit_rate: int = 12200) -> np.ndarray:
    """Pass 16 kHz audio through 8 kHz AMR-NB, the codec of the Android Donate-a-cry uploads."""
    rate = 8000
    pcm = np.clip(soxr.resample(samples, PARAMS.sample_rate, rate) * 32767, -32768, 32767)
    frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None], format="s16", layout="mono")
    frame.sample_rate = rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="amr") as out:
        stream = out.add_stream("libopencore_amrnb", rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer, format="amr") as inp:
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in inp.decode(audio=0)])
    coded = soxr.resample(decoded.astype(np.float32), rate, PARAMS.sample_rate)
    out_samples = np.zeros(len(samples), np.float32)
    out_samples[: min(len(coded), len(samples))] = coded[: len(samples)]
    return out_samples


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


class RecipeError(Exception):
    """A step cannot run yet: the message says what is missing and which step makes it."""


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
        other = copy.copy(self)
        other.items = [
            replace(i, split="valid" if i.group in valid_groups else "train") for i in self.items
        ]
        other.summary = {**self.summary, "splits": summarize(other.items)}
        return other


def is_phone_recording(item: Item) -> bool:
    return item.source == "android-8k"


QUIET_RECORDING_DBFS = -20.0
"""A whole recording below this level is quiet (:func:`holds_events`)."""
FLAT_CONTRAST_DB = 12.0


def event_contrast_db(samples: np.ndarray) -> float:
    """How far a recording's loud frames rise above its noise floor: the 95th minus the 10th
    percentile of log-mel frame energy in dB (digital silence left out)."""
    mel = logmel(samples, PARAMS)
    energy = 10 * np.log10(np.mean(10 ** (mel / 10), axis=0))
    energy = energy[energy > AMIN_DB + 1]
    if len(energy) == 0:
        return 0.0
    return float(np.percentile(energy, 95) - np.percentile(energy, 10))


def holds_events(samples: np.ndarray) -> bool:
    """False for a quiet, flat recording: below :data:`QUIET_RECORDING_DBFS` with nothing rising
    :data:`FLAT_CONTRAST_DB` above its steady noise. Some Donate-a-cry uploads are like that and
    hold no audible crying."""
    return dbfs(samples) >= QUIET_RECORDING_DBFS or event_contrast_db(samples) >= FLAT_CONTRAST_DB


def holds_crying(item: Item, samples: np.ndarray) -> bool:
    """False for a positive that the audit found to hold no crying or that holds no sound events
    (:func:`holds_events`): such clips are left out of training and reported apart."""
    return item.category != NO_CRYING and holds_events(samples)


def _npy_header(f: BinaryIO, length: int) -> None:
    """The header of a 1-D float32 ``.npy`` file, 128 bytes for any ``length`` below 2**62."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (length,)}
    np.lib.format.write_array_header_1_0(f, header)


def build_cache(items: list[Item], root: Path) -> dict[str, Any]:
    """Decode ``items`` (their ``split`` already set) into ``root``, plus a phone-codec version
    of each recording that is not already one; returns the summary."""
    root.mkdir(parents=True, exist_ok=True)
    kept, offset, failed = [], 0, []
    # Each recording goes to disk as it is decoded, so memory holds one at a time; the header,
    # written first for the largest length, is rewritten with the real one (same size).
    with open(root / "audio.npy", "wb") as f:
        _npy_header(f, 2**62 - 1)
        data_start = f.tell()
        for item in tqdm(items, desc="decode", unit="file"):
            try:
                samples = trim_silence(load_item(item))
            except (av.error.FFmpegError, IndexError) as exc:
                failed.append(f"{item.path}: {exc}")
                continue
            if len(samples) < PARAMS.frame_length:
                failed.append(f"{item.path}: too short or near-silent")
                continue
            item.offset, item.length = offset, len(samples)
            offset += len(samples)
            f.write(samples.astype("<f4").tobytes())
            if is_phone_recording(item):
                item.phone_offset = item.offset
            else:
                item.phone_offset = offset
                offset += len(samples)
                f.write(phone_codec(samples).astype("<f4").tobytes())
            kept.append(item)
        f.seek(0)
        _npy_header(f, offset)
        assert f.tell() == data_start
    (root / "items.json").write_text(json.dumps([asdict(i) for i in kept]))
    summary = {"splits": summarize(kept), "skipped": failed}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
