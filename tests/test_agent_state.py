"""What the agent keeps across restarts: whatever the files hold, loading is never fatal nor
wrong; the night's numbers begin anew at the night's start."""

import json
import logging
from datetime import datetime, time
from pathlib import Path

import pytest

from cry_mqtt.state import Night, NightTally, SavedSettings


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


START = time(18, 0)


def test_the_night_counts_episodes_and_begins_anew_at_its_start(tmp_path: Path) -> None:
    path = tmp_path / "night.json"
    tally = NightTally(START, path, datetime(2026, 12, 7, 19, 0))
    tally.add(90.0, datetime(2026, 12, 7, 23, 0))
    tally.add(30.0, datetime(2026, 12, 8, 3, 0))  # after midnight: the same night
    assert tally.night == Night("2026-12-07", 2, 120.0, 90.0)
    again = NightTally(START, path, datetime(2026, 12, 8, 6, 0))  # a restart keeps the night
    assert again.night == tally.night
    assert not again.roll(datetime(2026, 12, 8, 17, 59))
    assert again.roll(datetime(2026, 12, 8, 18, 0))
    assert again.night == Night("2026-12-08")
    assert NightTally(START, path, datetime(2026, 12, 8, 18, 1)).night == Night("2026-12-08")
    later = NightTally(START, path, datetime(2026, 12, 10, 20, 0))  # an old night's file
    assert later.night == Night("2026-12-10")


@pytest.mark.parametrize(
    "content",
    [
        "{",
        '{"night_of": "2026-12-07", "episodes": -1}',
        '{"night_of": "2026-12-07", "episodes": true}',
        '{"night_of": "2026-12-07", "crying": 3}',
        "[1]",
    ],
)
def test_a_bad_night_file_starts_a_fresh_night(tmp_path, caplog, content) -> None:
    path = tmp_path / "night.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        tally = NightTally(START, path, datetime(2026, 12, 7, 19, 0))
    assert tally.night == Night("2026-12-07") and "afresh" in caplog.text


def test_a_night_that_cannot_be_saved_is_logged_and_counted_on(tmp_path, caplog) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    tally = NightTally(START, blocked / "night.json", datetime(2026, 12, 7, 19, 0))
    with caplog.at_level(logging.ERROR):
        tally.add(10.0, datetime(2026, 12, 7, 20, 0))
    assert tally.night.episodes == 1 and "cannot save" in caplog.text
