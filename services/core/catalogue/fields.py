"""Field types: each turns the text of a cell into a Python value or raises ``FieldError``.

Parsers take already stripped text and never see ``None``: an empty cell is handled by the
model (required, or ``None``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import mul
from typing import Literal

__all__ = [
    "ChoiceParser",
    "Field",
    "FieldError",
    "PatternParser",
    "parse_bool",
    "parse_choice",
    "parse_date",
    "parse_datetime",
    "parse_email",
    "parse_iran_national_id",
    "parse_pattern",
    "parse_phone",
]


class FieldError(ValueError):
    """A cell's value does not fit its field; the message says why in plain words."""


Parser = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a model: its SQL type, whether it is required, and how to parse it."""

    name: str
    sql_type: str
    parse: Parser = str
    required: bool = False
    max_length: int | None = None
    unique: bool = False
    aliases: tuple[str, ...] = field(default=())
    # SQL expression used when the cell is empty and the column has a database default
    db_default: str | None = None
    # how the cell is normalised before parsing (digits, letters, invisible marks), and for
    # "date"/"datetime" which calendar-aware parser the job's options select
    kind: Literal["text", "identifier", "number", "date", "datetime", "phone", "email"] = "text"
    # for dates and times: a calendar and zone fixed by the field rules (else the job's)
    calendar: Literal["gregorian", "jalali", "auto"] | None = None
    zone: str | None = None
    # bounds checked after parsing (numbers or dates), set from field rules
    low: object = None
    high: object = None


# Persian and Arabic-Indic ۱/١ and ۰/٠ count as 1 and 0; آری and نه as yes and no
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on", "بله", "آری", "فعال", "۱", "١"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", "خیر", "نه", "غیرفعال", "۰", "٠"})


def parse_bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise FieldError(f"{text!r} is not a yes/no value (use true or false)")


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise FieldError(f"{text!r} is not a valid date (expected YYYY-MM-DD)") from e


def parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise FieldError(f"{text!r} is not a valid date and time (expected ISO 8601)") from e
    # a time without an offset is taken as UTC so stored instants never depend on the server
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_email(text: str) -> str:
    if not _EMAIL.match(text):
        raise FieldError(f"{text!r} is not a valid email address")
    return text.lower() if text.isascii() else text


_NID_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_NID_ZERO = ord("0") * sum(_NID_WEIGHTS)


def parse_iran_national_id(text: str) -> str:
    """Ten digits with the Iranian check digit (mod 11); leading zeros are kept."""
    if len(text) != 10 or not text.isdigit() or not text.isascii():
        raise FieldError(f"{text!r} is not a national id (10 digits)")
    if len(set(text)) == 1:
        raise FieldError(f"{text!r} is not a national id (all digits equal)")
    # weighted digit sum in C: ASCII codes times weights, less the weighted code of '0'
    total = (sum(map(mul, text[:9].encode(), _NID_WEIGHTS)) - _NID_ZERO) % 11
    check = total if total < 2 else 11 - total
    if int(text[9]) != check:
        raise FieldError(f"{text!r} is not a valid national id (check digit is wrong)")
    return text


_PHONE_STRIP = str.maketrans("", "", " -()")


def parse_phone(text: str) -> str:
    digits = text.translate(_PHONE_STRIP)
    body = digits[1:] if digits.startswith("+") else digits
    if not body.isdigit() or not body.isascii() or not 7 <= len(body) <= 15:
        raise FieldError(f"{text!r} is not a phone number")
    return digits


class ChoiceParser:
    """The cell must be one of a few words, as written."""

    __slots__ = ("allowed", "choices")

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices
        self.allowed = frozenset(choices)

    def __call__(self, text: str) -> str:
        if text not in self.allowed:
            raise FieldError(f"{text!r} is not one of: {', '.join(self.choices)}")
        return text

    def column(self, texts: list[str]) -> Sequence[object]:
        """A whole column at once; ``FieldError`` means some cell needs a look of its own."""
        if not self.allowed.issuperset(texts):
            raise FieldError("a cell is not one of the choices")
        return texts


def parse_choice(*choices: str) -> ChoiceParser:
    return ChoiceParser(choices)


class PatternParser:
    """The whole cell must match a regular expression; the text is the value."""

    __slots__ = ("compiled", "description")

    def __init__(self, pattern: str, description: str) -> None:
        self.compiled = re.compile(pattern)
        self.description = description

    def __call__(self, text: str) -> str:
        if not self.compiled.fullmatch(text):
            raise FieldError(f"{text!r} is not {self.description}")
        return text

    def column(self, texts: list[str]) -> Sequence[object]:
        """A whole column at once; ``FieldError`` means some cell needs a look of its own."""
        if not all(map(self.compiled.fullmatch, texts)):
            raise FieldError(f"a cell is not {self.description}")
        return texts


def parse_pattern(pattern: str, description: str) -> PatternParser:
    return PatternParser(pattern, description)
