"""The scheduler loop: find due runs, publish each once, remember that it fired.

It knows nothing of jobs, syncs or backups: a store hands it ``ScheduledItem``s (a schedule,
a subject and a ready-made payload) and records fire times. Run it on every replica; the bus
deduplicates (see ``firing``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

import msgspec
from nats.js import JetStreamContext

from services.core.logs import get_logger
from services.core.scheduling.clock import Clock, SystemClock
from services.core.scheduling.due import due_fire
from services.core.scheduling.firing import publish_due
from services.core.scheduling.spec import Schedule

__all__ = ["MemoryScheduleStore", "ScheduleStore", "ScheduledItem", "SchedulerLoop"]

log = get_logger(__name__)


class ScheduledItem(msgspec.Struct, frozen=True, kw_only=True):
    """Something that runs on a schedule, and the command that runs it."""

    id: str
    schedule: Schedule
    created_at: datetime
    last_fired: datetime | None
    subject: str
    payload: bytes


class ScheduleStore(Protocol):
    async def due_candidates(self) -> list[ScheduledItem]:
        """Items that may be due; returning more than that is fine, the loop decides."""
        ...

    async def mark_fired(self, item_id: str, fire_time: datetime) -> None:
        """Record ``fire_time`` as the item's ``last_fired``, never moving it backwards.

        Replicas may mark the same fire, or a slow one an older fire after a newer one; a
        shared store should keep the latest (``GREATEST`` in SQL).
        """
        ...


StoreT = TypeVar("StoreT", bound=ScheduleStore)


class SchedulerLoop(Generic[StoreT]):
    def __init__(self, store: StoreT, js: JetStreamContext, clock: Clock | None = None) -> None:
        self.store = store
        self.js = js
        self.clock: Clock = clock or SystemClock()

    async def tick(self) -> list[tuple[str, datetime]]:
        """Fire everything due now; the (item id, fire time) pairs fired, new or duplicate."""
        now = self.clock.now()
        fired: list[tuple[str, datetime]] = []
        for item in await self.store.due_candidates():
            try:
                fire = due_fire(item.schedule, item.last_fired, item.created_at, now)
            except ValueError as e:  # ScheduleError, or a naive time from a careless store
                # one bad schedule (saved before a check existed, zone gone from tzdata)
                # must not stop the others
                log.warning("schedule skipped", item_id=item.id, error=str(e))
                continue
            if fire is None:
                continue
            # publish first, then mark: a crash in between re-publishes the same id, which
            # the bus drops; the other order could lose the run
            new = await publish_due(self.js, item.subject, item.payload, item.id, fire)
            # a duplicate means another replica published it: it is fired all the same
            await self.store.mark_fired(item.id, fire)
            log.info("schedule fired", item_id=item.id, fire_time=fire.isoformat(), new=new)
            fired.append((item.id, fire))
        return fired

    async def run(self, interval: timedelta, stop: asyncio.Event | None = None) -> None:
        """Tick every ``interval`` until ``stop`` is set (or the task is cancelled).

        Keep ``interval`` well under the stream's duplicate window, so that replicas firing
        the same run reach the bus within it.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                # the bus or the store being briefly away is not a reason to stop scheduling;
                # unmarked runs are simply due again next tick
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval.total_seconds())


class MemoryScheduleStore:
    """A ``ScheduleStore`` in a dict, for tests and single-process uses."""

    def __init__(self, items: list[ScheduledItem] | None = None) -> None:
        self._items: dict[str, ScheduledItem] = {item.id: item for item in items or []}

    def put(self, item: ScheduledItem) -> None:
        self._items[item.id] = item

    def get(self, item_id: str) -> ScheduledItem:
        return self._items[item_id]

    async def due_candidates(self) -> list[ScheduledItem]:
        return list(self._items.values())

    async def mark_fired(self, item_id: str, fire_time: datetime) -> None:
        item = self._items[item_id]
        # never move backwards: a slow replica must not make an older fire due again
        if item.last_fired is None or fire_time > item.last_fired:
            self._items[item_id] = msgspec.structs.replace(item, last_fired=fire_time)
