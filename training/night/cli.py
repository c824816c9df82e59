"""``python -m training night``: the validation and independent nights side by side, the detector
sweep on the validation night, and ``docs/performance.md``."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cry_mqtt.config import DetectionConfig
from cry_mqtt.model import CryModel, default_model_path
from training import REPO_ROOT, RecipeError
from training.data.cache import Cache
from training.night.assemble import RATE, Corpus, plan, usage
from training.night.measure import (
    SETTING_KEYS,
    Grid,
    PipelinePass,
    at_hop_and_hold,
    current_setting,
    detection_config,
    evaluate,
    false_alarms_by_category,
    meets_targets,
    pick,
    pick_on_nights,
    stream_night,
    sweep,
)
from training.night.plots import timeline, tradeoff
from training.night.presets import sweep_at
from training.night.report import write_report
from training.night.sources import add_night_options, family, load_independent, load_validation

TIMELINE_SECONDS = (0.0, 1800.0)


def pass_metrics(
    done: PipelinePass, setting: dict[str, Any], window_seconds: float
) -> dict[str, Any]:
    """The metrics of a pass at ``setting``: :func:`evaluate`'s, whether they meet the targets,
    and the false alarms by background category."""
    measured = evaluate(done.night.truth, done.spans, done.total, window_seconds)
    return {
        "setting": setting,
        "realtime_factor": round(done.realtime_factor),
        **measured,
        "meets_targets": meets_targets(measured),
        "false_alarms_by_category": false_alarms_by_category(
            done.corpus, done.night, done.spans, window_seconds
        ),
    }


def measure_nights(
    model: CryModel,
    validation: Corpus,
    independent: Corpus,
    hours: float,
    per_snr: int,
    seed: int,
    out: Path,
    hops: Sequence[float] = (),
    grid: Grid | None = None,
    families: Sequence[str] | None = None,
    tuning_hours: float | None = None,
    other_sweeps: Sequence[list[dict[str, Any]]] = (),
) -> dict[str, Any]:
    """Both nights at the shipped setting (the model's threshold and votes, the agent's other
    detector defaults). With ``families`` (one per validation recording), the validation
    nights hear each family about as long as any other; ``tuning_hours`` (default ``hours``)
    is their length, so that a false-alarm budget can be resolved there.

    With ``hops``, also: the validation night scored at each hop and swept over ``grid``
    (default: :class:`Grid`), its pick confirmed by a full pipeline pass and run on a held-out
    validation night (``seed + 1``), and the independent night at that pick. With
    ``other_sweeps`` (other tuning nights' sweeps, a twin's), the pick is one within budget on
    every night at the shipped hop and hold (:func:`pick_on_nights`). The independent
    night takes no part in the pick; its threshold curve at the pick's other settings is kept as
    information only. Timelines (and the sweep's trade-off) are drawn into ``out``.
    """
    grid = grid or Grid()
    window_seconds = model.info.window_seconds
    base = DetectionConfig()
    shipped = current_setting(base, model)
    report: dict[str, Any] = {
        "model": {
            "file": model.path.name,
            "version": model.info.version,
            "window_seconds": window_seconds,
        },
        "seed": seed,
        "episodes_per_snr": per_snr,
    }
    shown = {}
    balance = {"validation": families, "independent": None}
    length = {"validation": tuning_hours or hours, "independent": hours}
    for name, corpus in (("validation", validation), ("independent", independent)):
        night = plan(corpus, length[name], per_snr, seed, balance[name])
        shown[name] = stream_night(model, corpus, night, base), shipped
        report[name] = {
            "hours": round(night.samples / RATE / 3600, 3),
            "families_balanced": balance[name] is not None,
            "usage": usage(corpus, night),
            "shipped": pass_metrics(shown[name][0], shipped, window_seconds),
        }
        print(f"{name} night, shipped setting:", json.dumps(report[name]["shipped"]))
    if not hops:
        _timelines(shown, out)
        return report

    first = shown["validation"][0]
    scored = {shipped["hop_s"]: (first.results, first.total)}
    for hop in hops:
        if hop not in scored:
            other = stream_night(model, validation, first.night, DetectionConfig(hop_seconds=hop))
            scored[hop] = (other.results, other.total)
    rows = sweep(first.night.truth, scored, grid, window_seconds)
    del scored
    if other_sweeps:
        row = pick_on_nights([at_hop_and_hold(rows, shipped), *other_sweeps], shipped)[1][0]
    else:
        row = pick(rows, shipped)
    chosen = {k: row[k] for k in SETTING_KEYS}
    config = detection_config(chosen, base)
    confirmed = stream_night(model, validation, first.night, config)
    replayed = evaluate(first.night.truth, confirmed.spans, confirmed.total, window_seconds)
    held_out_night = plan(validation, length["validation"], per_snr, seed + 1, families)
    held_out = stream_night(model, validation, held_out_night, config)
    report["validation"] |= {
        "chosen": {
            **pass_metrics(confirmed, chosen, window_seconds),
            "replay_matches_pipeline": all(replayed[k] == row[k] for k in replayed),
        },
        "held_out": {"seed": seed + 1, **pass_metrics(held_out, chosen, window_seconds)},
        "sweep": rows,
    }
    print("chosen on the validation night:", json.dumps(report["validation"]["chosen"]))
    print(
        f"to carry it in the model file: export --threshold {chosen['threshold']:g} --votes "
        f"{chosen['trigger_windows']} {chosen['of_windows']} --hop {chosen['hop_s']:g}; the "
        "agent scores at the file's hop unless detection.hop_seconds sets another; "
        f"the hold ({chosen['hold_seconds']:g} s) is detection.hold_seconds in the config"
    )

    at_chosen = stream_night(model, independent, shown["independent"][0].night, config)
    report["independent"] |= {
        "chosen": pass_metrics(at_chosen, chosen, window_seconds),
        "thresholds_information_only": sweep(
            at_chosen.night.truth,
            {chosen["hop_s"]: (at_chosen.results, at_chosen.total)},
            grid.curve_at(chosen),
            window_seconds,
        ),
    }
    print("independent night at that setting:", json.dumps(report["independent"]["chosen"]))
    tradeoff(rows, row, out / "night-tradeoff.png")
    _timelines({"validation": (confirmed, chosen), "independent": (at_chosen, chosen)}, out)
    return report


def _timelines(shown: dict[str, tuple[PipelinePass, dict[str, Any]]], out: Path) -> None:
    for name, (done, setting) in shown.items():
        timeline(
            done.results,
            done.night.truth,
            setting["threshold"],
            TIMELINE_SECONDS,
            f"{name} night",
            out / f"night-timeline-{name}.png",
        )


def night_command(args: argparse.Namespace) -> dict[str, Any]:
    """``python -m training night``: both nights at the shipped setting; with ``--sweep`` also
    the validation night's sweep and pick, and the independent night at the pick; with
    ``--report`` also the cost benchmark and ``performance.md`` in ``--docs``."""
    started = time.perf_counter()
    out: Path = args.out or args.runs / "night"
    out.mkdir(parents=True, exist_ok=True)
    if args.saved:
        report = json.loads(args.saved.read_text())
        write_report(report, out, args.docs, args.cost_minutes, args.model, args.saved_cost)
        return report
    model = CryModel(args.model or default_model_path())
    hops = args.hops if args.sweep or args.report else ()
    if args.also_night and not hops:
        raise RecipeError("--also-night needs --sweep: it is read when the sweep picks")
    shipped = current_setting(DetectionConfig(), model)
    others = [_sweep_at(path, shipped) for path in args.also_night]
    validation = load_validation(Cache(args.runs / "cache"))
    independent = load_independent(
        args.independent or args.data / "independent",
        args.independent_cache or args.runs / "independent",
    )
    for name, corpus in (("validation", validation), ("independent", independent)):
        print(f"{name}: {len(corpus.positives)} crying clips, {len(corpus.negatives)} others")
    families = [family(c) for c in validation.categories] if args.families else None
    report = measure_nights(
        model,
        validation,
        independent,
        args.hours,
        args.per_snr,
        args.seed,
        out,
        hops,
        families=families,
        tuning_hours=args.tuning_hours,
        other_sweeps=others,
    )
    if args.also_night:
        report["validation"]["chosen"]["within_budget_also_on"] = [str(p) for p in args.also_night]
    report["command"] = _command_line(model.path, args)
    report["night_minutes"] = round((time.perf_counter() - started) / 60, 1)
    (out / "night.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {out} in {report['night_minutes']} min")
    if args.report:
        write_report(report, out, args.docs, args.cost_minutes, args.model, args.saved_cost)
    return report


def _command_line(model: Path, args: argparse.Namespace) -> str:
    """The command that regenerates the report for this model and night."""
    path = model.resolve()
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    return (
        f"python -m training --seed {args.seed} night --report --model {shown} "
        f"--hours {args.hours:g} --per-snr {args.per_snr}"
        + (f" --tuning-hours {args.tuning_hours:g}" if args.tuning_hours else "")
        + (" --families" * args.families)
        + "".join(f" --also-night {path}" for path in args.also_night)
    )


def pick_command(args: argparse.Namespace) -> dict[str, Any]:
    """``python -m training pick``: the setting within budget on every tuning night given, at the
    first night's hop and hold, its own setting the tie-break (:func:`pick_on_nights`)."""
    reports = [json.loads(path.read_text()) for path in args.nights]
    own = reports[0]["validation"]["shipped"]["setting"]
    pooled, rows = pick_on_nights([_sweep_at(path, own) for path in args.nights], own)
    result = {
        "setting": {k: pooled[k] for k in SETTING_KEYS},
        "pooled": pooled,
        "nights": [
            {"night": str(path), "model": report["model"]["file"], **row}
            for path, report, row in zip(args.nights, reports, rows, strict=True)
        ],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


def _sweep_at(path: Path, setting: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep of the ``night.json`` at ``path`` at the hop and hold of ``setting``."""
    try:
        rows = sweep_at(json.loads(path.read_text()), setting)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    if not rows:
        raise RecipeError(
            f"{path} swept no setting at a hop of {setting['hop_s']:g} s and a hold of "
            f"{setting['hold_seconds']:g} s"
        )
    return rows


def add_pick_parser(steps: Any) -> None:
    """The ``pick`` step of ``python -m training``."""
    chooser = steps.add_parser(
        "pick",
        help="the detector setting within the false-alarm budget on every tuning night given",
    )
    chooser.add_argument(
        "nights",
        type=Path,
        nargs="+",
        help="night.json files of python -m training night --sweep; the first is the model's "
        "own (its hop, hold and setting), the others may be a twin's (cross-fitting)",
    )
    chooser.add_argument("--out", type=Path, help="also write the pick here")
    chooser.set_defaults(run=pick_command)


def add_parser(steps: Any) -> None:
    """The ``night`` step of ``python -m training``."""
    night = steps.add_parser("night", help="validation and independent nights, sweep, report")
    add_night_options(night, hours=10.0, per_snr=40)
    night.add_argument("--hops", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    night.add_argument(
        "--sweep", action="store_true", help="sweep detector settings on the validation night"
    )
    night.add_argument(
        "--tuning-hours",
        type=float,
        help="length of the validation nights (default: --hours): 10 h resolves 0.1 false "
        "alarms an hour",
    )
    night.add_argument(
        "--families",
        action="store_true",
        help="the validation nights hear each family of sounds (adult vocal sounds, speech, "
        "music and singing, household and outdoors) about as long as any other",
    )
    night.add_argument(
        "--also-night",
        type=Path,
        action="append",
        default=[],
        help="another tuning night's night.json (a leave-source-out twin's): the pick is within "
        "budget on it too, at the shipped hop and hold (python -m training pick)",
    )
    night.add_argument(
        "--report", action="store_true", help="sweep, cost benchmark, <docs>/performance.md"
    )
    night.add_argument("--cost-minutes", type=float, default=10.0, help="cost bench recording")
    night.add_argument(
        "--saved", type=Path, help="write the report from this night.json instead of measuring"
    )
    night.add_argument(
        "--saved-cost", type=Path, help="a saved bench/cost.py result instead of running it"
    )
    night.add_argument("--out", type=Path, help="results (default: <runs>/night)")
    night.add_argument(
        "--docs", type=Path, default=REPO_ROOT / "docs", help="where performance.md goes"
    )
    night.set_defaults(run=night_command)
