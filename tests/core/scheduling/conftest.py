"""A JetStream connection with this test's own commands stream, on the real test NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from contracts.subjects import Subjects
from services.core.bus import ensure_streams
from tests.support.servers import Servers


@pytest.fixture
async def js(servers: Servers, subjects: Subjects) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(servers.nats_url)
    try:
        context = nc.jetstream()
        await ensure_streams(context, subjects)
        yield context
    finally:
        await nc.close()
