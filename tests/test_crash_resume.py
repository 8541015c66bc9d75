"""kill -9 the importer mid-job: another replica resumes after the last checkpoint and the
table ends exactly as if nothing had happened, with each rejected row counted once."""

from __future__ import annotations

import asyncio
import csv
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec
import nats
import nats.aio.client
import pytest

from contracts.base import Reply
from contracts.jobs import CreateJob, ImportMode, JobOptions, RequestRun
from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.people import FIELDS, person
from tests.support.processes import running, service_env, wait_for_log

pytestmark = pytest.mark.e2e

ROWS = 120_000
BAD_EVERY = 1_000


def write_file(path: Path, *, repeat_first: bool = False) -> int:
    """ROWS people, every BAD_EVERY-th with a bad e-mail; ``repeat_first`` adds, as the last
    row, the first person again under another first name. The number of bad rows."""
    bad = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for i in range(1, ROWS + 1):
            row = person(3_000_000 + i)
            if i % BAD_EVERY == 0:
                row["email"] = "not an email"
                bad += 1
            writer.writerow(row)
        if repeat_first:
            writer.writerow(dict(person(3_000_001), first_name="Repeated"))
    return bad


async def _start(
    nc: nats.aio.client.Client, subjects: Subjects, job_id: str, mode: ImportMode = "insert"
) -> None:
    """Create the import of big.csv and queue its run, as another system would."""
    create = CreateJob(
        correlation_id="c",
        actor="registrar",
        job_id=job_id,
        title="big",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="big.csv",
        options=JobOptions(mode=mode),
    )
    run = RequestRun(correlation_id="c", actor="registrar", job_id=job_id)
    for verb, cmd in (("create", create), ("request_run", run)):
        msg = await nc.request(
            subjects.request("importer", verb), msgspec.json.encode(cmd), timeout=10
        )
        assert msgspec.json.decode(msg.data, type=Reply).ok


async def _job(conn: asyncpg.Connection, job_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow("SELECT * FROM dm.jobs WHERE id = $1", job_id)
    return row


async def _wait(
    conn: asyncpg.Connection, job_id: str, done: Callable[[asyncpg.Record], bool], seconds: float
) -> asyncpg.Record:
    """The job's row once ``done`` holds for it, or when ``seconds`` have passed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = await _job(conn, job_id)
        if done(job) or asyncio.get_running_loop().time() > deadline:
            return job
        await asyncio.sleep(0.05)


async def _finish_on_second_worker(
    env: dict[str, str], db: asyncpg.Connection, job_id: str, log: Path, seconds: float
) -> dict[str, int]:
    """Start a replica named "second", let it finish the job; the job's final statistics."""
    with running("services.importer", dict(env, DM_WORKER_NAME="second"), log) as p:
        wait_for_log(log, "importer ready", p)
        job = await _wait(db, job_id, lambda j: j["status"] in ("completed", "failed"), seconds)
    assert job["status"] == "completed", job["error_message"]
    stats = job["statistics"]
    decoded: dict[str, int] = msgspec.json.decode(stats) if isinstance(stats, str) else stats
    return decoded


async def test_killed_worker_is_resumed_by_another_without_loss_or_doubles(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    bad = write_file(imports_root / "big.csv")
    env = service_env(settings, DM_ACK_WAIT_SECONDS="3", DM_IMPORT_CHUNK_SIZE="500")
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    try:
        first_log = tmp_path / "first.log"
        with running("services.importer", dict(env, DM_WORKER_NAME="first"), first_log) as p:
            wait_for_log(first_log, "importer ready", p)
            await _start(nc, subjects, job_id)
            job = await _wait(db, job_id, lambda j: j["last_row"] >= 10_000, 15)
            assert job["status"] == "running"
            assert job["last_row"] < ROWS, "finished before it could be killed"
            p.send_signal(signal.SIGKILL)
            p.wait()
        killed_at = (await _job(db, job_id))["last_row"]

        stats = await _finish_on_second_worker(env, db, job_id, tmp_path / "second.log", 120)
        assert stats["rows_read"] == ROWS
        assert stats["rows_imported"] == ROWS - bad
        assert stats["rows_rejected"] == bad

        count = await db.fetchval("SELECT count(*) FROM users_user WHERE username LIKE 'p3%'")
        assert count == ROWS - bad
        rejections = await db.fetchval(
            "SELECT count(DISTINCT row) FROM dm.job_rejections WHERE job_id = $1", job_id
        )
        total = await db.fetchval(
            "SELECT count(*) FROM dm.job_rejections WHERE job_id = $1", job_id
        )
        assert rejections == total == bad
        starts = await db.fetch(
            "SELECT data FROM dm.events WHERE stream = $1 AND type = 'job.started' "
            "ORDER BY version",
            f"job-{job_id}",
        )
        assert len(starts) == 2
        resumed = (
            msgspec.json.decode(starts[1]["data"])
            if isinstance(starts[1]["data"], str)
            else starts[1]["data"]
        )
        assert resumed["worker"] == "second"
        assert resumed["resumed_from_row"] == killed_at > 0
    finally:
        await nc.close()
        await db.close()


async def test_stopped_worker_hands_its_job_back_at_once(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    """SIGTERM (Ctrl-C, a rolling deploy): the run stops at a chunk boundary and the next
    replica resumes it without waiting for the ack deadline."""
    bad = write_file(imports_root / "big.csv")
    # a long ack wait: only a handed-back command can be picked up quickly
    env = service_env(settings, DM_ACK_WAIT_SECONDS="120", DM_IMPORT_CHUNK_SIZE="500")
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    try:
        first_log = tmp_path / "first.log"
        with running("services.importer", dict(env, DM_WORKER_NAME="first"), first_log) as p:
            wait_for_log(first_log, "importer ready", p)
            await _start(nc, subjects, job_id)
            await _wait(db, job_id, lambda j: j["last_row"] >= 5_000, 15)
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == 0
        stopped = await _job(db, job_id)
        assert stopped["status"] == "running"
        assert 0 < stopped["last_row"] < ROWS

        # well under the 120 s ack wait
        stats = await _finish_on_second_worker(env, db, job_id, tmp_path / "second.log", 60)
        assert stats["rows_imported"] == ROWS - bad
        assert stats["rows_rejected"] == bad
        count = await db.fetchval("SELECT count(*) FROM users_user WHERE username LIKE 'p3%'")
        assert count == ROWS - bad
    finally:
        await nc.close()
        await db.close()


async def test_a_key_repeated_after_the_resume_point_is_still_a_rejected_duplicate(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    """An upsert of a file whose last row repeats the first person, stopped midway and
    resumed: the repeat is rejected as in a run never interrupted. Before, the resumed run
    had forgotten the keys of the rows before its checkpoint that changed nothing, and the
    repeat overwrote the first person's record."""
    bad = write_file(imports_root / "big.csv", repeat_first=True)
    env = service_env(settings, DM_ACK_WAIT_SECONDS="120", DM_IMPORT_CHUNK_SIZE="500")
    loaded, upsert = str(uuid.uuid4()), str(uuid.uuid4())
    db = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    try:
        first_log = tmp_path / "first.log"
        with running("services.importer", dict(env, DM_WORKER_NAME="first"), first_log) as p:
            wait_for_log(first_log, "importer ready", p)
            await _start(nc, subjects, loaded)  # the people are stored as the file says
            job = await _wait(db, loaded, lambda j: j["status"] in ("completed", "failed"), 120)
            assert job["status"] == "completed", job["error_message"]
            await _start(nc, subjects, upsert, mode="upsert")  # every row is unchanged
            await _wait(db, upsert, lambda j: j["last_row"] >= 5_000, 15)
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == 0
        assert 0 < (await _job(db, upsert))["last_row"] < ROWS

        stats = await _finish_on_second_worker(env, db, upsert, tmp_path / "second.log", 60)
        assert (stats["rows_unchanged"], stats["rows_updated"]) == (ROWS - bad, 0)
        assert stats["rows_rejected"] == bad + 1
        repeat = await db.fetchval(
            "SELECT message FROM dm.job_rejections WHERE job_id = $1 AND row = $2",
            upsert,
            ROWS + 2,
        )
        assert repeat is not None
        assert "already in row 2 " in repeat, repeat
        name = await db.fetchval(
            "SELECT first_name FROM users_user WHERE username = $1", person(3_000_001)["username"]
        )
        assert name == person(3_000_001)["first_name"]
    finally:
        await nc.close()
        await db.close()
