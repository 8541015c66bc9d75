"""Outbox relay: publishes committed events to the events stream, then forgets them.

Runs in every service process. ``FOR UPDATE SKIP LOCKED`` lets several relays share the
work; ``Nats-Msg-Id`` = event id makes a re-publish after a crash a duplicate that JetStream
drops inside its dedupe window.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js import JetStreamContext
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.logs import get_logger
from services.core.tables import outbox

__all__ = ["OutboxRelay"]

log = get_logger(__name__)


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, js: JetStreamContext, *, idle: float = 1.0) -> None:
        self._engine = engine
        self._js = js
        self._idle = idle
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Publish soon: something was just committed."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()

    async def _run(self) -> None:
        while True:
            try:
                while await self.flush():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle)
            self._wake.clear()

    async def flush(self, batch: int = 200) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        outbox.c.position, outbox.c.message_id, outbox.c.subject, outbox.c.payload
                    )
                    .order_by(outbox.c.position)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self._js.publish(
                    row.subject, row.payload, headers={"Nats-Msg-Id": row.message_id}
                )
            if rows:
                await conn.execute(
                    delete(outbox).where(outbox.c.position.in_([r.position for r in rows]))
                )
            return len(rows)
