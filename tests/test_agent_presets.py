"""Sensitivity presets: a parent picks one in Home Assistant (a select), the detector takes its
threshold and rule at once, the slider fine-tunes it, and the choice survives a restart."""

import json
import subprocess

from support import (
    BASE,
    agent,
    assert_no_audio_leaves,
    build_learning_model,
    feed,
    quiet_noise,
    states,
    stop_agent,
    write_config,
)

from cry_mqtt.detector import Preset
from cry_mqtt.state import SavedSettings


def preset(subscriber) -> tuple[str, dict]:
    return states(subscriber, "preset")[-1], json.loads(states(subscriber, "preset/attributes")[-1])


def test_a_parent_picks_a_preset_fine_tunes_it_and_it_is_kept(tmp_path, broker, subscriber):
    model = build_learning_model(tmp_path / "learning.onnx")
    config = write_config(tmp_path, broker.port, model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        name, attributes = preset(subscriber)
        assert name == "Balanced" and attributes["rule"].startswith("on when 3 of the last 5")
        subscriber.publish(f"{BASE}/preset/set", "Loud")  # not one of them: rejected
        subscriber.publish(f"{BASE}/preset/set", "Quiet room")
        subscriber.wait_for(lambda m: states(subscriber, "preset")[-1:] == ["Quiet room"])
        subscriber.wait_for(lambda m: states(subscriber, "threshold")[-1:] == ["30"])
        name, attributes = preset(subscriber)
        assert attributes["rule"].startswith("on when 1 of the last 1 windows reach 30 %")
        assert not attributes["fine_tuned"]
        subscriber.publish(f"{BASE}/threshold/set", "35")  # the slider fine-tunes the preset
        subscriber.wait_for(lambda m: states(subscriber, "threshold")[-1:] == ["35"])
        feed(run, quiet_noise(2))
    finally:
        err = stop_agent(run).decode()
    assert preset(subscriber)[0] == "Quiet room" and preset(subscriber)[1]["fine_tuned"]
    assert_no_audio_leaves(subscriber)  # the select's and the memory's attributes included
    assert "sensitivity: Quiet room" in err and err.count("rejected MQTT command") == 1
    assert json.loads((tmp_path / "state.json").read_text())["preset"] == "Quiet room"

    subscriber.messages.clear()
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
    finally:
        stop_agent(run)
    name, attributes = preset(subscriber)
    assert name == "Quiet room" and attributes["fine_tuned"] and attributes["threshold"] == 35.0
    assert attributes["rule"].startswith("on when 1 of the last 1 windows reach 35 %")


def test_a_saved_preset_the_model_does_not_name_is_ignored_with_a_warning(tmp_path, caplog):
    saved = SavedSettings(tmp_path / "state.json")
    saved.save(preset="Quiet room", threshold=0.3)
    presets = [Preset("Quiet room", 0.3, 1, 1)]
    assert saved.preset(saved.load(), presets) == presets[0]
    assert saved.preset(saved.load(), []) is None  # another model file's
    assert "ignoring saved preset 'Quiet room'" in caplog.text
    saved.save(preset=7)
    assert "preset" not in saved.load()
