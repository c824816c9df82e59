"""The cost benchmark's measurements on a few seconds of audio."""

import sys

import numpy as np
import pytest
from support import REPO, cry_like, quiet_noise, write_wav

from cry_mqtt.features import FeatureParams, logmel

sys.path.insert(0, str(REPO / "bench"))
import agent_cost
import cost
import episode_cost


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    audio = np.concatenate([quiet_noise(3, level=3e-5), cry_like(6), quiet_noise(10, level=3e-5)])
    return write_wav(tmp_path_factory.mktemp("cost") / "short.wav", audio)


def test_seed_features_equal_the_agent_features():
    params = FeatureParams()
    window = cry_like(7.0)[: params.samples_for(215)]
    seed = cost.seed_logmel(window, params)
    assert seed.shape == (128, 215)
    assert np.abs(seed - logmel(window, params)).max() < 0.05


def test_agent_and_seed_measure_the_same_windows(wav, fixture_model):
    agent = agent_cost.measure(wav, fixture_model, 1.0, cost.NO_GATE)
    seed = cost.measure_seed(wav, fixture_model, 1.0)
    for result in (agent, seed):
        assert result["audio_s"] == 19.0
        assert result["cpu_s_per_audio_hour"] > 0
        assert result["model_ms_per_window"] > 0
        assert result["peak_rss_mb"] > 10
        assert result["first_score_audio_s"] == pytest.approx(6.98, abs=0.01)
        assert result["first_score_s"] >= result["startup_s"]
    assert agent["hop_s"] == seed["hop_s"] == 0.992
    assert agent["windows"] == seed["windows"] == 13
    gated = agent_cost.measure(wav, fixture_model, 1.0, cost.AGENT_GATE)
    assert gated["scored"] < gated["windows"] == 13


def test_ratios_per_hop_asked_for():
    """A model with another frame hop runs at the nearest whole number of its frames."""
    runs = [
        {
            "way": way,
            "hop_asked_s": hop,
            "hop_s": hop * (1.024 if way == "c_resnet34" else 1),
            "cpu_s_per_audio_hour": cpu * (2 if hop == 0.5 else 1),
        }
        for hop in (0.5, 1.0)
        for way, cpu in (
            ("a_agent", 5),
            ("a_agent_no_gate", 10),
            ("b_seed", 50),
            ("c_resnet34", 80),
            ("d_frigate", 4),
        )
    ]
    assert cost.ratios(runs) == [
        {
            "hop_s": hop,
            "b_over_a": 10.0,
            "b_over_a_no_gate": 5.0,
            "c_over_a": 16.0,
            "d_over_a_no_gate": 0.4,
        }
        for hop in (0.5, 1.0)
    ]


def test_frigates_loop_scores_one_chunk_per_hop(wav, data_dir):
    """YAMNet's TFLite file on the latest 0.975-s chunk, once a second: 19 of them in 19 s."""
    frigate = cost.measure_frigate(wav, data_dir, 1.0)
    assert frigate["windows"] == 19 and frigate["scored"] == 19
    assert frigate["first_score_audio_s"] == pytest.approx(0.975, abs=0.01)
    assert frigate["cpu_s_per_audio_hour"] > 0 and frigate["model_ms_per_window"] is None


def test_a_32_khz_model_is_measured_on_the_16_khz_recording(wav, tmp_path, data_dir):
    """The agent's path resamples the recording to the model's rate, as the agent does."""
    pytest.importorskip("torch", reason="exporting the 32 kHz model needs the train extra")
    from cry_mqtt.features import EFFICIENTAT
    from cry_mqtt.model import Patches
    from training.export import streaming_info, write_streaming_onnx
    from training.nets.efficientat import pretrained

    model = tmp_path / "mn04.onnx"
    path = data_dir / "pretrained" / "efficientat" / "mn04_as_mAP_432.pt"
    info = streaming_info(EFFICIENTAT, Patches(100, 50), 0.3, "mn04-test", {})
    write_streaming_onnx(pretrained(path), info, model)
    agent = agent_cost.measure(wav, model, 1.0, cost.NO_GATE)
    assert agent["audio_s"] == 19.0 and agent["windows"] == 13


def test_the_episode_bench_measures_both_ways_over_one_night() -> None:
    pipeline, evidence = (episode_cost.measure(way, 1.5, 45.0) for way in episode_cost.WAYS)
    assert pipeline["episodes"] == evidence["episodes"] == 2
    assert evidence["pictures"] >= 4 and evidence["recorded_kb"] > 0
    assert evidence["recordings"] == 2  # the second ends as the night does, as the agent stops
    assert pipeline["pictures"] == 0 and pipeline["audio_seconds"] == evidence["audio_seconds"]
