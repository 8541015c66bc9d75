"""``dm-importer``: run one importer replica until SIGTERM or Ctrl-C."""

from __future__ import annotations

import gc

import uvloop

from services.core.logs import configure_logging
from services.core.settings import load_settings
from services.importer.app import SERVICE, build_app


def main() -> None:
    settings = load_settings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    if not settings.nats_url or not settings.database_url:
        raise SystemExit("dm-importer needs DM_NATS_URL and DM_DATABASE_URL (make run sets them)")
    app, _ = build_app(settings, nats_url=settings.nats_url, database_url=settings.database_url)
    # the collector walked the start-up objects and a run's live chunks again and again:
    # 1.3 s of CPU per million rows imported with the default thresholds, 0.6 s with the
    # start-up objects frozen out of its walks and a run every 10,000 new objects (not 700)
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    # uvloop: the event loop and its sockets in C, which the COPY streams lean on
    uvloop.run(app.run())


if __name__ == "__main__":
    main()
