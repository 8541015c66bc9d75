"""A small synchronous client of the gateway's REST API.

Synchronous on purpose: the command line does one thing at a time, and a blocking client
keeps the commands plain functions. Every error status becomes a ``GatewayError`` carrying
the server's ``detail``; transport failures stay ``httpx.TransportError`` for the caller.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from services.cli.errors import GatewayError
from services.cli.sse import SseMessage, parse_sse

__all__ = ["API_PREFIX", "CHUNK_SIZE", "GatewayClient", "Job", "error_detail"]

API_PREFIX = "/api/data-management/"
CHUNK_SIZE = 1024 * 1024  # uploads and downloads move 1 MiB at a time, never the whole file

Job = dict[str, Any]

_TIMEOUT = httpx.Timeout(30.0)
# the event stream may stay quiet while a job waits in the queue; a longer read timeout
# avoids falling back to polling for nothing, and a dead connection is still noticed
_STREAM_TIMEOUT = httpx.Timeout(30.0, read=120.0)


def error_detail(response: httpx.Response) -> str:
    """The ``detail`` of the gateway's JSON error body, or a short text fallback."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return text[:200] or response.reason_phrase or "no detail"
    if not isinstance(body, dict):
        return str(body)[:200]
    detail = str(body.get("detail") or response.reason_phrase or "no detail")
    extra = body.get("extra")
    if extra:
        detail += f" ({json.dumps(extra, ensure_ascii=False)[:300]})"
    return detail


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        if not response.is_closed:
            response.read()  # streamed responses need their body before .json()
        raise GatewayError(response.status_code, error_detail(response))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


class GatewayClient:
    def __init__(
        self,
        gateway_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.gateway_url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "dm-cli"},
            timeout=_TIMEOUT,
            transport=transport,
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._http.request(method, url, **kwargs)
        _raise_for_status(response)
        return None if response.status_code == 204 or not response.content else response.json()

    def upload(self, path: Path) -> dict[str, Any]:
        """Stream ``path`` as the request body; answers ``{"file_path", "size"}``."""
        size = os.path.getsize(path)
        # an explicit Content-Length makes httpx send a plain body instead of chunked encoding,
        # so the gateway can refuse an oversized file before reading it
        result: dict[str, Any] = self._call(
            "PUT",
            f"uploads/{quote(path.name, safe='')}",
            content=_file_chunks(path),
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        return result

    def create_job(self, body: dict[str, Any]) -> Job:
        job: Job = self._call("POST", "jobs/", json=body)
        return job

    def get_job(self, job_id: str) -> Job:
        job: Job = self._call("GET", f"jobs/{quote(job_id)}/")
        return job

    def list_jobs(self, limit: int, *, id_prefix: str = "") -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if id_prefix:
            params["id_prefix"] = id_prefix
        page: dict[str, Any] = self._call("GET", "jobs/", params=params)
        return page

    def execute(self, job_id: str) -> Job:
        job: Job = self._call("POST", f"jobs/{quote(job_id)}/execute/")
        return job

    def cancel(self, job_id: str) -> Job:
        job: Job = self._call("POST", f"jobs/{quote(job_id)}/cancel/")
        return job

    def rejections(self, job_id: str, *, limit: int, offset: int = 0) -> dict[str, Any]:
        page: dict[str, Any] = self._call(
            "GET",
            f"jobs/{quote(job_id)}/rejections/",
            params={"limit": limit, "offset": offset},
        )
        return page

    @contextmanager
    def events(self, job_id: str) -> Iterator[Iterator[SseMessage]]:
        """The job's server-sent events; the connection closes when the block ends."""
        with self._http.stream(
            "GET",
            f"jobs/{quote(job_id)}/events",
            headers={"Accept": "text/event-stream"},
            timeout=_STREAM_TIMEOUT,
        ) as response:
            _raise_for_status(response)
            yield parse_sse(response.iter_lines())

    def download(self, job_id: str, dest: Path) -> int:
        """Stream the job's result into ``dest``; returns the bytes written."""
        return self._stream_to(f"jobs/{quote(job_id)}/download/", dest)

    def download_rejections(self, job_id: str, dest: Path) -> int:
        """Stream the job's CSV error report (row, column, value, message, original) into
        ``dest``; returns the bytes written."""
        return self._stream_to(f"jobs/{quote(job_id)}/rejections/download/", dest)

    def _stream_to(self, url: str, dest: Path) -> int:
        """Written to a neighbour ``.part`` file first and renamed at the end, so a broken
        download never leaves a truncated file under the name the user asked for."""
        partial = dest.with_name(dest.name + ".part")
        written = 0
        try:
            with self._http.stream("GET", url) as response:
                _raise_for_status(response)
                with partial.open("wb") as f:
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        f.write(chunk)
                        written += len(chunk)
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return written
