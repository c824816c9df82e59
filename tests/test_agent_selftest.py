"""The test of the whole chain: "Test the monitor" plays the bundled crying through the real
features, model and detector and publishes a real ON, then OFF, marked as a test; ``cry-mqtt
check`` runs the same test offline."""

import json
import subprocess

import pytest
from support import BASE, agent, feed, quiet_noise, states, stop_agent, write_config

from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.selftest import TEST_ON_SECONDS, TEST_RECORDING, SelfTestError, self_test


def test_the_shipped_model_hears_the_bundled_crying_and_a_high_threshold_does_not() -> None:
    model = CryModel(default_model_path())
    episode, threshold = self_test(model, DetectionConfig())
    assert threshold == model.info.threshold  # the model's own, when nothing else is set
    assert episode.peak > 0.9 and episode.end is not None
    assert TEST_RECORDING.stat().st_size < 40_000  # a few seconds of Opus in the package
    with pytest.raises(SelfTestError, match=r"did not turn crying on at threshold 0\.99"):
        self_test(model, DetectionConfig(), 0.99)


def test_the_button_turns_crying_on_then_off_marked_as_a_test(
    tmp_path, broker, subscriber, fixture_model
):
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        subscriber.publish(f"{BASE}/test/set", "HOLD")  # not a press: rejected
        subscriber.publish(f"{BASE}/test/set", "PRESS")
        feed(run, quiet_noise(TEST_ON_SECONDS + 6))  # the agent's loop turns on audio blocks
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload == "ON")
        on = json.loads(states(subscriber, "crying/attributes")[-1])
        assert on["test"] is True and on["peak_confidence"] > 50
        subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/crying" and states(subscriber, "crying")[-1] == "OFF"
            and "ON" in states(subscriber, "crying"),
            timeout=TEST_ON_SECONDS + 10,
        )  # fmt: skip
        off = json.loads(states(subscriber, "crying/attributes")[-1])
        assert off["test"] is True and off["episode_duration_s"] == TEST_ON_SECONDS
    finally:
        err = stop_agent(run).decode()
    assert states(subscriber, "crying") == ["OFF", "ON", "OFF"]
    assert "test of the monitor: crying heard" in err
    assert err.count("rejected MQTT command") == 1
    assert states(subscriber, "episodes_tonight") == ["0"]  # a test is no episode of the night
