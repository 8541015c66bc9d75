"""The gateway's side of the bus: request/reply to the owning service."""

from __future__ import annotations

import msgspec
from litestar.exceptions import ServiceUnavailableException
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from contracts.base import Command, Reply
from contracts.subjects import Subjects
from services.core.logs import get_logger
from services.gateway.errors import from_error_info

__all__ = ["ServiceClient", "owner_of"]

log = get_logger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
_OWNERS = {"import": "importer", "export": "exporter"}


def owner_of(job_type: str) -> str:
    return _OWNERS[job_type]


class ServiceClient:
    def __init__(self, nc: Client, subjects: Subjects) -> None:
        self.nc = nc
        self.subjects = subjects

    async def request(self, service: str, verb: str, command: Command) -> Reply:
        """Send a definition command; raises the HTTP error matching the reply's code."""
        subject = self.subjects.request(service, verb)
        job_id = getattr(command, "job_id", None)
        log.info(
            "command sent",
            service=service,
            verb=verb,
            job_id=job_id,
            correlation_id=command.correlation_id,
            actor=command.actor,
        )
        try:
            msg = await self.nc.request(
                subject, msgspec.json.encode(command), timeout=REQUEST_TIMEOUT_SECONDS
            )
        except (NoRespondersError, NatsTimeout) as e:
            raise ServiceUnavailableException(
                detail=f"the {service} service is not answering; is it running?"
            ) from e
        reply = msgspec.json.decode(msg.data, type=Reply)
        if not reply.ok:
            assert reply.error is not None
            log.info(
                "command refused",
                service=service,
                verb=verb,
                job_id=job_id,
                correlation_id=command.correlation_id,
                code=reply.error.code,
            )
            raise from_error_info(reply.error)
        return reply
