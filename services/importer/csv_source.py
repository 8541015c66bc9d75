"""Streamed CSV reading: encoding and delimiter detection, one record at a time.

The file is never read whole: a sample decides the encoding and the delimiter, then the
csv module reads through a text wrapper. Each record comes with the line it starts on,
the line users see in their editor.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from operator import methodcaller
from pathlib import Path
from typing import BinaryIO, NamedTuple

from charset_normalizer import from_bytes

from services.importer.errors import JobFailure

__all__ = [
    "CellError",
    "CsvSource",
    "Record",
    "RecordBatch",
    "detect_delimiter",
    "detect_encoding",
    "looks_binary",
]

SAMPLE_BYTES = 256 * 1024
DELIMITERS = ",;\t|"
# one cell may be large (a notes column), but never larger than an upload may be; the
# validator then rejects it against its column's limit instead of the reader giving up
FIELD_SIZE_LIMIT = 128 * 1024 * 1024
LIKELY_LEGACY = ["cp1256", "cp1252"]
# how much text a batch read takes from the file at a time while no quote has been seen
PLAIN_BLOCK_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class CellError:
    """A cell the reader could not turn into text (an Excel error, a nested JSON object)."""

    column: str | None
    value: str | None
    message: str


class RecordBatch:
    """Consecutive records, column-friendly: their lines, their cells (by row, or by column
    when the reader split them that way), and the errors of the few that have any (by
    position in the batch)."""

    __slots__ = ("_delimiter", "_rows", "_text", "columns", "errors", "lines")

    def __init__(
        self,
        lines: list[int],
        rows: list[list[str]] | None = None,
        errors: dict[int, tuple[CellError, ...]] | None = None,
        *,
        columns: list[list[str]] | None = None,
        text: str | None = None,
        delimiter: str = ",",
    ) -> None:
        if rows is None and columns is None:
            raise ValueError("a batch needs its rows or its columns")
        self.lines = lines
        self._rows = rows
        self.errors = errors or {}
        # every record has one cell per column here: a reader that split a batch by
        # column has checked that
        self.columns = columns
        # the records' lines joined by "\n", when splitting each on the delimiter gives
        # its cells (no quotes): a far smaller way to keep them than one string per cell
        self._text = text
        self._delimiter = delimiter

    @property
    def rows(self) -> list[list[str]]:
        if self._rows is None:
            if self.columns is not None:
                self._rows = [list(cells) for cells in zip(*self.columns, strict=True)]
            else:
                assert self._text is not None
                d = self._delimiter
                self._rows = [line.split(d) for line in self._text.split("\n")]
        return self._rows

    @property
    def text(self) -> str | None:
        """The records' lines joined by "\n", when each splits on the delimiter into
        exactly its cells (no quotes, no line breaks inside cells)."""
        return self._text

    def compact(self) -> None:
        """Keep the cells as their lines' text only, once they have been checked: a chunk
        waiting for its write holds them just to show a rejected row's original cells."""
        if self._text is not None:
            self.columns = None
            self._rows = None

    def __len__(self) -> int:
        return len(self.lines)

    def tail(self, start: int) -> RecordBatch:
        """The records from position ``start`` on (a resumed run skips the rest)."""
        errors = {i - start: e for i, e in self.errors.items() if i >= start}
        if self.columns is not None and self._rows is None:
            columns = [cells[start:] for cells in self.columns]
            return RecordBatch(self.lines[start:], errors=errors, columns=columns)
        return RecordBatch(self.lines[start:], self.rows[start:], errors)

    @classmethod
    def of(cls, records: list[Record]) -> RecordBatch:
        errors = {i: r.errors for i, r in enumerate(records) if r.errors}
        return cls([r.line for r in records], [r.cells for r in records], errors)


class Record(NamedTuple):
    """One data record: where it starts (line, sheet row or array index) and its cells.

    A named tuple: one is made per row, and a frozen dataclass costs several times more."""

    line: int
    cells: list[str]
    errors: tuple[CellError, ...] = ()


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


def looks_binary(sample: bytes) -> bool:
    """Many control bytes mean an image, archive or spreadsheet, not a CSV.

    UTF-16 text is full of NUL bytes, so a UTF-16 byte order mark exempts the sample;
    a stray control byte in a real CSV is a bad row, handled later.
    """
    if not sample or sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    return controls > max(len(sample) // 100, 2)


def _blank(cells: list[str]) -> bool:
    """A blank line, or a record of empty cells only (a spreadsheet's empty row exported
    as ",,,,", or cells of spaces, which are trimmed): skipped as an XLSX sheet's empty rows
    are, not a row of missing values."""
    return not any(cells) or not any(map(str.strip, cells))


def _starting_lines(before: int, rows: list[list[str]]) -> list[int]:
    """The line each record starts on, after line ``before``: a record spans one line plus one
    per line break inside its quoted cells (CR LF, LF or CR, as the csv module splits them)."""
    lines = []
    line = before + 1
    for cells in rows:
        lines.append(line)
        line += 1
        for cell in cells:
            if "\n" in cell or "\r" in cell:
                line += cell.count("\n") + cell.count("\r") - cell.count("\r\n")
    return lines


def detect_encoding(sample: bytes, *, complete: bool = False) -> str:
    """The sample's encoding; ``complete`` says the sample is the whole file."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # a multi-byte character cut at the end of the sample is still UTF-8
        if complete or e.start < len(sample) - 4:
            # Excel on Windows saves Persian as cp1256 and Latin as cp1252: weigh those
            # first, since short samples fool an open-ended guess
            best = (
                from_bytes(sample, cp_isolation=LIKELY_LEGACY).best() or from_bytes(sample).best()
            )
            if best is None:
                raise JobFailure(
                    "unreadable_file",
                    "cannot tell the file's text encoding; set the job's encoding option",
                ) from e
            return best.encoding
    return "utf-8"


def detect_delimiter(text: str) -> str:
    head = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = head.splitlines()[0] if head else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


class CsvSource:
    """Records of a CSV file; ``bytes_read`` tells how far through the file we are."""

    def __init__(
        self, path: Path, *, encoding: str | None = None, delimiter: str | None = None
    ) -> None:
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise JobFailure(
                "bad_option",
                f"delimiter {delimiter!r} must be one character, not a quote or a line break",
            )
        self.path = path
        self.bytes_total = path.stat().st_size
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        sample = self._raw.read(SAMPLE_BYTES)
        self._raw.seek(0)
        if looks_binary(sample):
            self.close()
            raise JobFailure(
                "unreadable_file", f"{path.name} is not a text file (control bytes throughout)"
            )
        try:
            whole = len(sample) < SAMPLE_BYTES
            self.encoding = encoding or detect_encoding(sample, complete=whole)
            codecs.lookup(self.encoding)
        except LookupError as e:
            self.close()
            raise JobFailure("bad_option", f"unknown encoding {encoding!r}") from e
        text_sample = sample.decode(self.encoding, errors="ignore")
        self.delimiter = delimiter or detect_delimiter(text_sample)
        # a line of nothing but spaces, tabs and delimiters: a blank record
        self._blank_line = re.compile(f"^[ \t{re.escape(self.delimiter)}]*$", re.MULTILINE)
        self._text = io.TextIOWrapper(
            self._raw, encoding=self.encoding, newline="", errors="strict"
        )
        # read() splits lines itself until the first quote: then the csv module takes over
        # (a quoted cell may hold delimiters and line breaks)
        self._plain = True
        self._pending: list[str] = []  # lines read ahead, with their line endings
        # characters of the lines read ahead, and the bytes a character takes in them (from
        # a sample of their block): ``bytes_read`` leaves out what is read ahead of records
        self._pending_chars = 0
        self._bytes_per_char = 1.0
        self._line = 0  # the last line handed out
        self._offset = 0  # lines before the ones the csv reader is reading
        self._width = 0

    @property
    def bytes_read(self) -> int:
        """How far into the file the records handed out reach: the file's position, less
        the lines read ahead (at the bytes per character of the blocks they came in)."""
        position = self._raw.tell()
        if not self._pending_chars:
            return position
        return max(position - int(self._pending_chars * self._bytes_per_char), 0)

    def header(self) -> list[str]:
        # blank lines above the header (or a spreadsheet's empty rows) are no header
        first = next((r for r in self._records() if not _blank(r.cells)), None)
        if first is None:
            raise JobFailure("empty_file", f"{self.path.name} is empty: no header row")
        self._line = self._reader.line_num
        self._width = len(first.cells)
        return [cell.strip().lstrip("\ufeff") for cell in first.cells]

    def _start_reader(self, lines: Iterable[str], offset: int) -> None:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
        self._reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
        self._offset = offset

    def _records(self) -> Iterator[Record]:
        if not hasattr(self, "_reader"):
            self._start_reader(self._text, 0)
        reader = self._reader
        while True:
            start = self._offset + reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise JobFailure(
                    "unreadable_file",
                    f"{self.path.name}: bytes near line {start} are not valid {self.encoding}",
                ) from e
            except csv.Error as e:
                raise JobFailure("unreadable_file", f"{self.path.name} line {start}: {e}") from e
            yield Record(start, cells)

    def read(self, count: int) -> RecordBatch | None:
        """Up to ``count`` records (fewer once blank lines are dropped), ``None`` at the end.

        Use either ``read`` or ``records``, after ``header``. Until the file shows a quote,
        lines are split on the delimiter in a few C calls for the whole batch, by column;
        after that the csv module reads the whole batch in C, and the line each record starts
        on is worked out from the line breaks inside its quoted cells.
        """
        if not hasattr(self, "_reader"):
            self.header()
        if self._plain:
            batch = self._read_plain(count)
            if self._plain:
                return batch
        return self._read_quoted(count)

    def _read_plain(self, count: int) -> RecordBatch | None:
        pending = self._pending
        while len(pending) < count:
            try:
                more = self._text.readlines(PLAIN_BLOCK_CHARS)
            except UnicodeDecodeError as e:
                raise JobFailure(
                    "unreadable_file",
                    f"{self.path.name}: bytes near line {self._line + len(pending) + 1} are "
                    f"not valid {self.encoding}",
                ) from e
            if not more:
                break
            pending.extend(more)
            self._pending_chars += sum(map(len, more))
            sample = "".join(more[:64])
            encoded = sample.encode(self.encoding, errors="replace")
            self._bytes_per_char = len(encoded) / max(len(sample), 1)
        if not pending:
            return None
        taken = pending[:count]
        del pending[:count]
        text = "".join(taken)
        self._pending_chars -= len(text)
        if '"' in text:
            # from here on the csv module reads, starting with these lines
            self._plain = False
            self._start_reader(chain(taken, list(pending), self._text), self._line)
            pending.clear()
            self._pending_chars = 0
            return None
        first = self._line + 1
        self._line += len(taken)
        lines = list(range(first, first + len(taken)))
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        columns = None
        body = text[:-1] if text.endswith("\n") else text  # the lines, joined by "\n"
        if "\r" not in text and "\x00" not in text:
            columns = self._split_by_column(body, taken)
        if columns is not None:
            return RecordBatch(lines, columns=columns, text=body, delimiter=self.delimiter)
        # blank lines, ragged rows, a lone CR, a NUL: the csv module's reading, line by line
        # (without quotes no record spans two lines)
        rows = list(csv.reader(taken, delimiter=self.delimiter, strict=False))
        return self._without_blanks(lines, rows)

    def _split_by_column(self, body: str, taken: list[str]) -> list[list[str]] | None:
        """Cells by column when every line (of ``body``, joined by "\\n") has exactly the
        header's number of cells."""
        width, delimiter = self._width, self.delimiter
        if width < 2:
            return None  # one column: a blank line would pass for an empty cell
        if set(map(methodcaller("count", delimiter), taken)) != {width - 1}:
            return None
        # a line of empty cells (or spaces) is skipped, as a blank one, by the careful path;
        # only a line starting with one of them can be one
        starts = (" ", "\t", delimiter)
        if (
            body[:1] in starts or any(f"\n{c}" in body for c in starts)
        ) and self._blank_line.search(body):
            return None
        cells = body.replace("\n", delimiter).split(delimiter)
        if len(cells) != len(taken) * width:
            return None
        return [cells[position::width] for position in range(width)]

    def _read_quoted(self, count: int) -> RecordBatch | None:
        reader = self._reader
        start = self._offset + reader.line_num
        try:
            rows = list(islice(reader, count))
        except UnicodeDecodeError as e:
            raise JobFailure(
                "unreadable_file",
                f"{self.path.name}: bytes near line {self._offset + reader.line_num + 1} are "
                f"not valid {self.encoding}",
            ) from e
        except csv.Error as e:
            raise JobFailure(
                "unreadable_file", f"{self.path.name} line {self._offset + reader.line_num}: {e}"
            ) from e
        if not rows:
            return None
        end = self._offset + reader.line_num
        if end - start == len(rows):
            lines = list(range(start + 1, end + 1))
        else:
            lines = _starting_lines(start, rows)
        return self._without_blanks(lines, rows)

    @staticmethod
    def _without_blanks(lines: list[int], rows: list[list[str]]) -> RecordBatch:
        kept = [i for i, cells in enumerate(rows) if not _blank(cells)]
        if len(kept) < len(rows):
            lines, rows = [lines[i] for i in kept], [rows[i] for i in kept]
        return RecordBatch(lines, rows)

    def records(self) -> Iterator[Record]:
        """Data records after the header, blank lines skipped."""
        for record in self._records():
            if _blank(record.cells):
                continue
            yield record

    def close(self) -> None:
        self._raw.close()
