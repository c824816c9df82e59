"""Sensitivity presets for Home Assistant's select, chosen on the tuning (validation) night's
sweep, never on the independent set, at the file's own hop and the agent's hold:

- **Balanced**: the file's own threshold and votes.
- **Quiet room** (hears more, sooner, where little else is heard): the night step's pick, the
  most episodes within the false-alarm budget (:func:`~training.night.measure.pick_at_hop`),
  unless it hears fewer than Balanced.
- **Noisy room** (fewer false alarms): at Balanced's votes, the lowest threshold above
  Balanced's that has the fewest false alarms of all those thresholds.
"""

from __future__ import annotations

from typing import Any

from training import RecipeError
from training.night.measure import at_hop_and_hold, pick_at_hop

QUIET, BALANCED, NOISY = "Quiet room", "Balanced", "Noisy room"


def choose_presets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The presets, most sensitive first, from a ``night.json`` of ``python -m training night
    --sweep``."""
    own = report["validation"]["shipped"]["setting"]
    rows = sweep_at(report, own)
    balanced = _row(rows, own["threshold"], own["trigger_windows"], own["of_windows"])
    quiet = pick_at_hop(rows, own)
    if quiet["recall_snr_ge_0"] < balanced["recall_snr_ge_0"]:
        quiet = balanced
    stricter = [
        r
        for r in rows
        if r["threshold"] > balanced["threshold"]
        and (r["trigger_windows"], r["of_windows"]) == (own["trigger_windows"], own["of_windows"])
    ]
    if not stricter:
        raise RecipeError(f"the sweep has no threshold above {balanced['threshold']:g}")
    fewest = min(r["false_alarms"] for r in stricter)
    noisy = min((r for r in stricter if r["false_alarms"] == fewest), key=lambda r: r["threshold"])
    return [_preset(name, r) for name, r in ((QUIET, quiet), (BALANCED, balanced), (NOISY, noisy))]


def sweep_at(report: dict[str, Any], setting: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the sweep in a ``night.json`` of ``python -m training night --sweep`` at the
    hop and hold of ``setting``."""
    validation = report["validation"]
    if "sweep" not in validation:
        raise RecipeError("the night report holds no sweep: run python -m training night --sweep")
    return at_hop_and_hold(validation["sweep"], setting)


def _row(rows: list[dict[str, Any]], threshold: float, k: int, n: int) -> dict[str, Any]:
    for r in rows:
        if (r["threshold"], r["trigger_windows"], r["of_windows"]) == (threshold, k, n):
            return r
    raise RecipeError(
        f"the sweep did not measure the file's own setting ({threshold:g}, {k} of {n})"
    )


def _preset(name: str, row: dict[str, Any]) -> dict[str, Any]:
    keys = ("threshold", "trigger_windows", "of_windows")
    return {"name": name, **{k: row[k] for k in keys}}
