"""The importer's app: the shared job-worker app with the import runner."""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsBroker

from services.core.jobs.worker_app import RunnerParts, build_job_worker_app
from services.core.settings import Settings
from services.importer.runner import JobRunner

__all__ = ["SERVICE", "build_app"]

SERVICE = "importer"


def _runner(parts: RunnerParts) -> JobRunner:
    return JobRunner(
        engine=parts.engine,
        js=parts.js,
        subjects=parts.subjects,
        relay=parts.relay,
        imports_root=parts.settings.imports_path,
        chunk_size=parts.settings.import_chunk_size,
        worker=parts.worker,
        shutdown=parts.shutdown,
    )


def build_app(
    settings: Settings, *, nats_url: str, database_url: str
) -> tuple[FastStream, NatsBroker]:
    return build_job_worker_app(
        SERVICE,
        "import",
        settings,
        nats_url=nats_url,
        database_url=database_url,
        make_runner=_runner,
    )
