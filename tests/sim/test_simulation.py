"""The deterministic simulation inside the suite (issue 19, scope 6; TigerBeetle's VOPR is the model).

Each seed is a whole simulated installation on a SQLite file of its own: users and sub-accounts
(sharing their group's fast redemption allowance), deposits, transfers (also between a master and
its sub-accounts), purchases, redemptions and cancels of both liquid products (ETH and SOL), stakes
and unstakes of two provider products (one queued, one instant), spot orders of every type and their
cancels against index prices the operator pins, withdrawals on chain and inside and their cancels,
DCDs bought by an ND broker's sub-accounts (each quote priced again by the model, some with the
broker's markup) and paid at settlement, the broker's fee changes (markups) on its sub-accounts'
fills, contract credits granted, activated, spent, invalidated and expired, the broker's daily ND
rebates on their fills, orders tagged with an FD broker's code (of type api, oauth or both; placed
with an API key or a token of its own or another broker's OAuth client) and its rebates (shared with
the users), fee levels, monthly rebate caps and VIP fee-rate mode, valid and invalid amounts,
published rates and 30 days of clock moves with every daily run, two processes on the database (each
step on either), restarts between steps and crashes inside runs and operations, checked after every
step against the audit (not run again when nothing was committed since it last passed) and the
independent model (``tests/sim/model.py``). The seeds are split into batches so that the pytest
workers spread them.

``STAKEHOUSE_SIM_SEEDS`` sets how many seeds run here on SQLite (default :data:`DEFAULT_SEEDS`,
chosen to fit the suite's time budget), ``STAKEHOUSE_SIM_FIRST`` the first seed; one more seed runs
on PostgreSQL. ``bench/simulate.py`` runs any number, on either database. A failure names the seed
and the command that reproduces it exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.sim.world import quiet_logs, run_seed

#: Seeds in the suite: ~9-10 s of CPU each for 30 days on this machine's cores (bench/RESULTS.md); six
#: keep the suite well under its 15 minutes on 2 cores. ``bench/simulate.py`` runs hundreds. One batch per
#: pytest worker (``make test`` runs 3).
DEFAULT_SEEDS = 6
BATCHES = 3
DAYS = 30


def _seeds() -> list[int]:
    count = int(os.environ.get("STAKEHOUSE_SIM_SEEDS", DEFAULT_SEEDS))
    first = int(os.environ.get("STAKEHOUSE_SIM_FIRST", 0))
    return list(range(first, first + count))


def _batches() -> list[list[int]]:
    seeds = _seeds()
    return [seeds[b::BATCHES] for b in range(BATCHES) if seeds[b::BATCHES]]


@pytest.fixture
def quiet() -> Iterator[None]:
    """The services' info logs off for the test (thousands per seed), as they were after it."""
    saved = structlog.get_config()
    quiet_logs()
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("seeds", _batches(), ids=lambda seeds: f"seeds{seeds[0]}+{len(seeds)}")
def test_simulation(seeds: list[int], tmp_path: Path, quiet: None) -> None:
    for seed in seeds:
        stats = run_seed(seed, tmp_path, days=DAYS)
        assert stats.steps > DAYS  # the clock moved about a day per few steps; every step was checked


def test_simulation_on_postgres(make_db: Callable[[str], str], tmp_path: Path, quiet: None) -> None:
    """One seed on PostgreSQL (``STAKEHOUSE_SIM_PG_SEED``, default the first seed): its runs' chunks
    on two connections at once, its crash triggers in PL/pgSQL."""
    seed = int(os.environ.get("STAKEHOUSE_SIM_PG_SEED", _seeds()[0] if _seeds() else 0))
    stats = run_seed(seed, tmp_path, url=make_db("postgres"), days=DAYS)
    assert stats.steps > DAYS
