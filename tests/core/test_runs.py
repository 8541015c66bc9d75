"""Taking a run against a real PostgreSQL: a run whose worker keeps dying at the same place
fails instead of being handed out for ever (regression: a file that killed the importer
out of memory kept the job "running" through one restart after another)."""

from __future__ import annotations

import uuid

from contracts.jobs import CreateJob, ExecuteJob
from contracts.subjects import Subjects
from services.core.db import make_engine
from services.core.jobs.commands import JobCommands
from services.core.jobs.runs import MAX_STARTS_WITHOUT_PROGRESS, claim_run
from services.core.jobs.store import load
from services.core.settings import Settings


async def test_a_run_started_again_and_again_at_the_same_row_fails(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    job_id = str(uuid.uuid4())
    try:
        commands = JobCommands(engine, subjects, "importer", lambda: None)
        create = CreateJob(
            correlation_id="c",
            actor="registrar",
            job_id=job_id,
            title="deadly",
            job_type="import",
            model_name="users.User",
            format="csv",
            file_path="deadly.csv",
        )
        assert (await commands.create(create)).ok
        queued = await commands.execute(job_id, "registrar", "c")
        assert queued.ok
        assert queued.data is not None
        cmd = ExecuteJob(
            correlation_id="c", actor="registrar", job_id=job_id, run_id=queued.data["run_id"]
        )
        # the first delivery, then redeliveries after each death: no checkpoint in between
        for start in range(MAX_STARTS_WITHOUT_PROGRESS):
            job = await claim_run(engine, subjects, cmd, f"worker-{start}", resumable=True)
            assert job is not None, f"start {start + 1} was refused"
            assert job.status == "running"
        assert await claim_run(engine, subjects, cmd, "worker-last", resumable=True) is None
        async with engine.connect() as conn:
            job = await load(conn, job_id)
        assert job is not None
        assert job.status == "failed"
        assert f"started {MAX_STARTS_WITHOUT_PROGRESS} times at row 0" in job.error_message
        assert "not tried again" in job.error_message
    finally:
        await engine.dispose()
