"""Faculties, courses and enrollments load with their references resolved and checked.

A real importer process runs each job over the bus against a real database: references are
checked set-based, a file may name a faculty by code or name and a student by username or
student number, and an enrollment's composite key (student, course, term) drives upserts.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from contracts.jobs import ImportMode, JobOptions
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.people import person, write_people
from tests.support.processes import running, service_env, wait_for_log

pytestmark = pytest.mark.e2e

ENG_FA = "دانشکده مهندسی کامپیوتر"  # longer than a faculty code column (20)
SCI_FA = "دانشکده علوم پایه"
SCI_EN = "Faculty of Basic Sciences"


@pytest.fixture
async def importer(settings: Settings, tmp_path: Path) -> AsyncIterator[None]:
    log = tmp_path / "importer.log"
    with running("services.importer", service_env(settings), log) as proc:
        wait_for_log(log, "importer ready", proc)
        yield


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[tuple[Client, asyncpg.Connection]]:
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        yield nc, db
    finally:
        await db.close()
        await nc.close()


def _write(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path.name


def _errors_by_row(job: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for error in job["errors"]:
        found.setdefault(error["row"], []).append(error)
    return found


async def _load(
    nc: Client,
    db: asyncpg.Connection,
    subjects: Subjects,
    file_name: str,
    model: str,
    mode: ImportMode = "insert",
) -> dict[str, Any]:
    job = await run_job(
        nc,
        db,
        subjects,
        file_path=file_name,
        fmt="csv",
        model=model,
        options=JobOptions(mode=mode),
    )
    assert job["status"] == "completed", (job["error_message"], job["errors"])
    return job


async def _faculties_courses_and_people(
    nc: Client, db: asyncpg.Connection, subjects: Subjects, root: Path
) -> None:
    """Two faculties, three courses (faculty by code and by name) and three people."""
    faculties = _write(
        root / "faculties.csv",
        ["code", "name_fa", "name_en"],
        [["ENG", ENG_FA, "Faculty of Computer Engineering"], ["SCI", SCI_FA, SCI_EN]],
    )
    job = await _load(nc, db, subjects, faculties, "faculties.Faculty")
    assert job["statistics"]["rows_imported"] == 2, job["errors"]

    courses = _write(
        root / "courses.csv",
        ["code", "title_fa", "title_en", "credits", "faculty"],
        [
            ["CE101", "مبانی برنامه‌نویسی", "Programming Basics", "3", ENG_FA],  # Persian name
            ["SC201", "ریاضی عمومی ۱", "Calculus 1", "۴", "SCI"],  # code; Persian digits
            ["SC202", "فیزیک ۱", "Physics 1", "3", SCI_EN],  # English name
        ],
    )
    job = await _load(nc, db, subjects, courses, "courses.Course")
    assert job["statistics"]["rows_imported"] == 3, job["errors"]

    write_people(root / "people.csv", 1, 3)
    job = await _load(nc, db, subjects, "people.csv", "users.User")
    assert job["statistics"]["rows_imported"] == 3, job["errors"]


async def test_courses_name_their_faculty_by_code_or_name(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    importer: None,
    bus: tuple[Client, asyncpg.Connection],
) -> None:
    nc, db = bus
    await _faculties_courses_and_people(nc, db, subjects, imports_root)
    stored = {r["code"]: r for r in await db.fetch("SELECT * FROM courses_course")}
    assert {code: r["faculty"] for code, r in stored.items()} == {
        "CE101": "ENG",
        "SC201": "SCI",
        "SC202": "SCI",
    }
    assert stored["SC201"]["credits"] == 4
    assert stored["CE101"]["title_fa"] == "مبانی برنامه‌نویسی"

    unknown = _write(
        imports_root / "courses_bad.csv",
        ["code", "title_en", "credits", "faculty"],
        [
            ["XX999", "Nowhere", "3", "دانشکده ناموجود"],
            ["XX998", "Too heavy", "11", "ENG"],
            ["SC203", "Physics 2", "3", "SCI"],
            ["SC204", "Physics 3", "3", "sci"],  # another case: one faculty has that code
            ["SC205", "Physics 4", "3", SCI_EN.upper()],
        ],
    )
    job = await _load(nc, db, subjects, unknown, "courses.Course")
    assert job["statistics"]["rows_imported"] == 3, job["errors"]
    assert job["statistics"]["rows_rejected"] == 2
    errors = _errors_by_row(job)
    [missing] = errors[2]
    assert missing["column"] == "faculty"
    assert missing["value"] == "دانشکده ناموجود"
    assert "faculties_faculty" in missing["message"]
    assert "name_fa" in missing["message"]  # says it was looked up by name as well
    [heavy] = errors[3]
    assert heavy["column"] == "credits"
    assert "above 10" in heavy["message"]
    faculties = dict(await db.fetch("SELECT code, faculty FROM courses_course"))
    assert sorted(faculties) == ["CE101", "SC201", "SC202", "SC203", "SC204", "SC205"]
    assert faculties["SC204"] == faculties["SC205"] == "SCI"


async def test_enrollments_resolve_students_and_upsert_by_composite_key(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    importer: None,
    bus: tuple[Client, asyncpg.Connection],
) -> None:
    nc, db = bus
    await _faculties_courses_and_people(nc, db, subjects, imports_root)
    p1, p2, p3 = person(1), person(2), person(3)
    header = ["student", "course", "term", "grade"]
    enrollments = _write(
        imports_root / "enrollments.csv",
        header,
        [
            [p1["username"], "CE101", "1402-1", "17.5"],  # row 2: by username
            [p2["student_number"], "CE101", "1402-1", "18"],  # row 3: by student number
            [p3["student_number"], "SC201", "1402-2", ""],  # row 4: no grade yet
            [p1["username"], "NOPE1", "1402-1", "15"],  # row 5: no such course
            [p2["username"], "SC201", "1402-1", "21"],  # row 6: grade out of range
            [p3["username"], "SC202", "1402-4", "12"],  # row 7: no fourth term
            ["9999999999", "SC202", "1402-1", "12"],  # row 8: no such student
        ],
    )
    job = await _load(nc, db, subjects, enrollments, "enrollments.Enrollment")
    stored = {
        (r["student"], r["course"], r["term"]): r["grade"]
        for r in await db.fetch("SELECT * FROM enrollments_enrollment")
    }
    assert stored == {
        (p1["username"], "CE101", "1402-1"): Decimal("17.50"),
        (p2["username"], "CE101", "1402-1"): Decimal("18.00"),
        (p3["username"], "SC201", "1402-2"): None,
    }
    errors = _errors_by_row(job)
    [course] = errors[5]
    assert course["column"] == "course"
    assert "courses_course" in course["message"]
    [grade] = errors[6]
    assert grade["column"] == "grade"
    assert "above 20" in grade["message"]
    [term] = errors[7]
    assert term["column"] == "term"
    assert term["value"] == "1402-4"
    [student] = errors[8]
    assert student["column"] == "student"
    assert "users_user" in student["message"]
    assert "student_number" in student["message"]
    assert job["statistics"]["rows_read"] == 7
    # rows 2 to 4 are stored and counted as inserted, student numbers resolved or not
    assert set(errors) == {5, 6, 7, 8}

    # the same enrollment again with a new grade: the composite key finds and updates it
    again = _write(
        imports_root / "enrollments_again.csv",
        header,
        [
            [p1["username"], "CE101", "1402-1", "19.25"],  # row 2: updated
            [p2["username"], "CE101", "1402-1", "18"],  # row 3: unchanged
            [p1["username"], "CE101", "1402-2", "12"],  # row 4: another term, a new row
        ],
    )
    job = await _load(nc, db, subjects, again, "enrollments.Enrollment", mode="upsert")
    stats = job["statistics"]
    assert (stats["rows_inserted"], stats["rows_updated"], stats["rows_unchanged"]) == (1, 1, 1)
    assert stats["rows_rejected"] == 0, job["errors"]
    rows = await db.fetch(
        "SELECT term, grade FROM enrollments_enrollment WHERE student = $1 AND course = 'CE101' "
        "ORDER BY term",
        p1["username"],
    )
    assert [(r["term"], r["grade"]) for r in rows] == [
        ("1402-1", Decimal("19.25")),
        ("1402-2", Decimal("12.00")),
    ]
    assert await db.fetchval("SELECT count(*) FROM enrollments_enrollment") == 4


async def test_an_enrollment_inserted_by_student_number_counts_as_inserted(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    importer: None,
    bus: tuple[Client, asyncpg.Connection],
) -> None:
    nc, db = bus
    await _faculties_courses_and_people(nc, db, subjects, imports_root)
    p2 = person(2)
    first = _write(
        imports_root / "by_number.csv",
        ["student", "course", "term", "grade"],
        [[p2["student_number"], "CE101", "1402-1", "18"]],
    )
    job = await _load(nc, db, subjects, first, "enrollments.Enrollment")
    stored = await db.fetch("SELECT student, grade FROM enrollments_enrollment")
    assert [(r["student"], r["grade"]) for r in stored] == [(p2["username"], Decimal("18.00"))]
    # regression: the row was once counted by the key as sent (the student number) and so
    # reported as "already exists" although it had been inserted
    assert job["statistics"]["rows_rejected"] == 0, job["errors"]
    assert job["statistics"]["rows_inserted"] == 1


async def test_an_enrollment_updated_by_student_number_counts_as_updated(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    importer: None,
    bus: tuple[Client, asyncpg.Connection],
) -> None:
    nc, db = bus
    await _faculties_courses_and_people(nc, db, subjects, imports_root)
    p2 = person(2)
    header = ["student", "course", "term", "grade"]
    first = _write(imports_root / "first.csv", header, [[p2["username"], "CE101", "1402-1", "18"]])
    job = await _load(nc, db, subjects, first, "enrollments.Enrollment")
    assert job["statistics"]["rows_inserted"] == 1, job["errors"]
    update = _write(
        imports_root / "by_number.csv", header, [[p2["student_number"], "CE101", "1402-1", "19"]]
    )
    job = await _load(nc, db, subjects, update, "enrollments.Enrollment", mode="upsert")
    assert await db.fetchval("SELECT grade FROM enrollments_enrollment") == Decimal("19.00")
    # today: rows_updated 0, rows_unchanged 1 although the grade changed
    assert job["statistics"]["rows_updated"] == 1, job["statistics"]


@pytest.mark.parametrize("mode", ["insert", "upsert"])
async def test_a_composite_key_repeated_in_the_file_is_a_rejected_row(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    importer: None,
    bus: tuple[Client, asyncpg.Connection],
    mode: ImportMode,
) -> None:
    """Regression: a second row with the same student, course and term was counted as
    imported (insert) or updated (upsert) while only one of them was stored."""
    nc, db = bus
    await _faculties_courses_and_people(nc, db, subjects, imports_root)
    p1, p2 = person(1), person(2)
    path = _write(
        imports_root / f"repeated_{mode}.csv",
        ["student", "course", "term", "grade"],
        [
            [p1["username"], "CE101", "1402-1", "18.5"],  # row 2
            [p1["username"], "CE101", "1402-1", "12"],  # row 3: row 2's key again
            [p2["username"], "CE101", "1402-1", "17"],  # row 4
            [p2["student_number"], "CE101", "1402-1", "11"],  # row 5: row 4's student by number
            [p1["username"], "CE101", "1402-2", "16"],  # row 6: another term
        ],
    )
    job = await _load(nc, db, subjects, path, "enrollments.Enrollment", mode=mode)
    stored = {
        (r["student"], r["term"]): r["grade"]
        for r in await db.fetch("SELECT * FROM enrollments_enrollment")
    }
    assert stored == {
        (p1["username"], "1402-1"): Decimal("18.50"),
        (p2["username"], "1402-1"): Decimal("17.00"),
        (p1["username"], "1402-2"): Decimal("16.00"),
    }
    errors = _errors_by_row(job)
    assert set(errors) == {3, 5}
    assert all("duplicate student, course, term" in e["message"] for e in errors[3] + errors[5])
    assert "row 2" in errors[3][0]["message"]
    stats = job["statistics"]
    assert (stats["rows_inserted"], stats["rows_updated"], stats["rows_rejected"]) == (3, 0, 2)
