"""``GET .../jobs/{id}/events``: a job's live progress as server-sent events.

Sends ``status`` (the job) first, then each ``progress`` message, and a final ``status``
when the job ends, then closes. A late subscriber first gets the latest progress kept by
the progress stream (one message per subject).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, get
from litestar.di import Provide
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from contracts.jobs import TERMINAL_STATUSES
from contracts.subjects import Subjects
from services.core.auth import Principal
from services.gateway.auth import require_principal, still_allowed
from services.gateway.jobs import load_visible_job

__all__ = ["job_events"]

POLL_SECONDS = 2.0
# a worker records a job's end, then sends its last progress message: once the record says
# the job ended, the stream waits this long at most for that message before it closes
LAST_PROGRESS_WAIT_SECONDS = 2.0
# an open stream asks this often whether its token still holds (revoked, user deactivated)
RECHECK_SECONDS = 5.0
_REVOKED = '{"detail": "invalid or revoked token"}'


def _status(job: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(event="status", data=msgspec.json.encode(job).decode())


@get(
    "/api/data-management/jobs/{job_id:str}/events",
    dependencies={"principal": Provide(require_principal)},
    tags=["jobs"],
)
async def job_events(
    request: Request[Any, Any, Any], principal: Principal, job_id: str
) -> ServerSentEvent:
    """Progress of the job as ``text/event-stream`` until it completes, fails or is cancelled."""
    engine = request.app.state.engine
    job = await load_visible_job(engine, job_id, principal)
    return ServerSentEvent(_stream(request, principal, job))


async def _stream(
    request: Request[Any, Any, Any], principal: Principal, job: dict[str, Any]
) -> AsyncIterator[ServerSentEventMessage]:
    nc = request.app.state.nc
    subjects: Subjects = request.app.state.subjects
    engine = request.app.state.engine
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await queue.put(msg)

    job_id = job["id"]
    progress_sub = await nc.subscribe(subjects.progress("job", job_id), cb=on_msg)
    events_sub = await nc.subscribe(subjects.events_of("job", job_id), cb=on_msg)
    try:
        yield _status(job)
        if job["status"] in TERMINAL_STATUSES:
            return
        checked = asyncio.get_running_loop().time()
        latest = await _latest_progress(request, subjects, job_id)
        if latest is not None:
            yield ServerSentEventMessage(event="progress", data=latest.decode())
        ended = latest is not None and _ends(latest)
        while True:
            try:
                msg = await asyncio.wait_for(queue.get(), POLL_SECONDS)
            except TimeoutError:
                msg = None
            if msg is not None and msg.subject.startswith(subjects.progress("job", job_id)):
                ended = _ends(msg.data)
                yield ServerSentEventMessage(event="progress", data=msg.data.decode())
            job = await load_visible_job(engine, job_id, principal)
            if job["status"] in TERMINAL_STATUSES:
                if not ended:
                    # the record came first: the worker's last word is on its way
                    last = await _last_progress(queue, subjects.progress("job", job_id))
                    if last is not None:
                        yield ServerSentEventMessage(event="progress", data=last.decode())
                yield _status(job)
                return
            now = asyncio.get_running_loop().time()
            if now - checked >= RECHECK_SECONDS:
                checked = now
                if not await still_allowed(request):
                    yield ServerSentEventMessage(event="error", data=_REVOKED)
                    return
            if msg is None:
                yield ServerSentEventMessage(comment="keep-alive")
    finally:
        with contextlib.suppress(Exception):
            await progress_sub.unsubscribe()
            await events_sub.unsubscribe()


def _ends(progress: bytes) -> bool:
    """Whether a progress message is a job's last one (it carries a final status)."""
    try:
        status = msgspec.json.decode(progress).get("status")
    except (msgspec.DecodeError, AttributeError):
        return False
    return status in TERMINAL_STATUSES


async def _last_progress(queue: asyncio.Queue[Msg], subject: str) -> bytes | None:
    """The progress messages until the last one (with a final status), or until
    ``LAST_PROGRESS_WAIT_SECONDS`` pass; the last of those seen, if any."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LAST_PROGRESS_WAIT_SECONDS
    seen = None
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        if msg.subject.startswith(subject):
            seen = msg.data
            if _ends(seen):
                break
    return seen


async def _latest_progress(
    request: Request[Any, Any, Any], subjects: Subjects, job_id: str
) -> bytes | None:
    js = request.app.state.js
    try:
        raw = await js.get_last_msg(subjects.progress_stream, subjects.progress("job", job_id))
    except NotFoundError:
        return None
    data: bytes | None = raw.data
    return data
