"""Streamed CSV reading: encoding and delimiter detection, one record at a time.

The file is never read whole: a sample decides the encoding and the delimiter, then the
csv module reads through a text wrapper. Each record comes with the line it starts on,
the line users see in their editor.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
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


@dataclass(frozen=True, slots=True)
class CellError:
    """A cell the reader could not turn into text (an Excel error, a nested JSON object)."""

    column: str | None
    value: str | None
    message: str


@dataclass(slots=True)
class RecordBatch:
    """Consecutive records, column-friendly: their lines, their cells, and the errors of the
    few that have any (by position in the batch)."""

    lines: list[int]
    rows: list[list[str]]
    errors: dict[int, tuple[CellError, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def tail(self, start: int) -> RecordBatch:
        """The records from position ``start`` on (a resumed run skips the rest)."""
        errors = {i - start: e for i, e in self.errors.items() if i >= start}
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
    return not cells or (len(cells) == 1 and not cells[0].strip())


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
        self._text = io.TextIOWrapper(
            self._raw, encoding=self.encoding, newline="", errors="strict"
        )

    @property
    def bytes_read(self) -> int:
        return self._raw.tell()

    def header(self) -> list[str]:
        first = next(self._records(), None)
        if first is None:
            raise JobFailure("empty_file", f"{self.path.name} is empty: no header row")
        return [cell.strip().lstrip("\ufeff") for cell in first.cells]

    def _records(self) -> Iterator[Record]:
        if not hasattr(self, "_reader"):
            csv.field_size_limit(FIELD_SIZE_LIMIT)
            self._reader = csv.reader(self._text, delimiter=self.delimiter, strict=False)
            self._line = 1
        reader = self._reader
        while True:
            start = reader.line_num + 1
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

        The csv module reads the whole batch in C; the line each record starts on is worked
        out afterwards from the line count, which only a quoted line break makes uneven.
        """
        if not hasattr(self, "_reader"):
            self.header()
        reader = self._reader
        start = reader.line_num
        try:
            rows = list(islice(reader, count))
        except UnicodeDecodeError as e:
            raise JobFailure(
                "unreadable_file",
                f"{self.path.name}: bytes near line {reader.line_num + 1} are not valid "
                f"{self.encoding}",
            ) from e
        except csv.Error as e:
            raise JobFailure(
                "unreadable_file", f"{self.path.name} line {reader.line_num}: {e}"
            ) from e
        if not rows:
            return None
        if reader.line_num - start == len(rows):
            lines = list(range(start + 1, reader.line_num + 1))
        else:
            lines = _starting_lines(start, rows)
        if min(map(len, rows)) <= 1:
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
