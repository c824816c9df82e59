"""Plots of ``docs/performance.md``: a night's timeline (probability, state, truth), the sweep's
trade-off and the cost benchmark against the hop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cry_mqtt.pipeline import WindowResult
from training.night.assemble import SNRS, Truth
from training.night.measure import NIGHT_TARGETS
from training.plotting import plt, save

SNR_COLOURS = dict(zip(SNRS, ("tab:red", "tab:orange", "tab:green", "tab:blue"), strict=True))


def timeline(
    results: list[WindowResult],
    truth: list[Truth],
    threshold: float,
    span: tuple[float, float],
    title: str,
    out: Path,
) -> Path:
    """Probability and detector state over ``span`` seconds, episodes shaded by SNR."""
    lo, hi = span
    shown = [r for r in results if lo <= r.t <= hi]
    minutes = [r.t / 60 for r in shown]
    fig, ax = plt.subplots(figsize=(11, 3.2), dpi=80)
    for t in truth:
        if t.end >= lo and t.start <= hi:
            ax.axvspan(t.start / 60, t.end / 60, color=SNR_COLOURS[t.snr_db], alpha=0.25, lw=0)
            ax.text(t.start / 60, 1.04, f"{t.snr_db:+g}", fontsize=7, color=SNR_COLOURS[t.snr_db])
    ax.plot(minutes, [r.prob for r in shown], lw=0.6, color="black", label="P(cry)")
    ax.fill_between(
        minutes, 0, [0.5 * r.on for r in shown], step="post", color="tab:purple", alpha=0.5,
        label="detector ON",
    )  # fmt: skip
    ax.axhline(threshold, ls="--", lw=0.8, color="grey", label=f"threshold {threshold:.2f}")
    ax.set(xlim=(lo / 60, hi / 60), ylim=(0, 1.1), xlabel="minutes", ylabel="P(cry)")
    ax.set_title(f"{title}: shaded = inserted crying (label: SNR dB)", fontsize=9)
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    return save(fig, out)


def frontier(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The settings no other beats on both false alarms per hour and recall at SNR >= 0 dB."""
    best: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: (r["false_alarms_per_hour"], -r["recall_snr_ge_0"])):
        if not best or r["recall_snr_ge_0"] > best[-1]["recall_snr_ge_0"]:
            best.append(r)
    return best


def tradeoff(rows: list[dict[str, Any]], chosen: dict[str, Any], out: Path) -> Path:
    """Recall at SNR >= 0 dB and median latency against false alarms per hour: every setting
    (grey) and, per hop, the frontier of the best recall for a false-alarm rate."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=80)

    def fa(r: dict[str, Any]) -> float:
        return max(r["false_alarms_per_hour"], 0.01)

    for ax, key in ((left, "recall_snr_ge_0"), (right, "latency_median_s")):
        ax.scatter([fa(r) for r in rows], [r[key] for r in rows], s=4, color="0.8", lw=0)
        for hop in sorted({r["hop_s"] for r in rows}):
            line = frontier([r for r in rows if r["hop_s"] == hop])
            ax.plot(
                [fa(r) for r in line], [r[key] for r in line], "o-", ms=3, label=f"hop {hop:g} s"
            )
        ax.plot(fa(chosen), chosen[key], "k*", ms=14, label="chosen")
        ax.axvline(NIGHT_TARGETS["false_alarms_per_hour"], ls="--", lw=0.8, color="grey")
        ax.axhline(NIGHT_TARGETS[key], ls="--", lw=0.8, color="grey")
        ax.set_xscale("log")
        ax.set_xlabel("false alarms per hour (0 drawn at 0.01)")
    left.set_ylabel("episode recall, SNR >= 0 dB")
    right.set_ylabel("median latency onset -> ON (s)")
    left.legend(fontsize=7)
    fig.suptitle(
        "detector sweep: grey = every threshold / k of n / hold; lines = best recall per "
        "false-alarm rate for each hop (dashed: targets)",
        fontsize=9,
    )
    return save(fig, out)


def cost_plot(cost: dict[str, Any], out: Path) -> Path:
    """CPU seconds per audio hour of each way of the cost benchmark against the hop."""
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
