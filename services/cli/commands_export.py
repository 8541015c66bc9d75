"""``dm export``: create and execute an export job, follow it, download the result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.cli.context import Context
from services.cli.errors import EXIT_OK, UsageError
from services.cli.jobrun import execute_and_follow, report
from services.cli.options import FORMATS, infer_format

__all__ = ["register", "run"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", parents=parents, help="export a model to a file", description=__doc__
    )
    p.add_argument("--model", required=True, help="source model, e.g. users.User")
    p.add_argument("--output", required=True, type=Path, help="where to write the file")
    p.add_argument("--format", choices=FORMATS, help="default: from the output's extension")
    p.add_argument("--title", help="default: 'export <model>'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    output: Path = args.output.expanduser()
    if not output.parent.is_dir():
        raise UsageError(f"no such directory: {output.parent}")
    if output.is_dir():
        raise UsageError(f"--output is a directory: {output}")
    fmt = infer_format(output, args.format)
    body: dict[str, Any] = {
        "title": args.title or f"export {args.model}",
        "job_type": "export",
        "model_name": args.model,
        "format": fmt,
        # the server decides where the result lives; the name only labels it
        "file_path": output.name,
        "options": {"mode": "insert", "encoding": None, "delimiter": None, "field_mapping": {}},
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
