"""Scheduled jobs: validated when saved, fired once per due time across replicas, caught up
once after downtime, skipped while busy; time from a frozen clock, so nothing sleeps."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import nats
import pytest
from sqlalchemy import select

from contracts.jobs import CreateJob, ExecuteJob, Schedule
from contracts.subjects import Subjects
from services.core.bus import ensure_streams
from services.core.db import make_engine
from services.core.jobs.commands import JobCommands
from services.core.jobs.decide import DecisionError, decide_create
from services.core.jobs.schedules import JobScheduler
from services.core.outbox import OutboxRelay
from services.core.scheduling import FrozenClock
from services.core.settings import Settings
from services.core.tables import events

# saving a schedule stamps it with the real time, so the frozen clock starts from there
START = datetime.now(UTC).replace(microsecond=0)
DAILY_2AM_TEHRAN = Schedule(cron="0 2 * * *", timezone="Asia/Tehran")


def _last_2am_tehran(moment: datetime) -> datetime:
    """The most recent 02:00 in Tehran (22:30 UTC; no DST there since 2022) at ``moment``."""
    candidate = moment.replace(hour=22, minute=30, second=0, microsecond=0)
    return candidate if candidate <= moment else candidate - timedelta(days=1)


def _create(job_id: str, schedule: Schedule) -> CreateJob:
    return CreateJob(
        correlation_id="c",
        actor="registrar",
        job_id=job_id,
        title="nightly",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="drop/students.csv",
        schedule=schedule,
    )


def test_impossible_dates_and_bad_zones_are_refused_when_saved() -> None:
    for schedule, words in (
        (Schedule(cron="0 9 31 2 *", timezone="Asia/Tehran"), "February"),
        (Schedule(cron="0 9 * * *", timezone="Mars/Olympus"), "Mars/Olympus"),
        (Schedule(at="2020-01-01T00:00:00+00:00"), "past"),
    ):
        with pytest.raises(DecisionError) as caught:
            decide_create(None, _create("j", schedule), now=datetime(2026, 3, 1, tzinfo=UTC))
        assert caught.value.code == "invalid"
        assert words in caught.value.message


async def test_each_due_run_fires_once_across_replicas_and_catches_up_once(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    job_id = str(uuid.uuid4())
    clock = FrozenClock(START)
    try:
        js = nc.jetstream()
        await ensure_streams(js, subjects)
        commands = JobCommands(engine, subjects, "importer", lambda: None)
        assert (await commands.create(_create(job_id, DAILY_2AM_TEHRAN))).ok

        replicas = [
            JobScheduler(engine, subjects, "importer", "import", clock, lambda: None)
            for _ in range(2)
        ]
        assert [await r.tick() for r in replicas] == [[], []]  # nothing due yet

        clock.set(START + timedelta(days=1))  # a 02:00 in Tehran has passed since saving
        first, second = await asyncio.gather(*(r.tick() for r in replicas))
        fired = first + second
        assert len(fired) == 1
        assert fired[0][1] == _last_2am_tehran(START + timedelta(days=1))

        # the job is now queued (busy): the next day's slot is recorded but not run twice
        clock.set(START + timedelta(days=2))
        assert len(await replicas[0].tick()) == 1
        # three days of downtime, then one catch-up, not three
        clock.set(START + timedelta(days=5, hours=1))
        fired = await replicas[1].tick() + await replicas[0].tick()
        assert len(fired) == 1
        assert fired[0][1] == _last_2am_tehran(START + timedelta(days=5, hours=1))

        relay = OutboxRelay(engine, js)
        while await relay.flush():
            pass
        info = await js.stream_info(subjects.commands_stream)
        assert info.state.messages == 1  # only the first fire found the job idle
        msg = await js.get_msg(subjects.commands_stream, seq=info.state.first_seq)
        command = msgspec.json.decode(msg.data or b"", type=ExecuteJob)
        assert command.job_id == job_id
        assert command.actor == "scheduler"
        async with engine.connect() as conn:
            kinds = (
                (
                    await conn.execute(
                        select(events.c.type)
                        .where(events.c.stream == f"job-{job_id}")
                        .order_by(events.c.version)
                    )
                )
                .scalars()
                .all()
            )
        assert kinds == ["job.created", "job.fired", "job.queued", "job.fired", "job.fired"]
    finally:
        await nc.close()
        await engine.dispose()
