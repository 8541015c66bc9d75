"""Import modes over HTTP: dry run, all-or-nothing, an error threshold, the error report."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.people import FIELDS, person
from tests.support.servers import Servers
from tests.support.stack import Stack, system
from tests.test_e2e_import import follow, upload

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    # a small upload limit, so the 413 is tested without a big file
    async with system(
        servers, tmp_path_factory.mktemp("modes"), max_file_size=400_000, import_chunk_size=1000
    ) as s:
        yield s


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as c:
        yield c


def _file(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run(client: httpx.Client, stack: Stack, path: Path, **options: Any) -> dict[str, Any]:
    final, _ = follow(client, stack, "alice", _started(client, stack, path, **options))
    return final


def _started(client: httpx.Client, stack: Stack, path: Path, **options: Any) -> str:
    """The id of a new import job of ``path`` that has been asked to run."""
    r = client.post(
        stack.api("jobs/"),
        headers=stack.headers("alice"),
        json={
            "title": "modes",
            "job_type": "import",
            "model_name": "users.User",
            "format": "csv",
            "file_path": upload(client, stack, "alice", path),
            "options": options,
        },
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert (
        client.post(
            stack.api(f"jobs/{job_id}/execute/"), headers=stack.headers("alice")
        ).status_code
        == 202
    )
    return str(job_id)


async def _usernames(stack: Stack, prefix: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch("SELECT * FROM users_user WHERE username LIKE $1", prefix + "%")
    finally:
        await conn.close()
    return {r["username"]: r for r in rows}


async def test_dry_run_reports_what_would_change_and_writes_nothing(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    base = [person(i) for i in range(6_000_001, 6_000_011)]
    assert _run(client, stack, _file(tmp_path / "base.csv", base))["status"] == "completed"
    before = await _usernames(stack, "p6")
    changed = [dict(p) for p in base[:4]]
    changed[0]["faculty"] = "Physics"
    changed[1]["last_name"] = "Tehrani"
    new = [person(i) for i in range(6_000_011, 6_000_014)]
    bad = {**person(6_000_014), "email": "nope"}
    final = _run(
        client,
        stack,
        _file(tmp_path / "dry.csv", [*changed, *new, bad]),
        mode="upsert",
        dry_run=True,
    )
    assert final["status"] == "completed"
    stats = final["statistics"]
    assert stats["rows_inserted"] == 3
    assert stats["rows_updated"] == 2
    assert stats["rows_unchanged"] == 2
    assert stats["rows_rejected"] == 1
    assert {(c["key"], tuple(c["fields"])) for c in final["changes"]} == {
        (base[0]["username"], ("faculty",)),
        (base[1]["username"], ("last_name",)),
    }
    assert await _usernames(stack, "p6") == before  # nothing written


async def test_all_or_nothing_writes_nothing_when_any_row_is_bad(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(7_000_001, 7_000_051)]
    rows[30]["national_id"] = "1234567890"
    final = _run(client, stack, _file(tmp_path / "atomic.csv", rows), all_or_nothing=True)
    assert final["status"] == "failed"
    assert "nothing was written" in final["error_message"]
    assert final["errors"][0]["row"] == 32
    assert final["progress"] == 100.0  # regression: the checked file showed as 0 % read
    # regression: it said chunks were committed
    assert (final["statistics"]["chunks_committed"], final["statistics"]["rows_read"]) == (0, 50)
    assert await _usernames(stack, "p7") == {}

    rows[30] = person(7_000_031)
    final = _run(client, stack, _file(tmp_path / "atomic_ok.csv", rows), all_or_nothing=True)
    assert final["status"] == "completed", final["error_message"]
    assert len(await _usernames(stack, "p7")) == 50


async def test_error_threshold_fails_the_job(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(8_000_001, 8_001_201)]
    for row in rows[::5]:
        row["role"] = "wizard"  # 20 % bad
    final = _run(client, stack, _file(tmp_path / "bad.csv", rows), max_error_percent=10)
    assert final["status"] == "failed"
    assert "more than the 10% allowed" in final["error_message"]
    final = _run(
        client, stack, _file(tmp_path / "bad2.csv", rows), max_error_percent=25, mode="upsert"
    )
    assert final["status"] == "completed"


async def test_a_file_smaller_than_a_chunk_over_the_threshold_writes_nothing(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    """Regression: the share was only checked after a whole chunk's worth of rows had been
    committed, so a small file over the limit was written (and a file of less than one
    chunk never checked at all). The bad rows still show why."""
    rows = [person(i) for i in range(8_100_001, 8_100_301)]  # 300 rows, chunks of 1,000
    for row in rows[:30]:
        row["role"] = "wizard"  # 10 % bad
    job_id = _started(client, stack, _file(tmp_path / "small.csv", rows), max_error_percent=5)
    final, progress = follow(client, stack, "alice", job_id)
    assert final["status"] == "failed"
    assert "more than the 5% allowed" in final["error_message"]
    # regression: the live stream ended on "failed 100 %" while the job said 0 %
    assert progress[-1]["status"] == "failed"
    assert progress[-1]["percent"] == final["progress"]
    assert "was not written" in final["error_message"]
    assert await _usernames(stack, "p81") == {}
    stats = final["statistics"]
    assert (stats["rows_read"], stats["rows_rejected"], stats["rows_imported"]) == (300, 30, 0)
    assert stats["chunks_committed"] == 0  # the refused chunk was not committed
    assert final["progress"] == 0.0
    assert [e["row"] for e in final["errors"]] == list(range(2, 32))
    r = client.get(stack.api(f"jobs/{final['id']}/rejections/"), headers=stack.headers("alice"))
    assert r.json()["count"] == 30


async def test_the_chunk_that_tips_the_share_over_the_threshold_is_not_written(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(8_200_001, 8_202_501)]  # chunks of 1,000: 3 of them
    for row in rows[1_000:1_500]:
        row["role"] = "wizard"  # the second chunk: half bad, 25 % of the rows read
    final = _run(client, stack, _file(tmp_path / "tips.csv", rows), max_error_percent=20)
    assert final["status"] == "failed"
    assert "rows 1,002 to 2,001" in final["error_message"], final["error_message"]
    stored = await _usernames(stack, "p82")
    assert len(stored) == 1_000  # the first chunk only
    stats = final["statistics"]
    assert (stats["rows_read"], stats["rows_rejected"], stats["rows_imported"]) == (2000, 500, 1000)
    assert stats["chunks_committed"] == 1


async def test_error_report_has_row_reason_and_original_line(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(9_000_001, 9_000_004)]
    rows[1]["birth_date"] = "1999-13-45"
    rows[2]["role"] = "=1+2"  # not a role, and a formula to a spreadsheet
    final = _run(client, stack, _file(tmp_path / "report.csv", rows))
    r = client.get(
        stack.api(f"jobs/{final['id']}/rejections/download/"), headers=stack.headers("alice")
    )
    assert r.status_code == 200
    # regression: the charset was once given twice ("text/csv; charset=utf-8; charset=utf-8")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    report = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["row"], x["column"]) for x in report] == [("3", "birth_date"), ("4", "role")]
    assert "1999-13-45" in report[0]["message"]
    original = next(csv.reader([report[0]["original"]]))
    assert original == [rows[1][f] for f in FIELDS]
    assert report[1]["value"] == "'=1+2"  # a formula in the report is neutralised
    bob = client.get(
        stack.api(f"jobs/{final['id']}/rejections/download/"), headers=stack.headers("bob")
    )
    assert bob.status_code == 404


def test_uploads_over_the_limit_answer_413(stack: Stack, client: httpx.Client) -> None:
    big = b"x" * 500_000
    r = client.put(stack.api("uploads/big.csv"), content=big, headers=stack.headers("alice"))
    assert r.status_code == 413
    assert "larger than 400000 bytes" in r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield big[:50_001]

    r = client.put(stack.api("uploads/big.csv"), content=chunks(), headers=stack.headers("alice"))
    assert r.status_code == 413


async def test_dry_run_and_all_or_nothing_see_duplicates_across_chunks(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(10_000_001, 10_002_101)]  # chunks of 1000, 1000, 100
    rows[2048] = {**rows[2048], "username": rows[0]["username"]}  # line 2050 repeats line 2
    path = _file(tmp_path / "dupes.csv", rows)
    dry = _run(client, stack, path, dry_run=True)
    assert dry["statistics"]["rows_rejected"] == 1
    assert [(e["row"], e["column"]) for e in dry["errors"]] == [(2050, "username")]
    assert "already in row 2 of this file" in dry["errors"][0]["message"]
    atomic = _run(client, stack, path, all_or_nothing=True)
    assert atomic["status"] == "failed", (atomic["statistics"], atomic["errors"][:3])
    assert atomic["statistics"]["rows_rejected"] == 1
    assert atomic["statistics"]["rows_imported"] == 0
    assert [e["row"] for e in atomic["errors"]] == [2050]
    assert await _usernames(stack, "p1000") == {}
