"""One run of an import job: claim it, stream the file in chunks, checkpoint, finish.

Each chunk commits the loaded rows, their rejections and a ``JobCheckpointed`` event in one
transaction, so a run resumed after a crash starts exactly after its last checkpoint.
A session-level advisory lock on a dedicated connection makes sure only one replica runs a
job at a time; it is released by PostgreSQL itself if the worker dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import asyncpg
import msgspec
from msgspec.structs import replace
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.base import ErrorInfo
from contracts.jobs import (
    ExecuteJob,
    JobCancelled,
    JobCheckpointed,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobProgress,
    JobStatistics,
    RejectedRow,
)
from services.core.catalogue import UnknownModelError, get_model
from services.core.jobs.lease import RunInterrupted, is_transient, job_lease
from services.core.jobs.runs import claim_run, run_envelope
from services.core.jobs.state import MAX_ERRORS_SHOWN, JobState, stream_of
from services.core.jobs.store import load, record
from services.core.jobs.worker_app import RunnerParts
from services.core.logs import get_logger
from services.core.storage import StorageError, open_job_file
from services.core.tables import events
from services.importer.children import ChildImports
from services.importer.copy_text import CopyData, CopyText
from services.importer.csv_source import CsvSource, RecordBatch
from services.importer.errors import JobFailure
from services.importer.loader import ChunkLoader, ChunkResult, RunWrites
from services.importer.rows import ValidRows
from services.importer.sources import Source, batch_reader, open_source
from services.importer.validate import LONE_SURROGATE, CheckedRows, RowValidator, step

__all__ = ["JobRunner", "RunContext"]

log = get_logger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
# records read and checked in one go: each statement of the chunk being written meanwhile
# waits for the next look at the event loop, and PostgreSQL idles while it waits, so the
# pieces are short, and while a chunk is being written the loop is also looked at between
# two columns of a piece (bench: 0.65 -> 0.74 of `\copy`; a 1,000-row piece idled more)
PIECE_ROWS = 250
# checked chunks that may wait for their write behind the one being written
WRITE_AHEAD = 2
# a run's first chunk is at most this long, and each next one twice as long as the one
# before, up to the chunk size: the database idles until a chunk is checked, so short first
# ones start its work sooner (for an XLSX sheet, whose rows all come at once after the
# parse, the writes began 0.1 s after it with one short chunk, then the second one waited
# another 0.08 s for 10,000 rows to be checked)
FIRST_CHUNK_ROWS = 1000
TERMINAL = frozenset({"completed", "failed", "cancelled"})


async def _in_turn(before: asyncio.Task[None] | None, write: Coroutine[Any, Any, None]) -> None:
    """Run ``write`` once the write before it has finished; if that one failed, this one
    never runs (and re-raises its error)."""
    try:
        if before is not None:
            await before
    except BaseException:
        write.close()
        raise
    await write


@dataclass(slots=True)
class RunContext:
    """Mutable counters of the run in progress."""

    job: JobState
    cmd: ExecuteJob
    stats: JobStatistics
    record_no: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    last_progress: float = 0.0
    # when the run started and its chunks' transaction times: what tells its own writes
    writes: RunWrites | None = None
    # the job's child arrays (JobOptions.children), loaded after each chunk's parents
    children: ChildImports | None = None
    # the part of the job's progress this reading of the file stands for: an all-or-nothing
    # run reads the file twice, first to check it (0-50 %), then to load it (50-100 %)
    span: tuple[float, float] = (0.0, 100.0)

    def percent(self, bytes_read: int) -> float:
        low, high = self.span
        return round(low + (high - low) * bytes_read / (self.bytes_total or 1), 2)


@dataclass(slots=True)
class _Batch:
    """One chunk's rows on their way to the database, and where the file was after them."""

    valid: ValidRows = field(default_factory=ValidRows)
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_lines: set[int] = field(default_factory=set)
    # the records as read, so the error report can show a rejected row's original cells
    records: list[RecordBatch] = field(default_factory=list)
    rows: int = 0
    last_record: int = 0
    bytes_read: int = 0
    # children refused while loading, under their parents' rows (not counted as rows)
    child_rejected: list[RejectedRow] = field(default_factory=list)
    # the checked batches' rows as CSV text, then the chunk's COPY payload (see copy_text)
    copy_parts: list[str] | None = field(default_factory=list)
    copy: CopyData | None = None
    _cells: dict[int, list[str]] | None = None

    def seal(self, writer: CopyText | None) -> None:
        """The chunk is complete: join its batches' CSV text into its COPY payload."""
        if writer is not None and self.copy_parts is not None:
            self.copy = writer.chunk(self.copy_parts)
        self.copy_parts = None

    def add(self, records: RecordBatch, checked: CheckedRows) -> None:
        records.compact()
        self.records.append(records)
        if self.copy_parts is not None:
            if checked.copy_text is None:
                self.copy_parts = None  # the chunk goes in by binary COPY
            else:
                self.copy_parts.append(checked.copy_text)
        if checked.columns is not None:
            self.valid.add_columns(checked.columns)
        else:
            self.valid.add_rows(checked.valid)
        self.rejected.extend(checked.rejected)
        self.rejected_lines |= checked.rejected_lines
        self.rows += len(records)

    def cells(self, line: int) -> list[str] | None:
        """The cells of the record on ``line`` (indexed on first use: most chunks have no
        rejected row to show)."""
        if self._cells is None:
            self._cells = {}
            for part in self.records:
                self._cells.update(zip(part.lines, part.rows, strict=True))
        return self._cells.get(line)


@dataclass(slots=True)
class _Totals:
    first_rejected: list[RejectedRow] = field(default_factory=list)


def _storable_row(row: RejectedRow) -> RejectedRow:
    if _storable(row.value) == row.value and _storable(row.message) == row.message:
        return row
    return RejectedRow(
        row=row.row,
        column=row.column,
        value=_storable(row.value),
        message=_storable(row.message) or "",
    )


def _storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, nor UTF-8 a lone half of a UTF-16 pair: show them
    as ``\\x00`` and ``\\ud800`` in the report instead."""
    if not text:
        return text
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii() and LONE_SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _percent(share: float) -> str:
    """A share of rows with two decimals, or two significant digits when it is smaller
    (one bad row in 35,000 is 0.0029 %, not "0.00 %" over a limit of 0 %)."""
    text = f"{share:.2f}"
    return f"{share:.2g}" if text == "0.00" and share else text


def _original(cells: list[str] | None) -> str | None:
    """The record as a CSV line, for the error report."""
    if cells is None:
        return None
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def _nothing_written(s: JobStatistics) -> JobStatistics:
    """An all-or-nothing run that wrote nothing: what it read and rejected, no writes."""
    return replace(
        s,
        rows_imported=0,
        rows_inserted=0,
        rows_updated=0,
        rows_unchanged=0,
        rows_skipped=0,
        chunks_committed=0,
    )


def _add(s: JobStatistics, batch: _Batch, result: ChunkResult) -> JobStatistics:
    """Counters after one more chunk (a row rejected twice counts once)."""
    bad_rows = len(batch.rejected_lines | {r.row for r in result.rejected})
    return JobStatistics(
        rows_read=s.rows_read + batch.rows,
        rows_imported=s.rows_imported + result.inserted + result.updated,
        rows_rejected=s.rows_rejected + bad_rows,
        chunks_committed=s.chunks_committed + 1,
        rows_inserted=s.rows_inserted + result.inserted,
        rows_updated=s.rows_updated + result.updated,
        rows_unchanged=s.rows_unchanged + result.unchanged,
        rows_skipped=s.rows_skipped + result.skipped,
    )


class _Stop(Exception):
    """The run ended early (cancelled, or superseded by another run)."""


class _CancelRequested(Exception):
    """All-or-nothing: the job's cancel was requested; what this pass did is undone."""


class JobRunner:
    def __init__(self, parts: RunnerParts) -> None:
        self.engine = parts.engine
        self.js = parts.js
        self.subjects = parts.subjects
        self.relay = parts.relay
        self.worker = parts.worker
        self.shutdown = parts.shutdown
        self.imports_root = parts.settings.imports_path
        self.chunk_size = parts.settings.import_chunk_size

    async def run(self, cmd: ExecuteJob) -> None:
        """Raises ``RunBusy`` when another replica holds the job."""
        async with job_lease(self.engine, cmd.job_id):
            job = await self._claim(cmd)
            if job is not None:
                await self._execute(job, cmd)

    # --- claiming --------------------------------------------------------------------

    async def _claim(self, cmd: ExecuteJob) -> JobState | None:
        job = await claim_run(self.engine, self.subjects, cmd, self.worker, resumable=True)
        self.relay.poke()  # a started run, or one failed for killing its worker again and again
        return job

    def _env(self, job: JobState, cmd: ExecuteJob, offset: int) -> dict[str, Any]:
        return run_envelope(job, cmd, offset)

    # --- the run ---------------------------------------------------------------------

    async def _execute(self, job: JobState, cmd: ExecuteJob) -> None:
        ctx = RunContext(job=job, cmd=cmd, stats=job.statistics)
        try:
            await self._import(ctx)
        except _Stop:
            return
        except JobFailure as e:
            await self._end(ctx, "failed", ErrorInfo(code=e.code, message=e.message))
            return
        except Exception as e:
            if is_transient(e) or isinstance(e, RunInterrupted):
                raise
            log.exception("import stopped on an unexpected error", job_id=job.id)
            opts = ctx.job.options
            kept = (
                "nothing was written (all-or-nothing)"
                if opts.all_or_nothing and not opts.dry_run
                else "rows committed before it stay"
            )
            await self._end(
                ctx,
                "failed",
                ErrorInfo(
                    code="internal_error",
                    message=f"the import stopped on an unexpected error ({type(e).__name__}: {e}); "
                    + kept,
                ),
            )
            return
        await self._end(ctx, "completed")

    async def give_up(self, cmd: ExecuteJob, message: str) -> None:
        """Fail the run for good (a command that keeps failing to run)."""
        async with self.engine.connect() as conn:
            job = await load(conn, cmd.job_id)
        if job is not None and job.run_id == cmd.run_id and job.status == "running":
            ctx = RunContext(job=job, cmd=cmd, stats=job.statistics)
            await self._end(ctx, "failed", ErrorInfo(code="gave_up", message=message))

    async def _import(self, ctx: RunContext) -> None:
        job = ctx.job
        try:
            model = get_model(job.model_name)
        except UnknownModelError as e:
            raise JobFailure("unknown_model", str(e)) from e
        try:
            async with open_job_file(
                job.file_path, root=self.imports_root, js=self.js, subjects=self.subjects
            ) as path:
                await self._import_file(ctx, model, path)
        except StorageError as e:
            raise JobFailure("unreadable_file", str(e)) from e

    async def _import_file(self, ctx: RunContext, model: Any, path: Any) -> None:
        opts = ctx.job.options
        source = open_source(ctx.job.format, path, model, opts)
        try:
            ctx.bytes_total = source.bytes_total
            validator = RowValidator(
                model, source.header(), opts.field_mapping, opts, source_format=ctx.job.format
            )
            loader = ChunkLoader(model, validator.fields, opts.mode)
            ctx.children = ChildImports.of(validator, opts, ctx.job.format)
            if opts.dry_run or not opts.all_or_nothing:
                # checked rows are also written as CSV text for COPY, while the chunk before
                # is loaded: asyncpg's binary encoding would run inside the chunk's write.
                # Chunks that go through the staging table carry their file line numbers.
                # A chunk copied straight in costs PostgreSQL ~10 % more as text, but the
                # importer, the slower side, less (bench, alternating runs: 0.70 of `\copy`
                # against 0.66 binary; +7 MB of peak RSS)
                delimiter = source.delimiter if isinstance(source, CsvSource) else ","
                validator.write_copy_text(delimiter, numbered=opts.dry_run or not loader.direct)
            async with self.engine.connect() as conn:
                raw = await self._driver(conn)
                await loader.prepare(raw)
                if ctx.children is not None:
                    await ctx.children.prepare(raw)
                await conn.commit()
                try:
                    if ctx.job.last_row and (opts.dry_run or opts.mode != "insert"):
                        await self._remember_loaded(ctx, path, model, validator, loader, conn)
                    if opts.all_or_nothing and not opts.dry_run:
                        await self._all_or_nothing(ctx, path, model, validator, loader, conn)
                    else:
                        handle = self._preview_chunk if opts.dry_run else self._commit_chunk
                        await self._stream(
                            ctx, source, validator, partial(handle, ctx, loader, conn)
                        )
                finally:
                    with contextlib.suppress(Exception):
                        await conn.rollback()
                        await loader.drop(await self._driver(conn))
                        if ctx.children is not None:
                            await ctx.children.drop(await self._driver(conn))
        finally:
            source.close()

    async def _remember_loaded(
        self,
        ctx: RunContext,
        path: Any,
        model: Any,
        validator: RowValidator,
        loader: ChunkLoader,
        conn: AsyncConnection,
    ) -> None:
        """A resumed run: read the file up to the checkpoint again and remember the keys of
        its valid rows, as the run before did. Without them, an upsert or skip (or a dry
        run) took a key repeated after the checkpoint for a new one, unlike a run that
        was never interrupted."""
        source = open_source(ctx.job.format, path, model, ctx.job.options)
        try:
            source.header()
            read = batch_reader(source)
            done, pending = 0, []
            while done < ctx.job.last_row:
                records = read(min(PIECE_ROWS, ctx.job.last_row - done))
                if records is None:
                    break
                done += len(records)
                pending.extend(validator.check_rows(records).valid)
                if len(pending) >= self.chunk_size:
                    await self._remember(conn, loader, pending)
                    pending = []
            await self._remember(conn, loader, pending)
        finally:
            source.close()

    async def _remember(
        self, conn: AsyncConnection, loader: ChunkLoader, rows: list[tuple[Any, ...]]
    ) -> None:
        async with conn.begin():
            await conn.execute(text("SELECT 1"))  # a real transaction before raw statements
            await loader.remember_loaded(await self._driver(conn), rows)

    async def _stream(
        self,
        ctx: RunContext,
        source: Source,
        validator: RowValidator,
        handle: Callable[[_Batch], Coroutine[Any, Any, None]],
    ) -> None:
        """Validate the next chunks while earlier ones are being written: parsing is Python's
        work, loading is the database's, so the two overlap. Up to ``WRITE_AHEAD`` checked
        chunks wait their turn, so neither side idles while the other finishes a chunk's
        tail (the last rows, the checkpoint, the commit). Commits stay strictly in order:
        each chunk's write starts once the one before it has committed."""
        skip_to = ctx.job.last_row
        batch = _Batch()
        writes: deque[asyncio.Task[None]] = deque()
        read = batch_reader(source)
        size = min(self.chunk_size, FIRST_CHUNK_ROWS)
        # a share of bad rows allowed is judged once a whole chunk's worth has been read:
        # chunks growing up to it would commit 7,000 rows of a bad file first, not 1,000
        grow = ctx.job.options.max_error_percent is None
        try:
            while (records := read(min(PIECE_ROWS, size - batch.rows))) is not None:
                if ctx.record_no + len(records) <= skip_to:
                    ctx.record_no += len(records)  # a resumed run: committed before
                    continue
                if ctx.record_no < skip_to:
                    records = records.tail(skip_to - ctx.record_no)
                    ctx.record_no = skip_to
                ctx.record_no += len(records)
                batch.add(records, await self._check(validator, records, busy=bool(writes)))
                if batch.rows >= size:
                    size = min(self.chunk_size, 2 * size) if grow else self.chunk_size
                    batch.last_record, batch.bytes_read = ctx.record_no, source.bytes_read
                    batch.seal(validator.copy_text)
                    while len(writes) >= WRITE_AHEAD or (writes and writes[0].done()):
                        await writes.popleft()  # a failed chunk's error surfaces here
                    after = writes[-1] if writes else None
                    writes.append(asyncio.create_task(_in_turn(after, handle(batch))))
                    batch = _Batch()
                else:
                    await asyncio.sleep(0)  # let the chunk being written make progress
                    ctx.bytes_read = source.bytes_read
                    await self._maybe_progress(ctx)
            while writes:
                await writes.popleft()
            if batch.rows:
                batch.last_record, batch.bytes_read = ctx.record_no, source.bytes_total
                batch.seal(validator.copy_text)
                await handle(batch)
        finally:
            for task in writes:
                task.cancel()
            for task in writes:
                with contextlib.suppress(BaseException):
                    await task

    @staticmethod
    async def _check(validator: RowValidator, records: RecordBatch, *, busy: bool) -> CheckedRows:
        """Check a piece of records; while a chunk is being written (``busy``), look at the
        event loop between columns, so each of the chunk's statements is sent soon after
        the one before it returns (PostgreSQL idles in between)."""
        if not busy:
            return validator.check_rows(records)
        steps = validator.checking(records)
        while True:
            checked = step(steps)
            if checked is not None:
                return checked
            await asyncio.sleep(0)  # the next column waits for a look at the event loop

    async def _commit_chunk(
        self, ctx: RunContext, loader: ChunkLoader, conn: AsyncConnection, batch: _Batch
    ) -> None:
        """Load the chunk and checkpoint it in one transaction."""

        written_at: list[datetime] = []

        async def write(raw: asyncpg.Connection) -> ChunkResult:
            run = await self._run_writes(conn, ctx)
            written_at.append(await raw.fetchval("SELECT now()"))
            result = await loader.load(raw, batch.valid, run, copy=batch.copy)
            if ctx.children is not None:
                refused = {r.row for r in result.rejected}
                batch.child_rejected = await ctx.children.load(
                    raw, batch.valid, refused, batch.cells, run
                )
            return result

        await self._chunk(ctx, conn, batch, write, threshold=True)
        if ctx.writes is not None:  # committed: its stamps are this run's from now on
            ctx.writes.times.extend(written_at)

    async def _preview_chunk(
        self, ctx: RunContext, loader: ChunkLoader, conn: AsyncConnection, batch: _Batch
    ) -> None:
        """Dry run: validate against the table and count what would change; the table is
        never written (the staging rows vanish at commit)."""

        async def preview(raw: asyncpg.Connection) -> ChunkResult:
            return await loader.preview(raw, batch.valid, copy=batch.copy)

        await self._chunk(ctx, conn, batch, preview)

    async def _chunk(
        self,
        ctx: RunContext,
        conn: AsyncConnection,
        batch: _Batch,
        work: Callable[[asyncpg.Connection], Coroutine[Any, Any, ChunkResult]],
        *,
        threshold: bool = False,
    ) -> None:
        """One chunk in one transaction: stop if the run was superseded, record a requested
        cancel, else do ``work`` and checkpoint what it did. ``threshold``: fail the job,
        without writing this chunk's rows, once too many rows are bad."""
        self.shutdown.check()  # a stopping worker hands the rest back before this chunk
        before = ctx.stats, ctx.job
        try:
            cancelled, too_many = await self._chunk_transaction(
                ctx, conn, batch, work, threshold=threshold
            )
        except BaseException:
            ctx.stats, ctx.job = before  # the chunk rolled back: so do its counters
            raise
        self.relay.poke()
        if too_many:
            raise JobFailure("too_many_errors", too_many)
        if cancelled:
            await self._publish_progress(ctx, "cancelled")
            raise _Stop
        ctx.bytes_read = max(ctx.bytes_read, batch.bytes_read)
        await self._maybe_progress(ctx)

    async def _chunk_transaction(
        self,
        ctx: RunContext,
        conn: AsyncConnection,
        batch: _Batch,
        work: Callable[[asyncpg.Connection], Coroutine[Any, Any, ChunkResult]],
        *,
        threshold: bool = False,
    ) -> tuple[bool, str | None]:
        """(cancelled, why the job must fail for too many bad rows, if it must)."""
        too_many = None
        async with conn.begin():
            # a chunk's commit does not wait for its WAL to reach the disk: its rows and its
            # checkpoint are one transaction, so a database crash loses both together and
            # the resumed run redoes the chunk; the job's end commits durably, which flushes
            # every chunk before it (the WAL is written in order)
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            job = await load(conn, ctx.job.id, lock=True)
            if job is None or job.run_id != ctx.cmd.run_id or job.status != "running":
                raise _Stop
            ctx.job = job
            cancelled = job.cancel_requested
            if cancelled:
                cancel = JobCancelled(
                    **self._env(job, ctx.cmd, 0),
                    job_id=job.id,
                    run_id=ctx.cmd.run_id,
                    statistics=ctx.stats,
                )
                await self._record(conn, ctx, [cancel])
            elif threshold and ctx.job.options.max_error_percent is not None:
                # the rows go in under a savepoint, so that a chunk that tips the share of
                # bad rows over the limit leaves only its rejections behind
                written = await conn.begin_nested()
                result = await work(await self._driver(conn))
                too_many = self._over_threshold(ctx, batch, result)
                if too_many:
                    await written.rollback()
                    result = ChunkResult(rejected=result.rejected)
                    await self._checkpoint(conn, ctx, result, batch, advance=False)
                else:
                    await written.commit()
                    await self._checkpoint(conn, ctx, result, batch)
            else:
                result = await work(await self._driver(conn))
                await self._checkpoint(conn, ctx, result, batch)
        return cancelled, too_many

    def _over_threshold(self, ctx: RunContext, batch: _Batch, result: ChunkResult) -> str | None:
        """Why the job fails if this chunk makes more than the allowed share of rows bad.
        Decided once a chunk's worth of rows has been read (one early bad row does not
        decide) or at the file's last chunk, whatever its size."""
        limit = ctx.job.options.max_error_percent
        after = _add(ctx.stats, batch, result)
        read = after.rows_read
        last = batch.bytes_read >= ctx.bytes_total
        if limit is None or not read or (read < self.chunk_size and not last):
            return None
        share = 100.0 * after.rows_rejected / read
        if share <= limit:
            return None
        lines = [line for part in batch.records for line in part.lines[:1] + part.lines[-1:]]
        where = f" (rows {min(lines):,} to {max(lines):,})" if lines else ""
        return (
            f"{_percent(share)}% of the {read:,} rows read were rejected, more than the {limit:g}% "
            f"allowed; the last chunk read{where} was not written, rows committed before stay"
        )

    async def _all_or_nothing(
        self,
        ctx: RunContext,
        path: Any,
        model: Any,
        validator: RowValidator,
        loader: ChunkLoader,
        conn: AsyncConnection,
    ) -> None:
        """Pass 1 checks every row against the table and writes nothing; only a clean file
        is loaded, in pass 2, in one transaction, so a crash or a late refusal leaves the
        table exactly as it was (and a redelivered run starts again from the top)."""
        try:
            await self._check_then_load(ctx, path, model, validator, loader, conn)
        except _CancelRequested:
            ctx.stats = _nothing_written(ctx.stats)
            await self._record_cancel(ctx, conn)
            raise _Stop from None
        except BaseException:
            # whatever stopped it, the table is as it was: no written rows to report
            ctx.stats = _nothing_written(ctx.stats)
            raise

    async def _check_then_load(
        self,
        ctx: RunContext,
        path: Any,
        model: Any,
        validator: RowValidator,
        loader: ChunkLoader,
        conn: AsyncConnection,
    ) -> None:
        checked = _Totals()
        ctx.span = (0.0, 50.0)
        first = open_source(ctx.job.format, path, model, ctx.job.options)
        try:
            first.header()
            await self._stream(
                ctx, first, validator, partial(self._check_chunk, ctx, loader, conn, checked)
            )
        finally:
            first.close()
        if ctx.stats.rows_rejected:
            ctx.stats = _nothing_written(ctx.stats)  # the counts of a check that wrote nothing
            async with conn.begin():
                await self._stop_if_cancelled(conn, ctx, lock=True)
                await self._record(
                    conn,
                    ctx,
                    [
                        JobCheckpointed(
                            **self._env(ctx.job, ctx.cmd, 0),
                            job_id=ctx.job.id,
                            run_id=ctx.cmd.run_id,
                            last_row=0,
                            statistics=ctx.stats,
                            rejected=[_storable_row(r) for r in checked.first_rejected],
                            percent=100.0,  # the whole file was read and checked
                        )
                    ],
                )
            raise JobFailure(
                "all_or_nothing",
                f"{ctx.stats.rows_rejected:,} of {ctx.stats.rows_read:,} rows were rejected, "
                "so nothing was written (all-or-nothing)",
            )
        ctx.stats, ctx.record_no, ctx.span = JobStatistics(), 0, (50.0, 100.0)
        second = open_source(ctx.job.format, path, model, ctx.job.options)
        try:
            await self._load_atomically(ctx, second, validator, loader, conn)
        finally:
            second.close()
        self.relay.poke()

    async def _load_atomically(
        self,
        ctx: RunContext,
        source: Source,
        validator: RowValidator,
        loader: ChunkLoader,
        conn: AsyncConnection,
    ) -> None:
        """Pass 2 of all-or-nothing: every chunk in one transaction with the final
        checkpoint, so it all lands or none of it does."""
        source.header()
        async with conn.begin():
            await self._stream(
                ctx, source, validator, partial(self._atomic_chunk, ctx, loader, conn)
            )
            await self._stop_if_cancelled(conn, ctx, lock=True)
            done = JobCheckpointed(
                **self._env(ctx.job, ctx.cmd, 0),
                job_id=ctx.job.id,
                run_id=ctx.cmd.run_id,
                last_row=ctx.record_no,
                statistics=ctx.stats,
                percent=100.0,
            )
            await self._record(conn, ctx, [done])

    async def _check_chunk(
        self,
        ctx: RunContext,
        loader: ChunkLoader,
        conn: AsyncConnection,
        totals: _Totals,
        batch: _Batch,
    ) -> None:
        self.shutdown.check()
        async with conn.begin():
            # SQLAlchemy begins lazily: make the transaction real before raw statements, or
            # each would commit alone and the staging table would empty itself at once
            await conn.execute(text("SELECT 1"))
            result = await loader.preview(await self._driver(conn), batch.valid)
            rejected = sorted(batch.rejected + result.rejected, key=lambda r: r.row)
            await self._save_rejections(conn, ctx, rejected, batch)
            # read and checked, whatever follows (a cancel counts these rows as read)
            ctx.stats = _nothing_written(_add(ctx.stats, batch, result))
            # the job's record follows the check, so `dm status` shows it moving (the rows
            # read and rejected so far; nothing written); a cancel request is seen here
            await self._stop_if_cancelled(conn, ctx, lock=True)
            checked = JobCheckpointed(
                **self._env(ctx.job, ctx.cmd, 0),
                job_id=ctx.job.id,
                run_id=ctx.cmd.run_id,
                last_row=0,
                statistics=ctx.stats,
                percent=ctx.percent(batch.bytes_read),
            )
            await self._record(conn, ctx, [checked])
        room = max(MAX_ERRORS_SHOWN - len(totals.first_rejected), 0)
        totals.first_rejected.extend(rejected[:room])
        await self._maybe_progress(ctx)

    async def _atomic_chunk(
        self, ctx: RunContext, loader: ChunkLoader, conn: AsyncConnection, batch: _Batch
    ) -> None:
        self.shutdown.check()
        # one read of the job per chunk, without a lock, which would hold a cancel request
        # until the whole load commits
        await self._stop_if_cancelled(conn, ctx, lock=False)
        async with conn.begin_nested():
            # one long transaction: rows are told apart by the keys the insert returns
            result = await loader.load(
                await self._driver(conn),
                batch.valid,
                await self._run_writes(conn, ctx),
                counted=False,
            )
        refused = batch.rejected + result.rejected
        if refused:
            first = min(refused, key=lambda r: r.row)
            raise JobFailure(
                "all_or_nothing",
                f"row {first.row} was refused while loading ({first.message}), so nothing was "
                "written (all-or-nothing)",
            )
        ctx.stats = _add(ctx.stats, batch, result)
        await self._maybe_progress(ctx)

    async def _stop_if_cancelled(
        self, conn: AsyncConnection, ctx: RunContext, *, lock: bool
    ) -> None:
        """All-or-nothing: raise ``_CancelRequested`` once the job's cancel is requested
        (``_Stop`` if another run took over)."""
        job = await load(conn, ctx.job.id, lock=lock)
        if job is None or job.run_id != ctx.cmd.run_id or job.status != "running":
            raise _Stop
        ctx.job = job
        if job.cancel_requested:
            raise _CancelRequested

    async def _record_cancel(self, ctx: RunContext, conn: AsyncConnection) -> None:
        """Record that the run was cancelled, with what it read and wrote (nothing)."""
        with contextlib.suppress(Exception):
            await conn.rollback()  # what the pass did is undone
        async with conn.begin():
            job = await load(conn, ctx.job.id, lock=True)
            if job is None or job.run_id != ctx.cmd.run_id or job.status != "running":
                return
            ctx.job = job
            cancel = JobCancelled(
                **self._env(job, ctx.cmd, 0),
                job_id=job.id,
                run_id=ctx.cmd.run_id,
                statistics=ctx.stats,
            )
            await self._record(conn, ctx, [cancel])
        self.relay.poke()
        await self._publish_progress(ctx, "cancelled")

    async def _save_rejections(
        self, conn: AsyncConnection, ctx: RunContext, rejected: list[RejectedRow], batch: _Batch
    ) -> None:
        if not rejected:
            return
        raw = await self._driver(conn)
        await raw.copy_records_to_table(
            "job_rejections",
            schema_name="dm",
            columns=["job_id", "run_id", "row", "column", "value", "message", "original"],
            records=[
                (
                    ctx.job.id,
                    ctx.cmd.run_id,
                    r.row,
                    _storable(r.column),
                    _storable(r.value),
                    _storable(r.message) or "",
                    _storable(_original(batch.cells(r.row))),
                )
                for r in rejected
            ],
        )

    async def _checkpoint(
        self,
        conn: AsyncConnection,
        ctx: RunContext,
        result: ChunkResult,
        batch: _Batch,
        *,
        advance: bool = True,
    ) -> None:
        """Record the chunk: its rejections, counters and (``advance``) where a resumed run
        starts; a chunk that was not written keeps the last checkpoint's place."""
        rejected = sorted(
            batch.rejected + result.rejected + batch.child_rejected, key=lambda r: r.row
        )
        ctx.stats = _add(ctx.stats, batch, result)
        if not advance:  # read and checked, but not committed
            ctx.stats = replace(ctx.stats, chunks_committed=ctx.stats.chunks_committed - 1)
        await self._save_rejections(conn, ctx, rejected, batch)
        room = max(MAX_ERRORS_SHOWN - len(ctx.job.errors), 0)
        await self._record(
            conn,
            ctx,
            [
                JobCheckpointed(
                    **self._env(ctx.job, ctx.cmd, 0),
                    job_id=ctx.job.id,
                    run_id=ctx.cmd.run_id,
                    last_row=batch.last_record if advance else ctx.job.last_row,
                    statistics=ctx.stats,
                    rejected=[_storable_row(r) for r in rejected[:room]],
                    percent=ctx.percent(batch.bytes_read) if advance else ctx.job.progress,
                    changes=result.changes[: max(MAX_ERRORS_SHOWN - len(ctx.job.changes), 0)],
                )
            ],
        )

    async def _record(self, conn: AsyncConnection, ctx: RunContext, events: list[JobEvent]) -> None:
        job = await record(conn, self.subjects, ctx.job, events)
        assert job is not None
        ctx.job = job

    async def _end(self, ctx: RunContext, status: str, error: ErrorInfo | None = None) -> None:
        async with self.engine.begin() as conn:
            job = await load(conn, ctx.job.id, lock=True)
            if job is None or job.run_id != ctx.cmd.run_id or job.status != "running":
                return
            ctx.job = job
            env = self._env(job, ctx.cmd, 0)
            event: JobEvent
            if error is None:
                event = JobCompleted(
                    **env, job_id=job.id, run_id=ctx.cmd.run_id, statistics=ctx.stats
                )
            else:
                event = JobFailed(
                    **env, job_id=job.id, run_id=ctx.cmd.run_id, error=error, statistics=ctx.stats
                )
            await self._record(conn, ctx, [event])
        self.relay.poke()
        message = error.message if error else ""
        await self._publish_progress(ctx, status, message)
        log.info(
            "job finished",
            job_id=job.id,
            status=status,
            error=message,
            **msgspec.to_builtins(ctx.stats),
        )

    # --- progress --------------------------------------------------------------------

    async def _maybe_progress(self, ctx: RunContext, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - ctx.last_progress >= PROGRESS_EVERY_SECONDS:
            ctx.last_progress = now
            await self._publish_progress(ctx, "running")

    async def _publish_progress(self, ctx: RunContext, status: str, message: str = "") -> None:
        s = ctx.stats
        if status == "running":
            percent = ctx.percent(ctx.bytes_read)
        else:  # the job's own figure, so the stream ends on what the job says
            percent = 100.0 if status == "completed" else ctx.job.progress
        progress = JobProgress(
            correlation_id=ctx.cmd.correlation_id,
            job_id=ctx.job.id,
            run_id=ctx.cmd.run_id,
            status=status,  # type: ignore[arg-type]
            rows_read=max(s.rows_read, ctx.record_no),
            rows_imported=s.rows_imported,
            rows_rejected=s.rows_rejected,
            percent=min(percent, 100.0),
            bytes_read=ctx.bytes_read,
            bytes_total=ctx.bytes_total,
            message=message,
        )
        try:
            await self.js.publish(
                self.subjects.progress("job", ctx.job.id), msgspec.json.encode(progress)
            )
        except Exception:  # progress is best effort; the job's state is in the database
            log.warning("progress not published", job_id=ctx.job.id, exc_info=True)

    @staticmethod
    async def _run_writes(conn: AsyncConnection, ctx: RunContext) -> RunWrites:
        """When this run first started and when each chunk it committed was written, in
        database time: a checkpoint is recorded in its chunk's transaction, so its time is
        the stamp of the chunk's rows (survives a resume)."""
        if ctx.writes is None:
            found = await conn.execute(
                select(events.c.type, events.c.recorded_at)
                .where(
                    events.c.stream == stream_of(ctx.job.id),
                    events.c.type.in_(["job.started", "job.checkpointed"]),
                    events.c.data["run_id"].astext == ctx.cmd.run_id,
                )
                .order_by(events.c.version)
            )
            times = [(kind, at) for kind, at in found]
            started = next(at for kind, at in times if kind == "job.started")
            checkpoints = sorted({at for kind, at in times if kind == "job.checkpointed"})
            ctx.writes = RunWrites(started, checkpoints)
        return ctx.writes

    @staticmethod
    async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        return driver
