"""Importer errors.

ImportError_ (root)
 ├── JobFailure          the run cannot go on: unreadable file, unknown model, missing column
 └── RunBusy             another replica holds the run; try again later
"""

from __future__ import annotations

__all__ = ["ImporterError", "JobFailure"]


class ImporterError(Exception):
    """Root of the importer's errors."""


class JobFailure(ImporterError):
    """The run fails for good; ``code`` and message go into the ``JobFailed`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
