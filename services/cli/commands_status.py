"""``dm status``, ``dm jobs cancel`` and ``dm rejections``: looking at and stopping jobs, and
downloading a job's CSV error report."""

from __future__ import annotations

import argparse
import contextlib
import re
import uuid
from pathlib import Path
from typing import Any

from rich.text import Text

from services.cli.client import GatewayClient
from services.cli.context import Context
from services.cli.errors import EXIT_OK, UsageError
from services.cli.options import check_output_path
from services.cli.render import print_job_detail, print_jobs, print_rejections

__all__ = ["register", "resolve_job_id"]

_FULL_ID_LENGTH = 32  # a UUID without dashes; shorter ids are prefixes from `dm status`
_ID_PREFIX = re.compile(r"[0-9a-fA-F-]{1,36}")


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="recent jobs, or one job in detail")
    p.add_argument("job_id", nargs="?", metavar="JOB_ID")
    p.add_argument("--limit", type=_positive, default=20, help="jobs to list (default 20)")
    p.set_defaults(func=run_status)

    jobs = sub.add_parser("jobs", parents=parents, help="act on jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND", required=True)
    cancel = jobs_sub.add_parser("cancel", parents=parents, help="ask a running job to stop")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(func=run_cancel)

    p = sub.add_parser("rejections", parents=parents, help="rejected rows of a job")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--limit", type=_positive, default=100, help="rows per page (default 100)")
    p.add_argument("--offset", type=_non_negative, default=0, help="rows to skip")
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write every rejected row to FILE as a CSV error report instead of a page",
    )
    p.set_defaults(func=run_rejections)


def _dashed(prefix: str) -> str:
    """A prefix typed without dashes, with them where a job id has them (8-4-4-4-12)."""
    if "-" in prefix:
        return prefix
    cuts = [cut for cut in (8, 12, 16, 20) if cut < len(prefix)]
    parts = [prefix[a:b] for a, b in zip([0, *cuts], [*cuts, len(prefix)], strict=True)]
    return "-".join(parts)


def resolve_job_id(client: GatewayClient, given: str) -> str:
    """Accept the short ids ``dm status`` shows: the one visible job whose id starts so."""
    given = given.strip()
    if len(given.replace("-", "")) >= _FULL_ID_LENGTH:
        # a whole id, perhaps in capitals or without dashes: job ids are written lower
        # case with dashes (one given otherwise by another system is taken as it is)
        with contextlib.suppress(ValueError):
            canonical = str(uuid.UUID(given))
            if canonical != given:
                found = client.list_jobs(2, id_prefix=canonical).get("results", [])
                if [str(j["id"]) for j in found] == [canonical]:
                    return canonical
        return given
    if not _ID_PREFIX.fullmatch(given):
        return given  # no id at all: the server answers (404)
    page = client.list_jobs(2, id_prefix=_dashed(given))
    matches = [str(j["id"]) for j in page.get("results", [])]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(f"job id {given!r} is ambiguous; give more characters")
    return given  # no such job: let the server say so


def run_status(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as client:
        if args.job_id:
            print_job_detail(ctx.out, client.get_job(resolve_job_id(client, args.job_id)))
            return EXIT_OK
        page = client.list_jobs(args.limit)
    results = page.get("results", [])
    if not results:
        ctx.out.print("no jobs yet")
        return EXIT_OK
    print_jobs(ctx.out, results)
    count = int(page.get("count") or len(results))
    if count > len(results):
        ctx.out.print(f"showing {len(results)} of {count:,}; more with --limit N")
    return EXIT_OK


def run_cancel(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as client:
        job = client.cancel(resolve_job_id(client, args.job_id))
    ctx.out.print(Text(f"cancel requested for job {job.get('id')} (status: {job.get('status')})"))
    return EXIT_OK


def run_rejections(args: argparse.Namespace, ctx: Context) -> int:
    if args.output is not None:
        return _download_rejections(args, ctx, check_output_path(args.output))
    with ctx.client() as client:
        job_id = resolve_job_id(client, args.job_id)
        page = client.rejections(job_id, limit=args.limit, offset=args.offset)
    rows = page.get("results", [])
    count = int(page.get("count") or 0)
    if not rows:
        ctx.out.print(f"no rejected rows{' at this offset' if count else ''} (total {count:,})")
        return EXIT_OK
    print_rejections(ctx.out, rows)
    end = args.offset + len(rows)
    ctx.out.print(f"rows {args.offset + 1:,}–{end:,} of {count:,}", highlight=False)
    if end < count:
        ctx.out.print(
            Text(f"next page: dm rejections {job_id} --offset {end} --limit {args.limit}")
        )
    return EXIT_OK


def _download_rejections(args: argparse.Namespace, ctx: Context, output: Path) -> int:
    with ctx.client() as client:
        job_id = resolve_job_id(client, args.job_id)
        written = client.download_rejections(job_id, output)
    ctx.out.print(Text(f"wrote the error report of job {job_id} ({written:,} bytes) to {output}"))
    return EXIT_OK
