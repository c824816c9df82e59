"""A picture of an episode for Home Assistant's image entity: the log-mel spectrogram of what was
heard (the frames the model's front end already computed), with each window's chance of crying
and the threshold drawn under it, as a PNG written with numpy and zlib (no plotting library at
run time)."""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence

import numpy as np

MAX_WIDTH = 720
"""Columns at most: longer audio is pooled (the loudest of each group of frames)."""
SPECTROGRAM_HEIGHT = 128
"""Pixel rows of the spectrogram (each mel band as many rows as fit)."""
STRIP_HEIGHT = 48
"""Rows of the chance-of-crying strip under the spectrogram."""
SHADES = 240
"""Palette entries of the spectrogram; the rest are the strip's colours."""
BACKGROUND, SCORE, THRESHOLD, ONSET, HIT = range(SHADES, SHADES + 5)
_ANCHORS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
     [250, 193, 39], [252, 255, 164]],
    dtype=np.float64,
)  # fmt: skip  # an inferno-like ramp, dark to bright
_EXTRA = [[24, 24, 32], [120, 200, 255], [255, 80, 80], [255, 255, 255], [255, 170, 60]]


def palette() -> bytes:
    """The PNG palette: :data:`SHADES` spectrogram shades, then the strip's colours."""
    x = np.linspace(0, len(_ANCHORS) - 1, SHADES)
    ramp = np.stack([np.interp(x, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], 1)
    colours = np.vstack([ramp, np.array(_EXTRA, dtype=np.float64)])
    return np.round(colours).astype(np.uint8).tobytes()


def png(indices: np.ndarray) -> bytes:
    """A palette PNG of ``indices`` (rows x columns of palette entries)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = indices.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    rows = np.hstack([np.zeros((height, 1), np.uint8), indices.astype(np.uint8)])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", palette())
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def episode_picture(
    mel: np.ndarray,
    frame_seconds: float,
    scores: Sequence[tuple[float, float]],
    threshold: float,
    onset: float,
) -> bytes:
    """The PNG of an episode: its log-mel frames ``mel`` (bands x frames, any log scale; the
    model's own front end, so nothing is computed again) as a spectrogram, and under it each
    window's chance of crying ``scores`` (seconds from the first frame, probability) against
    ``threshold``, with a line where crying turned on (``onset`` seconds in)."""
    bands, frames = mel.shape[0] or 1, max(mel.shape[1], 1)
    pool = -(-frames // MAX_WIDTH)
    width = -(-frames // pool)
    if mel.size:
        padded = np.pad(mel, ((0, 0), (0, width * pool - mel.shape[1])), mode="edge")
        columns = padded.reshape(bands, width, pool).max(axis=2)
        low, high = np.percentile(columns, [2, 100])
        shade = (columns - low) / max(high - low, 1e-6)
    else:
        shade = np.zeros((bands, width))
    rows_per_band = max(1, SPECTROGRAM_HEIGHT // bands)
    spectrogram = np.repeat(np.round(np.clip(shade, 0, 1) * (SHADES - 1))[::-1], rows_per_band, 0)
    seconds_per_column = pool * frame_seconds
    strip = _strip(width, scores, threshold, onset, seconds_per_column)
    spectrogram[:, min(width - 1, int(onset / seconds_per_column))] = ONSET
    return png(np.vstack([spectrogram, strip]).astype(np.uint8))


def _strip(
    width: int,
    scores: Sequence[tuple[float, float]],
    threshold: float,
    onset: float,
    seconds_per_column: float,
) -> np.ndarray:
    """The chance of crying over time: a line of the scores, the threshold across."""
    strip = np.full((STRIP_HEIGHT, width), BACKGROUND, np.uint8)

    def row(p: float) -> int:
        return STRIP_HEIGHT - 1 - round(float(np.clip(p, 0, 1)) * (STRIP_HEIGHT - 1))

    strip[row(threshold), :] = THRESHOLD
    points = [(t / seconds_per_column, p) for t, p in sorted(scores)]
    for (c0, p0), (c1, p1) in itertools.pairwise([*points, *points[-1:]]):
        for column in range(int(c0), int(c1) + 1):
            if 0 <= column < width:
                p = p0 if c1 == c0 else p0 + (p1 - p0) * (column - c0) / (c1 - c0)
                strip[row(p), column] = HIT if p >= threshold else SCORE
    strip[:, min(width - 1, int(onset / seconds_per_column))] = ONSET
    return strip
