"""Rendering jobs for people: the end-of-run summary, rejected rows, job lists and details.

Pure functions of the job JSON and a rich ``Console``, so tests render into a string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.cli.client import Job

__all__ = [
    "CHANGES_SHOWN",
    "REJECTIONS_SHOWN",
    "VALUE_WIDTH",
    "format_duration",
    "format_time",
    "is_dry_run",
    "print_dry_run",
    "print_job_detail",
    "print_jobs",
    "print_rejections",
    "print_summary",
    "short_id",
    "truncate",
]

REJECTIONS_SHOWN = 10
CHANGES_SHOWN = 10
VALUE_WIDTH = 40


def short_id(job_id: Any) -> str:
    return str(job_id)[:8]


def truncate(value: Any, width: int = VALUE_WIDTH) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", "\\n")  # keep one rejected row on one table line
    return text if len(text) <= width else text[: width - 1] + "…"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def format_time(value: Any) -> str:
    """Local time to the minute, or the raw value if it does not parse."""
    parsed = _parse_time(value)
    if parsed is None:
        return "" if value is None else str(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone()
    return parsed.strftime("%Y-%m-%d %H:%M")


def format_duration(job: Mapping[str, Any]) -> str:
    """``started_at`` → ``completed_at`` (else ``updated_at``), e.g. ``1m 02.5s``."""
    start = _parse_time(job.get("started_at"))
    end = _parse_time(job.get("completed_at")) or _parse_time(job.get("updated_at"))
    if start is None or end is None:
        return "-"
    try:
        seconds = max(0.0, (end - start).total_seconds())
    except TypeError:  # one aware, one naive: the server mixed formats
        return "-"
    minutes, rest = divmod(seconds, 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{int(hours)}h {int(minutes):02d}m {int(rest):02d}s"
    if minutes:
        return f"{int(minutes)}m {rest:04.1f}s"
    return f"{rest:.1f}s"


def _stats(job: Mapping[str, Any]) -> Mapping[str, Any]:
    stats = job.get("statistics")
    return stats if isinstance(stats, Mapping) else {}


def _status_style(status: str) -> str:
    return {"completed": "green", "failed": "red", "cancelled": "yellow"}.get(status, "cyan")


def is_dry_run(job: Mapping[str, Any]) -> bool:
    options = job.get("options")
    return isinstance(options, Mapping) and bool(options.get("dry_run"))


def print_summary(console: Console, job: Job) -> None:
    """Status, counters, duration, then the first rejected rows and how to see them all."""
    stats = _stats(job)
    status = str(job.get("status", ""))
    console.print(
        f"Job {job.get('id')} [{_status_style(status)}]{status}[/]",
        highlight=False,
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    if job.get("job_type") == "export":
        imported = "exported"
    else:
        imported = "would import" if is_dry_run(job) else "imported"
    read = "rows written" if job.get("job_type") == "export" else "rows read"
    counters = [(read, "rows_read"), (imported, "rows_imported")]
    if int(stats.get("rows_updated") or 0):
        counters += [("  inserted", "rows_inserted"), ("  updated", "rows_updated")]
    counters += [
        ("unchanged", "rows_unchanged"),
        ("skipped (already there)", "rows_skipped"),
        ("rejected", "rows_rejected"),
    ]
    for label, key in counters:
        value = int(stats.get(key) or 0)
        if value or key in ("rows_read", "rows_imported", "rows_rejected"):
            grid.add_row(label, f"{value:,}")
    grid.add_row("duration", format_duration(job))
    console.print(grid)
    errors = job.get("errors") or []
    rejected = int(stats.get("rows_rejected") or 0) or len(errors)
    if errors:
        shown = errors[:REJECTIONS_SHOWN]
        # a row can have several errors (one per bad cell): count both, each as itself
        rows = f"{rejected:,} row{'' if rejected == 1 else 's'} rejected"
        console.print(
            f"First {len(shown)} error{'' if len(shown) == 1 else 's'} ({rows}):", highlight=False
        )
        print_rejections(console, shown)
    if rejected > REJECTIONS_SHOWN or (rejected and not errors):
        console.print(f"See all rejected rows with: dm rejections {job.get('id')}", markup=False)


def _count(stats: Mapping[str, Any], key: str) -> int:
    try:
        return int(stats.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def print_dry_run(console: Console, job: Job) -> None:
    """After a dry run's summary: what would happen, then the first rows that would change
    and which of their fields."""
    stats = _stats(job)
    console.print("dry run: nothing was written", highlight=False)
    console.print(
        f"would insert {_count(stats, 'rows_inserted'):,}, "
        f"update {_count(stats, 'rows_updated'):,}, "
        f"leave {_count(stats, 'rows_unchanged'):,} unchanged, "
        f"skip {_count(stats, 'rows_skipped'):,}, "
        f"reject {_count(stats, 'rows_rejected'):,}",
        highlight=False,
    )
    changes = [c for c in job.get("changes") or [] if isinstance(c, Mapping)]
    if not changes:
        return
    shown = changes[:CHANGES_SHOWN]
    total = max(_count(stats, "rows_updated"), len(changes))
    console.print(f"First {len(shown)} of {total:,} rows that would change:", highlight=False)
    table = Table()
    table.add_column("row", justify="right")
    table.add_column("key", max_width=VALUE_WIDTH)
    table.add_column("changed fields")
    for change in shown:
        fields = change.get("fields") or []
        names = ", ".join(str(f) for f in fields) if isinstance(fields, list) else str(fields)
        # Text, not str: keys come from the user's file and may look like markup
        table.add_row(str(change.get("row", "")), Text(truncate(change.get("key"))), Text(names))
    console.print(table)


def print_rejections(console: Console, rows: Iterable[Mapping[str, Any]]) -> None:
    table = Table(show_lines=False)
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("value", max_width=VALUE_WIDTH)
    table.add_column("message")
    for row in rows:
        # Text, not str: values come straight from the user's file and may look like markup
        table.add_row(
            str(row.get("row", "")),
            Text(str(row.get("column") or "")),
            Text(truncate(row.get("value"))),
            Text(str(row.get("message") or "")),
        )
    console.print(table)


def print_jobs(console: Console, jobs: Iterable[Job]) -> None:
    table = Table()
    for name, justify in (
        ("id", "left"),
        ("title", "left"),
        ("type", "left"),
        ("model", "left"),
        ("status", "left"),
        ("progress", "right"),
        ("imported", "right"),
        ("rejected", "right"),
        ("created", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for job in jobs:
        stats = _stats(job)
        status = str(job.get("status", ""))
        table.add_row(
            short_id(job.get("id")),
            Text(truncate(job.get("title"), 30)),
            str(job.get("job_type", "")),
            Text(str(job.get("model_name", ""))),
            f"[{_status_style(status)}]{status}[/]",
            f"{float(job.get('progress') or 0):.0f}%",
            f"{int(stats.get('rows_imported') or 0):,}",
            f"{int(stats.get('rows_rejected') or 0):,}",
            format_time(job.get("created_at")),
        )
    console.print(table)


def print_job_detail(console: Console, job: Job) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    stats = _stats(job)
    rows: list[tuple[str, str]] = [
        ("id", str(job.get("id", ""))),
        ("title", str(job.get("title", ""))),
        ("type", str(job.get("job_type", ""))),
        ("model", str(job.get("model_name", ""))),
        ("format", str(job.get("format", ""))),
        ("file", str(job.get("file_path", ""))),
        ("options", str(job.get("options") or {})),
        ("status", str(job.get("status", ""))),
        ("progress", f"{float(job.get('progress') or 0):.1f}%"),
        ("rows read", f"{int(stats.get('rows_read') or 0):,}"),
        ("imported", f"{int(stats.get('rows_imported') or 0):,}"),
        ("rejected", f"{int(stats.get('rows_rejected') or 0):,}"),
        ("chunks", f"{int(stats.get('chunks_committed') or 0):,}"),
        ("created by", str(job.get("created_by") or "")),
        ("created", format_time(job.get("created_at"))),
        ("started", format_time(job.get("started_at"))),
        ("completed", format_time(job.get("completed_at"))),
        ("duration", format_duration(job)),
    ]
    if job.get("error_message"):
        rows.append(("error", str(job["error_message"])))
    for label, value in rows:
        grid.add_row(label, Text(value))
    console.print(grid)
    errors = job.get("errors") or []
    if errors:
        console.print(f"First {min(len(errors), REJECTIONS_SHOWN)} rejected rows:")
        print_rejections(console, errors[:REJECTIONS_SHOWN])
        console.print(f"See all rejected rows with: dm rejections {job.get('id')}", markup=False)
