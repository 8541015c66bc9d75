"""Real NATS JetStream and real PostgreSQL for every test, never mocks.

Servers come from ``DM_NATS_URL`` / ``DM_DATABASE_URL`` when set; with
``DM_TEST_CONTAINERS=1`` and a Docker engine, from testcontainers; otherwise embedded ones
start once per session under a temporary folder. Each test gets its own database and its
own bus prefix (so its own streams and subjects).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from contracts.subjects import Subjects
from services.core.settings import Settings, load_settings
from tests.support.servers import (
    Servers,
    create_database,
    delete_streams,
    drop_database,
    start_servers,
)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # not under pytest's numbered temp dirs: a second pytest session running at the same
    # time prunes those, which would pull the data folder from under a running server
    folder = Path(tempfile.mkdtemp(prefix="dm-test-servers-"))
    started = start_servers(folder)
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def database_url(servers: Servers) -> AsyncIterator[str]:
    """A fresh, migrated database for this test, dropped afterwards."""
    url, name = await create_database(servers)
    yield url
    await drop_database(servers, name)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to the test's database (for the loader's and the export
    query's own tests)."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def subjects(servers: Servers) -> AsyncIterator[Subjects]:
    """A bus prefix of this test's own; its streams are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield Subjects(prefix)
    await delete_streams(servers, prefix)


@pytest.fixture
def imports_root(tmp_path: Path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    return root


@pytest.fixture
def settings(
    servers: Servers, database_url: str, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> Settings:
    return load_settings(
        env={},
        nats_url=servers.nats_url,
        database_url=database_url,
        bus_prefix=subjects.prefix,
        imports_root=str(imports_root),
        data_dir=str(tmp_path / "data"),
        import_chunk_size=1000,
    )


DATA = Path(__file__).parent / "data"


@pytest.fixture
def bad_rows_file(imports_root: Path) -> Path:
    target = imports_root / "users_10k_bad.csv"
    shutil.copy(DATA / "users_10k_bad.csv", target)
    return target


def pytest_report_header() -> str:
    source = "env" if os.environ.get("DM_NATS_URL") else "embedded/testcontainers"
    return f"servers: {source}"
