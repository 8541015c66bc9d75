"""Running a created job to its end and turning the outcome into output and an exit code."""

from __future__ import annotations

from services.cli.client import GatewayClient, Job
from services.cli.context import Context
from services.cli.errors import EXIT_FAILED, EXIT_OK
from services.cli.follow import follow_job
from services.cli.progress import progress_view
from services.cli.render import print_summary

__all__ = [
    "EXIT_INTERRUPTED",
    "FollowInterruptedError",
    "execute_and_follow",
    "exit_code_for",
    "report",
]

EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C


class FollowInterruptedError(Exception):
    """Ctrl-C while following: the job itself keeps running on the server."""


def exit_code_for(job: Job) -> int:
    """0 only for ``completed``: rejected rows are data problems reported in the summary,
    not a failure of the run. Failed, cancelled (or, defensively, unfinished) jobs give 1,
    and so does a completed import in which every row was rejected: a script must notice
    that nothing was loaded."""
    if job.get("status") != "completed":
        return EXIT_FAILED
    stats = job.get("statistics") or {}
    read = int(stats.get("rows_read") or 0)
    if read and int(stats.get("rows_rejected") or 0) == read:
        return EXIT_FAILED
    return EXIT_OK


def execute_and_follow(ctx: Context, client: GatewayClient, job: Job) -> Job:
    """Execute ``job`` and follow it to its end.

    On Ctrl-C, says how to find or cancel the job (which keeps running on the server) and
    raises ``FollowInterruptedError``.
    """
    job_id = str(job["id"])
    job = client.execute(job_id)
    ctx.out.print(f"job {job_id} {job.get('status', 'queued')}", highlight=False)
    try:
        with progress_view(ctx.out, export=job.get("job_type") == "export") as view:
            return follow_job(client, job, view)
    except KeyboardInterrupt:
        ctx.error(
            f"stopped following; job {job_id} keeps running on the server "
            f"(see: dm status {job_id}, cancel: dm jobs cancel {job_id})"
        )
        raise FollowInterruptedError from None


def report(ctx: Context, job: Job) -> int:
    print_summary(ctx.out, job)
    code = exit_code_for(job)
    if code != EXIT_OK:
        message = job.get("error_message") or f"job {job.get('status', 'did not complete')}"
        if job.get("status") == "completed":
            message = "every row was rejected; nothing was loaded"
        ctx.error(f"dm: {message}")
    elif job.get("job_type") == "import" and not int(
        (job.get("statistics") or {}).get("rows_read") or 0
    ):
        ctx.error("dm: warning: the file has no data rows (only a header?)")
    return code
