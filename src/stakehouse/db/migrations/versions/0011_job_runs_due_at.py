"""job_runs: an index on due_at (a poll reads its window only, not the whole history)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_job_runs_due_at', 'job_runs', ['due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_job_runs_due_at', table_name='job_runs')
