"""The settings file kept across restarts: whatever it holds, loading is never fatal nor wrong."""

import json
import logging

import pytest

from cry_mqtt.agent import SavedSettings


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        ('{"threshold": 1e-9, "paused": true}', "ignoring saved threshold 1e-09"),
        ('{"threshold": NaN}', "NaN is not a setting"),
        ('{"threshold": 0.995}', "ignoring saved threshold 0.995"),
        ('{"threshold": "0.5", "paused": "yes"}', "ignoring saved paused 'yes'"),
        ("[" * 100_000, "larger than 4096 bytes"),
        ("[" * 4000 + "]" * 4000, "ignoring unreadable saved settings"),  # deeper than Python goes
        ("\xff\xfe{", "ignoring unreadable saved settings"),
        ("[0.5]", "not a JSON object"),
    ],
)
def test_bad_saved_settings_are_ignored_with_a_warning(tmp_path, caplog, content, warning):
    path = tmp_path / "state.json"
    path.write_text(content, encoding="latin-1")
    with caplog.at_level(logging.WARNING):
        loaded = SavedSettings(path).load()
    assert "threshold" not in loaded and warning in caplog.text
    assert loaded.get("paused", True) is True  # a valid value beside a bad one is kept


def test_valid_settings_load_and_a_planted_link_is_not_written_through(tmp_path):
    path = tmp_path / "state.json"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "state.tmp").symlink_to(victim)  # where the agent used to write first
    path.symlink_to(tmp_path / "elsewhere.json")
    SavedSettings(path).save(threshold=0.8, paused=True)
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and not (tmp_path / "elsewhere.json").exists()
    assert json.loads(path.read_text()) == {"threshold": 0.8, "paused": True}
    assert SavedSettings(path).load() == {"threshold": 0.8, "paused": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.tmp", "victim"]
