"""ChunkLoader's shortcuts against a real PostgreSQL: copying a chunk straight into the table,
counting a set-based insert or upsert, and falling back to the careful path whenever the
shortcut's bet is lost, with the same rows stored and the same reasons given."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import asyncpg
import pytest

from contracts.jobs import JobOptions
from services.core.catalogue import Field, get_model
from services.importer.csv_source import RecordBatch
from services.importer.loader import ChunkLoader, ChunkResult, RunWrites
from services.importer.validate import RowValidator
from tests.support.people import FIELDS, person

MODEL = get_model("users.User")


def _rows(people: list[dict[str, str]], first_line: int = 2) -> list[tuple[object, ...]]:
    validator = RowValidator(MODEL, list(FIELDS), {}, JobOptions())
    lines = list(range(first_line, first_line + len(people)))
    checked = validator.check_rows(RecordBatch(lines, [[p[f] for f in FIELDS] for p in people]))
    assert not checked.rejected, checked.rejected
    return checked.valid


async def _load(
    conn: asyncpg.Connection, loader: ChunkLoader, rows: list[tuple[object, ...]], run: RunWrites
) -> ChunkResult:
    """One chunk in its own transaction, its time kept as the runner keeps it."""
    async with conn.transaction():
        written_at = await conn.fetchval("SELECT now()")
        result = await loader.load(conn, rows, run)
    run.times.append(written_at)
    return result


async def _started(conn: asyncpg.Connection) -> RunWrites:
    value = await conn.fetchval("SELECT now()")
    assert isinstance(value, datetime)
    return RunWrites(value)


async def test_new_rows_go_straight_in_and_a_repeated_key_takes_the_careful_path(
    conn: asyncpg.Connection,
) -> None:
    stored_before = person(1)
    loader = ChunkLoader(MODEL, _fields(), "insert")
    await loader.prepare(conn)
    started = await _started(conn)
    first = await _load(conn, loader, _rows([stored_before]), started)
    assert (first.inserted, first.rejected) == (1, [])

    started = await _started(conn)  # a new run
    fresh = [person(i) for i in range(2, 12)]
    result = await _load(conn, loader, _rows(fresh), started)
    assert (result.inserted, result.rejected, result.route) == (10, [], "copied")

    again = [person(12), person(3), stored_before, person(13)]  # 3: this run; 1: before it
    result = await _load(conn, loader, _rows(again, first_line=20), started)
    assert (result.inserted, result.route) == (2, "accounted")
    reasons = {r.row: r.message for r in result.rejected}
    assert set(reasons) == {21, 22}
    assert "an earlier row of this file already has it" in reasons[21]
    assert "already exists" in reasons[22]
    count = await conn.fetchval("SELECT count(*) FROM users_user")
    assert count == 13


async def test_an_empty_cell_of_a_column_with_a_default_gets_the_default(
    conn: asyncpg.Connection,
) -> None:
    loader = ChunkLoader(MODEL, _fields(), "insert")
    await loader.prepare(conn)
    people = [dict(person(i), is_active="") for i in range(1, 4)]
    result = await _load(conn, loader, _rows(people), await _started(conn))
    assert (result.inserted, result.route) == (3, "counted")
    flags = await conn.fetch("SELECT is_active FROM users_user")
    assert [r["is_active"] for r in flags] == [True, True, True]


async def test_upsert_counts_and_names_a_row_whose_email_is_someone_elses(
    conn: asyncpg.Connection,
) -> None:
    loader = ChunkLoader(MODEL, _fields(), "upsert")
    await loader.prepare(conn)
    base = [person(i) for i in range(1, 6)]
    result = await _load(conn, loader, _rows(base), await _started(conn))
    assert (result.inserted, result.updated) == (5, 0)

    loader = ChunkLoader(MODEL, _fields(), "upsert")  # a new run, as a new job gets
    await loader.prepare(conn)
    started = await _started(conn)
    changed = [dict(p, first_name="Changed") for p in base[:3]]
    result = await _load(conn, loader, _rows(changed), started)
    assert (result.inserted, result.updated, result.unchanged) == (0, 3, 0)
    assert result.route == "counted"

    thief = dict(person(9), email=base[1]["email"])
    mixed = [dict(base[3], last_name="New"), base[4], thief, person(10)]
    result = await _load(conn, loader, _rows(mixed, first_line=30), started)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert result.route == "accounted"
    [clash] = result.rejected
    assert clash.row == 32
    assert clash.column == "email"
    assert f"already belongs to username {base[1]['username']!r}" in clash.message
    stored = await conn.fetchval(
        "SELECT username FROM users_user WHERE email = $1", base[1]["email"].lower()
    )
    assert stored == base[1]["username"]


def _fields() -> list[Field]:
    return list(RowValidator(MODEL, list(FIELDS), {}, JobOptions()).fields)


@pytest.mark.parametrize("mode", ["upsert", "skip"])
async def test_a_key_repeated_in_a_later_chunk_is_rejected_even_when_nothing_was_written(
    conn: asyncpg.Connection, mode: str
) -> None:
    """Regression: when a key's first row left its stored record as it was (unchanged, or
    skipped), a later chunk repeating the key updated the record (upsert) or counted a
    second skip, because the table showed nothing written by this run."""
    stored = person(40)
    setup = ChunkLoader(MODEL, _fields(), "insert")
    await setup.prepare(conn)
    await _load(conn, setup, _rows([stored]), await _started(conn))

    loader = ChunkLoader(MODEL, _fields(), mode)
    await loader.prepare(conn)
    started = await _started(conn)
    first = await _load(conn, loader, _rows([stored, person(41)]), started)
    assert not first.rejected
    changed = dict(stored, first_name="Changed")
    later = await _load(conn, loader, _rows([person(42), changed], first_line=30), started)
    assert [(r.row, r.column) for r in later.rejected] == [(31, "username")]
    assert "already in row 2 of this file" in later.rejected[0].message
    name = await conn.fetchval(
        "SELECT first_name FROM users_user WHERE username = $1", stored["username"]
    )
    assert name == stored["first_name"]


@pytest.mark.parametrize("mode", ["insert", "upsert", "skip"])
async def test_another_job_writing_the_same_records_meanwhile_changes_no_outcome(
    conn: asyncpg.Connection, mode: str
) -> None:
    """Two jobs on overlapping keys at once. Regressions: a record the other job wrote after
    this run started was taken for one this run wrote (its stamp was later than the run's
    start), so the upsert refused it as "an earlier row of this file"; and, the other way
    round, a key this run wrote and the other job then wrote again no longer looked like
    this run's, so a later repeat of it in the file was applied instead of rejected."""
    ours = ChunkLoader(MODEL, _fields(), mode)
    await ours.prepare(conn)
    run = await _started(conn)
    first = await _load(conn, ours, _rows([person(60), person(61)]), run)
    assert (first.inserted, first.rejected) == (2, [])

    other = ChunkLoader(MODEL, _fields(), "upsert")  # another job, started after ours
    await other.prepare(conn)
    theirs = [person(62), dict(person(60), first_name="Theirs")]
    written = await _load(conn, other, _rows(theirs, first_line=7), await _started(conn))
    assert (written.inserted, written.updated) == (1, 1)

    later = [
        dict(person(62), first_name="Ours"),  # the other job's record: not a repeat
        dict(person(61), first_name="Again"),  # a repeat of row 3 of this file
        dict(person(60), first_name="Again"),  # a repeat of row 2, rewritten meanwhile
        person(63),
    ]
    result = await _load(conn, ours, _rows(later, first_line=40), run)
    reasons = {r.row: r.message for r in result.rejected}
    names = dict(await conn.fetch("SELECT username, first_name FROM users_user"))
    assert names[person(61)["username"]] == person(61)["first_name"]
    assert names[person(60)["username"]] == "Theirs"
    if mode == "upsert":
        assert "an earlier row of this file" in reasons.pop(41)
        assert "an earlier row of this file" in reasons.pop(42)
        assert (result.inserted, result.updated, reasons) == (1, 1, {})
        assert names[person(62)["username"]] == "Ours"
    elif mode == "skip":  # a skip writes neither: the rewritten repeat counts as skipped
        assert "an earlier row of this file" in reasons.pop(41)
        assert (result.inserted, result.skipped, reasons) == (1, 2, {})
        assert names[person(62)["username"]] == person(62)["first_name"]
    else:
        assert "of this file" in reasons.pop(41)
        assert "already exists" in reasons.pop(42)  # rejected; its first row is not known
        assert "already exists" in reasons[40]
        assert "of this file" not in reasons[40]
        assert result.inserted == 1
        assert names[person(62)["username"]] == person(62)["first_name"]


async def test_on_a_table_without_a_change_stamp_a_key_repeated_in_a_later_chunk_is_rejected(
    conn: asyncpg.Connection,
) -> None:
    """An operator's table may have no column stamping each write, so the table cannot tell
    the rows this run wrote: every key is remembered (regression: the later row won)."""
    unstamped = dataclasses.replace(MODEL, touched_column=None)
    fields = list(RowValidator(unstamped, list(FIELDS), {}, JobOptions()).fields)
    loader = ChunkLoader(unstamped, fields, "upsert")
    await loader.prepare(conn)
    started = await _started(conn)
    first = await _load(conn, loader, _rows([person(50)]), started)
    assert (first.inserted, first.rejected) == (1, [])
    later = await _load(
        conn, loader, _rows([dict(person(50), first_name="Later")], first_line=900), started
    )
    assert [r.row for r in later.rejected] == [900]
    assert "already in row 2 of this file" in later.rejected[0].message
    name = await conn.fetchval(
        "SELECT first_name FROM users_user WHERE username = $1", person(50)["username"]
    )
    assert name == person(50)["first_name"]


async def test_upsert_keeps_a_stored_value_where_a_cell_with_a_default_is_empty(
    conn: asyncpg.Connection,
) -> None:
    """An empty cell of a column with a database default gives new records the default and
    leaves stored ones as they are, as the dry run says. Before, the upsert set the default
    on stored records too: an empty is_active reactivated a deactivated user."""
    loader = ChunkLoader(MODEL, _fields(), "upsert")
    await loader.prepare(conn)
    stored = [person(i) for i in range(1, 4)]
    await _load(conn, loader, _rows(stored), await _started(conn))
    await conn.execute("UPDATE users_user SET is_active = false WHERE username = $1", "p0000002")

    loader = ChunkLoader(MODEL, _fields(), "upsert")  # a new run
    await loader.prepare(conn)
    again = [dict(p, is_active="", faculty="Law") for p in stored] + [dict(person(9), is_active="")]
    result = await _load(conn, loader, _rows(again), await _started(conn))
    assert (result.inserted, result.updated, result.rejected) == (1, 3, [])
    flags = await conn.fetch("SELECT username, is_active, faculty FROM users_user ORDER BY 1")
    assert [(r["username"], r["is_active"], r["faculty"]) for r in flags] == [
        ("p0000001", True, "Law"),
        ("p0000002", False, "Law"),
        ("p0000003", True, "Law"),
        ("p0000009", True, "Science"),
    ]


@pytest.mark.parametrize("enforced", [True, False], ids=["table-refuses", "table-allows"])
async def test_a_value_repeated_inside_a_chunk_is_named_whether_or_not_the_table_refuses_it(
    conn: asyncpg.Connection, enforced: bool
) -> None:
    """A table whose unique indexes refuse every repeat lets a chunk be copied in without
    the check in Python: a repeat then fails the COPY and the staged path names the row.
    A table without them (an operator's own) is checked in Python first, as before."""
    outer = conn.transaction()
    await outer.start()  # the indexes dropped below come back with the rollback
    try:
        if not enforced:
            for name in await conn.fetch(
                "SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'users_user'::regclass AND contype = 'u'"
            ):
                await conn.execute(f'ALTER TABLE users_user DROP CONSTRAINT "{name[0]}" CASCADE')
            for name in await conn.fetch(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = 'users_user'::regclass AND indisunique AND NOT indisprimary"
            ):
                await conn.execute(f"DROP INDEX {name[0]} CASCADE")
        loader = ChunkLoader(MODEL, _fields(), "insert")
        await loader.prepare(conn)
        twin = dict(person(61), national_id=person(60)["national_id"])
        result = await _load(
            conn, loader, _rows([person(60), twin, person(62)]), await _started(conn)
        )
        assert [(r.row, r.column) for r in result.rejected] == [(3, "national_id")]
        assert "already in row 2 of this file" in result.rejected[0].message
        assert result.inserted == 2
        stored = await conn.fetch("SELECT username FROM users_user ORDER BY 1")
        assert [r[0] for r in stored] == [person(60)["username"], person(62)["username"]]
        # refused by the table, the chunk took the staged path; checked first in Python,
        # the rest of it could still be copied straight in
        assert (result.route == "copied") is not enforced
    finally:
        await outer.rollback()
