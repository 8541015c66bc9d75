"""Pure decisions: given a job's state and a command, which events follow (or why not).

No I/O here, so every rule is tested without fixtures.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.jobs import (
    CancelJob,
    CreateJob,
    DeleteJob,
    ExecuteJob,
    JobCancelled,
    JobCancelRequested,
    JobCreated,
    JobDeleted,
    JobEvent,
    JobQueued,
    JobUpdated,
    Schedule,
    UpdateJob,
)
from services.core.eventlog import event_fields
from services.core.jobs.state import JobState, stream_of
from services.core.scheduling.spec import ScheduleError, validate_schedule

__all__ = [
    "DecisionError",
    "decide_cancel",
    "decide_create",
    "decide_delete",
    "decide_execute",
    "decide_update",
]

BUSY = frozenset({"queued", "running"})
RESUMABLE = frozenset({"cancelled", "failed"})


class DecisionError(Exception):
    """The command is not allowed in the job's state; ``code`` maps to an HTTP status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _envelope(
    state: JobState | None, job_id: str, cmd_actor: str, correlation_id: str, offset: int = 1
) -> dict[str, object]:
    version = (state.version if state else 0) + offset
    return event_fields(stream_of(job_id), version, cmd_actor, correlation_id)


def _require(state: JobState | None, job_id: str) -> JobState:
    if state is None or state.deleted:
        raise DecisionError("not_found", f"job {job_id} does not exist")
    return state


def _check_schedule(schedule: Schedule | None, now: datetime | None) -> None:
    if schedule is None:
        return
    try:
        validate_schedule(schedule, now)
    except ScheduleError as e:
        raise DecisionError("invalid", f"schedule refused: {e}") from e


def decide_create(
    state: JobState | None, cmd: CreateJob, now: datetime | None = None
) -> list[JobEvent]:
    """``now`` is the clock the schedule is checked against (injectable for tests)."""
    if state is not None:
        raise DecisionError("conflict", f"job {cmd.job_id} already exists")
    _check_schedule(cmd.schedule, now)
    return [
        JobCreated(
            **_envelope(None, cmd.job_id, cmd.actor, cmd.correlation_id),  # type: ignore[arg-type]
            job_id=cmd.job_id,
            title=cmd.title,
            job_type=cmd.job_type,
            model_name=cmd.model_name,
            format=cmd.format,
            file_path=cmd.file_path,
            options=cmd.options,
            created_by=cmd.actor,
            schedule=cmd.schedule,
        )
    ]


def decide_update(
    state: JobState | None, cmd: UpdateJob, now: datetime | None = None
) -> list[JobEvent]:
    job = _require(state, cmd.job_id)
    _check_schedule(cmd.schedule, now)
    if job.status in BUSY:
        raise DecisionError("conflict", f"job {cmd.job_id} is {job.status}; cancel it first")
    return [
        JobUpdated(
            **_envelope(job, cmd.job_id, cmd.actor, cmd.correlation_id),  # type: ignore[arg-type]
            job_id=cmd.job_id,
            title=cmd.title,
            model_name=cmd.model_name,
            format=cmd.format,
            file_path=cmd.file_path,
            options=cmd.options,
            schedule=cmd.schedule,
            clear_schedule=cmd.clear_schedule,
        )
    ]


def decide_delete(state: JobState | None, cmd: DeleteJob) -> list[JobEvent]:
    job = _require(state, cmd.job_id)
    if job.status in BUSY:
        raise DecisionError("conflict", f"job {cmd.job_id} is {job.status}; cancel it first")
    env = _envelope(job, cmd.job_id, cmd.actor, cmd.correlation_id)
    return [JobDeleted(**env, job_id=cmd.job_id)]  # type: ignore[arg-type]


def decide_execute(
    state: JobState | None, job_id: str, actor: str, correlation_id: str
) -> tuple[list[JobEvent], ExecuteJob]:
    """Queue a new run; the returned command goes to the commands stream."""
    job = _require(state, job_id)
    if job.status in BUSY:
        raise DecisionError("conflict", f"job {job_id} is already {job.status}")
    run_id = str(uuid.uuid4())
    env = _envelope(job, job_id, actor, correlation_id)
    # an import stopped part-way carries on after its checkpoint instead of re-reading rows
    # it already loaded (which insert mode would then reject as its own duplicates)
    resume = job.job_type == "import" and job.status in RESUMABLE and job.last_row > 0
    queued = JobQueued(**env, job_id=job_id, run_id=run_id, resume=resume)  # type: ignore[arg-type]
    command = ExecuteJob(correlation_id=correlation_id, actor=actor, job_id=job_id, run_id=run_id)
    return [queued], command


def decide_cancel(state: JobState | None, cmd: CancelJob) -> list[JobEvent]:
    """A queued job is cancelled at once; a running one is asked to stop at its next chunk."""
    job = _require(state, cmd.job_id)
    env = _envelope(job, cmd.job_id, cmd.actor, cmd.correlation_id)
    if job.status == "queued" and job.run_id:
        return [
            JobCancelled(
                **env,  # type: ignore[arg-type]
                job_id=cmd.job_id,
                run_id=job.run_id,
                statistics=job.statistics,
            )
        ]
    if job.status == "running":
        if job.cancel_requested:
            return []
        return [JobCancelRequested(**env, job_id=cmd.job_id)]  # type: ignore[arg-type]
    raise DecisionError(
        "conflict",
        f"job {cmd.job_id} is {job.status}; only queued or running jobs can be cancelled",
    )
