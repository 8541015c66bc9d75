"""``evolve`` (job state from events) and the pure decisions of ``decide``; no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.base import ErrorInfo
from contracts.jobs import (
    CancelJob,
    CreateJob,
    DeleteJob,
    ExecuteJob,
    JobCancelled,
    JobCancelRequested,
    JobCheckpointed,
    JobCompleted,
    JobCreated,
    JobDeleted,
    JobEvent,
    JobFailed,
    JobOptions,
    JobQueued,
    JobStarted,
    JobStatistics,
    JobUpdated,
    RejectedRow,
    UpdateJob,
)
from services.core.jobs.decide import (
    DecisionError,
    decide_cancel,
    decide_create,
    decide_delete,
    decide_execute,
    decide_update,
)
from services.core.jobs.state import MAX_ERRORS_SHOWN, JobState, evolve, stream_of

JOB = "j-42"
RUN = "run-1"
T0 = datetime(2024, 9, 1, 8, 0, tzinfo=UTC)


class Log:
    """Builds events with consecutive versions, one minute apart."""

    def __init__(self) -> None:
        self.version = 0

    def env(self) -> dict[str, Any]:
        self.version += 1
        return {
            "event_id": f"e{self.version}",
            "stream": stream_of(JOB),
            "version": self.version,
            "occurred_at": self.at(self.version).isoformat(),
            "actor": "registrar",
            "correlation_id": f"c{self.version}",
        }

    @staticmethod
    def at(version: int) -> datetime:
        return T0 + timedelta(minutes=version)


def fold(events: list[JobEvent]) -> JobState:
    state: JobState | None = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


def created(log: Log) -> JobCreated:
    return JobCreated(
        **log.env(),
        job_id=JOB,
        title="Users",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="users.csv",
        options=JobOptions(mode="upsert"),
        created_by="registrar",
    )


def stats(read: int, rejected: int, chunks: int) -> JobStatistics:
    return JobStatistics(
        rows_read=read,
        rows_imported=read - rejected,
        rows_rejected=rejected,
        chunks_committed=chunks,
        rows_inserted=read - rejected,
    )


def rejected_rows(first_row: int, count: int) -> list[RejectedRow]:
    return [
        RejectedRow(
            row=first_row + i, column="email", value=f"bad{i}", message="not a valid email address"
        )
        for i in range(count)
    ]


def running(log: Log) -> list[JobEvent]:
    return [
        created(log),
        JobQueued(**log.env(), job_id=JOB, run_id=RUN),
        JobStarted(**log.env(), job_id=JOB, run_id=RUN, worker="w1"),
    ]


# --- evolve ---------------------------------------------------------------------------------


def test_nothing_before_creation() -> None:
    log = Log()
    assert evolve(None, JobQueued(**log.env(), job_id=JOB, run_id=RUN)) is None


def test_created_job_is_pending() -> None:
    log = Log()
    event = created(log)
    state = fold([event])
    assert state.id == JOB
    assert state.status == "pending"
    assert state.version == event.version
    assert state.created_at == state.updated_at == Log.at(event.version)
    assert state.options == event.options
    assert state.created_by == "registrar"
    assert state.run_id is None
    assert not state.deleted


def test_successful_run() -> None:
    log = Log()
    events = running(log)
    started_version = log.version
    first = stats(read=1000, rejected=3, chunks=1)
    second = stats(read=2000, rejected=5, chunks=2)
    events += [
        JobCheckpointed(
            **log.env(),
            job_id=JOB,
            run_id=RUN,
            last_row=1001,
            statistics=first,
            rejected=rejected_rows(10, 3),
            percent=40.0,
        ),
        JobCheckpointed(
            **log.env(),
            job_id=JOB,
            run_id=RUN,
            last_row=2001,
            statistics=second,
            rejected=rejected_rows(1500, 2),
            percent=80.0,
        ),
    ]
    mid = fold(events)
    assert mid.status == "running"
    assert mid.progress == 80.0
    assert mid.last_row == 2001
    assert mid.statistics == second
    assert mid.errors == tuple(rejected_rows(10, 3) + rejected_rows(1500, 2))
    assert mid.started_at == Log.at(started_version)
    assert mid.completed_at is None

    final = stats(read=2400, rejected=5, chunks=3)
    events.append(JobCompleted(**log.env(), job_id=JOB, run_id=RUN, statistics=final))
    done = fold(events)
    assert done.status == "completed"
    assert done.statistics == final
    assert done.progress == 100.0
    assert done.errors == mid.errors
    assert done.started_at == Log.at(started_version)
    assert done.completed_at == Log.at(log.version)
    assert done.version == log.version
    assert done.updated_at == Log.at(log.version)


def test_errors_are_capped_over_checkpoints() -> None:
    log = Log()
    events = running(log)
    per_chunk = 45
    chunks = 4  # 180 rejected rows in all, more than the cap
    assert per_chunk * chunks > MAX_ERRORS_SHOWN
    all_rejected: list[RejectedRow] = []
    for n in range(chunks):
        batch = rejected_rows(n * 1000, per_chunk)
        all_rejected += batch
        events.append(
            JobCheckpointed(
                **log.env(),
                job_id=JOB,
                run_id=RUN,
                last_row=(n + 1) * 1000,
                statistics=stats(read=(n + 1) * 1000, rejected=(n + 1) * per_chunk, chunks=n + 1),
                rejected=batch,
                percent=25.0 * (n + 1),
            )
        )
    state = fold(events)
    assert len(state.errors) == MAX_ERRORS_SHOWN
    assert state.errors == tuple(all_rejected[:MAX_ERRORS_SHOWN])
    # the counters still count every rejected row
    assert state.statistics.rows_rejected == per_chunk * chunks


def test_resumed_start_keeps_first_start_time() -> None:
    log = Log()
    events = running(log)
    first_start = log.version
    events.append(
        JobStarted(**log.env(), job_id=JOB, run_id=RUN, worker="w2", resumed_from_row=1000)
    )
    state = fold(events)
    assert state.status == "running"
    assert state.started_at == Log.at(first_start)


def test_failed_keeps_error_message() -> None:
    log = Log()
    events = running(log)
    partial = stats(read=1000, rejected=0, chunks=1)
    events.append(
        JobFailed(
            **log.env(),
            job_id=JOB,
            run_id=RUN,
            statistics=partial,
            error=ErrorInfo(code="missing_column", message="missing required column(s): email"),
        )
    )
    state = fold(events)
    assert state.status == "failed"
    assert state.error_message == "missing required column(s): email"
    assert state.statistics == partial
    assert state.completed_at == Log.at(log.version)


def test_cancel_requested_then_cancelled() -> None:
    log = Log()
    events = running(log)
    events.append(JobCancelRequested(**log.env(), job_id=JOB))
    asked = fold(events)
    assert asked.cancel_requested
    assert asked.status == "running"
    events.append(
        JobCancelled(
            **log.env(), job_id=JOB, run_id=RUN, statistics=stats(read=10, rejected=0, chunks=1)
        )
    )
    cancelled = fold(events)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at == Log.at(log.version)


def test_new_run_resets_counters() -> None:
    log = Log()
    events = running(log)
    events += [
        JobCheckpointed(
            **log.env(),
            job_id=JOB,
            run_id=RUN,
            last_row=500,
            statistics=stats(read=500, rejected=2, chunks=1),
            rejected=rejected_rows(3, 2),
            percent=50.0,
        ),
        JobCancelRequested(**log.env(), job_id=JOB),
        JobFailed(**log.env(), job_id=JOB, run_id=RUN, error=ErrorInfo(code="x", message="boom")),
        JobQueued(**log.env(), job_id=JOB, run_id="run-2"),
    ]
    state = fold(events)
    assert state.status == "queued"
    assert state.run_id == "run-2"
    assert state.statistics == JobStatistics()
    assert state.errors == ()
    assert state.error_message == ""
    assert state.progress == 0.0
    assert state.last_row == 0
    assert not state.cancel_requested
    assert state.started_at is None
    assert state.completed_at is None


def test_update_changes_only_given_fields() -> None:
    log = Log()
    events: list[JobEvent] = [created(log), JobUpdated(**log.env(), job_id=JOB, title="Renamed")]
    state = fold(events)
    assert state.title == "Renamed"
    assert state.file_path == "users.csv"
    assert state.options == JobOptions(mode="upsert")


def test_deleted_marks_deleted() -> None:
    log = Log()
    state = fold([created(log), JobDeleted(**log.env(), job_id=JOB)])
    assert state.deleted
    assert state.version == log.version


# --- decide ---------------------------------------------------------------------------------

CMD: dict[str, Any] = {"correlation_id": "corr-9", "actor": "admin"}


def state_with(status: str, **changes: Any) -> JobState:
    log = Log()
    events: list[JobEvent] = [created(log)]
    if status != "pending":
        events.append(JobQueued(**log.env(), job_id=JOB, run_id=RUN))
    if status in ("running", "completed", "failed", "cancelled"):
        events.append(JobStarted(**log.env(), job_id=JOB, run_id=RUN, worker="w1"))
    finish: dict[str, JobEvent] = {
        "completed": JobCompleted(**log.env(), job_id=JOB, run_id=RUN, statistics=JobStatistics()),
        "failed": JobFailed(
            **log.env(), job_id=JOB, run_id=RUN, error=ErrorInfo(code="x", message="y")
        ),
        "cancelled": JobCancelled(**log.env(), job_id=JOB, run_id=RUN),
    }
    if status in finish:
        events.append(finish[status])
    state = fold(events)
    assert state.status == status
    return JobState(**{**{f: getattr(state, f) for f in state.__struct_fields__}, **changes})


def create_cmd() -> CreateJob:
    return CreateJob(
        **CMD,
        job_id=JOB,
        title="Users",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="users.csv",
    )


def test_create_new_job() -> None:
    [event] = decide_create(None, create_cmd())
    assert isinstance(event, JobCreated)
    assert event.version == 1
    assert event.stream == stream_of(JOB)
    assert event.created_by == CMD["actor"]
    assert event.correlation_id == CMD["correlation_id"]


@pytest.mark.parametrize("status", ["pending", "completed"])
def test_create_on_existing_is_conflict(status: str) -> None:
    with pytest.raises(DecisionError) as caught:
        decide_create(state_with(status), create_cmd())
    assert caught.value.code == "conflict"


BUSY = ["queued", "running"]


@pytest.mark.parametrize("status", BUSY)
def test_update_delete_execute_on_busy_is_conflict(status: str) -> None:
    state = state_with(status)
    for attempt in (
        lambda: decide_update(state, UpdateJob(**CMD, job_id=JOB, title="x")),
        lambda: decide_delete(state, DeleteJob(**CMD, job_id=JOB)),
        lambda: decide_execute(state, JOB, "admin", "corr-9"),
    ):
        with pytest.raises(DecisionError) as caught:
            attempt()
        assert caught.value.code == "conflict"
        assert status in caught.value.message


@pytest.mark.parametrize(
    "state", [None, state_with("pending", deleted=True)], ids=["missing", "deleted"]
)
def test_commands_on_missing_or_deleted_are_not_found(state: JobState | None) -> None:
    for attempt in (
        lambda: decide_update(state, UpdateJob(**CMD, job_id=JOB, title="x")),
        lambda: decide_delete(state, DeleteJob(**CMD, job_id=JOB)),
        lambda: decide_execute(state, JOB, "admin", "corr-9"),
        lambda: decide_cancel(state, CancelJob(**CMD, job_id=JOB)),
    ):
        with pytest.raises(DecisionError) as caught:
            attempt()
        assert caught.value.code == "not_found"


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled"])
def test_update_and_delete_when_idle(status: str) -> None:
    state = state_with(status)
    [updated] = decide_update(state, UpdateJob(**CMD, job_id=JOB, title="x"))
    assert isinstance(updated, JobUpdated)
    assert updated.version == state.version + 1
    [deleted] = decide_delete(state, DeleteJob(**CMD, job_id=JOB))
    assert isinstance(deleted, JobDeleted)
    assert deleted.version == state.version + 1


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled"])
def test_execute_queues_a_run(status: str) -> None:
    state = state_with(status)
    events, command = decide_execute(state, JOB, "admin", "corr-9")
    [queued] = events
    assert isinstance(queued, JobQueued)
    assert isinstance(command, ExecuteJob)
    assert queued.run_id == command.run_id
    assert queued.run_id != state.run_id
    assert queued.version == state.version + 1
    assert queued.stream == stream_of(JOB)
    assert command.job_id == queued.job_id == JOB
    assert command.correlation_id == queued.correlation_id == "corr-9"
    assert command.actor == "admin"
    after = evolve(state, queued)
    assert after is not None
    assert after.status == "queued"


def test_cancel_queued_is_immediate() -> None:
    state = state_with("queued")
    [event] = decide_cancel(state, CancelJob(**CMD, job_id=JOB))
    assert isinstance(event, JobCancelled)
    assert event.run_id == state.run_id
    assert event.version == state.version + 1


def test_cancel_running_asks_once() -> None:
    state = state_with("running")
    [event] = decide_cancel(state, CancelJob(**CMD, job_id=JOB))
    assert isinstance(event, JobCancelRequested)
    assert event.version == state.version + 1
    asked = evolve(state, event)
    assert asked is not None
    assert asked.cancel_requested
    assert decide_cancel(asked, CancelJob(**CMD, job_id=JOB)) == []


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled"])
def test_cancel_when_not_busy_is_conflict(status: str) -> None:
    with pytest.raises(DecisionError) as caught:
        decide_cancel(state_with(status), CancelJob(**CMD, job_id=JOB))
    assert caught.value.code == "conflict"
