"""Helpers shared by the training tests (kept out of conftest.py, which the agent owns)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CRY_MQTT_DATA", ROOT.parent / "shared" / "data"))


def require_data() -> Path:
    """The shared data folder; skips the test when it is not there."""
    if not (DATA / "donateacry-corpus").is_dir() or not (DATA / "negatives").is_dir():
        pytest.skip(f"no shared data at {DATA} (set CRY_MQTT_DATA)")
    return DATA


def write_tone(path: Path, seconds: float, rate: int = 44100, hz: float = 440.0) -> Path:
    """A short synthetic wav file."""
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path
