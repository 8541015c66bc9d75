"""The deadline that ends a stopping process stuck in its shutdown, with its stacks."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import threading, time
        from services.core.exit_deadline import exit_after
        {body}
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_process_still_stuck_at_the_deadline_is_ended_with_its_stacks() -> None:
    # a non-daemon thread that never ends would otherwise keep the process alive for ever
    done = _run(
        """
        def stuck_in_cleanup():
            threading.Event().wait()
        threading.Thread(target=stuck_in_cleanup).start()
        exit_after(0.5, what="the test's shutdown")
        """
    )
    assert done.returncode == 1
    assert "the test's shutdown still running 0.5 s later" in done.stderr
    assert "stuck_in_cleanup" in done.stderr  # where it was stuck


def test_a_process_that_ends_in_time_ends_as_it_would() -> None:
    done = _run(
        """
        exit_after(30, what="x")
        print("bye")
        """
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "bye", "")
