"""The importer's app: the shared job-worker app with the import runner."""

from __future__ import annotations

import sys

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
    # rows are checked in a thread while the event loop writes chunks: the loop gets the GIL
    # within half a millisecond of a database answer instead of after Python's default 5 ms
    # (process-wide, which in an importer is what it is for)
    sys.setswitchinterval(0.0005)
    return build_job_worker_app(
        SERVICE,
        "import",
        settings,
        nats_url=nats_url,
        database_url=database_url,
        make_runner=JobRunner,
    )
