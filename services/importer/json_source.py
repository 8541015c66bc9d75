"""Streamed JSON reading: an array of objects, or JSON Lines, one record per object.

Neither file is read whole: ijson walks the array one item at a time and JSON Lines are read
line by line. Numbers never pass through float, so an integer beyond 2^53 keeps every digit and
"12.50" keeps its trailing zero. A number written with an exponent (9.999001234567891e15, 1e19)
keeps the exponent in its text: it came from a float, its digits past the 17th are not real,
and rendering it as plain digits would let it pass as an exact identifier.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import ijson  # type: ignore[import-untyped]
import msgspec

from services.importer.csv_source import CellError, Record
from services.importer.errors import JobFailure

__all__ = ["JsonLinesSource", "JsonSource", "cell_text"]

MAX_VALUE_SHOWN = 200
# Items that are not objects before the first object are held back until the header is known;
# past this many the file is clearly not a list of records
MAX_LEADING_NON_OBJECTS = 1000
_WHITESPACE = b" \t\r\n"


# json.dumps cannot write a Decimal as a number; msgspec can, without going through float
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _compact(value: object) -> str:
    text = _ENCODER.encode(value).decode("utf-8")
    return text if len(text) <= MAX_VALUE_SHOWN else text[:MAX_VALUE_SHOWN] + "…"


def _decimal_text(value: Decimal) -> str:
    # Both ijson and json.loads(parse_int=int) give int for plain integers, so a Decimal with a
    # non-negative exponent was written with an exponent: keep that visible (see module doc)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        return format(value, "f")
    return format(value, "e")


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def cell_text(column: str, value: object, json_column: bool = False) -> str | CellError:
    """The cell text of one JSON value, or why it has none. A nested value is kept whole,
    as JSON text, for a column that holds JSON; anywhere else it is a clear rejection."""
    if value is None:
        return ""
    if json_column and isinstance(value, dict | list):
        return _ENCODER.encode(value).decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    kind = "object" if isinstance(value, dict) else "array"
    return CellError(
        column,
        _compact(value),
        f"{column} holds a nested {kind}; map it to a JSON column or flatten it",
    )


def object_record(
    line: int, item: object, header: Sequence[str], json_columns: frozenset[str] = frozenset()
) -> Record:
    """A record of ``item``'s values in header order; keys outside the header are ignored."""
    if not isinstance(item, dict):
        return Record(
            line,
            [],
            (CellError(None, _compact(item), f"item is a JSON {_type_name(item)}, not an object"),),
        )
    cells: list[str] = []
    errors: list[CellError] = []
    for column in header:
        text = cell_text(column, item.get(column), column in json_columns)
        if isinstance(text, CellError):
            errors.append(text)
            text = ""
        cells.append(text)
    return Record(line, cells, tuple(errors))


def header_of(first: dict[str, Any] | None, known_columns: Sequence[str]) -> list[str]:
    header = list(first) if first is not None else []
    header += [name for name in known_columns if name not in header]
    return header


class _ObjectStream:
    """Shared header logic: the first object decides the header, items before it wait."""

    path: Path
    known_columns: Sequence[str]
    json_columns: frozenset[str] = frozenset()

    def _items(self) -> Iterator[tuple[int, object]]:
        raise NotImplementedError

    def _start(self) -> None:
        self._pending: list[tuple[int, object]] = []
        self._stream = self._items()
        first: dict[str, Any] | None = None
        for position, item in self._stream:
            self._pending.append((position, item))
            if isinstance(item, dict):
                first = item
                break
            if len(self._pending) > MAX_LEADING_NON_OBJECTS:
                raise JobFailure(
                    "invalid_json",
                    f"{self.path.name}: the first {MAX_LEADING_NON_OBJECTS} items are not "
                    "objects; expected one object per record",
                )
        if first is None and not self.known_columns:
            raise JobFailure("empty_file", f"{self.path.name} holds no JSON object: no header")
        self._header = header_of(first, self.known_columns)

    def header(self) -> list[str]:
        if not hasattr(self, "_header"):
            self._start()
        return list(self._header)

    def records(self) -> Iterator[Record]:
        """Data records, one per item; the header comes from the first object."""
        self.header()
        pending, self._pending = self._pending, []
        for position, item in pending:
            yield self._record(position, item)
        for position, item in self._stream:
            yield self._record(position, item)

    def _record(self, position: int, item: object) -> Record:
        if isinstance(item, _LineProblem):
            return Record(position, [], (CellError(None, item.text, item.message),))
        return object_record(position, item, self._header, self.json_columns)


class _CountingReader:
    """Counts bytes handed to the parser, so an error can say roughly where it is."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = raw.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.consumed += len(data)
        return data


class JsonSource(_ObjectStream):
    """Records of a top-level JSON array of objects; ``Record.line`` is the 1-based index."""

    def __init__(
        self,
        path: Path,
        *,
        known_columns: Sequence[str] = (),
        json_columns: Sequence[str] = (),
    ) -> None:
        self.json_columns = frozenset(json_columns)
        self.path = path
        self.known_columns = tuple(known_columns)
        self.bytes_total = path.stat().st_size
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self._skip_bom_and_check_array()
        except BaseException:
            self.close()
            raise

    def _skip_bom_and_check_array(self) -> None:
        head = self._raw.read(4096)
        start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        first = head[start:].lstrip(_WHITESPACE)[:1]
        if not first:
            raise JobFailure("empty_file", f"{self.path.name} is empty: no JSON array")
        if first == b"{":
            raise JobFailure(
                "invalid_json",
                f"{self.path.name}: the top-level JSON value is an object; expected an array "
                "of objects (one per record), or JSON Lines",
            )
        if first != b"[":
            raise JobFailure(
                "invalid_json",
                f"{self.path.name} does not start like JSON (first character {first!r}); is "
                "it really a JSON file? (check the job's format: csv, json, jsonl or xlsx)",
            )
        self._raw.seek(start)
        self._reader = _CountingReader(self._raw)

    @property
    def bytes_read(self) -> int:
        return self._reader.consumed

    def _items(self) -> Iterator[tuple[int, object]]:
        reader = self._reader
        index = 0
        try:
            for item in ijson.items(reader, "item", use_float=False):
                index += 1
                yield index, item
        except ijson.JSONError as e:
            # yajl's message is "<problem>\n<context>\n<caret>": keep the problem and context
            lines = [part.strip() for part in str(e).splitlines() if part.strip()]
            problem = lines[0] if lines else "malformed JSON"
            context = f" (near: {lines[1][:80]!r})" if len(lines) > 2 else ""
            truncated = " - is the file truncated?" if "premature EOF" in problem else ""
            raise JobFailure(
                "invalid_json",
                f"{self.path.name}: invalid JSON near byte {reader.consumed}, after item {index}: "
                f"{problem}{context}{truncated}",
            ) from e

    def close(self) -> None:
        self._raw.close()


class _LineProblem:
    """A JSON Lines line that holds no value; it becomes a record with an error."""

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        self.message = message


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class JsonLinesSource(_ObjectStream):
    """Records of a JSON Lines file; ``Record.line`` is the physical line number."""

    def __init__(
        self,
        path: Path,
        *,
        known_columns: Sequence[str] = (),
        json_columns: Sequence[str] = (),
    ) -> None:
        self.json_columns = frozenset(json_columns)
        self.path = path
        self.known_columns = tuple(known_columns)
        self.bytes_total = path.stat().st_size
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._bytes_read = 0

    @property
    def bytes_read(self) -> int:
        # tell() is not allowed while iterating a file's lines, so count them
        return self._bytes_read

    def _items(self) -> Iterator[tuple[int, object]]:
        for number, raw in enumerate(self._raw, start=1):
            self._bytes_read += len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            yield number, self._parse(number, raw)

    @staticmethod
    def _parse(number: int, raw: bytes) -> object:
        shown = raw.decode("utf-8", errors="replace").strip()
        shown = shown if len(shown) <= MAX_VALUE_SHOWN else shown[:MAX_VALUE_SHOWN] + "…"
        try:
            value = json.loads(
                raw.decode("utf-8"),
                parse_float=Decimal,
                parse_int=int,
                parse_constant=_no_constants,
            )
        except UnicodeDecodeError:
            return _LineProblem(shown, f"line {number} is not valid UTF-8")
        except ValueError as e:  # JSONDecodeError, or an integer too long to convert
            return _LineProblem(shown, f"line {number} is not valid JSON: {e}")
        if not isinstance(value, dict):
            return _LineProblem(
                shown, f"line {number} holds a JSON {_type_name(value)}, not an object"
            )
        return value

    def close(self) -> None:
        self._raw.close()
