"""Bearer-token authentication as a dependency of every API route."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.auth import Principal, authenticate, token_is_valid

__all__ = ["require_principal", "still_allowed"]


def _token(request: Request[Any, Any, Any]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def still_allowed(request: Request[Any, Any, Any]) -> bool:
    """The request's token is still valid: a long request asks again as it goes, so a
    revoked token or a deactivated user is shut out of streams already open."""
    token = _token(request)
    if not token:
        return False
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as conn:
        return await token_is_valid(conn, token)


async def require_principal(request: Request[Any, Any, Any]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            detail="missing bearer token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as conn:
        principal = await authenticate(conn, token.strip())
    if principal is None:
        raise NotAuthorizedException(
            detail="invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal
