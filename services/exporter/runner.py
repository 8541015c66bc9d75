"""One run of an export job: select with a server-side cursor, write, store, finish.

Rows are fetched ``DM_EXPORT_CHUNK_SIZE`` at a time and written straight to a temporary
file, which then goes to the object store under ``exports/<job>/<run>-<date>.<ext>``, so
each scheduled run leaves its own dated file and any gateway replica can serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from nats.js.api import ObjectMeta, ObjectMetaOptions

from contracts.base import ErrorInfo
from contracts.jobs import (
    ExecuteJob,
    JobCancelled,
    JobCheckpointed,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobStatistics,
)
from services.core.catalogue import UnknownModelError, get_model
from services.core.catalogue.calendar import format_jalali
from services.core.jobs.lease import RunInterrupted, is_transient, job_lease
from services.core.jobs.runs import claim_run, run_envelope
from services.core.jobs.state import JobState
from services.core.jobs.store import load, record
from services.core.jobs.worker_app import RunnerParts
from services.core.logs import get_logger
from services.core.storage import UPLOAD_SCHEME
from services.exporter.errors import ExportFailure
from services.exporter.piping import ChunkPipe
from services.exporter.query import ExportQuery, build_query
from services.exporter.writers import open_writer

__all__ = ["ExportRunner"]

log = get_logger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
# the CSV stream: object-store chunk size (at most the server's max_payload), and the
# pause after a COPY batch smaller than SMALL_COPY_BATCH (see _stream_csv)
OBJECT_CHUNK_SIZE = 512 * 1024
SMALL_COPY_BATCH = 64 * 1024
COPY_GATHER_SECONDS = 0.001


def _jalali_dates(row: Any) -> tuple[Any, ...]:
    """Dates written in the Solar Hijri calendar (``1402/07/15``) for users who read them so;
    date-times keep their exact instant."""
    return tuple(
        format_jalali(v) if isinstance(v, date) and not isinstance(v, datetime) else v for v in row
    )


class _Cancelled(Exception):
    pass


class ExportRunner:
    def __init__(self, parts: RunnerParts) -> None:
        self.engine = parts.engine
        self.js = parts.js
        self.subjects = parts.subjects
        self.relay = parts.relay
        self.worker = parts.worker
        self.chunk_size = parts.settings.export_chunk_size

    async def run(self, cmd: ExecuteJob) -> None:
        async with job_lease(self.engine, cmd.job_id):
            job = await self._claim(cmd)
            if job is None:
                return
            stats = JobStatistics()
            try:
                result, stats = await self._export(job, cmd)
            except _Cancelled:
                return
            except ExportFailure as e:
                await self._end(
                    job.id,
                    cmd,
                    JobFailed,
                    statistics=stats,
                    error=ErrorInfo(code=e.code, message=e.message),
                )
                return
            except Exception as e:
                if is_transient(e) or isinstance(e, RunInterrupted):
                    raise  # redelivered, and written afresh by the next attempt
                log.exception("export stopped on an unexpected error", job_id=job.id)
                message = f"the export stopped on an unexpected error ({type(e).__name__}: {e})"
                await self._end(
                    job.id,
                    cmd,
                    JobFailed,
                    statistics=stats,
                    error=ErrorInfo(code="internal_error", message=message),
                )
                return
            await self._end(job.id, cmd, JobCompleted, statistics=stats, result_path=result)

    async def give_up(self, cmd: ExecuteJob, message: str) -> None:
        """Fail the run for good (a command that keeps failing to run)."""
        await self._end(
            cmd.job_id,
            cmd,
            JobFailed,
            statistics=JobStatistics(),
            error=ErrorInfo(code="gave_up", message=message),
        )

    async def _claim(self, cmd: ExecuteJob) -> JobState | None:
        # an export has no useful checkpoint: a resumed run writes its file afresh
        job = await claim_run(self.engine, self.subjects, cmd, self.worker, resumable=False)
        self.relay.poke()  # a started run, or one failed for killing its worker again and again
        return job

    def _env(self, job: JobState, cmd: ExecuteJob, offset: int) -> dict[str, Any]:
        return run_envelope(job, cmd, offset)

    async def _export(self, job: JobState, cmd: ExecuteJob) -> tuple[str, JobStatistics]:
        try:
            model = get_model(job.model_name)
        except UnknownModelError as e:
            raise ExportFailure("unknown_model", str(e)) from e
        opts = job.options
        query = build_query(
            model, opts.fields, opts.filters, opts.order_by, escape_formulas=opts.escape_formulas
        )
        name = self._object_name(job, cmd)
        store = await self.js.object_store(self.subjects.object_store)
        if job.format == "csv" and opts.calendar != "jalali":
            written = await self._stream_csv(query, store, name)
            return UPLOAD_SCHEME + name, JobStatistics(rows_read=written, rows_imported=written)
        fd, tmp = tempfile.mkstemp(prefix="dm-export-", suffix=f".{job.format}")
        os.close(fd)
        try:
            written = await self._write(job, cmd, query, Path(tmp))
            with open(tmp, "rb") as source:
                await store.put(name, source)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return UPLOAD_SCHEME + name, JobStatistics(rows_read=written, rows_imported=written)

    async def _stream_csv(self, query: ExportQuery, store: Any, name: str) -> int:
        """CSV straight from PostgreSQL's COPY (formulas neutralised in SQL, UTF-8 with a
        BOM) into the object store while it is produced: no temporary file, no second pass."""
        # fewer, larger chunks: each is a publish and an acknowledgement (the library's
        # default is 128 KiB); a chunk has to fit in one NATS message (1 MiB by default)
        chunk_size = OBJECT_CHUNK_SIZE
        pipe = ChunkPipe(piece_size=chunk_size)

        async def sink(data: bytes) -> None:
            await pipe.feed(data)
            if len(data) < SMALL_COPY_BATCH:
                # asyncpg's cost is per batch it hands over, and it hands over whatever
                # has arrived: a short pause lets COPY's output gather in the socket
                await asyncio.sleep(COPY_GATHER_SECONDS)

        async def produce() -> int:
            try:
                await pipe.feed("\ufeff".encode())
                async with self.engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    assert raw is not None
                    status = await raw.copy_from_query(
                        query.csv_sql,
                        *query.args,
                        output=sink,
                        format="csv",
                        header=True,
                    )
                return int(str(status).rsplit(" ", 1)[-1])
            finally:
                await pipe.finish()

        producing = asyncio.create_task(produce())
        meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=chunk_size))
        try:
            await store.put(name, pipe, meta=meta)
            return await producing
        except BaseException:
            pipe.discard()  # no worker thread is left waiting on the pipe
            producing.cancel()
            with contextlib.suppress(BaseException):
                await producing
            with contextlib.suppress(Exception):
                await store.delete(name)  # never leave half a file behind
            raise

    def _object_name(self, job: JobState, cmd: ExecuteJob) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = Path(job.file_path).stem if job.file_path else job.model_name.replace(".", "_")
        return f"exports/{job.id}/{base}-{stamp}-{cmd.run_id[:8]}.{job.format}"

    async def _write(self, job: JobState, cmd: ExecuteJob, query: ExportQuery, path: Path) -> int:
        writer = open_writer(
            job.format,
            path,
            query.columns,
            job.options.time_zone,
            escape_formulas=job.options.escape_formulas,
        )
        to_jalali = job.options.calendar == "jalali"
        written = 0
        last = 0.0
        try:
            async with self.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                total = int(await raw.fetchval(query.count_sql, *query.args))
                async with raw.transaction(isolation="repeatable_read", readonly=True):
                    cursor = raw.cursor(query.sql, *query.args, prefetch=self.chunk_size)
                    async for row in cursor:
                        writer.write(_jalali_dates(row) if to_jalali else tuple(row))
                        written += 1
                        if (
                            written % self.chunk_size == 0
                            and time.monotonic() - last > PROGRESS_EVERY_SECONDS
                        ):
                            last = time.monotonic()
                            await self._check_cancel(job, cmd, written)
                            await self._progress(job, cmd, "running", written, total)
        finally:
            writer.close()
        return written

    async def _check_cancel(self, job: JobState, cmd: ExecuteJob, written: int) -> None:
        async with self.engine.begin() as conn:
            current = await load(conn, job.id, lock=True)
            if current is None or current.run_id != cmd.run_id or current.status != "running":
                raise _Cancelled
            if current.cancel_requested:
                stats = JobStatistics(rows_read=written)
                await record(
                    conn,
                    self.subjects,
                    current,
                    [
                        JobCancelled(
                            **self._env(current, cmd, 0),
                            job_id=job.id,
                            run_id=cmd.run_id,
                            statistics=stats,
                        )
                    ],
                )
                self.relay.poke()
                await self._progress(job, cmd, "cancelled", written, written)
                raise _Cancelled
            await record(
                conn,
                self.subjects,
                current,
                [
                    JobCheckpointed(
                        **self._env(current, cmd, 0),
                        job_id=job.id,
                        run_id=cmd.run_id,
                        last_row=written,
                        statistics=JobStatistics(rows_read=written),
                    )
                ],
            )

    async def _end(
        self, job_id: str, cmd: ExecuteJob, kind: type[JobCompleted | JobFailed], **fields: Any
    ) -> None:
        async with self.engine.begin() as conn:
            job = await load(conn, job_id, lock=True)
            if job is None or job.run_id != cmd.run_id or job.status != "running":
                return
            event = kind(**self._env(job, cmd, 0), job_id=job_id, run_id=cmd.run_id, **fields)
            await record(conn, self.subjects, job, [event])
        self.relay.poke()
        stats: JobStatistics = fields["statistics"]
        status = "completed" if kind is JobCompleted else "failed"
        error = fields.get("error")
        await self._progress(
            job, cmd, status, stats.rows_read, stats.rows_read, error.message if error else ""
        )
        log.info("export finished", job_id=job_id, status=status, rows=stats.rows_read)

    async def _progress(
        self,
        job: JobState,
        cmd: ExecuteJob,
        status: str,
        written: int,
        total: int,
        message: str = "",
    ) -> None:
        percent = 100.0 if status == "completed" else round(100.0 * written / max(total, 1), 2)
        progress = JobProgress(
            correlation_id=cmd.correlation_id,
            job_id=job.id,
            run_id=cmd.run_id,
            status=status,  # type: ignore[arg-type]
            rows_read=written,
            rows_imported=written,
            rows_rejected=0,
            percent=min(percent, 100.0),
            message=message,
        )
        with contextlib.suppress(Exception):
            await self.js.publish(
                self.subjects.progress("job", job.id), msgspec.json.encode(progress)
            )
