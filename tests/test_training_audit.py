"""Contact sheets for auditing the positives by eye."""

from __future__ import annotations

import csv
from pathlib import Path

from training_fixtures import make_cache

from training.__main__ import main


def test_audit_sheets_number_every_positive_in_file_name_order(tmp_path: Path) -> None:
    make_cache(tmp_path, "train")
    main(["--runs", str(tmp_path), "audit", "--per-sheet", "4"])
    with open(tmp_path / "audit" / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["0.wav", "1.wav", "2.wav", "3.wav", "flat.wav"]
    assert [int(r["idx"]) for r in rows] == list(range(5))
    sheets = sorted((tmp_path / "audit").glob("sheet-*.png"))
    assert [p.name for p in sheets] == ["sheet-00.png", "sheet-01.png"]
    assert all(p.stat().st_size > 5000 for p in sheets)

    main(["--runs", str(tmp_path), "audit", "--source", "android-8k", "--out", str(tmp_path / "a")])
    with open(tmp_path / "a" / "index.csv", newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == ["0.wav"]
