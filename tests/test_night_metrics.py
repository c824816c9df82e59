"""Night test metrics on hand-made sequences, and the detector replay against the pipeline."""

import numpy as np
import pytest
from support import RATE, cry_like, quiet_noise

from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import DetectorSettings
from cry_mqtt.model import CryModel
from cry_mqtt.pipeline import detector_settings
from training.night.assemble import Corpus, Night, Scene, Stretch, Truth
from training.night.measure import (
    evaluate,
    false_alarms,
    false_alarms_by_category,
    replay,
    run_pipeline,
)

TRUTH = [Truth(100.0, 130.0, 0.0), Truth(300.0, 310.0, -5.0), Truth(500.0, 560.0, 20.0)]


def test_recall_false_alarms_latency_and_time_to_off():
    spans = [(50.0, 60.0), (102.5, 145.0), (520.0, 540.0), (545.0, 600.0), (700.0, 710.0)]
    m = evaluate(TRUTH, spans, total=3600.0, window_seconds=7.0)
    assert m["recall_by_snr_db"] == {"-5": 0.0, "+0": 1.0, "+20": 1.0}
    assert m["recall_snr_ge_0"] == 1.0
    assert m["false_alarms"] == 2
    quiet_hours = (3600 - (37 + 17 + 67)) / 3600
    assert m["non_crying_hours"] == pytest.approx(quiet_hours, abs=1e-3)
    assert m["false_alarms_per_hour"] == pytest.approx(2 / quiet_hours, rel=1e-3)
    assert m["latency_median_s"] == pytest.approx(11.25)  # 2.5 and 20
    assert m["latency_p90_s"] == pytest.approx(2.5 + 0.9 * 17.5)
    assert m["time_to_off_median_s"] == pytest.approx(27.5)  # 15 and 40 (last OFF)
    assert m["retriggers_per_episode"] == 0.5


def test_false_alarms_are_the_detections_of_no_episode_and_have_a_category():
    spans = [(5.0, 9.0), (21.0, 30.0), (34.0, 40.0), (70.0, 80.0)]
    bed = [
        Stretch(0, 10 * RATE, -40.0, recording=0),
        Stretch(10 * RATE, 50 * RATE, -70.0),
        Stretch(60 * RATE, 40 * RATE, -40.0, recording=1),
    ]
    night = Night([Scene(20.0, 10.0, 0.0), Scene(70.0, 0.0, 0.0)], bed)
    assert night.truth == [Truth(20.0, 30.0, 0.0)]
    assert false_alarms(night.truth, spans, window_seconds=7.0) == [(5.0, 9.0), (70.0, 80.0)]
    corpus = Corpus([], [quiet_noise(10.0), quiet_noise(40.0)], ["tv", "washer"])
    by_category = false_alarms_by_category(corpus, night, spans, window_seconds=7.0)
    assert by_category == {"tv": 1, "washer": 1}


def test_detections_count_for_an_episode_until_its_last_window_has_left():
    inside = evaluate(TRUTH[:1], [(136.9, 150.0)], total=1000.0, window_seconds=7.0)
    after = evaluate(TRUTH[:1], [(137.1, 150.0)], total=1000.0, window_seconds=7.0)
    assert (inside["recall_snr_ge_0"], inside["false_alarms"]) == (1.0, 0)
    assert (after["recall_snr_ge_0"], after["false_alarms"]) == (0.0, 1)


def test_no_detections():
    m = evaluate(TRUTH, [], total=3600.0, window_seconds=7.0)
    assert m["recall_snr_ge_0"] == 0.0 and m["false_alarms_per_hour"] == 0.0
    assert np.isnan(m["latency_median_s"])


def stream() -> list[np.ndarray]:
    parts = [quiet_noise(20), cry_like(12), quiet_noise(25), cry_like(4, seed=3), quiet_noise(30)]
    return [np.concatenate(parts)]


@pytest.mark.parametrize(
    "settings",
    [
        DetectorSettings(0.5, 1, 1, 2.0),
        DetectorSettings(0.7, 2, 3, 5.0),
        DetectorSettings(0.9, 3, 4, 0.0),
    ],
)
def test_replay_gives_what_the_pipeline_gives(fixture_model, settings):
    model = CryModel(fixture_model)
    stored, _, total = run_pipeline(model, DetectionConfig(threshold=0.5), stream())
    config = DetectionConfig(
        threshold=settings.threshold,
        trigger_windows=settings.trigger_windows,
        of_windows=settings.of_windows,
        hold_seconds=settings.hold_seconds,
    )
    assert detector_settings(config, model.info) == settings
    _, spans, _ = run_pipeline(model, config, stream())
    assert spans and replay(stored, settings, total) == spans
