"""Jobs remember the file an export wrote.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dm.jobs ADD COLUMN result_path text NOT NULL DEFAULT ''")


def downgrade() -> None:
    op.execute("ALTER TABLE dm.jobs DROP COLUMN result_path")
