"""Storage set-up rules."""

from __future__ import annotations

import pytest

from stakehouse.db.engine import Database


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///file:x?mode=memory"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    # Every connection to an in-memory database would see its own empty database.
    with pytest.raises(ValueError, match="database file path"):
        Database(url)
