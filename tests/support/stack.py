"""The whole system as separate processes: gateway + importer on a test's own bus and db."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.auth import create_token, create_user
from services.core.db import make_engine
from services.core.settings import Settings
from tests.support.processes import free_port, running, service_env, wait_for_http, wait_for_log


@dataclass
class Stack:
    settings: Settings
    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def api(self, path: str) -> str:
        return f"{self.base_url}/api/data-management/{path}"


async def make_users(database_url: str, users: dict[str, bool]) -> dict[str, str]:
    engine = make_engine(database_url)
    tokens: dict[str, str] = {}
    try:
        async with engine.begin() as conn:
            for name, superuser in users.items():
                await create_user(conn, name, superuser=superuser)
                tokens[name] = await create_token(conn, name)
    finally:
        await engine.dispose()
    return tokens


@contextmanager
def run_stack(settings: Settings, workdir: Path, *, importers: int = 1) -> Iterator[Stack]:
    port = free_port()
    env = service_env(settings, DM_GATEWAY_PORT=str(port), DM_GATEWAY_HOST="127.0.0.1")
    stack = Stack(settings=settings, base_url=f"http://127.0.0.1:{port}")
    with ExitStack() as stack_ctx:
        for n in range(importers):
            log = workdir / f"importer-{n}.log"
            proc = stack_ctx.enter_context(
                running("services.importer", dict(env, DM_WORKER_NAME=f"importer-{n}"), log)
            )
            wait_for_log(log, "importer ready", proc)
            stack.logs.append(log)
        log = workdir / "exporter.log"
        proc = stack_ctx.enter_context(running("services.exporter", env, log))
        wait_for_log(log, "exporter ready", proc)
        stack.logs.append(log)
        log = workdir / "gateway.log"
        proc = stack_ctx.enter_context(running("services.gateway", env, log))
        wait_for_http(f"{stack.base_url}/healthz", proc, log)
        stack.logs.append(log)
        yield stack


@contextlib.asynccontextmanager
async def system(servers: Any, workdir: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """Gateway, importer and exporter on a database and bus prefix of their own, with the
    users admin (superuser), alice and bob."""
    from services.core.settings import load_settings
    from tests.support.servers import create_database, delete_streams, drop_database

    (workdir / "imports").mkdir(exist_ok=True)
    url, name = await create_database(servers)
    prefix = f"s{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        env={},
        nats_url=servers.nats_url,
        database_url=url,
        bus_prefix=prefix,
        imports_root=str(workdir / "imports"),
        data_dir=str(workdir / "data"),
        **overrides,
    )
    try:
        with run_stack(settings, workdir) as running:
            running.tokens = await make_users(url, {"admin": True, "alice": False, "bob": False})
            yield running
    finally:
        await delete_streams(servers, prefix)
        await drop_database(servers, name)
