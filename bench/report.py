"""The printed table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["Line", "print_table"]


@dataclass
class Line:
    """One measured (or not yet measurable) thing.

    ``note`` stands in the seconds column when nothing was measured, else it is printed
    under the table as a footnote of the line.
    """

    what: str
    rows: int
    seconds: float | None
    baseline: bool = False
    ratio: float | None = None
    target: float | None = None
    rss_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None

    @property
    def verdict(self) -> str:
        if self.baseline:
            return "baseline"
        if self.target is None:
            return ""
        if self.ratio is None:
            return "[yellow]n/a[/]"
        return "[green]pass[/]" if self.ratio >= self.target else "[red]FAIL[/]"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _ok(flag: bool | None) -> str:
    if flag is None:
        return "[yellow]n/a[/]"
    return "[green]pass[/]" if flag else "[red]FAIL[/]"


def print_table(
    console: Console, lines: Sequence[Line], results: dict[str, Any], problems: Sequence[str]
) -> None:
    table = Table(title="make bench", title_justify="left")
    for name, justify in (
        ("what", "left"),
        ("rows", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
        ("ratio vs baseline", "right"),
        ("target", "right"),
        ("pass/fail", "center"),
        ("peak RSS MB", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for line in lines:
        table.add_row(
            line.what,
            f"{line.rows:,}",
            _num(line.seconds, ".2f") if line.seconds else line.note or "—",
            _num(line.rate, ",.0f"),
            _num(line.ratio, ".2f"),
            f"≥ {line.target:.2f}" if line.target is not None else "",
            line.verdict,
            _num(line.rss_mb, ".1f"),
        )
    rss1 = results.get("importer_peak_rss_mb_1m")
    rss3 = results.get("importer_peak_rss_mb_3m")
    growth = results.get("rss_3m_vs_1m")
    passes = results.get("pass", {})
    rows = results.get("rows", {})
    notes = [line for line in lines if line.seconds and line.note]
    table.add_section()
    table.add_row(
        "importer peak RSS (main)", f"{rows.get('main', 0):,}", "", "", "", "< 150 MB",
        _ok(passes.get("importer_peak_rss_mb_1m")), _num(rss1, ".1f"),
    )  # fmt: skip
    table.add_row(
        "importer peak RSS (big)", f"{rows.get('big', 0):,}", "", "", _num(growth, ".3f"),
        "< 150 MB, ≤ 1.10×",
        _ok(passes.get("importer_peak_rss_mb_3m") and passes.get("rss_3m_vs_1m")),
        _num(rss3, ".1f"),
    )  # fmt: skip
    if "exporter_peak_rss_mb" in results:
        table.add_row(
            "exporter peak RSS", "", "", "", "", "", "",
            _num(results.get("exporter_peak_rss_mb"), ".1f"),
        )  # fmt: skip
    console.print(table)
    for line in notes:
        console.print(f"note — {line.what.strip()}: {line.note}", markup=False, soft_wrap=True)
    for problem in problems:
        console.print(f"[bold red]problem: {problem}[/]")
