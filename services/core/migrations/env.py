"""Alembic environment: runs on the connection handed over by ``services.core.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from services.core.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table="alembic_version",
        version_table_schema="dm",
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations(context.config.attributes["connection"])
