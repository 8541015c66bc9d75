"""What a schedule is, and the checks made when one is saved.

A schedule is either a cron expression read in an IANA time zone, or a one-off time. Every
check happens here, at save time, so a schedule that can never fire is refused with a message
the person who wrote it can act on, instead of silently never running.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# croniter ships no type information; the stubs (types-croniter) may or may not be installed,
# so the ignore must not turn into an "unused ignore" error when they are
from croniter import CroniterBadDateError, CroniterError, croniter  # type: ignore[import-untyped, unused-ignore]

from contracts.jobs import Schedule

__all__ = [
    "FIRE_HORIZON_YEARS",
    "Schedule",
    "ScheduleError",
    "load_zone",
    "parse_at",
    "validate_schedule",
]

# A cron that does not fire within this many years is refused. Ten, not five: 29 February
# goes eight years without occurring across a century that is not a leap year (2096 → 2104).
FIRE_HORIZON_YEARS = 10

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# the longest each month ever gets (February: 29, in leap years)
_LONGEST = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class ScheduleError(ValueError):
    """A schedule that cannot be saved; the message names the problem."""


def validate_schedule(s: Schedule, now: datetime | None = None) -> None:
    """Refuse a schedule that is malformed or can never fire.

    ``now`` (aware) is what "in the past" and "within the horizon" are measured from; it comes
    from the caller's clock, and defaults to the current time.
    """
    if (s.cron is None) == (s.at is None):
        raise ScheduleError("a schedule needs exactly one of 'cron' or 'at'")
    zone = load_zone(s.timezone)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if s.cron is not None:
        _check_cron(s.cron, zone, moment)
    elif s.at is not None:
        at = parse_at(s.at)
        if at <= moment:
            raise ScheduleError(
                f"one-off time {s.at!r} is in the past (now is {moment.isoformat()})"
            )


@functools.cache
def _known_zones() -> frozenset[str]:
    # some systems have a ``localtime`` file in the zone folder, so it would be "available"
    return frozenset(available_timezones()) - {"localtime"}


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or ``ScheduleError``.

    Only names of the tz database are accepted: ``ZoneInfo`` also loads host files such as
    ``localtime``, which would make replicas on different hosts fire at different instants.
    """
    if name not in _known_zones():
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(f"time zone {name!r} cannot be loaded: {e}") from None


def parse_at(text: str) -> datetime:
    """A one-off time as an aware UTC datetime; it must carry its own UTC offset."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(
            f"one-off time {text!r} is not an ISO 8601 date-time such as "
            "'2025-03-01T09:00:00+03:30'"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        # a bare wall-clock time is ambiguous across zones and DST; make the writer say which
        raise ScheduleError(
            f"one-off time {text!r} has no UTC offset: write it like '{text}+03:30' or '{text}Z'"
        )
    return at.astimezone(UTC)


def _check_cron(expr: str, zone: ZoneInfo, now: datetime) -> None:
    try:
        expanded, _nth = croniter.expand(expr)
    except CroniterError as e:
        raise ScheduleError(f"invalid cron expression {expr!r}: {e}") from None
    if len(expanded) != 5:
        # seconds and years columns would make fire times finer than the bus dedupe ids and
        # the minute-based DST rules assume
        raise ScheduleError(
            f"cron expression {expr!r} must have 5 fields: minute hour day-of-month month "
            "day-of-week"
        )
    _check_days_exist(expr, expanded[2], expanded[3], expanded[4])
    start = now.astimezone(zone).replace(tzinfo=None)
    try:
        croniter(expr, start, max_years_between_matches=FIRE_HORIZON_YEARS).get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(
            f"cron expression {expr!r} never fires within {FIRE_HORIZON_YEARS} years"
        ) from None


def _check_days_exist(expr: str, days: object, months: object, weekdays: object) -> None:
    """Refuse day-of-month values that no listed month has (31 February, 31 April...).

    Cron ORs day-of-month and day-of-week when both are restricted, so only a day-of-month
    standing alone can make the expression impossible. ``*``, ``L`` and other specials are
    left to the horizon check.
    """
    if not isinstance(days, list) or not isinstance(months, list) or weekdays != ["*"]:
        return
    if not days or not all(type(d) is int for d in days):
        return
    month_numbers = list(range(1, 13)) if months == ["*"] else months
    if not all(type(m) is int and 1 <= m <= 12 for m in month_numbers):
        return
    longest = max(_LONGEST[m - 1] for m in month_numbers)
    if min(days) > longest:
        names = ", ".join(_MONTHS[m - 1] for m in sorted(month_numbers))
        listed = ", ".join(str(d) for d in sorted(days))
        raise ScheduleError(
            f"cron expression {expr!r} can never fire: day-of-month {listed} never occurs in "
            f"{names}"
        )
