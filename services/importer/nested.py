"""Nested JSON records read through dotted paths.

``name.fa.first`` reaches ``{"name": {"fa": {"first": ...}}}``, so the header mapping can
name any value of a document. A job asks for this reading by mapping a dotted name or by
naming child arrays (``JobOptions.children``); without that, a nested value stays what it
was: a rejection, unless its field holds JSON.

A value that is not where the mapping expects it (a string where an object with names is
needed) is a rejection naming its JSONPath (``$[2].name``), never a cell holding the
repr of something else. Names no field takes are ignored, whatever they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from contracts.jobs import JobOptions
from services.core.catalogue import Model
from services.core.catalogue.normalise import normalise_cell
from services.importer.csv_source import CellError, Record
from services.importer.json_values import cell_text, compact, type_name

__all__ = [
    "NestedLayout",
    "PathReader",
    "header_key",
    "mapped_header",
    "nested_header",
    "nested_layout",
]


def header_key(name: str) -> str:
    """A header name as the row validator matches it (case and invisible marks ignored)."""
    return normalise_cell(name, "text").casefold()


def mapped_header(model: Model, mapping: dict[str, str]) -> list[str]:
    """The mapping's names, then each field no name is mapped to: every field once, so the
    validator never sees two columns for one field."""
    taken = set(mapping.values())
    return [*mapping, *(name for name in model.field_names if name not in taken)]


@dataclass(frozen=True, slots=True)
class NestedLayout:
    """What a reader of nested records needs to know about the job."""

    # names a field takes (as ``header_key`` gives them): only these may reject a record
    known: frozenset[str]
    # names whose value is kept whole, as JSON text: JSON fields and child arrays
    json_columns: frozenset[str]
    # names of child arrays: each must hold an array (of objects, checked item by item)
    arrays: frozenset[str]

    @classmethod
    def of(cls, model: Model, mapping: dict[str, str], arrays: Iterable[str] = ()) -> NestedLayout:
        names = [*mapping, *(n for f in model.fields for n in (f.name, *f.aliases))]
        holds_json = {f.name for f in model.fields if f.sql_type.lower() in ("json", "jsonb")}
        json_columns = {*holds_json, *(k for k, v in mapping.items() if v in holds_json)}
        child_arrays = frozenset(arrays)
        return cls(
            known=frozenset(map(header_key, [*names, *child_arrays])),
            json_columns=frozenset(json_columns | child_arrays),
            arrays=child_arrays,
        )


def nested_layout(model: Model, options: JobOptions) -> NestedLayout | None:
    """The layout when the job reads nested records, else ``None`` (flat records)."""
    mapping = options.field_mapping
    if not options.children and not any("." in name for name in mapping):
        return None
    return NestedLayout.of(model, mapping, options.children)


def leaf_paths(item: dict[str, object], whole: frozenset[str], prefix: str = "") -> list[str]:
    """Dotted names of ``item``'s values, nested objects opened (except those kept whole)."""
    paths: list[str] = []
    for key, value in item.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in whole:
            paths.extend(leaf_paths(value, whole, f"{path}."))
        else:
            paths.append(path)
    return paths


def nested_header(
    first: dict[str, object] | None, known_columns: Sequence[str], layout: NestedLayout
) -> list[str]:
    """The first record's dotted names, then the known names it lacks."""
    header = leaf_paths(first, layout.json_columns) if first is not None else []
    return header + [name for name in known_columns if name not in header]


def _shown(value: object) -> str:
    """A value in a message: a string quoted, anything else as compact JSON."""
    return repr(value) if isinstance(value, str) else compact(value)


def _value_shown(value: object) -> str:
    """A value in a rejection's value column: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else compact(value)


class PathReader:
    """Cells of nested records in header order; a header name may be a dotted path."""

    def __init__(self, header: Sequence[str], layout: NestedLayout) -> None:
        self.header = list(header)
        self.layout = layout
        known = [name for name in self.header if header_key(name) in layout.known]
        self._known = frozenset(known)
        # each object on the way to a known name, with the names the mapping expects in it
        self._expected: dict[str, list[str]] = {}
        for name in known:
            parts = name.split(".")
            for depth in range(1, len(parts)):
                inside = self._expected.setdefault(".".join(parts[:depth]), [])
                if parts[depth] not in inside:
                    inside.append(parts[depth])

    def record(self, line: int, item: object, where: str) -> Record:
        """``where``: the item's JSONPath (``$[0]`` in an array, ``$`` for a JSON line)."""
        if not isinstance(item, dict):
            return Record(
                line,
                [],
                (
                    CellError(
                        where, compact(item), f"item is a JSON {type_name(item)}, not an object"
                    ),
                ),
            )
        cells: list[str] = []
        errors: dict[str, CellError] = {}  # one per misplaced value, however many names pass it
        for name in self.header:
            found = self._value(item, name, where)
            if isinstance(found, CellError):
                errors.setdefault(found.column or where, found)
                cells.append("")
                continue
            text = self._text(name, found, where)
            if isinstance(text, CellError):
                errors.setdefault(text.column or where, text)
                text = ""
            cells.append(text)
        return Record(line, cells, tuple(errors.values()))

    def _value(self, item: dict[str, object], name: str, where: str) -> object:
        """The value at ``name``, ``None`` when absent, or why the path cannot be followed."""
        if name in item or "." not in name:
            return item.get(name)  # a literal name, dots and all, wins over a path
        parts = name.split(".")
        current: object = item
        for depth, part in enumerate(parts):
            if current is None:
                return None
            if not isinstance(current, dict):
                if name not in self._known:
                    return None
                inside = ".".join(parts[:depth])
                expected = "/".join(self._expected.get(inside, [part]))
                return CellError(
                    f"{where}.{inside}",
                    _value_shown(current),
                    f"expected an object with {expected} names, got the "
                    f"{type_name(current)} {_shown(current)}",
                )
            current = current.get(part)
        return current

    def _text(self, name: str, value: object, where: str) -> str | CellError:
        if name not in self._known:
            # a name no field takes is ignored, even when it holds an object or array
            text = cell_text(name, value)
            return "" if isinstance(text, CellError) else text
        path = f"{where}.{name}"
        if name in self.layout.arrays and not (value is None or isinstance(value, list)):
            return CellError(
                path,
                _value_shown(value),
                f"expected an array of objects, got the {type_name(value)} {_shown(value)}",
            )
        return cell_text(path, value, name in self.layout.json_columns)
