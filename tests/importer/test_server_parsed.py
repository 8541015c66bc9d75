"""Columns PostgreSQL's own input reads (macaddr, an enum): the loader sends them as CSV, finds
the cells PostgreSQL refuses, and a resumed run remembers the keys loaded before it."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from contracts.jobs import JobOptions
from services.core.catalogue import Model
from services.core.catalogue.reflect import reflect_models
from services.core.db import make_engine
from services.importer.csv_source import RecordBatch
from services.importer.loader import ChunkLoader, RunWrites
from services.importer.validate import RowValidator

HEADER = ["mac", "level", "note"]


async def _model(database_url: str, conn: asyncpg.Connection) -> Model:
    schema = f"s{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"CREATE SCHEMA {schema}; CREATE TYPE {schema}.level AS ENUM ('bsc', 'msc'); "
        f"CREATE TABLE {schema}.devices (mac macaddr PRIMARY KEY, level {schema}.level, note text)"
    )
    engine = make_engine(database_url)
    try:
        async with engine.connect() as sa:
            models = await reflect_models(sa, [f"{schema}.devices"], {})
    finally:
        await engine.dispose()
    return models[f"{schema}.devices"]


def _rows(model: Model, cells: list[list[str]], first: int = 2) -> list[tuple[object, ...]]:
    validator = RowValidator(model, HEADER, {}, JobOptions())
    checked = validator.check_rows(RecordBatch(list(range(first, first + len(cells))), cells))
    assert not checked.rejected, checked.rejected
    return checked.valid


async def test_refused_cells_are_rejected_and_a_resumed_run_remembers_loaded_keys(
    database_url: str, conn: asyncpg.Connection
) -> None:
    model = await _model(database_url, conn)
    loader = ChunkLoader(model, [f for f in model.fields if f.name in HEADER], "upsert")
    assert not loader.direct  # no binary COPY for macaddr
    await loader.prepare(conn)
    now = await conn.fetchval("SELECT now()")
    assert isinstance(now, datetime)
    started = RunWrites(now)
    rows = _rows(
        model,
        [
            ["08:00:2b:01:02:03", "msc", "a"],
            ["nope", "bsc", "b"],
            ["08:00:2b:01:02:05", "phd", ""],
            ["z" * 5000, "bsc", "long"],
        ],
    )
    async with conn.transaction():
        result = await loader.load(conn, rows, started)
    assert [(r.row, r.column) for r in result.rejected] == [(3, "mac"), (4, "level"), (5, "mac")]
    assert "macaddr" in result.rejected[0].message
    long = result.rejected[2]  # shown shortened, like every rejected value
    assert long.value == "z" * 200 + "…"
    assert len(long.message) == 201
    assert result.inserted == 1

    # a resumed run's loader (a new session) learns the key loaded before its checkpoint
    resumed = ChunkLoader(model, loader.fields, "upsert")
    await resumed.prepare(conn)
    async with conn.transaction():
        await resumed.remember_loaded(conn, rows[:1])
    again = _rows(model, [["08:00:2b:01:02:03", "bsc", "again"]], first=10)
    async with conn.transaction():
        result = await resumed.load(conn, again, started)
    assert [(r.row, "already in row 2" in r.message) for r in result.rejected] == [(10, True)]
    stored = await conn.fetch(f"SELECT mac::text, level::text, note FROM {model.schema}.devices")
    assert [tuple(r) for r in stored] == [("08:00:2b:01:02:03", "msc", "a")]
