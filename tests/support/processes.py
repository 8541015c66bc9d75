"""Run the services as separate processes, the way operators run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import nats
from nats.aio.client import Client

from services.core.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    # every setting the test chose travels to the service as its DM_* variable
    defaults = Settings()
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value != getattr(defaults, name):
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            env[f"DM_{name.upper()}"] = text
    env.update(
        {
            "DM_IMPORTS_ROOT": str(settings.imports_path),
            "DM_DATA_DIR": str(settings.data_path),
            "DM_LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


@contextmanager
def running(module: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_log(
    log: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not seen in {log}:\n{log.read_text(errors='replace')}")


@asynccontextmanager
async def importer_with_tables(settings: Settings, tables: str, log: Path) -> AsyncIterator[Client]:
    """An importer process that enables the university's own ``tables`` (DM_MODEL_TABLES),
    ready for work, and a NATS connection to drive it with."""
    nc = await nats.connect(settings.nats_url)
    try:
        env = service_env(settings, DM_MODEL_TABLES=tables)
        with running("services.importer", env, log) as proc:
            wait_for_log(log, "importer ready", proc)
            yield nc
    finally:
        await nc.close()


def wait_for_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{log.read_text(errors='replace')}")
