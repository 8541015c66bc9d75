"""Exports end to end: HTTP and ``dm export``, every format, filters, safe spreadsheets."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from services.core.settings import load_settings
from tests.support.people import FIELDS, person
from tests.support.servers import Servers, create_database, delete_streams, drop_database
from tests.support.stack import Stack, make_users, run_stack
from tests.test_e2e_import import follow, upload

pytestmark = pytest.mark.e2e

COUNT = 300


@pytest.fixture(scope="module")
async def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("export")
    (workdir / "imports").mkdir()
    url, name = await create_database(servers)
    prefix = f"x{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        env={},
        nats_url=servers.nats_url,
        database_url=url,
        bus_prefix=prefix,
        imports_root=str(workdir / "imports"),
        data_dir=str(workdir / "data"),
        export_chunk_size=50,
    )
    try:
        with run_stack(settings, workdir) as running_stack:
            running_stack.tokens = await make_users(
                url, {"admin": True, "alice": False, "bob": False}
            )
            _load_people(running_stack, workdir)
            yield running_stack
    finally:
        await delete_streams(servers, prefix)
        await drop_database(servers, name)


def _load_people(stack: Stack, workdir: Path) -> None:
    path = workdir / "people.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for i in range(1, COUNT + 1):
            row = person(i)
            if i == 7:
                row["last_name"] = '=HYPERLINK("http://evil.example","click")'
            if i % 2 == 0:
                row["role"] = "staff"
            writer.writerow(row)
    with httpx.Client(timeout=30) as client:
        job = _run(
            client,
            stack,
            "alice",
            {
                "title": "people",
                "job_type": "import",
                "model_name": "users.User",
                "format": "csv",
                "file_path": upload(client, stack, "alice", path),
            },
        )
        assert job["status"] == "completed"


def _run(client: httpx.Client, stack: Stack, user: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(stack.api("jobs/"), json=body, headers=stack.headers(user))
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    r = client.post(stack.api(f"jobs/{job_id}/execute/"), headers=stack.headers(user))
    assert r.status_code == 202, r.text
    final, _ = follow(client, stack, user, job_id)
    return final


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as c:
        yield c


def _export(client: httpx.Client, stack: Stack, fmt: str, **options: Any) -> bytes:
    final = _run(
        client,
        stack,
        "alice",
        {
            "title": "out",
            "job_type": "export",
            "model_name": "users.User",
            "format": fmt,
            "file_path": f"people.{fmt}",
            "options": options,
        },
    )
    assert final["status"] == "completed", final
    r = client.get(stack.api(f"jobs/{final['id']}/download/"), headers=stack.headers("alice"))
    assert r.status_code == 200, r.text
    bob = client.get(stack.api(f"jobs/{final['id']}/download/"), headers=stack.headers("bob"))
    assert bob.status_code == 404
    return r.content


async def test_csv_export_keeps_values_and_neutralises_formulas(
    stack: Stack, client: httpx.Client
) -> None:
    data = _export(client, stack, "csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == COUNT
    by_name = {r["username"]: r for r in rows}
    first = person(1)
    assert by_name["p0000001"]["student_number"] == first["student_number"]  # "0000000001"
    assert by_name["p0000001"]["national_id"] == first["national_id"]
    assert by_name["p0000007"]["last_name"].startswith("'=HYPERLINK")
    # booleans and instants read back as they were imported
    assert by_name["p0000001"]["is_active"] == "true"
    assert datetime.fromisoformat(by_name["p0000001"]["date_joined"]) == datetime.fromisoformat(
        first["date_joined"]
    )
    assert by_name["p0000001"]["birth_date"] == first["birth_date"]


async def test_filtered_json_and_jsonl_exports(stack: Stack, client: httpx.Client) -> None:
    options = {
        "fields": ["username", "role", "student_number"],
        "filters": [{"field": "role", "op": "eq", "value": "staff"}],
        "order_by": ["-username"],
    }
    items = json.loads(_export(client, stack, "json", **options))
    assert len(items) == COUNT // 2
    assert list(items[0]) == ["username", "role", "student_number"]
    assert {i["role"] for i in items} == {"staff"}
    assert [i["username"] for i in items] == sorted((i["username"] for i in items), reverse=True)
    lines = _export(client, stack, "jsonl", **options).decode().splitlines()
    assert [json.loads(x) for x in lines] == items
    # JSON keeps values exact: no formula prefix there
    everyone = json.loads(_export(client, stack, "json", fields=["username", "last_name"]))
    assert {
        "username": "p0000007",
        "last_name": '=HYPERLINK("http://evil.example","click")',
    } in everyone


async def test_xlsx_export_keeps_ids_as_text(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "out.xlsx"
    path.write_bytes(_export(client, stack, "xlsx"))
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert len(rows) == COUNT + 1
    by_name = {r[header.index("username")]: r for r in rows[1:]}
    assert by_name["p0000001"][header.index("student_number")] == "0000000001"
    # an instant is exact ISO text with its offset: no ambiguous local wall time
    joined = by_name["p0000001"][header.index("date_joined")]
    assert isinstance(joined, str)
    assert datetime.fromisoformat(joined) == datetime.fromisoformat(person(1)["date_joined"])
    # a string cell, never a formula: the text is exact and nothing runs
    assert (
        by_name["p0000007"][header.index("last_name")]
        == '=HYPERLINK("http://evil.example","click")'
    )
    with zipfile.ZipFile(path) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        assert all(b"<f>" not in book.read(n) and b"<f " not in book.read(n) for n in sheets)


async def test_a_filter_value_of_the_wrong_type_is_a_clear_400(
    stack: Stack, client: httpx.Client
) -> None:
    for field, value in (("birth_date", "notadate"), ("is_active", "maybe")):
        r = client.post(
            stack.api("jobs/"),
            headers=stack.headers("alice"),
            json={
                "title": "x",
                "job_type": "export",
                "model_name": "users.User",
                "format": "csv",
                "options": {"filters": [{"field": field, "op": "gt", "value": value}]},
            },
        )
        assert r.status_code == 400, r.text
        assert f"filter on {field}" in r.text


async def test_unknown_export_field_is_a_clear_400(stack: Stack, client: httpx.Client) -> None:
    r = client.post(
        stack.api("jobs/"),
        headers=stack.headers("alice"),
        json={
            "title": "x",
            "job_type": "export",
            "model_name": "users.User",
            "format": "csv",
            "options": {"fields": ["username", "password"]},
        },
    )
    assert r.status_code == 400
    assert "password" in r.text


async def test_dm_export_writes_the_file_locally(stack: Stack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env.update(DM_GATEWAY_URL=stack.base_url, DM_TOKEN=stack.tokens["alice"])
    out = tmp_path / "users_export.csv"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dm")),
            "export",
            "--model",
            "users.User",
            "--output",
            str(out),
            "--format",
            "csv",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == COUNT


async def test_exports_can_write_jalali_dates(stack: Stack, client: httpx.Client) -> None:
    items = json.loads(
        _export(client, stack, "json", fields=["username", "birth_date"], calendar="jalali")
    )
    by_name = {i["username"]: i["birth_date"] for i in items}
    assert by_name["p0000001"] == "1379/11/15"  # 2001-02-03 in the Solar Hijri calendar
    rows = list(
        csv.DictReader(
            io.StringIO(
                _export(
                    client, stack, "csv", fields=["username", "birth_date"], calendar="jalali"
                ).decode("utf-8-sig")
            )
        )
    )
    assert {r["username"]: r["birth_date"] for r in rows}["p0000001"] == "1379/11/15"


def _assert_imports_back_unchanged(
    client: httpx.Client, stack: Stack, path: Path, fmt: str
) -> None:
    """A dry-run upsert of the exported file finds every stored record unchanged."""
    final = _run(
        client,
        stack,
        "alice",
        {
            "title": "back",
            "job_type": "import",
            "model_name": "users.User",
            "format": fmt,
            "file_path": upload(client, stack, "alice", path),
            "options": {"mode": "upsert", "dry_run": True},
        },
    )
    assert final["status"] == "completed", final["error_message"]
    stats = final["statistics"]
    assert stats["rows_unchanged"] == COUNT, (stats, final["changes"][:3], final["errors"][:3])


async def test_an_xlsx_export_imports_back_unchanged(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "roundtrip.xlsx"
    path.write_bytes(_export(client, stack, "xlsx"))
    _assert_imports_back_unchanged(client, stack, path, "xlsx")


async def test_a_csv_export_without_formula_escapes_imports_back_unchanged(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    """For files read by programs: no apostrophe, so importing the file again finds every
    record unchanged (with the apostrophe, row 7's last name would read as changed)."""
    data = _export(client, stack, "csv", escape_formulas=False)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {r["username"]: r for r in rows}["p0000007"]["last_name"] == (
        '=HYPERLINK("http://evil.example","click")'
    )
    path = tmp_path / "roundtrip.csv"
    path.write_bytes(data)
    _assert_imports_back_unchanged(client, stack, path, "csv")


def _admin(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``dm`` admin commands, straight on the stack's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env.update(DM_DATABASE_URL=stack.settings.database_url or "")
    return subprocess.run(
        [str(Path(sys.executable).with_name("dm")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _user_with_token(stack: Stack, name: str) -> tuple[str, str]:
    """A new user, by the admin commands: (its token, the token's id)."""
    created = _admin(stack, "users", "create", name)
    assert created.returncode == 0, created.stderr
    made = _admin(stack, "tokens", "create", name)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    listed = _admin(stack, "tokens", "list", name)
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout  # only its first characters
    [line] = [row for row in listed.stdout.splitlines() if f" {name} " in row]
    assert token[:8] in line
    return token, line.split()[0]


async def test_tokens_are_listed_without_secrets_and_revoked_at_once(
    stack: Stack, client: httpx.Client
) -> None:
    assert _admin(stack, "users", "create", "x; drop").returncode == 1
    for twin in ("ＡＬＩＣＥ", "Alice"):  # full-width or another case: the same name to a person
        refused = _admin(stack, "users", "create", twin)
        assert refused.returncode == 1
        assert "looks the same as the existing user 'alice'" in refused.stderr
    token, token_id = _user_with_token(stack, "carol")
    h = {"Authorization": f"Bearer {token}"}
    assert client.get(stack.api("jobs/"), headers=h).status_code == 200

    deactivated = _admin(stack, "users", "deactivate", "carol")
    assert deactivated.returncode == 0, deactivated.stderr
    assert client.get(stack.api("jobs/"), headers=h).status_code == 401
    assert _admin(stack, "users", "activate", "carol").returncode == 0
    assert client.get(stack.api("jobs/"), headers=h).status_code == 200

    revoked = _admin(stack, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert client.get(stack.api("jobs/"), headers=h).status_code == 401
    assert _admin(stack, "tokens", "revoke", token_id).returncode == 1  # gone already


async def test_an_open_event_stream_ends_when_its_token_is_revoked(
    stack: Stack, client: httpx.Client
) -> None:
    """Regression: a stream opened before the revocation went on sending progress."""
    token, token_id = _user_with_token(stack, "dave")
    h = {"Authorization": f"Bearer {token}"}
    body = {"title": "t", "job_type": "export", "model_name": "users.User", "format": "csv"}
    r = client.post(stack.api("jobs/"), json={**body, "file_path": "d.csv"}, headers=h)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]  # never executed: the stream stays open, sending keep-alives
    events: list[str] = []
    with client.stream("GET", stack.api(f"jobs/{job_id}/events"), headers=h, timeout=30) as s:
        lines = s.iter_lines()
        for text in lines:
            if text.startswith("event:"):
                events.append(text.split(":", 1)[1].strip())
                break  # the job's status: the stream is open
        assert _admin(stack, "tokens", "revoke", token_id).returncode == 0
        for text in lines:  # ends by itself, well before the client's timeout
            if text.startswith("event:"):
                events.append(text.split(":", 1)[1].strip())
            elif text.startswith("data:") and events[-1] == "error":
                assert "revoked" in text
    assert events == ["status", "error"]
