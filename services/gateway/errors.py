"""Gateway errors, and the one place where bus error codes become HTTP statuses.

litestar.HTTPException
 ├── NotAuthorizedException   401  no or bad token
 ├── NotFoundException        404  unknown job, or someone else's
 ├── ClientException          400  bad body, unknown model or field, bad path
 ├── ConflictError            409  the job's state does not allow it
 ├── PayloadTooLarge          413  upload over DM_MAX_FILE_SIZE
 └── ServiceUnavailable       503  the owning service did not answer
"""

from __future__ import annotations

from litestar import status_codes
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    NotFoundException,
    ServiceUnavailableException,
)

from contracts.base import ErrorInfo

__all__ = ["ConflictError", "PayloadTooLarge", "from_error_info"]


class ConflictError(HTTPException):
    status_code = status_codes.HTTP_409_CONFLICT


class PayloadTooLarge(HTTPException):
    status_code = status_codes.HTTP_413_REQUEST_ENTITY_TOO_LARGE


_BY_CODE: dict[str, type[HTTPException]] = {
    "not_found": NotFoundException,
    "conflict": ConflictError,
    "invalid": ClientException,
    "unavailable": ServiceUnavailableException,
    "internal_error": InternalServerException,
}


def from_error_info(error: ErrorInfo) -> HTTPException:
    return _BY_CODE.get(error.code, ClientException)(detail=error.message)
