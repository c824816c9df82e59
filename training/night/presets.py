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
from training.night.measure import pick_at_hop

QUIET, BALANCED, NOISY = "Quiet room", "Balanced", "Noisy room"


def choose_presets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The presets, most sensitive first, from a ``night.json`` of ``python -m training night
    --sweep``."""
    own, rows = own_sweep(report)
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


def own_sweep(report: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The file's own setting in a ``night.json`` of ``python -m training night --sweep``, and
    the sweep's rows at its hop and hold."""
    validation = report["validation"]
    if "sweep" not in validation:
        raise RecipeError("the night report holds no sweep: run python -m training night --sweep")
    own = validation["shipped"]["setting"]
    rows = [
        r
        for r in validation["sweep"]
        if r["hop_s"] == own["hop_s"] and r["hold_seconds"] == own["hold_seconds"]
    ]
    return own, rows


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
