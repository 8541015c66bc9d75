"""Scheduler replicas against the real commands stream, with a frozen clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext

from contracts.subjects import Subjects
from services.core.scheduling import (
    MSG_ID_HEADER,
    FrozenClock,
    MemoryScheduleStore,
    Schedule,
    ScheduledItem,
    SchedulerLoop,
)

CREATED = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


def items(subjects: Subjects) -> list[ScheduledItem]:
    subject = subjects.command("backup", "run")
    return [
        ScheduledItem(
            id="daily",  # 09:00 Berlin = 07:00 UTC in summer
            schedule=Schedule(cron="0 9 * * *", timezone="Europe/Berlin"),
            created_at=CREATED,
            last_fired=None,
            subject=subject,
            payload=b'{"backup": "daily"}',
        ),
        ScheduledItem(
            id="once",
            schedule=Schedule(at="2024-06-01T08:00:00+02:00"),  # 06:00 UTC
            created_at=CREATED,
            last_fired=None,
            subject=subject,
            payload=b'{"backup": "once"}',
        ),
    ]


async def stored_ids(js: JetStreamContext, subjects: Subjects) -> list[str]:
    info = await js.stream_info(subjects.commands_stream)
    ids: list[str] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(subjects.commands_stream, seq)
        assert msg.headers is not None
        ids.append(msg.headers[MSG_ID_HEADER])
    assert len(ids) == info.state.messages
    return ids


async def tick_all(replicas: list[SchedulerLoop[MemoryScheduleStore]]) -> None:
    # at the same time, as replicas on different hosts would
    await asyncio.gather(*(replica.tick() for replica in replicas))


async def test_replicas_fire_each_run_once(js: JetStreamContext, subjects: Subjects) -> None:
    clock = FrozenClock(datetime(2024, 6, 1, 7, 0, 5, tzinfo=UTC))
    replicas = [SchedulerLoop(MemoryScheduleStore(items(subjects)), js, clock) for _ in range(2)]

    await tick_all(replicas)
    assert sorted(await stored_ids(js, subjects)) == [
        "daily@2024-06-01T07:00:00Z",
        "once@2024-06-01T06:00:00Z",
    ]
    # every replica recorded the fire, whether its publish was new or a duplicate
    for replica in replicas:
        assert replica.store.get("daily").last_fired == datetime(2024, 6, 1, 7, tzinfo=UTC)

    await tick_all(replicas)  # same instant again: nothing new is due
    assert len(await stored_ids(js, subjects)) == 2

    clock.advance(timedelta(days=1))
    await tick_all(replicas)
    assert (await stored_ids(js, subjects))[2:] == ["daily@2024-06-02T07:00:00Z"]

    # down for three days: 06-03, 06-04 and 06-05 missed; caught up once, with the latest
    clock.advance(timedelta(days=3, hours=2))
    await tick_all(replicas)
    assert (await stored_ids(js, subjects))[3:] == ["daily@2024-06-05T07:00:00Z"]

    await tick_all(replicas)
    assert len(await stored_ids(js, subjects)) == 4


async def test_tick_returns_what_it_fired(js: JetStreamContext, subjects: Subjects) -> None:
    clock = FrozenClock(datetime(2024, 6, 1, 6, 30, tzinfo=UTC))
    loop = SchedulerLoop(MemoryScheduleStore(items(subjects)), js, clock)
    assert await loop.tick() == [("once", datetime(2024, 6, 1, 6, tzinfo=UTC))]
    assert await loop.tick() == []


async def test_bad_schedule_does_not_stop_the_others(
    js: JetStreamContext, subjects: Subjects
) -> None:
    broken = ScheduledItem(
        id="broken",
        schedule=Schedule(cron="0 9 * * *", timezone="Mars/Olympus_Mons"),
        created_at=CREATED,
        last_fired=None,
        subject=subjects.command("backup", "run"),
        payload=b"{}",
    )
    store = MemoryScheduleStore([broken, *items(subjects)])
    loop = SchedulerLoop(store, js, FrozenClock(datetime(2024, 6, 1, 6, 30, tzinfo=UTC)))
    assert [item_id for item_id, _ in await loop.tick()] == ["once"]


class SignallingStore(MemoryScheduleStore):
    def __init__(self, items: list[ScheduledItem]) -> None:
        super().__init__(items)
        self.fired = asyncio.Event()

    async def mark_fired(self, item_id: str, fire_time: datetime) -> None:
        await super().mark_fired(item_id, fire_time)
        self.fired.set()


async def test_run_ticks_until_stopped(js: JetStreamContext, subjects: Subjects) -> None:
    store = SignallingStore(items(subjects))
    loop = SchedulerLoop(store, js, FrozenClock(datetime(2024, 6, 1, 6, 30, tzinfo=UTC)))
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(timedelta(milliseconds=10), stop))
    await asyncio.wait_for(store.fired.wait(), 10)
    await asyncio.sleep(0.05)  # a few more ticks, which must fire nothing new
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(await stored_ids(js, subjects)) == 1
