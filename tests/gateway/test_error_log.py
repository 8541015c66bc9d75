"""A request that fails on the server leaves a line in the gateway's log (regression: the
500s of an over-long upload name and of a 2 MB title left no trace)."""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from structlog.testing import capture_logs

from services.gateway.app import log_unexpected

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
