"""``PUT /api/data-management/uploads/{filename}``: stream a file into the object store.

The body is spooled to a temporary file while its size is checked, never held whole in
memory, then put into the NATS object store so any importer replica can read it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from litestar import Request, put
from litestar.di import Provide
from litestar.exceptions import ClientException
from nats.js.api import ObjectMeta

from services.core.auth import Principal
from services.core.settings import Settings
from services.core.storage import (
    OWNER_HEADER,
    UPLOAD_SCHEME,
    FileNotAllowedError,
    new_upload_name,
)
from services.gateway.auth import require_principal
from services.gateway.errors import PayloadTooLarge
from services.gateway.schemas import UploadResult

__all__ = ["upload_file"]


def _check_name(settings: Settings, filename: str) -> str:
    try:
        name = new_upload_name(filename)
    except FileNotAllowedError as e:
        raise ClientException(detail=str(e)) from e
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in settings.allowed_formats:
        raise ClientException(
            detail=f"files of type {ext or '(none)'!r} are not allowed "
            f"(allowed: {', '.join(settings.allowed_formats)})"
        )
    return name


@put(
    "/api/data-management/uploads/{filename:str}",
    status_code=201,
    dependencies={"principal": Provide(require_principal)},
    tags=["uploads"],
    request_max_body_size=None,
)
async def upload_file(
    request: Request[Any, Any, Any], principal: Principal, filename: str
) -> UploadResult:
    """Upload a file for a job; use the returned ``file_path`` when creating the job."""
    settings: Settings = request.app.state.settings
    name = _check_name(settings, filename)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_file_size:
        raise PayloadTooLarge(detail=f"file is larger than {settings.max_file_size} bytes")
    fd, tmp = tempfile.mkstemp(prefix="dm-gateway-upload-")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_file_size:
                    raise PayloadTooLarge(
                        detail=f"file is larger than {settings.max_file_size} bytes"
                    )
                out.write(chunk)
        store = await request.app.state.js.object_store(request.app.state.subjects.object_store)
        with open(tmp, "rb") as source:
            # the owner goes with the object: only they (or a superuser) may import it
            meta = ObjectMeta(name=name, headers={OWNER_HEADER: principal.username})
            await store.put(name, source, meta=meta)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return UploadResult(file_path=UPLOAD_SCHEME + name, size=size)
