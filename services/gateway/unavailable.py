"""A message bus that does not answer is a 503 with its reason and a Retry-After, not a 500
with a traceback: the request may simply be tried again once NATS is back."""

from __future__ import annotations

from typing import Any

import nats.errors
import nats.js.errors
from litestar import Request, Response

from services.core.logs import get_logger

__all__ = ["BUS_DOWN", "RETRY_AFTER_SECONDS", "bus_unavailable"]

RETRY_AFTER_SECONDS = 5
# what nats-py raises while the server is away or not answering
BUS_DOWN: tuple[type[Exception], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
)

log = get_logger(__name__)


def bus_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning(
        "message bus unavailable",
        method=request.scope.get("method"),
        path=request.scope.get("path"),
        error=f"{type(exc).__name__}: {exc}"[:200],
    )
    return Response(
        {"status_code": 503, "detail": "the message bus is not answering; try again shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
