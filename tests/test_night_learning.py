"""The "not crying" memory measured: its calibration on training sources (the similarity), and a
night replayed with a parent's marks."""

import numpy as np
import pytest

from cry_mqtt.detector import DetectorSettings
from cry_mqtt.memory import FalseAlarms
from cry_mqtt.pipeline import WindowResult
from training import RecipeError
from training.data.items import Item
from training.evaluation.memory import Heard, calibrate
from training.night.assemble import Corpus, Night, Scene, Truth
from training.night.learning import home, joined, learning_metrics, measure, replay_with_marks
from training.night.measure import PipelinePass, replay

CRY, MOAN, FAN = np.eye(8, dtype=np.float32)[:3]


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def heard(label: int, group: str, probs: list[float], embeddings: list[np.ndarray]) -> Heard:
    item = Item(f"{group}.wav", label, "test", "crying" if label else "adult pain", group)
    return Heard(item, np.array(probs), np.stack(embeddings))


def test_the_similarity_is_the_lowest_at_which_no_crying_window_is_vetoed():
    rng = np.random.default_rng(0)
    crying = [
        heard(1, f"family-{i}", [0.9, 0.3], [unit(CRY + rng.normal(0, 0.2, 8)) for _ in "ab"])
        for i in range(20)
    ]
    # A parent would mark a moan that comes near the threshold; some crying is rather like it.
    moan = heard(0, "voice-1", [0.4], [unit(MOAN + 2 * CRY)])
    # A fan, heard for a while: its later windows are more or less like its first.
    fan = heard(0, "fan", [0.01] * 9, [unit(FAN + rng.normal(0, 0.05, 8)) for _ in range(9)])
    result = calibrate([*crying, moan, fan], threshold=0.5)

    assert result["crying_windows"] == 20 and result["near_threshold"]["windows"] == 1
    rows = {r["similarity"]: r for r in result["rows"]}
    likeness = max(float(unit(MOAN + 2 * CRY) @ h.embeddings[0]) for h in crying)
    assert result["crying_likeness_max"] == pytest.approx(likeness, abs=1e-4)
    pick = result["pick"]
    assert rows[pick]["crying_vetoed"] == 0 and pick >= likeness
    below = [s for s in rows if s < pick]
    assert below and all(rows[s]["crying_vetoed"] > 0 for s in below)
    assert rows[0.80]["later_recognised"] >= rows[pick]["later_recognised"] > 0  # the fan

    with pytest.raises(RecipeError, match="no negative comes near"):
        calibrate([*crying, fan], threshold=0.5)


def window(t: float, prob: float, embedding: np.ndarray) -> WindowResult:
    return WindowResult(t, prob, -30.0, False, False, None, embedding=embedding)


def test_a_parent_marks_a_false_alarm_and_the_same_sound_comes_back_in_vain():
    # Each second: the fan fools the model twice, crying comes in between.
    fan = {**dict.fromkeys(range(10, 20), (0.9, FAN)), **dict.fromkeys(range(200, 210), (0.9, FAN))}
    scores = fan | dict.fromkeys(range(100, 140), (0.9, CRY))
    results = [window(float(t), *scores.get(t, (0.1, MOAN))) for t in range(400)]
    truth = [Truth(100.0, 140.0, 10.0)]
    settings = DetectorSettings(0.5, 3, 5, 10.0)

    baseline = replay(results, settings, 400.0)
    spans, marked = replay_with_marks(results, settings, 400.0, truth, 7.0, FalseAlarms(0.9), 30.0)
    assert len(baseline) == 3 and len(spans) == 2 and marked == [(12.0, 29.0)]
    metrics = learning_metrics(truth, baseline, spans, 400.0, 7.0)
    assert metrics["without_marks"]["false_alarms"] == 2
    assert metrics["with_marks"]["false_alarms"] == 1
    assert metrics["episodes_lost"] == 0 and metrics["episodes_delayed"] == 0


def test_nights_in_a_home_are_one_stream_and_the_memory_learns_on_the_first():
    """The same fan on two nights: the parent's mark on the first keeps the second quiet."""
    night = Night([Scene(100.0, 40.0, 10.0)], [])
    windows = [window(float(t), 0.9 if t in range(10, 20) else 0.1, FAN) for t in range(200)]
    passes = [PipelinePass(Corpus([], [], []), night, windows, [], 200.0, 1.0)] * 2
    results, truth, total = joined(passes)
    assert total == 400.0 and [t.start for t in truth] == [100.0, 300.0]
    assert results[200].t == 200.0
    report = measure(passes, DetectorSettings(0.5, 3, 5, 10.0), FalseAlarms(0.9), 30.0, 7.0)
    assert report["marked"] == 1
    assert report["first_night"]["with_marks"]["false_alarms"] == 1
    assert report["later_nights"]["without_marks"]["false_alarms"] == 1
    assert report["later_nights"]["with_marks"]["false_alarms"] == 0


def test_a_home_keeps_some_of_the_recordings_and_all_the_crying():
    corpus = Corpus([np.ones(3)], [np.full(2, i) for i in range(10)], [f"c{i}" for i in range(10)])
    place = home(corpus, 4, np.random.default_rng(0))
    assert place.positives == corpus.positives and len(place.negatives) == 4
    assert [f"c{int(n[0])}" for n in place.negatives] == place.categories
