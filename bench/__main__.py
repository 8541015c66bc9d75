"""``python -m bench``: see ``bench/__init__.py``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bench.run import BENCH, SECTIONS, Options, run

QUICK = (20_000, 60_000, 5_000)


def _parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the importer against psql baselines."
    )
    parser.add_argument("--rows", type=int, default=None, help="main CSV rows (1,000,000)")
    parser.add_argument("--big-rows", type=int, default=None, help="RSS run rows (3,000,000)")
    parser.add_argument("--xlsx-rows", type=int, default=None, help="XLSX rows (100,000)")
    parser.add_argument(
        "--quick", action="store_true", help="20k/60k/5k rows: a smoke run of every step"
    )
    parser.add_argument(
        "--profile", action="store_true", help="extra untimed runs under py-spy (if installed)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="rounds of the import and upsert, each side's best counting (2; 1 with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results file (bench/results.json; bench/data/results-quick.json with --quick)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections to run ({', '.join(SECTIONS)}); results go to "
        "bench/data/results-only.json unless --output says otherwise",
    )
    args = parser.parse_args(argv)
    only = None
    if args.only:
        only = frozenset(s.strip() for s in args.only.split(",") if s.strip())
        unknown = sorted(only - set(SECTIONS))
        if unknown:
            parser.error(
                f"--only: unknown section {', '.join(unknown)} (one of {', '.join(SECTIONS)})"
            )
    rows, big, xlsx = QUICK if args.quick else (1_000_000, 3_000_000, 100_000)
    options = Options(
        rows=args.rows or rows,
        big_rows=args.big_rows or big,
        xlsx_rows=args.xlsx_rows or xlsx,
        output=args.output
        or (
            BENCH / "data" / "results-only.json"
            if only
            else BENCH / "data" / "results-quick.json"
            if args.quick
            else BENCH / "results.json"
        ),
        profile=args.profile,
        only=only,
        repeat=args.repeat or (1 if args.quick else 2),
    )
    if not 1 <= options.repeat <= 10:
        parser.error("--repeat must be between 1 and 10")
    for name in ("rows", "big_rows", "xlsx_rows"):
        if not 1 <= getattr(options, name) <= 9_999_999:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 9,999,999")
    return options


def main(argv: list[str] | None = None) -> int:
    # a terminated bench stops its services and servers as Ctrl-C does (asyncio.run cancels
    # the run, whose cleanup stops them), instead of leaving them running on their own
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
