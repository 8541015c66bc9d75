"""Dry runs keep the first changes they found; rejections keep the original record.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dm.jobs ADD COLUMN changes jsonb NOT NULL DEFAULT '[]'")
    op.execute("ALTER TABLE dm.job_rejections ADD COLUMN original text")


def downgrade() -> None:
    op.execute("ALTER TABLE dm.job_rejections DROP COLUMN original")
    op.execute("ALTER TABLE dm.jobs DROP COLUMN changes")
