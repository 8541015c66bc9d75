"""Where the test servers come from: the environment, testcontainers, or embedded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from services.core.embedded import start_nats, start_postgres


@dataclass
class Servers:
    nats_url: str
    admin_database_url: str
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def database_url_for(self, name: str) -> str:
        parts = urlsplit(self.admin_database_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()


def start_servers(tmp: Path) -> Servers:
    stoppers: list[Callable[[], None]] = []
    nats_url = os.environ.get("DM_NATS_URL", "")
    db_url = os.environ.get("DM_DATABASE_URL", "")
    want_containers = os.environ.get("DM_TEST_CONTAINERS") == "1" and shutil.which("docker")
    if want_containers and (not nats_url or not db_url):
        nats_url, db_url = _containers(nats_url, db_url, stoppers)
    if not nats_url:
        server = start_nats(tmp)
        stoppers.append(server.stop)
        nats_url = server.url
    if not db_url:
        pg = start_postgres(tmp)
        stoppers.append(pg.stop)
        db_url = pg.admin_url
    return Servers(nats_url=nats_url, admin_database_url=db_url, stoppers=stoppers)


def _containers(
    nats_url: str, db_url: str, stoppers: list[Callable[[], None]]
) -> tuple[str, str]:  # pragma: no cover
    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer

    if not db_url:
        pg = PostgresContainer("postgres:16-alpine", driver=None).start()
        stoppers.append(pg.stop)
        db_url = pg.get_connection_url()
    if not nats_url:
        container = DockerContainer("nats:2.10-alpine").with_command("-js").with_exposed_ports(4222)
        container.start()
        stoppers.append(container.stop)
        nats_url = f"nats://{container.get_container_host_ip()}:{container.get_exposed_port(4222)}"
    return nats_url, db_url


async def create_database(servers: Servers) -> tuple[str, str]:
    """A new migrated database; returns (url, name)."""
    import uuid

    import asyncpg

    from services.core.db import make_engine
    from services.core.migrate import migrate

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = servers.database_url_for(name)
    engine = make_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return url, name


async def drop_database(servers: Servers, name: str) -> None:
    import asyncio

    import asyncpg

    # a killed worker's backends may still be going away: try again briefly
    for attempt in range(5):
        try:
            admin = await asyncpg.connect(servers.admin_database_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            return
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)


async def delete_streams(servers: Servers, prefix: str) -> None:
    import contextlib

    import nats

    from contracts.subjects import Subjects

    nc = await nats.connect(servers.nats_url)
    try:
        js = nc.jetstream()
        base = Subjects(prefix)
        for stream in (
            base.commands_stream,
            base.events_stream,
            base.progress_stream,
            f"OBJ_{base.object_store}",
        ):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
    finally:
        await nc.close()
