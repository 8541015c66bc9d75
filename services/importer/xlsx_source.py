"""XLSX reading: one worksheet's rows as records, cells as text.

python-calamine reads the cell values (cached formula results, dates from the cell formats,
the 1904 date system). It hands back error cells and formulas without a stored result as empty
strings, though, and an empty cell is NULL downstream: so the sheet's XML is also scanned,
streamed, for those cells, and they become cell errors instead of silent NULLs. The scan runs
in a thread while calamine parses (which releases the GIL), so it costs little time, and expat
parses only the runs of rows where a quick byte search finds a formula or an error cell.

calamine loads the chosen sheet whole (python-calamine has no lazy reader: iter_rows walks the
parsed sheet), so memory grows with the sheet, about what calamine alone needs; rows are turned
into Python objects one at a time. calamine ignores styled empty cells, so a sheet declaring
A1:XFD1048576 with three data rows costs what three rows cost.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree
from xml.parsers import expat

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from services.importer.csv_source import CellError, Record, RecordBatch
from services.importer.errors import JobFailure

__all__ = ["XlsxSource"]

MAX_RATIO = 100
MAX_UNCOMPRESSED = 200 * 1024 * 1024
CHUNK = 1024 * 1024
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
# an <f> element (maybe namespace-prefixed) or an error-typed cell; few plain byte searches,
# since a regex over a sheet's whole XML costs more than calamine's own parse. A false hit
# (<firstHeader>, a cell's text) only costs parsing that run of rows.
_MARKERS = (b"<f", b":f", b't="e"', b"t='e'")
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")
_ROW_END = b"</row>"
# this much XML and no plain </row> yet: the sheet's tags are namespace-prefixed
_NO_ROW_END = 4 * CHUNK

Value = int | float | str | bool | dt.time | dt.date | dt.datetime | dt.timedelta


@dataclass(frozen=True, slots=True)
class _Special:
    """A cell calamine reports as empty that is not: an Excel error or an uncached formula."""

    ref: str
    error: str | None
    formula: str | None


def column_letters(index: int) -> str:
    """Excel's letters for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


_EXACT = 2.0**53


def _float_text(value: float) -> str:
    # below 2^53 an integral float is an exact integer; above, its digits are not all real,
    # so keep the float form and let identifier columns reject it instead of storing noise
    if value.is_integer() and -_EXACT < value < _EXACT:
        return str(int(value))
    return repr(value)


def _duration_text(value: dt.timedelta) -> str:
    # a duration ([h]:mm format): total hours as Excel shows them
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


# the text of each type calamine returns, found by its exact type: one dict probe per cell
# instead of a chain of isinstance tests (bool before int, datetime before date for the
# subclass fallback in cell_text)
_TEXT: dict[type, Callable[[Any], str]] = {
    str: str,
    bool: _bool_text,
    int: str,
    float: _float_text,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    dt.timedelta: _duration_text,
}


def cell_text(value: Value) -> str:
    """The text of one calamine value, as an importer column expects it."""
    convert = _TEXT.get(type(value))
    if convert is None:  # a subclass: calamine gives none, but the first match is right
        convert = next(f for kind, f in _TEXT.items() if isinstance(value, kind))
    return convert(value)


def _check_zip(path: Path) -> None:
    """Refuse files that are not zips, and zip bombs, before calamine inflates anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {info.filename for info in infos}
    except (zipfile.BadZipFile, OSError) as e:
        raise JobFailure("unreadable_file", f"{path.name} is not an XLSX workbook") from e
    if "xl/workbook.xml" not in names:
        raise JobFailure("unreadable_file", f"{path.name} is not an XLSX workbook")
    packed = max(path.stat().st_size, 1)
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_RATIO * packed and unpacked > MAX_UNCOMPRESSED:
        raise JobFailure(
            "unreadable_file",
            f"{path.name} decompresses to {unpacked} bytes from {packed}; refusing a likely "
            "zip bomb",
        )


def _sheet_member(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding worksheet ``sheet``, from workbook.xml and its relationships."""
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rel_id = None
    for element in book.iter():
        if element.tag.endswith("}sheet") and element.get("name") == sheet:
            rel_id = element.get(f"{{{_REL_NS}}}id")
    if rel_id is None or "xl/_rels/workbook.xml.rels" not in archive.namelist():
        return None
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    for rel in rels.iter(f"{{{_PKG_REL_NS}}}Relationship"):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/")
            return posixpath.normpath(posixpath.join("xl", target))
    return None


class _SpecialCells:
    """Streams a sheet's XML and keeps only error cells and formulas with no stored result."""

    def __init__(self) -> None:
        self.found: dict[tuple[int, int], _Special] = {}
        self._row = 0
        self._col = -1
        self._cell: dict[str, str] | None = None
        self._formula: list[str] | None = None
        self._value: list[str] | None = None
        self._text: list[str] | None = None

    @classmethod
    def find(
        cls, open_sheet: Callable[[], IO[bytes]], stop: threading.Event
    ) -> dict[tuple[int, int], _Special]:
        """The special cells of the sheet ``open_sheet`` streams; ExpatError if it is malformed."""
        scanner = cls()
        try:
            with open_sheet() as stream:
                scanner.parse_runs(stream, stop)
        except expat.ExpatError:
            # a row end tag inside a comment or CDATA cut a run badly: parse the sheet whole
            scanner = cls()
            with open_sheet() as stream:
                scanner.parse(stream)
        return scanner.found

    def parse_runs(self, stream: IO[bytes], stop: threading.Event) -> None:
        """Parse only the runs of whole rows where a marker shows: only they can hold a special
        cell, and skipping the rest spares expat's per-element callbacks, most of its cost."""
        pending = b""
        cut_once = False
        while chunk := stream.read(CHUNK):
            if stop.is_set():
                return
            pending += chunk
            cut = pending.rfind(_ROW_END) + len(_ROW_END)
            if cut >= len(_ROW_END):
                self._run(pending[:cut])
                pending, cut_once = pending[cut:], True
            elif not cut_once and len(pending) > _NO_ROW_END:
                # no plain </row>: its rows are namespace-prefixed (<x:row>); parse it all
                self.parse(stream, pending)
                return
        if not cut_once:
            self.parse(stream, pending)
        # else what is left after the last row holds no cells

    def _run(self, run: bytes) -> None:
        start = run.find(b"<row")
        if start < 0 or not any(marker in run for marker in _MARKERS):
            # rows without r are numbered by counting, even those not parsed
            self._row += run.count(b"<row")
            return
        self.parse(io.BytesIO(b""), b"<rows>" + run[start:] + b"</rows>")

    def parse(self, stream: IO[bytes], head: bytes = b"") -> None:
        """Parse ``head`` and then the rest of ``stream`` as one document."""
        parser = expat.ParserCreate()
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        parser.buffer_text = True
        parser.Parse(head, False)
        while chunk := stream.read(CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        name = tag.rpartition(":")[2]
        if name == "row":
            # r is optional in the format: rows without it follow the previous one
            self._row = int(attrs.get("r", self._row + 1))
            self._col = -1
        elif name == "c":
            match = _CELL_REF.match(attrs.get("r", ""))
            self._col = _column_index(match.group(1)) if match else self._col + 1
            self._cell = attrs
            self._formula = None
            self._value = None
        elif self._cell is not None and name == "f":
            self._formula = self._text = []
        elif self._cell is not None and name == "v":
            self._value = self._text = []

    def _chars(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def _cached(self) -> bool:
        # openpyxl writes <v/> for a formula it never computed; an empty <v> is a real result
        # only for a string formula (="")
        if self._value is None:
            return False
        return bool("".join(self._value)) or (
            self._cell is not None and self._cell.get("t") == "str"
        )

    def _end(self, tag: str) -> None:
        name = tag.rpartition(":")[2]
        if name in ("f", "v"):
            self._text = None
        elif name == "c" and self._cell is not None:
            ref = f"{column_letters(self._col)}{self._row}"
            position = (self._row, self._col)
            if self._cell.get("t") == "e":
                error = "".join(self._value or []).strip() or "#VALUE!"
                self.found[position] = _Special(ref, error, None)
            elif self._formula is not None and not self._cached():
                self.found[position] = _Special(ref, None, "".join(self._formula))
            self._cell = None


class XlsxSource:
    """Records of one worksheet; ``Record.line`` is the worksheet row number."""

    def __init__(self, path: Path, *, sheet: str | None = None, header_row: int = 1) -> None:
        if header_row < 1:
            raise JobFailure("bad_option", f"header_row must be 1 or more, not {header_row}")
        self.path = path
        self.bytes_total = path.stat().st_size
        self.header_row = header_row
        self.ignored_sheets: list[str] = []
        """Sheets not imported, for a warning ("hidden sheet 'lookup' ignored")."""
        self._closed = threading.Event()
        _check_zip(path)
        try:
            self._book = CalamineWorkbook.from_path(path)
        except CalamineError as e:
            raise JobFailure("unreadable_file", f"{path.name}: cannot read workbook: {e}") from e
        try:
            self.sheet_name = self._choose(sheet)
            # calamine parses the sheet without holding the GIL: scan its XML meanwhile
            pool = ThreadPoolExecutor(1, thread_name_prefix="xlsx-scan")
            scan = pool.submit(self._scan_special)
            pool.shutdown(wait=False)
            self._sheet: CalamineSheet = self._book.get_sheet_by_name(self.sheet_name)
            self._special = scan.result()
        except CalamineError as e:
            self.close()
            raise JobFailure("unreadable_file", f"{path.name}: cannot read sheet: {e}") from e
        except BaseException:
            self.close()
            raise
        end = self._sheet.end
        self._rows_total = end[0] + 1 if end is not None else 0
        self._col0 = self._sheet.start[1] if self._sheet.start is not None else 0
        self._rows_done = 0

    def _describe_sheets(self) -> str:
        parts = []
        for meta in self._book.sheets_metadata:
            note = "" if meta.visible == SheetVisibleEnum.Visible else " (hidden)"
            parts.append(f"{meta.name!r}{note}")
        return ", ".join(parts)

    def _choose(self, sheet: str | None) -> str:
        metas = self._book.sheets_metadata
        if sheet is not None:
            if sheet not in self._book.sheet_names:
                raise JobFailure(
                    "bad_option",
                    f"{self.path.name} has no sheet {sheet!r}; its sheets are "
                    f"{self._describe_sheets()}",
                )
            chosen = sheet
        else:
            visible = [
                m.name
                for m in metas
                if m.typ == SheetTypeEnum.WorkSheet and m.visible == SheetVisibleEnum.Visible
            ]
            if not visible:
                raise JobFailure(
                    "sheet_selection_required",
                    f"{self.path.name} has no visible worksheet; choose one of "
                    f"{self._describe_sheets()}",
                )
            # a hidden first sheet is usually a lookup table: the user means the first they see
            chosen = visible[0]
        for meta in metas:
            if meta.name != chosen:
                hidden = "" if meta.visible == SheetVisibleEnum.Visible else "hidden "
                self.ignored_sheets.append(f"{hidden}sheet {meta.name!r}")
        return chosen

    def _scan_special(self) -> dict[tuple[int, int], _Special]:
        with zipfile.ZipFile(self.path) as archive:
            member = _sheet_member(archive, self.sheet_name)
            if member is None or member not in archive.namelist():
                return {}
            try:
                return _SpecialCells.find(lambda: archive.open(member), self._closed)
            except expat.ExpatError as e:
                raise JobFailure(
                    "unreadable_file", f"{self.path.name}: sheet XML is malformed: {e}"
                ) from e

    @property
    def bytes_read(self) -> int:
        if not self._rows_total:
            return self.bytes_total
        return min(self.bytes_total, self.bytes_total * self._rows_done // self._rows_total)

    def _rows(self) -> Iterator[tuple[int, list[Value]]]:
        # calamine yields rows from worksheet row 1 but columns from the first used column
        for index, row in enumerate(self._sheet.iter_rows()):
            self._rows_done = index + 1
            yield index + 1, row

    @staticmethod
    def _error(special: _Special, column: str) -> CellError:
        if special.error is not None:
            return CellError(
                column,
                special.error,
                f"Excel error value {special.error} in {column} (cell {special.ref})",
            )
        return CellError(
            column,
            f"={special.formula}",
            f"cell {special.ref} ({column}) holds ={special.formula} with no stored result; "
            "open and save the file in Excel, or paste values",
        )

    def header(self) -> list[str]:
        if not hasattr(self, "_header"):
            self._header, self._keep = self._read_header()
        return list(self._header)

    def _read_header(self) -> tuple[list[str], list[int]]:
        cells: list[str] | None = None
        for number, row in self._rows():
            if number == self.header_row:
                cells = [cell_text(v).strip() for v in row]
                break
        if cells is None or not any(cells):
            raise JobFailure(
                "empty_file" if self._rows_total == 0 else "bad_header",
                f"sheet {self.sheet_name!r} of {self.path.name} has no header in row "
                f"{self.header_row}" + ("" if self._rows_total else ": the sheet is empty"),
            )
        self._rows_done = 0  # the header pass is not progress: records() starts over
        blank = [i for i, name in enumerate(cells) if not name]
        with_data = self._columns_with_data(blank) if blank else set()
        for i in blank:
            if i in with_data:
                letters = column_letters(i + self._col0)
                merged = " (merged header cells?)" if self._in_merge(i) else ""
                raise JobFailure(
                    "bad_header",
                    f"column {i + self._col0 + 1} ({letters}) of sheet {self.sheet_name!r} has "
                    f"data but no header{merged}; name it in row {self.header_row} "
                    "or delete the column (if the header is in another row, set the job's "
                    "header_row, dm import --header-row)",
                )
        keep = [i for i, name in enumerate(cells) if name]
        self._width = len(cells)
        return [cells[i] for i in keep], keep

    def _in_merge(self, col: int) -> bool:
        row = self.header_row - 1
        col += self._col0
        for (r0, c0), (r1, c1) in self._sheet.merged_cell_ranges or []:
            if r0 <= row <= r1 and c0 <= col <= c1:
                return True
        return False

    def _columns_with_data(self, columns: list[int]) -> set[int]:
        """Which of ``columns`` hold a value below the header (a second pass, only when needed)."""
        found: set[int] = set()
        for number, row in self._rows():
            if number <= self.header_row:
                continue
            for i in columns:
                if i < len(row) and (row[i] != "" or (number, i + self._col0) in self._special):
                    found.add(i)
        return found

    def records(self) -> Iterator[Record]:
        """Data records below the header; blank rows are skipped, not reported."""
        self.header()
        keep = self._keep
        # calamine's rows all span the sheet's used columns, as the header row does: when
        # every column is kept (the usual case) a row needs no picking
        every = keep == list(range(self._width))
        text = _TEXT
        special = self._special
        rows = enumerate(self._sheet.iter_rows(), 1)
        # the hot loop: no nested generators, no call for a string cell (the common one),
        # builtins mapped in C for the blank test
        for number, row in islice(rows, self.header_row, None):
            self._rows_done = number
            if not every:
                row = [row[i] for i in keep]
            cells = [v if type(v) is str else text[type(v)](v) for v in row]  # exact types
            errors = self._errors_in(number, cells, special) if special else ()
            if errors or any(map(str.strip, cells)):
                yield Record(number, cells, errors)
        self._rows_done = self._rows_total

    def read(self, count: int) -> RecordBatch | None:
        """Up to ``count`` records below the header as one batch, by column, ``None`` at the
        end; blank rows are skipped. Use either ``read`` or ``records``.

        Each column is turned into text in one pass (none at all for a column of strings,
        the common case), and the validator takes the columns as they are. A sheet with
        error cells or uncached formulas goes through ``records``, which reports them."""
        if self._special:
            if not hasattr(self, "_records"):
                self._records = self.records()
            found = list(islice(self._records, count))
            return RecordBatch.of(found) if found else None
        if not hasattr(self, "_numbered"):
            self.header()
            self._numbered = islice(enumerate(self._sheet.iter_rows(), 1), self.header_row, None)
        text, keep = _TEXT, self._keep
        while part := list(islice(self._numbered, count)):
            lines, rows = map(list, zip(*part, strict=True))
            self._rows_done = lines[-1]
            # calamine's rows all span the sheet's used columns, as the header row does
            columns = [list(c) for c in zip(*rows, strict=True)]
            if len(columns) != self._width:
                columns = [
                    [row[i] if i < len(row) else "" for row in rows] for i in range(self._width)
                ]
            cells = []
            for i in keep:
                column = columns[i]
                if set(map(type, column)) != {str}:
                    column = [v if type(v) is str else text[type(v)](v) for v in column]
                cells.append(column)
            # a column with a value in every row (a key column, usually the first) means
            # no row is blank, and spares joining every row's cells to find out
            if cells and not any(all(map(str.strip, column)) for column in cells):
                joined = list(map("".join, zip(*cells, strict=True)))
                filled = [i for i, t in enumerate(joined) if t.strip()]
                if not filled:
                    continue  # only blank rows in this part
                lines = [lines[i] for i in filled]
                cells = [[column[i] for i in filled] for column in cells]
            return RecordBatch(lines, columns=cells)
        self._rows_done = self._rows_total
        return None

    def _errors_in(
        self, row: int, cells: list[str], special: dict[tuple[int, int], _Special]
    ) -> tuple[CellError, ...]:
        """Errors of the row's special cells, whose cells are emptied.

        calamine gives "" for them today; should a later version give the error text instead,
        the XML still decides, so "#N/A" never slips through as a value.
        """
        errors = []
        for position, i in enumerate(self._keep):
            found = special.get((row, i + self._col0))
            if found is not None:
                cells[position] = ""
                errors.append(self._error(found, self._header[position]))
        return tuple(errors)

    def close(self) -> None:
        self._closed.set()  # a scan still running (calamine failed) stops
        if hasattr(self, "_book"):
            self._book.close()
            del self._book
