"""Import/export job messages.

Who sends what:

- the gateway or any university system sends ``CreateJob``/``UpdateJob``/``DeleteJob``/
  ``CancelJob`` by request/reply to ``<p>.req.<service>.<verb>`` (answered with a ``Reply``),
  and ``ExecuteJob`` to the commands stream (``<p>.cmd.<service>.execute``);
- the owning service (importer for ``job_type == "import"``) records the ``Job*`` events,
  which the outbox publishes on ``<p>.evt.job.<id>.<event>``;
- the worker publishes ``JobProgress`` on ``<p>.progress.job.<id>`` at least once a second.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from contracts.base import Command, ErrorInfo, Event, Progress

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_STATUSES",
    "CancelJob",
    "ChildImport",
    "CreateJob",
    "DeleteJob",
    "ExecuteJob",
    "ExportFilter",
    "JobCancelRequested",
    "JobCancelled",
    "JobCheckpointed",
    "JobCommand",
    "JobCompleted",
    "JobCreated",
    "JobDeleted",
    "JobEvent",
    "JobFailed",
    "JobFired",
    "JobOptions",
    "JobProgress",
    "JobQueued",
    "JobStarted",
    "JobStatistics",
    "JobUpdated",
    "RejectedRow",
    "RequestRun",
    "RowChange",
    "Schedule",
    "UpdateJob",
]

JobType = Literal["import", "export"]
JobFormat = Literal["csv", "json", "jsonl", "xlsx"]
JobStatus = Literal["pending", "queued", "running", "completed", "failed", "cancelled"]
ImportMode = Literal["insert", "upsert", "skip"]

JOB_STATUSES: tuple[str, ...] = ("pending", "queued", "running", "completed", "failed", "cancelled")
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


FilterOp = Literal["eq", "ne", "lt", "lte", "gt", "gte", "contains", "startswith", "in", "isnull"]


class ExportFilter(msgspec.Struct, frozen=True, kw_only=True):
    """One condition of an export: ``field op value`` (``in`` takes a list)."""

    field: str
    op: FilterOp = "eq"
    value: str | int | float | bool | list[str] | None = None


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """When a job runs by itself: ``cron`` read in ``timezone``, or once ``at`` an ISO time
    with offset. A scheduled import reads its file afresh each run; an export writes a new
    dated file each run."""

    cron: str | None = None
    timezone: str = "UTC"
    at: str | None = None


class ChildImport(msgspec.Struct, frozen=True, kw_only=True):
    """Import: the items of an array inside each JSON record become rows of ``model`` (a
    student's ``enrollments``), loaded after their parent in the same transaction.

    ``parent_key`` maps a parent field to the child field it fills (``{"student_no":
    "student_no"}``); ``field_mapping`` maps an item's names (dotted paths reach nested
    objects) to the child model's fields, as ``JobOptions.field_mapping`` does for the parent.
    """

    model: str
    parent_key: dict[str, str]
    field_mapping: dict[str, str] = msgspec.field(default_factory=dict)


class JobOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a job reads and loads (import) or selects and writes (export) its data.

    Every field has a safe default; fields that do not apply to a job's type are ignored.
    """

    mode: ImportMode = "insert"
    encoding: str | None = None
    delimiter: str | None = None
    field_mapping: dict[str, str] = msgspec.field(default_factory=dict)
    calendar: Literal["gregorian", "jalali", "auto"] = "auto"
    time_zone: str = "Asia/Tehran"
    fold_arabic_letters: bool = True
    sheet: str | None = None
    # XLSX: the worksheet row holding the header (a title above it is common); data follow it
    header_row: int = 1
    dry_run: bool = False
    all_or_nothing: bool = False
    max_error_percent: float | None = None
    fields: list[str] = msgspec.field(default_factory=list)
    filters: list[ExportFilter] = msgspec.field(default_factory=list)
    order_by: list[str] = msgspec.field(default_factory=list)
    # export to CSV: text starting like a formula (= + - @ tab CR) gets a leading apostrophe
    # so a spreadsheet shows it instead of running it; off for files that programs read
    # (and that are imported again), where the apostrophe would become part of the value
    escape_formulas: bool = True
    # import of JSON and JSON Lines: array name (a dotted path) in each record → its rows
    children: dict[str, ChildImport] = msgspec.field(default_factory=dict)


class JobStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one run; ``rows_read`` counts data rows, the header excluded."""

    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    chunks_committed: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_skipped: int = 0


class RejectedRow(msgspec.Struct, frozen=True, kw_only=True):
    """One rejected input row: where it is, which column, the value and why."""

    row: int
    column: str | None
    value: str | None
    message: str


class RowChange(msgspec.Struct, frozen=True, kw_only=True):
    """Dry run: a row that would change a stored record, and which fields would change."""

    row: int
    key: str
    fields: list[str]


# --- commands -------------------------------------------------------------------------


class CreateJob(Command, frozen=True, kw_only=True, tag="job.create"):
    """Define a new job; gateway → owning service (request/reply)."""

    job_id: str
    title: str
    job_type: JobType
    model_name: str
    format: JobFormat
    file_path: str = ""
    options: JobOptions = msgspec.field(default_factory=JobOptions)
    schedule: Schedule | None = None


class UpdateJob(Command, frozen=True, kw_only=True, tag="job.update"):
    """Change a job's definition while it is not running; gateway → owning service."""

    job_id: str
    title: str | None = None
    model_name: str | None = None
    format: JobFormat | None = None
    file_path: str | None = None
    options: JobOptions | None = None
    schedule: Schedule | None = None
    clear_schedule: bool = False


class DeleteJob(Command, frozen=True, kw_only=True, tag="job.delete"):
    """Delete a job that is not running; gateway → owning service."""

    job_id: str


class ExecuteJob(Command, frozen=True, kw_only=True, tag="job.execute"):
    """Run a job; anyone → commands stream → one worker of the owning service.

    ``run_id`` names this run: a redelivered command for a finished run is a no-op.
    """

    job_id: str
    run_id: str


class RequestRun(Command, frozen=True, kw_only=True, tag="job.request_run"):
    """Ask the owning service to queue a run; gateway → service (request/reply).

    The service records ``JobQueued`` and puts an ``ExecuteJob`` on the commands stream in
    the same transaction, so the run is never lost between the two.
    """

    job_id: str


class CancelJob(Command, frozen=True, kw_only=True, tag="job.cancel"):
    """Stop a queued or running job within one chunk; gateway → owning service."""

    job_id: str


JobCommand = CreateJob | UpdateJob | DeleteJob | ExecuteJob | RequestRun | CancelJob


# --- events ---------------------------------------------------------------------------


class JobCreated(Event, frozen=True, kw_only=True, tag="job.created"):
    """A job was defined."""

    job_id: str
    title: str
    job_type: JobType
    model_name: str
    format: JobFormat
    file_path: str
    options: JobOptions
    created_by: str
    schedule: Schedule | None = None


class JobUpdated(Event, frozen=True, kw_only=True, tag="job.updated"):
    """A job's definition changed; ``None`` fields are unchanged."""

    job_id: str
    title: str | None = None
    model_name: str | None = None
    format: JobFormat | None = None
    file_path: str | None = None
    options: JobOptions | None = None
    schedule: Schedule | None = None
    clear_schedule: bool = False


class JobDeleted(Event, frozen=True, kw_only=True, tag="job.deleted"):
    """A job was deleted."""

    job_id: str


class JobQueued(Event, frozen=True, kw_only=True, tag="job.queued"):
    """A run was requested and its execute command put on the commands stream.

    ``resume`` continues after the last checkpoint of a cancelled or failed run, keeping its
    counters, so rows already loaded are not read again.
    """

    job_id: str
    run_id: str
    resume: bool = False


class JobFired(Event, frozen=True, kw_only=True, tag="job.fired"):
    """The job's schedule came due at ``fire_time`` (recorded once, by one scheduler);
    ``queued`` is false when the job was still busy with an earlier run."""

    job_id: str
    fire_time: str
    queued: bool = True


class JobStarted(Event, frozen=True, kw_only=True, tag="job.started"):
    """A worker took the run; ``resumed_from_row`` > 0 when it continues after a crash."""

    job_id: str
    run_id: str
    worker: str
    resumed_from_row: int = 0


class JobCheckpointed(Event, frozen=True, kw_only=True, tag="job.checkpointed"):
    """A chunk was committed; rows up to ``last_row`` are final and never read again."""

    job_id: str
    run_id: str
    last_row: int
    statistics: JobStatistics
    rejected: list[RejectedRow] = msgspec.field(default_factory=list)
    percent: float = 0.0
    changes: list[RowChange] = msgspec.field(default_factory=list)


class JobCompleted(Event, frozen=True, kw_only=True, tag="job.completed"):
    """The run finished; some rows may have been rejected.

    ``result_path`` names the file an export wrote (``upload:`` object), empty for imports.
    """

    job_id: str
    run_id: str
    statistics: JobStatistics
    result_path: str = ""


class JobFailed(Event, frozen=True, kw_only=True, tag="job.failed"):
    """The run stopped on an error that a retry will not fix; rows already committed stay."""

    job_id: str
    run_id: str
    error: ErrorInfo
    statistics: JobStatistics = msgspec.field(default_factory=JobStatistics)


class JobCancelRequested(Event, frozen=True, kw_only=True, tag="job.cancel_requested"):
    """Someone asked a running job to stop; the worker stops at the next chunk."""

    job_id: str


class JobCancelled(Event, frozen=True, kw_only=True, tag="job.cancelled"):
    """The run stopped because it was cancelled; rows already committed stay."""

    job_id: str
    run_id: str
    statistics: JobStatistics = msgspec.field(default_factory=JobStatistics)


JobEvent = (
    JobCreated
    | JobUpdated
    | JobDeleted
    | JobQueued
    | JobFired
    | JobStarted
    | JobCheckpointed
    | JobCompleted
    | JobFailed
    | JobCancelRequested
    | JobCancelled
)


# --- progress -------------------------------------------------------------------------


class JobProgress(Progress, frozen=True, kw_only=True, tag="job.progress"):
    """Live counters of a run; the worker publishes at least once a second."""

    job_id: str
    run_id: str
    status: JobStatus
    rows_read: int
    rows_imported: int
    rows_rejected: int
    percent: float
    bytes_read: int = 0
    bytes_total: int = 0
    message: str = ""
