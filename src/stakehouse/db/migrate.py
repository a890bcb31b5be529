"""Apply Alembic migrations on start (``stakehouse serve`` and ``stakehouse migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from stakehouse.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; safe to call from several processes."""
    command.upgrade(alembic_config(db), "head")
