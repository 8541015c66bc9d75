"""End to end: gateway and importer as separate processes, a person's view over HTTP."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import DATA
from tests.support.people import FIELDS, person, write_people
from tests.support.servers import Servers
from tests.support.stack import Stack, system

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
async def stack(
    servers: Servers,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    async with system(servers, tmp_path_factory.mktemp("e2e"), import_chunk_size=1000) as s:
        yield s


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as c:
        yield c


def upload(
    client: httpx.Client, stack: Stack, user: str, path: Path, name: str | None = None
) -> str:
    with open(path, "rb") as f:
        r = client.put(
            stack.api(f"uploads/{name or path.name}"), content=f, headers=stack.headers(user)
        )
    assert r.status_code == 201, r.text
    file_path: str = r.json()["file_path"]
    return file_path


def create_job(
    client: httpx.Client, stack: Stack, user: str, file_path: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "title": "students",
        "job_type": "import",
        "model_name": "users.User",
        "format": "csv",
        "file_path": file_path,
        **extra,
    }
    r = client.post(stack.api("jobs/"), json=body, headers=stack.headers(user))
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    return job


def follow(
    client: httpx.Client, stack: Stack, user: str, job_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read the SSE stream to its end: the final job and every progress message."""
    progress: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    event = ""
    with client.stream(
        "GET", stack.api(f"jobs/{job_id}/events"), headers=stack.headers(user), timeout=120.0
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                if event == "progress":
                    progress.append(data)
                elif event == "status":
                    final = data
    assert final.get("status") in TERMINAL, final
    return final, progress


def run_job(
    client: httpx.Client, stack: Stack, user: str, path: Path, **extra: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job = create_job(client, stack, user, upload(client, stack, user, path), **extra)
    r = client.post(stack.api(f"jobs/{job['id']}/execute/"), headers=stack.headers(user))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    return follow(client, stack, user, job["id"])


async def table_rows(stack: Stack) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch("SELECT * FROM users_user")
    finally:
        await conn.close()
    return {r["username"]: r for r in rows}


def _expected_value(field: str, text: str) -> object:
    if text == "":
        return None
    if field == "birth_date":
        return date.fromisoformat(text)
    if field == "date_joined":
        return datetime.fromisoformat(text)
    if field == "is_active":
        return text == "true"
    return text


async def test_bad_rows_file_imports_row_by_row_as_expected(
    stack: Stack, client: httpx.Client
) -> None:
    expect = json.loads((DATA / "users_10k_bad.expect.json").read_text())
    final, progress = run_job(client, stack, "alice", DATA / "users_10k_bad.csv")

    assert final["status"] == "completed"
    stats = final["statistics"]
    assert stats["rows_read"] == 10_000
    assert stats["rows_imported"] == len(expect["imported_usernames"])
    assert stats["rows_rejected"] == len(expect["rejected"])
    assert progress, "no progress event was streamed"
    assert all(0.0 <= p["percent"] <= 100.0 for p in progress)

    stored = await table_rows(stack)
    assert set(stored) == set(expect["imported_usernames"])
    with open(DATA / "users_10k_bad.csv", newline="", encoding="utf-8") as f:
        by_line = dict(enumerate(csv.DictReader(f), start=2))
    rejected_lines = {r["line"] for r in expect["rejected"]}
    for line, row in by_line.items():
        if line in rejected_lines:
            continue
        record = stored[row["username"]]
        for field, text in row.items():
            assert record[field] == _expected_value(field, text), (line, field)
    # student numbers keep their leading zeros
    assert any(r["student_number"] and r["student_number"].startswith("0") for r in stored.values())

    r = client.get(
        stack.api(f"jobs/{final['id']}/rejections/?limit=1000"), headers=stack.headers("alice")
    )
    assert r.status_code == 200
    rejections = r.json()
    assert rejections["count"] == len(expect["rejected"])
    got = {x["row"]: x for x in rejections["results"]}
    words = {
        "bad_email": "email",
        "bad_national_id": "check digit",
        "missing_username": "username is required",
        "bad_date": "1999-13-45",
        "bad_role": "is not one of",
        "bad_bool": "yes/no",
        "too_long_name": "at most 150",
        "duplicate_username": "duplicate username",
    }
    for want in expect["rejected"]:
        assert want["line"] in got, want
        assert words[want["kind"]] in got[want["line"]]["message"], (want, got[want["line"]])
    assert len(final["errors"]) == min(100, len(expect["rejected"]))


async def test_every_endpoint_needs_a_token_and_others_jobs_are_hidden(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("username,national_id,first_name,last_name,email,role\n")
    job = create_job(client, stack, "alice", upload(client, stack, "alice", small))
    job_id = job["id"]
    calls = [
        ("GET", "jobs/"),
        ("POST", "jobs/"),
        ("GET", f"jobs/{job_id}/"),
        ("PUT", f"jobs/{job_id}/"),
        ("DELETE", f"jobs/{job_id}/"),
        ("POST", f"jobs/{job_id}/execute/"),
        ("POST", f"jobs/{job_id}/cancel/"),
        ("GET", f"jobs/{job_id}/events"),
        ("GET", f"jobs/{job_id}/rejections/"),
        ("PUT", "uploads/x.csv"),
    ]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer dm_wrong"}, {"Authorization": "Basic x"}):
            r = client.request(method, stack.api(path), headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code)
    for method, path in calls[2:9]:
        r = client.request(method, stack.api(path), headers=stack.headers("bob"), json={})
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    listed = client.get(stack.api("jobs/"), headers=stack.headers("bob")).json()
    assert job_id not in {j["id"] for j in listed["results"]}
    admin = client.get(stack.api(f"jobs/{job_id}/"), headers=stack.headers("admin"))
    assert admin.status_code == 200
    mine = client.get(stack.api(f"jobs/{job_id}/"), headers=stack.headers("alice"))
    assert mine.json()["created_by"] == "alice"


async def test_unreadable_file_fails_the_job_and_writes_nothing(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    before = len(await table_rows(stack))
    garbage = tmp_path / "photo.csv"
    garbage.write_bytes(bytes(range(256)) * 64)
    final, _ = run_job(client, stack, "alice", garbage)
    assert final["status"] == "failed"
    assert "not a text file" in final["error_message"]
    assert len(await table_rows(stack)) == before

    missing_column = tmp_path / "no_national_id.csv"
    missing_column.write_text(
        "username,first_name,last_name,email,role\nzz1,A,B,zz1@example.org,student\n"
    )
    final, _ = run_job(client, stack, "alice", missing_column)
    assert final["status"] == "failed"
    assert "missing required column(s): national_id" in final["error_message"]
    assert len(await table_rows(stack)) == before

    # a run-once import of a file that is not there is refused at once
    r = client.post(
        stack.api("jobs/"),
        headers=stack.headers("alice"),
        json={
            "title": "t",
            "job_type": "import",
            "model_name": "users.User",
            "format": "csv",
            "file_path": "not-there.csv",
        },
    )
    assert r.status_code == 400
    assert "does not exist" in r.text
    # one that disappears before it runs fails with the same clear reason
    dropped = stack.settings.imports_path / "gone.csv"
    dropped.write_text("username\n")
    job = create_job(client, stack, "alice", "gone.csv")
    dropped.unlink()
    client.post(stack.api(f"jobs/{job['id']}/execute/"), headers=stack.headers("alice"))
    final, _ = follow(client, stack, "alice", job["id"])
    assert final["status"] == "failed"
    assert "does not exist" in final["error_message"]


async def test_bad_definitions_are_refused_with_a_clear_400(
    stack: Stack, client: httpx.Client
) -> None:
    h = stack.headers("alice")
    base = {
        "title": "t",
        "job_type": "import",
        "model_name": "users.User",
        "format": "csv",
        "file_path": "x.csv",
    }
    cases = [
        ({**base, "model_name": "auth.Secret"}, "unknown model"),
        ({**base, "file_path": "../../etc/passwd"}, "outside the imports root"),
        ({**base, "colour": "red"}, "colour"),
        ({**base, "format": "pdf"}, "format"),
    ]
    for body, words in cases:
        r = client.post(stack.api("jobs/"), json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert words in r.text, r.text
    r = client.put(stack.api("uploads/report.exe"), content=b"x", headers=h)
    assert r.status_code == 400
    assert "not allowed" in r.text


async def test_docs_and_bus_description_are_served(stack: Stack, client: httpx.Client) -> None:
    r = client.get(f"{stack.base_url}/api/docs/")
    assert r.status_code == 200
    assert "html" in r.headers["content-type"]
    # the page's scripts come from the gateway itself, not a CDN (works offline)
    assert "/api/docs/assets/swagger-ui-bundle.js" in r.text
    assert "swagger-ui-dist" not in r.text  # no script or style from a CDN
    js = client.get(f"{stack.base_url}/api/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.content) > 100_000
    schema = client.get(f"{stack.base_url}/api/docs/openapi.json").json()
    # Litestar matches paths with and without the trailing slash and lists them without
    assert "/api/data-management/jobs/{job_id}/execute" in schema["paths"]
    asyncapi = client.get(f"{stack.base_url}/api/asyncapi.json").json()
    assert asyncapi["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in asyncapi["channels"].values()}
    assert f"{stack.settings.bus_prefix}.cmd.importer.execute" in addresses


def _dm() -> str:
    return str(Path(sys.executable).with_name("dm"))


async def test_dm_import_shows_progress_and_summary_and_fails_on_bad_file(
    stack: Stack, tmp_path: Path
) -> None:
    people = write_people(tmp_path / "students.csv", start=500_001, count=1_200)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env.update(DM_GATEWAY_URL=stack.base_url, DM_TOKEN=stack.tokens["alice"])
    done = subprocess.run(
        [_dm(), "import", "--file", str(people), "--model", "users.User", "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout
    assert "1,200" in done.stdout
    stored = await table_rows(stack)
    assert all(f"p{i:07d}" in stored for i in range(500_001, 501_201))

    garbage = tmp_path / "broken.csv"
    garbage.write_bytes(bytes(range(256)) * 32)
    failed = subprocess.run(
        [_dm(), "import", "--file", str(garbage), "--model", "users.User"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "not a text file" in failed.stderr

    status = subprocess.run([_dm(), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    assert "completed" in status.stdout
    assert "failed" in status.stdout

    no_token = subprocess.run(
        [_dm(), "status", "--token", "dm_wrong"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_token.returncode == 2
    assert "token" in no_token.stderr.lower()


async def test_cancel_stops_a_running_job_within_a_chunk(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    people = write_people(tmp_path / "many.csv", start=1_000_001, count=150_000)
    job = create_job(client, stack, "alice", upload(client, stack, "alice", people))
    h = stack.headers("alice")
    client.post(stack.api(f"jobs/{job['id']}/execute/"), headers=h)
    with client.stream("GET", stack.api(f"jobs/{job['id']}/events"), headers=h) as r:
        for line in r.iter_lines():
            data = json.loads(line[5:]) if line.startswith("data:") else {}
            if data.get("type") == "job.progress" and data["rows_imported"] > 0:
                break
    r = client.post(stack.api(f"jobs/{job['id']}/cancel/"), headers=h)
    assert r.status_code == 202, r.text
    final, _ = follow(client, stack, "alice", job["id"])
    assert final["status"] == "cancelled"
    imported = final["statistics"]["rows_imported"]
    assert 0 < imported < 150_000
    stored = await table_rows(stack)
    in_table = sum(1 for i in range(1_000_001, 1_150_001) if f"p{i:07d}" in stored)
    assert in_table == imported  # the statistics match what was committed
    again = client.post(stack.api(f"jobs/{job['id']}/cancel/"), headers=h)
    assert again.status_code == 409


async def test_logs_follow_one_job_across_gateway_and_importer(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    people = write_people(tmp_path / "few.csv", start=2_000_001, count=10)
    h = {**stack.headers("alice"), "X-Correlation-ID": "trace-me-123"}
    file_path = upload(client, stack, "alice", people)
    r = client.post(
        stack.api("jobs/"),
        headers=h,
        json={
            "title": "t",
            "job_type": "import",
            "model_name": "users.User",
            "format": "csv",
            "file_path": file_path,
        },
    )
    job_id = r.json()["id"]
    client.post(stack.api(f"jobs/{job_id}/execute/"), headers=h)
    final, _ = follow(client, stack, "alice", job_id)
    assert final["status"] == "completed"
    for log in stack.logs:
        if log.name.startswith("exporter"):
            continue  # this job never reaches the exporter
        text = log.read_text().splitlines()
        assert all(x.startswith("{") for x in text), "every log line is JSON off a terminal"
        lines = [json.loads(x) for x in text]
        mine = [x for x in lines if x.get("job_id") == job_id]
        assert mine, f"no line about the job in {log.name}"
        assert all(x.get("correlation_id") == "trace-me-123" for x in mine), mine


async def test_uploads_belong_to_their_owner_and_must_exist(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    people = write_people(tmp_path / "alice.csv", start=3_000_001, count=3)
    file_path = upload(client, stack, "alice", people)
    body = {"title": "t", "job_type": "import", "model_name": "users.User", "format": "csv"}
    r = client.post(
        stack.api("jobs/"), headers=stack.headers("bob"), json={**body, "file_path": file_path}
    )
    assert r.status_code == 400
    assert "no uploaded file" in r.text
    r = client.post(
        stack.api("jobs/"), headers=stack.headers("admin"), json={**body, "file_path": file_path}
    )
    assert r.status_code == 201
    for missing in ("upload:nope/x.csv", "upload:../../../etc/passwd"):
        r = client.post(
            stack.api("jobs/"), headers=stack.headers("alice"), json={**body, "file_path": missing}
        )
        assert r.status_code == 400, r.text
        assert "no uploaded file" in r.text


async def test_a_huge_cell_rejects_its_row_and_messages_name_the_users_file(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    huge = tmp_path / "hugefield.csv"
    rows = [person(4_000_001), person(4_000_002)]
    rows[0]["first_name"] = "x" * 1_000_000
    with open(huge, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    final, _ = run_job(client, stack, "alice", huge)
    assert final["status"] == "completed", final["error_message"]
    assert final["statistics"]["rows_imported"] == 1
    assert final["errors"][0]["row"] == 2
    assert "1000000 characters" in final["errors"][0]["message"]

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    final, _ = run_job(client, stack, "alice", empty)
    assert final["status"] == "failed"
    assert final["error_message"].startswith("empty.csv is empty")


async def test_another_records_unique_value_is_a_rejected_row_naming_its_owner(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    owner = person(5_000_001)
    first = write_people(tmp_path / "owner.csv", start=5_000_001, count=1)
    assert run_job(client, stack, "alice", first)[0]["status"] == "completed"
    thief = {**person(5_000_002), "national_id": owner["national_id"]}
    twin = {**person(5_000_003), "email": owner["email"]}
    path = tmp_path / "clash.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows([thief, twin, person(5_000_004)])
    final, _ = run_job(client, stack, "alice", path)
    assert final["status"] == "completed"
    assert final["statistics"]["rows_imported"] == 1
    by_row = {e["row"]: e for e in final["errors"]}
    assert by_row[2]["column"] == "national_id"
    assert f"already belongs to username '{owner['username']}'" in by_row[2]["message"]
    assert by_row[3]["column"] == "email"


async def test_a_nul_byte_rejects_its_row_and_the_counts_match_the_table(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(5_100_001, 5_100_004)]
    rows[1]["last_name"] = "Sm\x00ith"
    path = tmp_path / "nul.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    final, _ = run_job(client, stack, "alice", path)
    assert final["status"] == "completed", final["error_message"]
    assert final["statistics"]["rows_imported"] == 2
    assert final["statistics"]["rows_rejected"] == 1
    assert "NUL" in final["errors"][0]["message"]
    stored = await table_rows(stack)
    assert {r["username"] for r in rows} - set(stored) == {rows[1]["username"]}
    r = client.get(stack.api(f"jobs/{final['id']}/rejections/"), headers=stack.headers("alice"))
    assert r.json()["count"] == 1


async def test_nul_characters_in_definitions_are_a_clear_400(
    stack: Stack, client: httpx.Client
) -> None:
    h = stack.headers("alice")
    base = {
        "title": "t",
        "job_type": "import",
        "model_name": "users.User",
        "format": "csv",
        "file_path": "x.csv",
    }
    for body in (
        {**base, "title": "t\x00x"},
        {**base, "file_path": "a\x00b.csv"},
        {**base, "options": {"field_mapping": {"a\x00": "username"}}},
    ):
        r = client.post(stack.api("jobs/"), json=body, headers=h)
        assert r.status_code == 400, r.text
        assert "NUL" in r.text
    r = client.put(stack.api("uploads/a%00b.csv"), content=b"x", headers=h)
    assert r.status_code == 400


async def test_a_nul_in_the_header_fails_the_job_clearly(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "nulheader.csv"
    path.write_bytes(b"user\x00name,national_id,first_name,last_name,email,role\n")
    final, _ = run_job(client, stack, "alice", path)
    assert final["status"] == "failed"
    assert "missing required column(s): username" in final["error_message"]
    assert "gave up" not in final["error_message"]
    r = client.get(stack.api("jobs/%00/"), headers=stack.headers("alice"))
    assert r.status_code == 404


async def test_oversized_names_and_bodies_are_refused_and_the_gateway_keeps_working(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    """Regression: an upload named with 3,000 characters made an object-store subject that
    the NATS server refused by closing the gateway's connection, so every later upload
    and job answered 500 until a restart; a 2 MB title was a 500 as well."""
    h = stack.headers("alice")
    r = client.put(stack.api(f"uploads/{'a' * 3000}.csv"), content=b"x", headers=h)
    assert r.status_code == 400, r.text
    assert "longer than 255 bytes" in r.text
    base = {"job_type": "import", "model_name": "users.User", "format": "csv"}
    r = client.post(stack.api("jobs/"), json={**base, "title": "t" * 2_000_000}, headers=h)
    assert r.status_code == 413, r.text[:300]
    r = client.post(stack.api("jobs/"), json={**base, "title": "t" * 201}, headers=h)
    assert r.status_code == 400, r.text[:300]
    assert "title" in r.text
    r = client.post(
        stack.api("jobs/"),
        json={**base, "title": "t", "file_path": "upload:" + "a" * 3000},
        headers=h,
    )
    assert r.status_code == 400, r.text[:300]
    # the bus connection survived: uploading and importing still work
    path = write_people(tmp_path / "after.csv", 900_001, 1)
    final, _ = run_job(client, stack, "alice", path, options={"mode": "upsert"})
    assert final["status"] == "completed", final


async def test_a_short_job_id_finds_any_visible_job_however_old(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    # `dm status` shows ids cut to 8 characters; they were looked up among the 100 newest
    # jobs only, so an older job's short id was "not found"
    small = tmp_path / "tiny.csv"
    small.write_text("username,national_id,first_name,last_name,email,role\n")
    file_path = upload(client, stack, "alice", small)
    old = create_job(client, stack, "alice", file_path, title="the old one")
    for _ in range(101):
        create_job(client, stack, "alice", file_path)
    short = old["id"][:8]

    found = client.get(
        stack.api("jobs/"), params={"id_prefix": short.upper()}, headers=stack.headers("alice")
    )
    assert [j["id"] for j in found.json()["results"]] == [old["id"]]
    hidden = client.get(
        stack.api("jobs/"), params={"id_prefix": short}, headers=stack.headers("bob")
    )
    assert hidden.json() == {"count": 0, "results": []}
    odd = client.get(stack.api("jobs/"), params={"id_prefix": "%"}, headers=stack.headers("alice"))
    assert odd.status_code == 400

    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env.update(DM_GATEWAY_URL=stack.base_url, DM_TOKEN=stack.tokens["alice"])
    shown = subprocess.run(
        [_dm(), "status", short], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "the old one" in shown.stdout
    whole = old["id"]
    # a whole id respelled, and a longer prefix typed without its dash
    for spelled in (whole.upper(), whole.replace("-", ""), whole.replace("-", "")[:12].upper()):
        respelled = subprocess.run(
            [_dm(), "status", spelled], env=env, capture_output=True, text=True, timeout=60
        )
        assert respelled.returncode == 0, respelled.stdout + respelled.stderr
        assert "the old one" in respelled.stdout
    env.update(DM_TOKEN=stack.tokens["bob"])
    other = subprocess.run(
        [_dm(), "status", short], env=env, capture_output=True, text=True, timeout=60
    )
    assert other.returncode != 0
    assert "not found" in (other.stdout + other.stderr).lower()


def _run_all_or_nothing(
    client: httpx.Client, stack: Stack, tmp_path: Path, start: int, count: int
) -> str:
    """The id of an all-or-nothing import of ``count`` new people, asked to run."""
    people = write_people(tmp_path / "all_or_nothing.csv", start=start, count=count)
    file_path = upload(client, stack, "alice", people)
    job = create_job(client, stack, "alice", file_path, options={"all_or_nothing": True})
    client.post(stack.api(f"jobs/{job['id']}/execute/"), headers=stack.headers("alice"))
    return str(job["id"])


async def test_cancel_stops_an_all_or_nothing_job_while_it_checks_the_file(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    # the check pass never looked at a cancel request; the request's event then made the
    # run's own record fail ("stream changed concurrently"), and the job failed instead,
    # reporting tens of thousands of rows inserted that were never written
    job = {"id": _run_all_or_nothing(client, stack, tmp_path, 1_200_001, 150_000)}
    h = stack.headers("alice")
    with client.stream("GET", stack.api(f"jobs/{job['id']}/events"), headers=h) as r:
        for line in r.iter_lines():
            data = json.loads(line[5:]) if line.startswith("data:") else {}
            if data.get("type") == "job.progress" and data.get("rows_read", 0) > 0:
                break
    r = client.post(stack.api(f"jobs/{job['id']}/cancel/"), headers=h)
    assert r.status_code == 202, r.text
    final, _ = follow(client, stack, "alice", job["id"])
    assert final["status"] == "cancelled", final["error_message"]
    stats = final["statistics"]
    assert 0 < stats["rows_read"] < 150_000
    written = ("rows_imported", "rows_inserted", "chunks_committed")
    assert [stats[k] for k in written] == [0, 0, 0]
    stored = await table_rows(stack)
    assert not any(f"p{i:07d}" in stored for i in range(1_200_001, 1_350_001))


async def test_an_all_or_nothing_check_shows_in_the_jobs_record_as_it_goes(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    # the check pass wrote nothing to the job's record: `dm status` showed 0 % and no rows
    # read for as long as it lasted, as if the job were stuck
    job = {"id": _run_all_or_nothing(client, stack, tmp_path, 4_000_001, 150_000)}
    h = stack.headers("alice")
    seen: list[dict[str, Any]] = []
    for _ in range(600):
        now = client.get(stack.api(f"jobs/{job['id']}/"), headers=h).json()
        if now["status"] in TERMINAL:
            break
        if now["statistics"]["rows_read"] > 0:
            seen.append(now)
        await asyncio.sleep(0.05)
    final, _ = follow(client, stack, "alice", job["id"])
    # (the rows of other tests of this module may clash with one of these: then it fails
    # after its check, which is as much a check pass as a clean one)
    assert final["status"] in ("completed", "failed"), final["error_message"]
    if final["status"] == "completed":
        assert final["statistics"]["rows_inserted"] == 150_000
    checking = [s for s in seen if s["progress"] <= 50.0]
    assert checking, "the check pass never showed in the job's record"
    assert all(s["progress"] > 0 for s in checking)
    assert all(s["statistics"]["rows_inserted"] == 0 for s in checking)  # nothing written yet
