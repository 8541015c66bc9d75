"""The embedded NATS and PostgreSQL start, serve, are reused on a second start, and stop."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats
import psutil
from sqlalchemy import text

from services.core.db import make_engine
from services.core.embedded import resolve_urls, start_nats, start_postgres
from services.core.settings import load_settings


async def test_nats_starts_serves_is_reused_and_stops(tmp_path: Path) -> None:
    server = start_nats(tmp_path)
    try:
        assert not server.reused
        assert server.url.startswith("nats://127.0.0.1:")
        assert (tmp_path / "nats" / "server.json").exists()
        client = await nats.connect(server.url)
        try:
            info = await client.jetstream().account_info()
            assert info.limits is not None
        finally:
            await client.close()

        again = start_nats(tmp_path)
        assert again.reused
        assert again.url == server.url
        assert again.pid == server.pid
    finally:
        server.stop()
    assert not psutil.pid_exists(server.pid)
    assert not (tmp_path / "nats" / "server.json").exists()


async def test_postgres_starts_serves_is_reused_and_stops(tmp_path: Path) -> None:
    server = start_postgres(tmp_path)
    try:
        assert server.url.startswith("postgresql://")
        assert "/dm?" in server.url
        conn = await asyncpg.connect(server.url)
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select current_database()") == "dm"
        finally:
            await conn.close()

        # the same URL through SQLAlchemy, as the services use it (unix socket via ?host=)
        engine = make_engine(server.url, pool_size=1)
        try:
            async with engine.connect() as sa_conn:
                assert (await sa_conn.execute(text("select 1"))).scalar_one() == 1
        finally:
            await engine.dispose()

        again = start_postgres(tmp_path)
        assert again.url == server.url
        assert again.reused
    finally:
        server.stop()
    assert not (server.pgdata / "postmaster.pid").exists()

    # a stopped server starts again on the same files
    restarted = start_postgres(tmp_path)
    try:
        assert not restarted.reused
        conn = await asyncpg.connect(restarted.url)
        await conn.close()
    finally:
        restarted.stop()


async def test_configured_urls_are_taken_as_they_are(tmp_path: Path) -> None:
    settings = load_settings(
        {},
        nats_url="nats://example:4222",
        database_url="postgresql://u@h/db",
        data_dir=str(tmp_path),
    )
    nats_url, database_url, stoppers = resolve_urls(settings)
    assert (nats_url, database_url, stoppers) == (
        "nats://example:4222",
        "postgresql://u@h/db",
        [],
    )
    assert not (tmp_path / "nats").exists()
