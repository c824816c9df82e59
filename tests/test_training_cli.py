"""The recipe's command line: a step that cannot start says why in one line."""

from pathlib import Path

import pytest

from training.__main__ import main


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
