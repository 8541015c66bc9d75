"""Firing scheduled jobs: each due run is queued exactly once across scheduler replicas.

Every replica of a job-owning service ticks; for each scheduled job it computes the single
most recent due fire time (a run missed during downtime is caught up once, DST rules in
``services.core.scheduling.due``). Firing is one transaction on the job's row: whoever locks
it first records ``JobFired`` (and ``JobQueued`` with the execute command in the outbox);
the others see ``last_fired_at`` already there and do nothing. The command's
``Nats-Msg-Id`` names the job and fire time, so even a re-published command runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.jobs import JobEvent, JobFired
from contracts.subjects import Subjects
from services.core.eventlog import enqueue, event_fields
from services.core.jobs.decide import BUSY, decide_execute
from services.core.jobs.state import evolve, stream_of
from services.core.jobs.store import load, record, row_to_state
from services.core.logs import get_logger
from services.core.scheduling import Clock, due_fire, fire_id
from services.core.tables import jobs

__all__ = ["JobScheduler"]

log = get_logger(__name__)

SCHEDULER = "scheduler"


class JobScheduler:
    def __init__(
        self,
        engine: AsyncEngine,
        subjects: Subjects,
        service: str,
        job_type: str,
        clock: Clock,
        on_commit: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.subjects = subjects
        self.service = service
        self.job_type = job_type
        self.clock = clock
        self.on_commit = on_commit

    async def tick(self) -> list[tuple[str, datetime]]:
        """Fire what is due now; returns (job id, fire time) of the runs this call fired."""
        now = self.clock.now()
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(jobs).where(
                        jobs.c.schedule.is_not(None), jobs.c.job_type == self.job_type
                    )
                )
            ).all()
        fired = []
        for row in rows:
            state = row_to_state(row)
            if state.schedule is None:
                continue
            since = state.schedule_since or state.created_at
            try:
                due = due_fire(state.schedule, state.last_fired_at, since, now)
            except ValueError:
                log.warning("schedule can no longer be read", job_id=state.id)
                continue
            if due is not None and await self.fire(state.id, due):
                fired.append((state.id, due))
        return fired

    async def fire(self, job_id: str, fire_time: datetime) -> bool:
        """Record the fire (and queue a run) unless another replica already did."""
        message_id = fire_id(job_id, fire_time)
        async with self.engine.begin() as conn:
            job = await load(conn, job_id, lock=True)
            if job is None or job.schedule is None:
                return False
            if job.last_fired_at is not None and job.last_fired_at >= fire_time:
                return False
            busy = job.status in BUSY
            env = event_fields(stream_of(job_id), job.version + 1, SCHEDULER, message_id)
            fired = JobFired(**env, job_id=job_id, fire_time=fire_time.isoformat(), queued=not busy)
            events: list[JobEvent] = [fired]
            after = evolve(job, fired)
            if not busy:
                queued, command = decide_execute(after, job_id, SCHEDULER, message_id)
                events += queued
                await enqueue(
                    conn,
                    self.subjects.command(self.service, "execute"),
                    command,
                    message_id=message_id,
                )
            await record(conn, self.subjects, job, events)
        self.on_commit()
        log.info("schedule fired", job_id=job_id, fire_time=fire_time.isoformat(), queued=not busy)
        return True

    async def run(self, interval: float) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.tick()
            await asyncio.sleep(interval)
