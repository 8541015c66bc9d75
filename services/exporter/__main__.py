"""``dm-exporter``: run one exporter replica until SIGTERM or Ctrl-C."""

from __future__ import annotations

import uvloop

from services.core.logs import configure_logging
from services.core.settings import load_settings
from services.exporter.app import SERVICE, build_app


def main() -> None:
    settings = load_settings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    if not settings.nats_url or not settings.database_url:
        raise SystemExit("dm-exporter needs DM_NATS_URL and DM_DATABASE_URL (make run sets them)")
    app, _ = build_app(settings, nats_url=settings.nats_url, database_url=settings.database_url)
    # uvloop: the event loop and its sockets in C, which the COPY streams lean on
    uvloop.run(app.run())


if __name__ == "__main__":
    main()
