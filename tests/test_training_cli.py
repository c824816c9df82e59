"""The recipe's command line: a step that cannot start says why in one line."""

import argparse
import re
import shlex
from pathlib import Path

import pytest

from training import REPO_ROOT
from training.__main__ import main
from training.night import cli as night_cli


def test_evaluate_without_a_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--runs", str(tmp_path), "evaluate"])
    model = tmp_path / "cnn" / "cry-cnn.onnx"
    assert str(stop.value) == f"python -m training evaluate: model file not found: {model}"


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--votes", "4", "3"], "--votes K N: need 1 <= K <= N"), (["--hop", "0"], "--hop: need")],
)
def test_an_impossible_detector_rule_is_refused_before_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--runs", str(tmp_path), "export", *option])
    assert stop.value.code == 2  # argparse's usage error, nothing exported
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cnn").exists()


@pytest.mark.parametrize(
    ("families", "tuning_hours", "twins"),
    [(False, None, []), (True, 12.0, [Path("runs-lso/night/night.json")])],
)
def test_the_performance_pages_command_line_runs_as_printed(
    monkeypatch: pytest.MonkeyPatch, families: bool, tuning_hours: float | None, twins: list[Path]
) -> None:
    """``docs/performance.md`` tells how to regenerate it: that line must parse as given."""
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(night_cli, "night_command", seen.append)
    given = argparse.Namespace(
        hours=10.0,
        per_snr=40,
        seed=42,
        families=families,
        tuning_hours=tuning_hours,
        also_night=twins,
    )
    line = night_cli._command_line(REPO_ROOT / "cry_mqtt" / "models" / "cry-yamnet.onnx", given)
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "training"]
    main(argv[3:])
    (parsed,) = seen
    assert parsed.report and parsed.model == Path("cry_mqtt/models/cry-yamnet.onnx")
    assert (parsed.seed, parsed.hours, parsed.per_snr) == (42, 10.0, 40)
    assert (parsed.families, parsed.tuning_hours, parsed.also_night) == (
        families,
        tuning_hours,
        twins,
    )


def test_help_lists_the_steps_in_the_order_a_user_runs_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    steps = re.search(r"\{(fetch-debian[^}]*)\}", capsys.readouterr().out)[1].split(",")
    order = ["fetch-debian", "sing", "prepare", "fit", "distil", "soup", "export", "evaluate"]
    assert [steps.index(step) for step in order] == sorted(steps.index(step) for step in order)
    assert steps[-5:] == ["memory", "night", "pick", "race", "learn-night"]
