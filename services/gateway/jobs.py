"""``/api/data-management/jobs/``: reads from the jobs projection, writes become commands."""

from __future__ import annotations

import codecs
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import Provide
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.jobs import (
    CancelJob,
    CreateJob,
    DeleteJob,
    JobOptions,
    RequestRun,
    Schedule,
    UpdateJob,
)
from services.core.auth import Principal
from services.core.catalogue import FieldError, Model, UnknownModelError, get_model
from services.core.catalogue.calendar import parse_date, parse_datetime
from services.core.settings import Settings
from services.core.storage import (
    UPLOAD_SCHEME,
    FileNotAllowedError,
    StorageError,
    local_path,
    upload_owner,
)
from services.core.tables import job_rejections, jobs
from services.gateway.auth import require_principal
from services.gateway.bus import ServiceClient, owner_of
from services.gateway.schemas import (
    ChildImportBody,
    FilterBody,
    JobCreateBody,
    JobOptionsBody,
    JobUpdateBody,
    ScheduleBody,
)

__all__ = ["JobController", "job_json", "load_visible_job"]

PUBLIC_FIELDS = (
    "id",
    "title",
    "job_type",
    "model_name",
    "format",
    "file_path",
    "options",
    "status",
    "progress",
    "statistics",
    "errors",
    "error_message",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "run_id",
    "cancel_requested",
    "changes",
    "schedule",
    "last_fired_at",
)

# a job's body (title, options, schedule) is small; its file is uploaded separately
JOB_BODY_MAX_BYTES = 256 * 1024


def job_json(data: dict[str, Any]) -> dict[str, Any]:
    view = {k: data.get(k) for k in PUBLIC_FIELDS}
    if data.get("result_path"):
        view["download_url"] = f"/api/data-management/jobs/{data['id']}/download/"
    for key in ("created_at", "updated_at", "started_at", "completed_at", "last_fired_at"):
        value = view[key]
        if value is not None and not isinstance(value, str):
            view[key] = value.isoformat()
    return view


def _visible(principal: Principal) -> ColumnElement[bool]:
    return true() if principal.is_superuser else jobs.c.created_by == principal.username


async def load_visible_job(
    engine: AsyncEngine, job_id: str, principal: Principal
) -> dict[str, Any]:
    """The job's projection row; 404 for unknown jobs and for jobs of other users."""
    if "\x00" in job_id:
        raise NotFoundException(detail="job not found")
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(jobs).where(jobs.c.id == job_id, _visible(principal)))
        ).first()
    if row is None:
        raise NotFoundException(detail=f"job {job_id} not found")
    return job_json(dict(row._mapping))


def _options(body: JobOptionsBody | None) -> JobOptions | None:
    if body is None:
        return None
    return msgspec.convert(msgspec.to_builtins(body), JobOptions)


def _schedule(body: ScheduleBody | None) -> Schedule | None:
    return None if body is None else Schedule(cron=body.cron, timezone=body.timezone, at=body.at)


def _check_filter_value(model: Model, condition: FilterBody) -> None:
    """A filter's value must read as its field's type, so the export cannot fail later."""
    if condition.op in ("isnull", "contains", "startswith") or condition.value is None:
        return
    field = model.field(condition.field)
    values = condition.value if isinstance(condition.value, list) else [condition.value]
    for value in values:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            if field.kind == "date":
                parse_date(text, calendar="auto")
            elif field.kind == "datetime":
                parse_datetime(text, calendar="auto")
            elif field.kind == "number" or field.sql_type == "boolean":
                field.parse(text)
        except FieldError as e:
            raise ClientException(detail=f"filter on {condition.field}: {e}") from e


def _check_child(parent: Model, array: str, child: ChildImportBody) -> None:
    """A child import names a known model, and fields that both models have."""
    try:
        model = get_model(child.model)
    except UnknownModelError as e:
        raise ClientException(detail=f"children.{array}: {e}") from e
    if not child.parent_key:
        raise ClientException(detail=f"children.{array}: parent_key names no field")
    named = [
        *((parent, name) for name in child.parent_key),
        *((model, name) for name in child.parent_key.values()),
        *((model, name) for name in child.field_mapping.values()),
    ]
    for owner, name in named:
        if name not in owner.field_names:
            raise ClientException(
                detail=f"children.{array}: unknown field {name!r} of {owner.name} "
                f"(fields: {', '.join(owner.field_names)})"
            )


def _check_fields(model_name: str, options: JobOptionsBody | None) -> None:
    """Every field an option names must be a field of the model (a clear 400 otherwise)."""
    if options is None:
        return
    model = get_model(model_name)
    named = [
        *options.fields,
        *(o.lstrip("-") for o in options.order_by),
        *(f.field for f in options.filters),
        *options.field_mapping.values(),
    ]
    for name in named:
        if name not in model.field_names:
            raise ClientException(
                detail=f"unknown field {name!r} of {model.name} "
                f"(fields: {', '.join(model.field_names)})"
            )
    for condition in options.filters:
        _check_filter_value(model, condition)
    for array, child in options.children.items():
        _check_child(model, array, child)
    if options.encoding:
        try:
            codecs.lookup(options.encoding)
        except LookupError as e:
            raise ClientException(detail=f"unknown encoding {options.encoding!r}") from e


def _check_definition(
    settings: Settings, model_name: str | None, fmt: str | None, file_path: str | None
) -> None:
    """400 for what the gateway can tell is wrong before asking the service."""
    if model_name is not None:
        try:
            get_model(model_name)
        except UnknownModelError as e:
            raise ClientException(detail=str(e)) from e
    if fmt is not None and fmt not in settings.allowed_formats:
        raise ClientException(
            detail=f"format {fmt!r} is not allowed (allowed: {', '.join(settings.allowed_formats)})"
        )
    if file_path and not file_path.startswith(UPLOAD_SCHEME):
        try:
            local_path(settings.imports_path, file_path)
        except FileNotAllowedError as e:
            raise ClientException(detail=str(e)) from e


def _require_local_file(settings: Settings, file_path: str) -> None:
    """A run-once import must name a file that is there; a scheduled one may name a drop
    folder file that another system delivers later."""
    if file_path.startswith(UPLOAD_SCHEME):
        return
    if not local_path(settings.imports_path, file_path).is_file():
        raise ClientException(
            detail=f"file_path {file_path!r} does not exist in the imports "
            "root (upload the file, or give the job a schedule)"
        )


async def _check_upload(
    request: Request[Any, Any, Any], principal: Principal, file_path: str | None
) -> None:
    """An upload must exist and be the caller's own (a superuser may use any)."""
    if not file_path or not file_path.startswith(UPLOAD_SCHEME):
        return
    try:
        owner = await upload_owner(request.app.state.js, request.app.state.subjects, file_path)
    except StorageError as e:
        raise ClientException(detail=str(e)) from e
    if owner != principal.username and not principal.is_superuser:
        raise ClientException(detail=f"there is no uploaded file {file_path!r}")


def _refuse_nul(value: object, where: str = "body") -> None:
    """PostgreSQL text cannot hold NUL; say so at once instead of failing further on."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ClientException(detail=f"{where} contains a NUL character, which is not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, f"{where}.{key}")
            _refuse_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{where}[{index}]")


def _correlation(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("x-correlation-id") or str(uuid.uuid4())


class JobController(Controller):
    path = "/api/data-management/jobs"
    dependencies = {"principal": Provide(require_principal)}  # noqa: RUF012
    tags = ["jobs"]  # noqa: RUF012

    @get("/", status_code=HTTP_200_OK)
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0),
        status: str | None = None,
        id_prefix: str | None = Parameter(
            default=None,
            min_length=1,
            max_length=36,
            pattern=r"^[0-9a-fA-F-]+$",
            description="only jobs whose id starts so (the short ids `dm status` shows)",
        ),
    ) -> dict[str, Any]:
        """Jobs visible to the caller, newest first."""
        engine: AsyncEngine = request.app.state.engine
        where = [_visible(principal)]
        if status:
            where.append(jobs.c.status == status)
        if id_prefix:
            where.append(jobs.c.id.startswith(id_prefix.lower(), autoescape=True))
        async with engine.connect() as conn:
            count = (
                await conn.execute(select(func.count()).select_from(jobs).where(*where))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(jobs)
                    .where(*where)
                    .order_by(jobs.c.created_at.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return {"count": count, "results": [job_json(dict(r._mapping)) for r in rows]}

    @post("/", status_code=201, request_max_body_size=JOB_BODY_MAX_BYTES)
    async def create_job(
        self, request: Request[Any, Any, Any], principal: Principal, data: JobCreateBody
    ) -> dict[str, Any]:
        """Define a job; ``file_path`` is an upload (``upload:...``) or in the imports root."""
        settings: Settings = request.app.state.settings
        _refuse_nul(msgspec.to_builtins(data))
        _check_definition(settings, data.model_name, data.format, data.file_path)
        _check_fields(data.model_name, data.options)
        await _check_upload(request, principal, data.file_path)
        if data.job_type == "import" and not data.file_path:
            raise ClientException(detail="an import job needs a file_path (upload the file first)")
        if data.job_type == "import" and data.schedule is None:
            _require_local_file(settings, data.file_path)
        command = CreateJob(
            correlation_id=_correlation(request),
            actor=principal.username,
            job_id=str(uuid.uuid4()),
            title=data.title,
            job_type=data.job_type,
            model_name=data.model_name,
            format=data.format,
            file_path=data.file_path,
            options=_options(data.options) or JobOptions(),
            schedule=_schedule(data.schedule),
        )
        client: ServiceClient = request.app.state.services
        reply = await client.request(owner_of(data.job_type), "create", command)
        assert reply.data is not None
        return job_json(reply.data)

    @get("/{job_id:str}/")
    async def get_job(
        self, request: Request[Any, Any, Any], principal: Principal, job_id: str
    ) -> dict[str, Any]:
        return await load_visible_job(request.app.state.engine, job_id, principal)

    @put("/{job_id:str}/", request_max_body_size=JOB_BODY_MAX_BYTES)
    async def update_job(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        job_id: str,
        data: JobUpdateBody,
    ) -> dict[str, Any]:
        job = await load_visible_job(request.app.state.engine, job_id, principal)
        _refuse_nul(msgspec.to_builtins(data))
        _check_definition(request.app.state.settings, data.model_name, data.format, data.file_path)
        await _check_upload(request, principal, data.file_path)
        command = UpdateJob(
            correlation_id=_correlation(request),
            actor=principal.username,
            job_id=job_id,
            title=data.title,
            model_name=data.model_name,
            format=data.format,
            file_path=data.file_path,
            options=_options(data.options),
            schedule=_schedule(data.schedule),
            clear_schedule=data.clear_schedule,
        )
        reply = await request.app.state.services.request(
            owner_of(job["job_type"]), "update", command
        )
        return job_json(reply.data)

    @delete("/{job_id:str}/", status_code=HTTP_204_NO_CONTENT)
    async def delete_job(
        self, request: Request[Any, Any, Any], principal: Principal, job_id: str
    ) -> None:
        job = await load_visible_job(request.app.state.engine, job_id, principal)
        command = DeleteJob(
            correlation_id=_correlation(request), actor=principal.username, job_id=job_id
        )
        await request.app.state.services.request(owner_of(job["job_type"]), "delete", command)

    @post("/{job_id:str}/execute/", status_code=HTTP_202_ACCEPTED)
    async def execute_job(
        self, request: Request[Any, Any, Any], principal: Principal, job_id: str
    ) -> dict[str, Any]:
        """Queue a run and answer at once; follow it at ``/jobs/{id}/events``."""
        job = await load_visible_job(request.app.state.engine, job_id, principal)
        command = RequestRun(
            correlation_id=_correlation(request), actor=principal.username, job_id=job_id
        )
        reply = await request.app.state.services.request(
            owner_of(job["job_type"]), "request_run", command
        )
        return job_json(reply.data)

    @post("/{job_id:str}/cancel/", status_code=HTTP_202_ACCEPTED)
    async def cancel_job(
        self, request: Request[Any, Any, Any], principal: Principal, job_id: str
    ) -> dict[str, Any]:
        """Cancel a queued job at once, or a running one at its next chunk."""
        job = await load_visible_job(request.app.state.engine, job_id, principal)
        command = CancelJob(
            correlation_id=_correlation(request), actor=principal.username, job_id=job_id
        )
        reply = await request.app.state.services.request(
            owner_of(job["job_type"]), "cancel", command
        )
        return job_json(reply.data)

    @get("/{job_id:str}/rejections/")
    async def list_rejections(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        job_id: str,
        limit: int = Parameter(default=100, ge=1, le=10_000),
        offset: int = Parameter(default=0, ge=0),
    ) -> dict[str, Any]:
        """Every rejected row of the job's last run: row, column, value, message."""
        job = await load_visible_job(request.app.state.engine, job_id, principal)
        where = [
            job_rejections.c.job_id == job_id,
            job_rejections.c.run_id == (job["run_id"] or ""),
        ]
        async with request.app.state.engine.connect() as conn:
            count = (
                await conn.execute(select(func.count()).select_from(job_rejections).where(*where))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(
                        job_rejections.c.row,
                        job_rejections.c.column,
                        job_rejections.c.value,
                        job_rejections.c.message,
                    )
                    .where(*where)
                    .order_by(job_rejections.c.row, job_rejections.c.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return {"count": count, "results": [dict(r._mapping) for r in rows]}
