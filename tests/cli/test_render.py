"""Exit codes, summary rendering and progress lines, rendered into strings."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from services.cli.follow import Snapshot, snapshot_from_job, snapshot_from_progress
from services.cli.jobrun import exit_code_for
from services.cli.progress import PlainProgress, progress_view
from services.cli.render import format_duration, print_dry_run, print_summary, truncate


def job(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "0f3c2a9e-1111-2222-3333-444455556666",
        "title": "import people.csv",
        "status": "completed",
        "progress": 100.0,
        "statistics": {
            "rows_read": 1200,
            "rows_imported": 1188,
            "rows_rejected": 12,
            "chunks_committed": 2,
        },
        "errors": [
            {"row": i + 2, "column": "email", "value": f"bad{i}", "message": "not an email"}
            for i in range(12)
        ],
        "error_message": "",
        "started_at": "2026-12-01T10:00:00+00:00",
        "completed_at": "2026-12-01T10:01:02.5+00:00",
    }
    base.update(changes)
    return base


def render(print_fn: Any, *args: Any) -> str:
    buffer = io.StringIO()
    print_fn(Console(file=buffer, width=120), *args)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("status", "code"),
    [("completed", 0), ("failed", 1), ("cancelled", 1), ("running", 1)],
)
def test_exit_code(status: str, code: int) -> None:
    assert exit_code_for(job(status=status)) == code


def test_completed_with_rejections_still_exits_zero() -> None:
    assert exit_code_for(job()) == 0


def test_summary_shows_counters_duration_first_ten_rejections_and_hint() -> None:
    out = render(print_summary, job())
    assert "completed" in out
    assert "1,200" in out
    assert "1,188" in out
    assert "1m 02.5s" in out
    assert "First 10 errors (12 rows rejected)" in out
    assert "bad9" in out
    assert "bad10" not in out
    assert "dm rejections 0f3c2a9e-1111-2222-3333-444455556666" in out


def test_errors_and_rejected_rows_are_counted_apart() -> None:
    """Regression: two rows with six bad cells read "First 6 of 2 rejected rows"."""
    errors = [
        {"row": 2 + i // 3, "column": f"c{i}", "value": "x", "message": "bad"} for i in range(6)
    ]
    out = render(print_summary, job(errors=errors, statistics={"rows_read": 2, "rows_rejected": 2}))
    assert "First 6 errors (2 rows rejected)" in out


def test_summary_without_rejections_has_no_table_or_hint() -> None:
    out = render(print_summary, job(errors=[], statistics={"rows_read": 3, "rows_imported": 3}))
    assert "rejected rows" not in out
    assert "dm rejections" not in out


def test_values_that_look_like_markup_are_printed_verbatim() -> None:
    rows = [{"row": 2, "column": "name", "value": "[bold]x[/bold]", "message": "[red]no"}]
    out = render(print_summary, job(errors=rows, statistics={"rows_rejected": 1}))
    assert "[bold]x[/bold]" in out
    assert "[red]no" in out


def test_long_values_are_truncated_to_forty_characters() -> None:
    text = truncate("x" * 100)
    assert len(text) == 40
    assert text.endswith("…")
    assert truncate(None) == ""
    assert truncate("a\nb") == "a\\nb"


def test_duration_without_times_is_a_dash() -> None:
    assert format_duration({"started_at": None}) == "-"
    assert format_duration(job(completed_at="2026-12-01T10:00:03+00:00")) == "3.0s"


def test_snapshots_from_job_and_progress_event() -> None:
    assert snapshot_from_job(job()) == Snapshot("completed", 100.0, 1200, 1188, 12, "")
    event = {"status": "running", "percent": 140, "rows_read": 5, "rows_imported": 4}
    assert snapshot_from_progress(event) == Snapshot("running", 100.0, 5, 4, 0, "")


def test_plain_progress_prints_a_line_per_status_or_ten_percent_step() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80)
    view = progress_view(console)
    assert isinstance(view, PlainProgress)  # a StringIO is not a terminal
    with view:
        for percent in (0.0, 1.0, 5.0, 12.0, 15.0, 55.0):
            view.show(Snapshot("running", percent, int(percent), int(percent), 0))
        view.show(Snapshot("completed", 100.0, 100, 98, 2))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("completed")
    assert "rejected 2" in lines[-1]
    assert "\x1b" not in buffer.getvalue()  # no terminal control codes in a pipe


def dry_run_job(changes: int) -> dict[str, Any]:
    return job(
        options={"mode": "upsert", "dry_run": True},
        statistics={
            "rows_read": 40,
            "rows_imported": 30,
            "rows_inserted": 5,
            "rows_updated": changes,
            "rows_unchanged": 4,
            "rows_skipped": 0,
            "rows_rejected": 6,
        },
        changes=[
            {"row": i + 2, "key": f"u{i}", "fields": ["email", "phone"] if i else ["[b]x"]}
            for i in range(changes)
        ],
    )


def test_dry_run_shows_counts_and_first_ten_changes() -> None:
    out = render(print_dry_run, dry_run_job(25))
    assert out.startswith("dry run: nothing was written\n")
    assert "would insert 5, update 25, leave 4 unchanged, skip 0, reject 6" in out
    assert "First 10 of 25 rows that would change" in out
    assert "u9" in out
    assert "u10" not in out
    assert "email, phone" in out
    assert "[b]x" in out  # field names are printed verbatim, not as markup


def test_dry_run_without_changes_has_no_table() -> None:
    out = render(print_dry_run, dry_run_job(0))
    assert "would insert 5, update 0" in out
    assert "would change" not in out


def test_dry_run_summary_says_would_import() -> None:
    assert "would import" in render(print_summary, dry_run_job(3))
    assert "would import" not in render(print_summary, job())


def test_export_progress_counts_rows_written() -> None:
    """Regression: an export's progress line said "imported"."""
    buffer = io.StringIO()
    with progress_view(Console(file=buffer, width=80), export=True) as view:
        view.show(Snapshot("running", 50.0, 500, 500, 0))
    assert "written 500" in buffer.getvalue()
    assert "imported" not in buffer.getvalue()
