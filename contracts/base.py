"""The three bases of every bus message, and the error shape that crosses the bus.

Evolution rules (see docs in README): new fields get defaults, a field's type never changes,
a wire tag is never reused. Bus messages accept unknown fields so old consumers skip new ones.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Command", "ErrorInfo", "Event", "Progress", "Reply"]


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """An instruction to exactly one service; sent by the gateway or any university system."""

    correlation_id: str
    actor: str


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A fact recorded in the event log; published by the outbox relay, read by anyone."""

    event_id: str
    stream: str
    version: int
    occurred_at: str
    actor: str
    correlation_id: str


class Progress(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Latest state of running work; published by workers, the stream keeps the last one."""

    correlation_id: str


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An error as data: a stable code, a human message, and whether a retry may help."""

    code: str
    message: str
    retryable: bool = False


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """Answer to a request/reply definition command: the affected object, or an error."""

    ok: bool
    data: dict[str, Any] | None = None
    error: ErrorInfo | None = None
