"""``dm import``: upload a file, create and execute an import job, follow it, summarise."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.cli.context import Context
from services.cli.errors import EXIT_OK, UsageError
from services.cli.jobrun import execute_and_follow, report
from services.cli.options import (
    CALENDARS,
    FORMATS,
    MODES,
    infer_format,
    parse_delimiter,
    parse_mapping,
    parse_percent,
    parse_time_zone,
)
from services.cli.render import print_dry_run

__all__ = ["build_import_options", "build_job_body", "register", "run"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import", parents=parents, help="import a file into a model", description=__doc__
    )
    p.add_argument("--file", required=True, type=Path, help="the file to import")
    p.add_argument("--model", required=True, help="target model, e.g. users.User")
    p.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    p.add_argument("--title", help="default: 'import <file name>'")
    p.add_argument(
        "--mode",
        choices=MODES,
        help="insert (existing keys are rejected, the default), upsert or skip",
    )
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
    p.add_argument(
        "--sheet", metavar="NAME", help="XLSX sheet to read; default: the first visible one"
    )
    p.add_argument(
        "--header-row",
        type=int,
        metavar="N",
        help="XLSX: the row holding the header, when a title sits above it; default: 1",
    )
    p.add_argument(
        "--calendar", choices=CALENDARS, help="how dates are read; default: auto (server)"
    )
    p.add_argument(
        "--time-zone", metavar="ZONE", help="IANA zone of times without one, e.g. Asia/Tehran"
    )
    p.add_argument(
        "--no-fold-arabic",
        dest="fold_arabic_letters",
        action="store_const",
        const=False,
        default=None,
        help="keep Arabic ي and ك as they are instead of folding them to Persian ی and ک",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the file against the table and report what would change; write nothing",
    )
    p.add_argument(
        "--all-or-nothing",
        action="store_true",
        help="load every row in one transaction: any rejected row loads nothing",
    )
    p.add_argument(
        "--max-errors",
        type=parse_percent,
        metavar="PERCENT",
        help="fail the job when more than PERCENT (0-100) of the rows are rejected",
    )
    p.add_argument("--no-wait", action="store_true", help="start the job and return at once")
    p.set_defaults(func=run)


def build_import_options(args: argparse.Namespace, fmt: str) -> dict[str, Any]:
    """The job's ``options``: only what was given, so the server's defaults apply otherwise."""
    if args.sheet is not None and fmt != "xlsx":
        raise UsageError(f"--sheet applies to xlsx files, not {fmt}")
    if args.header_row is not None and fmt != "xlsx":
        raise UsageError(f"--header-row applies to xlsx files, not {fmt}")
    if args.header_row is not None and args.header_row < 1:
        raise UsageError("--header-row: rows are counted from 1")
    options: dict[str, Any] = {}
    if args.mode:
        options["mode"] = args.mode
    if args.encoding:
        options["encoding"] = args.encoding
    delimiter = parse_delimiter(args.delimiter)
    if delimiter is not None:
        options["delimiter"] = delimiter
    mapping = parse_mapping(args.mapping)
    if mapping:
        options["field_mapping"] = mapping
    if args.sheet is not None:
        if not args.sheet.strip():
            raise UsageError("--sheet: the sheet name is empty")
        options["sheet"] = args.sheet
    if args.header_row is not None:
        options["header_row"] = args.header_row
    if args.calendar:
        options["calendar"] = args.calendar
    time_zone = parse_time_zone(args.time_zone)
    if time_zone is not None:
        options["time_zone"] = time_zone
    if args.fold_arabic_letters is not None:
        options["fold_arabic_letters"] = args.fold_arabic_letters
    if args.dry_run:
        options["dry_run"] = True
    if args.all_or_nothing:
        options["all_or_nothing"] = True
    if args.max_errors is not None:
        options["max_error_percent"] = args.max_errors
    return options


def build_job_body(args: argparse.Namespace, file_path: str, fmt: str) -> dict[str, Any]:
    return {
        "title": args.title or f"import {args.file.name}",
        "job_type": "import",
        "model_name": args.model,
        "format": fmt,
        "file_path": file_path,
        "options": build_import_options(args, fmt),
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
            if args.dry_run:
                ctx.out.print("dry run: nothing will be written", highlight=False)
            ctx.out.print(f"follow it with: dm status {job['id']}", markup=False)
            return EXIT_OK
        final = execute_and_follow(ctx, client, job)
    code = report(ctx, final)
    if args.dry_run:
        print_dry_run(ctx.out, final)
    return code
