"""``dm export``: create and execute an export job, follow it, download the result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.cli.context import Context
from services.cli.errors import EXIT_OK
from services.cli.jobrun import execute_and_follow, report
from services.cli.options import (
    FILTER_OPS,
    FORMATS,
    check_output_path,
    infer_format,
    parse_filters,
    parse_name_list,
    parse_order_by,
)

__all__ = ["build_export_options", "register", "run"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", parents=parents, help="export a model to a file", description=__doc__
    )
    p.add_argument("--model", required=True, help="source model, e.g. users.User")
    p.add_argument("--output", required=True, type=Path, help="where to write the file")
    p.add_argument("--format", choices=FORMATS, help="default: from the output's extension")
    p.add_argument("--title", help="default: 'export <model>'")
    p.add_argument("--fields", metavar="A,B,C", help="fields to write, in this order; default: all")
    p.add_argument(
        "--filter",
        nargs=3,
        action="append",
        default=[],
        dest="filters",
        metavar=("FIELD", "OP", "VALUE"),
        help=(
            f"keep rows where FIELD OP VALUE (repeatable, all must hold); OP: "
            f"{', '.join(FILTER_OPS)}; 'in' takes a,b,c and 'isnull' takes true or false"
        ),
    )
    p.add_argument("--order-by", metavar="A,-B", help="sort by these fields; -FIELD descends")
    p.add_argument(
        "--no-escape-formulas",
        dest="escape_formulas",
        action="store_false",
        default=None,
        help="CSV: keep text starting with = + - @ as it is (no leading apostrophe), for "
        "files read by programs rather than spreadsheets",
    )
    p.set_defaults(func=run)


def build_export_options(args: argparse.Namespace) -> dict[str, Any]:
    """The job's ``options``: only what was given, so the server's defaults apply otherwise."""
    options: dict[str, Any] = {}
    fields = parse_name_list(args.fields, "--fields")
    if fields:
        options["fields"] = fields
    filters = parse_filters(args.filters)
    if filters:
        options["filters"] = filters
    order_by = parse_order_by(args.order_by)
    if order_by:
        options["order_by"] = order_by
    if getattr(args, "escape_formulas", None) is not None:
        options["escape_formulas"] = args.escape_formulas
    return options


def run(args: argparse.Namespace, ctx: Context) -> int:
    output = check_output_path(args.output)
    fmt = infer_format(output, args.format)
    # validate every flag before asking the server for anything
    body: dict[str, Any] = {
        "title": args.title or f"export {args.model}",
        "job_type": "export",
        "model_name": args.model,
        "format": fmt,
        # the server decides where the result lives; the name only labels it
        "file_path": output.name,
        "options": build_export_options(args),
    }
    with ctx.client() as client:
        job = client.create_job(body)
        final = execute_and_follow(ctx, client, job)
        code = report(ctx, final)
        if code != EXIT_OK:
            return code
        written = client.download(str(final["id"]), output)
    ctx.out.print(f"wrote {written:,} bytes to {output}", highlight=False, markup=False)
    return EXIT_OK
