"""JsonSource and JsonLinesSource: exact numbers, nested values, bad items, streaming."""

from __future__ import annotations

import codecs
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.importer.csv_source import Record
from services.importer.errors import JobFailure
from services.importer.json_source import JsonLinesSource, JsonSource

ODD = Path(__file__).parent.parent / "data" / "odd"


def read_all(source: JsonSource | JsonLinesSource) -> tuple[list[str], list[Record]]:
    try:
        return source.header(), list(source.records())
    finally:
        source.close()


def write(tmp_path: Path, data: str | bytes, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_big_integers_keep_every_digit(tmp_path: Path) -> None:
    big = 2**63 + 5
    path = write(tmp_path, f'[{{"id": {big}, "neg": -{big * 10}, "small": 7}}]')
    header, records = read_all(JsonSource(path))
    assert header == ["id", "neg", "small"]
    assert records[0].cells == [str(big), f"-{big * 10}", "7"]
    assert records[0].cells[0] == "9223372036854775813"


def test_decimals_keep_their_text_and_floats_keep_their_exponent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[{"gpa": 12.50, "tiny": 1.5e-7, "integral": 401100374.0, "card": 9.999001234567891e15,'
        ' "ref": 1e19, "neg": -0.0}]',
    )
    _, records = read_all(JsonSource(path))
    assert records[0].cells == [
        "12.50",
        "0.00000015",
        "401100374.0",
        "9.999001234567891e+15",
        "1e+19",
        "-0.0",
    ]


def test_c27_big_integers_file() -> None:
    header, records = read_all(JsonSource(ODD / "C27_json_big_integers.json"))
    assert header == ["student_no", "national_id", "bank_card", "external_ref"]
    by_line = {r.line: r.cells for r in records}
    assert by_line[1] == ["401100371", "0024681350", "9999001234567891", "12345678901234567890"]
    # a JSON number loses leading zeros: the text shows 8 digits, so validation can tell
    assert by_line[2][1] == "98765434"
    # floats above 2^53 stay visibly floats instead of passing as exact 16-digit cards
    assert by_line[3][2] == "9.999001234567891e+15"
    assert by_line[4][0] == "401100374.0"
    assert by_line[5][2:] == ["", "1e+19"]
    assert all(not r.errors for r in records)


def test_scalars_bool_and_null(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"a": true, "b": false, "c": null, "d": "  text ", "e": ""}]')
    _, records = read_all(JsonSource(path))
    assert records[0].cells == ["true", "false", "", "  text ", ""]


def test_c22_strings_come_through_unchanged() -> None:
    header, records = read_all(JsonSource(ODD / "C22_export_rows_formula_injection.json"))
    assert header == ["student_no", "first_name", "last_name", "notes", "gpa"]
    assert [r.line for r in records] == [1, 2, 3, 4]
    assert records[0].cells[2] == "=cmd|' /C calc'!A0"
    assert records[2].cells[3] == "\tleading tab"
    assert records[3].cells[3] == "\rleading CR"
    assert [r.cells[4] for r in records] == ["17.5", "15.25", "18.0", "-1.5"]


def test_c25_nested_values_are_cell_errors_not_reprs() -> None:
    header, records = read_all(JsonSource(ODD / "C25_json_nested_objects.json"))
    assert header == ["student_no", "name", "contact", "enrollments"]
    first = records[0]
    assert first.cells == ["401100351", "", "", ""]
    errors = {e.column: e for e in first.errors}
    assert set(errors) == {"name", "contact", "enrollments"}
    assert errors["name"].message == (
        "name holds a nested object; map it to a JSON column or flatten it"
    )
    assert errors["enrollments"].message.startswith("enrollments holds a nested array")
    # compact JSON, numbers as numbers, never a Python repr
    assert errors["contact"].value == '{"email":"sara.rahimi@uni.example","phone":"09120000351"}'
    assert '"grade":18.5' in (errors["enrollments"].value or "")
    # 'hobbies' is not in the first object: ignored like an extra CSV column
    assert all(e.column != "hobbies" for e in records[1].errors)
    # the third record's name is a plain string: it is a value, not an error
    assert records[2].cells[:2] == ["401100353", "Reza Karimi"]
    assert {e.column for e in records[2].errors} == {"contact", "enrollments"}
    assert records[2].errors[1].value == "[]"


def test_nested_value_shown_is_truncated(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps([{"id": "1", "blob": {"k": "v" * 500}}]))
    _, records = read_all(JsonSource(path))
    shown = records[0].errors[0].value or ""
    assert shown.startswith('{"k":"vvv')
    assert len(shown) == 201
    assert shown.endswith("…")


def test_known_columns_extend_header_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[{"id": "1"}, {"id": "2", "email": "b@x.example", "junk": 5}, {"email": "c@x.example"}]',
    )
    header, records = read_all(JsonSource(path, known_columns=["id", "email", "phone"]))
    assert header == ["id", "email", "phone"]
    assert [r.cells for r in records] == [
        ["1", "", ""],
        ["2", "b@x.example", ""],
        ["", "c@x.example", ""],
    ]


def test_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + '[{"نام": "سارا"}]'.encode())
    header, records = read_all(JsonSource(path))
    assert header == ["نام"]
    assert records[0].cells == ["سارا"]


def test_non_object_items_are_rejected_records(tmp_path: Path) -> None:
    path = write(tmp_path, '[1, {"id": "a"}, "text", null, [1, 2], {"id": "b"}]')
    header, records = read_all(JsonSource(path))
    assert header == ["id"]  # from the first object, even after a leading number
    assert [r.line for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.cells for r in records if not r.errors] == [["a"], ["b"]]
    problems = {r.line: r.errors[0] for r in records if r.errors}
    assert problems[1].message == "item is a JSON number, not an object"
    assert problems[3].message == "item is a JSON string, not an object"
    assert problems[3].value == '"text"'
    assert problems[4].message == "item is a JSON null, not an object"
    assert problems[5].message == "item is a JSON array, not an object"
    assert all(p.column is None for p in problems.values())


def test_top_level_object_is_a_file_failure(tmp_path: Path) -> None:
    path = write(tmp_path, '{"students": [{"id": 1}]}')
    with pytest.raises(JobFailure) as e:
        JsonSource(path)
    assert e.value.code == "invalid_json"
    assert "top-level JSON value is an object" in e.value.message


def test_empty_file_and_empty_array(tmp_path: Path) -> None:
    with pytest.raises(JobFailure) as e:
        JsonSource(write(tmp_path, "  \n"))
    assert e.value.code == "empty_file"
    source = JsonSource(write(tmp_path, "[]", "empty.json"))
    with pytest.raises(JobFailure) as e:
        source.header()
    source.close()
    assert e.value.code == "empty_file"
    header, records = read_all(JsonSource(tmp_path / "empty.json", known_columns=["id"]))
    assert (header, records) == (["id"], [])


def test_malformed_json_mid_file_fails_after_earlier_rows(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"id": "1"}, {"id": "2"}, {"id": "3",}]')
    source = JsonSource(path)
    seen: list[list[str]] = []

    def consume() -> None:
        seen.extend(r.cells for r in source.records())

    with pytest.raises(JobFailure) as e:
        consume()
    source.close()
    assert seen == [["1"], ["2"]]
    assert e.value.code == "invalid_json"
    assert e.value.message.startswith("input.json: invalid JSON near byte ")
    assert "after item 2" in e.value.message
    assert "invalid object key" in e.value.message


def test_truncated_file_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"id": "1"}, {"id": "2", "na')
    source = JsonSource(path)
    with pytest.raises(JobFailure) as e:
        list(source.records())
    source.close()
    assert e.value.code == "invalid_json"
    assert "premature EOF" in e.value.message
    assert "truncated" in e.value.message


def _objects(count: int) -> Iterator[bytes]:
    yield b"["
    for i in range(count):
        sep = b"," if i else b""
        yield sep + b'{"student_no": "%09d", "n": %d, "gpa": 17.25}' % (i, 2**60 + i)
    yield b"]"


def test_large_array_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as f:
        f.writelines(_objects(200_000))
    assert path.stat().st_size > 10_000_000
    source = JsonSource(path)
    count = 0
    last: Record | None = None
    tracemalloc.start()
    try:
        source.header()
        for record in source.records():
            count += 1
            last = record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        source.close()
    assert count == 200_000
    assert last is not None
    assert last.line == 200_000
    assert last.cells == ["000199999", str(2**60 + 199_999), "17.25"]
    assert source.bytes_read == source.bytes_total
    assert peak < 20 * 1024 * 1024


def test_progress_moves_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as f:
        f.writelines(_objects(50_000))
    source = JsonSource(path)
    seen = []
    for record in source.records():
        if record.line % 10_000 == 0:
            seen.append(source.bytes_read)
    source.close()
    assert seen == sorted(seen)
    assert 0 < seen[0] < source.bytes_total


def test_json_lines_numbers_lines_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        '{"id": 18446744073709551621, "gpa": 12.50, "ok": true}',
        "",
        '{"id": "2", "gpa": null, "extra": 1}',
        '{"id": "3", "gpa": ',
        "[1, 2]",
        "   ",
        '{"id": "6", "gpa": NaN}',
        '{"id": "7", "tags": ["a"]}',
    ]
    path = write(tmp_path, codecs.BOM_UTF8 + "\n".join(lines).encode() + b"\n", "in.jsonl")
    header, records = read_all(JsonLinesSource(path, known_columns=["tags"]))
    assert header == ["id", "gpa", "ok", "tags"]
    assert [r.line for r in records] == [1, 3, 4, 5, 7, 8]
    assert records[0].cells == ["18446744073709551621", "12.50", "true", ""]
    assert records[1].cells == ["2", "", "", ""]
    bad = {r.line: r.errors[0] for r in records if r.errors}
    assert bad[4].message.startswith("line 4 is not valid JSON")
    assert bad[4].value == '{"id": "3", "gpa":'
    assert bad[5].message == "line 5 holds a JSON array, not an object"
    assert bad[7].message.startswith("line 7 is not valid JSON")
    assert bad[8].column == "tags"
    assert bad[8].message.startswith("tags holds a nested array")


def test_json_lines_invalid_utf8_and_leading_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'not json\n{"id": "\xff"}\n{"id": "x"}\n', "in.jsonl")
    source = JsonLinesSource(path)
    header, records = read_all(source)
    assert header == ["id"]
    assert [(r.line, r.cells) for r in records if not r.errors] == [(3, ["x"])]
    messages = {r.line: r.errors[0].message for r in records if r.errors}
    assert messages[1].startswith("line 1 is not valid JSON")
    assert messages[2] == "line 2 is not valid UTF-8"
    assert source.bytes_read == source.bytes_total


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_too_deep_fails_the_file_clearly(tmp_path: Path) -> None:
    """Regression: 200,000 nested brackets in 400 KB made ijson (whose work grows with the
    square of the depth) take the importer to 23 GB and get it killed, over and over."""
    path = tmp_path / "deep.json"
    path.write_text('[{"a": 1}, {"a": ' + _deep(5_000) + "}]")
    with pytest.raises(JobFailure) as e:
        read_all(JsonSource(path))
    assert e.value.code == "invalid_json"
    assert "nest more than 256 levels" in e.value.message
    assert "deep.json" in e.value.message


def test_brackets_and_escapes_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    """Brackets in text add up past the quick bound, so the depth is then found exactly;
    escaped quotes and backslashes (also split across read chunks) must not fool it."""
    texts = ["[[[[ :-[ {{", 'say \\"[[\\" ok', "back\\\\[[[", '\\\\\\"{{{', "tail \\"]
    records = [{"n": i, "note": texts[i % len(texts)] + "[" * (i % 7)} for i in range(20_000)]
    records.append({"n": -1, "doc": json.loads(_deep(200))})  # deep, but under the limit
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps(records))
    header, got = read_all(JsonSource(path, known_columns=["doc"], json_columns=["doc"]))
    assert header == ["n", "note", "doc"]
    assert len(got) == len(records)
    assert [r.cells[1] for r in got[:5]] == [r["note"] for r in records[:5]]
    assert not any(r.errors for r in got)


def test_a_json_lines_line_nested_too_deeply_is_a_rejected_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n{"a": ' + _deep(200_000) + "}\n" + '{"a": 3}\n')
    _, got = read_all(JsonLinesSource(path))
    assert [r.line for r in got] == [1, 2, 3]
    assert "nests arrays or objects too deeply" in got[1].errors[0].message
    assert got[2].cells == ["3"]


# escapes of UTF-16 halves as a JSON file may hold them, and what each is: ijson's C parser
# turned the lone ones into "?", "\ud800\u0041" into U+10041, and failed on a lone low half
SURROGATE_CASES = {
    r"\ud800x": "\ud800x",
    r"x\ud800": "x\ud800",
    r"\ud800\u0041": "\ud800A",
    r"\udc00": "\udc00",
    r"\ud800\ud800": "\ud800\ud800",
}


@pytest.mark.parametrize("escaped", sorted(SURROGATE_CASES))
def test_a_lone_half_of_a_utf16_pair_is_read_as_written(tmp_path: Path, escaped: str) -> None:
    # far enough in that the C parser has handed out items first, which are not repeated
    items = [f'{{"n": "{i}", "s": "\\ud83d\\ude00 \\\\ud800 {i}"}}' for i in range(3_000)]
    items[2_500] = f'{{"n": "2500", "s": "{escaped}"}}'
    path = write(tmp_path, "[" + ",\n".join(items) + "]")
    source = JsonSource(path)
    source.header()
    records, shares = [], []
    for record in source.records():
        records.append(record)
        shares.append(source.bytes_read)
    source.close()
    assert shares == sorted(shares)  # reading again from the top does not go back
    assert shares[-1] == path.stat().st_size
    assert [r.line for r in records] == list(range(1, 3_001))
    assert records[2_500].cells == ["2500", SURROGATE_CASES[escaped]]
    assert records[7].cells == ["7", "\U0001f600 \\ud800 7"]  # a pair, and escaped text
    assert records[2_999].cells == ["2999", "\U0001f600 \\ud800 2999"]


@pytest.mark.parametrize("size", [1, 5, 6, 7, 11, 12, 13, 64])
def test_a_pair_split_between_reads_is_not_taken_for_a_lone_half(tmp_path: Path, size: int) -> None:
    body = "".join(f'{{"s": "{"x" * (i % 13)}\\ud83d\\ude00"}},' for i in range(40))
    path = write(tmp_path, f"[{body}{{}}]")
    source = JsonSource(path)
    try:
        reader = source._reader
        while reader.read(size):  # a lone half would raise here
            pass
    finally:
        source.close()
    lone = write(tmp_path, f'[{body}{{"s": "\\udbff"}}]', name="lone.json")
    _, records = read_all(JsonSource(lone))
    assert records[-1].cells == ["\udbff"]


def test_a_lone_half_in_a_json_columns_document_is_a_cell_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"id": "1", "doc": {"a": ["\\ud800"]}}, {"id": "2", "doc": [1]}]')
    _, records = read_all(JsonSource(path, json_columns=["doc"]))
    [error] = records[0].errors
    assert (error.column, error.value) == ("doc", '{"a":["\\\\ud800"]}')
    assert "half of a UTF-16 pair" in error.message
    assert (records[1].cells, records[1].errors) == (["2", "[1]"], ())


@pytest.mark.parametrize(
    "raw", [b"\xed\xa0\x80", b"\xff\xfe", b"\xc3"], ids=["utf8-surrogate", "ff-fe", "cut-char"]
)
def test_bytes_that_are_not_utf8_in_a_json_array_fail_the_file_clearly(
    tmp_path: Path, raw: bytes
) -> None:
    # regression: an unexpected UnicodeDecodeError, or the parser's message as a bytes repr
    path = write(tmp_path, b'[{"id": "1"}, {"id": "' + raw + b'"}]')
    with pytest.raises(JobFailure) as e:
        read_all(JsonSource(path))
    assert e.value.code == "invalid_json"
    assert "not valid UTF-8" in e.value.message
    assert "b'" not in e.value.message
    if raw == b"\xed\xa0\x80":  # the C parser says which bytes
        assert "(ED A0 80;" in e.value.message


def test_a_truncated_file_says_so_after_the_slower_parser_took_over(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"id": "\\ud800"}, {"id": "2", "na')  # a lone half, then cut
    source = JsonSource(path)
    with pytest.raises(JobFailure) as e:
        list(source.records())
    source.close()
    assert "truncated" in e.value.message
