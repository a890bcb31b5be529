from __future__ import annotations

from alembic import context
from sqlalchemy import text

from stakehouse.db.tables import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        # Serialise concurrent starters: only one runs the migrations.
        connection.execute(text("SELECT pg_advisory_lock(727172)"))
        connection.commit()
    else:
        # Batch mode rebuilds a table by copy, drop and rename; with foreign keys enforced the drop
        # of a referenced table fails. Off for the migration (outside any transaction: SQLite
        # ignores the pragma inside one), checked before the commit.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left foreign keys broken: {broken[:5]}")
    if sqlite:
        connection.invalidate()  # a pooled connection must not keep foreign keys off: close it
    else:
        connection.execute(text("SELECT pg_advisory_unlock(727172)"))
        connection.commit()
