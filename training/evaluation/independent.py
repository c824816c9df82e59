"""Measure a model on the independent evaluation set (``<data>/independent/``).

The set comes from sources the training data does not use, and it is for measuring only: nothing
may train, tune a threshold or pick a model on it. Every clip goes through the agent's own
processing path (:class:`cry_mqtt.pipeline.Pipeline`, loudness gate at its minimum), and a clip's
score is its highest window probability. The decoded clips are cached once, so measuring another
model does not decode again.

``python -m training independent --model PATH [--model PATH2 ...] [--saved RESULT.json ...]
[--report docs/independent.md]`` (:func:`measure_models`). It runs the ONNX files alone: neither
torch nor fastai is imported.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from cry_mqtt.audio import resample
from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel
from cry_mqtt.pipeline import Pipeline
from training.data.audio import PARAMS, load_audio
from training.evaluation.metrics import rate, rate_by, recall_at_fpr

WORST = 15
CACHE_FILE = "clips.npz"
DETECTION = DetectionConfig(hop_seconds=1.0, gate_dbfs=-100.0)
"""Every model at one hop, whatever its file's, so that clips are scored alike."""
"""The agent's defaults, with the gate at its minimum so that quiet windows are scored too."""
QUIETER_DB = (20.0, 30.0)
"""The crying clips are measured again this much quieter (a far-field microphone), through the
agent's default loudness gate."""


@dataclass(frozen=True)
class Clip:
    """One row of ``manifest.csv``; ``path`` is relative to the set's folder."""

    path: str
    label: int
    category: str
    source: str
    detail: str
    seconds: float


def read_manifest(data_dir: Path, limit_per_label: int | None = None) -> list[Clip]:
    """The clips in manifest order; with ``limit_per_label``, only the first ones of each label."""
    with open(data_dir / "manifest.csv", newline="") as f:
        clips = [
            Clip(
                r["path"],
                int(r["label"]),
                r["category"],
                r["source"],
                r["detail"],
                float(r["seconds"]),
            )
            for r in csv.DictReader(f)
        ]
    if limit_per_label is None:
        return clips
    first = {label: [c for c in clips if c.label == label][:limit_per_label] for label in (0, 1)}
    return [c for c in clips if c in first[c.label]]


def load_clips(
    clips: list[Clip], data_dir: Path, cache_dir: Path
) -> tuple[list[np.ndarray], dict[str, float]]:
    """The clips' samples (mono, 16 kHz: a model at another rate gets them resampled, as the agent
    resamples a 16 kHz source), decoded only where the cache lacks them, and the decode
    timing. Newly decoded clips are added to the cache."""
    path = cache_dir / CACHE_FILE
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as stored:
            samples, offsets = stored["samples"], stored["offsets"]
            paths = stored["paths"].tolist()
        cached = {p: samples[a:b] for p, a, b in zip(paths, offsets, offsets[1:], strict=False)}
    missing = [c.path for c in clips if c.path not in cached]
    start = time.perf_counter()
    decoded = {p: load_audio(data_dir / p) for p in tqdm(missing, desc="decode", unit="file")}
    seconds = time.perf_counter() - start
    if decoded:
        cached |= decoded
        _write_cache(cached, path)
    timing = {"decode_seconds": round(seconds, 1), "decoded_clips": len(decoded)}
    return [cached[c.path] for c in clips], timing


def _write_cache(clips: dict[str, np.ndarray], path: Path) -> None:
    """All clips end to end in one file, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = sorted(clips)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            paths=np.array(paths),
            offsets=np.cumsum([0] + [len(clips[p]) for p in paths]),
            samples=np.concatenate([clips[p] for p in paths]).astype(np.float32),
        )
    os.replace(tmp, path)


def clip_score(
    model: CryModel, samples: np.ndarray, detection: DetectionConfig = DETECTION
) -> tuple[float, int]:
    """The highest window probability of one clip through the agent's pipeline, and the number
    of windows scored (one, padded, for a clip shorter than a window)."""
    probs = [r.prob for r in Pipeline(model, detection).run([samples])]
    return max(probs), len(probs)


def quiet_recall(
    model: CryModel, crying: list[np.ndarray], threshold: float
) -> dict[str, dict[str, float]]:
    """For each of :data:`QUIETER_DB`: the recall of the crying clips that much quieter, at
    ``threshold`` through the agent's default gate, and the share whose every window the gate
    drops."""
    detection = DetectionConfig()
    out = {}
    for db in QUIETER_DB:
        gain = np.float32(10 ** (-db / 20))
        scores = np.array([clip_score(model, x * gain, detection)[0] for x in crying])
        out[f"-{db:g} dB"] = {
            "recall": rate(scores >= threshold),
            "all_gated": rate(scores == 0.0),
            "gate_dbfs": detection.gate_dbfs,
        }
    return out


def evaluate_independent(
    model_path: Path,
    data_dir: Path,
    cache_dir: Path,
    threshold: float | None = None,
    limit_per_label: int | None = None,
) -> dict[str, Any]:
    """Score every clip of the set (or the first ``limit_per_label`` of each label) with the
    model and measure it; ``score >= threshold`` counts as crying, by default the model's own."""
    model = CryModel(model_path)
    model_rate = model.info.features.sample_rate
    threshold = model.info.threshold if threshold is None else threshold
    clips = read_manifest(data_dir, limit_per_label)
    audio, timing = load_clips(clips, data_dir, cache_dir)

    start = time.perf_counter()
    audio = [resample(samples, PARAMS.sample_rate, model_rate) for samples in audio]
    scored = [clip_score(model, samples) for samples in tqdm(audio, desc="score", unit="clip")]
    score_seconds = time.perf_counter() - start
    scores = np.array([score for score, _ in scored])
    windows = sum(n for _, n in scored)

    crying = [a for a, c in zip(audio, clips, strict=True) if c.label == 1]
    return {
        "model": str(model_path),
        "version": model.info.version,
        "model_threshold": model.info.threshold,
        "data": str(data_dir),
        "minutes": round(sum(len(a) for a in audio) / model_rate / 60, 1),
        **measure(clips, scores, threshold),
        "quiet_crying": quiet_recall(model, crying, threshold),
        "timing": {
            **timing,
            "score_seconds": round(score_seconds, 1),
            "windows": windows,
            "ms_per_window": round(1000 * score_seconds / windows, 2),
        },
    }


def measure(clips: list[Clip], scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """The metrics of clip ``scores`` (``score >= threshold`` is crying), per category and
    source, the worst clips, and every clip's score."""
    labels = np.array([c.label for c in clips])
    pos, neg = labels == 1, labels == 0
    hit = scores >= threshold
    negatives = [c for c in clips if c.label == 0]

    def fpr_by_detail(category: str) -> dict[str, float]:
        mask = np.array([c.category == category for c in negatives], dtype=bool)
        return rate_by([c.detail for c in negatives if c.category == category], hit[neg][mask])

    rows = [{**asdict(c), "score": float(s)} for c, s in zip(clips, scores, strict=True)]
    order = np.argsort(scores, kind="stable")
    return {
        "clips": {"crying": int(pos.sum()), "not_crying": int(neg.sum())},
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "at_1pct_fpr": recall_at_fpr(labels, scores),
        "threshold": threshold,
        "recall": rate(hit[pos]),
        "fpr": rate(hit[neg]),
        "fpr_by_category": rate_by([c.category for c in negatives], hit[neg]),
        "fpr_by_nonverbal": fpr_by_detail("nonverbal"),
        "fpr_by_esc50": fpr_by_detail("esc50"),
        "recall_by_source": rate_by([c.source for c in clips if c.label == 1], hit[pos]),
        "worst_false_positives": [rows[i] for i in order[::-1] if neg[i]][:WORST],
        "worst_misses": [rows[i] for i in order if pos[i]][:WORST],
        "scores": rows,
    }


def fuse(results: list[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """Two or more saved results of the same clips fused as the sum of their clip logits (the
    two taggers' fusion, which no single model file can run): a comparison row only."""
    rows = [r["scores"] for r in results]
    paths = [x["path"] for x in rows[0]]
    if any([x["path"] for x in r] != paths for r in rows):
        raise ValueError("fused results must score the same clips")
    eps = 1e-7
    clipped = np.clip(np.array([[x["score"] for x in r] for r in rows]), eps, 1 - eps)
    fused = 1 / (1 + np.exp(-np.log(clipped / (1 - clipped)).sum(axis=0)))
    clips = [Clip(**{k: v for k, v in x.items() if k != "score"}) for x in rows[0]]
    return {
        "model": "fusion of " + " + ".join(Path(r["model"]).name for r in results),
        "version": "sum of logits",
        "model_threshold": threshold,
        **measure(clips, fused, threshold),
    }


def save(result: dict[str, Any], out: Path, stem: str | None = None) -> Path:
    """Write ``result`` to ``<out>/<stem>.json`` (by default the model file's stem)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem or Path(result['model']).stem}.json"
    path.write_text(json.dumps(result, indent=1))
    return path


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _name(result: dict[str, Any]) -> str:
    return f"`{Path(result['model']).name}` ({result['version']})"


def comparison_table(results: list[dict[str, Any]]) -> str:
    """One row per model: ROC-AUC, recall at 1% FPR, the threshold, recall and FPR at it, and
    the FPR of every category."""
    categories = sorted({k for r in results for k in r["fpr_by_category"]})
    header = ["model", "ROC-AUC", "recall at 1% FPR", "threshold", "recall", "FPR"]
    lines = [
        "| " + " | ".join(header + [f"FPR {c}" for c in categories]) + " |",
        "| --- " + "| ---: " * (len(header) - 1 + len(categories)) + "|",
    ]
    for r in results:
        cells = [
            _name(r),
            _f(r["roc_auc"]),
            _f(r["at_1pct_fpr"]["recall"]),
            _f(r["threshold"]),
            _f(r["recall"]),
            _f(r["fpr"]),
            *(_f(r["fpr_by_category"].get(c)) for c in categories),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rates(title: str, rates: dict[str, float], counts: dict[str, int]) -> list[str]:
    if not rates:
        return []
    return [
        f"| {title} | clips | rate |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {counts[k]} | {_f(v)} |" for k, v in rates.items()),
        "",
    ]


def _clips(title: str, rows: list[dict[str, Any]], column: str) -> list[str]:
    return [
        f"| {title} | {column} | detail | score |",
        "| --- | --- | --- | ---: |",
        *(f"| `{r['path']}` | {r[column]} | {r['detail']} | {r['score']:.4f} |" for r in rows),
        "",
    ]


def markdown_section(result: dict[str, Any]) -> str:
    """The measurements of one model as a Markdown section."""
    r, at, t = result, result["at_1pct_fpr"], result["timing"]
    crying = [x for x in r["scores"] if x["label"] == 1]
    other = [x for x in r["scores"] if x["label"] == 0]

    def details(category: str) -> Counter[str]:
        return Counter(x["detail"] for x in other if x["category"] == category)

    per_category = Counter(x["category"] for x in r["scores"])  # in manifest order
    clips = ", ".join(f"{c} {n}" for c, n in per_category.items())
    return "\n".join(
        [
            f"## {_name(r)}",
            "",
            f"{r['clips']['crying']} crying and {r['clips']['not_crying']} other clips, "
            f"{r['minutes']} min ({clips}). Decoding {t['decode_seconds']} s "
            f"({t['decoded_clips']} clips not yet in the cache); scoring "
            f"{t['score_seconds']} s ({t['windows']} windows, {t['ms_per_window']} ms each with "
            "the features).",
            "",
            "| metric | value |",
            "| --- | ---: |",
            f"| ROC-AUC | {_f(r['roc_auc'])} |",
            f"| recall at <= 1% FPR | {_f(at['recall'])} (FPR {_f(at['fpr'])}, threshold "
            f"{_f(at['threshold'])}) |",
            f"| threshold (the model's own: {_f(r['model_threshold'])}) | {_f(r['threshold'])} |",
            f"| recall at threshold | {_f(r['recall'])} |",
            f"| FPR at threshold | {_f(r['fpr'])} |",
            *(
                f"| recall of the crying {db} quieter, gate {q['gate_dbfs']:g} dBFS "
                f"(all windows gated) | {_f(q['recall'])} ({_f(q['all_gated'])}) |"
                for db, q in r.get("quiet_crying", {}).items()
            ),
            "",
            *_rates(
                "recall by source", r["recall_by_source"], Counter(x["source"] for x in crying)
            ),
            *_rates("FPR by category", r["fpr_by_category"], Counter(x["category"] for x in other)),
            *_rates("FPR by nonverbal class", r["fpr_by_nonverbal"], details("nonverbal")),
            *_rates("FPR by ESC-50 class", r["fpr_by_esc50"], details("esc50")),
            *_clips("highest-scoring other clips", r["worst_false_positives"], "category"),
            *_clips("lowest-scoring crying clips", r["worst_misses"], "source"),
        ]
    )


def report(results: list[dict[str, Any]]) -> str:
    """A Markdown page: the comparison table, then one section per model."""
    intro = (
        "Generated by `python -m training independent`. Clips from sources the "
        "training data does not use (`independent/README.md` in the data folder), measured "
        "only: never used to train, tune a threshold or pick a checkpoint (the shipped default "
        "is the candidate that beat the model it replaced here). Each clip goes through "
        f"the agent's pipeline (hop {DETECTION.hop_seconds:g} s, loudness gate off) and scores "
        "its highest window; a score >= the threshold counts as crying."
    )
    sections = [markdown_section(r) for r in results if "timing" in r]  # not a fusion row
    return "\n\n".join(
        ["# Independent evaluation set", intro, comparison_table(results), *sections]
    )


def measure_models(
    models: Sequence[Path],
    saved: Sequence[Path],
    data_dir: Path,
    cache_dir: Path,
    out: Path,
    threshold: float | None = None,
    limit_per_label: int | None = None,
    fuse_saved: Sequence[Path] = (),
    report_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Measure each of ``models`` (each result saved to ``out``) after the ``saved`` results, add
    a row fusing the ``fuse_saved`` results (saved as ``fusion-<stem>-<stem>.json``), and write
    the Markdown report to ``report_path`` if given; returns every row."""
    results = [json.loads(path.read_text()) for path in saved]
    for model_path in models:
        r = evaluate_independent(model_path, data_dir, cache_dir, threshold, limit_per_label)
        results.append(r)
        written = save(r, out)
        at, t = r["at_1pct_fpr"], r["timing"]
        print(
            f"{_name(r)}: ROC-AUC {_f(r['roc_auc'])}, recall {_f(at['recall'])} at <= 1% FPR "
            f"(threshold {_f(at['threshold'])}); at threshold {_f(r['threshold'])}: recall "
            f"{_f(r['recall'])}, FPR {_f(r['fpr'])}; decode {t['decode_seconds']} s, score "
            f"{t['score_seconds']} s; {written} written"
        )
    if fuse_saved:
        fused = fuse([json.loads(path.read_text()) for path in fuse_saved])
        results.append(fused)
        at = fused["at_1pct_fpr"]
        written = save(fused, out, "-".join(["fusion", *(p.stem for p in fuse_saved)]))
        print(
            f"{fused['model']}: ROC-AUC {_f(fused['roc_auc'])}, "
            f"recall {_f(at['recall'])} at <= 1% FPR; {written} written"
        )
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report(results) + "\n")
        print(f"{report_path} written")
    return results
