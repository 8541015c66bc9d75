"""Format inference and parsing of the flags' values: --mapping, --delimiter, --max-errors,
--time-zone, --fields, --filter, --order-by, --output."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from services.cli.errors import EXIT_USAGE, UsageError
from services.cli.options import (
    check_output_path,
    infer_format,
    parse_delimiter,
    parse_filter,
    parse_filters,
    parse_mapping,
    parse_name_list,
    parse_order_by,
    parse_percent,
    parse_time_zone,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("people.csv", "csv"),
        ("PEOPLE.CSV", "csv"),
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("grades.xlsx", "xlsx"),
    ],
)
def test_format_from_extension(name: str, expected: str) -> None:
    assert infer_format(Path(name)) == expected


def test_explicit_format_wins() -> None:
    assert infer_format(Path("export.txt"), "csv") == "csv"


def test_unknown_extension_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--format") as caught:
        infer_format(Path("data.txt"))
    assert caught.value.exit_code == EXIT_USAGE


def test_mapping_pairs() -> None:
    assert parse_mapping(["Student No=student_id", " Name = full_name "]) == {
        "Student No": "student_id",
        "Name": "full_name",
    }


def test_mapping_splits_on_the_last_equals_sign() -> None:
    assert parse_mapping(["a=b=field"]) == {"a=b": "field"}


@pytest.mark.parametrize("pair", ["nofield", "=field", "header=", "  =  "])
def test_malformed_mapping_is_refused(pair: str) -> None:
    with pytest.raises(UsageError, match="HEADER=FIELD"):
        parse_mapping([pair])


def test_header_mapped_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="twice"):
        parse_mapping(["a=x", "a=y"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), (";", ";"), ("tab", "\t"), ("\\t", "\t"), ("TAB", "\t"), ("pipe", "|")],
)
def test_delimiter(given: str | None, expected: str | None) -> None:
    assert parse_delimiter(given) == expected


def test_long_delimiter_is_refused() -> None:
    with pytest.raises(UsageError, match="one character"):
        parse_delimiter(";;")


@pytest.mark.parametrize(
    ("given", "expected"), [("0", 0.0), ("2.5", 2.5), ("5%", 5.0), ("100", 100.0)]
)
def test_percent(given: str, expected: float) -> None:
    assert parse_percent(given) == expected


@pytest.mark.parametrize("given", ["-1", "100.5", "nan", "five", ""])
def test_percent_out_of_range_or_not_a_number_is_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_percent(given)


def test_name_lists_are_split_on_commas_and_stripped() -> None:
    assert parse_name_list("a, b ,c", "--fields") == ["a", "b", "c"]
    assert parse_name_list(None, "--fields") == []
    with pytest.raises(UsageError, match="--fields"):
        parse_name_list("a,,b", "--fields")


def test_order_by_keeps_the_minus_of_descending_fields() -> None:
    assert parse_order_by("last_name,-date_joined") == ["last_name", "-date_joined"]
    assert parse_order_by(None) == []


@pytest.mark.parametrize("given", ["-", "a,--b", "a,"])
def test_malformed_order_by_is_refused(given: str) -> None:
    with pytest.raises(UsageError, match="--order-by"):
        parse_order_by(given)


@pytest.mark.parametrize(
    ("triple", "expected"),
    [
        (("role", "eq", "student"), {"field": "role", "op": "eq", "value": "student"}),
        (("age", "GTE", "18"), {"field": "age", "op": "gte", "value": "18"}),
        (
            ("role", "in", "staff, faculty"),
            {"field": "role", "op": "in", "value": ["staff", "faculty"]},
        ),
        (("phone", "isnull", "true"), {"field": "phone", "op": "isnull", "value": True}),
        (("phone", "isnull", "False"), {"field": "phone", "op": "isnull", "value": False}),
        (("email", "contains", "a,b"), {"field": "email", "op": "contains", "value": "a,b"}),
    ],
)
def test_filter(triple: tuple[str, str, str], expected: dict[str, Any]) -> None:
    assert parse_filter(*triple) == expected


@pytest.mark.parametrize(
    ("triple", "message"),
    [
        (("role", "like", "x"), "unknown operator"),
        (("", "eq", "x"), "field name is empty"),
        (("phone", "isnull", "maybe"), "true or false"),
        (("role", "in", "a,,b"), "comma separated"),
    ],
)
def test_malformed_filter_is_refused(triple: tuple[str, str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_filter(*triple)


def test_filters_keep_their_order() -> None:
    parsed = parse_filters([["a", "eq", "1"], ["b", "ne", "2"]])
    assert [f["field"] for f in parsed] == ["a", "b"]


def test_time_zone() -> None:
    assert parse_time_zone(None) is None
    assert parse_time_zone(" Asia/Tehran ") == "Asia/Tehran"
    with pytest.raises(UsageError, match="unknown time zone"):
        parse_time_zone("Mars/Olympus_Mons")
    with pytest.raises(UsageError, match="unknown time zone"):
        parse_time_zone("../etc/passwd")


def test_output_path_must_be_in_an_existing_directory(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "a.csv") == tmp_path / "a.csv"
    with pytest.raises(UsageError, match="no such directory"):
        check_output_path(tmp_path / "missing" / "a.csv")
    with pytest.raises(UsageError, match="is a directory"):
        check_output_path(tmp_path)
