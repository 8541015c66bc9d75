"""Database engine from the plain ``postgresql://`` URL of the settings.

No connection is opened at import time; callers build an engine with ``make_engine``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["asyncpg_dsn", "make_engine", "sqlalchemy_url"]


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` → ``postgresql+asyncpg://...`` (SQLAlchemy's driver form)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme) :]
    return url


def asyncpg_dsn(url: str) -> str:
    """The plain form asyncpg and psql take."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def make_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
    )
