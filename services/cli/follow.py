"""Following a job to its end: the server-sent event stream first, polling if it drops.

The stream gives live progress; polling is the fallback that always works, so a proxy that
buffers or cuts the stream only costs liveliness, never the final answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from services.cli.client import GatewayClient, Job
from services.cli.errors import GatewayError

__all__ = [
    "TERMINAL_STATUSES",
    "ProgressSink",
    "Snapshot",
    "follow_job",
    "snapshot_from_job",
    "snapshot_from_progress",
]

# same values as contracts.jobs.TERMINAL_STATUSES; the CLI talks REST, not the bus contracts
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

POLL_INTERVAL = 0.5
# a gateway restart while we poll should not end the command; a gateway gone for good should
_MAX_POLL_FAILURES = 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a progress display needs, from either a progress event or a full job."""

    status: str
    percent: float
    rows_read: int
    rows_imported: int
    rows_rejected: int
    message: str = ""


class ProgressSink(Protocol):
    def show(self, snapshot: Snapshot) -> None: ...


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _percent(value: Any) -> float:
    return max(0.0, min(100.0, float(value))) if isinstance(value, int | float) else 0.0


def snapshot_from_job(job: Job) -> Snapshot:
    stats = job.get("statistics") or {}
    return Snapshot(
        status=str(job.get("status", "")),
        percent=_percent(job.get("progress")),
        rows_read=_int(stats.get("rows_read")),
        rows_imported=_int(stats.get("rows_imported")),
        rows_rejected=_int(stats.get("rows_rejected")),
        message=str(job.get("error_message") or ""),
    )


def snapshot_from_progress(event: dict[str, Any]) -> Snapshot:
    return Snapshot(
        status=str(event.get("status", "running")),
        percent=_percent(event.get("percent")),
        rows_read=_int(event.get("rows_read")),
        rows_imported=_int(event.get("rows_imported")),
        rows_rejected=_int(event.get("rows_rejected")),
        message=str(event.get("message") or ""),
    )


def is_terminal(job: Job) -> bool:
    return job.get("status") in TERMINAL_STATUSES


def follow_job(
    client: GatewayClient,
    job: Job,
    sink: ProgressSink,
    *,
    poll_interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """Show progress until the job is completed, failed or cancelled; return the final job."""
    sink.show(snapshot_from_job(job))
    if is_terminal(job):
        return job
    job_id = str(job["id"])
    final = _follow_stream(client, job_id, sink)
    if final is not None:
        return final
    return _poll(client, job_id, sink, poll_interval, sleep)


def _follow_stream(client: GatewayClient, job_id: str, sink: ProgressSink) -> Job | None:
    """The final job, or ``None`` when the stream ended or failed before a terminal status."""
    try:
        with client.events(job_id) as messages:
            for message in messages:
                try:
                    data = json.loads(message.data)
                except json.JSONDecodeError:
                    continue  # one garbled message should not end the stream
                if not isinstance(data, dict):
                    continue
                if message.event == "progress":
                    sink.show(snapshot_from_progress(data))
                elif message.event == "status":
                    sink.show(snapshot_from_job(data))
                    if is_terminal(data):
                        return data
    except (httpx.HTTPError, GatewayError):
        # stream refused or dropped: polling below reaches the same end; a real problem
        # (bad token, gateway down) shows up there with a proper error
        pass
    return None


def _poll(
    client: GatewayClient,
    job_id: str,
    sink: ProgressSink,
    interval: float,
    sleep: Callable[[float], None],
) -> Job:
    failures = 0
    while True:
        try:
            job = client.get_job(job_id)
        except httpx.TransportError:
            failures += 1
            if failures >= _MAX_POLL_FAILURES:
                raise
            sleep(interval)
            continue
        failures = 0
        sink.show(snapshot_from_job(job))
        if is_terminal(job):
            return job
        sleep(interval)
