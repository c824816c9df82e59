"""Sensitivity presets chosen on the tuning night's sweep: Balanced is the file's own setting,
Quiet room the night's pick, Noisy room the lowest stricter threshold with the fewest alarms."""

from dataclasses import asdict

import pytest

from cry_mqtt.model import CryModel, default_model_path
from training import RecipeError
from training.evaluation.card.model import presets_row
from training.night.presets import choose_presets


def row(threshold: float, k: int, n: int, recall: float, alarms: int, hold: float = 10.0) -> dict:
    return {
        "hop_s": 1.0,
        "threshold": threshold,
        "trigger_windows": k,
        "of_windows": n,
        "hold_seconds": hold,
        "recall_snr_ge_0": recall,
        "recall_by_snr_db": {"-5": recall / 2},
        "false_alarms": alarms,
        "false_alarms_per_hour": alarms / 4,
        "latency_median_s": 10.0 - 5 * recall - k,
    }


OWN = {"hop_s": 1.0, "threshold": 0.5, "trigger_windows": 3, "of_windows": 5, "hold_seconds": 10.0}


def report(rows: list[dict]) -> dict:
    return {"validation": {"shipped": {"setting": OWN}, "sweep": rows}}


def test_quiet_balanced_and_noisy_come_from_the_sweep_most_sensitive_first():
    rows = [
        row(0.3, 1, 1, 0.80, 3),
        row(0.35, 1, 1, 0.78, 1),  # the pick: most episodes within one false alarm
        row(0.5, 3, 5, 0.70, 1),  # the file's own
        row(0.55, 3, 5, 0.68, 1),
        row(0.6, 3, 5, 0.66, 0),  # the lowest stricter threshold with the fewest
        row(0.7, 3, 5, 0.60, 0),
        row(0.6, 1, 1, 0.70, 0),  # other votes do not make Noisy room
        row(0.35, 1, 1, 0.90, 0, hold=20.0),  # another hold: not the agent's
    ]
    presets = choose_presets(report(rows))
    assert presets == [
        {"name": "Quiet room", "threshold": 0.35, "trigger_windows": 1, "of_windows": 1},
        {"name": "Balanced", "threshold": 0.5, "trigger_windows": 3, "of_windows": 5},
        {"name": "Noisy room", "threshold": 0.6, "trigger_windows": 3, "of_windows": 5},
    ]


def test_a_pick_that_hears_less_than_the_files_own_is_no_quiet_room():
    rows = [row(0.5, 3, 5, 0.70, 2), row(0.9, 1, 1, 0.40, 0), row(0.6, 3, 5, 0.6, 0)]
    quiet, balanced, _ = choose_presets(report(rows))
    assert {**quiet, "name": "Balanced"} == balanced


def test_a_night_without_a_sweep_or_the_files_setting_is_refused():
    with pytest.raises(RecipeError, match="no sweep"):
        choose_presets({"validation": {"shipped": {"setting": OWN}}})
    with pytest.raises(RecipeError, match="did not measure the file's own"):
        choose_presets(report([row(0.6, 3, 5, 0.6, 0)]))
    with pytest.raises(RecipeError, match=r"no threshold above 0\.5"):
        choose_presets(report([row(0.5, 3, 5, 0.6, 0)]))


def test_the_shipped_card_names_the_shipped_files_presets() -> None:
    """The card's row is the one ``evaluate`` writes from the file's own presets."""
    presets = [asdict(p) for p in CryModel(default_model_path()).info.presets]
    assert len(presets) == 3
    card = (default_model_path().parent / "MODEL_CARD.md").read_text()
    assert presets_row(presets) + "\n" in card
    assert "Quiet room: 0.35, 1 of 1; Balanced: 0.5, 3 of 5" in presets_row(presets)
