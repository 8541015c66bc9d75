"""Showing a job's progress: a live rich bar on a terminal, plain lines in a pipe or log.

A live bar written into a file becomes a mess of redraws, so off a terminal we print one
line per status change and per 10 % step instead.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from services.cli.follow import Snapshot

__all__ = ["LiveProgress", "PlainProgress", "progress_view"]


def _counts(snapshot: Snapshot, export: bool = False) -> str:
    if export:
        return f"written {snapshot.rows_imported:,}"
    return (
        f"read {snapshot.rows_read:,}  imported {snapshot.rows_imported:,}  "
        f"rejected {snapshot.rows_rejected:,}"
    )


class LiveProgress:
    """A rich progress bar driven by percent, with the row counters beside it."""

    def __init__(self, console: Console, *, export: bool = False) -> None:
        self._export = export
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        self._task = self._progress.add_task("pending", total=100.0, counts="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def show(self, snapshot: Snapshot) -> None:
        if self._task is None:
            return
        self._progress.update(
            self._task,
            completed=snapshot.percent,
            description=snapshot.status,
            counts=_counts(snapshot, self._export),
        )


class PlainProgress:
    """One line per status change or 10 % step; quiet otherwise."""

    def __init__(self, console: Console, *, step: float = 10.0, export: bool = False) -> None:
        self._console = console
        self._export = export
        self._step = step
        self._last_status = ""
        self._last_bucket = -1

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def show(self, snapshot: Snapshot) -> None:
        bucket = int(snapshot.percent // self._step)
        if snapshot.status == self._last_status and bucket == self._last_bucket:
            return
        self._last_status, self._last_bucket = snapshot.status, bucket
        line = f"{snapshot.status:<9} {snapshot.percent:5.1f}%  {_counts(snapshot, self._export)}"
        # markup off: messages and values come from user files and may contain [brackets]
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)


def progress_view(console: Console, *, export: bool = False) -> LiveProgress | PlainProgress:
    """An export's counters say rows written; an import's, rows read, imported, rejected."""
    if console.is_terminal:
        return LiveProgress(console, export=export)
    return PlainProgress(console, export=export)
