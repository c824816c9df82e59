"""Matplotlib for files only: every module that draws imports ``plt`` and :func:`save` from here,
so the headless Agg backend is chosen once, before pyplot loads."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plt", "save"]


def save(fig: plt.Figure, path: Path, dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` (its folder created if need be) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
