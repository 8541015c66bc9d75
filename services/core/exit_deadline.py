"""A deadline for a stopping process: past it, the stacks of every thread are written to
stderr and the process ends, so that a shutdown stuck on one task can neither hold a
container's rolling deploy nor hide where it is stuck."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading

__all__ = ["exit_after"]


def exit_after(seconds: float, *, what: str, code: int = 1) -> threading.Thread:
    """End the process with ``code`` unless it has exited within ``seconds`` (a daemon
    thread, which never keeps the process alive itself)."""

    def watch() -> None:
        threading.Event().wait(seconds)
        sys.stderr.write(f"{what} still running {seconds:g} s later; ending it. Stacks:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(code)

    watcher = threading.Thread(target=watch, name="exit-deadline", daemon=True)
    watcher.start()
    return watcher
