"""Append-only event log with optimistic concurrency, and its transactional outbox.

``append`` writes events and their outbox rows in the caller's transaction, so a
projection updated in the same transaction can never disagree with the log. The outbox
relay (``services.core.outbox``) publishes the rows after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.base import Event
from contracts.subjects import Subjects
from services.core.tables import events, outbox

__all__ = [
    "ConcurrencyError",
    "append",
    "enqueue",
    "event_fields",
    "read_stream",
    "storable_event",
]

E = TypeVar("E", bound=Event)


class ConcurrencyError(RuntimeError):
    """Another writer appended to the stream first; reload and decide again."""


def event_fields(stream: str, version: int, actor: str, correlation_id: str) -> dict[str, Any]:
    """The envelope every event carries."""
    return {
        "event_id": str(uuid.uuid4()),
        "stream": stream,
        "version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": actor,
        "correlation_id": correlation_id,
    }


def _subject(subjects: Subjects, event: Event) -> str:
    tag = type(event).__struct_config__.tag
    aggregate, _, name = str(tag).partition(".")
    aggregate_id = event.stream.partition("-")[2]
    return subjects.event(aggregate, aggregate_id, name)


def _storable(value: Any) -> Any:
    """PostgreSQL's jsonb cannot hold NUL; a NUL that reached an event (a header cell of a
    user's file, say) is shown as ``\\x00`` instead of breaking the write."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00") if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def storable_event(event: E) -> E:
    """``event`` itself, or a copy with NUL characters shown as ``\\x00``."""
    data = msgspec.to_builtins(event)
    clean = _storable(data)
    return event if clean == data else msgspec.convert(clean, type(event))


async def append(
    conn: AsyncConnection,
    subjects: Subjects,
    new_events: Sequence[Event],
    *,
    causation_id: str | None = None,
) -> None:
    """Append events (their ``version`` already set) and queue them for publishing.

    Raises ``ConcurrencyError`` when a version is already taken.
    """
    if not new_events:
        return
    # one plain-data form per event serves the log row and the published payload
    data = [_storable(msgspec.to_builtins(e)) for e in new_events]
    rows = [
        {
            "event_id": e.event_id,
            "stream": e.stream,
            "version": e.version,
            "type": str(type(e).__struct_config__.tag),
            "data": plain,
            "actor": e.actor,
            "correlation_id": e.correlation_id,
            "causation_id": causation_id,
        }
        for e, plain in zip(new_events, data, strict=True)
    ]
    try:
        async with conn.begin_nested():
            await conn.execute(insert(events), rows)
    except IntegrityError as e:
        raise ConcurrencyError(f"stream {new_events[0].stream} changed concurrently") from e
    await conn.execute(
        insert(outbox),
        [
            {
                "message_id": ev.event_id,
                "subject": _subject(subjects, ev),
                "payload": msgspec.json.encode(plain),
            }
            for ev, plain in zip(new_events, data, strict=True)
        ],
    )


async def enqueue(
    conn: AsyncConnection, subject: str, message: msgspec.Struct, message_id: str
) -> None:
    """Queue a command for publishing after commit, atomically with the caller's events.

    ``message_id`` becomes ``Nats-Msg-Id``, so a re-publish is dropped as a duplicate.
    """
    await conn.execute(
        insert(outbox).values(
            message_id=message_id, subject=subject, payload=msgspec.json.encode(message)
        )
    )


async def read_stream(conn: AsyncConnection, stream: str, event_type: type[E] | Any) -> list[Any]:
    """All events of a stream in order, decoded as ``event_type`` (a union is fine)."""
    result = await conn.execute(
        select(events.c.data).where(events.c.stream == stream).order_by(events.c.version)
    )
    return [msgspec.convert(row[0], event_type) for row in result.all()]
