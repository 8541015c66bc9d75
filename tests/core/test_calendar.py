"""Gregorian / Jalali dates and zone-aware date-times (``services.core.catalogue.calendar``).

The module converts with persiantools; these tests check it against jdatetime, an independent
implementation, and against fixed points (Nowruz dates and the C31 expectations).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import jdatetime  # type: ignore[import-untyped]
import pytest

from services.core.catalogue.calendar import (
    AmbiguousLocalTimeError,
    NonexistentLocalTimeError,
    format_jalali,
    parse_date,
    parse_datetime,
)
from services.core.catalogue.fields import FieldError

TEHRAN = ZoneInfo("Asia/Tehran")
BERLIN = ZoneInfo("Europe/Berlin")


def _jdatetime_gregorian(year: int, month: int, day: int) -> date:
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def _jdatetime_is_leap(year: int) -> bool:
    return bool(jdatetime.date(year, 1, 1).isleap())


# --- fixed points ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jalali", "gregorian"),
    [
        ("1402/01/01", date(2023, 3, 21)),  # Nowruz 1402
        ("1403/01/01", date(2024, 3, 20)),  # Nowruz 1403
        ("1404/01/01", date(2025, 3, 21)),  # Nowruz 1404
        ("1400/01/01", date(2021, 3, 21)),  # Nowruz 1400
        ("1379/12/30", date(2001, 3, 20)),  # C31 row 4
        ("1403/12/30", date(2025, 3, 20)),  # C31 row 4
        ("1380/07/15", date(2001, 10, 7)),  # C31 row 2
        ("1402/07/15", date(2023, 10, 7)),  # C31 row 2
        ("1381/7/5", date(2002, 9, 27)),  # C31 row 5, single-digit month and day
    ],
)
def test_fixed_points(jalali: str, gregorian: date) -> None:
    assert parse_date(jalali, calendar="jalali") == gregorian
    assert parse_date(jalali, calendar="auto") == gregorian
    year, month, day = (int(p) for p in jalali.split("/"))
    assert _jdatetime_gregorian(year, month, day) == gregorian


def test_every_day_1370_to_1410_matches_jdatetime() -> None:
    checked = 0
    for year in range(1370, 1411):
        for month in range(1, 13):
            for day in range(1, 32):
                text = f"{year}/{month:02d}/{day:02d}"
                try:
                    expected = _jdatetime_gregorian(year, month, day)
                except ValueError:
                    with pytest.raises(FieldError, match="not a date in the Jalali calendar"):
                        parse_date(text, calendar="jalali")
                    continue
                assert parse_date(text, calendar="jalali") == expected, text
                checked += 1
    assert checked == sum(366 if _jdatetime_is_leap(y) else 365 for y in range(1370, 1411))


# --- leap years ------------------------------------------------------------------------------


def test_1403_is_a_leap_year_and_1402_is_not() -> None:
    assert _jdatetime_is_leap(1403)
    assert not _jdatetime_is_leap(1402)
    assert parse_date("1403/12/30", calendar="auto") == date(2025, 3, 20)
    # the day after 1403/12/30 is Nowruz 1404
    assert parse_date("1404/01/01", calendar="auto") == date(2025, 3, 21)


def test_esfand_30_in_a_common_year_is_refused_not_rolled_over() -> None:
    with pytest.raises(FieldError) as caught:
        parse_date("1402/12/30", calendar="auto")
    message = str(caught.value)
    assert "1402/12/30 is not a date in the Jalali calendar" in message
    assert "1402 is not a leap year in the Solar Hijri calendar" in message


@pytest.mark.parametrize("year", [1370, 1375, 1379, 1383, 1387, 1391, 1395, 1399, 1403, 1408])
def test_esfand_30_exists_in_leap_years(year: int) -> None:
    assert _jdatetime_is_leap(year)
    expected = _jdatetime_gregorian(year, 12, 30)
    assert parse_date(f"{year}/12/30", calendar="jalali") == expected
    assert parse_date(f"{year + 1}/01/01", calendar="jalali") == expected + timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1402/12/31", "1402/12/31 is not a date in the Jalali calendar"),
        ("1402/07/31", "month 7 of 1402 has 30 days"),  # months 7-11 have 30 days
        ("1402/13/01", "month 13 in 1402/13/01 does not exist in the Jalali calendar"),
        ("1380/13/01", "month 13 in 1380/13/01"),  # C31 row 7
        ("1402/00/10", "month 0"),
        ("1402/01/00", "not a date in the Jalali calendar"),
    ],
)
def test_invalid_jalali_dates_name_the_calendar(text: str, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        parse_date(text, calendar="auto")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2023-02-30", "2023-02-30 is not a date in the Gregorian calendar"),
        ("2023-02-29", "month 2 of 2023 has 28 days"),
        ("1900-02-29", "month 2 of 1900 has 28 days"),
        ("2023-04-31", "month 4 of 2023 has 30 days"),
        ("2023-13-01", "month 13 in 2023-13-01 does not exist in the Gregorian calendar"),
    ],
)
def test_invalid_gregorian_dates_name_the_calendar(text: str, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        parse_date(text, calendar="auto")


def test_gregorian_leap_day() -> None:
    assert parse_date("2024-02-29", calendar="gregorian") == date(2024, 2, 29)
    assert parse_date("2000/2/29", calendar="auto") == date(2000, 2, 29)


# --- shapes and digits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1402/07/15",
        "1402-07-15",
        "1402/7/15",
        "۱۴۰۲/۰۷/۱۵",  # Persian digits
        "١٤٠٢/٠٧/١٥",  # Arabic-Indic digits
        "۱۴۰2-0۷-1۵",  # mixed
        " 1402/07/15 ",
    ],
)
def test_jalali_shapes(text: str) -> None:
    assert parse_date(text, calendar="auto") == date(2023, 10, 7)


@pytest.mark.parametrize(
    "text",
    ["1402/07-15", "02/07/15", "15/07/1402", "1402.07.15", "14020715", "1402/07/15x", "", "NA"],
)
def test_other_shapes_are_refused(text: str) -> None:
    with pytest.raises(FieldError, match="is not a date"):
        parse_date(text, calendar="auto")


# --- calendar choice -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1200/01/01", _jdatetime_gregorian(1200, 1, 1)),
        ("1500/01/01", _jdatetime_gregorian(1500, 1, 1)),
        ("1800-01-01", date(1800, 1, 1)),
        ("2200-12-31", date(2200, 12, 31)),
    ],
)
def test_auto_year_windows_edges(text: str, expected: date) -> None:
    assert parse_date(text, calendar="auto") == expected


@pytest.mark.parametrize(
    "text", ["1199/12/29", "1501/01/01", "1700-01-01", "1799-12-31", "2201-01-01"]
)
def test_auto_refuses_years_outside_both_windows(text: str) -> None:
    with pytest.raises(FieldError, match="neither a Jalali"):
        parse_date(text, calendar="auto")


def test_a_jalali_year_in_a_gregorian_column_is_refused_not_stored_as_year_1380() -> None:
    with pytest.raises(FieldError, match="is it a Jalali date"):
        parse_date("1380-07-15", calendar="gregorian")


def test_a_gregorian_year_in_a_jalali_column_is_refused() -> None:
    with pytest.raises(FieldError, match="is it a Gregorian date"):
        parse_date("2023-10-07", calendar="jalali")


# --- format_jalali ---------------------------------------------------------------------------


def test_format_jalali() -> None:
    assert format_jalali(date(2023, 3, 21)) == "1402/01/01"
    assert format_jalali(date(2025, 3, 20)) == "1403/12/30"
    assert format_jalali(date(2002, 9, 27), sep="-") == "1381-07-05"


def test_format_jalali_round_trips_and_matches_jdatetime() -> None:
    day = date(1990, 1, 1)
    while day < date(2035, 1, 1):
        text = format_jalali(day)
        other = jdatetime.date.fromgregorian(date=day)
        assert text == f"{other.year:04d}/{other.month:02d}/{other.day:02d}"
        assert parse_date(text, calendar="jalali") == day
        day += timedelta(days=7)


# --- parse_datetime --------------------------------------------------------------------------


def test_an_explicit_offset_is_kept() -> None:
    value = parse_datetime("2023-10-07T14:30:00+03:30", calendar="auto")
    assert value == datetime(2023, 10, 7, 14, 30, tzinfo=timezone(timedelta(hours=3, minutes=30)))
    assert value.utcoffset() == timedelta(hours=3, minutes=30)
    assert parse_datetime("2023-10-07 11:00Z", calendar="auto").tzinfo is UTC
    assert parse_datetime("2023-10-07T14:30+0330", calendar="auto") == value
    assert parse_datetime("2023-10-07T07:00-04", calendar="auto") == value


def test_naive_time_is_read_in_the_zone() -> None:
    value = parse_datetime("2023-10-07 14:30", calendar="auto")
    assert value == datetime(2023, 10, 7, 14, 30, tzinfo=TEHRAN)
    assert value.utcoffset() == timedelta(hours=3, minutes=30)  # no DST since 2023
    berlin = parse_datetime("2023-07-01 12:00:05.25", calendar="auto", zone="Europe/Berlin")
    assert berlin.astimezone(UTC) == datetime(2023, 7, 1, 10, 0, 5, 250000, tzinfo=UTC)


def test_jalali_date_times() -> None:
    expected = datetime(2023, 10, 7, 14, 30, tzinfo=TEHRAN)
    assert parse_datetime("1402/07/15 14:30", calendar="jalali") == expected
    assert parse_datetime("۱۴۰۲/۰۷/۱۵ ۱۴:۳۰", calendar="auto") == expected
    assert parse_datetime("1402-07-15T14:30:00+03:30", calendar="auto") == expected


def test_a_date_alone_is_midnight_in_the_zone() -> None:
    assert parse_datetime("1402/07/15", calendar="auto") == datetime(2023, 10, 7, tzinfo=TEHRAN)


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def _repeats(naive: datetime, zone: ZoneInfo) -> bool:
    first, second = naive.replace(tzinfo=zone), naive.replace(tzinfo=zone, fold=1)
    return _exists(naive, zone) and first.utcoffset() != second.utcoffset()


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("2023-03-26 02:30", "Europe/Berlin"),
        ("2021-03-22 00:30", "Asia/Tehran"),  # Nowruz 1400: 00:00 -> 01:00
        ("2022-03-22 00:30", "Asia/Tehran"),  # the last spring-forward before abolition
        ("1400/01/02 00:30", "Asia/Tehran"),  # the same instant as a Jalali date-time
    ],
)
def test_a_local_time_in_a_gap_is_refused(text: str, zone: str) -> None:
    naive = (
        datetime(2021, 3, 22, 0, 30) if text.startswith("1400") else datetime.fromisoformat(text)
    )
    assert not _exists(naive, ZoneInfo(zone))  # checked with zoneinfo, not assumed
    with pytest.raises(NonexistentLocalTimeError, match=f"does not exist in {zone}"):
        parse_datetime(text, calendar="auto", zone=zone)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("2023-10-29 02:30", "Europe/Berlin"),
        ("2021-09-21 23:30", "Asia/Tehran"),  # 30 Shahrivar 1400: 24:00 -> 23:00
    ],
)
def test_a_repeated_local_time_is_refused(text: str, zone: str) -> None:
    assert _repeats(datetime.fromisoformat(text), ZoneInfo(zone))
    with pytest.raises(AmbiguousLocalTimeError, match=f"happened twice in {zone}"):
        parse_datetime(text, calendar="auto", zone=zone)


def test_time_errors_are_field_errors() -> None:
    assert issubclass(NonexistentLocalTimeError, FieldError)
    assert issubclass(AmbiguousLocalTimeError, FieldError)


def test_tehran_has_no_gap_after_dst_was_abolished() -> None:
    naive = datetime(2023, 3, 22, 0, 30)
    assert _exists(naive, TEHRAN)
    assert parse_datetime("2023-03-22 00:30", calendar="auto") == naive.replace(tzinfo=TEHRAN)


def test_a_gap_time_with_an_offset_is_accepted() -> None:
    value = parse_datetime("2021-03-22 00:30+03:30", calendar="auto")
    assert value.astimezone(UTC) == datetime(2021, 3, 21, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["2023-10-07 25:00", "2023-10-07 14:60", "2023-10-07 14:30:61", "2023-10-07 14:30+24:00"],
)
def test_impossible_times_are_refused(text: str) -> None:
    with pytest.raises(FieldError):
        parse_datetime(text, calendar="auto")


@pytest.mark.parametrize("text", ["2023-10-07 14", "14:30", "2023-10-07 2:30 PM", "now"])
def test_other_date_time_shapes_are_refused(text: str) -> None:
    with pytest.raises(FieldError, match="is not a date and time"):
        parse_datetime(text, calendar="auto")


def test_date_errors_carry_into_date_times() -> None:
    with pytest.raises(FieldError, match="1402 is not a leap year"):
        parse_datetime("1402/12/30 10:00", calendar="auto")
