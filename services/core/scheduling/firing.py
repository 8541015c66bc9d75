"""Publishing a due run so that it happens once however many schedulers fire it.

Every replica that finds a run due publishes the same command with the same ``Nats-Msg-Id``
(schedule id and fire time); JetStream keeps the first and acknowledges the others as
duplicates, as long as they arrive within the stream's duplicate window. No lock, no leader.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.js import JetStreamContext

__all__ = ["MSG_ID_HEADER", "fire_id", "publish_due"]

MSG_ID_HEADER = "Nats-Msg-Id"


def fire_id(schedule_id: str, fire_time: datetime) -> str:
    """``<schedule_id>@<fire time in ISO 8601 UTC>``, the same on every replica."""
    if fire_time.tzinfo is None or fire_time.utcoffset() is None:
        # a naive time would be read differently by replicas in different zones
        raise ValueError(f"fire time {fire_time.isoformat()} must be aware")
    stamp = fire_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"{schedule_id}@{stamp}"


async def publish_due(
    js: JetStreamContext, subject: str, payload: bytes, schedule_id: str, fire_time: datetime
) -> bool:
    """Publish one run; True if JetStream stored it, False if another replica got there first."""
    ack = await js.publish(
        subject, payload, headers={MSG_ID_HEADER: fire_id(schedule_id, fire_time)}
    )
    return ack.duplicate is not True
