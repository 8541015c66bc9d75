"""When schedules fire: catch-up once, and the DST rules of ``due``; pure, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.scheduling import Schedule, due_fire, next_fire


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(s: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], by repeated ``next_fire``."""
    out: list[datetime] = []
    moment = next_fire(s, start)
    while moment is not None and moment <= end:
        out.append(moment)
        moment = next_fire(s, moment)
    return out


def ticked(s: Schedule, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """What a scheduler ticking every ``step`` fires, by repeated ``due_fire``."""
    out: list[datetime] = []
    last: datetime | None = None
    now = start
    while now <= end:
        fire = due_fire(s, last, start, now)
        if fire is not None:
            out.append(fire)
            last = fire
        now += step
    return out


DAILY_9 = Schedule(cron="0 9 * * *")


def test_next_fire_is_strictly_after() -> None:
    assert next_fire(DAILY_9, utc("2024-06-01T08:59")) == utc("2024-06-01T09:00")
    assert next_fire(DAILY_9, utc("2024-06-01T09:00")) == utc("2024-06-02T09:00")


def test_due_fire_window_is_open_at_since_and_closed_at_now() -> None:
    created = utc("2024-06-01T08:00")
    assert due_fire(DAILY_9, None, created, utc("2024-06-01T08:59")) is None
    assert due_fire(DAILY_9, None, created, utc("2024-06-01T09:00")) == utc("2024-06-01T09:00")
    fired = utc("2024-06-01T09:00")
    assert due_fire(DAILY_9, fired, created, utc("2024-06-01T23:00")) is None


def test_slot_before_creation_does_not_fire() -> None:
    assert due_fire(DAILY_9, None, utc("2024-06-01T09:30"), utc("2024-06-01T10:00")) is None


def test_catch_up_once_after_three_days_down() -> None:
    last = utc("2024-06-01T09:00")
    back_up = utc("2024-06-04T10:00")  # missed 06-02, 06-03 and 06-04 at 09:00
    assert due_fire(DAILY_9, last, utc("2024-05-01T00:00"), back_up) == utc("2024-06-04T09:00")
    # once caught up, nothing older is due
    caught = utc("2024-06-04T09:00")
    assert due_fire(DAILY_9, caught, utc("2024-05-01T00:00"), back_up) is None


def test_catch_up_of_a_minutely_job_is_cheap_and_single() -> None:
    every_minute = Schedule(cron="* * * * *", timezone="Europe/Berlin")
    last = utc("2024-01-01T00:00")
    assert due_fire(every_minute, last, last, utc("2024-12-31T23:59:30")) == utc("2024-12-31T23:59")


def test_one_off() -> None:
    s = Schedule(at="2024-06-01T12:00:00+03:30")  # 08:30 UTC
    created = utc("2024-06-01T00:00")
    assert next_fire(s, created) == utc("2024-06-01T08:30")
    assert next_fire(s, utc("2024-06-01T08:30")) is None
    assert due_fire(s, None, created, utc("2024-06-01T08:29")) is None
    assert due_fire(s, None, created, utc("2024-06-03T00:00")) == utc("2024-06-01T08:30")
    assert due_fire(s, utc("2024-06-01T08:30"), created, utc("2024-06-03T00:00")) is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire(DAILY_9, datetime(2024, 6, 1))


# Europe/Berlin 2024: clocks go 02:00 CET → 03:00 CEST on 31 March, 03:00 CEST → 02:00 CET
# on 27 October (last Sundays).
CREATED = utc("2024-01-01T00:00")
BERLIN_0230 = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")


def test_berlin_spring_forward_fires_once_just_after_the_gap() -> None:
    expected = [
        utc("2024-03-30T01:30"),  # 02:30 CET
        utc("2024-03-31T01:00"),  # 02:30 does not exist: 03:00 CEST, the end of the gap
        utc("2024-04-01T00:30"),  # 02:30 CEST
    ]
    window = (utc("2024-03-29T12:00"), utc("2024-04-01T12:00"))
    assert fires(BERLIN_0230, *window) == expected
    assert ticked(BERLIN_0230, *window, timedelta(minutes=1)) == expected


def test_berlin_fall_back_fires_once_at_the_first_occurrence() -> None:
    expected = [
        utc("2024-10-26T00:30"),  # 02:30 CEST
        utc("2024-10-27T00:30"),  # first 02:30 (CEST); not again at 01:30 UTC (CET)
        utc("2024-10-28T01:30"),  # 02:30 CET
    ]
    window = (utc("2024-10-25T12:00"), utc("2024-10-28T12:00"))
    assert fires(BERLIN_0230, *window) == expected
    assert ticked(BERLIN_0230, *window, timedelta(minutes=1)) == expected


def test_berlin_due_fire_in_the_second_pass_of_the_repeated_hour() -> None:
    fired_first = utc("2024-10-27T00:30")
    second_0240 = utc("2024-10-27T01:40")  # 02:40 CET, the repeated 02:40
    assert due_fire(BERLIN_0230, fired_first, fired_first, second_0240) is None
    # a scheduler that was down through the first pass still catches it up, once
    assert due_fire(BERLIN_0230, utc("2024-10-26T00:30"), CREATED, second_0240) == fired_first


def test_sub_hourly_job_through_both_transitions() -> None:
    half_hourly = Schedule(cron="*/30 * * * *", timezone="Europe/Berlin")
    # spring: 02:00 and 02:30 fall in the gap and collapse onto 03:00 CEST with 03:00 itself
    assert fires(half_hourly, utc("2024-03-31T00:00"), utc("2024-03-31T02:00")) == [
        utc("2024-03-31T00:30"),  # 01:30 CET
        utc("2024-03-31T01:00"),  # 03:00 CEST
        utc("2024-03-31T01:30"),
        utc("2024-03-31T02:00"),
    ]
    # autumn: 02:00 and 02:30 fire in the first pass only
    assert fires(half_hourly, utc("2024-10-26T23:45"), utc("2024-10-27T02:00")) == [
        utc("2024-10-27T00:00"),  # 02:00 CEST
        utc("2024-10-27T00:30"),  # 02:30 CEST
        utc("2024-10-27T02:00"),  # 03:00 CET; 02:00/02:30 CET are not repeated
    ]


# America/New_York 2024: 02:00 EST → 03:00 EDT on 10 March, 02:00 EDT → 01:00 EST on 3 November


def test_new_york_0130_through_both_transitions() -> None:
    s = Schedule(cron="30 1 * * *", timezone="America/New_York")
    # 01:30 is before the spring gap: it exists, in EST
    assert fires(s, utc("2024-03-09T12:00"), utc("2024-03-11T12:00")) == [
        utc("2024-03-10T06:30"),  # 01:30 EST
        utc("2024-03-11T05:30"),  # 01:30 EDT
    ]
    # 01:30 is in the repeated hour in November: once, at the first (EDT) occurrence
    expected = [
        utc("2024-11-02T05:30"),  # 01:30 EDT
        utc("2024-11-03T05:30"),  # first 01:30 (EDT); not again at 06:30 UTC (EST)
        utc("2024-11-04T06:30"),  # 01:30 EST
    ]
    window = (utc("2024-11-01T12:00"), utc("2024-11-04T12:00"))
    assert fires(s, *window) == expected
    assert ticked(s, *window, timedelta(minutes=5)) == expected


def test_new_york_0230_in_the_spring_gap() -> None:
    s = Schedule(cron="30 2 * * *", timezone="America/New_York")
    assert fires(s, utc("2024-03-09T12:00"), utc("2024-03-11T12:00")) == [
        utc("2024-03-10T07:00"),  # 02:30 does not exist: 03:00 EDT
        utc("2024-03-11T06:30"),  # 02:30 EDT
    ]


def test_tehran_without_dst_fires_every_day_at_2100_utc() -> None:
    # Iran dropped DST in 2022: +03:30 all year, so 00:30 local is 21:00 UTC the day before,
    # including around the old switch dates (21/22 March, 21/22 September)
    s = Schedule(cron="30 0 * * *", timezone="Asia/Tehran")
    start = utc("2024-01-01T00:00")
    end = utc("2024-12-31T23:59")
    got = fires(s, start, end)
    assert len(got) == 366
    assert all(t.hour == 21 and t.minute == 0 for t in got)
    assert got[0] == utc("2024-01-01T21:00")  # 00:30 on 2 January, Tehran
    assert utc("2024-03-20T21:00") in got
    assert utc("2024-09-21T21:00") in got
    assert ticked(s, utc("2024-03-19T00:00"), utc("2024-03-24T00:00"), timedelta(hours=1)) == [
        utc(f"2024-03-{day}T21:00") for day in range(19, 24)
    ]
