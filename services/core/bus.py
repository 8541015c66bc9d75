"""Bus wiring: the FastStream broker with msgspec, and the three JetStream streams.

Streams are declared by every service on start (idempotent), so a fresh NATS works.
Only features present in NATS 2.9 are used.
"""

from __future__ import annotations

import contextlib

import nats
from fast_depends.msgspec import MsgSpecSerializer
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from contracts.subjects import Subjects

__all__ = [
    "COMMAND_DEDUPE_SECONDS",
    "connect",
    "ensure_object_store",
    "ensure_streams",
    "make_broker",
]

COMMAND_DEDUPE_SECONDS = 120.0
EVENTS_MAX_AGE_SECONDS = 7 * 24 * 3600.0
PROGRESS_MAX_AGE_SECONDS = 24 * 3600.0


def make_broker(url: str, name: str, *, reconnect_wait: float = 2.0) -> NatsBroker:
    """The services' broker. It never stops reconnecting: nats-py gives up after 60 tries by
    default, and FastStream's pull loop then retries a closed connection without pause, so a
    worker whose NATS was away for two minutes spun a core for ever and never recovered."""
    return NatsBroker(
        url,
        serializer=MsgSpecSerializer(),
        name=name,
        logger=None,
        max_reconnect_attempts=-1,
        reconnect_time_wait=reconnect_wait,  # type: ignore[arg-type]  # seconds, a float
    )


def stream_configs(subjects: Subjects) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=subjects.commands_stream,
            subjects=[subjects.all_commands],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=COMMAND_DEDUPE_SECONDS,
        ),
        StreamConfig(
            name=subjects.events_stream,
            subjects=[subjects.all_events],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE_SECONDS,
            duplicate_window=COMMAND_DEDUPE_SECONDS,
        ),
        StreamConfig(
            name=subjects.progress_stream,
            subjects=[subjects.all_progress],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs_per_subject=1,
            max_age=PROGRESS_MAX_AGE_SECONDS,
            discard=DiscardPolicy.OLD,
        ),
    ]


async def ensure_streams(js: JetStreamContext, subjects: Subjects) -> None:
    for config in stream_configs(subjects):
        try:
            await js.add_stream(config)
        except BadRequestError:
            # exists with another config (e.g. an older release): bring it up to date
            with contextlib.suppress(BadRequestError):
                await js.update_stream(config)


async def ensure_object_store(js: JetStreamContext, subjects: Subjects) -> None:
    try:
        await js.object_store(subjects.object_store)
    except NotFoundError:
        await js.create_object_store(subjects.object_store)


async def connect(url: str, name: str) -> Client:
    return await nats.connect(url, name=name, max_reconnect_attempts=-1)
