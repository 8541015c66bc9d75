"""The command line end to end against a tiny fake gateway (``http.server`` in a thread).

No NATS or PostgreSQL is involved: this checks the HTTP side only (streamed upload, SSE
following, polling fallback, error details and exit codes, the options sent, dry-run output,
the CSV error report download).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from services.cli.client import CHUNK_SIZE, GatewayClient
from services.cli.context import Context
from services.cli.main import main
from services.core.settings import Settings

PREFIX = "/api/data-management/"
TOKEN = "dm_test"
JOB_ID = "0f3c2a9e-1111-2222-3333-444455556666"


@dataclass
class FakeGateway:
    """What the fake server does and what it saw."""

    url: str = ""
    sse: str = "full"  # "full": progress then final status; "drop": one progress, then close
    final_status: str = "completed"
    uploads: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    dry_run: bool = False  # the job is a dry run: options say so and `changes` are filled in
    report: bytes = b""  # the CSV error report; empty: the report URL answers 404

    def job(self, status: str) -> dict[str, Any]:
        done = status in ("completed", "failed", "cancelled")
        job = {
            "id": JOB_ID,
            "title": "t",
            "job_type": "import",
            "model_name": "users.User",
            "status": status,
            "progress": 100.0 if done else 0.0,
            "statistics": {"rows_read": 3, "rows_imported": 2, "rows_rejected": 1} if done else {},
            "errors": [{"row": 3, "column": "email", "value": "nope", "message": "bad email"}]
            if done
            else [],
            "error_message": "model users.Nope does not exist" if status == "failed" else "",
            "started_at": "2026-12-01T10:00:00+00:00",
            "completed_at": "2026-12-01T10:00:01+00:00" if done else None,
        }
        if self.dry_run:
            job["options"] = {"mode": "upsert", "dry_run": True}
            job["changes"] = [
                {"row": n + 2, "key": f"user{n}", "fields": ["email", "phone"]} for n in range(12)
            ]
            if done:
                job["statistics"] = {
                    "rows_read": 20,
                    "rows_imported": 15,
                    "rows_inserted": 3,
                    "rows_updated": 12,
                    "rows_unchanged": 4,
                    "rows_skipped": 0,
                    "rows_rejected": 1,
                }
        return job


def make_handler(state: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None  # keep test output quiet

        def send_json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self.send_json(401, {"status_code": 401, "detail": "invalid token", "extra": None})
            return False

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_PUT(self) -> None:
            if not self.authorised():
                return
            name = self.path.removeprefix(PREFIX + "uploads/")
            data = self.body()
            state.uploads.append(
                {
                    "name": name,
                    "data": data,
                    "length": self.headers.get("Content-Length"),
                    "chunked": self.headers.get("Transfer-Encoding"),
                }
            )
            self.send_json(201, {"file_path": f"upload:abc/{name}", "size": len(data)})

        def do_POST(self) -> None:
            if not self.authorised():
                return
            path = self.path.removeprefix(PREFIX)
            if path == "jobs/":
                body = json.loads(self.body())
                state.created.append(body)
                if body["job_type"] == "export":
                    detail = "export is not available yet"
                    self.send_json(400, {"status_code": 400, "detail": detail, "extra": None})
                    return
                self.send_json(201, state.job("pending"))
            elif path == f"jobs/{JOB_ID}/execute/":
                self.send_json(202, state.job("queued"))
            else:
                self.send_json(404, {"status_code": 404, "detail": "not found", "extra": None})

        def do_GET(self) -> None:
            if not self.authorised():
                return
            path = self.path.removeprefix(PREFIX)
            if path == f"jobs/{JOB_ID}/events":
                self.send_events()
            elif path == f"jobs/{JOB_ID}/":
                state.polls += 1
                self.send_json(200, state.job(state.final_status))
            elif path == f"jobs/{JOB_ID}/rejections/download/" and state.report:
                self.send_response(200)  # no Content-Length: streamed until the close
                self.send_header("Content-Type", "text/csv; charset=utf-8")
                self.end_headers()
                for start in range(0, len(state.report), 1000):
                    self.wfile.write(state.report[start : start + 1000])
            else:
                self.send_json(404, {"status_code": 404, "detail": "not found", "extra": None})

        def send_events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            progress = {"type": "job.progress", "status": "running", "percent": 50.0}
            progress |= {"rows_read": 2, "rows_imported": 1, "rows_rejected": 1}
            self.wfile.write(b": hello\n\n")
            self.wfile.write(f"event: progress\ndata: {json.dumps(progress)}\n\n".encode())
            if state.sse == "full":
                final = json.dumps(state.job(state.final_status))
                self.wfile.write(f"event: status\ndata: {final}\n\n".encode())
            self.wfile.flush()  # then the handler returns and HTTP/1.0 closes the stream

    return Handler


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    state = FakeGateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_dm(gateway: FakeGateway, *argv: str, token: str = TOKEN) -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(
        Settings(gateway_url=gateway.url, token=token),
        out=Console(file=out, width=120),
        err=Console(file=err, width=120),
    )
    code = main(list(argv), ctx=ctx)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("name,email\nAra,ara@example.org\nBo,bo@example.org\nCy,nope\n")
    return path


def test_upload_streams_with_content_length_not_chunked(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "big file.csv"
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 3)  # more than two chunks
    path.write_bytes(data)
    with GatewayClient(gateway.url, TOKEN) as client:
        answer = client.upload(path)
    assert answer == {"file_path": "upload:abc/big%20file.csv", "size": len(data)}
    seen = gateway.uploads[0]
    assert seen["length"] == str(len(data))
    assert seen["chunked"] is None
    assert seen["data"] == data


def test_import_follows_events_and_summarises(gateway: FakeGateway, people: Path) -> None:
    result = run_dm(
        gateway,
        "import",
        "--file",
        str(people),
        "--model",
        "users.User",
        "--mapping",
        "name=full_name",
        "email=email",
        "--delimiter",
        "tab",
    )
    assert result.code == 0, result.err
    created = gateway.created[0]
    assert created["format"] == "csv"
    assert created["file_path"] == "upload:abc/people.csv"
    assert created["options"]["field_mapping"] == {"name": "full_name", "email": "email"}
    assert created["options"]["delimiter"] == "\t"
    assert created["title"] == "import people.csv"
    assert "running" in result.out  # the progress event was shown
    assert "bad email" in result.out
    assert gateway.polls == 0  # the stream ended the job; no polling needed


def test_dropped_stream_falls_back_to_polling(gateway: FakeGateway, people: Path) -> None:
    gateway.sse = "drop"
    result = run_dm(gateway, "import", "--file", str(people), "--model", "users.User")
    assert result.code == 0, result.err
    assert gateway.polls >= 1
    assert "completed" in result.out


def test_failed_job_exits_one_with_the_error_on_stderr(gateway: FakeGateway, people: Path) -> None:
    gateway.final_status = "failed"
    result = run_dm(gateway, "import", "--file", str(people), "--model", "users.Nope")
    assert result.code == 1
    assert "model users.Nope does not exist" in result.err


def test_bad_token_exits_two_with_the_servers_detail(gateway: FakeGateway, people: Path) -> None:
    result = run_dm(gateway, "import", "--file", str(people), "--model", "m", token="wrong")
    assert result.code == 2
    assert "401" in result.err
    assert "invalid token" in result.err
    assert "Traceback" not in result.err


def test_export_refused_by_the_server_exits_two(gateway: FakeGateway, tmp_path: Path) -> None:
    output = tmp_path / "users.csv"
    result = run_dm(gateway, "export", "--model", "users.User", "--output", str(output))
    assert result.code == 2
    assert "export is not available yet" in result.err
    assert not output.exists()
    assert gateway.created[0]["options"] == {}


def test_export_sends_fields_filters_and_order(gateway: FakeGateway, tmp_path: Path) -> None:
    run_dm(
        gateway,
        "export",
        "--model",
        "users.User",
        "--output",
        str(tmp_path / "users.csv"),
        "--fields",
        "username,email",
        "--filter",
        "role",
        "in",
        "staff,faculty",
        "--filter",
        "email",
        "contains",
        "@example.org",
        "--order-by=-date_joined,username",
    )
    assert gateway.created[0]["options"] == {
        "fields": ["username", "email"],
        "filters": [
            {"field": "role", "op": "in", "value": ["staff", "faculty"]},
            {"field": "email", "op": "contains", "value": "@example.org"},
        ],
        "order_by": ["-date_joined", "username"],
    }


def test_bad_filter_is_refused_before_asking_the_server(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    output = str(tmp_path / "users.csv")
    result = run_dm(
        gateway, "export", "--model", "m", "--output", output, "--filter", "a", "like", "b"
    )
    assert result.code == 2
    assert "unknown operator" in result.err
    assert gateway.created == []


def test_import_sends_only_the_options_given(gateway: FakeGateway, people: Path) -> None:
    result = run_dm(
        gateway,
        "import",
        "--file",
        str(people),
        "--model",
        "users.User",
        "--all-or-nothing",
        "--max-errors",
        "5",
        "--calendar",
        "jalali",
        "--time-zone",
        "Asia/Tehran",
        "--no-fold-arabic",
    )
    assert result.code == 0, result.err
    assert gateway.created[0]["options"] == {
        "all_or_nothing": True,
        "max_error_percent": 5.0,
        "calendar": "jalali",
        "time_zone": "Asia/Tehran",
        "fold_arabic_letters": False,
    }
    assert "dry run" not in result.out


def test_dry_run_prints_what_would_change(gateway: FakeGateway, people: Path) -> None:
    gateway.dry_run = True
    result = run_dm(
        gateway,
        "import",
        "--file",
        str(people),
        "--model",
        "users.User",
        "--mode",
        "upsert",
        "--dry-run",
    )
    assert result.code == 0, result.err
    assert gateway.created[0]["options"] == {"mode": "upsert", "dry_run": True}
    out = result.out
    assert "would import" in out
    # after the summary: the notice, the counts, then the first ten changed rows
    assert out.index("Job ") < out.index("dry run: nothing was written")
    assert "would insert 3, update 12, leave 4 unchanged, skip 0, reject 1" in out
    assert "First 10 of 12 rows that would change" in out
    assert "user9" in out
    assert "user10" not in out
    assert "email, phone" in out


def test_rejections_report_is_streamed_to_the_file(gateway: FakeGateway, tmp_path: Path) -> None:
    rows = "".join(f'{n},email,bad{n},not an email,"a,bad{n}"\r\n' for n in range(2, 500))
    gateway.report = ("\ufeffrow,column,value,message,original\r\n" + rows).encode()
    output = tmp_path / "errors.csv"
    result = run_dm(gateway, "rejections", JOB_ID, "--output", str(output))
    assert result.code == 0, result.err
    assert output.read_bytes() == gateway.report
    assert not (tmp_path / "errors.csv.part").exists()
    assert str(output) in result.out
    assert f"{len(gateway.report):,} bytes" in result.out


def test_failed_report_download_leaves_no_file(gateway: FakeGateway, tmp_path: Path) -> None:
    output = tmp_path / "errors.csv"
    result = run_dm(gateway, "rejections", JOB_ID, "--output", str(output))
    assert result.code == 2
    assert "404" in result.err
    assert list(tmp_path.iterdir()) == []


def test_report_into_a_missing_directory_is_a_usage_error(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    result = run_dm(gateway, "rejections", JOB_ID, "--output", str(tmp_path / "no" / "e.csv"))
    assert result.code == 2
    assert "no such directory" in result.err


def test_missing_file_is_a_clear_usage_error(gateway: FakeGateway, tmp_path: Path) -> None:
    result = run_dm(gateway, "import", "--file", str(tmp_path / "no.csv"), "--model", "m")
    assert result.code == 2
    assert "no such file" in result.err
    assert gateway.uploads == []


def test_unreachable_gateway_exits_two(people: Path) -> None:
    unreachable = FakeGateway(url="http://127.0.0.1:9")
    result = run_dm(unreachable, "status")
    assert result.code == 2
    assert "cannot reach the gateway" in result.err


@pytest.mark.parametrize("command", ["backup", "sync", "cleanup"])
def test_later_commands_are_not_available_yet(gateway: FakeGateway, command: str) -> None:
    result = run_dm(gateway, command, "now")
    assert result.code == 2
    assert result.err.startswith("not available yet:")
