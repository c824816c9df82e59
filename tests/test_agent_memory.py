"""A parent's "that was not crying", remembered: the memory's bounds and file, the veto between
the model and the detector, and its safety valve."""

import json
import logging
import subprocess

import numpy as np
import pytest
from support import (
    BASE,
    DISCOVERY,
    agent,
    build_learning_model,
    changes,
    feed,
    quiet_noise,
    states,
    stop_agent,
    tone,
    write_config,
)

from cry_mqtt.detector import Detector, DetectorSettings
from cry_mqtt.memory import FalseAlarms, Learned

SETTINGS = DetectorSettings(threshold=0.5, trigger_windows=3, of_windows=5, hold_seconds=10.0)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    return vector / np.linalg.norm(vector)


HUM, LULLABY, CRY = unit(1, 0, 0, 0), unit(0, 1, 0.1, 0), unit(0, 0, 0, 1)


def run(learned: Learned, start: float, seconds: int, prob: float, heard: np.ndarray) -> int:
    """Windows every second from ``start``; how many the memory kept from counting."""
    vetoed = learned.vetoed
    for t in range(seconds):
        learned.window(start + t, prob, heard)
    return learned.vetoed - vetoed


def test_a_remembered_sound_is_kept_from_crying_and_another_is_not() -> None:
    memory = FalseAlarms(similarity=0.9)
    learned = Learned(memory, override_seconds=30.0, settings=lambda: SETTINGS)
    detector = Detector(SETTINGS)
    heard = [
        (0.8, LULLABY),
        (0.9, unit(0, 1, 0.15, 0)),  # the same sound a moment later: not kept twice
        (0.9, LULLABY),  # the third window over the threshold turns crying on
        (0.3, HUM),  # below the threshold: not part of the false alarm
        (0.9, CRY),  # another sound in the same episode: kept
    ]
    for t, (prob, embedding) in enumerate(heard):
        changed, counted = learned.update(detector, float(t), prob, embedding)
        assert counted == prob  # nothing remembered yet
        assert (changed is not None) == (t == 2)
    assert learned.mark() and not learned.mark()  # marked once; nothing left to mark
    assert memory.episodes == 1 and len(memory.vectors) == 2
    memory.clear()
    memory.add([LULLABY])  # the lullaby alone, remembered
    learned.reset(10.0)
    assert learned.window(20.0, 0.9, unit(0, 1, 0.12, 0)) == 0.0  # like the lullaby: vetoed
    assert learned.window(21.0, 0.9, CRY) == 0.9  # crying still counts
    assert learned.window(22.0, 0.3, LULLABY) == 0.3  # below the threshold it is left alone
    assert learned.window(23.0, 0.9, None) == 0.9  # a gated window has nothing to compare


def test_crying_that_goes_on_turns_on_whatever_the_memory_says() -> None:
    memory = FalseAlarms(similarity=0.9)
    memory.add([LULLABY])
    learned = Learned(memory, override_seconds=30.0, settings=lambda: SETTINGS)
    # The detector's rule over the scores alone turns on at the third window (t=2); from 30 s
    # after that (t=32), nothing is vetoed.
    assert run(learned, 0.0, 32, 0.9, LULLABY) == 32
    assert run(learned, 32.0, 10, 0.9, LULLABY) == 0
    learned.reset(42.0)  # a gap in the audio: the valve starts over
    assert run(learned, 50.0, 5, 0.9, LULLABY) == 5


def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    memory = FalseAlarms(similarity=0.9, max_episodes=2, per_episode=2)
    memory.add([HUM, LULLABY, CRY])  # more windows than an episode keeps
    assert len(memory.vectors) == 2 and memory.like(LULLABY) and not memory.like(CRY)
    memory.add([CRY])
    memory.add([unit(1, 1, 0, 0)])
    assert memory.episodes == 2 and not memory.like(HUM) and memory.like(CRY)
    assert memory.likeness(unit(1, 1, 0, 0)) == pytest.approx(1.0)
    memory.clear()
    assert memory.episodes == 0 and memory.likeness(CRY) == 0.0


def test_the_memory_survives_a_restart_and_a_corrupt_file_loses_it_only(tmp_path, caplog):
    path = tmp_path / "state.memory.npz"
    memory = FalseAlarms(similarity=0.9)
    memory.add([HUM])
    memory.add([LULLABY, CRY])
    assert memory.save(path)
    again = FalseAlarms(similarity=0.9, max_episodes=1)  # a smaller bound keeps the newest
    again.load(path, size=4)
    assert again.episodes == 1 and again.like(CRY) and not again.like(HUM)

    path.write_bytes(b"not a memory")
    fresh = FalseAlarms(similarity=0.9)
    with caplog.at_level(logging.ERROR):
        fresh.load(path, size=4)
    assert fresh.episodes == 0 and "starting empty" in caplog.text
    assert not path.exists() and (tmp_path / "state.memory.npz.corrupt").exists()

    memory.save(path)  # another model's embeddings mean nothing to this one
    fresh.load(path, size=1024)
    assert fresh.episodes == 0 and "the model's have 1024" in caplog.text


def test_a_memory_that_cannot_be_saved_is_logged(tmp_path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("where the folder should be")
    with caplog.at_level(logging.ERROR):
        assert not FalseAlarms(0.9).save(blocked / "state.memory.npz")
    assert "cannot save the false alarms" in caplog.text


HUM_HZ, CRY_HZ = 450.0, 1500.0
"""Two tones the learning fixture model calls crying, unlike each other."""


def memory_state(subscriber) -> dict:
    return json.loads(states(subscriber, "not_crying/attributes")[-1])


def episode(run, subscriber, frequency: float) -> None:
    """10 s of a tone, then quiet until the OFF (10 s after the last window that holds it)."""
    feed(run, tone(10, frequency))
    feed(run, quiet_noise(20))


def test_a_parent_teaches_it_not_crying_and_it_remembers_across_restarts(
    tmp_path, broker, subscriber
):
    model = build_learning_model(tmp_path / "learning.onnx")
    config = write_config(tmp_path, broker.port, model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        assert memory_state(subscriber)["false_alarms_remembered"] == 0
        subscriber.publish(f"{BASE}/not_crying/set", "PRESS")  # nothing to mark yet
        episode(run, subscriber, HUM_HZ)
        subscriber.wait_for(lambda m: changes(subscriber, "crying") == ["OFF", "ON", "OFF"])
        subscriber.publish(f"{BASE}/not_crying/set", "MAYBE")  # not a press: rejected
        subscriber.publish(f"{BASE}/not_crying/set", "PRESS")
        subscriber.wait_for(
            lambda m: m.topic.endswith("not_crying/attributes")
            and memory_state(subscriber)["false_alarms_remembered"] == 1
        )  # fmt: skip
        episode(run, subscriber, HUM_HZ)  # the same sound again: no alarm
        episode(run, subscriber, CRY_HZ)  # another sound still turns crying on
        subscriber.wait_for(lambda m: states(subscriber, "episodes_tonight")[-1:] == ["2"])
    finally:
        err = stop_agent(run).decode()
    assert changes(subscriber, "crying") == ["OFF", "ON", "OFF", "ON", "OFF"]
    assert memory_state(subscriber)["windows_kept_from_crying"] >= 5
    assert "not crying: no episode to remember" in err
    assert "the last episode was not crying: 1 false alarm(s) remembered" in err
    assert err.count("rejected MQTT command") == 1
    assert (tmp_path / "state.memory.npz").exists()
    button = json.loads(subscriber.payloads(DISCOVERY.format("button", "not_crying"))[0])
    assert button["json_attributes_topic"] == f"{BASE}/not_crying/attributes"

    # Restarted, it still knows the hum; forgotten, the hum turns crying on again.
    subscriber.messages.clear()
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        assert memory_state(subscriber)["false_alarms_remembered"] == 1
        episode(run, subscriber, HUM_HZ)
        subscriber.publish(f"{BASE}/forget/set", "PRESS")
        subscriber.wait_for(
            lambda m: m.topic.endswith("not_crying/attributes")
            and memory_state(subscriber)["false_alarms_remembered"] == 0
        )  # fmt: skip
        episode(run, subscriber, HUM_HZ)
        subscriber.wait_for(lambda m: states(subscriber, "episodes_tonight")[-1:] == ["3"])
    finally:
        err = stop_agent(run).decode()
    assert changes(subscriber, "crying") == ["OFF", "ON", "OFF"]
    assert "forgot every false alarm" in err


def test_a_model_without_embeddings_shows_no_learning_buttons(
    tmp_path, broker, subscriber, fixture_model
):
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", "-", stdin=subprocess.PIPE)
    try:
        feed(run, quiet_noise(8))
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/confidence")
        subscriber.publish(f"{BASE}/not_crying/set", "PRESS")
        feed(run, quiet_noise(2))
    finally:
        err = stop_agent(run).decode()
    for key in ("not_crying", "forget"):  # an empty retained config removes the entity
        assert subscriber.payloads(DISCOVERY.format("button", key)) == [""]
    assert "outputs no embeddings" in err and "does not learn false alarms" in err
