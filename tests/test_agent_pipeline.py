import json

import numpy as np
import pytest
from support import build_fixture_model, cry_like, quiet_noise, write_wav

from cry_mqtt.cli import main
from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import Votes
from cry_mqtt.features import FeatureParams, logmel
from cry_mqtt.model import CryModel, ModelInfo
from cry_mqtt.pipeline import Pipeline, episodes, votes_hop_warning


class RecordingModel(CryModel):
    """The fixture model, remembering every window it was asked to score."""

    def __init__(self, path):
        super().__init__(path)
        self.windows: list[np.ndarray] = []

    def predict(self, windows):
        self.windows.extend(w.copy() for w in windows)
        return super().predict(windows)


def pipeline(model, **detection) -> Pipeline:
    return Pipeline(model, DetectionConfig(**detection), threshold=0.5)


def push_all(p: Pipeline, x: np.ndarray, chunk: int):
    return list(p.run(x[i : i + chunk] for i in range(0, len(x), chunk)))


@pytest.mark.parametrize(("hop", "frames"), [(1.0, 31), (0.25, 8), (2.0, 62), (7.0, 219)])
def test_hop_is_rounded_to_whole_frames(fixture_model, hop, frames):
    p = pipeline(CryModel(fixture_model), hop_seconds=hop)
    assert p.hop_frames == frames
    assert p.hop_seconds == pytest.approx(frames * 512 / 16000)


def test_windows_equal_the_batch_features_of_their_samples(fixture_model):
    model = RecordingModel(fixture_model)
    x = cry_like(12.0)
    results = push_all(pipeline(model, gate_dbfs=-100.0), x, chunk=1600)
    assert [r.t for r in results] == pytest.approx([6.976 + i * 0.992 for i in range(6)])
    for result, window in zip(results, model.windows, strict=True):
        end = round(result.t * 16000)
        batch = logmel(x[end - 111616 : end], model.info.features)
        assert np.abs(window - batch).max() < 0.01


def test_results_do_not_depend_on_block_size(fixture_model):
    model = CryModel(fixture_model)
    x = np.concatenate([quiet_noise(5), cry_like(10), quiet_noise(15)])
    a = push_all(pipeline(model), x, chunk=160)
    b = push_all(pipeline(model), x, chunk=len(x))
    assert [(r.t, r.on) for r in a] == [(r.t, r.on) for r in b]
    assert np.allclose([r.prob for r in a], [r.prob for r in b], atol=1e-5)


def test_quiet_windows_are_gated_without_running_the_model(fixture_model):
    model = RecordingModel(fixture_model)
    results = push_all(pipeline(model, gate_dbfs=-40.0), quiet_noise(20), chunk=1600)
    assert results and all(r.gated and r.prob == 0.0 for r in results)
    assert all(r.dbfs == pytest.approx(-50.5, abs=0.5) for r in results)
    assert model.windows == []


def test_loud_cry_turns_on_and_off(fixture_model):
    x = np.concatenate([quiet_noise(10), cry_like(20), quiet_noise(30)])
    results = push_all(pipeline(CryModel(fixture_model), hold_seconds=5.0), x, chunk=1600)
    changes = [r for r in results if r.changed is not None]
    assert [c.changed.end is None for c in changes] == [True, False]
    start, end = changes[0].changed.start, changes[1].changed.end
    assert 10 < start < 20 and 30 < end < 45
    assert changes[1].changed.peak > 0.9
    assert episodes(results, 60.0) == [(changes[0].t, changes[1].t)]


def test_an_episode_still_open_at_the_end_closes_there(fixture_model):
    p = pipeline(CryModel(fixture_model))
    results = push_all(p, np.concatenate([quiet_noise(8), cry_like(12)]), chunk=1600)
    [(start, end)] = episodes(results, p.now)
    assert 8 < start < 15 and end == p.now == 20.0


def test_paused_pipeline_never_scores_or_turns_on(fixture_model):
    model = RecordingModel(fixture_model)
    p = pipeline(model)
    p.paused = True
    results = push_all(p, cry_like(20), chunk=1600)
    assert results and not any(r.on for r in results)
    assert model.windows == []


def test_input_shorter_than_a_window_is_scored_once_padded(fixture_model):
    model = RecordingModel(fixture_model)
    results = push_all(pipeline(model), cry_like(3.0), chunk=1600)
    assert len(results) == 1 and len(model.windows) == 1
    assert results[0].dbfs > -25  # the level of the real audio, not of the padding
    assert model.windows[0][:, -50:].max() == pytest.approx(-100.0)  # silence at the end


def test_score_command_prints_windows_and_a_summary(fixture_model, tmp_path, capsys):
    loud = write_wav(tmp_path / "loud.wav", np.concatenate([cry_like(20), quiet_noise(20)]))
    quiet = write_wav(tmp_path / "quiet.wav", quiet_noise(10))
    assert main(["score", "--model", str(fixture_model), str(loud), str(quiet)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    windows = [line for line in lines if not line.get("summary")]
    summaries = [line for line in lines if line.get("summary")]
    assert set(windows[0]) >= {"file", "t", "prob", "dbfs", "state"}
    assert {w["state"] for w in windows if w["file"] == str(loud)} == {"ON", "OFF"}
    loud_summary, quiet_summary = summaries
    assert loud_summary["file"] == str(loud) and loud_summary["detected"] is True
    assert loud_summary["threshold"] == 0.5
    [episode] = loud_summary["episodes"]
    assert 7 <= episode["start"] < 10 and episode["start"] < episode["end"] <= 40
    assert quiet_summary["detected"] is False and quiet_summary["episodes"] == []
    assert quiet_summary["max_prob"] < 0.5


def test_after_a_restart_the_next_window_is_whole_again(fixture_model):
    model = RecordingModel(fixture_model)
    p = pipeline(model, gate_dbfs=-100.0, hold_seconds=60.0)
    before = [r for i in range(0, 160000, 1600) for r in p.push(cry_like(10.0)[i : i + 1600])]
    assert before[-1].on
    ended = p.restart()
    assert ended is not None and not p.detector.on
    x = cry_like(10.0, seed=5)
    model.windows.clear()
    after = [r for i in range(0, len(x), 1600) for r in p.push(x[i : i + 1600])]
    assert after[0].t == pytest.approx(10.0 + 6.976)
    end = round(after[0].t * 16000) - 160000
    assert (
        np.abs(model.windows[0] - logmel(x[end - 111616 : end], model.info.features)).max() < 0.01
    )


def test_invalid_samples_are_counted_and_repaired(fixture_model):
    p = pipeline(CryModel(fixture_model), gate_dbfs=-100.0)
    x = quiet_noise(8.0)
    x[100:110] = np.nan
    x[200:205] = np.inf
    x[300:303] = -7.0
    x[400:420] = 1.2  # a lossy codec's overshoot: clipped, not counted
    results = push_all(p, x, chunk=1600)
    assert p.repaired_samples == 18
    assert results and all(np.isfinite(r.prob) and np.isfinite(r.dbfs) for r in results)


def test_the_model_files_votes_apply_unless_the_config_sets_its_own(tmp_path):
    info = ModelInfo(FeatureParams(), 7.0, 0.5, "votes-1", {}, votes=Votes(1, 2))
    model = CryModel(build_fixture_model(tmp_path / "m.onnx", metadata=info.to_metadata()))
    own = Pipeline(model, DetectionConfig()).detector.settings
    assert (own.trigger_windows, own.of_windows) == (1, 2)
    config = DetectionConfig(trigger_windows=4, of_windows=6)
    given = Pipeline(model, config).detector.settings
    assert (given.trigger_windows, given.of_windows) == (4, 6)


def test_the_agent_scores_at_the_hop_the_files_votes_were_chosen_at(tmp_path):
    info = ModelInfo(FeatureParams(), 7.0, 0.5, "votes-half", {}, votes=Votes(2, 4, 0.5))
    model = CryModel(build_fixture_model(tmp_path / "m.onnx", metadata=info.to_metadata()))
    assert Pipeline(model, DetectionConfig()).hop_seconds == pytest.approx(0.512)
    assert votes_hop_warning(DetectionConfig(), info) is None
    assert Pipeline(model, DetectionConfig(hop_seconds=1.0)).hop_seconds == pytest.approx(0.992)
    assert "chosen at a 0.5-s hop" in votes_hop_warning(DetectionConfig(hop_seconds=1.0), info)


def test_a_hop_other_than_the_votes_hop_is_warned_about():
    info = ModelInfo(FeatureParams(), 7.0, 0.5, "votes-hop", {}, votes=Votes(3, 5, 1.0))
    assert votes_hop_warning(DetectionConfig(), info) is None
    assert votes_hop_warning(DetectionConfig(hop_seconds=2.0, trigger_windows=2, of_windows=3),
                             info) is None  # fmt: skip
    assert votes_hop_warning(DetectionConfig(hop_seconds=2.0), info) == (
        "the model's detector rule (3 of 5 windows) was chosen at a 1-s hop; at "
        "detection.hop_seconds 2 it spans 10 s instead of 5 s: set detection.trigger_windows "
        "and of_windows for this hop"
    )
