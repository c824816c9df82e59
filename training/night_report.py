"""``docs/performance.md``: the night test and the cost benchmark, with their plots."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.data import REPO_ROOT
from training.night import EPISODE_SECONDS, SNRS, TARGETS, Grid
from training.night_plots import save

COMMAND = "python -m training night --report"
SETTING_KEYS = ("hop_s", "threshold", "trigger", "window", "hold_seconds")


def run_cost(out: Path, minutes: float, model: Path | None) -> dict[str, Any]:
    """``bench/cost.py`` in its own process (it starts one per configuration)."""
    command = [sys.executable, str(REPO_ROOT / "bench" / "cost.py"), "--minutes", str(minutes)]
    command += ["--out", str(out)] + (["--model", str(model)] if model else [])
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def cost_plot(cost: dict[str, Any], out: Path) -> Path:
    """CPU seconds per audio hour of each way against the hop."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
    for way in cost["ways"]:
        runs = sorted((r for r in cost["runs"] if r["way"] == way), key=lambda r: r["hop_s"])
        ax.plot([r["hop_s"] for r in runs], [r["cpu_s_per_audio_hour"] for r in runs], "o-")
        ax.annotate(way, (runs[0]["hop_s"], runs[0]["cpu_s_per_audio_hour"]), fontsize=7)
    ax.axhline(36, ls="--", lw=0.8, color="grey")
    ax.text(ax.get_xlim()[1], 36, " 1% of a core", fontsize=7, va="bottom", ha="right")
    ax.set(xlabel="hop (s)", ylabel="CPU s per hour of audio", yscale="log")
    ax.set_title("cost against hop (same recording)", fontsize=9)
    return save(fig, out)


def write_report(
    night: dict[str, Any],
    runs: Path,
    docs: Path,
    cost_minutes: float,
    model: Path | None = None,
) -> Path:
    """Run the cost benchmark, copy the plots to ``docs`` and write ``performance.md``."""
    cost = run_cost(runs / "cost.json", cost_minutes, model)
    cost_plot(cost, docs / "cost-hop.png")
    for name in ("night-timeline.png", "night-tradeoff.png"):
        shutil.copy(runs / name, docs / name)
    out = docs / "performance.md"
    out.write_text(render(night, cost))
    print(f"written to {out}")
    return out


def _hop(row: dict[str, Any]) -> float:
    return row["hop_s"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _setting(s: dict[str, Any]) -> str:
    return (
        f"hop {s['hop_s']:g} s, threshold {s['threshold']:g}, {s['trigger']} of "
        f"{s['window']} windows, hold {s['hold_seconds']:g} s"
    )


def _metrics_table(columns: dict[str, dict[str, Any]]) -> list[str]:
    names = list(columns)
    rows = [
        ("setting", lambda m: _setting(m["setting"]) if "setting" in m else "as chosen"),
        *(
            (f"episode recall at {s:+g} dB", lambda m, k=f"{s:+g}": _pct(m["recall_by_snr_db"][k]))
            for s in SNRS
        ),
        (f"recall at SNR >= 0 dB (target >= {_pct(TARGETS['recall_snr_ge_0'])})",
         lambda m: _pct(m["recall_snr_ge_0"])),
        (f"false alarms per hour (target <= {TARGETS['false_alarms_per_hour']})",
         lambda m: f"{m['false_alarms_per_hour']:.2f} ({m['false_alarms']} in "
         f"{m['non_crying_hours']:.1f} h)"),
        (f"latency onset -> ON, median (target <= {TARGETS['latency_median_s']:g} s)",
         lambda m: f"{m['latency_median_s']:.1f} s"),
        ("latency onset -> ON, p90", lambda m: f"{m['latency_p90_s']:.1f} s"),
        ("time to OFF after the end, median", lambda m: f"{m['time_to_off_median_s']:.1f} s"),
        ("time to OFF after the end, p90", lambda m: f"{m['time_to_off_p90_s']:.1f} s"),
        ("extra ON per detected episode", lambda m: f"{m['retriggers_per_episode']:.2f}"),
    ]  # fmt: skip
    lines = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    lines += [
        f"| {label} | " + " | ".join(f(columns[n]) for n in names) + " |" for label, f in rows
    ]
    return lines


def _sweep_table(night: dict[str, Any]) -> list[str]:
    chosen = {k: night["chosen"]["setting"][k] for k in SETTING_KEYS}
    rows = sorted(
        night["sweep"],
        key=lambda r: (
            r["false_alarms_per_hour"] > TARGETS["false_alarms_per_hour"],
            -r["recall_snr_ge_0"],
            r["latency_median_s"],
        ),
    )[:12]
    lines = [
        "| hop s | threshold | k of n | hold s | recall >= 0 dB | recall -5 dB | FA/h | "
        "latency median s | time to OFF median s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        mark = " **(chosen)**" if {k: r[k] for k in SETTING_KEYS} == chosen else ""
        lines.append(
            f"| {r['hop_s']:g} | {r['threshold']:g}{mark} | {r['trigger']} of {r['window']} | "
            f"{r['hold_seconds']:g} | {_pct(r['recall_snr_ge_0'])} | "
            f"{_pct(r['recall_by_snr_db']['-5'])} | {r['false_alarms_per_hour']:.2f} | "
            f"{r['latency_median_s']:.1f} | {r['time_to_off_median_s']:.1f} |"
        )
    return lines


def _budget_table(night: dict[str, Any]) -> list[str]:
    """The best recall the sweep found within each false-alarm budget."""
    lines = [
        "| FA/h budget | best setting | recall >= 0 dB | recall -5 dB | FA/h | latency median s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for budget in (0.1, 0.5, 1.0, 2.0, 5.0):
        within = [r for r in night["sweep"] if r["false_alarms_per_hour"] <= budget]
        if not within:
            continue
        r = max(within, key=lambda r: (r["recall_snr_ge_0"], -r["latency_median_s"]))
        lines.append(
            f"| {budget:g} | {_setting(r)} | {_pct(r['recall_snr_ge_0'])} | "
            f"{_pct(r['recall_by_snr_db']['-5'])} | {r['false_alarms_per_hour']:.2f} | "
            f"{r['latency_median_s']:.1f} |"
        )
    return lines


def _cost_tables(cost: dict[str, Any]) -> list[str]:
    lines = [
        "| way | hop s | CPU s per audio hour | % of one core | windows scored | model ms/window "
        "| peak RSS MB | start-up s | first score s (wall, after audio s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(cost["runs"], key=lambda r: (r["way"], r["hop_s"])):
        lines.append(
            f"| {r['way']} | {r['hop_s']:g} | {r['cpu_s_per_audio_hour']:.1f} | "
            f"{r['core_percent']:.2f} | {r['scored']}/{r['windows']} | "
            f"{r['model_ms_per_window']:.2f} | {r['peak_rss_mb']:.0f} | {r['startup_s']:.2f} | "
            f"{r['first_score_s']:.2f} (after {r['first_score_audio_s']:.2f}) |"
        )
    lines += [
        "",
        "| hop s | (b) seed / (a) agent | (b) / (a) without gate | (c) ResNet34 / (a) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['hop_s']:g} | {r['b_over_a']:.1f}x | {r['b_over_a_no_gate']:.1f}x | "
        f"{r['c_over_a']:.1f}x |"
        for r in cost["ratios"]
    ]
    return lines


def render(night: dict[str, Any], cost: dict[str, Any]) -> str:
    """The Markdown of ``docs/performance.md``."""
    n = night["night"]
    grid = Grid()
    hops = sorted({r["hop_s"] for r in night["sweep"]})
    chosen = night["chosen"]
    ways = cost["ways"]
    agent = [r for r in cost["runs"] if r["way"] == "a_agent"]
    cheap = ", ".join(
        f"{r['core_percent']:.2f}% at hop {r['hop_s']:g} s" for r in sorted(agent, key=_hop)
    )
    faster = ", ".join(
        f"{r['b_over_a']:.1f}x at hop {r['hop_s']:g} s "
        f"({'met' if r['b_over_a'] >= 5 else 'missed'})"
        for r in cost["ratios"]
    )
    lines = [
        "# Performance: the night test and the cost benchmark",
        "",
        f"Regenerate everything on this page (about 10-15 minutes on 2 cores) with `{COMMAND}`.",
        f"Model: `{night['model']['file']}` version `{night['model']['version']}`. "
        f"Machine: {cost['machine']}.",
        "",
        "## Night test",
        "",
        f"A {n['hours']:.1f}-hour recording is assembled from the **validation** side of the "
        "training split only (`training/split.py`, same fraction and seed as `python -m training "
        f"prepare`): {n['validation_negatives']} negative recordings "
        f"({n['validation_negative_minutes']} minutes, so each is heard many times, at random "
        "levels of -50 to -30 dBFS) alternate "
        "with quiet stretches of room noise at -75 to -55 dBFS (half the time). "
        f"{n['episodes_per_snr']} crying episodes per SNR of {', '.join(f'{s:+g}' for s in SNRS)} "
        f"dB, {EPISODE_SECONDS[0]:g}-{EPISODE_SECONDS[1]:g} s long (log-uniform), are built "
        f"from the {n['validation_positives']} validation Donate-a-cry clips that hold crying "
        "(`training.data.holds_crying`; each levelled, "
        "back to back) and mixed over the background at known times; the SNR is taken against "
        "the background under the episode, floored at -50 dBFS. The recording streams through "
        "the agent's own offline path (`Pipeline.run` + `episodes`, as `cry-mqtt score`) "
        f"at about {night['current']['realtime_factor']}x real time.",
        "",
        "An episode is detected when the detector turns ON between its onset and 7 s after its "
        "end (while scored windows still hold crying); every other ON is a false alarm, counted "
        "per hour of non-crying audio. Latency is onset to the first ON; time to OFF is the end "
        "of the episode to the last OFF.",
        "",
        *_metrics_table(
            {
                "current defaults": night["current"],
                "chosen (same night)": chosen,
                f"chosen (held-out night, seed {night['held_out']['seed']})": night["held_out"],
            }
        ),
        "",
        f"Targets met at the chosen setting: **{'yes' if chosen['meets_targets'] else 'no'}**. "
        "The full pipeline pass at the chosen setting reproduced the sweep's replayed numbers: "
        f"{'yes' if chosen['replay_matches_pipeline'] else 'NO'}.",
        "",
        f"Limits of this test: the validation side holds only {n['validation_negatives']} "
        f"negative recordings ({n['validation_negative_minutes']} minutes, most of them 2-s "
        "speech clips), so the false-alarm rate is measured against few distinct sounds heard "
        f"many times, and in {chosen['non_crying_hours']:.1f} hours one false alarm more is "
        f"{1 / chosen['non_crying_hours']:.2f} per hour. The lowest median latency of any swept "
        "setting is "
        f"{min(r['latency_median_s'] for r in night['sweep']):.1f} s: the model needs several "
        "seconds of crying inside its 7-s window, so latency is set by the model, not the "
        "detector.",
        "",
        "![timeline](night-timeline.png)",
        "",
        "## Detector sweep",
        "",
        f"The night is scored once per hop ({', '.join(f'{h:g}' for h in hops)} s) "
        "and the agent's `Detector` is replayed over the stored probabilities for thresholds "
        f"{grid.thresholds[0]:g}-{grid.thresholds[-1]:g}, k of n in "
        f"{', '.join(f'{k}/{m}' for k, m in grid.k_of_n)} and holds "
        f"{', '.join(f'{h:g}' for h in grid.holds)} s ({len(night['sweep'])} settings). The pick: "
        "at the agent's default hop of 1 s (fixed by the agent's specification; a 2-s hop also "
        "misses the 5x cost target below), among settings with at most 0.1 false alarms per "
        "hour or one false alarm in the whole night, whichever is more (the night cannot "
        "resolve less; if none qualifies, those with the fewest), one that meets every target "
        "if any does, then the highest recall at SNR >= 0 dB, then at -5 dB, then the lowest "
        "median latency, fewest false alarms, closest to the current defaults. "
        f"**Chosen: {_setting(chosen['setting'])}.**",
        "",
        "![trade-off](night-tradeoff.png)",
        "",
        "The best recall within each false-alarm budget (same night):",
        "",
        *_budget_table(night),
        "",
        "Best settings (within the false-alarm target first):",
        "",
        *_sweep_table(night),
        "",
        "## Cost",
        "",
        f"`bench/cost.py` on {cost['recording']}, each configuration in a fresh process on one "
        "thread (ONNX and BLAS), fed 0.1-s blocks as the agent reads them; the CPU of only "
        "reading the file is measured apart and left out. "
        f"(a) {ways['a_agent']}; (b) {ways['b_seed']}; (c) {ways['c_resnet34']} "
        f"({cost['resnet34']}). Start-up is process start (after the interpreter) to ready; "
        "the first score comes once a whole 7-s window has been heard, so live it is start-up "
        "plus 7 s whatever the hop.",
        "",
        *_cost_tables(cost),
        "",
        "![cost against hop](cost-hop.png)",
        "",
        f"Targets: (a) under 1% of one core: {cheap}; (a) at least 5x cheaper than (b): "
        f"{faster}.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)
