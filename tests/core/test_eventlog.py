"""The event log, its projection and the outbox against real PostgreSQL and NATS."""

from __future__ import annotations

import uuid

import msgspec
import nats
import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import func, select

from contracts.jobs import CreateJob, JobEvent, RequestRun
from contracts.subjects import Subjects
from services.core.bus import ensure_streams
from services.core.db import make_engine
from services.core.eventlog import ConcurrencyError
from services.core.jobs.commands import JobCommands
from services.core.jobs.decide import decide_create
from services.core.jobs.store import load, rebuild, record, state_to_row
from services.core.outbox import OutboxRelay
from services.core.settings import Settings
from services.core.tables import events, outbox


def _create(job_id: str) -> CreateJob:
    return CreateJob(
        correlation_id="c-1",
        actor="alice",
        job_id=job_id,
        title="t",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="a.csv",
    )


async def test_a_version_can_be_taken_once_and_nothing_half_written(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    job_id = str(uuid.uuid4())
    try:
        created = decide_create(None, _create(job_id))
        async with engine.begin() as conn:
            await record(conn, subjects, None, created)
        with pytest.raises(ConcurrencyError):
            async with engine.begin() as conn:
                await record(conn, subjects, None, created)  # same stream, same version
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
            queued = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        assert count == 1
        assert queued == 1
    finally:
        await engine.dispose()


async def test_projection_equals_a_replay_of_the_log(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    commands = JobCommands(engine, subjects, "importer", lambda: None)
    job_id = str(uuid.uuid4())
    try:
        assert (await commands.create(_create(job_id))).ok
        assert (await commands.execute(job_id, "alice", "c-2")).ok
        again = await commands.execute(job_id, "alice", "c-3")
        assert not again.ok
        assert again.error is not None
        assert again.error.code == "conflict"
        async with engine.begin() as conn:
            projected = await load(conn, job_id)
            replayed = await rebuild(conn, job_id)
        assert projected is not None
        assert replayed is not None
        assert state_to_row(projected) == state_to_row(replayed)
        assert projected.status == "queued"
    finally:
        await engine.dispose()


async def test_outbox_publishes_after_commit_and_catches_up_after_a_crash(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    job_id = str(uuid.uuid4())
    try:
        js = nc.jetstream()
        await ensure_streams(js, subjects)
        # events committed while no relay runs (as if the process crashed after commit)
        commands = JobCommands(engine, subjects, "importer", lambda: None)
        assert (await commands.create(_create(job_id))).ok
        assert (await commands.execute(job_id, "alice", "c-2")).ok

        relay = OutboxRelay(engine, js)
        published = await relay.flush()
        assert published == 3  # created, queued, and the execute command
        assert await relay.flush() == 0

        sub = await js.subscribe(
            subjects.events_of("job", job_id), deliver_policy=DeliverPolicy.ALL
        )
        tags = []
        for _ in range(2):
            msg = await sub.next_msg(timeout=5)
            tags.append(type(msgspec.json.decode(msg.data, type=JobEvent)).__struct_config__.tag)
        assert tags == ["job.created", "job.queued"]
        info = await js.stream_info(subjects.commands_stream)
        assert info.state.messages == 1

        # publishing the same rows again (a relay that died before deleting them) is dropped
        async with engine.connect() as conn:
            rows = (await conn.execute(select(events.c.event_id))).all()
        for row in rows:
            ack = await js.publish(
                subjects.event("job", job_id, "created"),
                b"{}",
                headers={"Nats-Msg-Id": row.event_id},
            )
            assert ack.duplicate
    finally:
        await nc.close()
        await engine.dispose()


async def test_request_run_queues_command_atomically_with_event(
    settings: Settings, subjects: Subjects
) -> None:
    engine = make_engine(settings.database_url)
    job_id = str(uuid.uuid4())
    try:
        commands = JobCommands(engine, subjects, "importer", lambda: None)
        await commands.create(_create(job_id))
        reply = await commands.execute(job_id, "alice", "c")
        assert reply.ok
        assert reply.data is not None
        async with engine.connect() as conn:
            subjects_queued = (await conn.execute(select(outbox.c.subject))).scalars().all()
        assert subjects.command("importer", "execute") in subjects_queued
        _ = RequestRun  # the bus form of the same request
    finally:
        await engine.dispose()
