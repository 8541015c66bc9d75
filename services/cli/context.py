"""What every command gets: settings, the two consoles, and a way to reach the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from services.cli.client import GatewayClient
from services.cli.errors import UsageError
from services.core.settings import Settings

__all__ = ["Context"]


PIPE_WIDTH = 200


def _stdout_console() -> Console:
    # a pipe or a log file has no width: rich would squeeze tables into 80 columns
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    return console


@dataclass
class Context:
    settings: Settings
    out: Console = field(default_factory=_stdout_console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    def error(self, message: str) -> None:
        """One line on stderr, as given: no markup (messages quote user data), no wrapping
        (so ``grep`` and logs see whole lines)."""
        self.err.print(message, markup=False, highlight=False, soft_wrap=True)

    def client(self) -> GatewayClient:
        """A gateway client; every gateway call needs a token, so refuse early without one."""
        if not self.settings.token.strip():
            raise UsageError(
                "no token: set DM_TOKEN or pass --token (an admin creates one with: "
                "dm tokens create USER)"
            )
        return GatewayClient(self.settings.gateway_url, self.settings.token.strip())
