"""One JSON value as cell text, and how to show a JSON value in a message.

Numbers never pass through float: an integer beyond 2^53 keeps every digit and "12.50" keeps
its trailing zero. A number written with an exponent (9.999001234567891e15, 1e19) keeps the
exponent in its text: it came from a float, its digits past the 17th are not real, and
rendering it as plain digits would let it pass as an exact identifier.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from services.importer.csv_source import CellError

__all__ = ["MAX_VALUE_SHOWN", "cell_text", "compact", "type_name"]

MAX_VALUE_SHOWN = 200

# json.dumps cannot write a Decimal as a number; msgspec can, without going through float
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def compact(value: object) -> str:
    """``value`` as JSON text to show in a message, shortened."""
    try:
        text = _json_text(value)
    except UnicodeEncodeError:
        text = _json_text(_escaped(value))
    return text if len(text) <= MAX_VALUE_SHOWN else text[:MAX_VALUE_SHOWN] + "…"


def _json_text(value: object) -> str:
    return _ENCODER.encode(value).decode("utf-8")


def _escaped(value: object) -> object:
    """``value`` with each half of a UTF-16 pair standing alone in its strings (JSON may
    escape one; UTF-8 cannot carry it) written out as its escape, for showing."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    return value


def _decimal_text(value: Decimal) -> str:
    # Both ijson and json.loads(parse_int=int) give int for plain integers, so a Decimal with a
    # non-negative exponent was written with an exponent: keep that visible (see module doc)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        return format(value, "f")
    return format(value, "e")


def type_name(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def cell_text(column: str, value: object, json_column: bool = False) -> str | CellError:
    """The cell text of one JSON value, or why it has none. A nested value is kept whole,
    as JSON text, for a column that holds JSON; anywhere else it is a clear rejection."""
    if value is None:
        return ""
    if json_column and isinstance(value, dict | list):
        try:
            return _json_text(value)
        except UnicodeEncodeError:
            return CellError(
                column,
                compact(value),
                f"{column} holds half of a UTF-16 pair without its other half (shown as "
                "\\udXXX), which is not a character and cannot be stored",
            )
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    kind = "object" if isinstance(value, dict) else "array"
    return CellError(
        column,
        compact(value),
        f"{column} holds a nested {kind}; map it to a JSON column or flatten it",
    )
