"""The FastStream app every job-owning service runs (importer, exporter).

It answers the definition requests (create, update, delete, cancel, request_run) and pulls
execute commands from the service's durable consumer, shared by all its replicas. Acks are
explicit: done → ack; busy elsewhere or interrupted → nack with a delay (redelivery
resumes); long runs send in-progress acks so JetStream does not hand them to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from faststream import FastStream
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Reply
from contracts.jobs import CancelJob, CreateJob, DeleteJob, ExecuteJob, RequestRun, UpdateJob
from contracts.subjects import Subjects
from services.core.bus import ensure_object_store, ensure_streams, make_broker
from services.core.catalogue.operator import load_operator_models
from services.core.db import make_engine
from services.core.exit_deadline import exit_after
from services.core.jobs.commands import JobCommands
from services.core.jobs.lease import RunBusy, RunInterrupted, Shutdown
from services.core.jobs.schedules import JobScheduler
from services.core.logs import bind, get_logger
from services.core.migrate import migrate
from services.core.outbox import OutboxRelay
from services.core.scheduling import SystemClock
from services.core.settings import Settings

__all__ = ["Runner", "RunnerParts", "build_job_worker_app"]

BUSY_RETRY_SECONDS = 5.0
MAX_ATTEMPTS = 5
PULL_TIMEOUT_SECONDS = 5.0
# once its runs are handed back, a stopping worker closes its subscriptions (a pull waits up
# to PULL_TIMEOUT_SECONDS), the relay and the pool in a few seconds; past this, it is stuck
SHUTDOWN_DEADLINE_SECONDS = 20.0

log = get_logger(__name__)


class Runner(Protocol):
    async def run(self, cmd: ExecuteJob) -> None:
        """Run one job to its end; raises ``RunBusy`` if another worker holds it."""

    async def give_up(self, cmd: ExecuteJob, message: str) -> None:
        """Record the run as failed after too many interrupted attempts."""


@dataclass(frozen=True)
class RunnerParts:
    """What a service's runner is built from, once connections exist."""

    engine: AsyncEngine
    js: JetStreamContext
    subjects: Subjects
    relay: OutboxRelay
    settings: Settings
    worker: str
    shutdown: Shutdown


def build_job_worker_app(
    service: str,
    job_type: str,
    settings: Settings,
    *,
    nats_url: str,
    database_url: str,
    make_runner: Callable[[RunnerParts], Runner],
) -> tuple[FastStream, NatsBroker]:
    subjects = Subjects(settings.bus_prefix)
    worker = settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
    broker = make_broker(nats_url, name=f"{service}-{worker}")
    state: dict[str, JobCommands | Runner] = {}
    shutdown = Shutdown()

    def commands() -> JobCommands:
        found = state["commands"]
        assert isinstance(found, JobCommands)
        return found

    _register_requests(broker, subjects, service, commands)

    @broker.subscriber(
        subjects.command(service, "execute"),
        stream=JStream(subjects.commands_stream, declare=False),
        durable=subjects.durable(service),
        pull_sub=PullSub(batch_size=1, timeout=PULL_TIMEOUT_SECONDS),
        config=ConsumerConfig(ack_wait=float(settings.ack_wait_seconds)),
        ack_policy=AckPolicy.MANUAL,
    )
    async def execute_job(cmd: ExecuteJob, msg: NatsMessage) -> None:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id, run_id=cmd.run_id):
            runner = state["runner"]
            assert not isinstance(runner, JobCommands)
            with shutdown.running():
                await _execute(runner, cmd, msg, settings.ack_wait_seconds / 3)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        settings.imports_path.mkdir(parents=True, exist_ok=True)  # the drop folder exists
        await broker.connect()
        js = broker.config.connection_state.stream
        await ensure_streams(js, subjects)
        await ensure_object_store(js, subjects)
        engine = make_engine(database_url)
        await migrate(engine)
        enabled = await load_operator_models(engine, settings)
        if enabled:
            log.info("operator models enabled", models=enabled)
        relay = OutboxRelay(engine, js)
        state["commands"] = JobCommands(engine, subjects, service, relay.poke)
        state["runner"] = make_runner(
            RunnerParts(engine, js, subjects, relay, settings, worker, shutdown)
        )
        relay.start()
        scheduler = JobScheduler(engine, subjects, service, job_type, SystemClock(), relay.poke)
        ticking = asyncio.create_task(scheduler.run(float(settings.scheduler_interval_seconds)))
        try:
            yield
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking  # a tick cut short gives its connection back before the dispose
            await relay.stop()
            await engine.dispose()

    async def announce() -> None:
        # only now are the subscribers listening: tests and operators wait for this line
        log.info(f"{service} ready", worker=worker)

    async def drain() -> None:
        # runs before the broker closes: running jobs stop at their next chunk and their
        # commands go back to the stream, so another replica resumes them at once
        log.info(f"{service} stopping")
        await shutdown.stop(grace_seconds=float(settings.ack_wait_seconds))
        # the runs are handed back; closing the bus and the database takes a moment, and a
        # process that still lives long after has a task stuck (seen once under load, with
        # the app's "shut down gracefully" already logged): say where, and end it
        exit_after(SHUTDOWN_DEADLINE_SECONDS, what=f"the {service}'s shutdown")

    app = FastStream(broker, lifespan=lifespan, after_startup=[announce], on_shutdown=[drain])
    return app, broker


def _register_requests(
    broker: NatsBroker, subjects: Subjects, service: str, commands: Callable[[], JobCommands]
) -> None:
    @broker.subscriber(subjects.request(service, "create"), queue=service)
    async def create_job(cmd: CreateJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("create job", actor=cmd.actor, model=cmd.model_name)
            return await commands().create(cmd)

    @broker.subscriber(subjects.request(service, "update"), queue=service)
    async def update_job(cmd: UpdateJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            return await commands().update(cmd)

    @broker.subscriber(subjects.request(service, "delete"), queue=service)
    async def delete_job(cmd: DeleteJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            return await commands().delete(cmd)

    @broker.subscriber(subjects.request(service, "cancel"), queue=service)
    async def cancel_job(cmd: CancelJob) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("cancel job", actor=cmd.actor)
            return await commands().cancel(cmd)

    @broker.subscriber(subjects.request(service, "request_run"), queue=service)
    async def request_run(cmd: RequestRun) -> Reply:
        with bind(job_id=cmd.job_id, correlation_id=cmd.correlation_id):
            log.info("run requested", actor=cmd.actor)
            return await commands().execute(cmd.job_id, cmd.actor, cmd.correlation_id)


async def _execute(
    runner: Runner, cmd: ExecuteJob, msg: NatsMessage, heartbeat_every: float
) -> None:
    heartbeat = asyncio.create_task(_keep_alive(msg, heartbeat_every))
    try:
        await runner.run(cmd)
    except RunBusy:
        await msg.nack(delay=BUSY_RETRY_SECONDS)
        return
    except RunInterrupted:
        log.info("run interrupted by shutdown; handing it back", job_id=cmd.job_id)
        # delayed past this process's own open pull request, which would otherwise take
        # the command straight back and sit on it until the ack deadline
        await msg.nack(delay=PULL_TIMEOUT_SECONDS + 1)
        # the connection closes right after this: make sure the nak has left
        with contextlib.suppress(Exception):
            await msg.raw_message._client.flush(timeout=5)
        return
    except Exception as e:
        attempts = _attempts(msg)
        if attempts >= MAX_ATTEMPTS:
            log.exception("run keeps failing; giving up", attempts=attempts)
            with contextlib.suppress(Exception):
                await runner.give_up(
                    cmd, f"gave up after {attempts} attempts: {type(e).__name__}: {e}"
                )
            await msg.reject()
            return
        # the database or bus went away: leave the command for redelivery, which resumes
        log.exception("run interrupted; it will be redelivered", attempts=attempts)
        await msg.nack(delay=BUSY_RETRY_SECONDS * attempts)
        return
    finally:
        heartbeat.cancel()
    await msg.ack()


def _attempts(msg: NatsMessage) -> int:
    with contextlib.suppress(Exception):
        return int(msg.raw_message.metadata.num_delivered)
    return 1


async def _keep_alive(msg: NatsMessage, every: float) -> None:
    """Tell JetStream the work is still going, so it is not handed to another replica."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()
