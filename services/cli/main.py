"""``dm``: argument parsing and dispatch; every command is ``func(args, ctx) -> exit code``.

Errors the user can act on (bad flags, unreachable gateway, HTTP errors) end with one line
on stderr and exit code 2; a job that ran and failed exits 1; only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from services.cli import admin, commands_export, commands_import, commands_status
from services.cli.context import Context
from services.cli.errors import EXIT_USAGE, CliError
from services.cli.jobrun import EXIT_INTERRUPTED, FollowInterruptedError
from services.core.settings import SettingsError, load_settings

__all__ = ["build_parser", "main"]

# commands of later work: present so `dm --help` shows the whole shape of the tool
_NOT_YET = {
    "backup": "backups (dm backup)",
    "sync": "synchronisation with external systems (dm sync)",
    "cleanup": "cleanup of old files and jobs (dm cleanup)",
}


def _connection_options() -> argparse.ArgumentParser:
    """``--gateway``/``--token``, accepted before or after the subcommand.

    SUPPRESS as default: a subparser's default would otherwise overwrite a value given
    before the subcommand.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--gateway", metavar="URL", default=argparse.SUPPRESS, help="overrides DM_GATEWAY_URL"
    )
    parent.add_argument(
        "--token", metavar="TOKEN", default=argparse.SUPPRESS, help="overrides DM_TOKEN"
    )
    return parent


def _not_yet(args: argparse.Namespace, ctx: Context) -> int:
    ctx.error(f"not available yet: {_NOT_YET[args.command]}")
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    common = _connection_options()
    parser = argparse.ArgumentParser(
        prog="dm",
        description="University data management: import, export and watch jobs.",
        parents=[common],
    )
    sub: Any = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [common]
    commands_import.register(sub, parents)
    commands_export.register(sub, parents)
    commands_status.register(sub, parents)
    admin.register(sub, parents)
    for name, what in _NOT_YET.items():
        p = sub.add_parser(name, parents=parents, help=f"{what}: not available yet")
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=_not_yet)
    return parser


def _settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if getattr(args, "gateway", None):
        overrides["gateway_url"] = args.gateway
    elif not os.environ.get("DM_GATEWAY_URL"):
        # `make run` on this machine: its run.json knows the gateway's real port
        local = _local_gateway()
        if local:
            overrides["gateway_url"] = local
    token = getattr(args, "token", None)
    if token is not None:
        overrides["token"] = token
    return overrides


def _local_gateway() -> str:
    data_dir = Path(os.environ.get("DM_DATA_DIR") or ".dm")
    try:
        value = json.loads((data_dir / "run.json").read_text())["gateway_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return str(value)


def main(argv: Sequence[str] | None = None, *, ctx: Context | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 itself on a usage error
    if ctx is None:
        try:
            settings = load_settings(None, **_settings_overrides(args))
        except SettingsError as e:
            print(f"dm: {e}", file=sys.stderr)
            return EXIT_USAGE
        ctx = Context(settings)
    try:
        code: int = args.func(args, ctx)
    except CliError as e:
        ctx.error(f"dm: {e}")
        return e.exit_code
    except httpx.TransportError as e:
        reason = str(e) or type(e).__name__  # timeouts often carry no message
        ctx.error(f"dm: cannot reach the gateway at {ctx.settings.gateway_url}: {reason}")
        if getattr(args, "func", None) is not None and args.command in ("import", "export"):
            ctx.error(
                "dm: a job already started keeps its place on the server and resumes "
                "when the services are back; check it with: dm status"
            )
        return EXIT_USAGE
    except FollowInterruptedError:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        ctx.error("dm: interrupted")
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
