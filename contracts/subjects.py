"""Stream and subject names of the bus: the only place a subject string is written.

Every name is built from a prefix (``dm`` in production) so that tests and tenants can run
isolated copies of the bus on one NATS server.

| stream   | subjects                            | retention                 |
|----------|-------------------------------------|---------------------------|
| commands | ``<p>.cmd.<service>.<verb>``        | work queue, dedupe window |
| events   | ``<p>.evt.<aggregate>.<id>.<event>`` | limits (days)            |
| progress | ``<p>.progress.<aggregate>.<id>``   | last message per subject  |

Definitions (create/update/delete/cancel) use request/reply on ``<p>.req.<service>.<verb>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_PREFIX", "Subjects"]

DEFAULT_PREFIX = "dm"
_PREFIX = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Subjects:
    """Names of streams and subjects under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        # lowercase letters, digits and '_' only: upper-casing for stream names is then
        # one-to-one, so two prefixes can never share a stream
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(
                f"bus prefix {self.prefix!r} must be lowercase letters, digits and '_', "
                "starting with a letter"
            )

    # streams
    @property
    def commands_stream(self) -> str:
        return f"{self._stream_base}_COMMANDS"

    @property
    def events_stream(self) -> str:
        return f"{self._stream_base}_EVENTS"

    @property
    def progress_stream(self) -> str:
        return f"{self._stream_base}_PROGRESS"

    @property
    def object_store(self) -> str:
        return f"{self._stream_base}_FILES"

    @property
    def _stream_base(self) -> str:
        return self.prefix.upper()

    # subject families (wildcards bound to streams)
    @property
    def all_commands(self) -> str:
        return f"{self.prefix}.cmd.>"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.evt.>"

    @property
    def all_progress(self) -> str:
        return f"{self.prefix}.progress.>"

    # concrete subjects
    def command(self, service: str, verb: str) -> str:
        return f"{self.prefix}.cmd.{service}.{verb}"

    def request(self, service: str, verb: str) -> str:
        return f"{self.prefix}.req.{service}.{verb}"

    def event(self, aggregate: str, aggregate_id: str, event_type: str) -> str:
        return f"{self.prefix}.evt.{aggregate}.{aggregate_id}.{event_type}"

    def events_of(self, aggregate: str, aggregate_id: str) -> str:
        return f"{self.prefix}.evt.{aggregate}.{aggregate_id}.*"

    def progress(self, aggregate: str, aggregate_id: str) -> str:
        return f"{self.prefix}.progress.{aggregate}.{aggregate_id}"

    def durable(self, service: str) -> str:
        """Name of the durable pull consumer shared by every replica of ``service``."""
        return f"{self._stream_base}_{service.upper()}"
