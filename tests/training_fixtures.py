"""Helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(path: Path, seconds: float, rate: int = 44100, hz: float = 440.0) -> Path:
    """A short synthetic wav file."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path
