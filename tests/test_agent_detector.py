import pytest

from cry_mqtt.detector import Detector, DetectorSettings, Episode, Preset


def run(detector: Detector, probs: list[float], hop: float = 1.0, t0: float = 7.0):
    """Feed probabilities one hop apart; return (states, events)."""
    states, events = [], []
    for i, p in enumerate(probs):
        event = detector.update(t0 + i * hop, p)
        states.append(detector.on)
        if event is not None:
            events.append(event)
    return states, events


def settings(**kw) -> DetectorSettings:
    return DetectorSettings(
        **{"threshold": 0.5, "trigger_windows": 2, "of_windows": 3, "hold_seconds": 3.0, **kw}
    )


def test_needs_k_of_n_hits_to_turn_on():
    states, events = run(Detector(settings()), [0.9, 0.1, 0.1, 0.9, 0.2, 0.8])
    assert states == [False, False, False, False, False, True]
    assert events == [Episode(start=12.0, peak=0.9)]


def test_isolated_spikes_never_turn_on():
    states, _ = run(Detector(settings()), [0.99, 0.0, 0.0] * 20)
    assert not any(states)


def test_turns_off_after_hold_without_hits_and_reports_the_episode():
    probs = [0.9, 0.95, 0.7, 0.2, 0.6, 0.1, 0.1, 0.1, 0.1]
    states, events = run(Detector(settings()), probs)
    assert states == [False, True, True, True, True, True, True, False, False]
    start, end = events
    assert start == Episode(start=8.0, peak=0.95)
    assert end == Episode(start=8.0, peak=0.95, end=14.0)
    assert end.duration(99.0) == 6.0


def test_peak_tracks_the_whole_episode():
    _, events = run(Detector(settings()), [0.6, 0.6, 0.99, 0.7, 0.0, 0.0, 0.0, 0.0])
    assert events[-1].peak == 0.99


def test_cooldown_delays_the_next_episode():
    detector = Detector(settings(cooldown_seconds=5.0, hold_seconds=1.0))
    probs = [0.9, 0.9, 0.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    states, events = run(detector, probs)
    # OFF at t=9 (one second without a hit); ON again only once t - 9 >= 5.
    assert states == [False, True, False, False, False, False, False, True, True]
    assert [e.end is None for e in events] == [True, False, True]
    assert events[2].start == 14.0


def test_threshold_can_change_live():
    detector = Detector(settings())
    run(detector, [0.4, 0.4])
    assert not detector.on
    detector.set_threshold(0.3)
    assert detector.update(9.0, 0.4) is not None
    assert detector.on


def test_reset_ends_an_episode_and_forgets_history():
    detector = Detector(settings())
    run(detector, [0.9, 0.9])
    ended = detector.reset(20.0)
    assert ended is not None and ended.end == 20.0
    assert not detector.on
    assert detector.reset(21.0) is None
    assert detector.update(22.0, 0.9) is None  # one hit after the reset is not enough


def test_one_of_one_turns_on_at_the_first_hit():
    states, _ = run(Detector(settings(trigger_windows=1, of_windows=1)), [0.1, 0.6])
    assert states == [False, True]


@pytest.mark.parametrize(
    "kw", [{"threshold": 0.0}, {"threshold": 1.0}, {"trigger_windows": 4}, {"hold_seconds": -1}]
)
def test_invalid_settings_are_rejected(kw):
    with pytest.raises(ValueError):
        settings(**kw)


def test_a_preset_changes_the_threshold_and_the_rule_live_keeping_the_latest_scores():
    detector = Detector(settings())
    run(detector, [0.9, 0.1, 0.1, 0.1, 0.6])  # one hit among the last 3
    quiet = Preset("Quiet room", 0.3, 1, 1)
    noisy = Preset("Noisy room", 0.7, 3, 4)
    detector.apply(noisy.applied(detector.settings))
    assert detector.recent_hits == 0 and detector.settings.hold_seconds == 3.0
    assert detector.settings == noisy.applied(settings())
    states, _ = run(detector, [0.8, 0.8, 0.8], t0=20.0)  # the 4th window back was a miss
    assert states == [False, False, True]
    detector.apply(quiet.applied(detector.settings))
    assert detector.recent_hits == 1  # the latest window only


@pytest.mark.parametrize(
    ("name", "threshold", "k", "n"), [("", 0.5, 1, 1), ("x", 1.0, 1, 1), ("x", 0.5, 2, 1)]
)
def test_a_preset_must_name_a_threshold_and_a_rule_that_can_happen(name, threshold, k, n):
    with pytest.raises(ValueError):
        Preset(name, threshold, k, n)
