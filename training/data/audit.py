"""Contact sheets of the positives' spectrograms, for auditing the labels by eye.

Some Donate-a-cry uploads hold no crying at all (room noise, a click, a test tone). The sheets
show every positive in file-name order, numbered, with its length and level and no model score,
so that a rater judges what is there and not what a model thinks; ``index.csv`` maps the numbers
back to files. ``docs/positives-audit.md`` is how the shipped audit was done.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from tqdm import tqdm

from cry_mqtt.features import LogMel, dbfs, mel_filterbank
from training.data.audio import PARAMS
from training.data.cache import Cache
from training.data.items import Item
from training.plotting import plt, save

TICKS_HZ = (500, 1000, 3000)
DYNAMIC_RANGE_DB = 70.0


def _mel_bins(hz: tuple[int, ...]) -> list[int]:
    """The mel bands whose filters peak nearest each frequency in ``hz``."""
    filters = mel_filterbank(PARAMS)
    return [int(filters[:, round(f * PARAMS.n_fft / PARAMS.sample_rate)].argmax()) for f in hz]


def contact_sheets(
    cache: Cache, out: Path, source: str | None = None, per_sheet: int = 25
) -> list[Path]:
    """Write numbered spectrogram sheets of the cache's positives (of ``source`` only, if given)
    and ``index.csv`` to ``out``; returns the sheets' paths."""
    items: list[Item] = sorted(
        (i for i in cache.items if i.label and source in (None, i.source)),
        key=lambda i: Path(i.path).name.lower(),
    )
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["idx", "file", "source"])
        writer.writerows((n, Path(i.path).name, i.source) for n, i in enumerate(items))
    logmel, ticks = LogMel(PARAMS), _mel_bins(TICKS_HZ)
    side = math.ceil(math.sqrt(per_sheet))
    sheets = []
    for first in tqdm(range(0, len(items), per_sheet), desc="sheets", unit="sheet"):
        fig, axes = plt.subplots(side, side, figsize=(3.2 * side, 2.2 * side))
        for n, ax in enumerate(axes.flat, start=first):
            ax.axis("off")
            if n >= len(items) or n >= first + per_sheet:
                continue
            samples = cache.samples(items[n])
            mel = logmel(samples)
            ax.imshow(
                mel,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=mel.max() - DYNAMIC_RANGE_DB,
                vmax=mel.max(),
            )
            ax.set_title(
                f"#{n}  {len(samples) / PARAMS.sample_rate:.1f}s  {dbfs(samples):.0f} dBFS",
                fontsize=10,
            )
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks(ticks, [f"{hz / 1000:g}k" for hz in TICKS_HZ], fontsize=6)
        sheets.append(save(fig, out / f"sheet-{first // per_sheet:02d}.png", dpi=55))
    return sheets
