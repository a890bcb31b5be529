"""oauth: clients, grants, codes, tokens

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stakehouse.db.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TS = stakehouse.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('oauth_clients',
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.Text(), nullable=True),
    sa.Column('broker_uid', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('logo_url', sa.String(length=256), nullable=False),
    sa.Column('redirect_uris', sa.Text(), nullable=False),
    sa.Column('scopes', sa.String(length=32), nullable=False),
    sa.Column('ips', sa.Text(), nullable=False),
    sa.Column('fast_api', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['broker_uid'], ['users.uid'], name=op.f('fk_oauth_clients_broker_uid_users')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_oauth_clients'))
    )
    op.create_index('ix_oauth_clients_broker', 'oauth_clients', ['broker_uid'], unique=False)
    op.create_table('oauth_grants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('term_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.Column('revoke_reason', sa.String(length=16), nullable=True),
    sa.Column('fast_api_key', sa.String(length=64), nullable=True),
    sa.Column('fast_api_passphrase_enc', sa.Text(), nullable=True),
    sa.Column('fast_api_fetched_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'], name=op.f('fk_oauth_grants_client_id_oauth_clients')),
    sa.ForeignKeyConstraint(['uid'], ['users.uid'], name=op.f('fk_oauth_grants_uid_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_grants'))
    )
    op.create_index('ix_oauth_grants_uid', 'oauth_grants', ['uid'], unique=False)
    op.create_table('oauth_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('uid', sa.String(length=20), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=True),
    sa.Column('fast_api', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'], name=op.f('fk_oauth_codes_client_id_oauth_clients')),
    sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], name=op.f('fk_oauth_codes_grant_id_oauth_grants')),
    sa.ForeignKeyConstraint(['uid'], ['users.uid'], name=op.f('fk_oauth_codes_uid_users')),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oauth_codes'))
    )
    op.create_table('oauth_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('access_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', TS, nullable=False),
    sa.Column('access_expires_at', TS, nullable=False),
    sa.Column('refresh_expires_at', TS, nullable=False),
    sa.Column('superseded_at', TS, nullable=True),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['oauth_grants.id'], name=op.f('fk_oauth_tokens_grant_id_oauth_grants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('access_hash', name=op.f('uq_oauth_tokens_access_hash')),
    sa.UniqueConstraint('refresh_hash', name=op.f('uq_oauth_tokens_refresh_hash'))
    )
    op.create_index('ix_oauth_tokens_grant', 'oauth_tokens', ['grant_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_oauth_tokens_grant', table_name='oauth_tokens')
    op.drop_table('oauth_tokens')
    op.drop_table('oauth_codes')
    op.drop_index('ix_oauth_grants_uid', table_name='oauth_grants')
    op.drop_table('oauth_grants')
    op.drop_index('ix_oauth_clients_broker', table_name='oauth_clients')
    op.drop_table('oauth_clients')
