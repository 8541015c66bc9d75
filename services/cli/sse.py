"""Server-sent events parsed by hand from a stream of lines (the subset the gateway sends).

Parsing is separate from the network so it can be tested on plain lists of lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SseMessage", "parse_sse"]


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Yield one message per blank-line-terminated block.

    A block cut off by the end of the stream is dropped: the connection broke mid-message, so
    its data may be incomplete JSON. Blocks with no ``data:`` line (keep-alives) are skipped.
    """
    event = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseMessage(event=event or "message", data="\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # comment, used by servers as a keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]  # the spec strips exactly one space after the colon
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        # "id" and "retry" are ignored: we do not reconnect with Last-Event-ID, we poll instead
