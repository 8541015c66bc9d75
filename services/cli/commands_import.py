"""``dm import``: upload a file, create and execute an import job, follow it, summarise."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.cli.context import Context
from services.cli.errors import EXIT_OK, UsageError
from services.cli.jobrun import execute_and_follow, report
from services.cli.options import FORMATS, infer_format, parse_delimiter, parse_mapping

__all__ = ["build_job_body", "register", "run"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import", parents=parents, help="import a file into a model", description=__doc__
    )
    p.add_argument("--file", required=True, type=Path, help="the file to import")
    p.add_argument("--model", required=True, help="target model, e.g. users.User")
    p.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    p.add_argument("--title", help="default: 'import <file name>'")
    p.add_argument("--mode", choices=("insert", "upsert", "skip"), default="insert")
    p.add_argument("--encoding", help="default: detected by the importer")
    p.add_argument("--delimiter", help="CSV delimiter, one character or tab; default: detected")
    p.add_argument(
        "--mapping",
        nargs="+",
        action="extend",
        default=[],
        metavar="HEADER=FIELD",
        help="map a file header to a model field (repeatable)",
    )
    p.add_argument("--no-wait", action="store_true", help="start the job and return at once")
    p.set_defaults(func=run)


def build_job_body(args: argparse.Namespace, file_path: str, fmt: str) -> dict[str, Any]:
    return {
        "title": args.title or f"import {args.file.name}",
        "job_type": "import",
        "model_name": args.model,
        "format": fmt,
        "file_path": file_path,
        "options": {
            "mode": args.mode,
            "encoding": args.encoding or None,
            "delimiter": parse_delimiter(args.delimiter),
            "field_mapping": parse_mapping(args.mapping),
        },
    }


def run(args: argparse.Namespace, ctx: Context) -> int:
    path: Path = args.file.expanduser()
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if not path.is_file():
        raise UsageError(f"not a regular file: {path}")
    fmt = infer_format(path, args.format)
    # validate every flag before uploading, so a typo does not cost a 100 MB upload
    body = build_job_body(args, "", fmt)
    with ctx.client() as client:
        size = path.stat().st_size
        ctx.out.print(f"uploading {path.name} ({size:,} bytes)", highlight=False, markup=False)
        uploaded = client.upload(path)
        body["file_path"] = uploaded["file_path"]
        job = client.create_job(body)
        if args.no_wait:
            job = client.execute(str(job["id"]))
            ctx.out.print(f"job {job['id']} {job.get('status', 'queued')}", highlight=False)
            ctx.out.print(f"follow it with: dm status {job['id']}", markup=False)
            return EXIT_OK
        final = execute_and_follow(ctx, client, job)
    return report(ctx, final)
