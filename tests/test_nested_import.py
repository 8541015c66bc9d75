"""Nested JSON records import into a table and their arrays into a child table, in one job.

A bad child is rejected alone, under its parent's row with its JSONPath; its parent and
siblings still load. A parent rejected while checked or while loaded loads no children.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from msgspec.structs import replace

from contracts.jobs import ChildImport, JobOptions
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.processes import importer_with_tables

pytestmark = pytest.mark.e2e

SCHEMA = """
CREATE SCHEMA uni;
CREATE TABLE uni.students (
    student_no text PRIMARY KEY CHECK (student_no ~ '^[0-9]{9}$'), first_name text);
CREATE TABLE uni.courses (course_code text PRIMARY KEY);
CREATE TABLE uni.enrollments (
    student_no text NOT NULL REFERENCES uni.students (student_no),
    course_code text NOT NULL REFERENCES uni.courses (course_code),
    term text NOT NULL,
    grade numeric(4, 2) CHECK (grade BETWEEN 0 AND 20),
    PRIMARY KEY (student_no, course_code, term));
INSERT INTO uni.courses VALUES ('CS101');
"""
TABLES = "uni.students,uni.courses,uni.enrollments"
OPTIONS = JobOptions(
    field_mapping={"name.first": "first_name"},
    children={
        "enrollments": ChildImport(
            model="uni.enrollments",
            parent_key={"student_no": "student_no"},
            field_mapping={"course": "course_code"},
        )
    },
)


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False)


LINES = [
    # line 1: one good child, then a repeated key, an unknown course, a bad grade, a grade
    # the table's CHECK refuses
    _line(
        {
            "student_no": "401100001",
            "name": {"first": "Sara"},
            "enrollments": [
                {"course": "CS101", "term": "1402-1", "grade": 19},
                {"course": "CS101", "term": "1402-1", "grade": 12},
                {"course": "XX999", "term": "1402-1"},
                {"course": "CS101", "term": "1402-2", "grade": "twenty"},
                {"course": "CS101", "term": "1402-3", "grade": 25},
            ],
        }
    ),
    "",
    # line 3: the parent is rejected (a string where an object is expected): no children
    _line({"student_no": "401100002", "name": "Omid", "enrollments": [{"course": "CS101"}]}),
    # line 4: the child array is not an array: the parent is rejected
    _line({"student_no": "401100003", "name": {"first": "Reza"}, "enrollments": {"a": 1}}),
    # line 5: a child naming another parent is refused, the parent loads
    _line(
        {
            "student_no": "401100004",
            "name": {"first": "Nima"},
            "enrollments": [{"course": "CS101", "term": "1402-1", "student_no": "401100009"}],
        }
    ),
    # line 6: the parent repeats line 1's key, refused by the loader: its child stays out
    _line(
        {
            "student_no": "401100001",
            "name": {"first": "Dup"},
            "enrollments": [{"course": "CS101", "term": "1402-9"}],
        }
    ),
]


async def test_children_load_with_their_parents_and_fail_alone(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    db = await asyncpg.connect(settings.database_url)
    await db.execute(SCHEMA)
    (imports_root / "students.jsonl").write_text("\n".join(LINES) + "\n", "utf-8")
    try:
        async with importer_with_tables(settings, TABLES, tmp_path / "importer.log") as nc:
            job = await run_job(
                nc,
                db,
                subjects,
                file_path="students.jsonl",
                fmt="jsonl",
                model="uni.students",
                options=OPTIONS,
            )
            dry = await run_job(
                nc,
                db,
                subjects,
                file_path="students.jsonl",
                fmt="jsonl",
                model="uni.students",
                options=replace(OPTIONS, dry_run=True),
            )
        students = {
            r["student_no"]: r["first_name"] for r in await db.fetch("SELECT * FROM uni.students")
        }
        enrollments = [
            tuple(r) for r in await db.fetch("SELECT * FROM uni.enrollments ORDER BY term")
        ]
        rejections = [
            (r["row"], r["column"])
            for r in await db.fetch(
                'SELECT row, "column" FROM dm.job_rejections WHERE job_id = $1 '
                'ORDER BY row, "column"',
                job["id"],
            )
        ]
    finally:
        await db.close()
    assert job["status"] == "completed", job["error_message"]
    assert students == {"401100001": "Sara", "401100004": "Nima"}
    assert [(s, c, t, str(g)) for s, c, t, g in enrollments] == [
        ("401100001", "CS101", "1402-1", "19.00")
    ]
    assert rejections[:4] == [
        (1, "$.enrollments[1]"),  # the same (student, course, term) as [0]
        (1, "$.enrollments[2].course"),  # no such course: named as the file names it
        (1, "$.enrollments[3].grade"),
        (1, "$.enrollments[4]"),  # refused by the table's CHECK
    ]
    assert rejections[4:] == [
        (3, "$.name"),
        (4, "$.enrollments"),
        (5, "$.enrollments[0].student_no"),
        (6, "student_no"),
    ]
    stats = job["statistics"]
    assert (stats["rows_read"], stats["rows_imported"], stats["rows_rejected"]) == (5, 2, 3)
    assert dry["status"] == "failed"
    assert "children cannot be combined with dry_run" in dry["error_message"]
