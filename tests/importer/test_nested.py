"""Nested JSON records read through dotted paths (no servers)."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.jobs import ChildImport, JobOptions
from services.core.catalogue import Field, Model
from services.importer.csv_source import Record
from services.importer.nested import NestedLayout, PathReader, nested_layout
from services.importer.sources import open_source

STUDENTS = Model(
    name="uni.students",
    schema="uni",
    table="students",
    natural_key="student_no",
    fields=(
        Field("student_no", "text", required=True, unique=True),
        Field("first_name", "text"),
        Field("last_name", "text"),
        Field("email", "text"),
        Field("details", "jsonb"),
    ),
)
MAPPING = {"name.fa.first": "first_name", "name.fa.last": "last_name", "contact.email": "email"}


def _read(path: Path, fmt: str, options: JobOptions) -> tuple[list[str], list[Record]]:
    source = open_source(fmt, path, STUDENTS, options)
    try:
        return source.header(), list(source.records())
    finally:
        source.close()


def _cells(header: list[str], record: Record) -> dict[str, str]:
    return dict(zip(header, record.cells, strict=True))


def test_only_a_dotted_mapping_or_children_turn_nested_reading_on() -> None:
    assert nested_layout(STUDENTS, JobOptions(field_mapping={"n": "first_name"})) is None
    assert nested_layout(STUDENTS, JobOptions(field_mapping=MAPPING)) is not None
    children = {"items": ChildImport(model="uni.items", parent_key={"student_no": "owner"})}
    assert nested_layout(STUDENTS, JobOptions(children=children)) is not None


def test_dotted_names_reach_nested_values_in_json_and_json_lines(tmp_path: Path) -> None:
    doc = {
        "student_no": "401100351",
        "name": {"fa": {"first": "سارا", "last": "رحیمی"}},
        "contact": {"email": "sara@uni.example", "phone": None},
        "details": {"kept": {"whole": [1, 2]}},
        "hobbies": ["chess"],
        "extra": {"deep": {"x": 1}},
    }
    array = tmp_path / "in.json"
    array.write_text(json.dumps([doc], ensure_ascii=False), "utf-8")
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps(doc, ensure_ascii=False) + "\n", "utf-8")
    for path, fmt in ((array, "json"), (lines, "jsonl")):
        header, [record] = _read(path, fmt, JobOptions(field_mapping=MAPPING))
        assert record.errors == ()
        cells = _cells(header, record)
        assert cells["name.fa.first"] == "سارا"
        assert cells["contact.email"] == "sara@uni.example"
        assert json.loads(cells["details"]) == doc["details"]  # a JSON field: kept whole
        assert cells["hobbies"] == ""  # no field takes it: ignored, not a rejection
        assert "extra.deep.x" in header
        assert "first_name" not in header  # mapped: one column per field


def test_a_value_where_an_object_is_expected_names_its_path(tmp_path: Path) -> None:
    docs = [
        {"student_no": "1", "name": {"fa": {"first": "a", "last": "b"}}},
        {"student_no": "2", "name": "Reza Karimi", "contact": None},
        {"student_no": "3", "name": {"fa": 7}},
        {"student_no": "4", "contact": {"email": {"work": "x@y"}}},
        "not an object",
    ]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(docs), "utf-8")
    header, records = _read(path, "json", JobOptions(field_mapping=MAPPING))
    assert records[0].errors == ()
    [error] = records[1].errors  # one error for the object, though two names pass through it
    assert error.column == "$[1].name"
    assert error.value == "Reza Karimi"
    assert error.message == "expected an object with fa names, got the string 'Reza Karimi'"
    assert _cells(header, records[1])["contact.email"] == ""  # null object: no values
    [error] = records[2].errors
    assert (error.column, error.message) == (
        "$[2].name.fa",
        "expected an object with first/last names, got the number 7",
    )
    [error] = records[3].errors
    assert error.column == "$[3].contact.email"
    assert "holds a nested object" in error.message
    [error] = records[4].errors
    assert error.column == "$[4]"


def test_a_literal_dotted_name_wins_over_a_path() -> None:
    layout = NestedLayout.of(STUDENTS, {"a.b": "first_name"})
    reader = PathReader(["a.b"], layout)
    record = reader.record(1, {"a.b": "literal", "a": {"b": "nested"}}, "$[0]")
    assert record.cells == ["literal"]


def test_a_child_array_is_kept_whole_and_must_be_an_array(tmp_path: Path) -> None:
    children = {"courses": ChildImport(model="uni.items", parent_key={"student_no": "owner"})}
    docs = [
        {"student_no": "1", "courses": [{"code": "CS101", "grade": 18.50}]},
        {"student_no": "2", "courses": {"code": "CS101"}},
        {"student_no": "3"},
    ]
    path = tmp_path / "in.json"
    path.write_bytes(b"[" + b",".join(json.dumps(d).encode() for d in docs) + b"]")
    header, records = _read(path, "json", JobOptions(children=children))
    assert _cells(header, records[0])["courses"] == '[{"code":"CS101","grade":18.5}]'
    [error] = records[1].errors
    assert error.column == "$[1].courses"
    assert error.message.startswith("expected an array of objects, got the object")
    assert records[2].errors == ()
    assert _cells(header, records[2])["courses"] == ""
