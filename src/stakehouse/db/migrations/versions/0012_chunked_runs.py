"""chunked runs: job_run_plans and job_run_chunks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stakehouse.db.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

TS = stakehouse.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('job_run_plans',
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('planned', sa.Integer(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('started_at', TS, nullable=False),
    sa.Column('finished_at', TS, nullable=True),
    sa.Column('totals', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('job', 'period', name=op.f('pk_job_run_plans'))
    )
    op.create_index('ix_job_run_plans_open', 'job_run_plans', ['finished_at'], unique=False)
    op.create_table('job_run_chunks',
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('lo', sa.String(length=20), nullable=True),
    sa.Column('hi', sa.String(length=20), nullable=True),
    sa.Column('done_at', TS, nullable=True),
    sa.Column('totals', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job', 'period'], ['job_run_plans.job', 'job_run_plans.period'],
                            name=op.f('fk_job_run_chunks_job_job_run_plans')),
    sa.PrimaryKeyConstraint('job', 'period', 'chunk', name=op.f('pk_job_run_chunks'))
    )


def downgrade() -> None:
    op.drop_table('job_run_chunks')
    op.drop_index('ix_job_run_plans_open', table_name='job_run_plans')
    op.drop_table('job_run_plans')
