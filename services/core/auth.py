"""Users and bearer tokens. Only a token's SHA-256 is stored; the token is shown once.

Tokens are 32 random bytes, so a fast hash is safe here (password hashing is for
low-entropy secrets); lookups stay one indexed query per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import datetime

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.core.tables import tokens, users

__all__ = [
    "AuthError",
    "Principal",
    "TokenInfo",
    "authenticate",
    "create_token",
    "create_user",
    "hash_token",
    "list_tokens",
    "revoke_token",
    "set_user_active",
    "token_is_valid",
]

TOKEN_PREFIX = "dm_"
# as Django's user names: letters (any script), digits and @ . + - _, so a name is safe to
# show, to paste into a shell and to log
USERNAME = re.compile(r"[\w.@+-]{1,150}")


class AuthError(Exception):
    """A user or token cannot be created or found."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the user behind a valid token."""

    user_id: int
    username: str
    is_superuser: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _looks(name: str) -> str:
    """What a name looks like to a person: full-width and other compatibility forms folded
    (NFKC), case ignored, so "ａｄｍｉｎ" and "Admin" are not a second "admin"."""
    return unicodedata.normalize("NFKC", name).casefold()


async def create_user(conn: AsyncConnection, username: str, *, superuser: bool = False) -> int:
    """Raises ``AuthError`` if the name is taken or empty."""
    name = username.strip()
    if not name:
        raise AuthError("a user needs a name")
    if not USERNAME.fullmatch(name):
        raise AuthError(
            f"user name {name[:40]!r} is not allowed: use at most 150 letters, digits and @ . + - _"
        )
    existing = (await conn.execute(select(users.c.username))).scalars().all()
    twin = next((u for u in existing if _looks(u) == _looks(name) and u != name), None)
    if twin is not None:
        raise AuthError(f"user name {name!r} looks the same as the existing user {twin!r}")
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(users).values(username=name, is_superuser=superuser).returning(users.c.id)
            )
    except IntegrityError as e:
        raise AuthError(f"user {name!r} already exists") from e
    return int(result.scalar_one())


async def create_token(conn: AsyncConnection, username: str) -> str:
    """A new token for an existing user; raises ``AuthError`` for an unknown user."""
    user_id = (
        await conn.execute(select(users.c.id).where(users.c.username == username))
    ).scalar_one_or_none()
    if user_id is None:
        raise AuthError(f"no user named {username!r} (create it with: dm users create NAME)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        insert(tokens).values(user_id=user_id, token_hash=hash_token(token), prefix=token[:8])
    )
    return token


async def authenticate(conn: AsyncConnection, token: str) -> Principal | None:
    """The active user owning ``token``, or ``None``."""
    row = (
        await conn.execute(
            select(tokens.c.id, users.c.id, users.c.username, users.c.is_superuser)
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.token_hash == hash_token(token), users.c.is_active.is_(True))
        )
    ).first()
    if row is None:
        return None
    await conn.execute(update(tokens).where(tokens.c.id == row[0]).values(last_used_at=func.now()))
    return Principal(user_id=row[1], username=row[2], is_superuser=row[3])


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never the token itself, only its first characters."""

    id: int
    username: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


async def list_tokens(conn: AsyncConnection, username: str | None = None) -> list[TokenInfo]:
    """Tokens, oldest first, of one user or of everyone."""
    query = (
        select(
            tokens.c.id, users.c.username, tokens.c.prefix, tokens.c.created_at,
            tokens.c.last_used_at,
        )
        .join(users, users.c.id == tokens.c.user_id)
        .order_by(tokens.c.id)
    )  # fmt: skip
    if username is not None:
        query = query.where(users.c.username == username)
    return [
        TokenInfo(id=r[0], username=r[1], prefix=r[2], created_at=r[3], last_used_at=r[4])
        for r in await conn.execute(query)
    ]


async def revoke_token(conn: AsyncConnection, token_id: int) -> TokenInfo:
    """Delete the token (it stops working at once); raises ``AuthError`` if there is none."""
    found = [t for t in await list_tokens(conn) if t.id == token_id]
    if not found:
        raise AuthError(f"no token with id {token_id} (see: dm tokens list)")
    await conn.execute(delete(tokens).where(tokens.c.id == token_id))
    return found[0]


async def set_user_active(conn: AsyncConnection, username: str, *, active: bool) -> None:
    """An inactive user's tokens are refused until the user is activated again."""
    result = await conn.execute(
        update(users).where(users.c.username == username).values(is_active=active)
    )
    if not result.rowcount:
        raise AuthError(f"no user named {username!r}")


async def token_is_valid(conn: AsyncConnection, token: str) -> bool:
    """Whether ``token`` still lets its user in (not revoked, user active), for requests
    that outlive their first check (event streams, long downloads); nothing is updated."""
    found = await conn.execute(
        select(tokens.c.id)
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == hash_token(token), users.c.is_active.is_(True))
    )
    return found.first() is not None
