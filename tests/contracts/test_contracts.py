"""Wire contracts of the job messages and the bus's subject names.

Pure unit tests: no servers. The schema snapshots under ``schemas/`` are the committed wire
format; rewrite them with ``DM_UPDATE_SNAPSHOTS=1`` after reviewing a deliberate change.
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from itertools import permutations
from pathlib import Path
from typing import Any

import msgspec
import pytest

from contracts import jobs
from contracts.base import Command, ErrorInfo, Event, Progress
from contracts.jobs import (
    CancelJob,
    CreateJob,
    DeleteJob,
    ExecuteJob,
    JobCancelled,
    JobCancelRequested,
    JobCheckpointed,
    JobCommand,
    JobCompleted,
    JobCreated,
    JobDeleted,
    JobEvent,
    JobFailed,
    JobFired,
    JobOptions,
    JobProgress,
    JobQueued,
    JobStarted,
    JobStatistics,
    JobUpdated,
    RejectedRow,
    RequestRun,
    UpdateJob,
)
from contracts.subjects import Subjects

SCHEMAS = Path(__file__).parent / "schemas"
UPDATE_ENV = "DM_UPDATE_SNAPSHOTS"

UNIONS: dict[str, Any] = {
    "JobCommand": JobCommand,
    "JobEvent": JobEvent,
    "JobProgress": JobProgress,
}


def _members(union: Any) -> tuple[type[msgspec.Struct], ...]:
    args = typing.get_args(union)
    return tuple(args) if args else (union,)


UNION_OF: dict[type[msgspec.Struct], Any] = {
    cls: union for union in UNIONS.values() for cls in _members(union)
}

# --- sample messages: every field set to a non-default value ------------------------------

_OPTIONS = JobOptions(
    mode="upsert", encoding="cp1256", delimiter=";", field_mapping={"نام کاربری": "username"}
)
_STATS = JobStatistics(
    rows_read=10,
    rows_imported=7,
    rows_rejected=3,
    chunks_committed=2,
    rows_inserted=5,
    rows_updated=1,
    rows_unchanged=1,
    rows_skipped=0,
)
_REJECTED = [
    RejectedRow(row=4, column="email", value="nope", message="'nope' is not a valid email"),
    RejectedRow(row=9, column=None, value="a,b", message="row has 2 cells; the header has 3"),
]
_CMD: dict[str, Any] = {"correlation_id": "corr-1", "actor": "registrar"}
_EVT: dict[str, Any] = {
    "event_id": "evt-1",
    "stream": "job-j1",
    "version": 3,
    "occurred_at": "2024-05-06T07:08:09+00:00",
    "actor": "registrar",
    "correlation_id": "corr-1",
}

SAMPLES: list[msgspec.Struct] = [
    CreateJob(
        **_CMD,
        job_id="j1",
        title="Users",
        job_type="import",
        model_name="users.User",
        format="csv",
        file_path="in/users.csv",
        options=_OPTIONS,
    ),
    UpdateJob(
        **_CMD,
        job_id="j1",
        title="New",
        model_name="users.User",
        format="xlsx",
        file_path="in/u.xlsx",
        options=_OPTIONS,
    ),
    DeleteJob(**_CMD, job_id="j1"),
    ExecuteJob(**_CMD, job_id="j1", run_id="r1"),
    RequestRun(**_CMD, job_id="j1"),
    CancelJob(**_CMD, job_id="j1"),
    JobCreated(
        **_EVT,
        job_id="j1",
        title="Users",
        job_type="export",
        model_name="users.User",
        format="jsonl",
        file_path="out/u.jsonl",
        options=_OPTIONS,
        created_by="admin",
    ),
    JobUpdated(
        **_EVT,
        job_id="j1",
        title="T",
        model_name="users.User",
        format="json",
        file_path="x.json",
        options=_OPTIONS,
    ),
    JobDeleted(**_EVT, job_id="j1"),
    JobQueued(**_EVT, job_id="j1", run_id="r1"),
    JobStarted(**_EVT, job_id="j1", run_id="r1", worker="w-7", resumed_from_row=500),
    JobFired(**_EVT, job_id="j1", fire_time="2026-03-01T22:30:00+00:00", queued=False),
    JobCheckpointed(
        **_EVT,
        job_id="j1",
        run_id="r1",
        last_row=1000,
        statistics=_STATS,
        rejected=_REJECTED,
        percent=42.5,
    ),
    JobCompleted(**_EVT, job_id="j1", run_id="r1", statistics=_STATS),
    JobFailed(
        **_EVT,
        job_id="j1",
        run_id="r1",
        statistics=_STATS,
        error=ErrorInfo(code="missing_column", message="no email", retryable=True),
    ),
    JobCancelRequested(**_EVT, job_id="j1"),
    JobCancelled(**_EVT, job_id="j1", run_id="r1", statistics=_STATS),
    JobProgress(
        correlation_id="corr-1",
        job_id="j1",
        run_id="r1",
        status="running",
        rows_read=10,
        rows_imported=7,
        rows_rejected=3,
        percent=12.5,
        bytes_read=100,
        bytes_total=800,
        message="chunk 2",
    ),
]


def _id(msg: object) -> str:
    return type(msg).__name__


def _tag(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str), f"{cls.__name__} has no string wire tag"
    return tag


def test_samples_cover_every_message_class() -> None:
    """Each Command/Event/Progress class of contracts.jobs is in a union and has a sample."""
    declared = {
        obj
        for obj in vars(jobs).values()
        if isinstance(obj, type)
        and issubclass(obj, Command | Event | Progress)
        and obj not in (Command, Event, Progress)
    }
    assert declared == set(UNION_OF), "a message class is missing from JobCommand/Event/Progress"
    assert {type(s) for s in SAMPLES} == declared
    assert len(SAMPLES) == len(declared)


@pytest.mark.parametrize("msg", SAMPLES, ids=_id)
def test_round_trip_keeps_class_and_fields(msg: msgspec.Struct) -> None:
    union = UNION_OF[type(msg)]
    wire = msgspec.json.encode(msg)
    assert json.loads(wire)["type"] == _tag(type(msg))
    back = msgspec.json.decode(wire, type=union)
    assert type(back) is type(msg)
    assert back == msg
    assert msgspec.structs.asdict(back) == msgspec.structs.asdict(msg)


def test_tags_are_unique_across_all_messages() -> None:
    tags = [_tag(cls) for cls in UNION_OF]
    duplicates = sorted({t for t in tags if tags.count(t) > 1})
    assert not duplicates, f"wire tags reused: {duplicates}"
    assert all(cls.__struct_config__.tag_field == "type" for cls in UNION_OF)


@pytest.mark.parametrize("msg", SAMPLES, ids=_id)
def test_messages_are_frozen(msg: msgspec.Struct) -> None:
    for name in msg.__struct_fields__:
        before = getattr(msg, name)
        with pytest.raises(AttributeError):
            setattr(msg, name, before)
        assert getattr(msg, name) is before


@pytest.mark.parametrize("msg", SAMPLES, ids=_id)
def test_decoding_skips_unknown_fields(msg: msgspec.Struct) -> None:
    """A newer producer adds a field; an older consumer still decodes the message."""
    data = msgspec.to_builtins(msg)
    assert isinstance(data, dict)
    data["added_in_a_later_version"] = {"nested": [1, 2, 3]}
    back = msgspec.json.decode(msgspec.json.encode(data), type=UNION_OF[type(msg)])
    assert type(back) is type(msg)
    assert back == msg


def test_unknown_tag_is_refused() -> None:
    wire = json.dumps({"type": "job.never_defined", "correlation_id": "c", "actor": "a"})
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(wire, type=JobCommand)


# --- schema snapshots -----------------------------------------------------------------------


def _schema_text(union: Any) -> str:
    return (
        json.dumps(msgspec.json.schema(union), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


@pytest.mark.parametrize("name", sorted(UNIONS))
def test_schema_snapshot(name: str) -> None:
    path = SCHEMAS / f"{name}.json"
    current = _schema_text(UNIONS[name])
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current, encoding="utf-8")
    hint = (
        f"The wire schema of {name} differs from {path}. This is a change of the bus contract "
        "that other university systems depend on: review it against the evolution rules "
        "(new fields need defaults, no type changes, no reused tags), then re-run with "
        f"{UPDATE_ENV}=1 to rewrite the snapshot and commit it."
    )
    assert path.is_file(), f"missing snapshot {path}. {hint}"
    committed = path.read_text(encoding="utf-8")
    if json.loads(committed) != json.loads(current):
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile=f"committed/{name}.json",
                tofile=f"current/{name}.json",
            )
        )
        pytest.fail(f"{hint}\n{diff}")


# --- subjects -------------------------------------------------------------------------------

PREFIXES = ("dm", "dm2", "t0a1b2c3d4", "tenant_a", "uni_north")
SERVICES = ("importer", "exporter", "sync", "backup")


def _matches(pattern: str, subject: str) -> bool:
    """NATS wildcard rules: ``*`` is one token, a final ``>`` is one or more tokens."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or (token not in ("*", sub[i])):
            return False
    return len(pat) == len(sub)


def test_wildcard_matcher_follows_nats_rules() -> None:
    assert _matches("a.>", "a.b.c")
    assert not _matches("a.>", "a")
    assert _matches("a.*.c", "a.b.c")
    assert not _matches("a.*", "a.b.c")
    assert not _matches("a.b", "a.b.c")


def _concrete(s: Subjects) -> list[str]:
    return [
        s.command("importer", "execute"),
        s.request("importer", "create"),
        s.event("job", "j1", "created"),
        s.progress("job", "j1"),
    ]


def _wildcards(s: Subjects) -> list[str]:
    return [s.all_commands, s.all_events, s.all_progress, s.events_of("job", "j1")]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_names_live_under_their_prefix(prefix: str) -> None:
    s = Subjects(prefix)
    for name in _concrete(s) + _wildcards(s):
        assert name.startswith(prefix + "."), name
    assert _matches(s.all_commands, s.command("importer", "execute"))
    assert _matches(s.all_events, s.event("job", "j1", "created"))
    assert _matches(s.events_of("job", "j1"), s.event("job", "j1", "created"))
    assert not _matches(s.events_of("job", "j1"), s.event("job", "j2", "created"))
    assert _matches(s.all_progress, s.progress("job", "j1"))
    # request/reply subjects must not be captured by any stream
    request = s.request("importer", "create")
    assert not any(_matches(w, request) for w in (s.all_commands, s.all_events, s.all_progress))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_stream_names_are_uppercase_and_distinct(prefix: str) -> None:
    s = Subjects(prefix)
    streams = [s.commands_stream, s.events_stream, s.progress_stream, s.object_store]
    for name in streams:
        assert name == name.upper()
        assert not set(name) & set(". *>"), f"{name!r} is not a valid NATS stream name"
    assert len(set(streams)) == len(streams)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_durable_differs_per_service(prefix: str) -> None:
    s = Subjects(prefix)
    durables = [s.durable(service) for service in SERVICES]
    assert len(set(durables)) == len(SERVICES)
    assert all(not set(d) & set(". *>") for d in durables)


@pytest.mark.parametrize(("a", "b"), list(permutations(PREFIXES, 2)))
def test_prefixes_are_isolated(a: str, b: str) -> None:
    sa, sb = Subjects(a), Subjects(b)
    for subject in _concrete(sa):
        for wildcard in _wildcards(sb):
            assert not _matches(wildcard, subject), f"{subject} matches {wildcard}"
    assert sa.commands_stream != sb.commands_stream


@pytest.mark.parametrize("bad", ["uni-a", "DM", "a.b", "", "1dm", "dm>"])
def test_prefixes_that_could_share_a_stream_are_refused(bad: str) -> None:
    # upper-casing for stream names must be one-to-one, so only [a-z][a-z0-9_]* is taken
    with pytest.raises(ValueError, match="bus prefix"):
        Subjects(bad)
