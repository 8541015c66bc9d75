"""Schedules for jobs, syncs and backups: cron in an IANA zone or a one-off time.

Each due run fires exactly once across scheduler replicas (deduplicated on the bus by
``Nats-Msg-Id``), a run missed during downtime is caught up once, and DST gaps and repeats
follow the rules documented in ``due``. Time comes from an injectable ``Clock``.
"""

from services.core.scheduling.clock import Clock, FrozenClock, SystemClock
from services.core.scheduling.due import due_fire, next_fire, resolve_wall_time
from services.core.scheduling.firing import MSG_ID_HEADER, fire_id, publish_due
from services.core.scheduling.loop import (
    MemoryScheduleStore,
    ScheduledItem,
    SchedulerLoop,
    ScheduleStore,
)
from services.core.scheduling.spec import (
    FIRE_HORIZON_YEARS,
    Schedule,
    ScheduleError,
    load_zone,
    parse_at,
    validate_schedule,
)

__all__ = [
    "FIRE_HORIZON_YEARS",
    "MSG_ID_HEADER",
    "Clock",
    "FrozenClock",
    "MemoryScheduleStore",
    "Schedule",
    "ScheduleError",
    "ScheduleStore",
    "ScheduledItem",
    "SchedulerLoop",
    "SystemClock",
    "due_fire",
    "fire_id",
    "load_zone",
    "next_fire",
    "parse_at",
    "publish_due",
    "resolve_wall_time",
    "validate_schedule",
]
