"""One worker per job at a time, across every replica.

A session-level advisory lock is held on a dedicated connection for the whole run. If the
worker dies, PostgreSQL drops the connection and with it the lock, so the redelivered
command can be taken by another replica.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.db import asyncpg_dsn

__all__ = ["RunBusy", "job_lease"]


class RunBusy(Exception):
    """Another replica is running this job right now; try again later."""


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
