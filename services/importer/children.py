"""Child rows: the items of an array inside each JSON record (a student's ``enrollments``)
become rows of another model, loaded in the parent chunk's transaction, after the parents.

Each item is checked with the child model's own validator and loaded with its own loader.
The parent's key fills the child's (``parent_key``). A parent that is rejected, while being
checked or while being loaded, loads none of its children.

A bad child is rejected alone: its parent and its siblings still load. Its rejection is
recorded under its parent's row number with its JSONPath as the column
(``$[0].enrollments[1].grade``). The job's row counters count parent records only, so a
record whose child was rejected counts as imported; its child shows among the rejections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from contracts.jobs import ChildImport, JobOptions, RejectedRow
from services.core.catalogue import FieldError, Model, UnknownModelError, get_model
from services.importer.csv_source import CellError, Record, RecordBatch
from services.importer.errors import JobFailure
from services.importer.loader import ChunkLoader, ChunkResult, Row, RunWrites
from services.importer.nested import NestedLayout, PathReader, mapped_header
from services.importer.validate import RowValidator

__all__ = ["ChildImports"]

# the cells of the parent record on a row, as read
CellsOf = Callable[[int], list[str] | None]


@dataclass(frozen=True, slots=True)
class _Item:
    """Where one child row came from: its parent's row and its own JSONPath."""

    parent_row: int
    path: str


def _record_path(fmt: str, row: int) -> str:
    return f"$[{row - 1}]" if fmt == "json" else "$"


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class ChildTable:
    """One ``children`` entry: the array's name in the parent record, and how its items
    are checked and loaded."""

    def __init__(
        self,
        array: str,
        spec: ChildImport,
        parent: RowValidator,
        options: JobOptions,
        fmt: str,
    ) -> None:
        try:
            self.model: Model = get_model(spec.model)
        except UnknownModelError as e:
            raise JobFailure("bad_option", f"children.{array}: {e}") from e
        if not spec.parent_key:
            raise JobFailure("bad_option", f"children.{array}: parent_key names no field")
        self.array = array
        self.fmt = fmt
        self.mapping = dict(spec.field_mapping)
        self._array_at = parent.header.index(array)
        self._parent_at: list[int] = []
        for parent_field, child_field in spec.parent_key.items():
            if parent_field not in parent.columns:
                raise JobFailure(
                    "bad_option",
                    f"children.{array}: parent field {parent_field!r} is not among the file's "
                    f"columns for {parent.model.name} ({', '.join(parent.columns)})",
                )
            if child_field not in self.model.field_names:
                raise JobFailure(
                    "bad_option",
                    f"children.{array}: {child_field!r} is not a field of {self.model.name}",
                )
            self._parent_at.append(parent.columns.index(parent_field) + 1)
        header = mapped_header(self.model, self.mapping)
        # the cells the parent's key fills: the column (by its name in an item) of each field
        by_field = {v: k for k, v in self.mapping.items()}
        self._filled = [
            (header.index(by_field.get(f, f)), parent_field, f)
            for parent_field, f in spec.parent_key.items()
        ]
        self._reader = PathReader(header, NestedLayout.of(self.model, self.mapping))
        self.validator = RowValidator(self.model, header, self.mapping, options, source_format=fmt)
        self.loader = ChunkLoader(self.model, self.validator.fields, options.mode)
        # a rejection names the item's own name for a field, as the file spells it
        self._name_of = {f: by_field.get(f, f) for f in self.model.field_names}

    async def load(
        self,
        conn: asyncpg.Connection,
        parents: Sequence[Row],
        cells_of: CellsOf,
        run: RunWrites,
    ) -> list[RejectedRow]:
        """Check and load the children of ``parents`` (rows already loaded)."""
        items: dict[int, _Item] = {}
        records = self._records(parents, cells_of, items)
        if not records:
            return []
        checked = self.validator.check_rows(RecordBatch.of(records))
        rejected = [self._at(items, r) for r in checked.rejected]
        valid = self._first_of_each_key(checked.valid, items, rejected)
        if valid:
            result: ChunkResult = await self.loader.load(conn, valid, run)
            rejected += [self._at(items, r) for r in result.rejected]
        return rejected

    def _records(
        self, parents: Sequence[Row], cells_of: CellsOf, items: dict[int, _Item]
    ) -> list[Record]:
        """One record per item, numbered 1, 2, ... in the chunk (the loader needs each row
        apart); ``items`` says where each came from."""
        records: list[Record] = []
        for parent in parents:
            cells = cells_of(parent[0])
            text = cells[self._array_at] if cells is not None else ""
            if not text:
                continue  # no array, or null: a parent without children
            # kept whole by the reader, as JSON text of an array (anything else was rejected)
            array = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
            where = f"{_record_path(self.fmt, parent[0])}.{self.array}"
            for index, item in enumerate(array):
                number = len(records) + 1
                path = f"{where}[{index}]"
                items[number] = _Item(parent[0], path)
                records.append(
                    self._with_parent_key(self._reader.record(number, item, path), parent, path)
                )
        return records

    def _with_parent_key(self, record: Record, parent: Row, path: str) -> Record:
        """The item's record with the parent's key in its cells; an item that names a
        different parent is refused rather than silently moved."""
        if not record.cells:
            return record  # not an object: already a rejection
        errors = list(record.errors)
        for (position, parent_field, child_field), at in zip(
            self._filled, self._parent_at, strict=True
        ):
            value = parent[at]
            own = record.cells[position].strip()
            if own and not self._same(child_field, own, value):
                errors.append(
                    CellError(
                        f"{path}.{self._name_of[child_field]}",
                        own,
                        f"the item says {child_field} {own!r} but its parent's {parent_field} "
                        f"is {str(value)!r}",
                    )
                )
            record.cells[position] = "" if value is None else str(value)
        return Record(record.line, record.cells, tuple(errors))

    def _same(self, child_field: str, own: str, value: object) -> bool:
        """The item's own text for a key field is the parent's value (read as the child
        field reads it: Persian digits or spaces make no difference)."""
        convert = self.validator.converters[self.validator.columns.index(child_field)]
        try:
            return convert(own) == value
        except FieldError:
            return False

    def _first_of_each_key(
        self, valid: list[Row], items: dict[int, _Item], rejected: list[RejectedRow]
    ) -> list[Row]:
        """Items repeating an earlier item's key in this chunk are refused here, by path: the
        loader would otherwise take one of the two silently."""
        at = [self.validator.columns.index(c) + 1 for c in self.model.key]
        first: dict[tuple[object, ...], str] = {}
        kept: list[Row] = []
        for row in valid:
            key = tuple(row[i] for i in at)
            item = items[row[0]]
            if key in first:
                shown = ", ".join(map(str, key))
                rejected.append(
                    RejectedRow(
                        row=item.parent_row,
                        column=item.path,
                        value=shown,
                        message=f"duplicate {self.model.name} ({', '.join(self.model.key)}) "
                        f"= ({shown}): already at {first[key]}",
                    )
                )
                continue
            first[key] = item.path
            kept.append(row)
        return kept

    def _at(self, items: dict[int, _Item], rejected: RejectedRow) -> RejectedRow:
        """A child's rejection under its parent's row, its column a JSONPath."""
        item = items[rejected.row]
        column = rejected.column
        if column is None:
            path = item.path
        elif column.startswith("$"):
            path = column  # the reader's, already a path
        else:
            path = f"{item.path}.{self._name_of.get(column, column)}"
        return RejectedRow(
            row=item.parent_row, column=path, value=rejected.value, message=rejected.message
        )


class ChildImports:
    """All of a job's child tables (``JobOptions.children``), loaded after each chunk's
    parents in the same transaction."""

    def __init__(self, tables: list[ChildTable]) -> None:
        self.tables = tables

    @classmethod
    def of(cls, validator: RowValidator, options: JobOptions, fmt: str) -> ChildImports | None:
        """``None`` when the job names no child array."""
        if not options.children:
            return None
        if fmt not in ("json", "jsonl"):
            raise JobFailure("bad_option", "children are read from JSON or JSON Lines files only")
        if options.dry_run or options.all_or_nothing:
            # both check parents without writing them, so every child would miss its parent
            raise JobFailure(
                "bad_option", "children cannot be combined with dry_run or all_or_nothing yet"
            )
        return cls(
            [
                ChildTable(array, spec, validator, options, fmt)
                for array, spec in options.children.items()
            ]
        )

    async def prepare(self, conn: asyncpg.Connection) -> None:
        for table in self.tables:
            await table.loader.prepare(conn)

    async def drop(self, conn: asyncpg.Connection) -> None:
        for table in self.tables:
            await table.loader.drop(conn)

    async def load(
        self,
        conn: asyncpg.Connection,
        parents: Sequence[Row],
        refused: set[int],
        cells_of: CellsOf,
        run: RunWrites,
    ) -> list[RejectedRow]:
        """Load the children of the chunk's valid ``parents`` except those the parents'
        loader ``refused`` (their row numbers); returns the children's rejections."""
        loaded = [row for row in parents if row[0] not in refused]
        rejected: list[RejectedRow] = []
        for table in self.tables:
            rejected += await table.load(conn, loaded, cells_of, run)
        return rejected
