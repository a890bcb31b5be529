"""Migrations on start (``db/migrate.py``): an empty database and one a revision behind are brought to
the newest revision; one already there is left as it is (the start reads its revision and stops)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic import command
from sqlalchemy import inspect

from stakehouse.db.engine import Database
from stakehouse.db.migrate import alembic_config, head, revision, upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_behind_is_upgraded_and_one_at_head_is_left(backend: str,
                                                                make_db: Callable[[str], str]) -> None:
    db = Database(make_db(backend))
    try:
        assert revision(db) is None
        command.upgrade(alembic_config(db), "0011")  # one revision behind: job_run_plans does not exist yet
        assert revision(db) == "0011" != head()
        assert "job_run_plans" not in inspect(db.engine).get_table_names()

        upgrade(db)
        assert revision(db) == head()
        assert "job_run_plans" in inspect(db.engine).get_table_names()

        upgrade(db)  # at head: nothing to do, nothing changed
        assert revision(db) == head()
    finally:
        db.dispose()
