"""The recipe's command line: a step that cannot start says why in one line."""

from pathlib import Path

import pytest

from training.__main__ import main


def test_evaluate_without_a_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--runs", str(tmp_path), "evaluate"])
    model = tmp_path / "cnn" / "cry-cnn.onnx"
    assert str(stop.value) == f"python -m training evaluate: model file not found: {model}"
