"""Set-based loading of one chunk: COPY into a staging table, then one INSERT ... SELECT.

Conflicts become rejected rows with their line and a message instead of failing the chunk:
duplicates inside the chunk are found in Python, clashes with stored rows in SQL.
All SQL names come from the catalogue, never from the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from contracts.jobs import RejectedRow
from services.core.catalogue import Field, Model
from services.importer.validate import ValidRow

__all__ = ["ChunkLoader", "ChunkResult", "quote_ident"]

STAGE = "_dm_stage"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(slots=True)
class ChunkResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


class ChunkLoader:
    """Loads chunks of valid rows of one model into its table, in one mode."""

    def __init__(self, model: Model, fields: Sequence[Field], mode: str) -> None:
        self.model = model
        self.fields = list(fields)
        self.mode = mode
        self.columns = [f.name for f in self.fields]
        self.target = f"{quote_ident(model.schema)}.{quote_ident(model.table)}"
        self.key = model.natural_key
        self.key_index = self.columns.index(self.key)
        self.unique = [c for c in model.unique_fields if c in self.columns]
        self._insert_sql = self._build_insert()

    async def prepare(self, conn: asyncpg.Connection) -> None:
        cols = ", ".join(f"{quote_ident(f.name)} {f.sql_type}" for f in self.fields)
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (_row bigint, {cols}) ON COMMIT DELETE ROWS"
        )

    async def load(
        self, conn: asyncpg.Connection, rows: Sequence[ValidRow], run_started: datetime
    ) -> ChunkResult:
        """Load inside the caller's transaction.

        ``run_started`` (database time) tells rows written earlier by this same run, so a
        key repeated in the file is a rejected duplicate, not an update of itself.
        """
        result = ChunkResult()
        rows = self._drop_duplicates(rows, result)
        if not rows:
            return result
        await conn.copy_records_to_table(
            STAGE, records=[(r.line, *r.values) for r in rows], columns=["_row", *self.columns]
        )
        await self._reject_foreign_clashes(conn, result)
        args = (run_started,) if self._insert_sql.count("$1") else ()
        returned = await conn.fetch(self._insert_sql, *args)
        missing = self._not_returned(rows, returned, result)
        repeated = await self._written_by_this_run(conn, missing, run_started)
        self._count(rows, returned, repeated, result)
        return result

    def _not_returned(
        self, rows: Sequence[ValidRow], returned: Sequence[asyncpg.Record], result: ChunkResult
    ) -> list[str]:
        done = {r["key"] for r in returned}
        rejected = {r.row for r in result.rejected}
        return [
            str(r.values[self.key_index])
            for r in rows
            if r.line not in rejected and str(r.values[self.key_index]) not in done
        ]

    async def _written_by_this_run(
        self, conn: asyncpg.Connection, keys: list[str], run_started: datetime
    ) -> set[str]:
        touched = self.model.touched_column
        if not keys or touched is None:
            return set()
        key = quote_ident(self.key)
        found = await conn.fetch(
            f"SELECT {key}::text AS key FROM {self.target} "
            f"WHERE {key}::text = ANY($1::text[]) AND {quote_ident(touched)} >= $2",
            keys,
            run_started,
        )
        return {r["key"] for r in found}

    def _drop_duplicates(self, rows: Sequence[ValidRow], result: ChunkResult) -> list[ValidRow]:
        seen: dict[str, dict[object, int]] = {c: {} for c in self.unique}
        positions = {c: self.columns.index(c) for c in self.unique}
        kept: list[ValidRow] = []
        for row in rows:
            clash = None
            for column, index in positions.items():
                value = row.values[index]
                if value is not None and value in seen[column]:
                    clash = (column, value, seen[column][value])
                    break
            if clash:
                column, value, first = clash
                result.rejected.append(
                    RejectedRow(
                        row=row.line,
                        column=column,
                        value=str(value),
                        message=f"duplicate {column} {value!r}: "
                        f"already in row {first} of this file",
                    )
                )
                continue
            for column, index in positions.items():
                value = row.values[index]
                if value is not None:
                    seen[column][value] = row.line
            kept.append(row)
        return kept

    async def _reject_foreign_clashes(self, conn: asyncpg.Connection, result: ChunkResult) -> None:
        """Rows whose other unique values belong to a different stored record."""
        key = quote_ident(self.key)
        for column in self.unique:
            if column == self.key:
                continue
            col = quote_ident(column)
            clashes = await conn.fetch(
                f"DELETE FROM {STAGE} s USING {self.target} t "
                f"WHERE t.{col} = s.{col} AND t.{key} IS DISTINCT FROM s.{key} "
                f"RETURNING s._row, s.{col}::text AS value, t.{key}::text AS owner"
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

    def _build_insert(self) -> str:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        select = ", ".join(
            f"COALESCE({quote_ident(f.name)}, {f.db_default})"
            if f.db_default
            else quote_ident(f.name)
            for f in self.fields
        )
        key = quote_ident(self.key)
        head = (
            f"INSERT INTO {self.target} AS t ({cols}) SELECT {select} FROM {STAGE} "
            f"ORDER BY _row ON CONFLICT ({key}) "
        )
        if self.mode == "upsert":
            others = [c for c in self.columns if c != self.key]
            sets = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in others)
            old = ", ".join(f"t.{quote_ident(c)}" for c in others)
            new = ", ".join(f"EXCLUDED.{quote_ident(c)}" for c in others)
            touched = self.model.touched_column
            stamp = f", {quote_ident(touched)} = now()" if touched else ""
            fresh = f"t.{quote_ident(touched)} < $1 AND " if touched else ""
            return (
                head + f"DO UPDATE SET {sets}{stamp} "
                f"WHERE {fresh}({old}) IS DISTINCT FROM ({new}) "
                f"RETURNING t.{key}::text AS key, (xmax = 0) AS inserted"
            )
        return head + f"DO NOTHING RETURNING t.{key}::text AS key, true AS inserted"

    def _count(
        self,
        rows: Sequence[ValidRow],
        returned: Sequence[asyncpg.Record],
        repeated: set[str],
        result: ChunkResult,
    ) -> None:
        done = {r["key"]: r["inserted"] for r in returned}
        rejected_lines = {r.row for r in result.rejected}
        for row in rows:
            if row.line in rejected_lines:
                continue
            key = str(row.values[self.key_index])
            if key in done:
                if done[key]:
                    result.inserted += 1
                else:
                    result.updated += 1
            elif key in repeated:
                result.rejected.append(
                    RejectedRow(
                        row=row.line,
                        column=self.key,
                        value=key,
                        message=f"duplicate {self.key} {key!r}: an earlier row of this file "
                        "already has it",
                    )
                )
            elif self.mode == "upsert":
                result.unchanged += 1
            elif self.mode == "skip":
                result.skipped += 1
            else:
                result.rejected.append(
                    RejectedRow(
                        row=row.line,
                        column=self.key,
                        value=key,
                        message=f"{self.key} {key!r} already exists",
                    )
                )
