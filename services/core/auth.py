"""Users and bearer tokens. Only a token's SHA-256 is stored; the token is shown once.

Tokens are 32 random bytes, so a fast hash is safe here (password hashing is for
low-entropy secrets); lookups stay one indexed query per request.
"""

from __future__ import annotations

import hashlib
import secrets

import msgspec
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.core.tables import tokens, users

__all__ = [
    "AuthError",
    "Principal",
    "authenticate",
    "create_token",
    "create_user",
    "hash_token",
]

TOKEN_PREFIX = "dm_"


class AuthError(Exception):
    """A user or token cannot be created or found."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the user behind a valid token."""

    user_id: int
    username: str
    is_superuser: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(conn: AsyncConnection, username: str, *, superuser: bool = False) -> int:
    """Raises ``AuthError`` if the name is taken or empty."""
    name = username.strip()
    if not name:
        raise AuthError("a user needs a name")
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
