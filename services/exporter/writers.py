"""Streamed writers for CSV, JSON, JSON Lines and XLSX, one row at a time.

Text that a spreadsheet would run as a formula (starting with ``=`` ``+`` ``-`` ``@``, tab
or carriage return) is prefixed with an apostrophe in CSV, which spreadsheets evaluate; in
XLSX every text value is written as a string cell, which is never evaluated, so it keeps its
exact text; JSON keeps values exact. Identifiers stay text, so leading zeros survive.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

__all__ = ["RowWriter", "neutralise", "open_writer"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _as_text(value: Any, escape_formulas: bool = True) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value) if escape_formulas else value
    return str(value)


class RowWriter(Protocol):
    def write(self, row: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    def __init__(self, path: Path, columns: Sequence[str], escape_formulas: bool = True) -> None:
        self._file = open(path, "w", newline="", encoding="utf-8-sig")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self._writer.writerow(columns)
        self._escape = escape_formulas

    def write(self, row: Sequence[Any]) -> None:
        escape = self._escape
        self._writer.writerow([_as_text(v, escape) for v in row])

    def close(self) -> None:
        self._file.close()


class JsonLinesWriter:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._file = open(path, "wb")  # noqa: SIM115
        self._columns = list(columns)
        self._encoder = msgspec.json.Encoder(decimal_format="number")

    def _encode(self, row: Sequence[Any]) -> bytes:
        return self._encoder.encode(dict(zip(self._columns, row, strict=True)))

    def write(self, row: Sequence[Any]) -> None:
        self._file.write(self._encode(row) + b"\n")

    def close(self) -> None:
        self._file.close()


class JsonWriter(JsonLinesWriter):
    """A JSON array written element by element, so memory stays flat."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        super().__init__(path, columns)
        self._file.write(b"[")
        self._first = True

    def write(self, row: Sequence[Any]) -> None:
        self._file.write((b"\n" if self._first else b",\n") + self._encode(row))
        self._first = False

    def close(self) -> None:
        self._file.write(b"\n]\n")
        self._file.close()


_OOXML_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")


def _ooxml_text(text: str) -> str:
    """XML turns a carriage return into a line feed, so OOXML spells it ``_x000D_`` (and
    a literal ``_xHHHH_`` gets its underscore escaped); Excel and calamine read it back."""
    if "_x" in text:
        text = _OOXML_ESCAPE.sub(lambda m: "_x005F" + m.group(0), text)
    return text.replace("\r", "_x000D_") if "\r" in text else text


class XlsxWriter:
    """openpyxl's write-only mode streams rows to disk instead of keeping cells."""

    def __init__(self, path: Path, columns: Sequence[str], zone: str = "Asia/Tehran") -> None:
        self._path = path
        self._zone = ZoneInfo(zone)
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("export")
        self._sheet.append(list(columns))

    def _cell(self, value: Any) -> Any:
        if isinstance(value, str):
            # a string cell is never evaluated, so the text stays exactly as stored (no
            # apostrophe); openpyxl would otherwise write "=..." as a formula
            cell = WriteOnlyCell(self._sheet, value=_ooxml_text(value))
            cell.data_type = "s"  # text stays text: IDs keep their leading zeros
            return cell
        if isinstance(value, datetime) and value.tzinfo is not None:
            # Excel has no time zones, and a wall time can be ambiguous (a repeated hour), so
            # an instant is written as ISO text with its offset in the job's zone: exact, and
            # read back as the same instant
            cell = WriteOnlyCell(self._sheet, value=value.astimezone(self._zone).isoformat())
            cell.data_type = "s"
            return cell
        if isinstance(value, Decimal):
            return float(value)
        return value

    def write(self, row: Sequence[Any]) -> None:
        self._sheet.append([self._cell(v) for v in row])

    def close(self) -> None:
        self._book.save(self._path)


_WRITERS: dict[str, type[CsvWriter | JsonLinesWriter | JsonWriter | XlsxWriter]] = {
    "csv": CsvWriter,
    "json": JsonWriter,
    "jsonl": JsonLinesWriter,
    "xlsx": XlsxWriter,
}


def open_writer(
    fmt: str,
    path: Path,
    columns: Sequence[str],
    zone: str = "UTC",
    *,
    escape_formulas: bool = True,
) -> RowWriter:
    """``escape_formulas`` applies to CSV: an XLSX string cell is never run as a formula,
    and JSON is not opened by spreadsheets."""
    if fmt == "xlsx":
        return XlsxWriter(path, columns, zone)
    if fmt == "csv":
        return CsvWriter(path, columns, escape_formulas)
    return _WRITERS[fmt](path, columns)
