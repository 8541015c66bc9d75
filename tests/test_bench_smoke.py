"""The bench's data generator makes valid, unique people (no timing here)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from bench import datagen
from services.core.catalogue import get_model
from services.core.catalogue.fields import (
    parse_bool,
    parse_date,
    parse_datetime,
    parse_email,
    parse_iran_national_id,
    parse_phone,
)

ROWS = 200


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_generated_csv_is_valid_and_unique(tmp_path: Path) -> None:
    path = tmp_path / "students.csv"
    assert datagen.ensure_csv(path, ROWS)
    header, rows = _read(path)

    assert tuple(header) == get_model("users.User").field_names
    assert len(rows) == ROWS
    for row in rows:
        nid = row["national_id"]
        assert parse_iran_national_id(nid) == nid
        assert int(nid[9]) == datagen.check_digit(nid[:9])
        assert parse_email(row["email"]) == row["email"]
        parse_phone(row["phone"])
        parse_date(row["birth_date"])
        parse_datetime(row["date_joined"])
        parse_bool(row["is_active"])
        assert row["role"] in {"student", "staff", "faculty"}
        assert (row["student_number"] != "") == (row["role"] == "student")
    for column in ("username", "national_id", "email"):
        assert len({row[column] for row in rows}) == ROWS, f"{column} repeats"


def test_same_arguments_same_bytes_and_reuse(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    datagen.write_csv(first, ROWS)
    datagen.write_csv(second, ROWS)
    assert first.read_bytes() == second.read_bytes()
    assert datagen.ensure_csv(first, ROWS)  # no metadata yet: written
    assert not datagen.ensure_csv(first, ROWS)  # now reused
    assert datagen.ensure_csv(first, ROWS + 1)  # another row count: written again


def test_upsert_variant_changes_every_faculty_only(tmp_path: Path) -> None:
    base, changed = tmp_path / "base.csv", tmp_path / "changed.csv"
    datagen.write_csv(base, ROWS)
    datagen.write_csv(changed, ROWS, faculty_shift=1)
    _, old = _read(base)
    _, new = _read(changed)
    for before, after in zip(old, new, strict=True):
        assert before["faculty"] != after["faculty"]
        assert {k: v for k, v in before.items() if k != "faculty"} == {
            k: v for k, v in after.items() if k != "faculty"
        }


def test_national_ids_stay_unique_far_beyond_three_million() -> None:
    # the affine map is a bijection modulo 10**9 (its factor is prime to 10)
    assert math.gcd(datagen._NID_MUL, 10**9) == 1
    ids = {datagen.national_id(i) for i in range(2_999_000, 3_001_000)}
    assert len(ids) == 2_000
    assert all(len(set(nid)) > 1 for nid in ids)
