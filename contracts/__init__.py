"""Public contracts of the data-management bus.

Everything that crosses a process boundary is defined here as a frozen msgspec Struct:
commands (imperative, consumed by one service), events (past tense, published from the
event log's outbox) and progress (latest state of running work). Other university systems
depend on this package; it never imports ``services``.
"""

from contracts.base import Command, ErrorInfo, Event, Progress, Reply

__all__ = ["Command", "ErrorInfo", "Event", "Progress", "Reply"]
