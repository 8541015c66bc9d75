"""Importer replicas share the work: two jobs submitted together run at the same time on
two replicas, and no job is ever run by two replicas at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import msgspec
import nats
import pytest

from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.people import write_people
from tests.support.processes import running, service_env, wait_for_log

pytestmark = pytest.mark.e2e


async def test_two_jobs_run_at_once_on_two_replicas(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    write_people(imports_root / "a.csv", start=11_000_001, count=40_000)
    write_people(imports_root / "b.csv", start=12_000_001, count=40_000)
    env = service_env(settings, DM_IMPORT_CHUNK_SIZE="500")
    logs = [tmp_path / "r1.log", tmp_path / "r2.log"]
    with (
        running("services.importer", dict(env, DM_WORKER_NAME="replica-1"), logs[0]) as p1,
        running("services.importer", dict(env, DM_WORKER_NAME="replica-2"), logs[1]) as p2,
    ):
        wait_for_log(logs[0], "importer ready", p1)
        wait_for_log(logs[1], "importer ready", p2)
        nc = await nats.connect(settings.nats_url)
        db = await asyncpg.connect(settings.database_url)
        db2 = await asyncpg.connect(settings.database_url)
        try:
            first, second = await asyncio.gather(
                run_job(nc, db, subjects, file_path="a.csv", fmt="csv"),
                run_job(nc, db2, subjects, file_path="b.csv", fmt="csv"),
            )
            starts = await db.fetch("SELECT stream, data FROM dm.events WHERE type = 'job.started'")
        finally:
            await db2.close()
            await db.close()
            await nc.close()
    assert first["status"] == second["status"] == "completed"
    workers: dict[str, list[str]] = {}
    for row in starts:
        data = row["data"] if isinstance(row["data"], dict) else msgspec.json.decode(row["data"])
        workers.setdefault(row["stream"], []).append(data["worker"])
    assert sorted(len(w) for w in workers.values()) == [1, 1]  # each job started once
    assert {w[0] for w in workers.values()} == {"replica-1", "replica-2"}
    # they overlapped in time: each started before the other finished
    assert first["started_at"] < second["completed_at"]
    assert second["started_at"] < first["completed_at"]
