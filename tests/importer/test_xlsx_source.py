"""XlsxSource over the odd files and workbooks written here with openpyxl."""

from __future__ import annotations

import datetime as dt
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from openpyxl.worksheet.worksheet import Worksheet

from services.importer.csv_source import CellError, Record
from services.importer.errors import JobFailure
from services.importer.xlsx_source import XlsxSource, cell_text, column_letters

ODD = Path(__file__).parent.parent / "data" / "odd"


def read_all(path: Path, **options: str | int) -> tuple[list[str], list[Record], XlsxSource]:
    source = XlsxSource(path, **options)  # type: ignore[arg-type]
    try:
        return source.header(), list(source.records()), source
    finally:
        source.close()


def save(wb: openpyxl.Workbook, tmp_path: Path, name: str = "input.xlsx") -> Path:
    path = tmp_path / name
    wb.save(path)
    return path


def sheet(wb: openpyxl.Workbook) -> Worksheet:
    ws = wb.active
    assert isinstance(ws, Worksheet)
    return ws


def test_c11_phantom_rows_cost_nothing() -> None:
    started = time.perf_counter()
    header, records, source = read_all(ODD / "C11_xlsx_phantom_rows.xlsx")
    assert time.perf_counter() - started < 2
    assert header == ["student_no", "first_name", "last_name"]
    assert [(r.line, r.cells) for r in records] == [
        (2, ["401100211", "Kaveh", "Jamshidi"]),
        (3, ["401100212", "Roya", "Ansari"]),
        (4, ["401100213", "Behnam", "Tavakoli"]),
    ]
    assert source.bytes_read == source.bytes_total


def test_c12_dates_and_serials() -> None:
    _, records, _ = read_all(ODD / "C12_xlsx_date_serials.xlsx")
    # a date-formatted serial is a date; an unformatted one stays the number for validation
    assert [(r.line, r.cells) for r in records] == [
        (2, ["401100221", "2019-09-23"]),
        (3, ["401100222", "43731"]),
        (4, ["401100223", "2019-09-23"]),
        (5, ["401100224", "60"]),
    ]


def test_c14_formula_without_cached_value_is_a_cell_error() -> None:
    header, records, _ = read_all(ODD / "C14_xlsx_formulas_cached_values.xlsx")
    assert header == ["course_code", "credits_theory", "credits_lab", "credits"]
    by_line = {r.line: r for r in records}
    assert by_line[2].cells == ["MA201", "2", "1", "3"]  # cached result of =B2+C2
    assert by_line[4].cells == ["EE201", "2", "1", "3"]
    assert not by_line[2].errors
    assert not by_line[4].errors
    (error,) = by_line[3].errors
    assert error.column == "credits"
    assert error.value == "=B3+C3"
    assert "D3" in error.message
    assert "no stored result" in error.message


def test_c16_hidden_first_sheet_is_skipped() -> None:
    header, records, source = read_all(ODD / "C16_xlsx_hidden_first_sheet.xlsx")
    assert source.sheet_name == "Students"
    assert header == ["student_no", "first_name", "last_name"]
    assert [(r.line, r.cells[0]) for r in records] == [(2, "401100261"), (3, "401100262")]
    assert source.ignored_sheets == ["hidden sheet 'lookup'", "sheet 'Notes'"]


def test_c16_named_sheet_and_unknown_sheet() -> None:
    header, records, _ = read_all(ODD / "C16_xlsx_hidden_first_sheet.xlsx", sheet="lookup")
    assert header == ["code", "title"]
    assert records[0].cells == ["CE", "Computer Engineering"]
    with pytest.raises(JobFailure) as e:
        XlsxSource(ODD / "C16_xlsx_hidden_first_sheet.xlsx", sheet="students")
    assert e.value.code == "bad_option"
    assert "'lookup' (hidden), 'Students', 'Notes'" in e.value.message


def test_c34_excel_error_cells() -> None:
    _, records, _ = read_all(ODD / "C34_xlsx_excel_error_cells.xlsx")
    by_line = {r.line: r for r in records}
    assert by_line[2].cells == ["401100441", "17.5", "64"]
    assert by_line[6].cells == ["401100445", "42", "42"]
    assert not by_line[6].errors
    found = {
        line: [(e.column, e.value, e.message) for e in by_line[line].errors] for line in (3, 4, 5)
    }
    assert found == {
        3: [("gpa", "#DIV/0!", "Excel error value #DIV/0! in gpa (cell B3)")],
        4: [("gpa", "#N/A", "Excel error value #N/A in gpa (cell B4)")],
        5: [("credits_passed", "#REF!", "Excel error value #REF! in credits_passed (cell C5)")],
    }


def test_cell_types_to_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws.append(["code", "n", "x", "big", "flag", "day", "at", "clock", "card_text"])
    ws.append(
        [
            "00123",
            42,
            17.25,
            10**17,
            True,
            dt.date(2019, 9, 23),
            dt.datetime(2020, 1, 2, 3, 4, 5),
            dt.time(13, 30),
            "9999001234567891",
        ]
    )
    ws.append(["0", 3.0, 0.1 + 0.7, -7, False, dt.date(1999, 12, 31), None, None, "00"])
    _, records, _ = read_all(save(wb, tmp_path))
    assert records[0].cells == [
        "00123",
        "42",
        "17.25",
        "1e+17",  # above 2^53: keeps the float form, its digits are not all real
        "true",
        "2019-09-23",
        "2020-01-02T03:04:05",
        "13:30:00",
        "9999001234567891",
    ]
    assert records[1].cells == [
        "0",
        "3",
        "0.7999999999999999",  # the stored double, shortest round-trip text
        "-7",
        "false",
        "1999-12-31",
        "",
        "",
        "00",
    ]


def test_cell_text_of_durations_and_floats() -> None:
    assert cell_text(dt.timedelta(hours=30, minutes=5)) == "30:05:00"
    assert cell_text(2.0**53 - 1) == "9007199254740991"
    assert cell_text(1.5e-7) == "1.5e-07"
    assert column_letters(0) == "A"
    assert column_letters(27) == "AB"
    assert column_letters(29) == "AD"


def test_1904_date_system(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    ws = sheet(wb)
    ws.append(["student_no", "admission_date"])
    ws.append(["401100221", dt.date(2019, 9, 23)])
    path = save(wb, tmp_path)
    with zipfile.ZipFile(path) as archive:
        assert b'date1904="1"' in archive.read("xl/workbook.xml")
    _, records, _ = read_all(path)
    assert records[0].cells == ["401100221", "2019-09-23"]


def test_error_cells_and_uncached_formulas_written_by_openpyxl(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws.append(["a", "b", "total"])
    ws.append([1, "#NAME?", "=A2+1"])  # openpyxl writes '#...' codes as error cells
    ws.append([2, "#NULL!", 5])
    ws.append([3, "#NUM!", "#VALUE!"])
    _, records, _ = read_all(save(wb, tmp_path))
    got = [(r.line, r.cells, [(e.column, e.value) for e in r.errors]) for r in records]
    assert got == [
        (2, ["1", "", ""], [("b", "#NAME?"), ("total", "=A2+1")]),
        (3, ["2", "", "5"], [("b", "#NULL!")]),
        (4, ["3", "", ""], [("b", "#NUM!"), ("total", "#VALUE!")]),
    ]


def test_hidden_first_sheet_written_by_openpyxl(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    lookup = sheet(wb)
    lookup.title = "lookup"
    lookup.append(["code"])
    lookup.sheet_state = "hidden"
    data = wb.create_sheet("data")
    data.append(["id"])
    data.append(["7"])
    path = save(wb, tmp_path)
    header, records, source = read_all(path)
    assert (source.sheet_name, header, records[0].cells) == ("data", ["id"], ["7"])
    data.sheet_state = "hidden"
    wb.create_chartsheet("chart")
    with pytest.raises(JobFailure) as e:
        XlsxSource(save(wb, tmp_path, "all_hidden.xlsx"))
    assert e.value.code == "sheet_selection_required"
    assert "'lookup' (hidden), 'data' (hidden)" in e.value.message


def test_trailing_and_inner_empty_rows_and_columns(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws.append(["id", "name"])
    ws.append(["1", "a"])
    ws.append([None, "  "])  # blank (whitespace only): skipped, not an error
    ws.append(["3", None])
    bold = Font(bold=True)
    ws["Z5000"].font = bold  # styled but empty, far away
    ws["A9000"].font = bold
    ws["C2"] = ""  # an empty string cell beside the data
    header, records, source = read_all(save(wb, tmp_path))
    assert header == ["id", "name"]
    assert [(r.line, r.cells) for r in records] == [(2, ["1", "a"]), (4, ["3", ""])]
    assert source.bytes_read == source.bytes_total


def test_data_starting_away_from_a1_and_header_row(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws["C1"] = "Student list, 1402-1"  # a title above the header
    ws["C3"], ws["D3"] = " student_no ", "gpa"
    ws["C4"], ws["D4"] = "401100221", "#DIV/0!"
    ws["C6"], ws["D6"] = "401100222", 18
    path = save(wb, tmp_path)
    header, records, _ = read_all(path, header_row=3)
    assert header == ["student_no", "gpa"]
    assert [(r.line, r.cells) for r in records] == [
        (4, ["401100221", ""]),
        (6, ["401100222", "18"]),
    ]
    assert records[0].errors[0].message == "Excel error value #DIV/0! in gpa (cell D4)"
    with pytest.raises(JobFailure) as e:
        XlsxSource(path, header_row=2).header()
    assert e.value.code == "bad_header"
    assert "no header in row 2" in e.value.message


def test_merged_header_over_data_is_a_file_failure(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws.append(["student_no", "name", None])
    ws.merge_cells("B1:C1")
    ws.append(["401100221", "Sara", "Rahimi"])
    with pytest.raises(JobFailure) as e:
        XlsxSource(save(wb, tmp_path)).header()
    assert e.value.code == "bad_header"
    assert e.value.message.startswith("column 3 (C) of sheet 'Sheet' has data but no header")
    assert "merged header cells?" in e.value.message


def test_blank_header_column_without_data_is_dropped(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws.append(["id", None, "name"])
    ws.append(["1", None, "a"])
    header, records, _ = read_all(save(wb, tmp_path))
    assert header == ["id", "name"]
    assert records[0].cells == ["1", "a"]


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("student_no,name\n1,a\n")
    with pytest.raises(JobFailure) as e:
        XlsxSource(path)
    assert (e.value.code, e.value.message) == (
        "unreadable_file",
        "fake.xlsx is not an XLSX workbook",
    )
    other = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(JobFailure) as e:
        XlsxSource(other)
    assert e.value.message == "other.xlsx is not an XLSX workbook"


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    block = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(210):
                member.write(block)
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(JobFailure) as e:
        XlsxSource(path)
    assert e.value.code == "unreadable_file"
    assert f"decompresses to {210 * 1024 * 1024 + 11} bytes" in e.value.message


def _mixed_workbook(tmp_path: Path) -> Path:
    """Strings, numbers, dates, booleans, blank rows, a blank header column, an offset."""
    wb = openpyxl.Workbook()
    ws = sheet(wb)
    ws["B2"], ws["C2"], ws["E2"], ws["F2"] = "id", "born", "gpa", "active"
    rows = [
        ("0012", dt.date(2001, 3, 4), 17.5, True),
        (None, None, None, None),
        ("  ", None, "", None),
        (34, dt.datetime(1999, 1, 2, 3, 4, 5), 20, False),
        ("x", "1402/07/15", "۱۸", None),
    ]
    for offset, (a, b, c, d) in enumerate(rows):
        r = 3 + offset
        ws.cell(r, 2, a), ws.cell(r, 3, b), ws.cell(r, 5, c), ws.cell(r, 6, d)
    return save(wb, tmp_path, "mixed.xlsx")


Seen = list[tuple[int, list[str], tuple[CellError, ...]]]


def _batched(path: Path, size: int, **options: str | int) -> Seen:
    source = XlsxSource(path, **options)  # type: ignore[arg-type]
    try:
        source.header()
        seen: Seen = []
        while (batch := source.read(size)) is not None:
            assert 0 < len(batch) <= size
            seen.extend(
                (line, cells, batch.errors.get(i, ()))
                for i, (line, cells) in enumerate(zip(batch.lines, batch.rows, strict=True))
            )
        assert source.bytes_read == source.bytes_total
        return seen
    finally:
        source.close()


@pytest.mark.parametrize("size", [1, 2, 1000])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mixed", {"header_row": 2}),
        ("C11_xlsx_phantom_rows.xlsx", {}),
        ("C12_xlsx_date_serials.xlsx", {}),
        ("C14_xlsx_formulas_cached_values.xlsx", {}),
        ("C16_xlsx_hidden_first_sheet.xlsx", {}),
        ("C34_xlsx_excel_error_cells.xlsx", {}),
    ],
)
def test_batches_by_column_match_records(
    tmp_path: Path, name: str, options: dict[str, str | int], size: int
) -> None:
    """``read`` builds batches column by column; it must agree with ``records`` record for
    record: lines, cell texts, blank rows skipped, cell errors kept."""
    path = _mixed_workbook(tmp_path) if name == "mixed" else ODD / name
    _, records, _ = read_all(path, **options)
    assert records, "the workbook has data rows"
    assert _batched(path, size, **options) == [(r.line, r.cells, r.errors) for r in records]
