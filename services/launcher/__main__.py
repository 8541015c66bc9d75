"""``dm-run``: embedded servers if needed, migrations, then the gateway and the workers.

Children get the resolved URLs through ``DM_NATS_URL`` / ``DM_DATABASE_URL`` so they never
start embedded servers of their own. A child that dies is restarted (its unfinished job is
redelivered and resumed); one that keeps dying stops everything. SIGINT/SIGTERM/SIGHUP stop
everything this process started; data stays in the data dir for the next run. A lock on the
data dir keeps a second ``dm-run`` from sharing (and later stopping) the same servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.core.db import make_engine
from services.core.embedded import EmbeddedServerError, resolve_urls
from services.core.migrate import migrate
from services.core.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

_STOP_TIMEOUT = 10.0
_POLL = 0.2
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_RESTART_LIMIT = 5  # deaths within _RESTART_WINDOW seconds before giving up
_RESTART_WINDOW = 60.0


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    module: str = ""
    env: dict[str, str] | None = None
    deaths: list[float] | None = None


class _AlreadyRunning(Exception):
    pass


def _lock_data_dir(data_dir: Path) -> int:
    """An exclusive lock held for our lifetime; raises ``_AlreadyRunning``."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        os.close(fd)
        owner = ""
        with contextlib.suppress(OSError, ValueError, KeyError):
            owner = f" (pid {json.loads((data_dir / 'run.json').read_text())['pid']})"
        raise _AlreadyRunning(
            f"dm-run is already running with data dir {data_dir}{owner}; stop it first, or "
            "give this one its own DM_DATA_DIR"
        ) from e
    return fd


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dm-run", description="Run the gateway and importers (with embedded NATS/PostgreSQL)."
    )
    parser.add_argument(
        "--importers", type=int, default=1, metavar="N", help="importer processes (default 1)"
    )
    args = parser.parse_args(argv)
    if args.importers < 1:
        parser.error("--importers must be at least 1")
    return args


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # one path for Ctrl-C, SIGTERM and a closed terminal: unwind to the cleanup in main()
    raise KeyboardInterrupt


async def _migrate(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _gateway_url(settings: Settings) -> str:
    # a wildcard bind address is not something a browser can open
    host = settings.gateway_host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.gateway_port}"


def _spawn(name: str, module: str, env: dict[str, str]) -> _Child:
    # own session: Ctrl-C reaches only us, and we stop the children in order
    process = subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    return _Child(name, process, module, env, [])


def _stop_children(children: list[_Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"dm-run: {child.name} did not stop in {_STOP_TIMEOUT:.0f} s; killing it")
            child.process.kill()
            child.process.wait()


def _supervise(children: list[_Child]) -> int:
    """Restart children that die; returns 1 when one keeps dying. A signal interrupts this
    with KeyboardInterrupt."""
    while True:
        for i, child in enumerate(children):
            code = child.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            deaths = [t for t in (child.deaths or []) if now - t < _RESTART_WINDOW] + [now]
            if len(deaths) >= _RESTART_LIMIT:
                print(
                    f"dm-run: {child.name} exited {len(deaths)} times within "
                    f"{_RESTART_WINDOW:.0f} s (last code {code}); stopping everything",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            print(
                f"dm-run: {child.name} (pid {child.process.pid}) exited with code {code}; "
                "restarting it",
                file=sys.stderr,
                flush=True,
            )
            assert child.env is not None
            children[i] = _spawn(child.name, child.module, child.env)
            children[i].deaths = deaths
        time.sleep(_POLL)


def _banner(settings: Settings, nats_url: str, database_url: str, run_file: Path) -> str:
    gateway = _gateway_url(settings)
    return f"""
  gateway     {gateway}
  API docs    {gateway}/api/docs/
  NATS        {nats_url}
  PostgreSQL  {database_url}
  data dir    {settings.data_path}  (URLs in {run_file.name})

  Get a token (in another terminal, from this directory):
    .venv/bin/dm users create admin --superuser
    .venv/bin/dm tokens create admin
    export DM_TOKEN=...
    export DM_GATEWAY_URL={gateway}   # dm also finds it in {run_file.name}
  The `dm users` / `dm tokens` commands find the database through DM_DATABASE_URL, or else
  the same embedded server under DM_DATA_DIR ({settings.data_dir}).

  Ctrl-C stops everything; data is kept for the next run.
"""


def _run(args: argparse.Namespace, settings: Settings) -> int:
    stoppers: list[Callable[[], None]] = []
    children: list[_Child] = []
    run_file = settings.data_path / "run.json"
    code = 0
    try:
        lock = _lock_data_dir(settings.data_path)
    except _AlreadyRunning as e:
        print(f"dm-run: {e}", file=sys.stderr)
        return 1
    try:
        print("dm-run: starting NATS and PostgreSQL (embedded unless configured)...", flush=True)
        nats_url, database_url, stoppers = resolve_urls(settings)
        print("dm-run: applying migrations...", flush=True)
        asyncio.run(_migrate(database_url))
        run_file.parent.mkdir(parents=True, exist_ok=True)
        run_file.write_text(
            json.dumps(
                {
                    "nats_url": nats_url,
                    "database_url": database_url,
                    "gateway_url": _gateway_url(settings),
                    "pid": os.getpid(),
                },
                indent=2,
            )
        )
        env = dict(os.environ)
        env.update(
            DM_NATS_URL=nats_url,
            DM_DATABASE_URL=database_url,
            DM_DATA_DIR=str(settings.data_path),
        )
        children.append(_spawn("gateway", "services.gateway", env))
        for i in range(1, args.importers + 1):
            children.append(_spawn(f"importer-{i}", "services.importer", env))
        children.append(_spawn("exporter-1", "services.exporter", env))
        print(_banner(settings, nats_url, database_url, run_file), flush=True)
        code = _supervise(children)
    except KeyboardInterrupt:
        print("\ndm-run: stopping...", flush=True)
    except (EmbeddedServerError, OSError) as e:
        print(f"dm-run: {e}", file=sys.stderr)
        code = 1
    finally:
        # a second Ctrl-C must not cut the cleanup short and leave servers behind
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _stop_children(children)
        for stop in reversed(stoppers):
            stop()
        run_file.unlink(missing_ok=True)
        os.close(lock)
    return code


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"dm-run: {e}", file=sys.stderr)
        sys.exit(2)
    for sig in _SIGNALS:
        signal.signal(sig, _on_signal)
    sys.exit(_run(args, settings))


if __name__ == "__main__":
    main()
