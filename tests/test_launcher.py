"""``make run``'s launcher: one per data dir, restarts dead workers, stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from services.core.settings import Settings
from tests.support.processes import free_port, service_env, wait_for_http

pytestmark = pytest.mark.e2e


def _workers(launcher: subprocess.Popen[bytes], module: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if module in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _wait(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_launcher_restarts_a_killed_worker_refuses_a_twin_and_stops_cleanly(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(settings, DM_GATEWAY_PORT=str(port), DM_DATA_DIR=str(tmp_path / "data"))
    launcher_bin = str(Path(sys.executable).with_name("dm-run"))
    out = tmp_path / "run.log"
    with open(out, "wb") as log:
        launcher = subprocess.Popen([launcher_bin], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", launcher, out)
        _wait(lambda: len(_workers(launcher, "services.importer")) == 1)
        text = out.read_text()
        assert f"http://127.0.0.1:{port}" in text
        assert "dm tokens create admin" in text

        twin = subprocess.run([launcher_bin], env=env, capture_output=True, text=True, timeout=60)
        assert twin.returncode == 1
        assert "already running" in twin.stderr
        assert launcher.poll() is None  # the first one is untouched

        first = _workers(launcher, "services.importer")[0]
        first.send_signal(signal.SIGKILL)
        _wait(lambda: any(p.pid != first.pid for p in _workers(launcher, "services.importer")))
        assert "restarting it" in out.read_text()
        assert launcher.poll() is None
    finally:
        children = psutil.Process(launcher.pid).children(recursive=True)
        launcher.send_signal(signal.SIGINT)
        code = launcher.wait(60)
    assert code == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
