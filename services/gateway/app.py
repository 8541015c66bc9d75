"""The gateway's ASGI app, built by ``build_app(settings, ...)``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from contracts.subjects import Subjects
from services.core.asyncapi import asyncapi_document
from services.core.bus import connect, ensure_object_store, ensure_streams
from services.core.catalogue.operator import load_operator_models
from services.core.db import make_engine
from services.core.logs import get_logger
from services.core.migrate import migrate
from services.core.settings import Settings
from services.gateway.bus import ServiceClient
from services.gateway.downloads import download_result
from services.gateway.events import job_events
from services.gateway.jobs import JobController
from services.gateway.reports import download_rejections
from services.gateway.unavailable import BUS_DOWN, bus_unavailable
from services.gateway.uploads import upload_file

__all__ = ["build_app"]

ASSETS = "/api/docs/assets"

log = get_logger(__name__)


@get("/api/asyncapi.json", include_in_schema=False, sync_to_thread=False)
def asyncapi_json() -> dict[str, Any]:
    """The bus's AsyncAPI 3.0 document, for systems that talk to us over NATS."""
    return _ASYNCAPI_CACHE.setdefault("doc", asyncapi_document())


_ASYNCAPI_CACHE: dict[str, dict[str, Any]] = {}


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def build_app(settings: Settings, *, nats_url: str, database_url: str) -> Litestar:
    subjects = Subjects(settings.bus_prefix)
    _ASYNCAPI_CACHE["doc"] = asyncapi_document(settings.bus_prefix)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings.imports_path.mkdir(parents=True, exist_ok=True)  # the drop folder exists
        engine = make_engine(database_url)
        await migrate(engine)
        await load_operator_models(engine, settings)
        nc = await connect(nats_url, name="gateway")
        js = nc.jetstream()
        await ensure_streams(js, subjects)
        await ensure_object_store(js, subjects)
        app.state.update(
            settings=settings,
            engine=engine,
            nc=nc,
            js=js,
            subjects=subjects,
            services=ServiceClient(nc, subjects),
        )
        log.info("gateway ready", nats=nats_url)
        try:
            yield
        finally:
            await nc.drain()
            await engine.dispose()

    openapi = OpenAPIConfig(
        title="University data management API",
        version="1.0.0",
        description="Import/export jobs over the data-management bus. Every endpoint needs "
        "`Authorization: Bearer <token>` (create one with `dm tokens create NAME`). "
        "The bus itself is described at /api/asyncapi.json.",
        path="/api/docs",
        # Swagger UI's assets are served from the package, so the docs work offline
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{ASSETS}/swagger-ui-bundle.js",
                css_url=f"{ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            )
        ],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
        security=[{"bearer": []}],
    )
    assets = create_static_files_router(
        path=ASSETS, directories=[swagger_ui_bundle.swagger_ui_path], include_in_schema=False
    )
    return Litestar(
        route_handlers=[
            assets,
            JobController,
            job_events,
            upload_file,
            download_result,
            download_rejections,
            asyncapi_json,
            healthz,
        ],
        lifespan=[lifespan],
        openapi_config=openapi,
        logging_config=None,  # the service's structured logging is already in place
        after_exception=[log_unexpected],
        exception_handlers=dict.fromkeys(BUS_DOWN, bus_unavailable),
    )


async def log_unexpected(exc: Exception, scope: Any) -> None:
    """A 500 leaves a line in the log (with its traceback); the client gets no detail.
    Expected refusals (401, 404, 400, ...) are answers, not errors, and are not logged."""
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return
    if isinstance(exc, BUS_DOWN):
        return  # a 503, logged once without a traceback
    log.error(
        "request failed",
        method=scope.get("method"),
        path=scope.get("path"),
        error=f"{type(exc).__name__}: {exc}"[:500],
        exc_info=exc,
    )
