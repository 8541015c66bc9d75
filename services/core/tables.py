"""The service's own tables (schema ``dm``): event log, outbox, projections, users, tokens.

The university's data tables (``users_user`` ...) belong to the model catalogue.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["events", "job_rejections", "jobs", "metadata", "outbox", "tokens", "users"]

SCHEMA = "dm"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)

events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("stream", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("actor", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("causation_id", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("stream", "version", name="uq_events_stream_version"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=True),
    Column("message_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("job_type", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("file_path", Text, nullable=False, server_default=""),
    Column("options", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False),
    Column("progress", Float, nullable=False, server_default="0"),
    Column("statistics", JSONB, nullable=False, server_default="{}"),
    Column("errors", JSONB, nullable=False, server_default="[]"),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("run_id", Text),
    Column("last_row", BigInteger, nullable=False, server_default="0"),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("created_by", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("result_path", Text, nullable=False, server_default=""),
    Column("changes", JSONB, nullable=False, server_default="[]"),
    Column("schedule", JSONB),
    Column("schedule_since", DateTime(timezone=True)),
    Column("last_fired_at", DateTime(timezone=True)),
    Index("ix_jobs_created_by_created_at", "created_by", "created_at"),
)

job_rejections = Table(
    "job_rejections",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("job_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("row", BigInteger, nullable=False),
    Column("column", Text),
    Column("value", Text),
    Column("message", Text, nullable=False),
    Column("original", Text),
    Index("ix_job_rejections_job_row", "job_id", "row"),
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True),
    Column("is_superuser", Boolean, nullable=False, server_default="false"),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("dm.users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),
)
