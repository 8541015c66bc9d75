"""Nested JSON is kept whole in a column that holds JSON, and refused anywhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.subjects import Subjects
from services.core.settings import Settings
from tests.support.bus_client import run_job
from tests.support.processes import importer_with_tables

pytestmark = pytest.mark.e2e


async def test_nested_objects_go_into_a_json_column_and_nowhere_else(
    settings: Settings, subjects: Subjects, imports_root: Path, tmp_path: Path
) -> None:
    db = await asyncpg.connect(settings.database_url)
    await db.execute(
        "CREATE SCHEMA uni; CREATE TABLE uni.profiles "
        "(username text PRIMARY KEY, details jsonb, notes text)"
    )
    items: list[dict[str, Any]] = [
        {"username": "a1", "details": {"name": {"fa": "سارا", "en": "Sara"}, "tags": [1, 2]}},
        {"username": "a2", "details": [10**20, "x"], "notes": "plain"},
        {"username": "a3", "notes": {"oops": True}},
    ]
    (imports_root / "profiles.json").write_text(json.dumps(items, ensure_ascii=False), "utf-8")
    try:
        async with importer_with_tables(settings, "uni.profiles", tmp_path / "importer.log") as nc:
            job = await run_job(
                nc, db, subjects, file_path="profiles.json", fmt="json", model="uni.profiles"
            )
        stored = {r["username"]: r for r in await db.fetch("SELECT * FROM uni.profiles")}
    finally:
        await db.close()
    assert job["status"] == "completed", job["error_message"]
    assert sorted(stored) == ["a1", "a2"]
    assert json.loads(stored["a1"]["details"]) == items[0]["details"]
    assert json.loads(stored["a2"]["details"]) == [10**20, "x"]  # every digit kept
    [error] = job["errors"]
    assert (error["row"], error["column"]) == (3, "notes")
    assert "map it to a JSON column" in error["message"]
