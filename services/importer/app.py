"""The importer's FastStream app: definition requests and the execute command consumer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Reply
from contracts.jobs import CancelJob, CreateJob, DeleteJob, ExecuteJob, RequestRun, UpdateJob
from contracts.subjects import Subjects
from services.core.bus import ensure_object_store, ensure_streams, make_broker
from services.core.db import make_engine
from services.core.jobs.commands import JobCommands
from services.core.logs import bind, get_logger
from services.core.migrate import migrate
from services.core.outbox import OutboxRelay
from services.core.settings import Settings
from services.importer.errors import RunBusy
from services.importer.runner import JobRunner

__all__ = ["SERVICE", "build_app"]

SERVICE = "importer"
BUSY_RETRY_SECONDS = 5.0

log = get_logger(__name__)


@dataclass
class _Runtime:
    engine: AsyncEngine
    relay: OutboxRelay
    commands: JobCommands
    runner: JobRunner


def build_app(
    settings: Settings, *, nats_url: str, database_url: str
) -> tuple[FastStream, NatsBroker]:
    subjects = Subjects(settings.bus_prefix)
    broker = make_broker(nats_url, name=f"{SERVICE}-{settings.worker_name or os.getpid()}")
    worker = settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
    runtime: dict[str, _Runtime] = {}

    def rt() -> _Runtime:
        return runtime["rt"]

    @broker.subscriber(subjects.request(SERVICE, "create"), queue=SERVICE)
    async def create_job(cmd: CreateJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("create job", actor=cmd.actor, model=cmd.model_name)
            return await rt().commands.create(cmd)

    @broker.subscriber(subjects.request(SERVICE, "update"), queue=SERVICE)
    async def update_job(cmd: UpdateJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            return await rt().commands.update(cmd)

    @broker.subscriber(subjects.request(SERVICE, "delete"), queue=SERVICE)
    async def delete_job(cmd: DeleteJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            return await rt().commands.delete(cmd)

    @broker.subscriber(subjects.request(SERVICE, "cancel"), queue=SERVICE)
    async def cancel_job(cmd: CancelJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("cancel job", actor=cmd.actor)
            return await rt().commands.cancel(cmd)

    @broker.subscriber(subjects.request(SERVICE, "request_run"), queue=SERVICE)
    async def request_run(cmd: RequestRun) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("run requested", actor=cmd.actor)
            return await rt().commands.execute(cmd.job_id, cmd.actor, cmd.correlation_id)

    @broker.subscriber(
        subjects.command(SERVICE, "execute"),
        stream=JStream(subjects.commands_stream, declare=False),
        durable=subjects.durable(SERVICE),
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=ConsumerConfig(ack_wait=float(settings.ack_wait_seconds)),
        ack_policy=AckPolicy.MANUAL,
    )
    async def execute_job(cmd: ExecuteJob, msg: NatsMessage) -> None:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id, run_id=cmd.run_id):
            await _execute(rt().runner, cmd, msg, settings.ack_wait_seconds / 3)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await broker.connect()
        js = broker.config.connection_state.stream
        await ensure_streams(js, subjects)
        await ensure_object_store(js, subjects)
        engine = make_engine(database_url)
        await migrate(engine)
        relay = OutboxRelay(engine, js)
        runtime["rt"] = _Runtime(
            engine=engine,
            relay=relay,
            commands=JobCommands(engine, subjects, SERVICE, relay.poke),
            runner=JobRunner(
                engine=engine,
                js=js,
                subjects=subjects,
                relay=relay,
                imports_root=settings.imports_path,
                chunk_size=settings.import_chunk_size,
                worker=worker,
            ),
        )
        relay.start()
        log.info("importer ready", worker=worker)
        try:
            yield
        finally:
            await relay.stop()
            await engine.dispose()

    app = FastStream(broker, lifespan=lifespan)
    return app, broker


async def _execute(
    runner: JobRunner, cmd: ExecuteJob, msg: NatsMessage, heartbeat_every: float
) -> None:
    heartbeat = asyncio.create_task(_keep_alive(msg, heartbeat_every))
    try:
        await runner.run(cmd)
    except RunBusy:
        await msg.nack(delay=BUSY_RETRY_SECONDS)
        return
    except Exception:
        # the database or bus went away: leave the command for redelivery, which resumes
        log.exception("run interrupted; it will be redelivered")
        await msg.nack(delay=BUSY_RETRY_SECONDS)
        return
    finally:
        heartbeat.cancel()
    await msg.ack()


async def _keep_alive(msg: NatsMessage, every: float) -> None:
    """Tell JetStream the work is still going, so it is not handed to another replica."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()
