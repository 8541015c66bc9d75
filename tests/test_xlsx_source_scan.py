"""XlsxSource's fast paths keep the slow paths' answers: the scan of special cells by runs of
rows, the lazy wait for it, and the per-type cell text."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from services.importer import xlsx_source
from services.importer.xlsx_source import XlsxSource, _Special, _SpecialCells, cell_text

ODD = Path(__file__).parent / "data" / "odd"


def whole(xml: bytes) -> dict[tuple[int, int], _Special]:
    scanner = _SpecialCells()
    scanner.parse(io.BytesIO(xml))
    return scanner.found


def by_runs(xml: bytes) -> dict[tuple[int, int], _Special]:
    return _SpecialCells.find(lambda: io.BytesIO(xml), threading.Event())


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few bytes: rows and cells are cut at every possible place."""
    monkeypatch.setattr(xlsx_source, "CHUNK", 37)
    monkeypatch.setattr(xlsx_source, "_NO_ROW_END", 4096)  # the prefixed sheet is larger


def sheet_xml(rows: list[str], prefix: str = "") -> bytes:
    ns = f"xmlns{':' + prefix[:-1] if prefix else ''}"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{prefix}worksheet '
        f'{ns}="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<{prefix}sheetData>{''.join(rows)}</{prefix}sheetData>"
        f"<{prefix}headerFooter><{prefix}firstHeader>&amp;P</{prefix}firstHeader>"
        f"</{prefix}headerFooter></{prefix}worksheet>"
    ).encode()


def many_rows(with_r: bool = True, p: str = "") -> list[str]:
    """Rows of an inline string (with marker-like text) and a value, an error, a formula
    with or without its result, and now and then an empty styled row."""
    rows = []
    for n in range(1, 120):
        r = f' r="{n}"' if with_r else ""
        a = f' r="A{n}"' if with_r else ""
        b = f' r="B{n}"' if with_r else ""
        look = 'row&gt; t="e"' if n % 7 == 0 else ""  # text like a marker: a false hit
        text = f'<{p}c{a} t="inlineStr"><{p}is><{p}t>{look}{n}</{p}t></{p}is></{p}c>'
        if n % 17 == 0:
            value = f'<{p}c{b} t="e"><{p}v>#N/A</{p}v></{p}c>'
        elif n % 23 == 0:
            value = f"<{p}c{b}><{p}f>A{n}+1</{p}f><{p}v></{p}v></{p}c>"
        elif n % 5 == 0:
            value = f"<{p}c{b}><{p}f>A{n}*2</{p}f><{p}v>4</{p}v></{p}c>"
        else:
            value = f"<{p}c{b}><{p}v>{n}</{p}v></{p}c>"
        rows.append(f"<{p}row{r}>{text}{value}</{p}row>")
        if n % 11 == 0:
            rows.append(f'<{p}row r="{n + 1}" s="1"/>' if with_r else f"<{p}row/>")
    return rows


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize(
    "xml",
    [
        sheet_xml(many_rows()),
        sheet_xml(many_rows(with_r=False)),  # rows and cells numbered by counting
        sheet_xml(many_rows(p="x:"), prefix="x:"),  # no plain </row>: parsed whole
        # a row end tag in a comment cuts a run badly: the whole parse decides
        sheet_xml([*many_rows()[:40], '<!-- <row r="9"><c t="e"></row> -->', *many_rows()[40:]]),
        sheet_xml([]),
    ],
    ids=["plain", "no_r", "prefixed", "comment", "empty"],
)
def test_scan_by_runs_finds_what_the_whole_parse_finds(
    xml: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = whole(xml)
    parsed: list[int] = []
    parse = _SpecialCells.parse

    def counted(self: _SpecialCells, stream: IO[bytes], head: bytes = b"") -> None:
        parsed.append(1)
        parse(self, stream, head)

    monkeypatch.setattr(_SpecialCells, "parse", counted)
    assert by_runs(xml) == expected
    if b"<row" in xml:
        assert len(expected) > 5
        if b"<row>" in xml or b"<row " in xml:
            assert len(parsed) < xml.count(b"<row")  # runs without a marker were skipped


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("name", sorted(p.name for p in ODD.glob("*.xlsx")))
def test_scan_by_runs_over_the_odd_files(name: str) -> None:
    with zipfile.ZipFile(ODD / name) as archive:
        for member in archive.namelist():
            if member.startswith("xl/worksheets/sheet"):
                xml = archive.read(member)
                assert by_runs(xml) == whole(xml), member


def test_malformed_sheet_xml_is_still_refused() -> None:
    with pytest.raises(Exception, match="mismatched tag"):
        by_runs(sheet_xml(['<row r="1"><c r="A1" t="e"><v>#N/A</v></row>']))


def test_stopped_scan_reads_no_further() -> None:
    stop = threading.Event()
    stop.set()
    reads: list[int] = []

    class Stream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(1)
            return super().read(size)

    opener: Callable[[], io.BytesIO] = lambda: Stream(sheet_xml(many_rows()))  # noqa: E731
    assert _SpecialCells.find(opener, stop) == {}
    assert len(reads) == 1


def save(wb: openpyxl.Workbook, path: Path) -> Path:
    wb.save(path)
    return path


@pytest.mark.usefixtures("tiny_chunks")
def test_one_error_among_many_rows(tmp_path: Path) -> None:
    # the scan, in its thread, parses the one run of rows holding the error, numbered right
    wb = openpyxl.Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)
    ws.append(["id", "gpa"])
    for n in range(1, 300):
        ws.append([n, "#DIV/0!" if n == 250 else 17.5])
    source = XlsxSource(save(wb, tmp_path / "dense.xlsx"))
    try:
        source.header()
        records = list(source.records())
    finally:
        source.close()
    assert len(records) == 299
    bad = [r for r in records if r.errors]
    assert [(r.line, r.cells, [e.value for e in r.errors]) for r in bad] == [
        (251, ["250", ""], ["#DIV/0!"])
    ]


def test_cell_text_by_type_and_for_subclasses() -> None:
    class Code(int):
        pass

    class Stamp(dt.datetime):
        pass

    assert [cell_text(v) for v in ("007", True, False, 12, -3.0, 0.5)] == [
        "007",
        "true",
        "false",
        "12",
        "-3",
        "0.5",
    ]
    assert cell_text(-(2.0**53)) == "-9007199254740992.0"
    assert cell_text(Code(5)) == "5"
    assert cell_text(Stamp(2020, 1, 2, 3, 4)) == "2020-01-02T03:04:00"
    assert cell_text(dt.timedelta(hours=-1, minutes=-30)) == "-1:30:00"
