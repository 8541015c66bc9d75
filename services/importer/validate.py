"""Row validation against a catalogue model: cells in, typed values or rejections out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from functools import partial
from typing import NamedTuple

from contracts.jobs import JobOptions, RejectedRow
from services.core.catalogue import Field, FieldError, Model
from services.core.catalogue.calendar import parse_date, parse_datetime
from services.core.catalogue.normalise import CellKind, normalise_cell
from services.core.catalogue.sqltypes import with_range
from services.importer.csv_source import CellError
from services.importer.errors import JobFailure

__all__ = ["RowValidator", "ValidRow"]

MAX_VALUE_SHOWN = 200


class ValidRow(NamedTuple):
    """A row that passed validation: its line and its typed values in column order."""

    line: int
    values: tuple[object, ...]


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
                self.fields.append(field)
                self.positions.append(seen[field.name])
        self.width = len(self.header)
        self.converters = [self._converter(f) for f in self.fields]
        self._plan = list(zip(self.positions, self.converters, strict=True))

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
            if limit is not None and len(text) > limit:
                raise FieldError(
                    f"{name} is {len(text)} characters long; at most {limit} are allowed"
                )
            return text if identity else parse(text)

        return convert
