import json

import numpy as np
import pytest
from support import build_fixture_model

from cry_mqtt.detector import Preset, Votes
from cry_mqtt.features import FeatureParams
from cry_mqtt.model import CryModel, ModelError, ModelInfo, default_model_path


def test_fixture_model_describes_itself(fixture_model):
    model = CryModel(fixture_model)
    assert model.info.features == FeatureParams()
    assert model.info.window_seconds == 7.0
    assert model.info.window_frames == 215
    assert model.info.threshold == 0.5
    assert model.info.version == "fixture-1"
    assert model.info.details == {"note": "test fixture"}
    probs = model.predict(np.zeros((3, 128, 215), dtype=np.float32))
    assert probs.shape == (3,)


def test_details_cannot_redefine_the_contract():
    with pytest.raises(ValueError, match="threshold"):
        ModelInfo(FeatureParams(), 7.0, 0.42, "2", {"threshold": 0.9}).to_metadata()


def test_metadata_round_trip():
    votes = Votes(1, 2, 0.5)
    info = ModelInfo(FeatureParams(), 7.0, 0.42, "2", {"metrics": {"auc": 0.99}}, None, votes)
    assert ModelInfo.from_metadata(info.to_metadata()) == info


def test_file_without_metadata_is_refused(tmp_path):
    path = build_fixture_model(tmp_path / "bare.onnx", metadata={})
    with pytest.raises(ModelError, match="not a cry-mqtt model"):
        CryModel(path)


PRESET = {"name": "Balanced", "threshold": 0.5, "trigger_windows": 3, "of_windows": 5}
GOOD_BODY = {
    "schema": 2,
    "features": FeatureParams().to_dict(),
    "window_seconds": 7.0,
    "threshold": 0.5,
    "version": "x",
    "votes": {"trigger_windows": 3, "of_windows": 5},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": None}, "invalid 'cry_mqtt' metadata"),
        ({"schema": 1}, "schema 1, this agent reads 2: export the model again"),
        ({"threshold": 1.5}, "threshold must be in"),
        ({"features": {**FeatureParams().to_dict(), "n_mels": "many"}}, "invalid"),
        ({"votes": None}, "invalid 'cry_mqtt' metadata"),
        ({"votes": {"trigger_windows": 6, "of_windows": 5}}, "trigger_windows <= of_windows"),
        ({"votes": {"trigger_windows": 3, "of_windows": 5, "hop_seconds": 0}}, "hop_seconds > 0"),
        ({"presets": [{"name": "Loud", "threshold": 0.5}]}, "invalid 'cry_mqtt' metadata"),
        ({"presets": [PRESET, PRESET]}, "two presets of one name"),
    ],
)
def test_incomplete_or_invalid_metadata_is_refused(tmp_path, change, message):
    body = {k: v for k, v in {**GOOD_BODY, **change}.items() if v is not None}
    path = build_fixture_model(tmp_path / "bad.onnx", metadata={"cry_mqtt": json.dumps(body)})
    with pytest.raises(ModelError, match=message):
        CryModel(path)


def test_the_good_body_loads(tmp_path):
    path = build_fixture_model(tmp_path / "ok.onnx", metadata={"cry_mqtt": json.dumps(GOOD_BODY)})
    assert CryModel(path).info.votes == Votes(3, 5, 1.0)  # written before votes named their hop


def test_input_shape_must_match_the_metadata(tmp_path):
    path = build_fixture_model(tmp_path / "short.onnx", frames=100)
    with pytest.raises(ModelError, match="metadata says"):
        CryModel(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        CryModel(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="cannot load"):
        CryModel(corrupt)


def test_default_model_lives_in_the_package():
    assert default_model_path().parent.name == "models"
    assert default_model_path().parent.parent.name == "cry_mqtt"


def test_a_model_names_its_presets_most_sensitive_first(tmp_path):
    quiet = {"name": "Quiet room", "threshold": 0.35, "trigger_windows": 1, "of_windows": 1}
    body = {**GOOD_BODY, "presets": [quiet, PRESET]}
    path = build_fixture_model(tmp_path / "ok.onnx", metadata={"cry_mqtt": json.dumps(body)})
    presets = CryModel(path).info.presets
    assert presets == (Preset("Quiet room", 0.35, 1, 1), Preset("Balanced", 0.5, 3, 5))
    assert ModelInfo.from_metadata(CryModel(path).info.to_metadata()).presets == presets
