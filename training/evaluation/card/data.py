"""The model card's account of the data: clips per split, source and category, the augmentation,
and every source with its licence."""

from __future__ import annotations

from typing import Any

from training.recipes.runs import RunSummary


def data_section(evaluation: dict[str, Any], run: RunSummary) -> list[str]:
    """Clips per split, source and category; the validation windows; the augmentation."""
    windows = evaluation["metrics"]["windows"]
    lines = [
        "## Data (split 90:10 grouped by Donate-a-cry app uuid / speaker or voice / recording)",
        "",
        "| split | positives | by source | negatives | by category | minutes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for split, part in run.data.items():
        pos = ", ".join(f"{k} {v}" for k, v in part["positives_by_source"].items())
        neg = ", ".join(f"{k} {v}" for k, v in part["negatives_by_category"].items())
        lines.append(
            f"| {split} | {part['positives']} | {pos} | {part['negatives']} | {neg} "
            f"| {part['minutes']} |"
        )
    return [
        *lines,
        "",
        f"Validation windows: {windows['positives']} positive clips (centred 7 s) and "
        f"{windows['negatives']} negative windows (7 s at a 3.5-s hop over each recording).",
        "",
        _augmentation(run),
        "",
    ]


def _augmentation(run: RunSummary) -> str:
    if run.augment is None:
        return (
            "Nothing here was trained on these data: the training split only shows what the "
            "network would have learned from; the validation windows measure it."
        )
    a = run.augment
    snr, level = a["snr_db"], a["level_dbfs"]
    return (
        f"Training positives: {run.positives_without_crying} that hold no crying "
        "(audited, or without sound events) left out; the rest drawn with equal weight per "
        "source. Augmentation (training only): random crops of long recordings, time shifts of "
        f"up to {a['max_shift_seconds']} s, "
        f"{_onset(a, run.window_seconds)}"
        f"crying mixed into negatives at {snr[0]:g}..+{snr[1]:g} dB SNR "
        f"({a['p_background_positive']:.0%} of positives), negatives mixed with other negatives "
        f"({a['p_background_negative']:.0%}), random level {level[0]:g}..{level[1]:g} dBFS, the "
        "whole window through the Android uploads' 8 kHz AMR-NB codec (Android positives "
        f"always, other positives {a['p_phone']:.0%}, negatives "
        f"{run.p_phone_negative:.0%}: as often as positives, so the codec says nothing "
        f"about the label), band-limiting to 4 kHz ({a['p_band_limit']:.0%} of both classes), "
        f"{_room_and_speed(a)}a random microphone noise floor, SpecAugment masks"
        + (" and mixup." if run.settings.get("mixup_alpha") else ".")
    )


def _room_and_speed(augment: dict[str, Any]) -> str:
    room, speed = augment.get("p_reverb", 0.0), augment.get("p_speed", 0.0)
    text = ""
    if room:
        rt60 = augment["rt60_seconds"]
        text += f"a synthetic room (RT60 {rt60[0]:g}..{rt60[1]:g} s, {room:.0%} of windows), "
    if speed:
        low, high = augment["speed_range"]
        text += f"negatives played {low:g}..{high:g} times as fast ({speed:.0%}), "
    return text


def _onset(augment: dict[str, Any], window_seconds: float) -> str:
    share = augment.get("p_onset", 0.0)  # runs before onset windows existed had none
    if not share:
        return ""
    return (
        f"{share:.0%} of positives only {augment['min_onset_seconds']:g}..{window_seconds:g} s "
        "long at the end of the window (crying that has just started), "
    )


SOURCES = [
    "## Sources and licences",
    "",
    "| what | source | licence | used for |",
    "| --- | --- | --- | --- |",
    "| YAMNet weights | tensorflow/models `research/audioset/yamnet` (via the TFLite files in "
    "`pretrained/yamnet/`, see its README) | Apache-2.0 | the network (yamnet models); a "
    "teacher (mn04 students) |",
    "| EfficientAT mn04_as weights | fschmid56/EfficientAT (`pretrained/efficientat/`, see its "
    "README) | MIT | the network and a teacher (mn04 models) |",
    "| Donate-a-cry corpus | gveres/donateacry-corpus | ODbL (database), DbCL (contents) "
    "| training and validation positives |",
    "| negatives (`negatives/manifest.csv`: moodist, emodb, lullabies, librosa-data, household, "
    "blanket) | per file in the manifest | mixed: CC0, CC BY, CC BY-SA, Pixabay, research-only, "
    "some unstated | training and validation negatives; not redistributed |",
    "| `negatives-extra/manifest.csv`: speechocean762 children's and adults' speech, Free Spoken "
    "Digit Dataset | per file in the manifest | CC BY 4.0, CC BY-SA 4.0 | training and "
    "validation negatives; not redistributed |",
    "| Debian packages (`python -m training fetch-debian`: telephone prompts, dialogue, game "
    "voices, animals, music) | per file from the package's `usr/share/doc/NAME/copyright` (the "
    "table below) | GPL-2, GPL-2+, CC BY-SA 3.0, GFDL-1.3, CC0 and others, per file | training "
    "and validation negatives; not redistributed |",
    "| EmoGator (`prepare --emogator`: a clone of fredbuhl/EmoGator; Buhl, arXiv 2301.00508): "
    "32,130 vocal bursts by 357 adults on 30 emotion prompts (laughs, sobs, moans, screams) | "
    "the repository | Apache-2.0 (the repository's licence; its README names no separate data "
    "licence) | training and validation negatives, one category per prompt, a contributor on "
    "one side of the split; not redistributed |",
    "| sung lullabies (`python -m training sing`): public-domain lullabies and random lullaby-like "
    "tunes sung by the General MIDI sound font's recorded choir and vocal samples, rendered with "
    "FluidSynth | Debian `fluid-soundfont-gm` | MIT (the sound font); the melodies are public "
    "domain | training and validation negatives (`sung lullaby`), a tune on one side of the "
    "split; not redistributed |",
    "| independent set (`independent/manifest.csv`) | 8 crying repositories, deeplyinc "
    "Parent-Child and Nonverbal sets, ESC-50 clips, white-noise and lullaby repositories | per "
    "source in its README (several state none; CC BY-NC-ND 4.0, CC BY-NC 3.0, MIT) | measuring "
    "only: never trained on, nor used to tune a threshold or pick a checkpoint; the shipped "
    "default is the row of the independent table that beat the model it replaced there |",
]


def sources_by_category(data: dict[str, Any]) -> list[str]:
    """Every training and validation source per category with its licence, from the split
    summary (none in a summary written before it listed them)."""
    rows: dict[tuple[str, str, str, str], list[float]] = {}
    for part in data.values():
        for r in part.get("sources", []):
            key = (
                "positive" if r["label"] else "negative",
                r["category"],
                r["source"],
                r["license"],
            )
            total = rows.setdefault(key, [0, 0.0])
            total[0] += r["files"]
            total[1] += r["minutes"]
    if not rows:
        return []
    return [
        "",
        "Training and validation data per category, source and licence (as each source states "
        "it; for a Debian package, per file from its `usr/share/doc/NAME/copyright`):",
        "",
        "| class | category | source | licence | files | minutes |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {c} | {category} | {source} | {license} | {files:.0f} | {minutes:.2f} |"
            for (c, category, source, license), (files, minutes) in sorted(rows.items())
        ),
    ]
