"""Drive jobs over the bus the way another university system would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

import asyncpg
import msgspec
from nats.aio.client import Client

from contracts.base import Reply
from contracts.jobs import CreateJob, JobOptions, RequestRun
from contracts.subjects import Subjects

TERMINAL = ("completed", "failed", "cancelled")


async def run_job(
    nc: Client,
    db: asyncpg.Connection,
    subjects: Subjects,
    *,
    file_path: str,
    fmt: str,
    service: str = "importer",
    model: str = "users.User",
    options: JobOptions | None = None,
    wait_seconds: float = 60.0,
) -> dict[str, Any]:
    """Create and run a job by request/reply; returns its projection row when it ends."""
    job_id = str(uuid.uuid4())
    job_type: Literal["import", "export"] = "import" if service == "importer" else "export"
    create = CreateJob(
        correlation_id=job_id,
        actor="registrar",
        job_id=job_id,
        title=fmt,
        job_type=job_type,
        model_name=model,
        format=fmt,  # type: ignore[arg-type]
        file_path=file_path,
        options=options or JobOptions(),
    )
    for verb, cmd in (
        ("create", create),
        ("request_run", RequestRun(correlation_id=job_id, actor="registrar", job_id=job_id)),
    ):
        msg = await nc.request(
            subjects.request(service, verb), msgspec.json.encode(cmd), timeout=10
        )
        reply = msgspec.json.decode(msg.data, type=Reply)
        assert reply.ok, reply.error
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        row = await db.fetchrow("SELECT * FROM dm.jobs WHERE id = $1", job_id)
        if row is not None and row["status"] in TERMINAL:
            job = dict(row)
            for key in ("statistics", "errors", "options"):
                if isinstance(job[key], str):
                    job[key] = msgspec.json.decode(job[key])
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job {job_id} did not finish"
        await asyncio.sleep(0.1)
