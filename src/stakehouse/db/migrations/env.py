from __future__ import annotations

from alembic import context
from sqlalchemy import text

from stakehouse.db.tables import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Serialise concurrent starters: only one runs the migrations.
        connection.execute(text("SELECT pg_advisory_lock(727172)"))
        connection.commit()
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(727172)"))
        connection.commit()
