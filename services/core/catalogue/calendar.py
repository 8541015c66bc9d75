"""Dates and date-times in the Gregorian and Jalali (Solar Hijri) calendars.

Iranian files mix both calendars, often in one column. Storing "1380/07/15" as the Gregorian
year 1380, or rolling the non-existent "1402/12/30" over to 1403/01/01, corrupts data silently,
so a date that does not exist is refused with a message naming the calendar. Jalali arithmetic
and leap years come from ``persiantools`` (its leap rule follows the astronomical calendar used
in Iran), never from a home-made formula.

Accepted shapes: ``YYYY-MM-DD`` or ``YYYY/MM/DD`` (the same separator twice), month and day with
one or two digits (``1402/7/5``), Persian / Arabic-Indic digits (mapped here too, though the
importer normally maps them first). Two-digit years are refused: "02/07/15" could be anything.

Year windows (from the odd-files expectations, C31): Jalali years are 1200-1500 and Gregorian
years 1800-2200. In ``auto`` mode the year picks the calendar; a year in neither window is
refused. The windows apply in the explicit modes too, so a Jalali year in a Gregorian column
("1380-07-15") is an error rather than a date 600 years ago.
"""

from __future__ import annotations

import contextlib
import re
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo

from persiantools.jdatetime import JalaliDate

from services.core.catalogue.fields import FieldError
from services.core.catalogue.normalise import ascii_digits

__all__ = [
    "GREGORIAN_YEARS",
    "JALALI_YEARS",
    "AmbiguousLocalTimeError",
    "CalendarName",
    "NonexistentLocalTimeError",
    "format_jalali",
    "parse_date",
    "parse_datetime",
]

CalendarName = Literal["gregorian", "jalali", "auto"]

JALALI_YEARS: Final = range(1200, 1501)
GREGORIAN_YEARS: Final = range(1800, 2201)

_DATE = r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})"
_DATE_RE: Final = re.compile(_DATE)
# date, then optionally 'T' or spaces, H:MM[:SS[.ffffff]], then optionally Z or +HH[:MM]
_DATETIME_RE: Final = re.compile(
    _DATE + r"(?:(?:T|[ ]+)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,6}))?)?"
    r"[ ]*(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


class NonexistentLocalTimeError(FieldError):
    """A naive local time that the clocks skipped (spring-forward gap)."""


class AmbiguousLocalTimeError(FieldError):
    """A naive local time that happened twice (fall-back repeat)."""


def _window(years: range) -> str:
    return f"{years.start}-{years.stop - 1}"


def _pick_calendar(year: int, calendar: CalendarName, text: str) -> Literal["gregorian", "jalali"]:
    if calendar == "auto":
        if year in JALALI_YEARS:
            return "jalali"
        if year in GREGORIAN_YEARS:
            return "gregorian"
        raise FieldError(
            f"year {year} in {text} is neither a Jalali (Solar Hijri) year "
            f"({_window(JALALI_YEARS)}) nor a Gregorian year ({_window(GREGORIAN_YEARS)})"
        )
    years = JALALI_YEARS if calendar == "jalali" else GREGORIAN_YEARS
    if year not in years:
        other = "Gregorian" if calendar == "jalali" else "Jalali"
        hint = f"; is it a {other} date?" if year in _other_years(calendar) else ""
        raise FieldError(
            f"year {year} in {text} is outside {_window(years)}, the years accepted in the "
            f"{calendar.capitalize()} calendar{hint}"
        )
    return calendar


def _other_years(calendar: Literal["gregorian", "jalali"]) -> range:
    return GREGORIAN_YEARS if calendar == "jalali" else JALALI_YEARS


def _jalali_to_gregorian(year: int, month: int, day: int, text: str) -> date:
    if not 1 <= month <= 12:
        raise FieldError(f"month {month} in {text} does not exist in the Jalali calendar")
    days = JalaliDate.days_in_month(month, year)
    if not 1 <= day <= days:
        if month == 12 and day == 30:
            raise FieldError(
                f"{text} is not a date in the Jalali calendar: {year} is not a leap year in the "
                f"Solar Hijri calendar, so Esfand has 29 days"
            )
        raise FieldError(
            f"{text} is not a date in the Jalali calendar: month {month} of {year} has {days} days"
        )
    # persiantools leaves this constructor unannotated; the values were checked above
    jalali = JalaliDate(year, month, day)  # type: ignore[no-untyped-call]
    return jalali.to_gregorian()


def _gregorian(year: int, month: int, day: int, text: str) -> date:
    if not 1 <= month <= 12:
        raise FieldError(f"month {month} in {text} does not exist in the Gregorian calendar")
    days = monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise FieldError(
            f"{text} is not a date in the Gregorian calendar: month {month} of {year} has "
            f"{days} days"
        )
    return date(year, month, day)


def _to_date(parts: tuple[str, str, str], calendar: CalendarName, text: str) -> date:
    year, month, day = (int(p) for p in parts)
    if _pick_calendar(year, calendar, text) == "jalali":
        return _jalali_to_gregorian(year, month, day, text)
    return _gregorian(year, month, day, text)


def _plain_gregorian(text: str, calendar: CalendarName) -> bool:
    """``YYYY-MM-...`` in ASCII with a Gregorian year: the standard library can parse it."""
    return (
        calendar != "jalali"
        and len(text) >= 10
        and text[4] == "-"
        and text[7] == "-"
        and text.isascii()
        and "1800" <= text[:4] <= "2200"
    )


def parse_date(text: str, *, calendar: CalendarName) -> date:
    """Parse ``YYYY-MM-DD`` / ``YYYY/MM/DD`` in the given calendar; return the Gregorian date."""
    shown = text.strip()
    if _plain_gregorian(shown, calendar):
        # the common case (ISO, Gregorian) in C; anything unusual takes the careful path
        with contextlib.suppress(ValueError):
            return date.fromisoformat(shown)
    match = _DATE_RE.fullmatch(ascii_digits(shown))
    if match is None:
        raise FieldError(f"{shown!r} is not a date (expected YYYY-MM-DD or YYYY/MM/DD)")
    year, _sep, month, day = match.groups()
    return _to_date((year, month, day), calendar, shown)


def format_jalali(d: date, sep: str = "/") -> str:
    """The Jalali date of ``d`` as ``YYYY/MM/DD`` (zero-padded), for exports."""
    # persiantools leaves this classmethod unannotated; it takes any datetime.date
    jalali = JalaliDate.to_jalali(d)  # type: ignore[no-untyped-call]
    return f"{jalali.year:04d}{sep}{jalali.month:02d}{sep}{jalali.day:02d}"


def _offset(text: str, shown: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    if hours > 23 or minutes > 59:
        raise FieldError(f"{text} in {shown!r} is not a UTC offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _localise(naive: datetime, zone: str, shown: str) -> datetime:
    """Attach ``zone`` to a naive time, refusing times the clocks skipped or repeated.

    zoneinfo silently picks an offset for both (PEP 495 ``fold``), which would store an instant
    the user never meant; an unknown zone raises ``ZoneInfoNotFoundError`` (a configuration
    error, not a cell error).
    """
    tz = ZoneInfo(zone)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    # the offsets differ: either a gap (the wall time does not survive a round trip) or a fold
    round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        raise NonexistentLocalTimeError(
            f"{shown} does not exist in {zone}: the clocks jumped forward over it; "
            f"give the time with a UTC offset"
        )
    raise AmbiguousLocalTimeError(
        f"{shown} happened twice in {zone}: the clocks went back over it; "
        f"give the time with a UTC offset ({first.isoformat()[-6:]} or {second.isoformat()[-6:]})"
    )


def parse_datetime(text: str, *, calendar: CalendarName, zone: str = "Asia/Tehran") -> datetime:
    """Parse a date and time into an aware ``datetime``.

    An explicit offset (``Z``, ``+03:30``, ``+0330``, ``+03``) is kept as given. A naive time is
    read in ``zone``. A date alone means 00:00 in ``zone``. The date part follows ``parse_date``
    (so ``1402/07/15 14:30`` is a Jalali date-time in ``jalali`` or ``auto`` mode).
    """
    shown = text.strip()
    if _plain_gregorian(shown, calendar) and len(shown) >= 16 and shown[13] == ":":
        fast: datetime | None = None
        with contextlib.suppress(ValueError):
            fast = datetime.fromisoformat(shown)
        if fast is not None:
            return fast if fast.tzinfo else _localise(fast, zone, shown)
    match = _DATETIME_RE.fullmatch(ascii_digits(shown))
    if match is None:
        raise FieldError(
            f"{shown!r} is not a date and time (expected YYYY-MM-DD HH:MM[:SS] with an "
            f"optional offset, or YYYY/MM/DD HH:MM)"
        )
    year, _sep, month, day, hour, minute, second, fraction, offset = match.groups()
    day_value = _to_date((year, month, day), calendar, shown)
    try:
        moment = datetime(
            day_value.year,
            day_value.month,
            day_value.day,
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as e:
        raise FieldError(f"{shown!r} has a time of day that does not exist ({e})") from e
    if offset is not None:
        return moment.replace(tzinfo=_offset(offset, shown))
    return _localise(moment, zone, shown)
