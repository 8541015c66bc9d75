"""Admin commands that talk to PostgreSQL directly: ``dm users create``, ``dm tokens create``,
``dm migrate``.

They bootstrap access (no token exists before the first one is made), so they skip the
gateway and need only the database: ``DM_DATABASE_URL``, else the URL the ``make run``
launcher left in ``<data dir>/run.json``, else the embedded PostgreSQL under the data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.cli.context import Context
from services.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from services.core.auth import (
    AuthError,
    create_token,
    create_user,
    list_tokens,
    revoke_token,
    set_user_active,
)
from services.core.db import make_engine
from services.core.migrate import migrate
from services.core.settings import Settings

__all__ = ["register", "resolve_database_url"]

T = TypeVar("T")

RUN_FILE = "run.json"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", parents=parents, help="manage users (database access)")
    users_sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    p = users_sub.add_parser("create", parents=parents, help="create a user")
    p.add_argument("name")
    p.add_argument("--superuser", action="store_true", help="sees and acts on every job")
    p.set_defaults(func=run_create_user)
    for verb, active in (("deactivate", False), ("activate", True)):
        what = "refuse" if not active else "accept again"
        p = users_sub.add_parser(verb, parents=parents, help=f"{what} a user's tokens")
        p.add_argument("name")
        p.set_defaults(func=run_set_active, active=active)

    tokens = sub.add_parser("tokens", parents=parents, help="manage tokens (database access)")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", metavar="COMMAND", required=True)
    p = tokens_sub.add_parser("create", parents=parents, help="create a token for a user")
    p.add_argument("name", help="the user's name")
    p.set_defaults(func=run_create_token)
    p = tokens_sub.add_parser("list", parents=parents, help="list tokens (never their secret)")
    p.add_argument("name", nargs="?", help="only this user's tokens")
    p.set_defaults(func=run_list_tokens)
    p = tokens_sub.add_parser("revoke", parents=parents, help="revoke a token at once")
    p.add_argument("id", type=int, help="the token's id, from dm tokens list")
    p.set_defaults(func=run_revoke_token)

    p = sub.add_parser("migrate", parents=parents, help="apply database migrations")
    p.set_defaults(func=run_migrate)


def _from_run_file(settings: Settings) -> str | None:
    try:
        data = json.loads((settings.data_path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None  # absent or half-written: fall through to the next source
    url = data.get("database_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def resolve_database_url(settings: Settings) -> tuple[str, str]:
    """(url, where it came from), so a connection error can name the source to fix."""
    if settings.database_url:
        return settings.database_url, "DM_DATABASE_URL"
    url = _from_run_file(settings)
    if url:
        return url, f"{settings.data_path / RUN_FILE}; is `make run` still running?"
    # imported here: it pulls in the embedded server's wheel, which the other commands never need
    from services.core.embedded import start_postgres

    try:
        # the server is left running on purpose: it is shared with the services
        return start_postgres(settings.data_path).url, "embedded PostgreSQL"
    except RuntimeError as e:  # EmbeddedServerError
        raise CliError(f"cannot start the embedded PostgreSQL: {e}") from e


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable database URL)"


async def _with_database(url: str, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Migrate first (a fresh database has no tables), run ``action``, always dispose."""
    engine = make_engine(url, pool_size=1)
    try:
        await migrate(engine)
        return await action(engine)
    finally:
        await engine.dispose()


def _run(ctx: Context, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    url, source = resolve_database_url(ctx.settings)
    try:
        return asyncio.run(_with_database(url, action))
    except (OSError, SQLAlchemyError) as e:
        # the driver's first line says what went wrong; the rest is SQLAlchemy boilerplate
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"database {_safe_url(url)} (from {source}): {reason}") from e


def run_migrate(args: argparse.Namespace, ctx: Context) -> int:
    async def nothing(engine: AsyncEngine) -> None:
        return None

    _run(ctx, nothing)
    print("database is up to date")
    return EXIT_OK


def _transaction(ctx: Context, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` in one transaction on the admin database."""

    async def run(engine: AsyncEngine) -> T:
        async with engine.begin() as conn:
            return await work(conn)

    return _run(ctx, run)


def _refused(ctx: Context, error: AuthError) -> int:
    ctx.error(f"dm: {error}")
    return EXIT_FAILED


def run_create_user(args: argparse.Namespace, ctx: Context) -> int:
    try:
        user_id = _transaction(
            ctx, lambda conn: create_user(conn, args.name, superuser=args.superuser)
        )
    except AuthError as e:
        return _refused(ctx, e)
    kind = "superuser" if args.superuser else "user"
    print(f"created {kind} {args.name.strip()!r} (id {user_id})")
    print(f"give it a token with: dm tokens create {args.name.strip()}")
    return EXIT_OK


def run_create_token(args: argparse.Namespace, ctx: Context) -> int:
    try:
        token = _transaction(ctx, lambda conn: create_token(conn, args.name))
    except AuthError as e:
        return _refused(ctx, e)
    print(f"token for {args.name!r}; it is shown only once, store it now (e.g. DM_TOKEN):")
    # the token is the last line, on its own, so scripts can take it with `tail -n1`
    print(token, flush=True)
    return EXIT_OK


def _shown_time(value: object) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else "-"


def run_list_tokens(args: argparse.Namespace, ctx: Context) -> int:
    found = _transaction(ctx, lambda conn: list_tokens(conn, args.name))
    if not found:
        print("no tokens" + (f" for {args.name!r}" if args.name else ""))
        return EXIT_OK
    print(f"{'id':>6}  {'user':<20} {'starts with':<12} {'created':<25} last used")
    for t in found:
        print(
            f"{t.id:>6}  {t.username:<20} {t.prefix + '…':<12} {_shown_time(t.created_at):<25} "
            f"{_shown_time(t.last_used_at)}"
        )
    return EXIT_OK


def run_revoke_token(args: argparse.Namespace, ctx: Context) -> int:
    try:
        token = _transaction(ctx, lambda conn: revoke_token(conn, args.id))
    except AuthError as e:
        return _refused(ctx, e)
    print(f"revoked token {token.id} of {token.username!r} ({token.prefix}…)")
    return EXIT_OK


def run_set_active(args: argparse.Namespace, ctx: Context) -> int:
    try:
        _transaction(ctx, lambda conn: set_user_active(conn, args.name, active=args.active))
    except AuthError as e:
        return _refused(ctx, e)
    done = "activated" if args.active else "deactivated: its tokens are refused"
    print(f"user {args.name!r} {done}")
    return EXIT_OK
