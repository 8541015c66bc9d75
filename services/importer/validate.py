"""Row validation against a catalogue model: cells in, typed values or rejections out."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as default
from datetime import date, timedelta
from functools import partial
from itertools import compress
from operator import is_not, itemgetter
from typing import Any, NamedTuple

from contracts.jobs import JobOptions, RejectedRow
from services.core.catalogue import Field, FieldError, Model
from services.core.catalogue.calendar import parse_date, parse_datetime
from services.core.catalogue.columns import (
    SEPARATOR,
    ColumnParser,
    column_parser,
    iso_dates,
    iso_datetimes,
)
from services.core.catalogue.fields import parse_bool
from services.core.catalogue.normalise import ZWNJ, CellKind, cell_table, normalise_cell
from services.core.catalogue.sqltypes import with_range
from services.importer.copy_text import CopyText
from services.importer.csv_source import CellError, RecordBatch
from services.importer.errors import JobFailure

__all__ = ["LONE_SURROGATE", "CheckedRows", "RowValidator", "ValidRow", "step"]

MAX_VALUE_SHOWN = 200
# a JSON file may escape half of a UTF-16 pair alone ("\ud800"): Python keeps it in a str,
# but it is no character, and UTF-8 (PostgreSQL's text, COPY's payload) cannot carry it
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class ValidRow(NamedTuple):
    """A row that passed validation: its line and its typed values in column order."""

    line: int
    values: tuple[object, ...]


@dataclass(slots=True)
class CheckedRows:
    """A batch after validation: valid rows as ``(line, *values)`` tuples, ready for COPY,
    and the rejections, both in line order."""

    rejected: list[RejectedRow] = default(default_factory=list)
    rejected_lines: set[int] = default(default_factory=set)
    # the valid rows as CSV lines for COPY (see ``RowValidator.copy_text``), when asked for
    # and every value could be written so
    copy_text: str | None = None
    # the valid rows by column as the check made them (the file lines first), until
    # ``valid`` is asked for: a chunk copied in as text never needs the row tuples
    columns: list[Sequence[Any]] | None = None
    _rows: list[tuple[Any, ...]] | None = None

    @property
    def valid(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = list(zip(*self.columns, strict=True)) if self.columns else []
            self.columns = None
        return self._rows


class _Column(NamedTuple):
    """How one field's column is checked: where it is, the per-cell converter, and what the
    whole-column fast path needs."""

    field: Field
    position: int
    convert: Callable[[str], object]
    parse: ColumnParser | None
    kind: CellKind
    table: dict[int, int | None]
    mapped: re.Pattern[str]  # finds a character that ``table`` changes, or a ZWNJ
    identity: bool
    # cells that PostgreSQL reads as exactly the value the fast path parsed from them (the
    # whole column joined by SEPARATOR): COPY can take such cells as CSV text as they are
    as_copied: re.Pattern[str] | None


def step(steps: Generator[None, None, CheckedRows]) -> CheckedRows | None:
    """Advance ``RowValidator.checking`` by one column: its result once it is done."""
    try:
        next(steps)
    except StopIteration as done:
        checked: CheckedRows = done.value
        return checked
    return None


def _shown(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_VALUE_SHOWN:
        return value
    return value[:MAX_VALUE_SHOWN] + "…"


def _header_key(name: str) -> str:
    return normalise_cell(name, "text").casefold()


def _shown_number(text: str) -> str:
    ascii_text = normalise_cell(text, "number")
    return text if ascii_text == text else f"{text} = {ascii_text}"


_EXCEL_EPOCH = date(1899, 12, 30)


# column types an enabled table may have whose cells no parser here turns into a value
# asyncpg can send (each used to fail the job with an unexpected error)
_UNLOADABLE = frozenset(
    {
        "time",
        "timetz",
        "time without time zone",
        "time with time zone",
        "timestamp",
        "timestamp without time zone",
        "interval",
        "bytea",
    }
)


def _cannot_load(sql_type: str) -> bool:
    name = re.sub(r"\(\d+\)", "", sql_type).strip().lower()
    return name.endswith("[]") or name.split(" ", 1)[0] == "interval" or name in _UNLOADABLE


def _every(cell: str) -> re.Pattern[str]:
    """Matches a whole column (cells joined by SEPARATOR) whose every cell matches ``cell``."""
    return re.compile(f"(?:{cell})(?:{SEPARATOR}(?:{cell}))*")


# what ``iso_dates`` accepts; ISO date-times with an explicit offset and at most microseconds;
# the yes/no words both sides read alike (PostgreSQL's boolean input takes these, any case)
_COPIED_DATES = _every(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COPIED_DATETIMES = _every(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])"  # PostgreSQL reads offsets below 16 hours
)
_COPIED_BOOLEANS = _every(r"(?i:true|false|yes|no|on|off|t|f|y|n|1|0)")


def _or_excel_serial(parse: Callable[[str], object]) -> Callable[[str], object]:
    """In a spreadsheet a date may arrive as its serial number (a cell without a date
    format). 60 is Excel's 29 February 1900, a day that never was."""

    def parse_date_or_serial(text: str) -> object:
        if text.isdigit():
            serial = int(text)
            if serial == 60:
                raise FieldError("serial 60 is Excel's nonexistent 1900-02-29")
            if 0 < serial < 2_958_466:
                return _EXCEL_EPOCH + timedelta(days=serial if serial > 60 else serial + 1)
        return parse(text)

    return parse_date_or_serial


class RowValidator:
    """Maps a header onto a model's fields once, then checks rows quickly."""

    def __init__(
        self,
        model: Model,
        header: Sequence[str],
        mapping: dict[str, str],
        options: JobOptions | None = None,
        source_format: str = "csv",
    ) -> None:
        self.model = model
        self.options = options or JobOptions()
        self.header = list(header)
        self.source_format = source_format
        self.fields: list[Field] = []
        self.positions: list[int] = []
        seen = self._match_header(model, mapping)
        for unknown in set(mapping.values()) - set(model.field_names):
            raise JobFailure("bad_mapping", f"field mapping names unknown field {unknown!r}")
        missing = [name for name in model.required if name not in seen]
        if missing:
            hint = ""
            if len(self.header) == 1 and any(d in self.header[0] for d in ",;\t|"):
                hint = "; the header reads as one column: is the delimiter right?"
            raise JobFailure(
                "missing_column",
                f"missing required column(s): {', '.join(missing)} "
                f"(header has: {', '.join(self.header)}){hint}",
            )
        for field in model.fields:
            if field.name in seen:
                if _cannot_load(field.sql_type):
                    raise JobFailure(
                        "unsupported_column",
                        f"column {field.name!r} has type {field.sql_type}, which imports cannot "
                        "load yet; leave it out of the file or map it to nothing",
                    )
                self.fields.append(field)
                self.positions.append(seen[field.name])
        self.width = len(self.header)
        self.converters = [self._converter(f) for f in self.fields]
        self._plan = list(zip(self.positions, self.converters, strict=True))
        self._columns = [
            self._column(f, pos, convert)
            for f, pos, convert in zip(self.fields, self.positions, self.converters, strict=True)
        ]
        self.copy_text: CopyText | None = None

    def write_copy_text(self, delimiter: str, *, numbered: bool) -> CopyText:
        """From now on ``check_rows`` also writes the valid rows as CSV text for COPY."""
        self.copy_text = CopyText(
            self.fields, self.positions, self.width, delimiter, numbered=numbered
        )
        return self.copy_text

    def _match_header(self, model: Model, mapping: dict[str, str]) -> dict[str, int]:
        """Header cell → field: by explicit mapping, else by name or alias, ignoring case,
        surrounding spaces and invisible marks. Two cells that are the same column after
        that are a file error, never a silent first- or last-one-wins."""
        by_key: dict[str, str] = {}
        for field in model.fields:
            for name in (field.name, *field.aliases):
                by_key[_header_key(name)] = field.name
        explicit = {_header_key(k): v for k, v in mapping.items()}
        seen: dict[str, int] = {}
        cells: dict[str, int] = {}
        for index, name in enumerate(self.header):
            key = _header_key(name)
            if key and key in cells:
                first = cells[key]
                raise JobFailure(
                    "duplicate_header",
                    f"columns {first + 1} {self.header[first]!r} and {index + 1} {name!r} are "
                    "the same column after trimming and case-folding",
                )
            cells[key] = index
            target = explicit.get(key) or by_key.get(key)
            if target is None:
                continue  # extra columns are ignored, as spreadsheets often carry notes
            if target in seen:
                raise JobFailure(
                    "bad_header",
                    f"columns {seen[target] + 1} and {index + 1} both map to field {target!r}",
                )
            seen[target] = index
        return seen

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def check(
        self, line: int, cells: list[str], errors: Sequence[CellError] = ()
    ) -> ValidRow | list[RejectedRow]:
        if errors:
            return [
                RejectedRow(row=line, column=e.column, value=_shown(e.value), message=e.message)
                for e in errors
            ]
        if len(cells) > self.width and not any(c.strip() for c in cells[self.width :]):
            cells = cells[: self.width]  # trailing empty cells (a stray delimiter) are harmless
        if len(cells) != self.width:
            extra = [c for c in cells[self.width :] if c.strip()]
            detail = f"; extra value {extra[0]!r}" if extra else ""
            return [
                RejectedRow(
                    row=line,
                    column=None,
                    value=_shown(self._joined(cells)),
                    message=f"row has {len(cells)} fields; the header has {self.width}{detail}",
                )
            ]
        try:  # the common case in one comprehension; a bad row is checked again in full
            return ValidRow(line, tuple([convert(cells[pos]) for pos, convert in self._plan]))
        except FieldError:
            pass
        problems: list[RejectedRow] = []
        for field, pos, convert in zip(self.fields, self.positions, self.converters, strict=True):
            raw = cells[pos]
            try:
                convert(raw)
            except FieldError as e:
                problems.append(
                    RejectedRow(row=line, column=field.name, value=_shown(raw), message=str(e))
                )
        return problems

    def check_rows(self, batch: RecordBatch) -> CheckedRows:
        """``check`` for a whole batch, column by column: each column is normalised and
        parsed in a few C-level passes, and only a column with a doubtful cell is checked
        cell by cell. Rows of the wrong width or with reader errors go through ``check``."""
        steps = self.checking(batch)
        while (checked := step(steps)) is None:
            pass
        return checked

    def checking(self, batch: RecordBatch) -> Generator[None, None, CheckedRows]:
        """``check_rows`` in steps: it pauses after each column, so that a caller on an
        event loop can answer the database between two columns of a long batch."""
        out = CheckedRows()
        width = self.width
        odd: list[int] = []
        lines = batch.lines
        columns: Mapping[int, Sequence[str]]
        if batch.columns is not None and len(batch.columns) == width and not batch.errors:
            # one cell per column in every record, by construction
            columns = dict(enumerate(batch.columns))
        else:
            rows = batch.rows
            if batch.errors or set(map(len, rows)) - {width}:
                odd = [
                    i for i, cells in enumerate(rows) if len(cells) != width or i in batch.errors
                ]
                skip = set(odd)
                lines = [line for i, line in enumerate(lines) if i not in skip]
                rows = [cells for i, cells in enumerate(rows) if i not in skip]
            columns = {p: list(map(itemgetter(p), rows)) for p in set(self.positions)}
        problems: dict[int, list[RejectedRow]] = {}
        if lines:
            cells = [columns[column.position] for column in self._columns]
            copied: list[Sequence[str] | None] = []
            values = []
            for column, column_cells in zip(self._columns, cells, strict=True):
                values.append(self._check_column(column, column_cells, lines, problems, copied))
                yield
            kept: list[Sequence[Any]] = [lines, *values]
            if problems:
                keep = [i not in problems for i in range(len(lines))]
                kept = [list(compress(column, keep)) for column in kept]
            out.columns = kept
            if self.copy_text is not None:
                plain = batch.text if not odd else None
                try:
                    out.copy_text = self.copy_text.text(
                        lines, cells, values, copied, plain=plain, rejected=problems.keys()
                    )
                except (TypeError, KeyError):  # a parser gave a value of another type
                    out.copy_text = None
        elif self.copy_text is not None:
            out.copy_text = ""
        rejected = {lines[i]: found for i, found in problems.items()}
        for i in odd:
            line = batch.lines[i]
            checked = self.check(line, batch.rows[i], batch.errors.get(i, ()))
            if isinstance(checked, ValidRow):
                out.valid.append((line, *checked.values))
                out.copy_text = None  # its values are not in the batch's text
            else:
                rejected[line] = checked
        if odd:
            out.valid.sort(key=itemgetter(0))
        for line in sorted(rejected):
            out.rejected.extend(rejected[line])
        out.rejected_lines = set(rejected)
        return out

    def _check_column(
        self,
        column: _Column,
        cells: Sequence[str],
        lines: Sequence[int],
        problems: dict[int, list[RejectedRow]],
        copied: list[Sequence[str] | None],
    ) -> Sequence[object]:
        """The column's values; appends to ``copied`` the cells COPY may take as CSV text
        for them, or None."""
        fast = self._column_fast(column, cells, copied)
        if fast is not None:
            return fast
        copied.append(None)
        values: list[object] = []
        convert, name = column.convert, column.field.name
        for i, raw in enumerate(cells):
            try:
                values.append(convert(raw))
            except FieldError as e:
                values.append(None)
                problems.setdefault(i, []).append(
                    RejectedRow(row=lines[i], column=name, value=_shown(raw), message=str(e))
                )
        return values

    def _column_fast(
        self, column: _Column, cells: Sequence[str], copied: list[Sequence[str] | None]
    ) -> Sequence[object] | None:
        """Every cell's value, exactly as ``convert`` would give it, or ``None`` when some
        cell needs ``convert`` to say what is wrong with it (or to normalise it). On
        success, appends to ``copied`` the trimmed cells if COPY reads them as the values."""
        joined = SEPARATOR.join(cells)
        plain = joined.isascii()
        if (
            joined.count(SEPARATOR) != len(cells) - 1
            or "\x00" in joined
            or (not plain and LONE_SURROGATE.search(joined))
        ):
            return None
        if not plain and column.mapped.search(joined):
            if ZWNJ in joined:
                return None  # tidying a ZWNJ depends on the letters around it
            joined = joined.translate(column.table)
            cells = joined.split(SEPARATOR)
        if column.kind == "number" and ("," in joined or "\u066c" in joined):
            return None  # thousands separators: the careful per-cell rule
        # str.strip gives back the very same string when there is nothing to trim, so the
        # common case makes no new strings and is told by identity alone
        texts = list(map(str.strip, cells))
        trimmed = any(map(is_not, texts, cells))
        field = column.field
        present = texts
        if "" in texts:
            if field.required:
                return None
            present = [t for t in texts if t]
        if field.max_length is not None and present and max(map(len, present)) > field.max_length:
            return None
        # the copied forms matter only to a batch written as CSV text for COPY
        form = column.as_copied if self.copy_text is not None else None
        if form is not None:
            every = SEPARATOR.join(present) if trimmed or present is not texts else joined
            if form.fullmatch(every) is None:
                form = None
        if column.identity:
            parsed: Sequence[object] = present
        else:
            parse = column.parse
            try:
                if parse is not None:
                    try:
                        parsed = parse(present)
                    except FieldError:
                        form = None  # the ordinary parser may read the cells otherwise
                        parsed = list(map(column.convert, present))
                else:
                    parsed = list(map(column.convert, present))
            except FieldError:
                return None
        copied.append(texts if form is not None else None)
        if present is texts:
            return parsed
        found = iter(parsed)
        return [next(found) if t else None for t in texts]

    def _column(self, field: Field, position: int, convert: Callable[[str], object]) -> _Column:
        opts = self.options
        kind: CellKind = "date" if field.kind == "datetime" else field.kind
        calendar = field.calendar or opts.calendar
        parse: ColumnParser | None = None
        ranged = field.low is not None or field.high is not None
        if ranged:
            pass
        elif field.kind == "date":
            parse = iso_dates if calendar != "jalali" else None
        elif field.kind == "datetime":
            parse = iso_datetimes if calendar != "jalali" else None
        else:
            parse = column_parser(field.parse)
        table = cell_table(kind, fold_letters=opts.fold_arabic_letters)
        as_copied = None
        if parse is iso_dates:
            as_copied = _COPIED_DATES
        elif parse is iso_datetimes:
            as_copied = _COPIED_DATETIMES
        elif field.parse is parse_bool and not ranged:
            as_copied = _COPIED_BOOLEANS
        return _Column(
            field=field,
            position=position,
            convert=convert,
            parse=parse,
            kind=kind,
            table=table,
            mapped=re.compile("[" + re.escape("".join(map(chr, table)) + ZWNJ) + "]"),
            # a date or time column of an enabled table parses with str, but its cells
            # are read by the calendar-aware parsers, never taken as they are
            identity=field.parse is str and field.kind not in ("date", "datetime") and not ranged,
            as_copied=as_copied,
        )

    def _joined(self, cells: list[str]) -> str:
        return ",".join(cells)

    def _converter(self, field: Field) -> Callable[[str], object]:
        """Cell text → value: normalise (digits, letters, invisible marks), check, parse."""
        opts = self.options
        parse = field.parse
        calendar = field.calendar or opts.calendar
        if field.kind == "date":
            parse = partial(parse_date, calendar=calendar)
            if self.source_format == "xlsx":
                parse = _or_excel_serial(parse)
        elif field.kind == "datetime":
            parse = partial(parse_datetime, calendar=calendar, zone=field.zone or opts.time_zone)
        if field.low is not None or field.high is not None:
            parse = with_range(parse, field.low, field.high, _shown_number)
        kind: CellKind = "date" if field.kind == "datetime" else field.kind
        fold = opts.fold_arabic_letters
        name, required, limit = field.name, field.required, field.max_length

        ascii_fast = kind != "number"  # numbers drop thousands separators even in ASCII
        identity = parse is str

        def convert(raw: str) -> object:
            # this runs for every cell of every row: ASCII text needs only trimming
            if ascii_fast and raw.isascii():
                text = raw.strip()
            else:
                text = normalise_cell(raw, kind, fold_letters=fold)
            if not text:
                if required:
                    raise FieldError(f"{name} is required")
                return None
            if "\x00" in text:
                raise FieldError(f"{name} contains a NUL byte")
            if not text.isascii() and (lone := LONE_SURROGATE.search(text)):
                raise FieldError(
                    f"{name} contains {ascii(lone.group())[1:-1]}, half of a UTF-16 pair "
                    "without its other half, which is not a character"
                )
            if limit is not None and len(text) > limit:
                raise FieldError(
                    f"{name} is {len(text)} characters long; at most {limit} are allowed"
                )
            return text if identity else parse(text)

        return convert
