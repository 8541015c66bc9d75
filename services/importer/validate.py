"""Row validation against a catalogue model: cells in, typed values or rejections out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.jobs import RejectedRow
from services.core.catalogue import Field, FieldError, Model
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

    def __init__(self, model: Model, header: Sequence[str], mapping: dict[str, str]) -> None:
        self.model = model
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
        for field, pos in zip(self.fields, self.positions, strict=True):
            raw = cells[pos]
            try:
                values.append(self._value(field, raw))
            except FieldError as e:
                problems.append(
                    RejectedRow(row=line, column=field.name, value=_shown(raw), message=str(e))
                )
        return problems or ValidRow(line, tuple(values))

    def _joined(self, cells: list[str]) -> str:
        return ",".join(cells)

    @staticmethod
    def _value(field: Field, raw: str) -> object:
        text = raw.strip()
        if not text:
            if field.required:
                raise FieldError(f"{field.name} is required")
            return None
        if "\x00" in text:
            raise FieldError(f"{field.name} contains a NUL byte")
        if field.max_length is not None and len(text) > field.max_length:
            raise FieldError(
                f"{field.name} is {len(text)} characters long; at most {field.max_length} "
                "are allowed"
            )
        return field.parse(text)
