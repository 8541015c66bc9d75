"""Jobs can carry a schedule; the projection remembers when it last fired.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dm.jobs ADD COLUMN schedule jsonb")
    op.execute("ALTER TABLE dm.jobs ADD COLUMN schedule_since timestamptz")
    op.execute("ALTER TABLE dm.jobs ADD COLUMN last_fired_at timestamptz")
    op.execute("CREATE INDEX ix_jobs_scheduled ON dm.jobs (job_type) WHERE schedule IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX dm.ix_jobs_scheduled")
    op.execute("ALTER TABLE dm.jobs DROP COLUMN last_fired_at")
    op.execute("ALTER TABLE dm.jobs DROP COLUMN schedule_since")
    op.execute("ALTER TABLE dm.jobs DROP COLUMN schedule")
