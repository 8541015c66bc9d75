"""Streamed JSON reading: an array of objects, or JSON Lines, one record per object.

Neither file is read whole: ijson walks the array one item at a time and JSON Lines are read
line by line. Numbers never pass through float (see ``json_values``). A job that maps dotted
names reads nested records through ``nested.PathReader``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import ijson  # type: ignore[import-untyped]

from services.importer.csv_source import CellError, Record
from services.importer.errors import JobFailure
from services.importer.json_values import MAX_VALUE_SHOWN, cell_text, compact, type_name
from services.importer.nested import NestedLayout, PathReader, nested_header

__all__ = ["JsonLinesSource", "JsonSource", "cell_text"]

# Items that are not objects before the first object are held back until the header is known;
# past this many the file is clearly not a list of records
MAX_LEADING_NON_OBJECTS = 1000
# records nest a few levels (a record, an array of children, a JSON column's document)
MAX_DEPTH = 256
# what decides the depth: an escape pair (inside a string), a quote, a bracket
_TOKEN = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)
_WHITESPACE = b" \t\r\n"
# a UTF-16 pair escaped in JSON (an emoji as "\ud83d\ude00"), else one half of a pair alone
# (after any escaped backslashes: "\\ud800" is a backslash and text)
_SURROGATE_ESCAPE = re.compile(
    rb"(?<!\\)(?:\\\\)*"
    rb"(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_PAIR_LENGTH = 12


def object_record(
    line: int, item: object, header: Sequence[str], json_columns: frozenset[str] = frozenset()
) -> Record:
    """A record of ``item``'s values in header order; keys outside the header are ignored."""
    if not isinstance(item, dict):
        return Record(
            line,
            [],
            (CellError(None, compact(item), f"item is a JSON {type_name(item)}, not an object"),),
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
    # set when the job reads nested records through dotted names
    nested: NestedLayout | None = None
    _paths: PathReader | None = None

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
        if self.nested is None:
            self._header = header_of(first, self.known_columns)
        else:
            self._header = nested_header(first, self.known_columns, self.nested)
            self._paths = PathReader(self._header, self.nested)

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
        if self._paths is not None:
            return self._paths.record(position, item, self._where(position))
        return object_record(position, item, self._header, self.json_columns)

    def _where(self, position: int) -> str:
        """The JSONPath of the record at ``position``, for messages about its values."""
        raise NotImplementedError


class NestingTooDeepError(Exception):
    """The file nests arrays or objects deeper than ``MAX_DEPTH``."""


class _LoneSurrogateAhead(Exception):
    """The bytes about to be parsed escape half of a UTF-16 pair alone ("\\ud800")."""


class _DepthTracker:
    """The exact nesting depth of JSON bytes fed in order, strings and escapes told apart
    (a Python loop over the few bytes that matter: quotes, brackets, escape pairs)."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self._carry = b""  # a backslash that ended the last chunk: its pair is in this one

    def feed(self, data: bytes, offset: int) -> None:
        data = self._carry + data
        trailing = len(data) - len(data.rstrip(b"\\"))
        self._carry = b"\\" if trailing % 2 else b""
        if self._carry:
            data = data[:-1]
        depth, in_string = self.depth, self.in_string
        for token in _TOKEN.findall(data):
            if len(token) == 2:  # an escape pair: only inside strings, never structure
                continue
            if token == b'"':
                in_string = not in_string
            elif in_string:
                continue
            elif token in (b"[", b"{"):
                depth += 1
                if depth > MAX_DEPTH:
                    raise NestingTooDeepError(
                        f"arrays or objects nest more than {MAX_DEPTH} levels deep "
                        f"(in the bytes from {offset:,})"
                    )
            else:
                depth -= 1
        self.depth, self.in_string = depth, in_string


class _CountingReader:
    """Counts bytes handed to the parser, so an error can say roughly where it is, and
    refuses nesting deeper than ``MAX_DEPTH``: ijson's work and memory grow with the square
    of the depth, so 400 KB of brackets once took an importer to 23 GB.

    Counting brackets per chunk (in C) bounds the depth from above, strings included; only
    when that bound could pass the limit (deep data, or brackets in text) is the depth found
    exactly, from the start of the file, and then followed exactly from there on."""

    def __init__(self, raw: BinaryIO, *, watch_surrogates: bool = True) -> None:
        self._raw = raw
        self.consumed = self._start = raw.tell()
        self._bound = 0  # opened minus closed brackets so far, strings not told apart
        self._exact: _DepthTracker | None = None
        self._watch = watch_surrogates
        self._held = b""  # the last bytes read, where an escape may go on in the next read

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._watch:
            data = self._decided(data, size)
        if self._exact is not None:
            self._exact.feed(data, self.consumed)
        else:
            opened = data.count(b"[") + data.count(b"{")
            if self._bound + opened > MAX_DEPTH:
                self._exact = self._exact_until(self.consumed)
                self._exact.feed(data, self.consumed)
            else:
                self._bound += opened - data.count(b"]") - data.count(b"}")
        self.consumed += len(data)
        return data

    def _decided(self, data: bytes, size: int) -> bytes:
        """The bytes read so far up to where each escaped half of a UTF-16 pair is known to
        have its other half or not; the last few wait for the next read. Raises before the
        parser sees a half alone: yajl turns "\\ud800" into "?", "\\ud800\\u0041" into
        another character, and fails on a lone low half."""
        window = self._held + data
        while data and len(window) <= _PAIR_LENGTH:  # too few bytes to decide on: read on
            data = self._raw.read(max(size, 4096))
            window += data
        end = len(window) - _PAIR_LENGTH if data else len(window)
        if b"\\ud" in window or b"\\uD" in window:
            for found in _SURROGATE_ESCAPE.finditer(window):
                start, stop = found.span(1)
                if start >= end:
                    break
                if stop - start != _PAIR_LENGTH:
                    raise _LoneSurrogateAhead
                end = max(end, stop)
        while data and end > 1 and window[end - 1] == 0x5C:  # a backslash run waits whole
            end -= 1
        self._held = window[end:]
        return window[:end]

    def _exact_until(self, end: int) -> _DepthTracker:
        """The exact state after the bytes already handed out (read again from disk)."""
        tracker = _DepthTracker()
        position = self._start
        while position < end:
            block = os.pread(self._raw.fileno(), min(1 << 20, end - position), position)
            if not block:
                break
            tracker.feed(block, position)
            position += len(block)
        return tracker


class JsonSource(_ObjectStream):
    """Records of a top-level JSON array of objects; ``Record.line`` is the 1-based index."""

    def __init__(
        self,
        path: Path,
        *,
        known_columns: Sequence[str] = (),
        json_columns: Sequence[str] = (),
        nested: NestedLayout | None = None,
    ) -> None:
        self.json_columns = frozenset(json_columns)
        self.nested = nested
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
        self._first_byte = start
        self._reader = _CountingReader(self._raw)

    @property
    def bytes_read(self) -> int:
        return self._reader.consumed

    def _where(self, position: int) -> str:
        return f"$[{position - 1}]"  # the record's 0-based index in the top-level array

    def _items(self) -> Iterator[tuple[int, object]]:
        try:
            yield from self._parse(ijson.items, done=0)
        except _LoneSurrogateAhead:
            # yajl would mangle it: ijson's Python parser keeps it (the row is then rejected
            # by name, as a JSON Lines one is); it reads again from the top, far more slowly,
            # and hands on only the items after those already read
            self._raw.seek(self._first_byte)
            self._reader = _CountingReader(self._raw, watch_surrogates=False)
            yield from self._parse(ijson.get_backend("python").items, done=self._parsed)

    def _parse(self, items: Any, done: int) -> Iterator[tuple[int, object]]:
        reader = self._reader
        index = self._parsed = 0
        try:
            for item in items(reader, "item", use_float=False):
                index += 1
                if index > done:
                    self._parsed = index
                    yield index, item
        except NestingTooDeepError as e:
            raise JobFailure(
                "invalid_json", f"{self.path.name}: {e}; records nest a few levels at most"
            ) from e
        except (ijson.JSONError, UnicodeDecodeError) as e:
            raise JobFailure(
                "invalid_json",
                f"{self.path.name}: invalid JSON near byte {reader.consumed}, after item {index}: "
                + _problem(e),
            ) from e

    def close(self) -> None:
        self._raw.close()


def _problem(error: Exception) -> str:
    """What a JSON parser's error says is wrong, for a person: yajl's message is
    "<problem>\\n<context>\\n<caret>" (sometimes as bytes); ijson's Python parser wraps a
    decoding error, and calls a cut-off file incomplete."""
    cause = error.args[0] if error.args else ""
    bad = error if isinstance(error, UnicodeDecodeError) else cause
    if isinstance(bad, UnicodeDecodeError):
        shown = bad.object[bad.start : bad.start + 3].hex(" ").upper()
        return f"bytes that are not valid UTF-8 ({shown}; save the file as UTF-8)"
    text = cause.decode("utf-8", "replace") if isinstance(cause, bytes) else str(cause)
    lines = [part.strip() for part in text.splitlines() if part.strip()]
    problem = lines[0] if lines else "malformed JSON"
    if "invalid bytes in UTF8" in problem:
        problem = "bytes that are not valid UTF-8 (save the file as UTF-8)"
    context = f" (near: {lines[1][:80]!r})" if len(lines) > 2 else ""
    cut_off = "premature EOF" in problem or problem.startswith("Incomplete")
    return f"{problem}{context}" + (" - is the file truncated?" if cut_off else "")


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
        nested: NestedLayout | None = None,
    ) -> None:
        self.json_columns = frozenset(json_columns)
        self.nested = nested
        self.path = path
        self.known_columns = tuple(known_columns)
        self.bytes_total = path.stat().st_size
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._bytes_read = 0

    @property
    def bytes_read(self) -> int:
        # tell() is not allowed while iterating a file's lines, so count them
        return self._bytes_read

    def _where(self, position: int) -> str:
        return "$"  # each line is a document of its own; the row number is its line

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
        except RecursionError:
            return _LineProblem(shown, f"line {number} nests arrays or objects too deeply")
        if not isinstance(value, dict):
            return _LineProblem(
                shown, f"line {number} holds a JSON {type_name(value)}, not an object"
            )
        return value

    def close(self) -> None:
        self._raw.close()
