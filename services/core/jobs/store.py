"""Job persistence: events appended and the projection row written in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.jobs import (
    JobEvent,
    JobOptions,
    JobStatistics,
    RejectedRow,
    RowChange,
    Schedule,
)
from contracts.subjects import Subjects
from services.core.eventlog import append, read_stream, storable_event
from services.core.jobs.state import JobState, evolve, stream_of
from services.core.tables import job_rejections, jobs

__all__ = ["load", "rebuild", "record", "row_to_state", "state_to_row"]


def state_to_row(state: JobState) -> dict[str, Any]:
    row = {f: getattr(state, f) for f in JobState.__struct_fields__ if f != "deleted"}
    row["options"] = msgspec.to_builtins(state.options)
    row["statistics"] = msgspec.to_builtins(state.statistics)
    row["errors"] = msgspec.to_builtins(list(state.errors))
    row["changes"] = msgspec.to_builtins(list(state.changes))
    row["schedule"] = msgspec.to_builtins(state.schedule) if state.schedule else None
    return row


def row_to_state(row: Any) -> JobState:
    data = dict(row._mapping)
    data["options"] = msgspec.convert(data["options"], JobOptions)
    data["statistics"] = msgspec.convert(data["statistics"], JobStatistics)
    data["errors"] = tuple(msgspec.convert(data["errors"], list[RejectedRow]))
    data["changes"] = tuple(msgspec.convert(data.get("changes") or [], list[RowChange]))
    data["schedule"] = msgspec.convert(data["schedule"], Schedule) if data.get("schedule") else None
    return JobState(**data)


async def load(conn: AsyncConnection, job_id: str, *, lock: bool = False) -> JobState | None:
    query = select(jobs).where(jobs.c.id == job_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return row_to_state(row) if row else None


async def record(
    conn: AsyncConnection,
    subjects: Subjects,
    state: JobState | None,
    new_events: Sequence[JobEvent],
    *,
    causation_id: str | None = None,
) -> JobState | None:
    """Append ``new_events`` and write the projection; returns the new state."""
    if not new_events:
        return state
    new_events = [storable_event(e) for e in new_events]  # the projection is text too
    await append(conn, subjects, new_events, causation_id=causation_id)
    for event in new_events:
        state = evolve(state, event)
    if state is not None:
        await _project(conn, state)
    return state


async def _project(conn: AsyncConnection, state: JobState) -> None:
    if state.deleted:
        await conn.execute(delete(job_rejections).where(job_rejections.c.job_id == state.id))
        await conn.execute(delete(jobs).where(jobs.c.id == state.id))
        return
    row = state_to_row(state)
    stmt = insert(jobs).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=[jobs.c.id], set_={k: stmt.excluded[k] for k in row if k != "id"}
    )
    await conn.execute(stmt)


async def rebuild(conn: AsyncConnection, job_id: str) -> JobState | None:
    """Replay the job's events and rewrite its projection row."""
    state: JobState | None = None
    for event in await read_stream(conn, stream_of(job_id), JobEvent):
        state = evolve(state, event)
    if state is not None:
        await _project(conn, state)
    return state
