"""The live progress stream waits, briefly, for a worker's last progress message when the
job's record says it ended first (the worker records the end, then sends that message)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgspec
import pytest

from services.gateway import events

SUBJECT = "p.progress.job.1"


@dataclass
class _Message:  # what the stream reads of a NATS message: its subject and data
    subject: str
    data: bytes


def _progress(status: str) -> _Message:
    return _Message(SUBJECT, msgspec.json.encode({"status": status, "percent": 40.0}))


async def test_the_last_message_is_waited_for_past_earlier_ones() -> None:
    queue: asyncio.Queue[_Message] = asyncio.Queue()
    for message in (_progress("running"), _Message("p.events.job.1", b"{}"), _progress("failed")):
        queue.put_nowait(message)
    last = await events._last_progress(queue, SUBJECT)  # type: ignore[arg-type]
    assert last is not None
    assert msgspec.json.decode(last)["status"] == "failed"


async def test_without_a_last_message_the_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "LAST_PROGRESS_WAIT_SECONDS", 0.05)
    queue: asyncio.Queue[_Message] = asyncio.Queue()
    queue.put_nowait(_progress("running"))
    last = await events._last_progress(queue, SUBJECT)  # type: ignore[arg-type]
    assert last is not None
    assert msgspec.json.decode(last)["status"] == "running"
    assert await events._last_progress(queue, SUBJECT) is None  # type: ignore[arg-type]


def test_a_final_status_is_told_from_a_running_one() -> None:
    assert events._ends(_progress("cancelled").data)
    assert not events._ends(_progress("running").data)
    assert not events._ends(b"not json")
