"""When a schedule fires: pure functions of the schedule and instants, no clock, no I/O.

Cron times are wall-clock times in the schedule's zone. croniter only enumerates *naive*
wall-clock times here (naive datetimes are plain calendar arithmetic to it); each one is then
turned into an instant by ``resolve_wall_time`` with zoneinfo, by these rules:

* a wall time that exists once fires at that instant;
* a wall time repeated when clocks fall back fires once, at its first occurrence (fold=0), so
  a daily 02:30 job in Europe/Berlin fires at 00:30 UTC on the last Sunday of October and not
  again at 01:30 UTC. Consequence: a sub-hourly job does not fire again during the repeated
  hour (its wall times have all fired already);
* a wall time skipped when clocks spring forward fires at the first instant after the gap, so
  a daily 02:30 Berlin job fires at 03:00 local (01:00 UTC) on the last Sunday of March. Several
  wall times in one gap collapse onto that instant and so fire once.

croniter (7.0) given aware datetimes handles the gap this way too, but fires a wall time in
the repeated hour twice (once per fold), hence the naive iteration.

The resolution is non-decreasing in wall time, which is what lets the searches below walk the
naive cron sequence in order and stop at the first instant on the right side of a bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter  # type: ignore[import-untyped, unused-ignore]

from services.core.scheduling.spec import Schedule, ScheduleError, load_zone, parse_at

__all__ = ["due_fire", "next_fire", "resolve_wall_time"]

# Wall times skipped while walking are at most the matches inside one repeated period (≤ 60
# per hour for a 5-field cron); far more means something is wrong, not slow.
_MAX_SKIPPED = 10_000


def next_fire(s: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (aware), in UTC, or None if there is none."""
    after = _aware(after, "after")
    if s.at is not None:
        at = parse_at(s.at)
        return at if at > after else None
    zone = load_zone(s.timezone)
    start = after.astimezone(zone).replace(tzinfo=None)
    # wall times after ``start`` can still resolve to instants <= ``after`` while ``after`` is
    # in the second pass of a repeated hour: they fired in the first pass, so skip them
    for wall in _walk(_cron(s), start, backwards=False):
        fire = resolve_wall_time(wall, zone)
        if fire > after:
            return fire
    return None


def due_fire(
    s: Schedule, last_fired: datetime | None, created_at: datetime, now: datetime
) -> datetime | None:
    """The single most recent fire time in ``(last_fired or created_at, now]``, or None.

    Only the latest slot is returned: runs missed while no scheduler was up are caught up
    once, not once per missed slot.
    """
    since = _aware(last_fired if last_fired is not None else created_at, "since")
    now = _aware(now, "now")
    if now <= since:
        return None
    if s.at is not None:
        at = parse_at(s.at)
        return at if since < at <= now else None
    zone = load_zone(s.timezone)
    local = now.astimezone(zone)
    # in the second pass of a repeated hour, wall times up to the end of that hour already
    # fired (in the first pass) and may be the latest; start the backward walk past them.
    # The extra minute makes the start inclusive (croniter's get_prev is strictly before).
    start = local.replace(tzinfo=None) + _repeat_length(local) + timedelta(minutes=1)
    for wall in _walk(_cron(s), start, backwards=True):
        fire = resolve_wall_time(wall, zone)
        if fire > now:
            continue
        return fire if fire > since else None
    return None


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the naive local ``wall`` time fires (rules in the module doc)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists: the only occurrence, or the first of two
    return _end_of_gap(wall, zone)


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the gap that swallowed ``wall``: the transition itself."""
    # PEP 495: in a gap, fold=0 gives the offset before the transition, fold=1 the one after,
    # so the transition lies between the two readings of ``wall``
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    if before is None or after is None or after <= before:
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # zoneinfo exposes no transition list, so bisect to the second (transitions and offsets
    # are whole seconds); ``lo`` is still on the old offset, ``hi`` already on the new one
    lo = int((wall - after).replace(tzinfo=UTC).timestamp())
    hi = int((wall - before).replace(tzinfo=UTC).timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _repeat_length(local: datetime) -> timedelta:
    """How far the clock went back, if ``local`` is in the second pass of a repeated period."""
    if not local.fold:
        return timedelta(0)
    first = local.replace(fold=0).utcoffset()
    second = local.utcoffset()
    if first is None or second is None:
        return timedelta(0)
    return max(first - second, timedelta(0))


def _cron(s: Schedule) -> str:
    if s.cron is None:
        raise ScheduleError("a schedule needs exactly one of 'cron' or 'at'")
    return s.cron


def _walk(expr: str, start: datetime, *, backwards: bool) -> Iterator[datetime]:
    """Naive wall-clock matches of ``expr`` strictly after (or before) naive ``start``."""
    try:
        it = croniter(expr, start)
    except CroniterError as e:
        raise ScheduleError(f"invalid cron expression {expr!r}: {e}") from None
    for _ in range(_MAX_SKIPPED):
        try:
            wall = it.get_prev(datetime) if backwards else it.get_next(datetime)
        except CroniterBadDateError:
            return  # no match within croniter's horizon (50 years): never fires
        if not isinstance(wall, datetime):
            raise TypeError(f"croniter returned {wall!r}, not a datetime")
        yield wall
    raise RuntimeError(f"cron expression {expr!r}: no fire time found after {_MAX_SKIPPED} steps")


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} ({moment.isoformat()}) must be an aware datetime")
    return moment.astimezone(UTC)
