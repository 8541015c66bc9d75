"""Apply the versioned migrations (Alembic), safely from several processes at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["migrate"]

_LOCK_KEY = 7_331_402  # advisory lock: only one process migrates at a time
_SCRIPTS = Path(__file__).with_name("migrations")


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS dm"))
        await conn.run_sync(_upgrade)
