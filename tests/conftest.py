"""Fixtures: every API test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.stack import Stack, start_stack
from tests.support.external import create_database, drop_database, postgres_server, redis_server

# No property test has a deadline: speed is measured by the benchmarks, and a moment of a loaded 2-core CI
# machine (one example of tests/unit/test_provider_rules.py took 259 ms there, then 0.2 ms) must not fail one.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

#: Databases the session created on the PostgreSQL server, dropped before it stops.
_PG_DATABASES: list[str] = []


@pytest.fixture(scope="session")
def pg_base() -> Iterator[str]:
    with postgres_server() as url:
        yield url
        for name in _PG_DATABASES:
            try:
                drop_database(url, name)
            except Exception as exc:
                print(f"could not drop {name}: {exc}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def make_db(pg_base_lazy: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Callable[[str], str]]:
    """``make_db(backend)`` -> URL of a fresh, empty database on that backend (PostgreSQL ones are
    dropped by ``pg_base`` before the server goes: it is set up after this fixture, so it is torn
    down before it)."""

    def make(backend: str) -> str:
        name = f"sh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / (name + '.db')}"
        url = create_database(pg_base_lazy(), name)
        _PG_DATABASES.append(name)
        return url

    yield make


@pytest.fixture(scope="session")
def pg_base_lazy(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Start PostgreSQL only when a test needs it."""
    return lambda: str(request.getfixturevalue("pg_base"))


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def stack(backend: str, make_db: Callable[[str], str]) -> Iterator[Stack]:
    """A running server shared by the tests of one backend (each test makes its own users)."""
    s = start_stack(make_db(backend))
    yield s
    s.stop()


@pytest.fixture
def fresh_stack(backend: str, make_db: Callable[[str], str]) -> Iterator[Callable[..., Stack]]:
    """A server of its own (own database, own settings) for tests that move the clock or limits."""
    started: list[Stack] = []

    def start(**settings: object) -> Stack:
        s = start_stack(make_db(backend), **settings)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def tmp_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'unit.db'}"
