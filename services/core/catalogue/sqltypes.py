"""Parsers for cells of PostgreSQL column types: exact numbers, ranges, lost precision.

Spreadsheets and JSON turn long identifiers into floats; a value like ``1e+19`` or
``9.999001234567891e+15`` has lost digits for good, so it is refused rather than stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from services.core.catalogue.fields import FieldError

__all__ = ["digits_text", "parse_integer", "parse_numeric", "with_range"]

Parser = Callable[[str], object]

_INTEGRAL_FLOAT = re.compile(r"([0-9]+)\.0+")
_EXPONENT = re.compile(r"[0-9.]+[eE][+-]?[0-9]+")
_LIMITS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def digits_text(text: str) -> str:
    """Text of digits as sent; an integral float (``401100374.0``) loses its ``.0``."""
    if _EXPONENT.fullmatch(text):
        raise FieldError(
            f"{text} is a float in exponent form: its exact digits are lost; "
            "send long identifiers as text"
        )
    match = _INTEGRAL_FLOAT.fullmatch(text)
    return match.group(1) if match else text


def parse_integer(sql_type: str) -> Parser:
    limit = _LIMITS.get(sql_type, 2**63)

    def parse(text: str) -> int:
        if _EXPONENT.fullmatch(text):
            raise FieldError(f"{text} is a float in exponent form; send whole numbers as digits")
        clean = digits_text(text)
        try:
            value = int(clean)
        except ValueError as e:
            raise FieldError(f"{text!r} is not a whole number") from e
        if not -limit <= value < limit:
            raise FieldError(f"{text} does not fit a {sql_type}")
        return value

    return parse


def parse_numeric(precision: int | None, scale: int | None) -> Parser:
    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation as e:
            raise FieldError(f"{text!r} is not a number") from e
        if not value.is_finite():
            raise FieldError(f"{text!r} is not a finite number")
        if scale is not None:
            exponent = value.as_tuple().exponent
            if (
                isinstance(exponent, int)
                and -exponent > scale
                and value != value.quantize(Decimal(1).scaleb(-scale))
            ):
                raise FieldError(f"{text} has more than {scale} decimal places")
            value = value.quantize(Decimal(1).scaleb(-scale))
        if precision is not None and scale is not None:
            whole_digits = len(str(abs(int(value)))) if int(value) else 0
            if whole_digits > precision - scale:
                raise FieldError(f"{text} has too many digits for numeric({precision},{scale})")
        return value

    return parse


def with_range(parse: Parser, low: object, high: object, shown: Callable[[str], str]) -> Parser:
    """``parse`` then refuse values outside [low, high] (either bound may be None)."""

    def parse_in_range(text: str) -> object:
        value = parse(text)
        if low is not None and value < low:  # type: ignore[operator]
            raise FieldError(f"{shown(text)} is below {low}")
        if high is not None and value > high:  # type: ignore[operator]
            raise FieldError(f"{shown(text)} is above {high}")
        return value

    return parse_in_range
