"""A service's broker outlives a NATS outage of any length: once the server is back, its pull
subscriber takes messages again. Before, nats-py gave up after 60 reconnect attempts and
FastStream's pull loop then retried the closed connection without pause: the worker spun a
core for ever and never took another job."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import pytest
from faststream.nats import JStream, PullSub
from nats.js.api import StreamConfig

from services.core.bus import make_broker
from services.core.embedded import start_nats

# nats-py's default number of attempts, each a pause apart: the outage outlasts them all
DEFAULT_ATTEMPTS = 60
PAUSE = 0.05


async def _publish(url: str, subject: str, body: bytes) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().publish(subject, body)
    finally:
        await client.close()


async def _until(found: list[bytes], count: int, seconds: float) -> None:
    for _ in range(int(seconds / 0.1)):
        if len(found) >= count:
            return
        await asyncio.sleep(0.1)


@pytest.mark.timeout(60)  # before the fix the spinning loop never let the test finish
async def test_a_pull_subscriber_takes_messages_again_after_a_long_outage(tmp_path: Path) -> None:
    server = start_nats(tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    name = f"reconnect_{uuid.uuid4().hex[:8]}"
    subject = f"{name}.work"
    client = await nats.connect(server.url)
    await client.jetstream().add_stream(StreamConfig(name=name, subjects=[subject]))
    await client.close()

    broker = make_broker(server.url, name="reconnect-test", reconnect_wait=PAUSE)
    found: list[bytes] = []

    @broker.subscriber(
        subject,
        stream=JStream(name, declare=False),
        durable=name,
        pull_sub=PullSub(batch_size=1, timeout=0.5),
    )
    async def take(body: bytes) -> None:
        found.append(body)

    await broker.start()
    try:
        await _publish(server.url, subject, b"before")
        await _until(found, 1, 10)
        assert found == [b"before"]

        server.stop()
        await asyncio.sleep(DEFAULT_ATTEMPTS * PAUSE * 1.5)
        server = start_nats(tmp_path, port=port)  # the same store: stream and consumer
        await _publish(server.url, subject, b"after")
        await _until(found, 2, 20)
        assert found == [b"before", b"after"]
    finally:
        await broker.stop()
        server.stop()
