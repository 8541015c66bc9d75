"""``GET .../jobs/{id}/rejections/download/``: every rejected row as a CSV error report.

Columns: the row number in the user's file, the column, the value, the reason, and the
original record as read. Streamed from a server-side cursor, so a large report never sits in
memory. Cells that a spreadsheet would run as formulas are neutralised.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get
from litestar.di import Provide
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.auth import Principal
from services.gateway.auth import require_principal
from services.gateway.jobs import load_visible_job

__all__ = ["download_rejections"]

HEADER = ["row", "column", "value", "message", "original"]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


async def _lines(engine: AsyncEngine, job_id: str, run_id: str) -> AsyncIterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    yield "\ufeff".encode() + _drain(out)
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        async with raw.transaction(readonly=True):
            cursor = raw.cursor(
                'SELECT "row", "column", value, message, original FROM dm.job_rejections '
                'WHERE job_id = $1 AND run_id = $2 ORDER BY "row", id',
                job_id,
                run_id,
                prefetch=1000,
            )
            batch = 0
            async for record in cursor:
                writer.writerow([record["row"], *(_safe(record[k]) for k in HEADER[1:])])
                batch += 1
                if batch == 1000:
                    yield _drain(out)
                    batch = 0
    yield _drain(out)


def _drain(out: io.StringIO) -> bytes:
    data = out.getvalue()
    out.seek(0)
    out.truncate()
    return data.encode()


@get(
    "/api/data-management/jobs/{job_id:str}/rejections/download/",
    tags=["jobs"],
    dependencies={"principal": Provide(require_principal)},
)
async def download_rejections(
    request: Request[Any, Any, Any], principal: Principal, job_id: str
) -> Stream:
    """The job's last run's rejected rows as CSV (UTF-8 with BOM, for Excel)."""
    job = await load_visible_job(request.app.state.engine, job_id, principal)
    return Stream(
        _lines(request.app.state.engine, job_id, job["run_id"] or ""),
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types
        headers={"Content-Disposition": f'attachment; filename="rejections-{job_id}.csv"'},
    )
