"""web sign-in: logins and server-side sessions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stakehouse.db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_logins',
    sa.Column('login', sa.String(length=32), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('created_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['uid'], ['users.uid'], name=op.f('fk_web_logins_uid_users')),
    sa.PrimaryKeyConstraint('login', name=op.f('pk_web_logins')),
    sa.UniqueConstraint('uid', name=op.f('uq_web_logins_uid'))
    )
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=True),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('created_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', stakehouse.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role in ('user', 'operator')", name=op.f('ck_web_sessions_role')),
    sa.CheckConstraint("(role = 'user') = (uid IS NOT NULL)", name=op.f('ck_web_sessions_user_has_uid')),
    sa.ForeignKeyConstraint(['uid'], ['users.uid'], name=op.f('fk_web_sessions_uid_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sessions'))
    )
    op.create_index('ix_web_sessions_uid', 'web_sessions', ['uid'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_web_sessions_uid', table_name='web_sessions')
    op.drop_table('web_sessions')
    op.drop_table('web_logins')
