"""Bearer-token authentication as a dependency of every API route."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.auth import Principal, authenticate

__all__ = ["require_principal"]


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
