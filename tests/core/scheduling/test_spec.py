"""Checks made when a schedule is saved; pure, no servers."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from services.core.scheduling import Schedule, ScheduleError, validate_schedule

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(cron="0 9 * * *"),
        Schedule(cron="30 2 * * *", timezone="Europe/Berlin"),
        Schedule(cron="*/15 8-18 * * mon-fri", timezone="Asia/Tehran"),
        Schedule(cron="@daily", timezone="America/New_York"),
        Schedule(cron="0 0 29 2 *"),  # fires in leap years only, but fires
        Schedule(cron="0 0 L 2 *"),
        Schedule(cron="0 0 31 2 mon"),  # day-of-month OR day-of-week: every Monday in February
        Schedule(at="2024-06-02T08:00:00+03:30"),
        Schedule(at="2024-06-02T08:00:00Z"),
    ],
)
def test_accepted(schedule: Schedule) -> None:
    validate_schedule(schedule, now=NOW)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(), "exactly one of 'cron' or 'at'"),
        (Schedule(cron="0 9 * * *", at="2024-06-02T08:00:00Z"), "exactly one of 'cron' or 'at'"),
        (Schedule(cron="0 9 * * *", timezone="Europe/Berln"), "unknown time zone 'Europe/Berln'"),
        (Schedule(cron="0 9 * * *", timezone="localtime"), "unknown time zone 'localtime'"),
        (Schedule(cron="0 9 * * *", timezone=""), "unknown time zone ''"),
        (Schedule(cron="every day"), "invalid cron expression 'every day'"),
        (Schedule(cron="61 * * * *"), "invalid cron expression '61 * * * *'"),
        (Schedule(cron="0 0 * * * 30"), "must have 5 fields"),
        (Schedule(cron="0 9 31 2 *"), "day-of-month 31 never occurs in February"),
        (Schedule(cron="0 0 30 2 *"), "day-of-month 30 never occurs in February"),
        (Schedule(cron="0 0 31 4,6,9,11 *"), "never occurs in April, June, September, November"),
        (Schedule(cron="0 0 * 2 mon#5"), "never fires within 10 years"),
        (Schedule(at="2024-06-02T08:00:00"), "has no UTC offset"),
        (Schedule(at="tomorrow"), "is not an ISO 8601 date-time"),
        (Schedule(at="2024-06-01T11:59:00Z"), "is in the past"),
    ],
)
def test_refused(schedule: Schedule, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("*", r"\*")):
        validate_schedule(schedule, now=NOW)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_schedule_round_trips_as_json() -> None:
    s = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    assert msgspec.json.decode(msgspec.json.encode(s), type=Schedule) == s
