"""Both nights through the agent's pipeline with the fixture model: the setting is chosen on the
validation night only, the independent night is measured at it; the page and the module layout."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import REPO, cry_like, quiet_noise

from cry_mqtt.model import CryModel
from training.evaluation.card import nights_section, race_section
from training.night.assemble import Corpus
from training.night.cli import measure_nights
from training.night.measure import SETTING_KEYS, Grid
from training.night.report import night_section

GRID = Grid(thresholds=(0.5, 0.7, 0.9, 0.95), k_of_n=((1, 1), (3, 5)), holds=(10.0,))
CRYING = [cry_like(3.0 + s, seed=s) for s in range(4)]


def tones() -> list[np.ndarray]:
    """Loud steady tones: the fixture model takes them for crying."""
    t = np.arange(4 * 16000) / 16000
    return [np.sin(2 * np.pi * (300 + 100 * k) * t).astype(np.float32) for k in range(5)]


def nights(
    fixture_model: Path, independent: Corpus, out: Path, twin: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    validation = Corpus(CRYING, [quiet_noise(2.0 + s, seed=s) for s in range(5)], ["speech"] * 5)
    others = [twin] if twin else []
    return measure_nights(
        CryModel(fixture_model), validation, independent, 0.25, 1, 0, out, (1.0,), GRID,
        other_sweeps=others,
    )  # fmt: skip


def measured(night: dict[str, Any]) -> dict[str, Any]:
    """A night's results without the speed they were measured at."""
    return {
        k: {m: v for m, v in part.items() if m != "realtime_factor"}
        if isinstance(part, dict)
        else part
        for k, part in night.items()
    }


@pytest.fixture(scope="module")
def quiet_report(fixture_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    independent = Corpus(CRYING, [quiet_noise(3.0, seed=9 + s) for s in range(3)], ["hum"] * 3)
    return nights(fixture_model, independent, tmp_path_factory.mktemp("quiet"))


@pytest.fixture(scope="module")
def tones_report(fixture_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    independent = Corpus(CRYING, tones(), ["a", "b", "c", "d", "e"])
    return nights(fixture_model, independent, tmp_path_factory.mktemp("tones"))


def test_the_independent_night_is_measured_at_the_validation_pick(quiet_report, tones_report):
    for report in (quiet_report, tones_report):
        chosen = report["validation"]["chosen"]["setting"]
        assert report["independent"]["chosen"]["setting"] == chosen
        assert (
            report["independent"]["shipped"]["setting"]
            == report["validation"]["shipped"]["setting"]
        )
        assert "sweep" not in report["independent"]
    # Another independent set changes nothing on the validation side, the pick included ...
    assert measured(quiet_report["validation"]) == measured(tones_report["validation"])
    # ... although a pick on the tones' night would have been another threshold.
    at_pick = tones_report["independent"]["chosen"]
    rows = tones_report["independent"]["thresholds_information_only"]
    assert at_pick["false_alarms"] > min(r["false_alarms"] for r in rows)
    assert sum(at_pick["false_alarms_by_category"].values()) == at_pick["false_alarms"]


def test_a_twins_tuning_night_moves_the_pick_and_what_is_measured_at_it(
    fixture_model: Path, quiet_report: dict, tmp_path: Path
) -> None:
    """On another tuning night (a leave-source-out twin's) every setting below the strictest
    threshold raises false alarms: the pick moves there, and the held-out and independent
    nights are measured at it."""
    own = quiet_report["validation"]["chosen"]["setting"]
    strictest = max(GRID.thresholds)
    assert own["threshold"] < strictest
    twin = [
        {**r, "false_alarms": alarms, "false_alarms_per_hour": alarms / r["non_crying_hours"]}
        for r in quiet_report["validation"]["sweep"]
        for alarms in [0 if r["threshold"] == strictest else 9]
    ]
    independent = Corpus(CRYING, [quiet_noise(3.0, seed=9 + s) for s in range(3)], ["hum"] * 3)
    report = nights(fixture_model, independent, tmp_path, twin)
    chosen = report["validation"]["chosen"]
    assert chosen["setting"]["threshold"] == strictest
    assert chosen["replay_matches_pipeline"]
    assert report["validation"]["held_out"]["setting"] == chosen["setting"]
    assert report["independent"]["chosen"]["setting"] == chosen["setting"]
    assert report["validation"]["sweep"] == quiet_report["validation"]["sweep"]


def test_the_information_only_rows_vary_the_threshold_alone(tones_report):
    chosen = tones_report["validation"]["chosen"]["setting"]
    rows = tones_report["independent"]["thresholds_information_only"]
    assert [r["threshold"] for r in rows] == list(GRID.thresholds)
    for r in rows:
        assert {k: r[k] for k in SETTING_KEYS if k != "threshold"} == {
            k: v for k, v in chosen.items() if k != "threshold"
        }
    (at_pick,) = [r for r in rows if r["threshold"] == chosen["threshold"]]
    assert at_pick["false_alarms"] == tones_report["independent"]["chosen"]["false_alarms"]


def test_the_page_shows_both_nights_and_labels_the_independent_sweep(tones_report):
    page = "\n".join(
        night_section({**tones_report, "command": "python -m training night", "night_minutes": 1})
    )
    assert "independent, chosen on validation" in page
    assert "**Information only: nothing is chosen from this table.**" in page
    for category in tones_report["independent"]["usage"]["hours_by_category"]:
        assert f"| {category} |" in page
    tables = [line for line in page.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in tables)


def test_the_model_card_lists_each_model_on_both_nights(quiet_report, tones_report):
    """One row per night.json (read back from JSON), at each file's own setting."""
    saved = [json.loads(json.dumps(r)) for r in (quiet_report, tones_report)]
    lines = nights_section(saved)
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 2
    for row, report in zip(rows, saved, strict=True):
        assert row.startswith(f"| `{report['model']['file']}` ({report['model']['version']}) |")
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8
        setting = report["validation"]["shipped"]["setting"]
        assert cells[1] == (
            f"hop {setting['hop_s']:g} s, threshold {setting['threshold']:g}, "
            f"{setting['trigger_windows']} of {setting['of_windows']} windows, hold "
            f"{setting['hold_seconds']:g} s; {report['validation']['hours']:g} h each"
        )
        for cell, name in ((3, "validation"), (6, "independent")):
            m = report[name]["shipped"]
            assert cells[cell] == f"{m['false_alarms']} ({m['false_alarms_per_hour']:.2f})"
            assert cells[cell - 1] == f"{m['recall_snr_ge_0']:.3f}"


def test_the_race_compares_every_model_at_the_baselines_false_alarms(quiet_report, tones_report):
    """The first night is the baseline; each row gives the validation pick on both nights and,
    read from the independent threshold curve, the best recall within the baseline's count."""
    saved = [json.loads(json.dumps(r)) for r in (quiet_report, tones_report)]
    budget = saved[0]["independent"]["chosen"]["false_alarms"]
    lines = race_section(saved)
    assert f"recall at <= {budget} false alarms |" in lines[4]
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 2
    for row, report in zip(rows, saved, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 10
        chosen = report["independent"]["chosen"]
        assert cells[5:7] == [
            f"{chosen['recall_snr_ge_0']:.3f}",
            f"{chosen['false_alarms']} ({chosen['false_alarms_per_hour']:.2f})",
        ]
        within = [
            r
            for r in report["independent"]["thresholds_information_only"]
            if r["false_alarms"] <= budget
        ]
        best = max(r["recall_snr_ge_0"] for r in within)
        assert cells[9].startswith(f"{best:.3f} at ")
    # Nights run without --sweep have no pick to race.
    unswept = {
        **saved[0],
        "validation": {k: v for k, v in saved[0]["validation"].items() if k != "chosen"},
    }
    assert race_section([unswept]) == []


def test_a_tuning_night_balanced_by_family_says_so_in_the_race(
    fixture_model: Path, tmp_path: Path
) -> None:
    """``night --families`` balances the validation nights only and ``--tuning-hours`` makes
    them longer than the independent one; the card's rows say both."""
    validation = Corpus(
        CRYING, [quiet_noise(2.0 + s, seed=s) for s in range(5)], ["speech"] * 4 + ["rain"]
    )
    independent = Corpus(CRYING, tones(), ["a", "b", "c", "d", "e"])
    families = ["speech"] * 4 + ["household"]
    report = measure_nights(
        CryModel(fixture_model),
        validation,
        independent,
        0.25,
        1,
        0,
        tmp_path,
        (1.0,),
        GRID,
        families,
        tuning_hours=0.5,
    )
    assert report["validation"]["families_balanced"] is True
    assert report["independent"]["families_balanced"] is False
    assert report["validation"]["hours"] == pytest.approx(0.5, abs=0.01)
    assert report["validation"]["held_out"]["non_crying_hours"] > 0.4
    assert report["independent"]["hours"] == pytest.approx(0.25, abs=0.01)
    (night_row,) = [line for line in nights_section([report]) if line.startswith("| `")]
    lengths = f"{report['validation']['hours']:g} h and {report['independent']['hours']:g} h"
    assert f"; {lengths} |" in night_row
    heard = report["validation"]["usage"]["hours_by_category"]
    assert heard["rain"] == pytest.approx(heard["speech"], abs=0.003)  # a recording, rounded
    (row,) = [line for line in race_section([report]) if line.startswith("| `")]
    assert "; families balanced |" in row


def imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_the_night_modules_import_each_other_without_a_circle():
    folder = REPO / "training" / "night"
    graph = {
        f"training.night.{p.stem}": {m for m in imports(p) if m.startswith("training.night")}
        for p in folder.glob("*.py")
        if p.stem != "__init__"
    }
    assert graph["training.night.assemble"] == set()
    assert graph["training.night.measure"] == {"training.night.assemble"}
    assert "training.night.cli" not in set().union(*graph.values())
    done: set[str] = set()
    while len(done) < len(graph):  # peel off modules whose imports are all done
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"import circle among {sorted(set(graph) - done)}"
        done |= ready
    assert imports(folder / "__init__.py") == {
        "training.night.cli",
        "training.night.learning",
        "training.night.race",
    }
