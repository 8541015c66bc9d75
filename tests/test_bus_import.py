"""Another university system drives an import over the bus alone: no gateway involved."""

from __future__ import annotations

import asyncio
import csv
import uuid
from pathlib import Path

import asyncpg
import msgspec
import nats
import pytest
from nats.js.api import DeliverPolicy

from contracts.base import Reply
from contracts.jobs import (
    CreateJob,
    ExecuteJob,
    JobCheckpointed,
    JobEvent,
    JobOptions,
    JobProgress,
)
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.people import FIELDS, person, write_people
from tests.support.processes import running, service_env, wait_for_log

pytestmark = pytest.mark.e2e


async def test_import_driven_by_commands_and_followed_on_streams(
    settings: Settings, subjects: Subjects, tmp_path: Path
) -> None:
    people = write_people(tmp_path / "people.csv", start=1, count=2_500)
    log = tmp_path / "importer.log"
    # chunks of 2,000 rows: the run's first chunk is shorter, so the database starts sooner
    env = service_env(settings, DM_IMPORT_CHUNK_SIZE="2000")
    with running("services.importer", env, log) as proc:
        wait_for_log(log, "importer ready", proc)
        nc = await nats.connect(settings.nats_url)
        try:
            js = nc.jetstream()
            store = await js.object_store(subjects.object_store)
            await store.put("registrar/people.csv", people.read_bytes())

            job_id = str(uuid.uuid4())
            create = CreateJob(
                correlation_id="lms-42",
                actor="lms",
                job_id=job_id,
                title="from the LMS",
                job_type="import",
                model_name="users.User",
                format="csv",
                file_path="upload:registrar/people.csv",
            )
            msg = await nc.request(
                subjects.request("importer", "create"), msgspec.json.encode(create), timeout=10
            )
            reply = msgspec.json.decode(msg.data, type=Reply)
            assert reply.ok, reply.error

            events = await js.subscribe(
                subjects.events_of("job", job_id), deliver_policy=DeliverPolicy.ALL
            )
            execute = ExecuteJob(
                correlation_id="lms-42", actor="lms", job_id=job_id, run_id=str(uuid.uuid4())
            )
            for _ in range(2):  # a retried publish is deduplicated by its message id
                await js.publish(
                    subjects.command("importer", "execute"),
                    msgspec.json.encode(execute),
                    headers={"Nats-Msg-Id": f"lms-{execute.run_id}"},
                )
            seen: list[str] = []
            checkpoints: list[int] = []
            while "job.completed" not in seen and "job.failed" not in seen:
                m = await events.next_msg(timeout=30)
                event = msgspec.json.decode(m.data, type=JobEvent)
                assert event.correlation_id == "lms-42"
                seen.append(str(type(event).__struct_config__.tag))
                if isinstance(event, JobCheckpointed):
                    checkpoints.append(event.last_row)
                await m.ack()
            assert seen[0] == "job.created"
            assert seen[-1] == "job.completed"
            assert seen.count("job.started") == 1
            assert checkpoints == [1_000, 2_500]

            # a late subscriber still gets the latest progress from the progress stream
            last = await js.get_last_msg(subjects.progress_stream, subjects.progress("job", job_id))
            assert last.data is not None
            progress = msgspec.json.decode(last.data, type=JobProgress)
            assert progress.status == "completed"
            assert progress.rows_imported == 2_500
            assert progress.percent == 100.0
        finally:
            await nc.close()
        await asyncio.sleep(0)
    conn = await asyncpg.connect(settings.database_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM users_user")
        zeros = await conn.fetchval(
            "SELECT student_number FROM users_user WHERE username = 'p0000001'"
        )
    finally:
        await conn.close()
    assert count == 2_500
    assert zeros == "0000000001"


async def test_chunks_grow_to_the_chunk_size_unless_a_share_of_bad_rows_is_allowed(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    """Chunks double from 1,000 rows up to the chunk size, so the database starts sooner.
    With a share of bad rows allowed, which is judged once a chunk's worth has been read,
    the first chunk stays the only short one: growing chunks had committed 3,000 rows of
    a bad file before the judgement (1,000 + 2,000), not 1,000."""
    rows = [person(i) for i in range(60_001, 72_001)]
    for row in rows[:7_000:2]:
        row["role"] = "wizard"  # half of the first 7,000 rows are bad
    with open(imports_root / "bad.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    write_people(imports_root / "good.csv", start=80_001, count=12_000)
    log = tmp_path / "importer.log"
    with running("services.importer", service_env(settings, DM_IMPORT_CHUNK_SIZE="4000"), log) as p:
        wait_for_log(log, "importer ready", p)
        nc = await nats.connect(settings.nats_url)
        db = await asyncpg.connect(settings.database_url)
        try:
            good = await run_job(nc, db, subjects, file_path="good.csv", fmt="csv")
            assert good["status"] == "completed", good["error_message"]
            checkpoints = await db.fetch(
                "SELECT (data->>'last_row')::int FROM dm.events "
                "WHERE stream = $1 AND type = 'job.checkpointed' ORDER BY version",
                f"job-{good['id']}",
            )
            assert [r[0] for r in checkpoints] == [1_000, 3_000, 7_000, 11_000, 12_000]

            bad = await run_job(
                nc, db, subjects, file_path="bad.csv", fmt="csv",
                options=JobOptions(max_error_percent=5),
            )  # fmt: skip
            assert bad["status"] == "failed"
            assert "more than the 5% allowed" in bad["error_message"]
            stored = await db.fetchval(
                "SELECT count(*) FROM users_user WHERE username LIKE 'p006%'"
            )
            assert stored == 500  # the first chunk's good rows only
        finally:
            await db.close()
            await nc.close()
