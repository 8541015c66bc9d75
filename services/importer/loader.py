"""Set-based loading of one chunk: COPY into a staging table, then one INSERT ... SELECT.

Conflicts become rejected rows with their line and a message instead of failing the chunk:
duplicates inside the chunk are found in Python, clashes with stored rows in SQL.
All SQL names come from the catalogue, never from the user.

Two optimistic shortcuts keep the common case near the speed of a plain COPY, each inside
a savepoint so that a refusal costs only a retry on the careful path: a chunk of new rows is
copied straight into the table, and a chunk that the insert writes whole is counted rather
than accounted row by row.

A row is a tuple: its line in the file, then its values in column order.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any

import asyncpg

from contracts.jobs import RejectedRow, RowChange
from services.core.catalogue import Field, Model
from services.importer.copy_text import CopyData, parsed_by_server, rows_payload
from services.importer.errors import JobFailure
from services.importer.rows import column_of
from services.importer.validate import MAX_VALUE_SHOWN

__all__ = ["ChunkLoader", "ChunkResult", "Row", "RunWrites", "quote_ident"]

Row = tuple[Any, ...]
# after a shortcut did not work for a chunk, this many chunks take the careful path before
# trying it again (a file that repeats stored keys would otherwise pay twice on every chunk)
DIRECT_COOLDOWN_CHUNKS = 8
# remembered rows from which a chunk's repeats are looked up by index, not by hashing them all
INDEX_LOOKUP_FROM = 20_000
_values = itemgetter(slice(1, None))


def _parts(indexes: Sequence[int], row: Row) -> tuple[Any, ...] | None:
    """A row's composite key, or None when a part of it is empty (refused elsewhere)."""
    parts = tuple(row[i] for i in indexes)
    return None if None in parts else parts


def _db_message(error: asyncpg.PostgresError) -> str:
    detail = getattr(error, "detail", None)
    constraint = getattr(error, "constraint_name", None)
    text = str(error).splitlines()[0]
    if constraint:
        text += f" (constraint {constraint})"
    return f"{text}; {detail}" if detail else text


@dataclass(slots=True)
class RunWrites:
    """What tells a run's own writes in a table that stamps its rows: a writer stamps a row
    with its transaction's ``now()``, so a stamp this run wrote is its current transaction's
    time or one of ``times``, those of the chunks it committed. (A stamp after ``started``
    alone does not say it: another job may have written the same record since.)"""

    started: datetime  # database time, when the run first started
    times: list[datetime] = field(default_factory=list)


class _Uneven(Exception):
    """The counted insert did not write every row: undo it and account row by row."""


# a value PostgreSQL's input for a type refuses, found cell by cell (each cast in its own
# subtransaction): only run once a chunk's COPY has been refused, so it can be slow
_REFUSED_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.dm_refused(cells text[], type_name text)
RETURNS TABLE (pos integer, message text) LANGUAGE plpgsql AS $$
DECLARE
    cell text;
BEGIN
    pos := 0;
    FOREACH cell IN ARRAY cells LOOP
        pos := pos + 1;
        CONTINUE WHEN cell IS NULL;
        BEGIN
            EXECUTE format('SELECT CAST(%L AS %s)', cell, type_name);
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
            message := SQLERRM;
            RETURN NEXT;
        END;
    END LOOP;
END $$
"""


def _shown(text: str) -> str:
    """A refused cell (and PostgreSQL's message, which quotes it) as a report shows it."""
    return text if len(text) <= MAX_VALUE_SHOWN else text[:MAX_VALUE_SHOWN] + "…"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(slots=True)
class ChunkResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    # dry run: each row that would change a stored record, with the fields that would change
    changes: list[RowChange] = field(default_factory=list)
    # how the chunk went in: "copied" straight into the table, "counted" (one set-based
    # statement wrote every row) or "accounted" row by row (for logs and tests)
    route: str = "accounted"


class ChunkLoader:
    """Loads chunks of valid rows of one model into its table, in one mode."""

    def __init__(self, model: Model, fields: Sequence[Field], mode: str) -> None:
        self.model = model
        # temp tables live as long as the pooled connection: each loader gets its own
        tag = uuid.uuid4().hex[:12]
        self.stage = f"_dm_stage_{tag}"
        self.seen = f"_dm_seen_{tag}"
        self.staged = f"_dm_staged_{tag}"
        self.fields = list(fields)
        self.mode = mode
        self.columns = [f.name for f in self.fields]
        self.target = f"{quote_ident(model.schema)}.{quote_ident(model.table)}"
        missing = [c for c in model.key if c not in self.columns]
        if missing:
            raise JobFailure(
                "missing_column",
                f"the file has no column for the key of {model.name}: {', '.join(missing)}",
            )
        self.key = ", ".join(model.key)
        # positions in a row tuple, whose first item is the line
        self.key_indexes = [self.columns.index(c) + 1 for c in model.key]
        self.unique = [c for c in model.unique_fields if c in self.columns]
        self._remembered = list(dict.fromkeys([*model.key, *self.unique]))
        self.foreign = [fk for fk in model.foreign_keys if fk.column in self.columns]
        self._groups = self._unique_groups()
        # whether the table's own unique indexes refuse every repeat _drop_duplicates looks
        # for (found by prepare): then a chunk copied straight in needs no check here
        self._unique_by_table = False
        # a key column given by another unique field (a student by number or by username):
        # two rows name the same key only once the staging table has resolved them
        self._key_looked_up = any(fk.lookup and fk.column in model.key for fk in self.foreign)
        # the upsert's update spares records stamped since the run began ($1; see load)
        self._stamps_updates = bool(
            mode == "upsert"
            and model.touched_column
            and any(c not in model.key for c in self.columns)
        )
        self._insert_sql = self._build_insert()
        # insert and skip on a table that stamps its rows: count instead of returning keys
        touched = model.touched_column
        self._counted_insert_sql = (
            self._insert_sql.rsplit(" RETURNING ", 1)[0]
            if mode != "upsert" and touched and touched not in self.columns
            else ""
        )
        self._insert_one_sql = self._build_insert(one_row=True)
        self._insert_any_stamp_sql = self._build_insert(any_stamp=True)
        # upsert on a stamped table: count what the insert wrote instead of returning keys
        self._counted_upsert_sql = (
            f"WITH written AS ({self._insert_sql.rsplit(' RETURNING ', 1)[0]} "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS written "
            "FROM written"
            if mode == "upsert" and touched
            else ""
        )
        # a row can go straight into the table when nothing has to be rewritten first: no
        # look-up of a reference by name, no empty cell that stands for a database default
        # columns whose cells PostgreSQL's own input reads (inet, macaddr, an enum): they go
        # by CSV COPY into the staging table, where a value it refuses becomes a rejected row
        self._server_parsed = [i + 1 for i, f in enumerate(self.fields) if parsed_by_server(f)]
        self.direct = (
            mode in ("insert", "skip")
            and not any(fk.lookup for fk in self.foreign)
            and not self._server_parsed
        )
        self._defaulted = [i + 1 for i, f in enumerate(self.fields) if f.db_default]
        self._defaulted_values = [
            i for i in self._defaulted if self.fields[i - 1].name not in model.key
        ]
        self._direct_cooldown = 0
        self._counted_cooldown = 0
        self._remembered_rows = 0  # rows put in the ``seen`` table (see _reject_remembered)

    async def prepare(self, conn: asyncpg.Connection) -> None:
        cols = ", ".join(f"{quote_ident(f.name)} {f.sql_type}" for f in self.fields)
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} (_row bigint, {cols}) "
            "ON COMMIT DELETE ROWS"
        )
        # the keys of earlier chunks, with their rows, to find a key repeated further down
        # the file (kept across the chunks' commits): a dry run writes nothing, and an
        # upsert or skip may write nothing for a row whose record is already as the file says,
        # so the table alone cannot tell a repeated key from a stored one
        seen = ", ".join(
            f"{quote_ident(f.name)} {f.sql_type}" for f in self.fields if f.name in self._remembered
        )
        await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {self.seen} (_row bigint, {seen})")
        key = ", ".join(quote_ident(c) for c in self.model.key)
        await conn.execute(f"CREATE INDEX IF NOT EXISTS {self.seen}_key ON {self.seen} ({key})")
        for i, column in enumerate(c for c in self.unique if (c,) != self.model.key):
            name, col = f"{self.seen}_u{i}", quote_ident(column)
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {self.seen} ({col})")
        # an upsert's every staged key, unindexed (cheap to add to): looked through
        # only for a record another job stamped during the run, to tell whether this run had
        # its key before (a repeat) or not (that job's record)
        keys = ", ".join(
            f"{quote_ident(f.name)} {f.sql_type}" for f in self.fields if f.name in self.model.key
        )
        if self.mode == "upsert" and self.model.touched_column:
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {self.staged} ({keys})")
        if self._server_parsed:
            await conn.execute(_REFUSED_FUNCTION)
        if self.direct and self._groups:
            self._unique_by_table = await self._groups_enforced(conn)

    async def _groups_enforced(self, conn: asyncpg.Connection) -> bool:
        """Every group of ``_unique_groups`` has a plain unique index (checked at once, no
        predicate, no expression) on some of its columns: a repeat inside a chunk then
        fails the COPY, and the chunk goes the staged way, which names the rows."""
        indexes = await conn.fetch(
            """
            SELECT array_agg(a.attname::text) AS columns
            FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate
              AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
            GROUP BY i.indexrelid
            """,
            self.target,
        )
        unique = [set(r["columns"]) for r in indexes]
        groups = [
            set(self.model.key) if index is None else {name} for name, _, index in self._groups
        ]
        return all(any(columns <= group for columns in unique) for group in groups)

    async def preview(
        self, conn: asyncpg.Connection, rows: Sequence[Row], *, copy: CopyData | None = None
    ) -> ChunkResult:
        """What ``load`` would do, without writing the target: new rows, changed rows with
        their changed fields, unchanged, skipped and rejected (dry run)."""
        result = ChunkResult()
        kept = self._drop_duplicates(rows, result)
        rows = await self._stage_rows(conn, kept, result, copy=copy if kept is rows else None)
        if not rows:
            return result
        await self._reject_seen(conn, result)
        for r in await conn.fetch(self._preview_sql):
            self._count_preview(r, result)
        return result

    async def _reject_seen(
        self, conn: asyncpg.Connection, result: ChunkResult, *, key_only: bool = False
    ) -> None:
        """Rows repeating a key (or, unless ``key_only``, another unique value) of an earlier
        chunk of the file; then this chunk's keys are remembered."""
        await self._reject_remembered(conn, result, key_only=key_only)
        await self._remember(conn)

    async def _reject_remembered(
        self, conn: asyncpg.Connection, result: ChunkResult, *, key_only: bool = False
    ) -> None:
        """Staged rows repeating a remembered key (or another unique value)."""
        groups = [self.model.key]
        if not key_only:
            groups += [(c,) for c in self.unique if (c,) != self.model.key]
        if not self._remembered_rows:
            return  # nothing remembered yet (a rolled-back chunk's rows count, harmlessly)
        if self._remembered_rows < INDEX_LOOKUP_FROM:
            await self._reject_remembered_groups(conn, result, groups)
            return
        # a chunk's rows looked up in the index of what earlier chunks had: the planner,
        # blind to a temporary table's size, hashed all of it for every chunk instead, so a
        # dry run or all-or-nothing check slowed down as the file went on
        await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        try:
            await self._reject_remembered_groups(conn, result, groups)
        finally:
            await conn.execute("RESET enable_hashjoin; RESET enable_mergejoin")

    async def _reject_remembered_groups(
        self, conn: asyncpg.Connection, result: ChunkResult, groups: list[tuple[str, ...]]
    ) -> None:
        for group in groups:
            match = " AND ".join(f"k.{quote_ident(c)} = s.{quote_ident(c)}" for c in group)
            shown = " || ', ' || ".join(f"s.{quote_ident(c)}::text" for c in group)
            name = ", ".join(group)
            for r in await conn.fetch(
                f"DELETE FROM {self.stage} s USING {self.seen} k WHERE {match} "
                f"RETURNING s._row, {shown} AS value, k._row AS first"
            ):
                result.rejected.append(
                    RejectedRow(
                        row=r["_row"],
                        column=group[0] if len(group) == 1 else None,
                        value=r["value"],
                        message=f"duplicate {name} {r['value']!r}: already in row "
                        f"{r['first']} of this file",
                    )
                )

    async def _remember(self, conn: asyncpg.Connection, lines: Sequence[int] | None = None) -> None:
        """Remember the keys of the staged rows (only those on ``lines``, when given)."""
        if lines is not None and not lines:
            return
        cols = ", ".join(["_row", *(quote_ident(c) for c in self._remembered)])
        where = " WHERE _row = ANY($1::bigint[])" if lines is not None else ""
        args = (list(lines),) if lines is not None else ()
        status = await conn.execute(
            f"INSERT INTO {self.seen} ({cols}) SELECT {cols} FROM {self.stage}{where}", *args
        )
        self._remembered_rows += int(status.rsplit(" ", 1)[-1])

    async def remember_loaded(self, conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
        """A resumed run: remember the keys of rows that an earlier run of the job loaded
        before its last checkpoint (it remembered them in its own session, now gone), so
        that a key repeated further down is still a rejected duplicate. Inside the caller's
        transaction, whose commit empties the staging table again."""
        if not rows:
            return
        if self._server_parsed:  # rows the run before loaded: PostgreSQL took their values
            await self._copy_stage(conn, rows_payload(self.fields, rows))
        else:
            await conn.copy_records_to_table(
                self.stage, records=rows, columns=["_row", *self.columns]
            )
        await self._resolve_lookups(conn)
        await self._remember(conn)

    async def _stage_rows(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[Row],
        result: ChunkResult,
        *,
        clashes: bool = True,
        emptied: bool = True,
        copy: CopyData | None = None,
    ) -> Sequence[Row]:
        """COPY the chunk (without in-file duplicates) into the staging table and take out,
        as rejected rows, what the table would refuse: missing references, clashing keys.
        ``emptied``: a commit has emptied the staging table since it was last filled.
        ``copy``: the same rows as numbered CSV text, sent as it is."""
        kept = rows
        if not kept:
            return kept
        if not emptied:  # inside one long all-or-nothing transaction
            await conn.execute(f"TRUNCATE {self.stage}")
        if self._server_parsed:
            kept = await self._stage_checked(conn, kept, result, copy)
        elif copy is not None and copy.numbered:
            await self._copy_stage(conn, copy)
        else:
            await conn.copy_records_to_table(
                self.stage, records=kept, columns=["_row", *self.columns]
            )
        await self._resolve_lookups(conn)
        if self._key_looked_up:
            await self._reject_repeated_keys(conn, result)
        await self._reject_missing_references(conn, result)
        if clashes:
            await self._reject_foreign_clashes(conn, result)
        return kept

    async def _copy_stage(self, conn: asyncpg.Connection, copy: CopyData) -> None:
        await conn.copy_to_table(
            self.stage,
            source=memoryview(copy.data),
            columns=["_row", *copy.columns],
            format="csv",
            delimiter=copy.delimiter,
        )

    async def _stage_checked(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[Row],
        result: ChunkResult,
        copy: CopyData | None,
    ) -> Sequence[Row]:
        """COPY a chunk with columns PostgreSQL reads: when it refuses a value, each such
        column's cells are tried one by one and the rows it refuses become rejected rows
        (with its reason), and the rest are copied."""
        if copy is None or not copy.numbered:
            copy = rows_payload(self.fields, rows)
        try:
            async with conn.transaction():
                await self._copy_stage(conn, copy)
            return rows
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
            refused = await self._refused_cells(conn, rows)
            if not refused:
                raise
        result.rejected.extend(refused)
        lines = {r.row for r in refused}
        kept = [row for row in rows if row[0] not in lines]
        if kept:
            await self._copy_stage(conn, rows_payload(self.fields, kept))
        return kept

    async def _refused_cells(
        self, conn: asyncpg.Connection, rows: Sequence[Row]
    ) -> list[RejectedRow]:
        refused: list[RejectedRow] = []
        for i in self._server_parsed:
            field = self.fields[i - 1]
            cells = [row[i] for row in rows]
            for found in await conn.fetch(
                "SELECT pos, message FROM pg_temp.dm_refused($1::text[], $2)", cells, field.sql_type
            ):
                row = rows[found["pos"] - 1]
                refused.append(
                    RejectedRow(
                        row=row[0],
                        column=field.name,
                        value=_shown(str(row[i])),
                        message=_shown(f"{field.name}: {found['message']}"),
                    )
                )
        return sorted(refused, key=lambda r: r.row)

    def _count_preview(self, r: asyncpg.Record, result: ChunkResult) -> None:
        key = str(r["key"]).replace("\x1f", ", ")
        if r["new"]:
            result.inserted += 1
        elif self.mode == "insert":
            result.rejected.append(
                RejectedRow(
                    row=r["_row"],
                    column=self.model.key[0],
                    value=key,
                    message=f"{self.key} {key!r} already exists",
                )
            )
        elif self.mode == "skip":
            result.skipped += 1
        elif r["changed"]:
            result.updated += 1
            result.changes.append(RowChange(row=r["_row"], key=key, fields=list(r["changed"])))
        else:
            result.unchanged += 1

    @property
    def _preview_sql(self) -> str:
        on = " AND ".join(f"t.{quote_ident(c)} = s.{quote_ident(c)}" for c in self.model.key)
        checks = []
        for f in self.fields:
            if f.name in self.model.key:
                continue
            col = quote_ident(f.name)
            # an empty cell of a column with a default keeps the stored value
            guard = f"s.{col} IS NOT NULL AND " if f.db_default else ""
            checks.append(f"CASE WHEN {guard}s.{col} IS DISTINCT FROM t.{col} THEN '{f.name}' END")
        changed = (
            f"array_remove(ARRAY[{', '.join(checks)}]::text[], NULL)"
            if checks
            else "ARRAY[]::text[]"
        )
        first_key = quote_ident(self.model.key[0])
        return (
            f"SELECT s._row, {self._key_sql('s')} AS key, t.{first_key} IS NULL AS new, "
            f"{changed} AS changed FROM {self.stage} s LEFT JOIN {self.target} t ON {on} "
            "ORDER BY s._row"
        )

    async def drop(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"DROP TABLE IF EXISTS {self.stage}")
        await conn.execute(f"DROP TABLE IF EXISTS {self.seen}")
        await conn.execute(f"DROP TABLE IF EXISTS {self.staged}")

    async def load(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[Row],
        run: RunWrites,
        *,
        counted: bool = True,
        copy: CopyData | None = None,
    ) -> ChunkResult:
        """Load inside the caller's transaction.

        ``run`` tells rows written earlier by this same run, so a key repeated in the file
        is a rejected duplicate, not an update of itself.
        ``counted`` says each chunk has a transaction of its own, so ``now()`` tells the
        rows this chunk wrote. ``copy``: the same rows as CSV text for COPY.
        """
        result = ChunkResult()
        if (
            self._unique_by_table
            and not self._direct_cooldown
            and rows
            and await self._copy_direct(conn, rows, result, copy)
        ):
            return result  # no repeats, or the table would have refused the COPY
        kept = self._drop_duplicates(rows, result)
        if kept is not rows:
            copy = None  # the text still holds the dropped rows
            # a file that repeats values: check in Python first for the rest of the run,
            # rather than have the table refuse a COPY now and then
            self._unique_by_table = False
        rows = kept
        if not rows or await self._copy_direct(conn, rows, result, copy):
            return result
        before = len(result.rejected)
        # the insert itself meets the unique keys, which spares a join per unique column on
        # every chunk; only a refused or short insert looks for clashing rows
        rows = await self._stage_rows(conn, rows, result, clashes=False, emptied=counted, copy=copy)
        if not rows:
            return result
        if self.mode == "upsert" and self._kept_defaults(rows):
            await self._keep_stored_defaults(conn)
        if self.mode in ("upsert", "skip"):
            # a key seen in an earlier chunk whose row wrote nothing: the table cannot tell
            await self._reject_remembered(conn, result, key_only=True)
            if not self.model.touched_column:  # nor can it tell what this run wrote
                await self._remember(conn)
        staged = len(rows) - (len(result.rejected) - before)
        if counted and await self._insert_counted(conn, run, staged, result):
            await self._note_staged(conn)
            return result
        keys = await self._resolved_keys(conn, rows)
        rejected = {r.row for r in result.rejected}
        expected = {line: key for line, key in keys.items() if line not in rejected}
        returned = await self._insert(conn, run, result, expected if counted else None)
        if self.mode != "upsert" and len(returned) < len(rows):
            # the insert skipped rows on any unique key; name those that clash with another
            # stored record (rows it did insert now match their own record, so they do not)
            await self._reject_foreign_clashes(conn, result)
        missing = self._not_returned(rows, keys, returned, result)
        repeated, foreign = await self._stamped_during_run(conn, missing, run)
        if foreign and self.mode == "upsert":
            # records another job stamped during this run: a key this run staged before
            # is a repeat all the same; the others are that job's, and are written now (a
            # skip leaves both alone, and counts them skipped)
            earlier = await self._staged_before(conn, foreign)
            repeated |= earlier
            more = await self._upsert_over(conn, keys, foreign - earlier, result)
            returned = [*returned, *more]
        untouched = self._count(rows, keys, returned, repeated, result)
        if self.mode in ("upsert", "skip") and self.model.touched_column:
            # rows written by this run are told by their stamp; the others are remembered
            await self._remember(conn, untouched)
        await self._note_staged(conn)
        return result

    async def _note_staged(self, conn: asyncpg.Connection) -> None:
        if self.mode == "upsert" and self.model.touched_column:
            key = ", ".join(quote_ident(c) for c in self.model.key)
            await conn.execute(f"INSERT INTO {self.staged} ({key}) SELECT {key} FROM {self.stage}")

    async def _staged_before(self, conn: asyncpg.Connection, keys: set[str]) -> set[str]:
        found = await conn.fetch(
            f"SELECT DISTINCT {self._key_sql('w')} AS key FROM {self.staged} w "
            f"WHERE {self._key_sql('w')} = ANY($1::text[])",
            list(keys),
        )
        return {r["key"] for r in found}

    async def _upsert_over(
        self,
        conn: asyncpg.Connection,
        keys: dict[int, str],
        foreign: set[str],
        result: ChunkResult,
    ) -> list[Mapping[str, Any]]:
        """Upsert the staged rows of records another job stamped during this run (one by
        one if the database refuses them together: another unique value may clash now)."""
        rejected = {r.row for r in result.rejected}
        lines = [line for line, key in keys.items() if key in foreign and line not in rejected]
        if not lines:
            return []
        with contextlib.suppress(asyncpg.PostgresError):
            async with conn.transaction():
                return list(await conn.fetch(self._insert_any_stamp_sql, lines))
        return await self._one_by_one(
            conn, lines, lambda line: conn.fetch(self._insert_any_stamp_sql, [line]), result
        )

    @staticmethod
    async def _one_by_one(
        conn: asyncpg.Connection,
        lines: Iterable[int],
        write: Callable[[int], Awaitable[list[asyncpg.Record]]],
        result: ChunkResult,
    ) -> list[Mapping[str, Any]]:
        """``write`` each row alone, under a savepoint: a row the database refuses is a
        rejected row with its reason, and the others go in."""
        returned: list[Mapping[str, Any]] = []
        for line in lines:
            try:
                async with conn.transaction():
                    returned.extend(await write(line))
            except asyncpg.PostgresError as e:
                result.rejected.append(
                    RejectedRow(
                        row=line,
                        column=getattr(e, "column_name", None),
                        value=None,
                        message=f"refused by the database: {_db_message(e)}",
                    )
                )
        return returned

    def _run_args(self, run: RunWrites) -> tuple[Any, ...]:
        return (run.started,) if self._stamps_updates else ()

    def _kept_defaults(self, rows: Sequence[Row]) -> bool:
        """Whether a row leaves empty a (non-key) column that has a database default."""
        return any(None in map(itemgetter(i), rows) for i in self._defaulted_values)

    async def _keep_stored_defaults(self, conn: asyncpg.Connection) -> None:
        """An empty cell of a column with a default keeps a stored record's value (as the
        dry run says): the staged row takes it, and the default is left for new records."""
        names = [self.fields[i - 1].name for i in self._defaulted_values]
        sets = ", ".join(
            f"{quote_ident(c)} = COALESCE(s.{quote_ident(c)}, t.{quote_ident(c)})" for c in names
        )
        empty = " OR ".join(f"s.{quote_ident(c)} IS NULL" for c in names)
        on = " AND ".join(f"t.{quote_ident(c)} = s.{quote_ident(c)}" for c in self.model.key)
        await conn.execute(
            f"UPDATE {self.stage} s SET {sets} FROM {self.target} t WHERE ({empty}) AND {on}"
        )

    async def _copy_direct(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[Row],
        result: ChunkResult,
        copy: CopyData | None = None,
    ) -> bool:
        """COPY the chunk straight into the table, betting that every row is new and
        acceptable. Any refusal (a stored key, a missing reference, a CHECK) rolls back to
        the savepoint and the chunk takes the staged path, which says which rows and why."""
        if not self.direct:
            return False
        if self._direct_cooldown:
            self._direct_cooldown -= 1
            return False
        for i in self._defaulted:
            if None in column_of(rows, i):
                return False  # an empty cell means the column's default, not NULL
        try:
            async with conn.transaction():
                if copy is not None and not copy.numbered:
                    status = await conn.copy_to_table(
                        self.model.table,
                        schema_name=self.model.schema,
                        source=memoryview(copy.data),
                        columns=list(copy.columns),
                        format="csv",
                        delimiter=copy.delimiter,
                    )
                else:
                    status = await conn.copy_records_to_table(
                        self.model.table,
                        schema_name=self.model.schema,
                        columns=self.columns,
                        records=map(_values, rows),
                    )
        except (asyncpg.PostgresError, asyncpg.DataError, ValueError, TypeError, OverflowError):
            self._direct_cooldown = DIRECT_COOLDOWN_CHUNKS
            return False
        result.inserted += int(status.rsplit(" ", 1)[-1])
        result.route = "copied"
        return True

    async def _insert_counted(
        self, conn: asyncpg.Connection, run: RunWrites, staged: int, result: ChunkResult
    ) -> bool:
        """The set-based insert, counted: True when it wrote every staged row, so there is
        nothing to account row by row. Otherwise the savepoint undoes it and the caller takes
        the returning path."""
        sql = self._counted_upsert_sql or self._counted_insert_sql
        if not sql:
            return False
        if self._counted_cooldown:
            self._counted_cooldown -= 1
            return False
        args = self._run_args(run)
        try:
            async with conn.transaction():
                if self._counted_upsert_sql:
                    found = await conn.fetchrow(sql, *args)
                    assert found is not None
                    inserted, written = int(found["inserted"]), int(found["written"])
                else:
                    status = await conn.execute(sql, *args)
                    inserted = written = int(status.rsplit(" ", 1)[-1])
                if written != staged:
                    raise _Uneven
        except (_Uneven, asyncpg.PostgresError):
            self._counted_cooldown = DIRECT_COOLDOWN_CHUNKS
            return False
        result.inserted += inserted
        result.updated += written - inserted
        result.route = "counted"
        return True

    async def _resolved_keys(self, conn: asyncpg.Connection, rows: Sequence[Row]) -> dict[int, str]:
        """Each row's key as it will be stored: a key column named by lookup (a student by
        student number) was rewritten in the staging table, so ask it; else the file's."""
        if any(fk.lookup and fk.column in self.model.key for fk in self.foreign):
            found = await conn.fetch(
                f"SELECT _row, {self._key_sql('s')} AS key FROM {self.stage} s"
            )
            return {r["_row"]: r["key"] for r in found}
        return {r[0]: self.key_of(r) for r in rows}

    def key_of(self, row: Row) -> str:
        return "\x1f".join(str(row[i]) for i in self.key_indexes)

    def _key_sql(self, alias: str) -> str:
        parts = [f"{alias}.{quote_ident(c)}::text" for c in self.model.key]
        return parts[0] if len(parts) == 1 else f"concat_ws(E'\\x1f', {', '.join(parts)})"

    async def _insert(
        self,
        conn: asyncpg.Connection,
        run: RunWrites,
        result: ChunkResult,
        expected: dict[int, str] | None,
    ) -> list[Mapping[str, Any]]:
        """One set-based insert; if the database refuses it (a CHECK, a column limit, a
        race with another writer), find the guilty rows one by one instead of failing the
        whole chunk."""
        args = self._run_args(run)
        try:
            async with conn.transaction():
                return list(await conn.fetch(self._insert_sql, *args))
        except asyncpg.PostgresError:
            pass
        if self.mode == "upsert":
            # most often another unique value (an e-mail) belongs to a different record:
            # take those rows out with their reason, then try the set-based upsert again
            await self._reject_foreign_clashes(conn, result)
            try:
                async with conn.transaction():
                    return list(await conn.fetch(self._insert_sql, *args))
            except asyncpg.PostgresError:
                pass
        lines = [r[0] for r in await conn.fetch(f"SELECT _row FROM {self.stage} ORDER BY _row")]
        return await self._one_by_one(
            conn, lines, lambda line: conn.fetch(self._insert_one_sql, *args, line), result
        )

    async def _reject_repeated_keys(self, conn: asyncpg.Connection, result: ChunkResult) -> None:
        """Staged rows whose resolved key an earlier row of the chunk already has."""
        same = " AND ".join(f"f.{quote_ident(c)} = s.{quote_ident(c)}" for c in self.model.key)
        for r in await conn.fetch(
            f"DELETE FROM {self.stage} s USING {self.stage} f WHERE {same} AND f._row < s._row "
            f"RETURNING s._row, {self._key_sql('s')} AS key, f._row AS first"
        ):
            shown = str(r["key"]).replace("\x1f", ", ")
            result.rejected.append(
                RejectedRow(
                    row=r["_row"],
                    column=self.model.key[0] if len(self.model.key) == 1 else None,
                    value=shown,
                    message=f"duplicate {self.key} {shown!r}: row {r['first']} of this file "
                    "names the same record",
                )
            )

    async def _resolve_lookups(self, conn: asyncpg.Connection) -> None:
        """A reference given by another unique field of the referenced row (a department
        by its Persian or English name) is replaced by that row's key."""
        for fk in self.foreign:
            if not fk.lookup:
                continue
            col, ref = quote_ident(fk.column), f"{quote_ident(fk.schema)}.{quote_ident(fk.table)}"
            target = quote_ident(fk.target)
            unresolved = (
                f"s.{col} IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {ref} k WHERE k.{target} = s.{col})"
            )
            match = " OR ".join(f"r.{quote_ident(c)}::text = s.{col}::text" for c in fk.lookup)
            await conn.execute(
                f"UPDATE {self.stage} s SET {col} = r.{target} FROM {ref} r "
                f"WHERE {unresolved} AND ({match})"
            )
            # then ignoring case (engineering, sci) where that names exactly one row: only
            # for the cells still unresolved, each column matched by a hash join
            if not await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {self.stage} s WHERE {unresolved})"
            ):
                continue
            matches = " UNION ALL ".join(
                f"SELECT w.v, r.{target} AS t FROM wanted w JOIN {ref} r "
                f"ON lower(r.{quote_ident(c)}::text) = w.v"
                for c in (fk.target, *fk.lookup)
            )
            await conn.execute(
                f"WITH wanted AS (SELECT DISTINCT lower(s.{col}::text) AS v "
                f"FROM {self.stage} s WHERE {unresolved}), "
                f"hits AS (SELECT v, (array_agg(t))[1] AS t FROM ({matches}) m GROUP BY v "
                "HAVING count(DISTINCT t) = 1) "
                f"UPDATE {self.stage} s SET {col} = h.t FROM hits h "
                f"WHERE {unresolved} AND lower(s.{col}::text) = h.v"
            )

    async def _reject_missing_references(
        self, conn: asyncpg.Connection, result: ChunkResult
    ) -> None:
        for fk in self.foreign:
            col, ref = quote_ident(fk.column), f"{quote_ident(fk.schema)}.{quote_ident(fk.table)}"
            missing = await conn.fetch(
                f"DELETE FROM {self.stage} s WHERE s.{col} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {ref} r WHERE r.{quote_ident(fk.target)} = s.{col}) "
                f"RETURNING s._row, s.{col}::text AS value"
            )
            by = f" (by {', '.join([fk.target, *fk.lookup])})" if fk.lookup else ""
            for r in missing:
                result.rejected.append(
                    RejectedRow(
                        row=r["_row"],
                        column=fk.column,
                        value=r["value"],
                        message=f"{fk.column} {r['value']!r} matches no row of "
                        f"{fk.schema}.{fk.table}{by}",
                    )
                )

    def _not_returned(
        self,
        rows: Sequence[Row],
        keys: dict[int, str],
        returned: Sequence[Mapping[str, Any]],
        result: ChunkResult,
    ) -> list[str]:
        done = {r["key"] for r in returned}
        rejected = {r.row for r in result.rejected}
        return [
            keys[r[0]]
            for r in rows
            if r[0] not in rejected and r[0] in keys and keys[r[0]] not in done
        ]

    async def _stamped_during_run(
        self, conn: asyncpg.Connection, keys: list[str], run: RunWrites
    ) -> tuple[set[str], set[str]]:
        """Of ``keys``, those whose records this run stamped, and those another job stamped
        since this run began."""
        touched = self.model.touched_column
        if not keys or touched is None:
            return set(), set()
        key, stamp = self._key_sql("t"), f"t.{quote_ident(touched)}"
        found = await conn.fetch(
            f"SELECT {key} AS key, ({stamp} = now() OR {stamp} = ANY($3::timestamptz[])) "
            f"AS mine FROM {self.target} t WHERE {key} = ANY($1::text[]) AND {stamp} >= $2",
            keys,
            run.started,
            run.times,
        )
        mine = {r["key"] for r in found if r["mine"]}
        return mine, {r["key"] for r in found} - mine

    def _drop_duplicates(self, rows: Sequence[Row], result: ChunkResult) -> Sequence[Row]:
        """Rows repeating, inside this chunk, the key (several columns together when it is
        composite) or another unique value of an earlier row become rejected rows."""
        groups = self._groups
        if all(self._distinct(rows, get, index) for _, get, index in groups):
            return rows  # the usual chunk, told in C
        seen: dict[str, dict[object, int]] = {name: {} for name, _, _ in groups}
        kept: list[Row] = []
        for row in rows:
            clash = None
            for name, get, _ in groups:
                value = get(row)
                if value is not None and value in seen[name]:
                    clash = (name, value, seen[name][value])
                    break
            if clash:
                name, value, first = clash
                shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
                result.rejected.append(
                    RejectedRow(
                        row=row[0],
                        column=None if "," in name else name,
                        value=shown,
                        message=f"duplicate {name} {shown!r}: already in row {first} of this file",
                    )
                )
                continue
            for name, get, _ in groups:
                value = get(row)
                if value is not None:
                    seen[name][value] = row[0]
            kept.append(row)
        return kept

    def _unique_groups(self) -> list[tuple[str, Callable[[Row], object], int | None]]:
        """Each set of columns whose values must differ between rows, with a getter of a
        row's value for it (a tuple for a composite key, None if any part is empty) and,
        for one column, its position in a row."""
        groups: list[tuple[str, Callable[[Row], object], int | None]] = []
        if len(self.model.key) > 1:
            groups.append((", ".join(self.model.key), partial(_parts, self.key_indexes), None))
        for column in self.unique:
            index = self.columns.index(column) + 1
            groups.append((column, itemgetter(index), index))
        return groups

    @staticmethod
    def _distinct(rows: Sequence[Row], get: Callable[[Row], object], index: int | None) -> bool:
        """No two rows share a (non-empty) value; ``index``: the value's one column."""
        values = column_of(rows, index) if index is not None else list(map(get, rows))
        distinct = set(values)
        distinct.discard(None)
        return len(distinct) == len(values) - values.count(None)

    async def _reject_foreign_clashes(self, conn: asyncpg.Connection, result: ChunkResult) -> None:
        """Rows whose other unique values belong to a different stored record."""
        for column in self.unique:
            if (column,) == self.model.key:
                continue
            col = quote_ident(column)
            clashes = await conn.fetch(
                f"DELETE FROM {self.stage} s USING {self.target} t "
                f"WHERE t.{col} = s.{col} AND {self._key_sql('t')} IS DISTINCT FROM "
                f"{self._key_sql('s')} "
                f"RETURNING s._row, s.{col}::text AS value, {self._key_sql('t')} AS owner"
            )
            for r in clashes:
                result.rejected.append(
                    RejectedRow(
                        row=r["_row"],
                        column=column,
                        value=r["value"],
                        message=f"{column} {r['value']!r} already belongs to {self.key} "
                        f"{r['owner']!r}",
                    )
                )

    def _build_insert(self, *, one_row: bool = False, any_stamp: bool = False) -> str:
        """The set-based insert (or upsert) of the staged rows; ``one_row``: of the row
        ``_row = $n``; ``any_stamp``: of the rows ``_row = ANY($1)``, updating their records
        whenever they were stamped (the rows of records another job wrote during the run)."""
        cols = ", ".join(quote_ident(c) for c in self.columns)
        select = ", ".join(
            f"COALESCE({quote_ident(f.name)}, {f.db_default})"
            if f.db_default
            else quote_ident(f.name)
            for f in self.fields
        )
        key_cols = ", ".join(quote_ident(c) for c in self.model.key)
        touched = self.model.touched_column
        upsert = self.mode == "upsert"
        row_param = ("$2" if self._stamps_updates else "$1") if one_row else ""
        where = f"WHERE _row = {row_param} " if one_row else ""
        if any_stamp:
            where = "WHERE _row = ANY($1::bigint[]) "
        head = (
            f"INSERT INTO {self.target} AS t ({cols}) SELECT {select} FROM {self.stage} "
            f"{where}ORDER BY _row ON CONFLICT {'(' + key_cols + ') ' if upsert else ''}"
        )
        returning = f"RETURNING {self._key_sql('t')} AS key"
        others = [c for c in self.columns if c not in self.model.key]
        if upsert and others:
            sets = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in others)
            old = ", ".join(f"t.{quote_ident(c)}" for c in others)
            new = ", ".join(f"EXCLUDED.{quote_ident(c)}" for c in others)
            stamp = f", {quote_ident(touched)} = now()" if touched else ""
            # a record stamped since the run began is left alone: this run may have written
            # it (a later row of the file repeating its key is a rejected duplicate); the
            # rows of those another job stamped are written afterwards (``any_stamp``)
            at = f"t.{quote_ident(touched)}" if touched else ""
            fresh = f"({at} IS NULL OR {at} < $1) AND " if touched and not any_stamp else ""
            return (
                head + f"DO UPDATE SET {sets}{stamp} "
                f"WHERE {fresh}ROW({old}) IS DISTINCT FROM ROW({new}) "
                f"{returning}, (xmax = 0) AS inserted"
            )
        return head + f"DO NOTHING {returning}, true AS inserted"

    def _count(
        self,
        rows: Sequence[Row],
        keys: dict[int, str],
        returned: Sequence[Mapping[str, Any]],
        repeated: set[str],
        result: ChunkResult,
    ) -> list[int]:
        """Count each row's outcome; the lines of rows that left their record unchanged or
        skipped it (written by nobody in this run)."""
        untouched: list[int] = []
        done = {r["key"]: r["inserted"] for r in returned}
        rejected_lines = {r.row for r in result.rejected}
        column = self.model.key[0] if len(self.model.key) == 1 else None
        for row in rows:
            line = row[0]
            if line in rejected_lines or line not in keys:
                continue
            key = keys[line]
            shown = key.replace("\x1f", ", ")
            if key in done:
                if done[key]:
                    result.inserted += 1
                else:
                    result.updated += 1
            elif key in repeated:
                result.rejected.append(
                    RejectedRow(
                        row=line,
                        column=column,
                        value=shown,
                        message=f"duplicate {self.key} {shown!r}: an earlier row of this file "
                        "already has it",
                    )
                )
            elif self.mode == "upsert":
                result.unchanged += 1
                untouched.append(line)
            elif self.mode == "skip":
                result.skipped += 1
                untouched.append(line)
            else:
                result.rejected.append(
                    RejectedRow(
                        row=line,
                        column=column,
                        value=shown,
                        message=f"{self.key} {shown!r} already exists",
                    )
                )
        return untouched
