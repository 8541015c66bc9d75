"""One worker per job at a time, across every replica.

A session-level advisory lock is held on a dedicated connection for the whole run. If the
worker dies, PostgreSQL drops the connection and with it the lock, so the redelivered
command can be taken by another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.db import asyncpg_dsn

__all__ = ["RunBusy", "RunInterrupted", "Shutdown", "is_transient", "job_lease"]


class RunBusy(Exception):
    """Another replica is running this job right now; try again later."""


class RunInterrupted(Exception):
    """The worker is shutting down; the run stopped at a chunk boundary and will resume."""


class Shutdown:
    """Tells running jobs to stop at their next chunk, and waits until they have."""

    def __init__(self) -> None:
        self.stopping = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def check(self) -> None:
        """Raises ``RunInterrupted`` once shutdown has begun."""
        if self.stopping:
            raise RunInterrupted

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def stop(self, grace_seconds: float) -> None:
        self.stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)


@contextlib.asynccontextmanager
async def job_lease(engine: AsyncEngine, job_id: str) -> AsyncIterator[None]:
    """Raises ``RunBusy`` when another worker holds the job."""
    dsn = asyncpg_dsn(engine.url.render_as_string(hide_password=False))
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", job_id):
            raise RunBusy(job_id)
        yield
    finally:
        await conn.close()


def is_transient(error: BaseException) -> bool:
    """A lost connection or a timeout: worth running again. Anything else (a bug, a
    statement the database refuses) would fail the same way every time, so the job fails
    with a message instead of going round the redelivery loop for ever."""
    import nats.errors
    import sqlalchemy.exc

    transient = (
        OSError,
        TimeoutError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        nats.errors.ConnectionClosedError,
        nats.errors.TimeoutError,
        nats.errors.NoServersError,
    )
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, transient):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
