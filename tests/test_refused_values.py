"""Values a column's own type refuses (a bad address in an inet column, a number too big for a
real, a word not in an enum, a domain's check) are rejected rows that name the row, the column
and PostgreSQL's reason; the other rows of the chunk are stored."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from contracts.jobs import JobOptions
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.processes import importer_with_tables

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "options",
    [
        JobOptions(mode="insert"),
        JobOptions(mode="upsert"),
        JobOptions(dry_run=True),
        JobOptions(all_or_nothing=True),
    ],
    ids=["insert", "upsert", "dry-run", "all-or-nothing"],
)
async def test_a_value_the_column_type_refuses_rejects_its_row_only(
    settings: Settings,
    subjects: Subjects,
    imports_root: Path,
    tmp_path: Path,
    options: JobOptions,
) -> None:
    db = await asyncpg.connect(settings.database_url)
    await db.execute(
        "CREATE SCHEMA uni; CREATE TYPE uni.level AS ENUM ('bsc', 'msc'); "
        "CREATE DOMAIN uni.room AS text CHECK (VALUE ~ '^[A-Z][0-9]+$'); "
        "CREATE TABLE uni.hosts (name text PRIMARY KEY, addr inet, ratio real, mac macaddr, "
        "level uni.level, room uni.room)"
    )
    (imports_root / "hosts.csv").write_text(
        "name,addr,ratio,mac,level,room\n"
        "h1,10.0.0.1,0.5,08:00:2b:01:02:03,msc,B12\n"
        "h2,999.1.1.1,0.5,08:00:2b:01:02:04,bsc,B12\n"
        "h3,10.0.0.3,1e39,08:00:2b:01:02:05,bsc,B12\n"
        "h4,10.0.0.4,2.5,zz,bsc,B12\n"
        "h5,10.0.0.0/8,,,,\n"
        "h6,10.0.0.6,1,,phd,B12\n"
        "h7,10.0.0.7,1,,,room 5\n",
        "utf-8",
    )
    try:
        async with importer_with_tables(settings, "uni.hosts", tmp_path / "importer.log") as nc:
            job = await run_job(
                nc,
                db,
                subjects,
                file_path="hosts.csv",
                fmt="csv",
                model="uni.hosts",
                options=options,
            )
        stored = {r["name"]: r for r in await db.fetch("SELECT * FROM uni.hosts")}
    finally:
        await db.close()
    found = {(e["row"], e["column"]): e for e in job["errors"]}
    assert sorted(found) == [(3, "addr"), (4, "ratio"), (5, "mac"), (7, "level"), (8, "room")]
    if options.all_or_nothing:  # the first pass found them: nothing is written
        assert job["status"] == "failed"
        assert "5 of 7 rows were rejected" in job["error_message"], job["error_message"]
        assert stored == {}
        return
    assert job["status"] == "completed", job["error_message"]
    assert sorted(stored) == ([] if options.dry_run else ["h1", "h5"])
    if not options.dry_run:
        assert str(stored["h5"]["addr"]) == "10.0.0.0/8"
    assert "999.1.1.1" in found[(3, "addr")]["message"]
    assert found[(3, "addr")]["value"] == "999.1.1.1"
    assert "range" in found[(4, "ratio")]["message"]
    assert "phd" in found[(7, "level")]["message"]
    assert "room_check" in found[(8, "room")]["message"]
    assert job["statistics"]["rows_rejected"] == 5
