"""REST request bodies: unknown fields are refused so typos are caught."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "ChildImportBody",
    "FilterBody",
    "JobCreateBody",
    "JobOptionsBody",
    "JobUpdateBody",
    "UploadResult",
]


# bounds on what a client sends: a job is small, its file travels separately
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# an imports-root path or an upload's file_path (upload: + 32 hex + / + a 255-byte name)
FilePath = Annotated[str, msgspec.Meta(max_length=1024)]


class FilterBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    field: str
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "contains", "startswith", "in", "isnull"] = (
        "eq"
    )
    value: str | int | float | bool | list[str] | None = None


class ChildImportBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Import of JSON / JSON Lines: an array in each record whose items become rows of
    ``model``; ``parent_key`` maps a parent field to the child field it fills."""

    model: str
    parent_key: dict[str, str]
    field_mapping: dict[str, str] = msgspec.field(default_factory=dict)


class JobOptionsBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Import: ``mode``, ``encoding``, ``delimiter``, ``field_mapping`` (header → field).
    Export: ``fields`` (and their order), ``filters``, ``order_by`` (``-field`` descends),
    ``escape_formulas`` (CSV: an apostrophe before text starting with = + - @ tab CR, on by
    default; off for files that programs read). ``field_mapping`` names may be dotted paths
    into nested JSON objects (``name.fa.first``); ``children`` maps an array's name in each
    JSON record to the model its items load into.
    """

    mode: Literal["insert", "upsert", "skip"] = "insert"
    encoding: str | None = None
    # one character that is not a quote or a line break, as a CSV reader needs
    delimiter: Annotated[str, msgspec.Meta(pattern='^[^"\r\n]$')] | None = None
    field_mapping: dict[str, str] = msgspec.field(default_factory=dict)
    calendar: Literal["gregorian", "jalali", "auto"] = "auto"
    time_zone: str = "Asia/Tehran"
    fold_arabic_letters: bool = True
    sheet: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    header_row: Annotated[int, msgspec.Meta(ge=1, le=1_048_576)] = 1
    dry_run: bool = False
    all_or_nothing: bool = False
    max_error_percent: float | None = None
    fields: list[str] = msgspec.field(default_factory=list)
    filters: list[FilterBody] = msgspec.field(default_factory=list)
    order_by: list[str] = msgspec.field(default_factory=list)
    escape_formulas: bool = True
    children: dict[str, ChildImportBody] = msgspec.field(default_factory=dict)


class ScheduleBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``{"cron": "0 2 * * *", "timezone": "Asia/Tehran"}``, or once:
    ``{"at": "2026-12-24T02:00+03:30"}``."""

    cron: str | None = None
    timezone: str = "UTC"
    at: str | None = None


class JobCreateBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title
    job_type: Literal["import", "export"]
    model_name: ModelName
    format: Literal["csv", "json", "jsonl", "xlsx"]
    file_path: FilePath = ""
    options: JobOptionsBody = msgspec.field(default_factory=JobOptionsBody)
    schedule: ScheduleBody | None = None


class JobUpdateBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    model_name: ModelName | None = None
    format: Literal["csv", "json", "jsonl", "xlsx"] | None = None
    file_path: FilePath | None = None
    options: JobOptionsBody | None = None
    schedule: ScheduleBody | None = None
    clear_schedule: bool = False


class UploadResult(msgspec.Struct, frozen=True, kw_only=True):
    file_path: str
    size: int


JobView = dict[str, Any]
