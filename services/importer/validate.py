"""Row validation against a catalogue model: cells in, typed values or rejections out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from contracts.jobs import JobOptions, RejectedRow
from services.core.catalogue import Field, FieldError, Model
from services.core.catalogue.calendar import parse_date, parse_datetime
from services.core.catalogue.normalise import CellKind, normalise_cell
from services.importer.csv_source import CellError
from services.importer.errors import JobFailure

__all__ = ["RowValidator", "ValidRow"]

MAX_VALUE_SHOWN = 200


@dataclass(frozen=True, slots=True)
class ValidRow:
    line: int
    values: tuple[object, ...]


def _shown(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_VALUE_SHOWN:
        return value
    return value[:MAX_VALUE_SHOWN] + "…"


class RowValidator:
    """Maps a header onto a model's fields once, then checks rows quickly."""

    def __init__(
        self,
        model: Model,
        header: Sequence[str],
        mapping: dict[str, str],
        options: JobOptions | None = None,
    ) -> None:
        self.model = model
        self.options = options or JobOptions()
        self.header = list(header)
        self.fields: list[Field] = []
        self.positions: list[int] = []
        seen: dict[str, int] = {}
        for index, name in enumerate(self.header):
            target = mapping.get(name, name)
            if target not in model.field_names:
                continue  # extra columns are ignored, as spreadsheets often carry notes
            if target in seen:
                raise JobFailure(
                    "bad_header",
                    f"columns {seen[target] + 1} and {index + 1} both map to field {target!r}",
                )
            seen[target] = index
        for unknown in set(mapping.values()) - set(model.field_names):
            raise JobFailure("bad_mapping", f"field mapping names unknown field {unknown!r}")
        missing = [name for name in model.required if name not in seen]
        if missing:
            raise JobFailure(
                "missing_column",
                f"missing required column(s): {', '.join(missing)} "
                f"(header has: {', '.join(self.header)})",
            )
        for field in model.fields:
            if field.name in seen:
                self.fields.append(field)
                self.positions.append(seen[field.name])
        self.width = len(self.header)
        self.converters = [self._converter(f) for f in self.fields]

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
        if len(cells) != self.width:
            return [
                RejectedRow(
                    row=line,
                    column=None,
                    value=_shown(self._joined(cells)),
                    message=f"row has {len(cells)} cells; the header has {self.width}",
                )
            ]
        values: list[object] = []
        problems: list[RejectedRow] = []
        for field, pos, convert in zip(self.fields, self.positions, self.converters, strict=True):
            raw = cells[pos]
            try:
                values.append(convert(raw))
            except FieldError as e:
                problems.append(
                    RejectedRow(row=line, column=field.name, value=_shown(raw), message=str(e))
                )
        return problems or ValidRow(line, tuple(values))

    def _joined(self, cells: list[str]) -> str:
        return ",".join(cells)

    def _converter(self, field: Field) -> Callable[[str], object]:
        """Cell text → value: normalise (digits, letters, invisible marks), check, parse."""
        opts = self.options
        parse = field.parse
        if field.kind == "date":
            parse = partial(parse_date, calendar=opts.calendar)
        elif field.kind == "datetime":
            parse = partial(parse_datetime, calendar=opts.calendar, zone=opts.time_zone)
        kind: CellKind = "date" if field.kind == "datetime" else field.kind
        fold = opts.fold_arabic_letters
        name, required, limit = field.name, field.required, field.max_length

        def convert(raw: str) -> object:
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
            return parse(text)

        return convert
