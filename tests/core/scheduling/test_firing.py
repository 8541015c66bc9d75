"""Dedupe of scheduled runs on the real commands stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from nats.js import JetStreamContext

from contracts.subjects import Subjects
from services.core.scheduling import MSG_ID_HEADER, fire_id, publish_due

FIRE = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)


def test_fire_id_names_schedule_and_utc_time() -> None:
    tehran = timezone(timedelta(hours=3, minutes=30))
    assert fire_id("backup-7", FIRE) == "backup-7@2024-03-31T01:00:00Z"
    assert fire_id("backup-7", FIRE.astimezone(tehran)) == "backup-7@2024-03-31T01:00:00Z"


def test_fire_id_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        fire_id("backup-7", datetime(2024, 3, 31, 1, 0))


async def test_same_fire_is_stored_once(js: JetStreamContext, subjects: Subjects) -> None:
    subject = subjects.command("backup", "run")
    assert await publish_due(js, subject, b"{}", "backup-7", FIRE) is True
    assert await publish_due(js, subject, b"{}", "backup-7", FIRE) is False
    assert await publish_due(js, subject, b"{}", "backup-7", FIRE + timedelta(days=1)) is True
    assert await publish_due(js, subject, b"{}", "backup-8", FIRE) is True

    info = await js.stream_info(subjects.commands_stream)
    assert info.state.messages == 3
    first = await js.get_msg(subjects.commands_stream, 1)
    assert first.headers is not None
    assert first.headers[MSG_ID_HEADER] == "backup-7@2024-03-31T01:00:00Z"
