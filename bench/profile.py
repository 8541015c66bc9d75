"""Where the importer spends its time: py-spy attached to the process, stacks summarised.

Optional: runs only with ``--profile`` and only when py-spy is installed; its runs are extra,
never the timed ones.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["CpuMeter", "Profile", "PySpy", "py_spy_binary", "summarise"]

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")
# leaves where a thread waits rather than works (py-spy names methods Class.method)
_WAITING = frozenset(
    {
        "EpollSelector.select (selectors.py)",
        "select (selectors.py)",
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
    }
)


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return str(beside)
    return shutil.which("py-spy")


class PySpy:
    """``py-spy record --format raw`` on a pid until ``stop()``."""

    def __init__(self, pid: int, out: Path) -> None:
        binary = py_spy_binary()
        if binary is None:
            raise RuntimeError("py-spy is not installed")
        self.out = out
        self.log = out.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [binary, "record", "--pid", str(pid), "--format", "raw", "--idle",
                 "--nonblocking", "--rate", "100", "-o", str(out)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Profile:
    """Samples of the main thread: waiting in the event loop, or busy in some function."""

    samples: int = 0  # main thread
    idle: int = 0  # main thread waiting in the event loop's select (on PostgreSQL/NATS)
    other_threads: int = 0  # helper threads (anyio workers, mostly parked)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    @property
    def busy(self) -> int:
        return self.samples - self.idle

    def lines(self, top: int = 20) -> list[str]:
        busy = max(self.busy, 1)
        out = [
            f"main thread: {self.samples} samples at 100/s; {self.idle} "
            f"({100.0 * self.idle / max(self.samples, 1):.0f}%) waiting in the event loop "
            f"(on PostgreSQL/NATS), {self.busy} "
            f"({100.0 * self.busy / max(self.samples, 1):.0f}%) running Python; "
            f"{self.other_threads} samples of other threads left out",
            "",
            f"top {top} by own time (% of busy main-thread samples):",
        ]
        out += [
            f"  {100.0 * n / busy:5.1f}%  {name}" for name, n in self.self_time.most_common(top)
        ]
        out += ["", f"top {top} by inclusive time (% of busy main-thread samples):"]
        out += [
            f"  {100.0 * n / busy:5.1f}%  {name}" for name, n in self.inclusive.most_common(top)
        ]
        return out


def _function(frame: str) -> str:
    return _FRAME_LINE.sub(")", frame.strip())


def summarise(raw: Path) -> Profile:
    """Own and inclusive time per function from py-spy's raw (collapsed) output."""
    profile = Profile()
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        frames = [_function(f) for f in match["stack"].split(";") if f.strip()]
        if not frames:
            continue
        if frames[0].startswith("Thread._bootstrap"):
            profile.other_threads += count
            continue
        profile.samples += count
        if frames[-1] in _WAITING:
            profile.idle += count
            continue
        profile.self_time[frames[-1]] += count
        # inclusive time only for our code and the driver: the framework frames are on
        # every stack and say nothing
        for name in set(frames):
            if "(services/" in name or "(asyncpg/" in name:
                profile.inclusive[name] += count
    return profile


class CpuMeter:
    """CPU seconds used by a set of processes between ``start()`` and ``stop()``."""

    def __init__(self, name: str | None = None, pid: int | None = None) -> None:
        self.name = name
        self.pid = pid
        self._start: dict[int, float] = {}
        self.seconds = 0.0

    def _snapshot(self) -> dict[int, float]:
        found: dict[int, float] = {}
        if self.pid is not None:
            procs = [psutil.Process(self.pid)]
        else:
            procs = [p for p in psutil.process_iter(["name"]) if p.info["name"] == self.name]
        for proc in procs:
            try:
                t = proc.cpu_times()
                found[proc.pid] = float(t.user + t.system)
            except psutil.Error:
                continue
        return found

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> float:
        end = self._snapshot()
        # processes that exited in between are lost; new ones count from zero
        self.seconds = sum(v - self._start.get(pid, 0.0) for pid, v in end.items())
        return self.seconds
