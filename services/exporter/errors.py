"""Exporter errors.

ExporterError (root)
 └── ExportFailure       the run cannot go on: unknown model, field or filter
"""

from __future__ import annotations

__all__ = ["ExportFailure", "ExporterError"]


class ExporterError(Exception):
    """Root of the exporter's errors."""


class ExportFailure(ExporterError):
    """The run fails for good; ``code`` and message go into the ``JobFailed`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
