"""``python -m training race``: a window confirmed by another model counts only where that model
agrees; the pick is made on the tuning night and measured on the others; streamed scores are
kept and read back instead of streamed again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import cry_like, quiet_noise, write_wav
from training_fixtures import make_cache

from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel
from training import RecipeError
from training.__main__ import main
from training.night.assemble import Corpus, plan
from training.night.measure import Grid, stream_night
from training.night.race import Candidate, NightPlan, Scores, confirmed, race, scores_of, table

GRID = Grid(thresholds=(0.5, 0.6, 0.7, 0.8, 0.9), k_of_n=((1, 1), (2, 3)), holds=(10.0,))
CRYING = [cry_like(3.0 + s, seed=s) for s in range(4)]


def night_plan(name: str, seed: int = 0) -> NightPlan:
    corpus = Corpus(CRYING, [quiet_noise(2.0 + s, seed=s) for s in range(5)], ["speech"] * 5)
    return NightPlan(name, corpus, plan(corpus, 0.25, 1, seed))


def scores(where: NightPlan, crying: float, background: float, spikes: float) -> Scores:
    """A score a second: ``crying`` from an episode's second window on (the first is slow),
    ``background`` elsewhere, and ``spikes`` for 3 s at two quiet moments between episodes."""
    total = where.night.samples / 16000
    t = np.arange(7.0, total, 1.0)
    prob = np.full(len(t), background)
    for episode in where.night.truth:
        prob[(t >= episode.start + 1) & (t < episode.end)] = crying
    quiet = [
        i
        for i, end in enumerate(t)
        if end > 60 and all(not e.start - 1 <= end < e.end + 10 for e in where.night.truth)
    ]
    for start in (quiet[10], quiet[-20]):
        prob[start : start + 3] = spikes
    return Scores(t, prob, total)


def test_a_confirmed_window_counts_only_where_the_confirming_model_reaches_its_threshold():
    own = Scores(np.array([7.0, 8.0, 9.0]), np.array([0.9, 0.9, 0.2]), 10.0)
    by = Scores(np.array([7.0, 8.0, 9.0]), np.array([0.1, 0.5, 0.9]), 10.0)
    assert confirmed(own, by, 0.4).prob.tolist() == [0.0, 0.9, 0.2]
    assert confirmed(own, Scores(by.t - 0.024, by.prob, 10.0), 0.4).prob.tolist() == [0, 0.9, 0.2]
    shifted = Scores(by.t + 0.5, by.prob, 10.0)
    with pytest.raises(RecipeError, match="no window ending where"):
        confirmed(own, shifted, 0.4)


def test_the_confirmed_candidate_hears_what_its_model_alone_must_give_up(fixture_model: Path):
    """Alone, the model's two loud false alarms hold it above its own crying scores; YAMNet's
    stand-in scores them low, so the confirmed candidate picks a threshold that hears crying.
    Each pick is measured on the independent night, which takes no part in it."""
    tuning, independent = night_plan("tuning"), night_plan("independent", seed=1)
    model = CryModel(fixture_model)
    student = {w.name: {1.0: scores(w, 0.8, 0.3, 0.85)} for w in (tuning, independent)}
    teacher = {w.name: scores(w, 0.9, 0.2, 0.1) for w in (tuning, independent)}
    alone = Candidate("student", model, student)
    both = Candidate("student confirmed", model, student, teacher, (0.3, 0.95))
    results = race([alone, both], tuning, [independent], GRID)

    assert results[0]["setting"]["threshold"] == 0.9  # above the spikes: hears nothing
    assert results[0]["tuning"]["recall_snr_ge_0"] == 0.0
    chosen = results[1]["setting"]
    assert chosen["confirm_at"] == 0.3 and chosen["threshold"] <= 0.8
    assert (chosen["trigger_windows"], chosen["of_windows"]) == (1, 1)
    assert results[1]["tuning"]["false_alarms"] == 0
    measured = results[1]["independent"]
    assert measured["recall_snr_ge_0"] == 1.0 and measured["false_alarms"] == 0
    assert measured["latency_median_s"] == pytest.approx(1.0, abs=1.0)
    curve = measured["thresholds_information_only"]
    assert [r["threshold"] for r in curve] == list(GRID.thresholds)
    assert results[0]["independent"]["false_alarms"] == 0  # nothing reaches 0.9 there either
    lines = table({"nights": {"tuning": {}, "independent": {}}, "candidates": results})
    assert lines[3].startswith("| student confirmed | 0.5, 1 of 1, 1 s (0.3) | 1.000, 0 (0.00)")


def test_a_model_scored_only_at_another_hop_than_its_files_is_picked_there(fixture_model: Path):
    tuning, model = night_plan("tuning"), CryModel(fixture_model)
    other = model.info.votes.hop_seconds + 1.0  # a label: the scores are a second apart
    only = {tuning.name: {other: scores(tuning, 0.8, 0.3, 0.1)}}
    (result,) = race([Candidate("student", model, only)], tuning, [], GRID)
    assert result["file_setting"]["hop_s"] == model.info.votes.hop_seconds
    assert result["setting"]["hop_s"] == other and result["tuning"]["recall_snr_ge_0"] == 1.0


def test_a_night_is_streamed_once_and_read_back(fixture_model: Path, tmp_path: Path):
    where, model = night_plan("tuning"), CryModel(fixture_model)
    first = scores_of(model, where, 1.0, tmp_path)
    (saved,) = tmp_path.glob("*.npz")
    assert saved.name == "fixture-tuning-hop1.npz"
    written = saved.stat().st_mtime_ns
    again = scores_of(model, where, 1.0, tmp_path)
    assert saved.stat().st_mtime_ns == written
    assert np.array_equal(again.prob, first.prob) and again.total == first.total
    streamed = stream_night(model, where.corpus, where.night, DetectionConfig(hop_seconds=1.0))
    assert first.t.tolist() == [r.t for r in streamed.results]
    assert first.prob.tolist() == [r.prob for r in streamed.results]
    # Another night of the same name (a longer one) is streamed again, not read back.
    longer = NightPlan("tuning", where.corpus, plan(where.corpus, 0.3, 1, 0))
    assert scores_of(model, longer, 1.0, tmp_path).total > first.total


def test_the_race_command_streams_once_and_races_each_model_alone_and_confirmed(
    fixture_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    runs = tmp_path / "runs"
    make_cache(runs, "valid")
    independent = tmp_path / "independent"
    independent.mkdir()
    rows = ["path,label,category,source,detail,license,seconds"]
    for i in range(3):
        write_wav(independent / f"cry{i}.wav", cry_like(4.0, seed=i))
        write_wav(independent / f"hum{i}.wav", quiet_noise(5.0, seed=i))
        rows += [f"cry{i}.wav,1,cry,s,d,l,4", f"hum{i}.wav,0,hum,s,d,l,5"]
    (independent / "manifest.csv").write_text("\n".join(rows) + "\n")
    teacher = tmp_path / "teacher.onnx"
    teacher.write_bytes(fixture_model.read_bytes())
    out = tmp_path / "race"
    argv = [
        "--runs", str(runs), "race", str(fixture_model), "--confirm-by", str(teacher),
        "--independent", str(independent), "--tuning-hours", "0.25", "--per-snr", "1",
        "--independent-night", "0.25", "1", "--thresholds", "0.5", "0.9", "0.2",
        "--confirm-at", "0.3", "0.6", "--out", str(out),
    ]  # fmt: skip
    main(argv)
    first = capsys.readouterr().out
    assert first.count("streamed ") == 4  # two models, two nights, one hop
    report = json.loads((out / "race.json").read_text())
    assert [c["candidate"] for c in report["candidates"]] == [
        "teacher",
        "fixture",
        "fixture confirmed by teacher",
    ]
    assert report["thresholds"] == [0.5, 0.7, 0.9]
    assert list(report["nights"]) == ["tuning-0.25h-seed42", "independent-0.25h-seed42"]
    assert report["candidates"][2]["setting"]["confirm_at"] in (0.3, 0.6)
    assert "| fixture confirmed by teacher | " in first
    main(argv)
    assert "streamed " not in capsys.readouterr().out
