"""Turning command-line values into job fields: format, field mapping, delimiter, time zone,
export fields, filters and ordering. Pure functions: bad values raise ``UsageError``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from services.cli.errors import UsageError

__all__ = [
    "CALENDARS",
    "FILTER_OPS",
    "FORMATS",
    "MODES",
    "check_output_path",
    "infer_format",
    "parse_delimiter",
    "parse_filter",
    "parse_filters",
    "parse_mapping",
    "parse_name_list",
    "parse_order_by",
    "parse_percent",
    "parse_time_zone",
]

FORMATS = ("csv", "json", "jsonl", "xlsx")
MODES = ("insert", "upsert", "skip")
CALENDARS = ("gregorian", "jalali", "auto")
FILTER_OPS = (
    "eq",
    "ne",
    "lt",
    "lte",
    "gt",
    "gte",
    "contains",
    "startswith",
    "in",
    "isnull",
)

_EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
}

# names people type for characters that are awkward to pass through a shell
_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def check_output_path(output: Path, flag: str = "--output") -> Path:
    """``output`` with ``~`` expanded; its directory must exist and it must not be one."""
    output = output.expanduser()
    if not output.parent.is_dir():
        raise UsageError(f"no such directory: {output.parent}")
    if output.is_dir():
        raise UsageError(f"{flag} is a directory: {output}")
    return output


def infer_format(path: Path, given: str | None = None) -> str:
    """``given`` if set, else the format named by the file's extension."""
    if given:
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of {path.name!r} from its extension; "
            f"pass --format ({', '.join(FORMATS)})"
        )
    return fmt


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["Student No=student_id", ...]`` → ``{"Student No": "student_id"}``.

    Split on the last ``=``: headers come from files and may contain one, field names do not.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, sep, field = pair.rpartition("=")
        header, field = header.strip(), field.strip()
        if not sep or not header or not field:
            raise UsageError(f"--mapping {pair!r}: expected HEADER=FIELD")
        if header in mapping:
            raise UsageError(f"--mapping: header {header!r} is mapped twice")
        mapping[header] = field
    return mapping


def parse_delimiter(value: str | None) -> str | None:
    """One character, or a name such as ``tab``; ``None`` lets the importer detect it."""
    if value is None:
        return None
    char = _DELIMITER_NAMES.get(value.lower(), value)
    if len(char) != 1:
        raise UsageError(f"--delimiter {value!r}: expected one character (or tab, \\t, ...)")
    return char


def parse_percent(value: str) -> float:
    """An ``argparse`` type: a percentage from 0 to 100 (``5``, ``2.5``, ``5%``)."""
    try:
        number = float(value.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= number <= 100.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value!r} is not between 0 and 100")
    return number


def parse_name_list(value: str | None, flag: str) -> list[str]:
    """``"a, b,-c"`` → ``["a", "b", "-c"]``; ``None`` → ``[]``. Empty items are refused."""
    if value is None:
        return []
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise UsageError(f"{flag} {value!r}: expected comma separated names, e.g. a,b,c")
    return names


def parse_order_by(value: str | None) -> list[str]:
    """``"last_name,-date_joined"``: a leading ``-`` sorts that field descending."""
    names = parse_name_list(value, "--order-by")
    for name in names:
        if not name.lstrip("-") or name.startswith("--"):
            raise UsageError(f"--order-by {name!r}: expected FIELD or -FIELD")
    return names


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_filter(field: str, op: str, value: str) -> dict[str, Any]:
    """One ``--filter FIELD OP VALUE`` as the gateway's ``{field, op, value}``.

    ``in`` takes a comma separated list; ``isnull`` takes true or false; other values are
    sent as text and the server converts them to the field's type.
    """
    field, op = field.strip(), op.strip().lower()
    if not field:
        raise UsageError("--filter: the field name is empty")
    if op not in FILTER_OPS:
        raise UsageError(f"--filter {field} {op!r}: unknown operator; use {', '.join(FILTER_OPS)}")
    parsed: str | bool | list[str] = value
    if op == "in":
        parsed = [item.strip() for item in value.split(",")]
        if not all(parsed):
            raise UsageError(f"--filter {field} in {value!r}: expected comma separated values")
    elif op == "isnull":
        flag = _BOOLEANS.get(value.strip().lower())
        if flag is None:
            raise UsageError(f"--filter {field} isnull {value!r}: expected true or false")
        parsed = flag
    return {"field": field, "op": op, "value": parsed}


def parse_filters(triples: Iterable[Sequence[str]]) -> list[dict[str, Any]]:
    return [parse_filter(*triple) for triple in triples]


def parse_time_zone(value: str | None) -> str | None:
    """An IANA name such as ``Asia/Tehran``, checked locally when a time zone database is at
    hand (without one the server has the last word)."""
    if value is None:
        return None
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name and not available_timezones():
            return name
        raise UsageError(f"--time-zone {value!r}: unknown time zone (e.g. Asia/Tehran)") from None
    return name
