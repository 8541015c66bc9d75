"""``dm-gateway``: serve the REST API with uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import uvicorn

from services.core.logs import configure_logging
from services.core.settings import load_settings
from services.gateway.app import build_app


def main() -> None:
    settings = load_settings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    if not settings.nats_url or not settings.database_url:
        raise SystemExit("dm-gateway needs DM_NATS_URL and DM_DATABASE_URL (make run sets them)")
    app = build_app(settings, nats_url=settings.nats_url, database_url=settings.database_url)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,  # keep the structured handler set up above
        timeout_graceful_shutdown=3,  # open event streams must not hold a shutdown up
    )


if __name__ == "__main__":
    main()
