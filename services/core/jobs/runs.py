"""Taking a run: the shared first step of every job worker (importer, exporter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.base import ErrorInfo
from contracts.jobs import (
    TERMINAL_STATUSES,
    ExecuteJob,
    JobEvent,
    JobFailed,
    JobQueued,
    JobStarted,
)
from contracts.subjects import Subjects
from services.core.eventlog import event_fields
from services.core.jobs.decide import BUSY
from services.core.jobs.state import JobState, stream_of
from services.core.jobs.store import load, record
from services.core.logs import get_logger
from services.core.tables import events as event_log

__all__ = ["MAX_STARTS_WITHOUT_PROGRESS", "claim_run", "run_envelope"]

log = get_logger(__name__)

# a run started this many times at the same place without getting further: its worker dies
# on it (killed out of memory, a crash inside a library), so it fails instead of looping
MAX_STARTS_WITHOUT_PROGRESS = 5


def run_envelope(job: JobState, cmd: ExecuteJob, offset: int = 0) -> dict[str, Any]:
    """The envelope of the next event of ``job`` written on behalf of ``cmd``."""
    return event_fields(stream_of(job.id), job.version + 1 + offset, cmd.actor, cmd.correlation_id)


async def claim_run(
    engine: AsyncEngine, subjects: Subjects, cmd: ExecuteJob, worker: str, *, resumable: bool
) -> JobState | None:
    """Record ``JobStarted`` for ``cmd``'s run, or ``None`` when there is nothing to run:
    an unknown job, a job busy with another run, or a redelivered command for a run that
    already ended. A command that nobody queued (another system put it on the stream) is
    queued here first. ``resumable`` workers continue after the run's last checkpoint."""
    async with engine.begin() as conn:
        job = await load(conn, cmd.job_id, lock=True)
        if job is None:
            log.info("execute for unknown job ignored", job_id=cmd.job_id)
            return None
        events: list[JobEvent] = []
        if job.run_id != cmd.run_id:
            if job.status in BUSY:
                log.warning("job busy with another run; command dropped", job_id=job.id)
                return None
            events.append(JobQueued(**run_envelope(job, cmd), job_id=job.id, run_id=cmd.run_id))
        elif job.status in TERMINAL_STATUSES:
            return None
        resumed = job.last_row if resumable and job.run_id == cmd.run_id else 0
        if job.run_id == cmd.run_id and job.status == "running":  # redelivered after a death
            starts = await _starts_at(conn, job.id, cmd.run_id, resumed)
            if starts >= MAX_STARTS_WITHOUT_PROGRESS:
                message = (
                    f"the run was started {starts} times at row {resumed:,} and each time its "
                    "worker stopped without getting further (killed, perhaps for running out "
                    "of memory, or crashed); it is not tried again: see the worker's log"
                )
                log.error("run keeps killing its worker; failing it", job_id=job.id, starts=starts)
                failed = JobFailed(
                    **run_envelope(job, cmd),
                    job_id=job.id,
                    run_id=cmd.run_id,
                    error=ErrorInfo(code="worker_died", message=message),
                    statistics=job.statistics,
                )
                await record(conn, subjects, job, [failed])
                return None
        events.append(
            JobStarted(
                **run_envelope(job, cmd, len(events)),
                job_id=job.id,
                run_id=cmd.run_id,
                worker=worker,
                resumed_from_row=resumed,
            )
        )
        job = await record(conn, subjects, job, events)
    if resumed:
        log.info("resuming after checkpoint", job_id=cmd.job_id, last_row=resumed)
    return job


async def _starts_at(conn: AsyncConnection, job_id: str, run_id: str, row: int) -> int:
    """How often the run was started (or resumed) at ``row``."""
    data = event_log.c.data
    resumed = func.coalesce(data["resumed_from_row"].astext.cast(BigInteger), 0)
    found = await conn.execute(
        select(func.count())
        .select_from(event_log)
        .where(
            event_log.c.stream == stream_of(job_id),
            event_log.c.type == "job.started",
            data["run_id"].astext == run_id,
            resumed == row,
        )
    )
    return int(found.scalar_one())
