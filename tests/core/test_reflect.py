"""Tables of the university's own database enabled as models, read from a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from contracts.jobs import JobOptions
from services.core.catalogue.reflect import reflect_models
from services.core.catalogue.rules import load_rules
from services.core.db import make_engine
from services.importer.csv_source import RecordBatch
from services.importer.validate import RowValidator

ODD = Path(__file__).parent.parent / "data" / "odd"
TABLES = [
    "registrar.departments",
    "registrar.students",
    "registrar.courses",
    "registrar.enrollments",
]


async def test_key_and_reference_columns_of_text_take_persian_digits_as_ascii(
    database_url: str,
) -> None:
    """Regression: ۵00000001 in enrollments.student_no (text, a reference to a student,
    no field rule) stayed as sent and matched no student."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute((ODD / "schema.sql").read_text(encoding="utf-8"))
    finally:
        await admin.close()
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            models = await reflect_models(conn, TABLES, load_rules(str(ODD / "rules.toml")))
    finally:
        await engine.dispose()
    enrollments = models["registrar.enrollments"]
    kinds = {f.name: f.kind for f in enrollments.fields}
    assert kinds["student_no"] == "identifier"
    assert kinds["course_code"] == "identifier"
    header = [f.name for f in enrollments.fields]
    cells = {"student_no": "۵00000001", "course_code": "CS101", "term": "1403-1"}
    row = [cells.get(name, "") for name in header]
    checked = RowValidator(enrollments, header, {}, JobOptions()).check_rows(
        RecordBatch([2], [row])
    )
    assert not checked.rejected, checked.rejected
    assert checked.valid[0][1 + header.index("student_no")] == "500000001"
