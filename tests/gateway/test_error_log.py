"""A request that fails on the server leaves a line in the gateway's log (regression: the
500s of an over-long upload name and of a 2 MB title left no trace)."""

from __future__ import annotations

from typing import Any

import nats.errors
from litestar import Request
from litestar.exceptions import NotFoundException
from structlog.testing import capture_logs

from services.core.settings import Settings
from services.gateway.app import build_app, log_unexpected
from services.gateway.unavailable import BUS_DOWN, RETRY_AFTER_SECONDS, bus_unavailable

SCOPE = {"method": "PUT", "path": "/api/data-management/uploads/x.csv"}


async def test_a_server_error_is_logged_with_its_request() -> None:
    with capture_logs() as logs:
        await log_unexpected(RuntimeError("connection closed"), SCOPE)
    [entry] = [e for e in logs if e["event"] == "request failed"]
    assert entry["log_level"] == "error"
    assert (entry["method"], entry["path"]) == ("PUT", SCOPE["path"])
    assert entry["error"] == "RuntimeError: connection closed"
    assert isinstance(entry["exc_info"], RuntimeError)  # rendered as a traceback


async def test_a_refusal_is_an_answer_not_an_error() -> None:
    with capture_logs() as logs:
        await log_unexpected(NotFoundException(), SCOPE)
    assert logs == []


async def test_a_bus_that_does_not_answer_is_a_503_to_try_again() -> None:
    """Before, NATS being away made every upload and job a 500 with a traceback."""
    request: Request[Any, Any, Any] = Request(
        {"type": "http", "method": "POST", "path": "/api/data-management/jobs/"}  # type: ignore[arg-type]
    )
    with capture_logs() as logs:
        response = bus_unavailable(request, nats.errors.TimeoutError())
        await log_unexpected(nats.errors.TimeoutError(), SCOPE)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert [e["event"] for e in logs] == ["message bus unavailable"]
    app = build_app(Settings(), nats_url="nats://127.0.0.1:1", database_url="postgresql://x")
    for error in BUS_DOWN:
        assert app.exception_handlers[error] is bus_unavailable
