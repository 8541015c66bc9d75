"""A job's state, rebuilt from its events by a pure ``evolve``.

The jobs projection is this state written as a row, in the same transaction as the events.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec.structs import replace

from contracts.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobCheckpointed,
    JobCompleted,
    JobCreated,
    JobDeleted,
    JobEvent,
    JobFailed,
    JobFired,
    JobOptions,
    JobQueued,
    JobStarted,
    JobStatistics,
    JobUpdated,
    RejectedRow,
    RowChange,
    Schedule,
)

__all__ = ["MAX_ERRORS_SHOWN", "JobState", "evolve", "stream_of"]

MAX_ERRORS_SHOWN = 100


def stream_of(job_id: str) -> str:
    return f"job-{job_id}"


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    job_type: str
    model_name: str
    format: str
    file_path: str
    options: JobOptions
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    progress: float = 0.0
    statistics: JobStatistics = msgspec.field(default_factory=JobStatistics)
    errors: tuple[RejectedRow, ...] = ()
    error_message: str = ""
    run_id: str | None = None
    last_row: int = 0
    cancel_requested: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result_path: str = ""
    changes: tuple[RowChange, ...] = ()
    schedule: Schedule | None = None
    schedule_since: datetime | None = None
    last_fired_at: datetime | None = None
    deleted: bool = False


def _at(event: JobEvent) -> datetime:
    return datetime.fromisoformat(event.occurred_at)


def evolve(state: JobState | None, event: JobEvent) -> JobState | None:
    """The state after ``event``; ``None`` before creation."""
    if isinstance(event, JobCreated):
        at = _at(event)
        return JobState(
            id=event.job_id,
            title=event.title,
            job_type=event.job_type,
            model_name=event.model_name,
            format=event.format,
            file_path=event.file_path,
            options=event.options,
            status="pending",
            created_by=event.created_by,
            created_at=at,
            updated_at=at,
            version=event.version,
            schedule=event.schedule,
            schedule_since=at if event.schedule else None,
        )
    if state is None:
        return None
    state = replace(state, version=event.version, updated_at=_at(event))
    return _apply(state, event)


def _apply(state: JobState, event: JobEvent) -> JobState:
    if isinstance(event, JobUpdated):
        edits = {
            k: v
            for k in ("title", "model_name", "format", "file_path", "options")
            if (v := getattr(event, k)) is not None
        }
        if event.clear_schedule:
            edits.update(schedule=None, schedule_since=None)
        elif event.schedule is not None:
            # a new schedule counts from now: slots before it are not caught up
            edits.update(schedule=event.schedule, schedule_since=_at(event))
        # a changed definition (another file, other options) starts from the top next time
        return replace(state, **edits, last_row=0)
    if isinstance(event, JobDeleted):
        return replace(state, deleted=True)
    if isinstance(event, JobQueued):
        queued = replace(
            state,
            status="queued",
            run_id=event.run_id,
            cancel_requested=False,
            error_message="",
            completed_at=None,
            result_path="",
        )
        if event.resume:
            return queued
        return replace(
            queued,
            progress=0.0,
            statistics=JobStatistics(),
            errors=(),
            changes=(),
            last_row=0,
            started_at=None,
        )
    if isinstance(event, JobFired):
        return replace(state, last_fired_at=datetime.fromisoformat(event.fire_time))
    if isinstance(event, JobStarted):
        started = state.started_at or _at(event)
        return replace(state, status="running", started_at=started)
    if isinstance(event, JobCheckpointed):
        room = MAX_ERRORS_SHOWN - len(state.errors)
        errors = state.errors + tuple(event.rejected[: max(room, 0)])
        changes = state.changes + tuple(
            event.changes[: max(MAX_ERRORS_SHOWN - len(state.changes), 0)]
        )
        return replace(
            state,
            last_row=event.last_row,
            statistics=event.statistics,
            errors=errors,
            changes=changes,
            progress=event.percent,
        )
    if isinstance(event, JobCancelRequested):
        return replace(state, cancel_requested=True)
    return _finish(state, event)


def _finish(state: JobState, event: JobEvent) -> JobState:
    at = _at(event)
    if isinstance(event, JobCompleted):
        return replace(
            state,
            status="completed",
            statistics=event.statistics,
            progress=100.0,
            completed_at=at,
            result_path=event.result_path,
        )
    if isinstance(event, JobFailed):
        return replace(
            state,
            status="failed",
            statistics=event.statistics,
            error_message=event.error.message,
            completed_at=at,
        )
    if isinstance(event, JobCancelled):
        return replace(state, status="cancelled", statistics=event.statistics, completed_at=at)
    return state
