"""Definition commands of jobs (create, update, delete, execute, cancel) as transactions.

Shared by every service that owns jobs (importer now, exporter later): each loads the job,
asks the pure decision, records the events and answers a ``Reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import ErrorInfo, Reply
from contracts.jobs import CancelJob, CreateJob, DeleteJob, JobEvent, UpdateJob
from contracts.subjects import Subjects
from services.core.eventlog import ConcurrencyError, enqueue
from services.core.jobs.decide import (
    DecisionError,
    decide_cancel,
    decide_create,
    decide_delete,
    decide_execute,
    decide_update,
)
from services.core.jobs.state import JobState
from services.core.jobs.store import load, record, state_to_row
from services.core.logs import get_logger

__all__ = ["JobCommands", "job_view"]

log = get_logger(__name__)


def job_view(state: JobState) -> dict[str, Any]:
    row = state_to_row(state)
    for key in ("created_at", "updated_at", "started_at", "completed_at"):
        row[key] = row[key].isoformat() if row[key] else None
    return row


class JobCommands:
    def __init__(
        self, engine: AsyncEngine, subjects: Subjects, service: str, on_commit: Callable[[], None]
    ) -> None:
        self.engine = engine
        self.subjects = subjects
        self.service = service
        self.on_commit = on_commit

    async def _apply(
        self, job_id: str, decide: Callable[[JobState | None], list[JobEvent]], *, lock: bool = True
    ) -> Reply:
        try:
            async with self.engine.begin() as conn:
                state = await load(conn, job_id, lock=lock)
                state = await record(conn, self.subjects, state, decide(state))
        except DecisionError as e:
            return Reply(ok=False, error=ErrorInfo(code=e.code, message=e.message))
        except ConcurrencyError as e:
            return Reply(ok=False, error=ErrorInfo(code="conflict", message=str(e), retryable=True))
        except Exception as e:  # answer, never leave the caller waiting for a timeout
            log.exception("job command failed", job_id=job_id)
            return Reply(ok=False, error=ErrorInfo(code="internal_error", message=str(e)))
        self.on_commit()
        return Reply(ok=True, data=job_view(state) if state and not state.deleted else None)

    async def create(self, cmd: CreateJob) -> Reply:
        return await self._apply(cmd.job_id, lambda s: decide_create(s, cmd), lock=False)

    async def update(self, cmd: UpdateJob) -> Reply:
        return await self._apply(cmd.job_id, lambda s: decide_update(s, cmd))

    async def delete(self, cmd: DeleteJob) -> Reply:
        return await self._apply(cmd.job_id, lambda s: decide_delete(s, cmd))

    async def cancel(self, cmd: CancelJob) -> Reply:
        return await self._apply(cmd.job_id, lambda s: decide_cancel(s, cmd))

    async def execute(self, job_id: str, actor: str, correlation_id: str) -> Reply:
        """Queue a run: ``JobQueued`` and the execute command commit together."""
        try:
            async with self.engine.begin() as conn:
                state = await load(conn, job_id, lock=True)
                events, command = decide_execute(state, job_id, actor, correlation_id)
                state = await record(conn, self.subjects, state, events)
                await enqueue(
                    conn,
                    self.subjects.command(self.service, "execute"),
                    command,
                    message_id=f"execute-{command.run_id}",
                )
        except DecisionError as e:
            return Reply(ok=False, error=ErrorInfo(code=e.code, message=e.message))
        except Exception as e:  # answer, never leave the caller waiting for a timeout
            log.exception("job command failed", job_id=job_id)
            return Reply(ok=False, error=ErrorInfo(code="internal_error", message=str(e)))
        self.on_commit()
        assert state is not None
        return Reply(ok=True, data=job_view(state))


def decode_reply(payload: bytes) -> Reply:
    return msgspec.json.decode(payload, type=Reply)
