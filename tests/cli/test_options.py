"""Format inference and parsing of --mapping and --delimiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.errors import EXIT_USAGE, UsageError
from services.cli.options import infer_format, parse_delimiter, parse_mapping


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
