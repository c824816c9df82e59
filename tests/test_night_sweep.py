"""The sweep picks the best detector setting on a tiny synthetic case."""

from cry_mqtt.config import DetectionConfig
from cry_mqtt.pipeline import WindowResult
from training.night.assemble import Truth
from training.night.measure import Grid, detection_config, pick, sweep

TRUTH = [Truth(100.0, 120.0, 0.0), Truth(300.0, 330.0, 10.0)]


def windows() -> list[WindowResult]:
    """One window a second: background at 0.4, one noise spike of 0.7, crying at 0.9."""
    probs = []
    for t in range(600):
        crying = any(e.start <= t < e.end for e in TRUTH)
        probs.append(0.9 if crying else 0.7 if t == 200 else 0.4)
    return [WindowResult(float(t), p, -30.0, False, False, None) for t, p in enumerate(probs)]


GRID = Grid(thresholds=(0.35, 0.6, 0.8), k_of_n=((1, 1), (2, 3)), holds=(5.0,))


def test_sweep_covers_the_grid_and_picks_the_quietest_fastest_setting():
    rows = sweep(TRUTH, {1.0: (windows(), 600.0)}, GRID, window_seconds=7.0)
    assert len(rows) == 6
    by = {(r["threshold"], r["trigger_windows"]): r for r in rows}
    assert by[(0.6, 1)]["false_alarms"] == 1  # the spike
    assert by[(0.6, 2)]["false_alarms"] == 0 and by[(0.6, 2)]["latency_median_s"] == 1.0
    assert by[(0.35, 1)]["recall_snr_ge_0"] == 0.0  # always ON: one long false alarm
    chosen = pick(rows, {"hop_s": 1.0, "threshold": 0.6, "trigger_windows": 2, "of_windows": 3})
    assert (chosen["threshold"], chosen["trigger_windows"], chosen["of_windows"]) == (0.8, 1, 1)
    assert chosen["false_alarms"] == 0 and chosen["latency_median_s"] == 0.0
    config = detection_config(chosen, DetectionConfig())
    assert (config.threshold, config.trigger_windows, config.of_windows) == (0.8, 1, 1)


def test_without_a_feasible_setting_the_fewest_false_alarms_win():
    rows = sweep(TRUTH, {1.0: (windows(), 600.0)}, Grid((0.35, 0.6), ((1, 1),), (5.0,)), 7.0)
    # 0.35 is ON from the start (one false alarm, nothing found), 0.6 also fires on the spike
    chosen = pick(rows, {})
    assert (chosen["threshold"], chosen["false_alarms"], chosen["recall_snr_ge_0"]) == (0.6, 1, 1.0)


def row(hop: float, threshold: float, recall: float, alarms: int, latency: float) -> dict:
    """A sweep row of a 4-h night with what :func:`pick` reads."""
    return {
        "hop_s": hop,
        "threshold": threshold,
        "trigger_windows": 1,
        "of_windows": 1,
        "hold_seconds": 10.0,
        "recall_snr_ge_0": recall,
        "recall_by_snr_db": {"-5": recall / 2},
        "false_alarms": alarms,
        "false_alarms_per_hour": alarms / 4,
        "latency_median_s": latency,
    }


def test_a_faster_hop_is_taken_only_for_a_target_latency_at_no_cost():
    current = {"hop_s": 1.0, "threshold": 0.5, "trigger_windows": 1, "of_windows": 1}
    slow = [row(1.0, 0.5, 0.9, 1, 4.0), row(1.0, 0.4, 0.95, 3, 3.5)]
    assert pick(slow, current) == slow[0]
    # At 0.5 s: one setting answers in time but raises an alarm more, one hears less, one wins.
    louder, deafer = row(0.5, 0.5, 0.9, 2, 2.5), row(0.5, 0.7, 0.8, 0, 2.5)
    better = row(0.5, 0.6, 0.9, 1, 2.8)
    assert pick([*slow, louder, deafer], current) == slow[0]
    assert pick([*slow, louder, deafer, better], current) == better
    # A pick that is already fast enough keeps the agent's hop.
    fast = row(1.0, 0.5, 0.9, 1, 2.9)
    assert pick([fast, better, louder], current) == fast
