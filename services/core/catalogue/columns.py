"""Whole-column fast paths for the common cell parsers.

The importer checks a chunk column by column. For the usual column (ISO dates, valid national
ids, plain e-mail addresses) one pass of C-level string and regex work replaces a Python call
per cell. A column parser returns every value or raises ``FieldError`` without saying which
cell is at fault; the caller then checks that column cell by cell with the ordinary parser, so
errors and values are always the ordinary parser's. Each fast path must give exactly what the
ordinary parser gives for every cell it accepts (a test holds them to it).

Column parsers take stripped, non-empty texts that hold no unit separator (U+001F).
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Final

from services.core.catalogue import checks
from services.core.catalogue.fields import (
    FieldError,
    parse_bool,
    parse_email,
    parse_iran_national_id,
    parse_phone,
)

__all__ = ["SEPARATOR", "ColumnParser", "column_parser", "iso_dates", "iso_datetimes"]

ColumnParser = Callable[[list[str]], Sequence[object]]

# joins a column's cells into one string so one C call can look at all of them
SEPARATOR: Final = "\x1f"


def _fail() -> FieldError:
    return FieldError("some cell needs the ordinary parser")


# --- dates: the shapes the ordinary parsers read with the standard library anyway ----------


def _every_cell(cell: str) -> re.Pattern[str]:
    """Matches a column's cells joined by SEPARATOR when each matches ``cell``: one C call
    for the column instead of one per cell. ``cell`` must never match a SEPARATOR, and match
    a cell one way only (else a failing column backtracks through every cell)."""
    return re.compile(f"(?:{cell})(?:{SEPARATOR}(?:{cell}))*")


_ISO_DATES: Final = _every_cell(r"(?:1[89][0-9]{2}|2[01][0-9]{2}|2200)-[0-9]{2}-[0-9]{2}")
# date, 'T' or space, then a colon at position 13 and at least two more characters
_ANY: Final = f"[^{SEPARATOR}]"
_ISO_DATETIMES: Final = _every_cell(
    rf"(?:1[89][0-9]{{2}}|2[01][0-9]{{2}}|2200)-{_ANY}{{2}}-{_ANY}{{5}}:{_ANY}{{2}}{_ANY}*"
)


def iso_dates(texts: list[str]) -> Sequence[object]:
    """Gregorian ``YYYY-MM-DD`` dates (years 1800-2200), as ``calendar.parse_date`` reads them."""
    if not _ISO_DATES.fullmatch(SEPARATOR.join(texts)):
        raise _fail()
    try:
        return list(map(date.fromisoformat, texts))
    except ValueError:
        raise _fail() from None


def iso_datetimes(texts: list[str]) -> Sequence[object]:
    """ISO date-times with an offset; a naive one needs its zone, so the ordinary parser."""
    if not _ISO_DATETIMES.fullmatch(SEPARATOR.join(texts)):
        raise _fail()
    try:
        values = list(map(datetime.fromisoformat, texts))
    except ValueError:
        raise _fail() from None
    if any(v.tzinfo is None for v in values):
        raise _fail()
    return values


# --- Iranian national ids -------------------------------------------------------------------

_NID_WEIGHTS: Final = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_NID_ZERO: Final = ord("0") * sum(_NID_WEIGHTS)
# the check digit (as an ASCII code) for each weighted sum of the first nine ASCII codes
_NID_CHECK: Final = bytes(
    ord("0") + (r if r < 2 else 11 - r)
    for r in (((s - _NID_ZERO) % 11) for s in range(ord("9") * sum(_NID_WEIGHTS) + 1))
)
_NID_REPEATED: Final = frozenset(str(d) * 10 for d in range(10))


def national_ids(texts: list[str]) -> Sequence[object]:
    """Ten-digit ids with a right check digit, checked for the whole column at once.

    Each id gets a 16-bit lane of one big integer: adding ``weight * digits at position i``
    for the nine positions leaves each id's weighted digit sum in its own lane (at most
    3,078, so no lane overflows into the next), all in C.
    """
    n = len(texts)
    if min(map(len, texts)) != 10 or max(map(len, texts)) != 10:
        raise _fail()
    joined = "".join(texts)
    if not (joined.isascii() and joined.isdigit()) or not _NID_REPEATED.isdisjoint(texts):
        raise _fail()
    data = joined.encode("ascii")
    lane = bytearray(2 * n)
    total = 0
    for position, weight in enumerate(_NID_WEIGHTS):
        lane[0::2] = data[position::10]
        total += weight * int.from_bytes(lane, "little")
    sums = array("H")
    sums.frombytes(total.to_bytes(2 * n, "little"))
    if sys.byteorder == "big":
        sums.byteswap()
    if bytes(map(_NID_CHECK.__getitem__, sums)) != data[9::10]:
        raise _fail()
    return texts


# --- contact details and flags ---------------------------------------------------------------

_PHONE_PUNCTUATION: Final = str.maketrans("", "", " -()")


def phones(texts: list[str]) -> Sequence[object]:
    """Phone numbers without a leading '+': punctuation goes, 7 to 15 ASCII digits stay."""
    joined = SEPARATOR.join(texts).translate(_PHONE_PUNCTUATION)
    if "+" in joined or not joined.isascii():
        raise _fail()
    digits = joined.split(SEPARATOR)
    if len(digits) != len(texts) or not joined.replace(SEPARATOR, "").isdigit():
        raise _fail()
    if min(map(len, digits)) < 7 or max(map(len, digits)) > 15:
        raise _fail()
    return digits


# cell by cell: a cell splits at any of its dots, so one regex over the joined column would
# try every split of every cell before a bad last cell fails it (exponential backtracking)
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def emails(texts: list[str]) -> Sequence[object]:
    """Addresses that ``parse_email`` accepts; ASCII ones are lower-cased, as it does."""
    if not all(map(_EMAIL.match, texts)):
        raise _fail()
    joined = SEPARATOR.join(texts)
    if joined.isascii():
        lowered = joined.lower().split(SEPARATOR)
        if len(lowered) == len(texts):
            return lowered
    return [t.lower() if t.isascii() else t for t in texts]


_BOOLEANS: Final = {"true": True, "false": False, "t": True, "f": False}


def booleans(texts: list[str]) -> Sequence[object]:
    """The common spellings only; anything else takes ``parse_bool``."""
    try:
        return list(map(_BOOLEANS.__getitem__, map(str.lower, texts)))
    except KeyError:
        raise _fail() from None


_BY_PARSER: Final[dict[object, ColumnParser]] = {
    parse_iran_national_id: national_ids,
    checks.iran_national_id: national_ids,
    parse_phone: phones,
    parse_email: emails,
    parse_bool: booleans,
}


def column_parser(parse: Callable[[str], object]) -> ColumnParser | None:
    """The whole-column form of ``parse``, if it has one."""
    own = getattr(parse, "column", None)
    if own is not None:
        return own  # type: ignore[no-any-return]
    return _BY_PARSER.get(parse)
