"""``GET .../jobs/{id}/download/``: the file an export job wrote, streamed to the caller.

The object is copied from the NATS object store to a temporary file chunk by chunk and sent
from disk, so a large export never sits whole in the gateway's memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import PurePosixPath
from typing import Any

from litestar import Request, get
from litestar.background_tasks import BackgroundTask
from litestar.di import Provide
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.response import File
from nats.js.errors import NotFoundError
from sqlalchemy import select

from services.core.auth import Principal
from services.core.storage import UPLOAD_SCHEME
from services.core.tables import jobs
from services.gateway.auth import require_principal, still_allowed
from services.gateway.jobs import load_visible_job

__all__ = ["download_result"]

_MEDIA = {
    "csv": "text/csv",  # Litestar adds "; charset=utf-8" to text types
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@get(
    "/api/data-management/jobs/{job_id:str}/download/",
    tags=["jobs"],
    dependencies={"principal": Provide(require_principal)},
)
async def download_result(
    request: Request[Any, Any, Any], principal: Principal, job_id: str
) -> File:
    """The export's file; 404 until the job has completed."""
    job = await load_visible_job(request.app.state.engine, job_id, principal)
    if job["job_type"] != "export":
        raise ClientException(detail="only export jobs have a file to download")
    path = job.get("download_url") and await _result_path(request, job_id)
    if not path or job["status"] != "completed":
        raise NotFoundException(detail=f"job {job_id} has no file yet (status {job['status']})")
    name = path[len(UPLOAD_SCHEME) :]
    fd, tmp = tempfile.mkstemp(prefix="dm-download-")
    try:
        store = await request.app.state.js.object_store(request.app.state.subjects.object_store)
        with os.fdopen(fd, "wb") as out:
            await store.get(name, writeinto=out)
    except NotFoundError as e:
        _remove(tmp)
        raise NotFoundException(detail=f"the file of job {job_id} is no longer stored") from e
    if not await still_allowed(request):  # revoked while the file was being fetched
        _remove(tmp)
        raise NotAuthorizedException(detail="invalid or revoked token")
    return File(
        path=tmp,
        filename=PurePosixPath(name).name,
        media_type=_MEDIA.get(job["format"], "application/octet-stream"),
        background=BackgroundTask(_remove, tmp),
    )


async def _result_path(request: Request[Any, Any, Any], job_id: str) -> str:
    async with request.app.state.engine.connect() as conn:
        value = (
            await conn.execute(select(jobs.c.result_path).where(jobs.c.id == job_id))
        ).scalar_one_or_none()
    return str(value or "")
