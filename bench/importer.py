"""One importer or exporter process, driven over the bus the way the gateway drives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import msgspec
import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from contracts.base import Reply
from contracts.jobs import (
    TERMINAL_STATUSES,
    CreateJob,
    ExportFilter,
    ImportMode,
    JobFormat,
    JobOptions,
    JobProgress,
    RequestRun,
)
from contracts.jobs import UpdateJob as UpdateJobCmd
from contracts.subjects import Subjects
from services.core.storage import UPLOAD_SCHEME

__all__ = ["ExporterProcess", "ImporterProcess", "JobRun", "RssSampler", "ServiceProcess"]

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.05
MB = 1024 * 1024


class RssSampler:
    """Samples a process's resident set size every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                rss = int(self.process.memory_info().rss)
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / MB


@dataclass
class JobRun:
    """What one job did, as read back from the ``dm.jobs`` projection."""

    job_id: str
    status: str
    seconds: float
    server_seconds: float | None
    statistics: dict[str, Any]
    error_message: str
    peak_rss_mb: float
    rss_before_mb: float
    error_code: str = ""
    result_path: str = ""
    rows: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rows = int(self.statistics.get("rows_read", 0))


class ServiceProcess:
    """``python -m services.<service>`` with the bench's environment; one replica."""

    service = ""
    # the product's own knobs, passed through so a run can try other values
    passed_through: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        nats_url: str,
        database_url: str,
        prefix: str,
        imports_root: Path,
        log_path: Path,
    ) -> None:
        self.subjects = Subjects(prefix)
        self.nats_url = nats_url
        self.database_url = database_url
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
        env.update(
            {
                "DM_NATS_URL": nats_url,
                "DM_DATABASE_URL": database_url,
                "DM_BUS_PREFIX": prefix,
                "DM_IMPORTS_ROOT": str(imports_root),
                "DM_DATA_DIR": str(imports_root / f"{self.service}-data"),
                "DM_LOG_LEVEL": "WARNING",
                "DM_LOG_FORMAT": "json",
                "DM_WORKER_NAME": f"bench-{self.service}",
            }
        )
        for name in self.passed_through:
            if os.environ.get(name):
                env[name] = os.environ[name]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._nc: NatsClient | None = None
        self._db: asyncpg.Connection | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # --- life cycle ------------------------------------------------------------------

    async def start(self, wait_seconds: float = 60.0) -> None:
        self._spawn()
        self._nc = await nats.connect(self.nats_url)
        self._db = await asyncpg.connect(self.database_url)
        await self._wait_ready(wait_seconds)

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def _wait_ready(self, wait_seconds: float) -> None:
        """Ready once it answers a definition request (its log is at WARNING, so quiet)."""
        assert self._nc is not None
        assert self.process is not None
        probe = UpdateJobCmd(correlation_id="bench", actor="bench", job_id=str(uuid.uuid4()))
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited early; see {self.log_path}")
            try:
                await self._nc.request(
                    self.subjects.request(self.service, "update"),
                    msgspec.json.encode(probe),
                    timeout=2,
                )
                return
            except (NoRespondersError, NatsTimeoutError):
                await asyncio.sleep(0.1)
        raise RuntimeError(
            f"{self.service} not ready after {wait_seconds:.0f}s; see {self.log_path}"
        )

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None
        if self._db is not None:
            await self._db.close()
            self._db = None
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self.process = None

    def rss_mb(self) -> float:
        return float(psutil.Process(self.pid).memory_info().rss) / MB

    # --- jobs ------------------------------------------------------------------------

    async def _request(self, verb: str, cmd: msgspec.Struct) -> Reply:
        assert self._nc is not None
        msg = await self._nc.request(
            self.subjects.request(self.service, verb), msgspec.json.encode(cmd), timeout=30
        )
        return msgspec.json.decode(msg.data, type=Reply)

    async def _run(self, create: CreateJob, limit_seconds: float) -> JobRun:
        """Create and run one job; wall time from request_run to the terminal status."""
        job_id = create.job_id
        reply = await self._request("create", create)
        if not reply.ok:
            raise RuntimeError(f"create job refused: {reply.error}")
        rss_before = self.rss_mb()
        assert self._nc is not None
        # the clock stops at the job's terminal progress message, the moment a subscribed
        # user learns of it (published after the terminal state is committed); polling the
        # database alone added up to one poll interval to every job
        progress = await self._nc.subscribe(self.subjects.progress("job", job_id))
        try:
            with RssSampler(self.pid) as sampler:
                started = time.perf_counter()
                reply = await self._request(
                    "request_run", RequestRun(correlation_id=create.correlation_id,
                                              actor="bench", job_id=job_id)
                )  # fmt: skip
                if not reply.ok:
                    raise RuntimeError(f"request_run refused: {reply.error}")
                row, finished = await self._wait_terminal(job_id, limit_seconds, progress)
                seconds = finished - started
        finally:
            await progress.unsubscribe()
        stats = row["statistics"]
        stats = msgspec.json.decode(stats) if isinstance(stats, str | bytes) else dict(stats)
        server_seconds = None
        if row["started_at"] is not None and row["completed_at"] is not None:
            server_seconds = (row["completed_at"] - row["started_at"]).total_seconds()
        return JobRun(
            job_id=job_id,
            status=row["status"],
            seconds=seconds,
            server_seconds=server_seconds,
            statistics=stats,
            error_message=row["error_message"],
            peak_rss_mb=sampler.peak_mb,
            rss_before_mb=rss_before,
            error_code=await self._error_code(job_id) if row["status"] == "failed" else "",
            result_path=row["result_path"],
        )

    async def _wait_terminal(
        self, job_id: str, limit_seconds: float, progress: Any = None
    ) -> tuple[asyncpg.Record, float]:
        """The job's row once its status is terminal, and when that was learnt: from its
        progress messages (if subscribed), checked in the database every ``POLL_SECONDS``
        meanwhile."""
        assert self._db is not None
        assert self.process is not None
        deadline = time.monotonic() + limit_seconds
        while True:
            told = None
            if progress is not None:
                with contextlib.suppress(NatsTimeoutError):
                    while told is None:  # the messages waiting, then up to one poll interval
                        msg = await progress.next_msg(timeout=POLL_SECONDS)
                        if msgspec.json.decode(msg.data, type=JobProgress).status in (
                            TERMINAL_STATUSES
                        ):
                            told = time.perf_counter()
            else:
                await asyncio.sleep(POLL_SECONDS)
            row: asyncpg.Record | None = await self._db.fetchrow(
                "SELECT status, statistics, error_message, started_at, completed_at, result_path "
                "FROM dm.jobs WHERE id = $1",
                job_id,
            )
            if row is not None and row["status"] in TERMINAL_STATUSES:
                return row, told or time.perf_counter()
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} died during job {job_id}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} not finished after {limit_seconds:.0f}s")

    async def _error_code(self, job_id: str) -> str:
        assert self._db is not None
        data = await self._db.fetchval(
            "SELECT data FROM dm.events WHERE stream = $1 AND type = 'job.failed' "
            "ORDER BY version DESC LIMIT 1",
            f"job-{job_id}",
        )
        if data is None:
            return ""
        event = msgspec.json.decode(data) if isinstance(data, str | bytes) else data
        return str(event.get("error", {}).get("code", ""))


class ImporterProcess(ServiceProcess):
    """``python -m services.importer``: reads files under the bench's data directory."""

    service = "importer"
    passed_through = ("DM_IMPORT_CHUNK_SIZE",)

    async def run_job(
        self,
        file_path: str,
        *,
        fmt: JobFormat = "csv",
        mode: ImportMode = "insert",
        limit_seconds: float = 7_200.0,
    ) -> JobRun:
        """Create and run one import job; wall time from request_run to the terminal status."""
        job_id = str(uuid.uuid4())
        create = CreateJob(
            correlation_id=f"bench-{job_id}",
            actor="bench",
            job_id=job_id,
            title=f"bench {mode} {file_path}",
            job_type="import",
            model_name="users.User",
            format=fmt,
            file_path=file_path,
            options=JobOptions(mode=mode),
        )
        return await self._run(create, limit_seconds)


class ExporterProcess(ServiceProcess):
    """``python -m services.exporter``: its files go to the bus's object store."""

    service = "exporter"
    passed_through = ("DM_EXPORT_CHUNK_SIZE",)

    async def run_export(
        self,
        name_hint: str,
        *,
        fmt: JobFormat = "csv",
        filters: list[ExportFilter] | None = None,
        limit_seconds: float = 7_200.0,
    ) -> JobRun:
        """Create and run one export job of ``users.User``; ``result_path`` names its file."""
        job_id = str(uuid.uuid4())
        create = CreateJob(
            correlation_id=f"bench-{job_id}",
            actor="bench",
            job_id=job_id,
            title=f"bench export {name_hint}",
            job_type="export",
            model_name="users.User",
            format=fmt,
            file_path=name_hint,
            options=JobOptions(filters=list(filters or [])),
        )
        return await self._run(create, limit_seconds)

    async def download(self, result_path: str, dest: Path) -> float:
        """Seconds taken to copy the job's ``upload:<name>`` object from the store to ``dest``."""
        assert self._nc is not None
        if not result_path.startswith(UPLOAD_SCHEME):
            raise RuntimeError(f"unexpected export result_path {result_path!r}")
        name = result_path[len(UPLOAD_SCHEME) :]
        started = time.perf_counter()
        store = await self._nc.jetstream().object_store(self.subjects.object_store)
        with open(dest, "wb") as out:
            await store.get(name, writeinto=out)
        return time.perf_counter() - started
