"""The importer's app: the shared job-worker app with the import runner."""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsBroker

from services.core.jobs.worker_app import build_job_worker_app
from services.core.settings import Settings
from services.importer.runner import JobRunner

__all__ = ["SERVICE", "build_app"]

SERVICE = "importer"


def build_app(
    settings: Settings, *, nats_url: str, database_url: str
) -> tuple[FastStream, NatsBroker]:
    return build_job_worker_app(
        SERVICE,
        "import",
        settings,
        nats_url=nats_url,
        database_url=database_url,
        make_runner=JobRunner,
    )
