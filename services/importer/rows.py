"""A chunk's checked rows, kept as the columns the check produced.

The check works column by column; turning its columns into one tuple per row, and freeing
those tuples after the chunk, cost the importer ~8 % of an insert's time, and a chunk copied
straight into the table as CSV text never needs them. So rows are kept by column, a column is
read as it is (the duplicate checks), and the row tuples are made only when something walks
the rows (the staged path, child arrays, binary COPY).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, overload

__all__ = ["ValidRows", "column_of"]

Row = tuple[Any, ...]


class ValidRows(Sequence[Row]):
    """Rows as ``(line, *values)`` tuples, stored as parts: each part either columns (the
    file lines first, then one sequence per field) or rows already made."""

    __slots__ = ("_count", "_parts", "_rows")

    def __init__(self) -> None:
        self._parts: list[tuple[bool, Sequence[Sequence[Any]]]] = []
        self._rows: list[Row] | None = None
        self._count = 0

    def add_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """Rows given as columns, all of one length, the file lines first."""
        if columns and columns[0]:
            self._parts.append((True, columns))
            self._count += len(columns[0])
            self._rows = None

    def add_rows(self, rows: Sequence[Row]) -> None:
        if rows:
            self._parts.append((False, rows))
            self._count += len(rows)
            self._rows = None

    def column(self, index: int) -> Sequence[Any]:
        """Every row's value at ``index`` (0 is the file line), in row order."""
        parts = [
            part[index] if by_column else list(map(itemgetter(index), part))
            for by_column, part in self._parts
        ]
        return parts[0] if len(parts) == 1 else list(chain.from_iterable(parts))

    @property
    def rows(self) -> list[Row]:
        if self._rows is None:
            made: list[Row] = []
            for by_column, part in self._parts:
                made.extend(zip(*part, strict=True) if by_column else part)  # type: ignore[arg-type]
            self._rows = made
        return self._rows

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        return self.rows[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


def column_of(rows: Sequence[Row], index: int) -> Sequence[Any]:
    """The rows' values at ``index``, read straight from the column when kept so."""
    if isinstance(rows, ValidRows):
        return rows.column(index)
    return list(map(itemgetter(index), rows))
