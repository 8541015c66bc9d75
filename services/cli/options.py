"""Turning command-line values into job fields: format, field mapping, delimiter."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.cli.errors import UsageError

__all__ = ["FORMATS", "infer_format", "parse_delimiter", "parse_mapping"]

FORMATS = ("csv", "json", "jsonl", "xlsx")

_EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
}

# names people type for characters that are awkward to pass through a shell
_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


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
