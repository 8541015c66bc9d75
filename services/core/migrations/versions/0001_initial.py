"""Event log, outbox, jobs projection, rejections, users and tokens; the users_user model.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


_UPGRADE = """
    CREATE TABLE dm.events (
        position bigserial PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        stream text NOT NULL,
        version integer NOT NULL,
        type text NOT NULL,
        data jsonb NOT NULL,
        actor text NOT NULL,
        correlation_id text NOT NULL,
        causation_id text,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_events_stream_version UNIQUE (stream, version)
    );
    CREATE TABLE dm.outbox (
        position bigserial PRIMARY KEY,
        message_id text NOT NULL,
        subject text NOT NULL,
        payload bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE dm.jobs (
        id text PRIMARY KEY,
        title text NOT NULL,
        job_type text NOT NULL,
        model_name text NOT NULL,
        format text NOT NULL,
        file_path text NOT NULL DEFAULT '',
        options jsonb NOT NULL DEFAULT '{}',
        status text NOT NULL,
        progress double precision NOT NULL DEFAULT 0,
        statistics jsonb NOT NULL DEFAULT '{}',
        errors jsonb NOT NULL DEFAULT '[]',
        error_message text NOT NULL DEFAULT '',
        run_id text,
        last_row bigint NOT NULL DEFAULT 0,
        cancel_requested boolean NOT NULL DEFAULT false,
        created_by text NOT NULL,
        version integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        started_at timestamptz,
        completed_at timestamptz
    );
    CREATE INDEX ix_jobs_created_by_created_at ON dm.jobs (created_by, created_at);
    CREATE TABLE dm.job_rejections (
        id bigserial PRIMARY KEY,
        job_id text NOT NULL,
        run_id text NOT NULL,
        "row" bigint NOT NULL,
        "column" text,
        value text,
        message text NOT NULL
    );
    CREATE INDEX ix_job_rejections_job_row ON dm.job_rejections (job_id, "row");
    CREATE TABLE dm.users (
        id bigserial PRIMARY KEY,
        username text NOT NULL UNIQUE,
        is_superuser boolean NOT NULL DEFAULT false,
        is_active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE dm.tokens (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES dm.users (id) ON DELETE CASCADE,
        token_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
    );
    CREATE TABLE IF NOT EXISTS public.users_user (
        id bigserial PRIMARY KEY,
        username varchar(150) NOT NULL UNIQUE,
        student_number varchar(20),
        national_id varchar(10) NOT NULL UNIQUE,
        first_name varchar(150) NOT NULL,
        last_name varchar(150) NOT NULL,
        email varchar(254) NOT NULL UNIQUE,
        phone varchar(20),
        birth_date date,
        role varchar(20) NOT NULL,
        faculty varchar(100),
        is_active boolean NOT NULL DEFAULT true,
        date_joined timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
"""

_DOWNGRADE = """
    DROP TABLE IF EXISTS public.users_user;
    DROP TABLE IF EXISTS dm.tokens;
    DROP TABLE IF EXISTS dm.users;
    DROP TABLE IF EXISTS dm.job_rejections;
    DROP TABLE IF EXISTS dm.jobs;
    DROP TABLE IF EXISTS dm.outbox;
    DROP TABLE IF EXISTS dm.events;
    """


def _run(script: str) -> None:
    # asyncpg prepares each statement, so they go one at a time
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(_UPGRADE)


def downgrade() -> None:
    _run(_DOWNGRADE)
