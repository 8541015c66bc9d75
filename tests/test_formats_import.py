"""The same people imported from CSV, JSON, JSON Lines and XLSX end up identical."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import openpyxl
import pytest

from contracts.jobs import JobOptions
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.people import FIELDS, person
from tests.support.processes import running, service_env, wait_for_log

pytestmark = pytest.mark.e2e


@pytest.fixture
async def importer(settings: Settings, tmp_path: Path) -> AsyncIterator[None]:
    log = tmp_path / "importer.log"
    with running("services.importer", service_env(settings), log) as proc:
        wait_for_log(log, "importer ready", proc)
        yield


def _people(start: int, count: int) -> list[dict[str, str]]:
    return [person(i) for i in range(start, start + count)]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, rows: list[dict[str, str]]) -> None:
    items = [{**r, "is_active": r["is_active"] == "true"} for r in rows]
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def write_xlsx(path: Path, rows: list[dict[str, str]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(FIELDS)
    for r in rows:
        # student numbers stay text cells (leading zeros); dates as real dates
        sheet.append(
            [
                r[f] if f != "birth_date" else __import__("datetime").date.fromisoformat(r[f])
                for f in FIELDS
            ]
        )
    book.save(path)


WRITERS = {"csv": write_csv, "json": write_json, "jsonl": write_jsonl, "xlsx": write_xlsx}


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xlsx"])
async def test_each_format_loads_the_same_values(
    fmt: str, settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    rows = _people(10_001, 250)
    WRITERS[fmt](imports_root / f"people.{fmt}", rows)
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(nc, db, subjects, file_path=f"people.{fmt}", fmt=fmt)
        assert job["status"] == "completed", job["error_message"]
        assert job["statistics"]["rows_imported"] == 250
        stored = {r["username"]: r for r in await db.fetch("SELECT * FROM users_user")}
        for row in rows:
            got = stored[row["username"]]
            assert got["student_number"] == row["student_number"]
            assert got["national_id"] == row["national_id"]
            assert got["first_name"] == row["first_name"]
            assert str(got["birth_date"]) == row["birth_date"]
            assert got["is_active"] is True

        again = await run_job(
            nc, db, subjects, file_path=f"people.{fmt}", fmt=fmt, options=JobOptions(mode="upsert")
        )
        assert again["status"] == "completed"
        assert again["statistics"]["rows_unchanged"] == 250
    finally:
        await db.close()
        await nc.close()


async def test_persian_digits_letters_and_jalali_dates_are_normalised(
    settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    to_persian = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    row = person(20_001)
    expected_nid = row["national_id"]
    row["national_id"] = "\u200e" + expected_nid.translate(to_persian) + "\u200f"
    row["student_number"] = row["student_number"].translate(to_persian)
    row["first_name"] = "علي"  # Arabic yeh, as Excel on Windows writes it
    row["birth_date"] = "۱۳۸۰/۰۷/۱۵"
    write_csv(imports_root / "fa.csv", [row])
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(nc, db, subjects, file_path="fa.csv", fmt="csv")
        assert job["status"] == "completed", job
        assert job["statistics"]["rows_imported"] == 1, job["errors"]
        got = await db.fetchrow("SELECT * FROM users_user WHERE username = $1", row["username"])
    finally:
        await db.close()
        await nc.close()
    assert got["national_id"] == expected_nid
    assert got["student_number"] == person(20_001)["student_number"]
    assert got["first_name"] == "علی"
    assert str(got["birth_date"]) == "2001-10-07"  # 1380/07/15 in the Jalali calendar


async def test_an_xlsx_header_below_a_title_is_read_with_header_row(
    settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    """Issue 3 asks for a header row option: a registrar's sheet often has a title first."""
    rows = _people(30_001, 5)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Students, term 1403-1"])  # the title, in row 1
    sheet.append([])
    sheet.append(FIELDS)  # the header, in row 3
    for r in rows:
        sheet.append([r[f] for f in FIELDS])
    book.save(imports_root / "titled.xlsx")
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        plain = await run_job(nc, db, subjects, file_path="titled.xlsx", fmt="xlsx")
        assert plain["status"] == "failed"
        assert "header_row" in plain["error_message"]
        job = await run_job(
            nc, db, subjects, file_path="titled.xlsx", fmt="xlsx", options=JobOptions(header_row=3)
        )
        assert job["status"] == "completed", job["error_message"]
        assert job["statistics"]["rows_imported"] == 5
        usernames = {r["username"] for r in await db.fetch("SELECT username FROM users_user")}
        assert usernames == {r["username"] for r in rows}
    finally:
        await db.close()
        await nc.close()


AWKWARD_CELLS = [
    'say "hi"',
    "a,b",
    "semi;colon",
    "two\nlines",
    "tab\there",
    "\\.",
    "\\N",
    "back\\slash",
    '""',
    "NULL",
    "نیم فاصله",
    "x" * 150,
]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
async def test_awkward_text_is_stored_exactly_by_an_insert(
    delimiter: str, settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    # an insert copies its chunks straight into the table as CSV text: every cell must come
    # back as it was written, whatever quoting, delimiters or COPY markers it holds
    rows = _people(30_001, 1_500)
    for i, row in enumerate(rows):
        row["first_name"] = AWKWARD_CELLS[i % len(AWKWARD_CELLS)]
        row["last_name"] = AWKWARD_CELLS[(i * 7) % len(AWKWARD_CELLS)]
    with open(imports_root / "odd.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(
            nc, db, subjects, file_path="odd.csv", fmt="csv",
            options=JobOptions(delimiter=delimiter),
        )  # fmt: skip
        assert job["status"] == "completed", job["error_message"]
        assert job["statistics"]["rows_inserted"] == len(rows), job["errors"]
        stored = {
            r["username"]: (r["first_name"], r["last_name"])
            for r in await db.fetch("SELECT username, first_name, last_name FROM users_user")
        }
    finally:
        await db.close()
        await nc.close()
    assert stored == {r["username"]: (r["first_name"], r["last_name"]) for r in rows}


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
async def test_a_lone_surrogate_in_a_json_cell_is_a_rejected_row(
    fmt: str, settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    await _lone_surrogate_row(fmt, settings, subjects, imports_root, all_or_nothing=False)


async def test_all_or_nothing_names_a_lone_surrogate_row_and_writes_nothing(
    settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    # the failure's own checkpoint carried the row's value as it was: its event's JSON was
    # refused by the database, and the job failed on that error, not on the rejected row
    await _lone_surrogate_row("json", settings, subjects, imports_root, all_or_nothing=True)


async def _lone_surrogate_row(
    fmt: str, settings: Settings, subjects: Subjects, imports_root: Path, *, all_or_nothing: bool
) -> None:
    # JSON may escape half of a UTF-16 pair alone; it is no character and UTF-8 cannot carry
    # it. In JSON Lines it failed the whole job (UnicodeEncodeError writing the chunk's COPY
    # text); in a JSON array ijson's C parser stored it as "?" without a word
    rows = _people(40_001, 4)
    rows[1]["first_name"] = "\ud800x"
    text = "".join(json.dumps(r) + "\n" for r in rows) if fmt == "jsonl" else json.dumps(rows)
    (imports_root / f"half.{fmt}").write_text(text, encoding="ascii")
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(
            nc, db, subjects, file_path=f"half.{fmt}", fmt=fmt,
            options=JobOptions(all_or_nothing=all_or_nothing),
        )  # fmt: skip
        if all_or_nothing:
            assert job["status"] == "failed"
            assert "1 of 4 rows were rejected" in job["error_message"], job["error_message"]
            assert job["statistics"]["rows_inserted"] == 0
            assert await db.fetchval("SELECT count(*) FROM users_user") == 0
        else:
            assert job["status"] == "completed", job["error_message"]
            assert job["statistics"]["rows_inserted"] == 3
        assert job["statistics"]["rows_rejected"] == 1
        [error] = job["errors"]
        assert (error["row"], error["column"]) == (2, "first_name")
        assert "\\ud800" in error["message"]
        assert "\\ud800" in error["value"]
        stored = await db.fetch(
            "SELECT value, message FROM dm.job_rejections WHERE job_id = $1", job["id"]
        )
        assert [r["value"] for r in stored] == ["\\ud800x"]
    finally:
        await db.close()
        await nc.close()


async def test_a_spreadsheets_empty_rows_in_a_csv_are_skipped(
    settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    # a sheet saved as CSV writes its empty rows as lines of delimiters; they were each a
    # rejected row (every required field missing) and made a clean file look broken
    rows = _people(50_001, 6)
    rows[4]["email"] = "not-an-email"
    empty = "," * (len(FIELDS) - 1)
    lines = [",".join(FIELDS), empty]
    for i, row in enumerate(rows):
        lines.append(",".join(row[f] for f in FIELDS))
        if i % 2:
            lines.extend([empty, empty])
    (imports_root / "sheet.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(nc, db, subjects, file_path="sheet.csv", fmt="csv")
    finally:
        await db.close()
        await nc.close()
    assert job["status"] == "completed", job["error_message"]
    statistics = job["statistics"]
    assert (statistics["rows_inserted"], statistics["rows_rejected"]) == (5, 1)
    [error] = job["errors"]
    # header, empty, p0, p1, empty, empty, p2, p3, empty, empty, p4: the bad row is line 11
    assert (error["row"], error["column"]) == (11, "email")


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
async def test_a_lone_surrogate_inside_a_nested_value_rejects_its_row_only(
    fmt: str, settings: Settings, subjects: Subjects, imports_root: Path, importer: None
) -> None:
    # showing the nested value in the row's error encoded it as UTF-8, which a lone half
    # cannot be: the whole job failed on an unexpected UnicodeEncodeError
    rows: list[object] = list(_people(41_001, 5))
    rows[1] = {**_people(41_002, 1)[0], "first_name": ["\ud800"]}
    rows[2] = {**_people(41_003, 1)[0], "last_name": {"x\udc00": "y"}}
    rows[3] = "\ud800"  # an item that is no object at all
    text = "".join(json.dumps(r) + "\n" for r in rows) if fmt == "jsonl" else json.dumps(rows)
    (imports_root / f"nested.{fmt}").write_text(text, encoding="ascii")
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        job = await run_job(nc, db, subjects, file_path=f"nested.{fmt}", fmt=fmt)
    finally:
        await db.close()
        await nc.close()
    assert job["status"] == "completed", job["error_message"]
    assert (job["statistics"]["rows_inserted"], job["statistics"]["rows_rejected"]) == (2, 3)
    found = {e["row"]: e for e in job["errors"]}
    assert sorted(found) == [2, 3, 4]
    assert found[2]["column"] == "first_name"
    assert "\\ud800" in found[2]["value"]
    assert found[3]["column"] == "last_name"
    assert "not an object" in found[4]["message"]
