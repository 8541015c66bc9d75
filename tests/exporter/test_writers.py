"""The Python CSV writer (used when PostgreSQL's COPY cannot shape the rows)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.exporter.writers import open_writer


@pytest.mark.parametrize(("escape", "expected"), [(True, "'=1+1"), (False, "=1+1")])
def test_csv_writer_escapes_formulas_unless_told_not_to(
    tmp_path: Path, escape: bool, expected: str
) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer("csv", path, ["name", "n"], escape_formulas=escape)
    writer.write(["=1+1", -2])
    writer.close()
    with open(path, newline="", encoding="utf-8-sig") as f:
        assert list(csv.reader(f)) == [["name", "n"], [expected, "-2"]]
