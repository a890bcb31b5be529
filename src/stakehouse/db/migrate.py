"""Apply Alembic migrations on start (``stakehouse serve`` and ``stakehouse migrate``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from stakehouse.db.engine import Database

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def _scripts() -> Config:
    """A configuration that names the migration scripts only."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def alembic_config(db: Database) -> Config:
    cfg = _scripts()
    cfg.attributes["engine"] = db.engine
    return cfg


def revision(db: Database) -> str | None:
    """The schema's current revision (``None`` for an empty database)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@cache
def head() -> str | None:
    """The newest revision of the migrations shipped with this code (read once per process: Alembic
    compiles every migration file to find it)."""
    return ScriptDirectory.from_config(_scripts()).get_current_head()


def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; safe to call from several processes. Alembic's own
    lines are kept out of the log (``logging.py``); one structured line says what changed. A schema
    already at :func:`head` (every start but the first) costs one read."""
    before = revision(db)
    if before is not None and before == head():
        return
    command.upgrade(alembic_config(db), "head")
    after = revision(db)
    if after != before:
        log.info("migrated", from_revision=before, to_revision=after)
