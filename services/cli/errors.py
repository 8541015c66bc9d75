"""Errors that end a command with a clean message on stderr instead of a traceback."""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "CliError", "GatewayError", "UsageError"]

EXIT_OK = 0
EXIT_FAILED = 1  # the job (or admin action) ran and did not succeed
EXIT_USAGE = 2  # we could not even ask: bad arguments, unreachable server, HTTP error


class CliError(Exception):
    """Printed as ``dm: <message>``; the process exits with ``exit_code``."""

    exit_code = EXIT_USAGE


class UsageError(CliError):
    """Bad arguments or local state (missing file, no token)."""


class GatewayError(CliError):
    """The gateway answered with an error status; ``detail`` is its message."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"gateway answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
