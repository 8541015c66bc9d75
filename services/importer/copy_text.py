"""Checked rows as CSV text for ``COPY ... (FORMAT csv)``.

asyncpg's binary COPY encodes every value of every row in Python, inside the write of the
chunk: for a chunk that goes through the staging table (an upsert, a dry run), the set-based
statement waited for that encoding. A checked batch is turned into CSV text instead while the
chunk before it is being written: a column whose values are the file's cells as they were
is taken as it is, and when every column is, so is the batch's text. The text stands for
exactly the values the check produced: each SQL type is written in the form PostgreSQL reads
back as the same value, and a column of a type not listed here keeps the binary path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC
from itertools import compress
from operator import itemgetter

from services.core.catalogue import Field

__all__ = [
    "COPY_DELIMITERS",
    "CopyData",
    "CopyText",
    "field_renderer",
    "parsed_by_server",
    "renderer",
    "rows_payload",
]

Render = Callable[[Sequence[object]], Sequence[str]]

# delimiters PostgreSQL's COPY takes that never occur in how numbers, dates and times are
# written; a file with another delimiter has its batches written with a comma
COPY_DELIMITERS = ",;\t|"
_BOOLEAN: dict[object, str] = {True: "t", False: "f", None: ""}
_TEXT_TYPES = frozenset({"text", "character varying", "character", "varchar", "char", "citext"})
# types whose Python value's str() is what PostgreSQL reads back as the same value (the
# importer's date-times are always aware, so their offset is written too)
_STR_TYPES = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "int",
        "int2",
        "int4",
        "int8",
        "numeric",
        "decimal",
        "real",
        "float4",
        "double precision",
        "float8",
        "date",
        "uuid",
    }
)
_INSTANT_TYPES = frozenset({"timestamp with time zone", "timestamptz"})
_FAR_OFFSET = re.compile(r"[+-](?:1[6-9]|2[0-9]):")


def _texts(values: Sequence[object]) -> Sequence[str]:
    if None not in values:
        return values  # type: ignore[return-value]
    return ["" if v is None else v for v in values]  # type: ignore[misc]


def _strs(values: Sequence[object]) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _instants(values: Sequence[object]) -> list[str]:
    texts = _strs(values)
    if _FAR_OFFSET.search("".join(texts)):  # PostgreSQL refuses offsets of 16 hours or more
        return ["" if v is None else str(v.astimezone(UTC)) for v in values]  # type: ignore[attr-defined]
    return texts


def _booleans(values: Sequence[object]) -> list[str]:
    return list(map(_BOOLEAN.__getitem__, values))


def renderer(sql_type: str) -> Render | None:
    """How a column of ``sql_type`` is written as CSV cells, or None if it is not."""
    base = sql_type.split("(", 1)[0].strip().lower()
    if base.endswith("[]"):
        return None
    if base in _TEXT_TYPES:
        return _texts
    if base in _STR_TYPES:
        return _strs
    if base in _INSTANT_TYPES:
        return _instants
    if base in ("boolean", "bool"):
        return _booleans
    return None


def parsed_by_server(field: Field) -> bool:
    """A column of a type this module has no form for (inet, macaddr, an enum...) whose cells
    the importer keeps as text: PostgreSQL's own input reads them, in CSV COPY."""
    return (
        renderer(field.sql_type) is None
        and field.parse is str
        and field.kind not in ("date", "datetime")
    )


def field_renderer(field: Field) -> Render | None:
    """How ``field``'s values are written as CSV cells, or None if they are not."""
    return _texts if parsed_by_server(field) else renderer(field.sql_type)


def rows_payload(fields: Sequence[Field], rows: Sequence[Sequence[object]]) -> CopyData:
    """Rows as ``(line, *values)`` tuples as numbered CSV for the staging table, every value
    quoted (a table with columns only PostgreSQL reads has no binary COPY)."""
    renders = [field_renderer(f) for f in fields]
    if None in renders:
        raise TypeError("a column has no CSV form")
    columns: list[Sequence[str]] = [list(map(str, map(itemgetter(0), rows)))]
    for i, render in enumerate(renders, start=1):
        assert render is not None
        columns.append(_quoted(list(map(itemgetter(i), rows)), render))
    text = "\n".join(map(",".join, zip(*columns, strict=True)))
    return CopyData(
        data=(text + "\n").encode() if rows else b"",
        columns=[f.name for f in fields],
        delimiter=",",
        numbered=True,
    )


def _quoted(values: Sequence[object], render: Render) -> list[str]:
    # an unquoted empty cell is NULL: every other value is quoted, the empty string too
    return [
        "" if v is None else '"' + t.replace('"', '""') + '"'
        for v, t in zip(values, render(values), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class CopyData:
    """A chunk's valid rows as CSV for COPY: the columns in the text's order, and whether
    each line starts with the row's line number (for the staging table)."""

    data: bytes
    columns: Sequence[str]
    delimiter: str
    numbered: bool


class CopyText:
    """Writes checked batches of one file's fields as CSV lines, optionally each after its
    line number (for the staging table, whose first column is the row's line)."""

    def __init__(
        self,
        fields: Sequence[Field],
        positions: Sequence[int],
        width: int,
        delimiter: str,
        *,
        numbered: bool,
    ) -> None:
        # the columns go in the file's order, so that a batch whose cells all stay as they
        # were is its own text
        self.order = sorted(range(len(fields)), key=positions.__getitem__)
        self.columns = [fields[i].name for i in self.order]
        renders = [field_renderer(fields[i]) for i in self.order]
        self.usable = bool(fields) and None not in renders
        self._renders: list[Render] = [r for r in renders if r is not None]
        self.delimiter = delimiter if delimiter in COPY_DELIMITERS else ","
        self._same_delimiter = self.delimiter == delimiter
        self._whole_lines = sorted(positions) == list(range(width))
        self._special = (self.delimiter, '"', "\n", "\r")
        # lines of one unnumbered cell: a cell \. alone would end PostgreSQL's reading
        self._lone = len(fields) == 1 and not numbered
        self.numbered = numbered

    def text(
        self,
        lines: Sequence[int],
        cells: Sequence[Sequence[str]],
        values: Sequence[Sequence[object]],
        copied: Sequence[Sequence[str] | None],
        *,
        plain: str | None,
        rejected: Collection[int] = (),
    ) -> str | None:
        """The batch's valid rows as CSV lines joined by "\\n", or None if a value cannot be
        written this way. ``cells``, ``values`` and ``copied`` (the trimmed cells, for a
        column whose cells PostgreSQL reads as its values) are by field, position by
        position with ``lines``; ``rejected`` holds the positions of rows left out;
        ``plain`` is the batch's own text when its lines split on the delimiter into
        exactly its cells."""
        if not self.usable:
            return None
        plain = plain if self._same_delimiter and self._whole_lines else None
        columns: list[Sequence[str]] = []
        as_read = True
        for i, render in zip(self.order, self._renders, strict=True):
            raw, texts = cells[i], copied[i]
            if texts is None:
                texts = render(values[i])
            if texts == raw:
                columns.append(raw)
                if plain is not None:
                    continue  # the cells of a quote-free batch hold no special character
            else:
                as_read = False
                columns.append(texts)
            joined = "".join(texts)
            if (
                any(s in joined for s in self._special)
                or (render is _texts and "" in values[i])
                or (self._lone and "\\." in texts)  # a line of just \. ends the data (PG < 18)
            ):
                columns[-1] = _quoted(values[i], render)
                as_read = False
        if rejected:
            keep = [i not in rejected for i in range(len(lines))]
            lines = list(compress(lines, keep))
            columns = [list(compress(c, keep)) for c in columns]
        elif as_read and plain is not None:
            return self._numbered(lines, plain.split("\n")) if self.numbered else plain
        if not lines:
            return ""
        rows = list(map(self.delimiter.join, zip(*columns, strict=True)))
        return self._numbered(lines, rows) if self.numbered else "\n".join(rows)

    def _numbered(self, lines: Sequence[int], rows: Sequence[str]) -> str:
        return "\n".join(map(f"%d{self.delimiter}%s".__mod__, zip(lines, rows, strict=True)))

    def chunk(self, parts: Sequence[str]) -> CopyData:
        """The texts of a chunk's batches as one COPY payload."""
        text = "\n".join(p for p in parts if p)
        return CopyData(
            data=(text + "\n").encode() if text else b"",
            columns=self.columns,
            delimiter=self.delimiter,
            numbered=self.numbered,
        )
