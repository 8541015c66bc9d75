"""CsvSource over small files written to tmp_path: encodings, delimiters, line numbers."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from services.importer.csv_source import CsvSource, Record
from services.importer.errors import JobFailure

# Persian names that cp1256 can encode (it has no Persian yeh, U+06CC)
PERSIAN = ["محمد احمدزاده", "زهرا کامران", "پرستو گلزار", "ژاله چمن", "حسن"]


def read_all(path: Path, **options: str) -> tuple[list[str], list[Record], CsvSource]:
    source = CsvSource(path, **options)
    try:
        header = source.header()
        records = list(source.records())
    finally:
        source.close()
    return header, records, source


def cells(records: list[Record]) -> list[list[str]]:
    return [r.cells for r in records]


def start_line(text: str, first_cell: str) -> int:
    """1-based line of the record whose first cell is ``first_cell``."""
    return text[: text.index("\n" + first_cell) + 1].count("\n") + 1


@pytest.fixture
def write(tmp_path: Path) -> Path:
    """Where each test writes its input file."""
    return tmp_path / "input.csv"


def test_utf8(write: Path) -> None:
    write.write_text("username,first_name\nu1,Ali\nu2,Sara\n", encoding="utf-8")
    header, records, source = read_all(write)
    assert source.encoding == "utf-8"
    assert source.delimiter == ","
    assert header == ["username", "first_name"]
    assert cells(records) == [["u1", "Ali"], ["u2", "Sara"]]
    assert [r.line for r in records] == [2, 3]


def test_utf8_with_bom(write: Path) -> None:
    write.write_bytes(codecs.BOM_UTF8 + "username,first_name\nu1,علی\n".encode())
    header, records, _ = read_all(write)
    assert header == ["username", "first_name"]
    assert not header[0].startswith("\ufeff")
    assert cells(records) == [["u1", "علی"]]


def test_utf16_le_with_bom_and_tabs(write: Path) -> None:
    text = "username\tfirst_name\r\n" + "".join(f"u{i}\t{n}\r\n" for i, n in enumerate(PERSIAN))
    write.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    header, records, source = read_all(write)
    assert source.delimiter == "\t"
    assert header == ["username", "first_name"]
    assert cells(records) == [[f"u{i}", n] for i, n in enumerate(PERSIAN)]


def test_cp1256_persian(write: Path) -> None:
    text = "username,first_name\n" + "".join(f"u{i},{n}\n" for i, n in enumerate(PERSIAN))
    write.write_bytes(text.encode("cp1256"))
    header, records, _ = read_all(write)
    assert header == ["username", "first_name"]
    assert [r.cells[1] for r in records] == PERSIAN


def test_cp1256_with_non_ascii_only_at_the_end(write: Path) -> None:
    name = PERSIAN[-1]
    write.write_bytes(f"username,first_name\nu1,{name}\n".encode("cp1256"))
    _, records, _ = read_all(write)
    assert cells(records) == [["u1", name]]


@pytest.mark.parametrize("delimiter", [";", "|", "\t", ","])
def test_delimiter_detected(write: Path, delimiter: str) -> None:
    rows = [
        ["username", "email", "role"],
        ["u1", "a@x.example", "staff"],
        ["u2", "b@x.example", "student"],
    ]
    write.write_text("".join(delimiter.join(r) + "\n" for r in rows), encoding="utf-8")
    header, records, source = read_all(write)
    assert source.delimiter == delimiter
    assert header == rows[0]
    assert cells(records) == rows[1:]


def test_explicit_delimiter_wins(write: Path) -> None:
    write.write_text("a;b,c\n1;2,3\n", encoding="utf-8")
    header, records, _ = read_all(write, delimiter=";")
    assert header == ["a", "b,c"]
    assert cells(records) == [["1", "2,3"]]


def test_quoted_fields_and_line_numbers(write: Path) -> None:
    text = 'id,note\nr1,"first line\nsecond line"\nr2,"she said ""hi"""\nr3,"a,b"\n'
    write.write_text(text, encoding="utf-8")
    _, records, _ = read_all(write)
    assert cells(records) == [
        ["r1", "first line\nsecond line"],
        ["r2", 'she said "hi"'],
        ["r3", "a,b"],
    ]
    assert [r.line for r in records] == [start_line(text, f"r{i}") for i in (1, 2, 3)]
    assert records[1].line == records[0].line + 2  # the embedded newline counts


def test_crlf_line_endings(write: Path) -> None:
    text = 'a,b\r\n1,2\r\n3,"x\r\ny"\r\n5,6\r\n'
    write.write_bytes(text.encode())
    header, records, _ = read_all(write)
    assert header == ["a", "b"]
    assert cells(records) == [["1", "2"], ["3", "x\r\ny"], ["5", "6"]]
    assert [r.line for r in records] == [
        start_line(text.replace("\r\n", "\n"), c) for c in ("1", "3", "5")
    ]


def test_blank_lines_skipped(write: Path) -> None:
    text = "a,b\n\n1,2\n   \n\n3,4\n\n"
    write.write_text(text, encoding="utf-8")
    _, records, _ = read_all(write)
    assert cells(records) == [["1", "2"], ["3", "4"]]
    assert [r.line for r in records] == [start_line(text, "1"), start_line(text, "3")]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_rows_of_empty_cells_skipped(write: Path, quoted: bool) -> None:
    """A spreadsheet saved as CSV writes its empty rows as a line of delimiters: skipped as
    a blank line is, wherever it stands, not read as a row of missing values."""
    first = '"x\ny",2,3' if quoted else "1,2,3"
    text = f"a,b,c\n,,\n{first}\n,,\n\n4,5,6\n,,\n,,\n"
    write.write_text(text, encoding="utf-8")
    _, records, _ = read_all(write)
    assert cells(records) == [[first.split(",")[0].strip('"'), "2", "3"], ["4", "5", "6"]]
    assert [r.line for r in records] == [3, 6 + quoted]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_a_row_of_spaces_is_skipped_and_a_row_with_one_filled_cell_kept(
    write: Path, quoted: bool
) -> None:
    # cells are trimmed before they are checked: a row of spaces is as empty as ",,"
    # (regression: it was a rejected row, "a is required", "b is required", ...)
    last = '"q",8,9' if quoted else "7,8,9"
    write.write_text(f"a,b,c\n1,2,3\n,,x\n , ,\n\t,\t,\n , , \n{last}\n", encoding="utf-8")
    _, records, _ = read_all(write)
    first = "q" if quoted else "7"
    assert cells(records) == [["1", "2", "3"], ["", "", "x"], [first, "8", "9"]]
    assert [r.line for r in records] == [2, 3, 7]


@pytest.mark.parametrize("above", ["\n", ",,\n", "\n , \n,,\n"], ids=["blank", "commas", "mixed"])
def test_blank_lines_above_the_header_are_skipped(write: Path, above: str) -> None:
    write.write_text(f"{above}a,b\n1,2\n", encoding="utf-8")
    header, records, _ = read_all(write)
    assert header == ["a", "b"]
    assert cells(records) == [["1", "2"]]
    assert records[0].line == above.count("\n") + 2


def test_header_cells_are_stripped(write: Path) -> None:
    write.write_text(" username , email \nu1,a@x.example\n", encoding="utf-8")
    header, _, _ = read_all(write)
    assert header == ["username", "email"]


def test_empty_file(write: Path) -> None:
    write.write_bytes(b"")
    with pytest.raises(JobFailure) as caught:
        read_all(write)
    assert caught.value.code == "empty_file"


def test_binary_file(write: Path) -> None:
    write.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(JobFailure) as caught:
        CsvSource(write)
    assert caught.value.code == "unreadable_file"


def test_explicit_encoding(write: Path) -> None:
    text = "username,first_name\n" + "".join(f"u{i},{n}\n" for i, n in enumerate(PERSIAN))
    write.write_bytes(text.encode("cp1256"))
    header, records, source = read_all(write, encoding="cp1256")
    assert source.encoding == "cp1256"
    assert header == ["username", "first_name"]
    assert [r.cells[1] for r in records] == PERSIAN


def test_explicit_encoding_overrides_detection(write: Path) -> None:
    # valid UTF-8 bytes, but the job says latin-1: each byte becomes one character
    write.write_bytes("name\ncafé\n".encode())
    _, records, _ = read_all(write, encoding="latin-1")
    assert cells(records) == [["café".encode().decode("latin-1")]]


def test_unknown_encoding(write: Path) -> None:
    write.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(JobFailure) as caught:
        CsvSource(write, encoding="no-such-encoding")
    assert caught.value.code == "bad_option"
    assert "no-such-encoding" in caught.value.message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_bytes_read_reaches_total(write: Path, encoding: str) -> None:
    lines = ["id,name"] + [f"{i},name number {i}" for i in range(20_000)]
    write.write_bytes(("\n".join(lines) + "\n").encode(encoding))  # utf-16 adds a BOM
    source = CsvSource(write)
    try:
        assert source.bytes_total == write.stat().st_size
        source.header()
        records = source.records()
        next(records)
        assert 0 < source.bytes_read < source.bytes_total
        rest = list(records)
        assert len(rest) == len(lines) - 2
        assert source.bytes_read == source.bytes_total
    finally:
        source.close()


def test_bytes_read_follows_the_records_handed_out(write: Path) -> None:
    """Regression: the reader reads ahead a block of lines, and progress said 100 % after
    the first 250 records of a 600-line file."""
    lines = ["id,name"] + [f"{i},name number {i}" for i in range(600)]
    write.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = CsvSource(write)
    try:
        source.header()
        shares = []
        while (batch := source.read(250)) is not None:
            shares.append(source.bytes_read / source.bytes_total)
            assert len(batch)
        assert shares[0] == pytest.approx(251 / 601, abs=0.02)  # the header and 250 lines
        assert shares[1] == pytest.approx(501 / 601, abs=0.02)
        assert shares[-1] == 1.0
    finally:
        source.close()


BATCH_CASES = {
    "quoted line breaks": 'a,b\n1,"x\ny"\n2,"p\r\nq\r\nr"\n3,"only\rcr"\n4,z\n',
    "crlf file": 'a,b\r\n1,2\r\n\r\n3,"multi\r\nline"\r\n4,5\r\n',
    "blank lines and one column": "a\n1\n\n   \n2\n\n3\n",
    "empty quoted lines": 'a,b\n1,"\n\n\n"\n2,x\n',
    "no final newline": 'a,b\n1,"x\ny"\n2,z',
    "plain, then a quote": 'a,b\n1,2\n3,4\n5,6\n7,"q\nr"\n8,9\n',
    "plain crlf, blank and ragged lines": "a,b\r\n1,2\r\n\r\n3,4,5\r\n6\r\n7,8\r\n",
    "plain, a lone cr and a nul": "a,b\n1,2\r3,4\n5,\x006\n7,8",
    "plain with spaces and empty cells": "a,b,c\n ,x y, \n,,\n1, 2 ,3\n",
    "rows of spaces": "a,b,c\n1,2,3\n , , \n\t,\t,\n4,5,6\n , ,\n",
    "a row of spaces, then quotes": 'a,b,c\n , , \n1,"2",3\n\t,,\n',
    "rows of empty cells": "a,b,c\n,,\n1,2,3\n,,\n4,5,6\n,,",
    "rows of empty cells and quotes": 'a,b,c\n1,2,3\n,,\n"x\ny",5,6\n,,\n"",,\n7,8,9\n',
}


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_batches_carry_the_same_lines_and_cells_as_records(
    write: Path, name: str, size: int
) -> None:
    """``read`` works out start lines from line breaks inside cells instead of asking the
    reader after each record; it must agree with ``records`` record for record."""
    write.write_bytes(BATCH_CASES[name].encode())
    _, records, _ = read_all(write)
    source = CsvSource(write)
    try:
        source.header()
        seen: list[tuple[int, list[str]]] = []
        while (batch := source.read(size)) is not None:
            assert len(batch) <= size
            seen.extend(zip(batch.lines, batch.rows, strict=True))
    finally:
        source.close()
    assert seen == [(r.line, r.cells) for r in records]


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_a_compacted_batch_gives_back_the_same_cells(write: Path, name: str) -> None:
    """A checked batch keeps its cells as line text while it waits for its write; the
    cells it gives back for the error report are the ones it was read with."""
    write.write_bytes(BATCH_CASES[name].encode())
    source = CsvSource(write)
    try:
        source.header()
        while (batch := source.read(2)) is not None:
            before = [list(cells) for cells in batch.rows]
            batch.compact()
            assert batch.rows == before
    finally:
        source.close()


def test_compacting_a_plain_batch_drops_its_cells(write: Path) -> None:
    write.write_bytes(b"a;b\n1;x y\n2;\n")
    source = CsvSource(write)
    try:
        source.header()
        batch = source.read(10)
        assert batch is not None
        assert batch.columns is not None
        batch.compact()
        assert batch.columns is None
        assert batch.rows == [["1", "x y"], ["2", ""]]
    finally:
        source.close()
