"""Provider staking (Gemini-style products, staking-rules.md section 9) through the sandbox
services, on SQLite and on PostgreSQL.

The oracle is :class:`Model`, an independent day-by-day simulation written from the rules, not
from the code: every staking balance is a list of time-stamped moves (stake +, unstake -, interest
+ at the end of each accrual day, 20:00 UTC); the interest of day D is
``floor(min balance over [D-1 20:00, D 20:00) * bps / 10000 / 365)`` at the product's precision,
computed with :class:`fractions.Fraction`, where the interest of D-1, credited at D's very first
moment, counts as held from that moment (it compounds the next day, as ``apyPct`` assumes; see
``provider_runs.py``); queued unstakes go through a FIFO queue with a daily cap and are paid
``unbonding_days`` later. The engine's balances, events and rewards must equal the
model's to the last unit.

Every test starts its sandbox clock at a fixed moment (seeded before the services start, so that
the job origin is that moment too): calendar months and accrual days are then known in advance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import math
import sqlite3
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import sqlalchemy.exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from stakehouse.config import Settings
from stakehouse.db.engine import Database
from stakehouse.db.migrate import upgrade
from stakehouse.db.tables import provider_events
from stakehouse.errors import (
    AccountFrozen,
    DomainError,
    InsufficientBalance,
    InvalidParameter,
    NotAllowed,
    NotFound,
)
from stakehouse.errors import Refused as StakingRefused
from stakehouse.ledger.rules import FUNDING
from stakehouse.money import round_down
from stakehouse.sandbox.clock import SandboxClock
from stakehouse.security import new_server_key
from stakehouse.staking.provider import runs as provider_runs
from stakehouse.staking.provider.rules import event_no
from stakehouse.staking.provider.service import EventQuery, ProviderEvent, ProviderStakingService
from stakehouse.wiring import Services
from tests.sim.model import fifo_takes
from tests.unit.test_provider_rules import oracle_apy

UTC = dt.UTC
ZERO = Decimal(0)
DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)
ENDS_AT = dt.time(20, 0)  # the default accrual time (gemini-staking.md open point 18)
#: A Tuesday, 12:00 UTC: accrual day 2026-03-10 runs [03-09 20:00, 03-10 20:00).
START = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ALL = EventQuery(limit=500, sort_asc=True)


def open_services(url: str, start: dt.datetime, **settings: Any) -> Services:
    db = Database(url)
    upgrade(db)
    SandboxClock(db).ensure(start=start, running=False)  # a frozen clock at `start`
    db.dispose()
    s = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="t",
                          log_level="WARNING", **settings))
    assert s.clock.now() == start and s.runner.origin() == start
    for path in s.prices.paths():  # USD prices as the operator sets them: the markets' walks held still
        s.prices.set_path(path.inst_id, walk=False)
    return s


@pytest.fixture
def url(backend: str, make_db: Callable[[str], str]) -> str:
    return make_db(backend)


@pytest.fixture
def services(url: str) -> Iterator[Services]:
    s = open_services(url, START)
    yield s
    s.close()


@pytest.fixture
def chunked(url: str) -> Iterator[Services]:
    """The daily runs in chunks of one staker each, on two connections (PostgreSQL)."""
    s = open_services(url, START, job_chunk_size=1, job_connections=2)
    yield s
    s.close()


# -- the independent model -------------------------------------------------------------------------


def end_after(t: dt.datetime) -> dt.datetime:
    """The first accrual-day end (20:00 UTC) strictly after ``t``."""
    e = dt.datetime.combine(t.astimezone(UTC).date(), ENDS_AT, UTC)
    return e if e > t else e + DAY


def day_of(t: dt.datetime) -> dt.date:
    """The accrual day holding ``t``: the day whose 20:00 UTC is the first end after it."""
    return end_after(t).date()


def floor_to(value: Fraction, precision: int) -> Decimal:
    return Decimal(math.floor(value * 10**precision)).scaleb(-precision)


Key = tuple[str, str]  # (provider id, currency)


@dataclasses.dataclass
class Prod:
    provider_id: str
    ccy: str
    precision: int = 18
    queued: bool = False
    cap: Decimal | None = None
    unbonding: int = 0
    rates: dict[dt.date, Decimal] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.provider_id, self.ccy)

    def rate(self, day: dt.date) -> Decimal | None:
        earlier = [d for d in self.rates if d <= day]
        return self.rates[max(earlier)] if earlier else None


@dataclasses.dataclass
class Req:
    uid: str
    key: Key
    amount: Decimal
    at: dt.datetime
    scheduled: Decimal = ZERO
    paid: Decimal = ZERO


@dataclasses.dataclass
class Part:
    req: Req
    deliver: dt.date
    amount: Decimal
    paid: bool = False


@dataclasses.dataclass(frozen=True)
class Payment:
    uid: str
    key: Key
    at: dt.datetime
    amount: Decimal


class Model:
    """Staking balances replayed from what the test did, day by day (see the module text)."""

    def __init__(self, now: dt.datetime) -> None:
        self.done_until = now  # every day end <= this has been processed
        self.prods: dict[Key, Prod] = {}
        self.seq = itertools.count()
        #: (uid, key) -> (time, order, change, is interest) of the free staking balance
        self.moves: dict[tuple[str, Key], list[tuple[dt.datetime, int, Decimal, bool]]] = defaultdict(list)
        self.funding: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.reqs: list[Req] = []
        self.parts: list[Part] = []
        self.payments: list[Payment] = []
        #: (uid, key) -> day -> (rate bps, interest)
        self.interest: dict[tuple[str, Key], dict[dt.date, tuple[Decimal, Decimal]]] = defaultdict(dict)

    # actions (each at the time the engine stamps it)
    def stake(self, uid: str, key: Key, amount: Decimal, at: dt.datetime) -> None:
        assert self.funding[(uid, key[1])] >= amount
        self.funding[(uid, key[1])] -= amount
        self.moves[(uid, key)].append((at, next(self.seq), amount, False))

    def unstake(self, uid: str, key: Key, amount: Decimal, at: dt.datetime) -> None:
        assert self.available(uid, key) >= amount
        self.moves[(uid, key)].append((at, next(self.seq), -amount, False))
        if self.prods[key].queued:
            self.reqs.append(Req(uid, key, amount, at))
        else:
            self.funding[(uid, key[1])] += amount

    def advance(self, to: dt.datetime) -> None:
        """Process every day end up to ``to``: interest for every product, then settlement."""
        end = end_after(self.done_until)
        while end <= to:
            self._interest(end)
            self._settle(end)
            end += DAY
        self.done_until = max(self.done_until, to)

    def _interest(self, end: dt.datetime) -> None:
        start, day = end - DAY, end.date()
        for (uid, key), moves in list(self.moves.items()):
            rate = self.prods[key].rate(day)
            if rate is None or rate <= 0:
                continue
            ordered = sorted(moves)
            # held at the start: everything before it, and the previous day's interest credited at it
            opening = [(at, d) for at, _, d, interest in ordered if at < start or (interest and at == start)]
            balance = low = sum((d for _, d in opening), ZERO)
            for at, _, d, interest in ordered:
                if start <= at < end and not (interest and at == start):
                    balance += d
                    low = min(low, balance)
            paid = floor_to(Fraction(max(low, ZERO)) * Fraction(rate) / 10_000 / 365, self.prods[key].precision)
            if paid > 0:
                moves.append((end, next(self.seq), paid, True))
                self.interest[(uid, key)][day] = (rate, paid)

    def _settle(self, end: dt.datetime) -> None:
        day = end.date()
        for key, prod in self.prods.items():
            if not prod.queued:
                continue
            queue = [r for r in self.reqs if r.key == key and r.at < end and r.scheduled < r.amount]
            for r, take in zip(queue, fifo_takes([r.amount - r.scheduled for r in queue], prod.cap), strict=False):
                self.parts.append(Part(r, day + dt.timedelta(days=prod.unbonding), take))
                r.scheduled += take
            for part in self.parts:
                if part.req.key == key and not part.paid and part.deliver <= day:
                    part.paid = True
                    part.req.paid += part.amount
                    self.funding[(part.req.uid, key[1])] += part.amount
                    self.payments.append(Payment(part.req.uid, key, end, part.amount))

    # reading
    def available(self, uid: str, key: Key) -> Decimal:
        return sum((m[2] for m in self.moves.get((uid, key), [])), ZERO)

    def locked(self, uid: str, key: Key) -> Decimal:
        return sum((r.amount - r.paid for r in self.reqs if r.uid == uid and r.key == key), ZERO)

    def interest_events(self, uid: str) -> list[tuple[str, str, dt.datetime, Decimal]]:
        return sorted((key[0], key[1], dt.datetime.combine(day, ENDS_AT, UTC), paid)
                      for (u, key), days in self.interest.items() if u == uid for day, (_, paid) in days.items())


class World:
    """The sandbox services and the model, driven together."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.ps: ProviderStakingService = services.provider_staking
        self.model = Model(services.clock.now())

    def now(self) -> dt.datetime:
        return self.s.clock.now()

    def product(self, provider_id: str | None = None, ccy: str = "ETH", *, precision: int = 18, queued: bool = False,
                cap: Decimal | None = None, unbonding: int = 0, **extra: Any) -> Prod:
        if provider_id is None:
            provider_id = self.ps.create_provider(f"p-{uuid.uuid4().hex[:8]}").provider_id
        changes: dict[str, Any] = {"precision": precision, "unstake_mode": "queued" if queued else "instant",
                                   "daily_redemption_cap": None if cap is None else str(cap),
                                   "unbonding_days": unbonding, **extra}
        self.ps.set_product(provider_id, ccy, changes)
        prod = Prod(provider_id, ccy, precision, queued, cap, unbonding)
        self.model.prods[prod.key] = prod
        return prod

    def publish(self, prod: Prod, day: dt.date, bps: Decimal) -> None:
        self.ps.publish_rate(prod.provider_id, prod.ccy, day, bps)
        prod.rates[day] = bps

    def user(self, **funds: str) -> str:
        uid = self.s.accounts.create_user(kyc_level=2).uid
        for ccy, amount in funds.items():
            self.s.chain.credit_deposit(uid, ccy, Decimal(amount))
            self.model.funding[(uid, ccy)] += Decimal(amount)
        return uid

    def at(self, t: dt.datetime, *, late: bool = False) -> None:
        """Move the clock to ``t``; the due runs happen on the way unless ``late`` (a worker that is
        down: they happen at the next move that is not late)."""
        if late:
            assert self.s.sandbox_clock is not None
            self.s.sandbox_clock.set_to(t)
        else:
            self.s.advance_clock(to=t)
            self.model.advance(t)

    def stake(self, uid: str, prod: Prod, amount: Decimal) -> Any:
        got = self.ps.stake(uid, prod.provider_id, prod.ccy, amount)
        self.model.stake(uid, prod.key, amount, self.now())
        return got

    def unstake(self, uid: str, prod: Prod, amount: Decimal) -> Any:
        got = self.ps.unstake(uid, prod.provider_id, prod.ccy, amount)
        self.model.unstake(uid, prod.key, amount, self.now())
        return got

    # comparisons
    def funding(self, uid: str, ccy: str) -> Decimal:
        found = self.s.assets.balances(uid, FUNDING, [ccy])
        return found[0].available if found else ZERO

    def check(self, uid: str) -> None:
        """The engine's balances and interest events equal the model's, to the last unit."""
        m = self.model
        got = {(b.provider_id, b.ccy): (b.available, b.pending_unstake) for b in self.ps.account_balances(uid)}
        keys = {key for (u, key) in m.moves if u == uid}
        assert got == {key: (m.available(uid, key), m.locked(uid, key)) for key in keys}, uid
        for ccy in {c for (u, c) in m.funding if u == uid}:
            assert self.funding(uid, ccy) == m.funding[(uid, ccy)], (uid, ccy)
        events = self.ps.history(uid, EventQuery(limit=500, interest_only=True, sort_asc=True))
        assert len(events) < 500
        assert sorted((e.provider_id, e.ccy, e.at, e.amount) for e in events) == m.interest_events(uid)
        # the public balances: non-zero free staking balances per currency, split by provider
        public = {b.ccy: (b.balance, b.by_provider) for b in self.ps.balances(uid)}
        expected: dict[str, tuple[Decimal, dict[str, Decimal]]] = {}
        for key in sorted(keys):
            amount = m.available(uid, key)
            if amount != 0:
                total, split = expected.setdefault(key[1], (ZERO, {}))
                split[key[0]] = amount
                expected[key[1]] = (total + amount, split)
        assert public == expected


def snapshot(s: Services, *uids: str) -> list[Any]:
    """Everything a refused request must leave as it was."""
    ps = s.provider_staking
    out: list[Any] = [ps.accrual_runs(1000), ps.rates(), s.runner.history(1000)]
    for uid in uids:
        out += [s.assets.balances(uid, FUNDING), ps.account_balances(uid), ps.history(uid, ALL),
                s.accounts.journal(uid, limit=1000)]
    return out


# -- interest ----------------------------------------------------------------------------------------


def test_interest_in_chunks_equals_the_day_by_day_simulation(chunked: Services) -> None:
    test_interest_over_days_equals_the_day_by_day_simulation(chunked)
    runs = [r for r in chunked.runner.runs(job="provider_interest", limit=100) if r.planned]
    assert runs and all(r.finished and r.done == r.planned == 2 for r in runs)  # two stakers, two chunks
    with chunked.db.read() as conn:
        entries = conn.exec_driver_sql("SELECT count(*) FROM journal_entries WHERE type = 'provider_interest'"
                                       ).scalar_one()
    assert entries > len(runs)  # an entry per product per chunk


def test_interest_over_days_equals_the_day_by_day_simulation(services: Services) -> None:
    w = World(services)
    ps = w.ps
    d0 = START.date()
    a = w.product(precision=18)
    b = w.product(None, "ETH", precision=9)  # another provider, same currency, 9 decimals
    ps.set_price("ETH", Decimal(3000))
    w.publish(a, d0, Decimal(540))
    w.publish(b, d0, Decimal("321.5282"))
    u1, u2 = w.user(ETH="20"), w.user(ETH="20")

    # D0 12:00: everyone stakes (earns nothing for D0)
    w.stake(u1, a, Decimal(5))
    w.stake(u2, a, Decimal(3))
    w.stake(u2, b, Decimal(2))
    # D1: u1 adds 1 (not counted on D1), u2 takes 0.5 out and puts 0.25 back (D1 counts 2.5)
    d1_start = dt.datetime.combine(d0, ENDS_AT, UTC)
    w.at(d1_start + dt.timedelta(hours=7))
    w.stake(u1, a, Decimal(1))
    w.at(d1_start + dt.timedelta(hours=14))
    w.unstake(u2, a, Decimal("0.5"))
    w.at(d1_start + dt.timedelta(hours=19))
    w.stake(u2, a, Decimal("0.25"))
    # D2: a new rate for A from D3 on
    w.at(d1_start + DAY + dt.timedelta(hours=16))
    w.publish(a, d0 + dt.timedelta(days=3), Decimal(600))
    # D3: u1 unstakes 2 in the last microsecond of the day; stakes 0.7 at the first one of D4
    d3_end = d1_start + 3 * DAY
    w.at(d3_end - US)
    w.unstake(u1, a, Decimal(2))
    w.at(d3_end)
    w.stake(u1, a, Decimal("0.7"))
    w.at(d3_end + 3 * DAY)  # the end of D6

    for uid in (u1, u2):
        w.check(uid)
    # the model itself against hand figures: 5 * 0.054 / 365, 2.5 * 0.054 / 365, 2 * 0.03215282 / 365 at 9 places
    m = w.model
    d1 = d0 + DAY
    assert d0 not in m.interest[(u1, a.key)] and d0 not in m.interest[(u2, b.key)]
    assert m.interest[(u1, a.key)][d1] == (Decimal(540), Decimal("0.000739726027397260"))
    assert m.interest[(u2, a.key)][d1] == (Decimal(540), Decimal("0.000369863013698630"))
    assert m.interest[(u2, b.key)][d1][1] == Decimal("0.000176179")
    # D2: D1's interest, credited at D2's first moment, already earns: (6 + i1) * 0.054 / 365
    i1 = m.interest[(u1, a.key)][d1][1]
    assert m.interest[(u1, a.key)][d1 + DAY][1] == floor_to(Fraction(6 + i1) * 540 / 10_000 / 365, 18)
    assert sorted(m.interest[(u1, a.key)]) == [d0 + dt.timedelta(days=i) for i in range(1, 7)]
    # D3's eligible is the balance after the unstake of its last microsecond: the 6 staked, the
    # interest of D1 and of D2 (credited at the start of D3, so it counts too), less 2
    held = Decimal(6) + sum((p for d, (_, p) in m.interest[(u1, a.key)].items() if d < d0 + 3 * DAY), ZERO)
    assert m.interest[(u1, a.key)][d0 + 3 * DAY][1] == floor_to(Fraction(held - 2) * 600 / 10_000 / 365, 18)

    # rewards: two rate periods for A (540 on D1-D2, 600 on D3-D6), one for B
    summaries = {(r.provider_id, r.ccy): r for r in ps.rewards(u1, START, None, None, None)}
    assert list(summaries) == [a.key]
    check_rewards(summaries[a.key], m.interest[(u1, a.key)])
    assert [(p.rate_pct, p.count) for p in summaries[a.key].periods] == [(Decimal("5.4"), 2), (Decimal(6), 4)]
    summaries = {(r.provider_id, r.ccy): r for r in ps.rewards(u2, START, None, None, None)}
    assert set(summaries) == {a.key, b.key}
    check_rewards(summaries[a.key], m.interest[(u2, a.key)])
    check_rewards(summaries[b.key], m.interest[(u2, b.key)])
    # a window [D2 end, D4 end] and filters
    since, until = dt.datetime.combine(d0 + 2 * DAY, ENDS_AT, UTC), dt.datetime.combine(d0 + 4 * DAY, ENDS_AT, UTC)
    window = ps.rewards(u2, since, until, a.provider_id, "eth")
    assert [(r.provider_id, r.ccy) for r in window] == [a.key]
    inside = {d: v for d, v in m.interest[(u2, a.key)].items() if since.date() <= d <= until.date()}
    assert len(inside) == 3
    check_rewards(window[0], inside)
    assert ps.rewards(u2, since, until, str(uuid.uuid4()), None) == []
    assert ps.rewards(u2, since, until, None, "SOL") == []
    # interest events show the USD price when they were paid
    interest = ps.history(u1, EventQuery(interest_only=True, limit=500))
    assert {(e.price_ccy, e.price) for e in interest} == {("USD", Decimal(3000))}
    assert services.audit().ok


def test_a_constant_balance_compounds_daily_as_apy_says(services: Services) -> None:
    """Left alone, a staking balance b grows as b * (1 + r/365)^n, less at most one unit of the last
    decimal per day (each day's interest is rounded down): the daily compounding apyPct advertises."""
    w = World(services)
    rate = Decimal("1234.5678")
    eth = w.product(precision=18)
    w.publish(eth, START.date(), rate)
    u = w.user(ETH="10")
    w.stake(u, eth, Decimal(7))
    days = 14
    w.at(dt.datetime.combine(START.date() + days * DAY, ENDS_AT, UTC))  # D0 (staked that day) earns nothing
    w.check(u)
    [got] = w.ps.account_balances(u)
    growth = (1 + Fraction(rate) / 10_000 / 365) ** days
    unit = Fraction(1, 10**18)
    assert 0 <= 7 * growth - Fraction(got.available) < days * unit * growth
    assert len(w.ps.history(u, EventQuery(interest_only=True, limit=500))) == days


def check_rewards(summary: Any, accruals: dict[dt.date, tuple[Decimal, Decimal]]) -> None:
    """A summary's rate periods are the model's accruals grouped by consecutive equal rates."""
    expected = []
    for rate, group in itertools.groupby(sorted(accruals.items()), key=lambda item: item[1][0]):
        days = list(group)
        expected.append((oracle_apy(rate), rate / 100, len(days), sum((p for _, (_, p) in days), ZERO),
                         dt.datetime.combine(days[0][0], ENDS_AT, UTC), dt.datetime.combine(days[-1][0], ENDS_AT, UTC)))
    got = [(p.apy_pct, p.rate_pct, p.count, p.total, p.first_at, p.last_at) for p in summary.periods]
    assert got == expected
    assert summary.total == sum((p.total for p in summary.periods), ZERO) == sum((p for _, p in accruals.values()),
                                                                                ZERO)


# -- unstaking ---------------------------------------------------------------------------------------


def test_instant_unstake_pays_at_once(services: Services) -> None:
    w = World(services)
    eth = w.product()
    w.publish(eth, START.date(), Decimal(540))
    u = w.user(ETH="10")
    w.stake(u, eth, Decimal(5))
    w.at(START + 2 * DAY)
    before = w.funding(u, "ETH")
    got = w.unstake(u, eth, Decimal("1.5"))
    assert (got.amount, got.paid, got.remaining, got.ccy, got.requested_at) == (
        Decimal("1.5"), Decimal("1.5"), ZERO, "ETH", w.now())
    assert w.funding(u, "ETH") == before + Decimal("1.5")
    # the whole balance, interest included, can come out at once
    rest = w.model.available(u, eth.key)
    assert rest > Decimal("3.5")
    w.unstake(u, eth, rest)
    w.at(START + 4 * DAY)
    w.check(u)
    assert w.ps.balances(u) == []
    events = w.ps.history(u, ALL)
    redeems = [e for e in events if e.type == "Redeem"]
    assert [e.amount for e in redeems] == [Decimal("1.5"), rest]
    assert redeems[0].transaction_id == got.transaction_id
    assert not [e for e in events if e.type == "RedeemPayment"]  # paid at once: only the Redeem (point 11)
    assert services.audit().ok


def test_a_lowered_precision_strands_nothing(services: Services) -> None:
    """Interest at 18 decimals, then the operator lowers the precision to 8: new stakes must fit
    it, but the whole balance, digits below it included, still comes out."""
    w = World(services)
    eth = w.product()
    w.publish(eth, START.date(), Decimal(540))
    u = w.user(ETH="10")
    w.stake(u, eth, Decimal(5))
    w.at(START + 3 * DAY)
    rest = w.model.available(u, eth.key)
    assert rest != rest.quantize(Decimal("1e-8"))  # interest left digits below 8 places
    services.provider_staking.set_product(eth.provider_id, "ETH", {"precision": 8})
    with pytest.raises(InvalidParameter):
        services.provider_staking.stake(u, eth.provider_id, "ETH", Decimal("0.000000001"))
    w.unstake(u, eth, rest)
    assert w.ps.balances(u) == []
    assert w.funding(u, "ETH") == Decimal(5) + rest
    assert services.audit().ok


def test_queued_unstake_is_paid_fifo_in_capped_parts(services: Services) -> None:
    w = World(services)
    sol = w.product(None, "SOL", precision=8, queued=True, cap=Decimal(5), unbonding=1)
    w.publish(sol, START.date(), Decimal(700))
    u1, u2 = w.user(SOL="30"), w.user(SOL="30")
    w.stake(u1, sol, Decimal(20))
    w.stake(u2, sol, Decimal(10))
    d1_start = dt.datetime.combine(START.date(), ENDS_AT, UTC)
    w.at(d1_start + dt.timedelta(hours=14))
    funding = (w.funding(u1, "SOL"), w.funding(u2, "SOL"))
    results = []
    for uid, amount in ((u1, Decimal(7)), (u2, Decimal(4)), (u1, Decimal(2))):
        got = w.unstake(uid, sol, amount)
        assert (got.amount, got.paid, got.remaining, got.requested_at) == (amount, ZERO, amount, w.now())
        results.append((uid, got))
    assert (w.funding(u1, "SOL"), w.funding(u2, "SOL")) == funding  # nothing paid yet
    pending = {b.provider_id: b.pending_unstake for b in w.ps.account_balances(u1)}
    assert pending == {sol.provider_id: Decimal(9)}
    w.check(u1)
    w.check(u2)

    # day by day: funding moves only when a part is paid, as the model says
    for day in range(1, 7):
        end = d1_start + day * DAY
        w.at(end - US)
        w.check(u1)
        w.check(u2)
        w.at(end)
        w.check(u1)
        w.check(u2)

    # the schedule by hand: cap 5 a day from D1's run, FIFO (7 of u1, 4 of u2, 2 of u1), paid a day later
    d1 = START.date() + DAY
    pay = [(d1 + DAY, u1, Decimal(5)), (d1 + 2 * DAY, u1, Decimal(2)), (d1 + 2 * DAY, u2, Decimal(3)),
           (d1 + 3 * DAY, u2, Decimal(1)), (d1 + 3 * DAY, u1, Decimal(2))]
    assert [(p.at.date(), p.uid, p.amount) for p in w.model.payments] == pay
    got_payments = []
    for uid in (u1, u2):
        got_payments += [(e.at, uid, e.amount) for e in w.ps.history(uid, ALL) if e.type == "RedeemPayment"]
    assert sorted(got_payments) == sorted((dt.datetime.combine(d, ENDS_AT, UTC), uid, amt) for d, uid, amt in pay)
    # each request's payments add up to it, and it is done
    with services.db.read() as conn:
        rows = conn.execute(select(provider_events.c.id, provider_events.c.type, provider_events.c.amount,
                                   provider_events.c.redeem_id, provider_events.c.paid, provider_events.c.status)
                            .where(provider_events.c.type.in_(["Redeem", "RedeemPayment"]))).all()
    for _, got in results:
        no = event_no(got.transaction_id)
        request = next(r for r in rows if r.id == no)
        parts = [r.amount for r in rows if r.redeem_id == no]
        assert sum(parts, ZERO) == request.amount == request.paid == got.amount
        assert request.status == "done"
    assert w.ps.account_balances(u1)[0].pending_unstake == 0
    assert services.audit().ok


def test_queued_unstakes_paid_in_chunks_as_in_one_transaction(chunked: Services) -> None:
    """The settlement run in chunks of one staker (two connections on PostgreSQL) pays what the
    test above expects; the days that pay both stakers took two chunks."""
    test_queued_unstake_is_paid_fifo_in_capped_parts(chunked)
    runs = [r for r in chunked.runner.runs(job="provider_settlement", limit=100) if r.planned > 1]
    assert [(r.finished, r.done, r.planned) for r in runs] == [(True, 2, 2)] * 2
    assert sorted(sum(r.totals.values(), ZERO) for r in runs) == [Decimal(3), Decimal(5)]


def test_queued_unstake_without_cap_or_unbonding_pays_at_the_days_end(services: Services) -> None:
    w = World(services)
    sol = w.product(None, "SOL", precision=8, queued=True, cap=None, unbonding=0)
    u = w.user(SOL="10")
    w.stake(u, sol, Decimal(10))
    w.at(START + DAY)
    w.unstake(u, sol, Decimal("9.99999999"))
    w.at(dt.datetime.combine(START.date() + DAY, ENDS_AT, UTC) - US)
    assert w.funding(u, "SOL") == ZERO
    w.at(dt.datetime.combine(START.date() + DAY, ENDS_AT, UTC))  # scheduled and paid by the same run
    assert w.funding(u, "SOL") == Decimal("9.99999999")
    # an unstake at exactly a day's end belongs to the next day, also when that day's run is late
    e2 = dt.datetime.combine(START.date() + 2 * DAY, ENDS_AT, UTC)
    w.at(e2, late=True)
    w.unstake(u, sol, Decimal("0.00000001"))
    w.at(e2 + US)  # D2's run, late
    assert w.funding(u, "SOL") == Decimal("9.99999999")
    w.check(u)
    w.at(e2 + DAY)
    assert w.funding(u, "SOL") == Decimal(10)
    w.check(u)
    assert services.audit().ok


# -- the monthly USD deposit limit ---------------------------------------------------------------------


def test_monthly_usd_limit(url: str) -> None:
    s = open_services(url, dt.datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    try:
        w = World(s)
        ps = w.ps
        eth = w.product(deposit_usd_limit="30000")
        ps.set_price("ETH", Decimal(3000))  # 30000 USD = 10 ETH a month
        u, other = w.user(ETH="100"), w.user(ETH="100")

        w.stake(u, eth, Decimal(4))  # within
        w.stake(u, eth, Decimal(6))  # exactly at the limit
        over = Decimal("0.000000000000000001")
        before = snapshot(s, u)
        with pytest.raises(StakingRefused) as refused:
            ps.stake(u, eth.provider_id, "ETH", over)
        assert refused.value.reason == "deposit_limit"
        assert "30000" in refused.value.message
        assert snapshot(s, u) == before
        # the limit is per account
        w.stake(other, eth, Decimal(10))
        # the notional is fixed at stake time: a lower price now does not free any room
        ps.set_price("ETH", Decimal(1500))
        # unstaking does not give room back either: the limit counts new deposits
        w.unstake(u, eth, Decimal(5))
        before = snapshot(s, u)
        with pytest.raises(StakingRefused, match="30000"):
            ps.stake(u, eth.provider_id, "ETH", over)
        assert snapshot(s, u) == before

        # the last microsecond of March (UTC) still counts March; 1 April 00:00 UTC starts afresh
        april = dt.datetime(2026, 4, 1, tzinfo=UTC)
        w.at(april - US)
        with pytest.raises(StakingRefused):
            ps.stake(u, eth.provider_id, "ETH", over)
        w.at(april)
        w.stake(u, eth, Decimal(20))  # 20 * 1500 = 30000: exactly at the limit again
        with pytest.raises(StakingRefused) as refused:
            ps.stake(u, eth.provider_id, "ETH", over)
        assert refused.value.reason == "deposit_limit"
        w.check(u)
        w.check(other)
        assert s.audit().ok
    finally:
        s.close()


def race(calls: list[Callable[[], Any]]) -> list[str]:
    """Run the calls at once in threads; what each gave: "ok" or the refusal reason."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
            outcomes.append("ok")
        except StakingRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_concurrent_stakes_cannot_both_take_the_rest_of_the_limit(make_db: Callable[[str], str]) -> None:
    """PostgreSQL, where two stakes really run at once: the month's deposits are read, then written,
    under the user's row lock, so of two stakes that each fit alone only one gets in."""
    s = open_services(make_db("postgres"), START)
    try:
        w = World(s)
        eth = w.product(deposit_usd_limit="30000")
        w.ps.set_price("ETH", Decimal(3000))
        for _ in range(3):
            u = w.user(ETH="100")
            w.stake(u, eth, Decimal(4))
            stake = functools.partial(w.ps.stake, u, eth.provider_id, "ETH", Decimal(6))
            assert race([stake, stake]) == ["deposit_limit", "ok"]
            deposits = [e.amount for e in w.ps.history(u, ALL) if e.type == "Deposit"]
            assert sorted(deposits) == [Decimal(4), Decimal(6)]
        assert s.audit().ok
    finally:
        s.close()


@pytest.mark.parametrize(("price", "first", "second", "allowed"), [
    # 2.5000000000000000025 + 2.4999999999999999975 = 5 USD exactly: at the limit, allowed
    ("2.5", "1.000000000000000001", "0.999999999999999999", True),
    # 0.4000000000000000004 + 0.4 = 0.8000000000000000004 USD: over a 0.8 limit, refused
    ("0.4", "1.000000000000000001", "1", False),
])
def test_monthly_usd_limit_is_exact_beyond_18_decimals(services: Services, price: str, first: str, second: str,
                                                       allowed: bool) -> None:
    """A notional (amount x price) may have up to 36 decimals; the limit compares the exact sum
    (rules 2: money exact), the same on both databases."""
    w = World(services)
    limit = Decimal(5) if allowed else Decimal("0.8")
    eth = w.product(deposit_usd_limit=str(limit))
    w.ps.set_price("ETH", Decimal(price))
    u = w.user(ETH="10")
    exact = Fraction(Decimal(first)) * Fraction(Decimal(price)) + Fraction(Decimal(second)) * Fraction(Decimal(price))
    assert (exact <= Fraction(limit)) is allowed  # the test's own arithmetic
    w.stake(u, eth, Decimal(first))
    if allowed:
        w.stake(u, eth, Decimal(second))
    else:
        before = snapshot(services, u)
        with pytest.raises(StakingRefused) as refused:
            w.ps.stake(u, eth.provider_id, "ETH", Decimal(second))
        assert refused.value.reason == "deposit_limit"
        assert snapshot(services, u) == before
    w.check(u)


def test_no_usd_price_closes_a_limited_product_only(services: Services) -> None:
    # XRP has no spot market, so its USD price is the operator's, and there is none yet
    w = World(services)
    limited = w.product(None, "XRP", precision=6, deposit_usd_limit="500000")
    free = w.product(None, "XRP", precision=6)
    u = w.user(XRP="10")
    before = snapshot(services, u)
    with pytest.raises(StakingRefused) as refused:
        w.ps.stake(u, limited.provider_id, "XRP", Decimal(1))
    assert refused.value.reason == "no_price"
    assert snapshot(services, u) == before
    w.stake(u, free, Decimal(1))  # no limit, no price needed
    w.ps.set_price("XRP", Decimal("0.5"))
    w.stake(u, limited, Decimal(1))
    w.check(u)


# -- bad requests change nothing ---------------------------------------------------------------------


def test_bad_requests_change_nothing(services: Services) -> None:
    w = World(services)
    ps = w.ps
    eth = w.product(precision=18, min_stake="0.01")
    sol = w.product(None, "SOL", precision=8, queued=True, unbonding=2)
    closed = w.product(None, "ETH", stake_enabled=False)
    w.publish(eth, START.date(), Decimal(540))
    u = w.user(ETH="10", SOL="10")
    w.stake(u, eth, Decimal(3))
    w.stake(u, sol, Decimal(5))
    w.unstake(u, sol, Decimal(4))  # 4 locked, 1 free
    w.at(START + 2 * DAY)
    master = w.user(ETH="1")
    sub = services.accounts.create_sub_account(parent_uid=master, sub_name="subprov").uid
    services.chain.credit_deposit(sub, "ETH", Decimal(1))
    balance = w.model.available(u, eth.key)

    unknown = str(uuid.uuid4())
    cases: list[tuple[type[DomainError], Callable[[], Any]]] = [
        (NotFound, lambda: ps.stake(u, unknown, "ETH", Decimal(1))),
        (NotFound, lambda: ps.unstake(u, unknown, "ETH", Decimal(1))),
        (NotFound, lambda: ps.stake(u, "not-a-uuid", "ETH", Decimal(1))),
        (NotFound, lambda: ps.stake(u, eth.provider_id, "XYZ", Decimal(1))),  # no such currency
        (NotFound, lambda: ps.stake(u, eth.provider_id, "BTC", Decimal(1))),  # not offered by the provider
        (NotFound, lambda: ps.unstake(u, eth.provider_id, "SOL", Decimal(1))),
        (NotFound, lambda: ps.stake(u, closed.provider_id, "ETH", Decimal(1))),  # stake_enabled false
        (NotFound, lambda: ps.stake("99999999999", eth.provider_id, "ETH", Decimal(1))),  # no such user
        (InvalidParameter, lambda: ps.stake(u, eth.provider_id, "ETH", ZERO)),
        (InvalidParameter, lambda: ps.stake(u, eth.provider_id, "ETH", Decimal("-1"))),
        (InvalidParameter, lambda: ps.stake(u, eth.provider_id, "ETH", Decimal("1.0000000000000000001"))),
        (InvalidParameter, lambda: ps.stake(u, eth.provider_id, "ETH", Decimal("0.009"))),  # below min_stake
        (InvalidParameter, lambda: ps.unstake(u, eth.provider_id, "ETH", ZERO)),
        (InvalidParameter, lambda: ps.unstake(u, eth.provider_id, "ETH", Decimal("-0.5"))),
        (InvalidParameter, lambda: ps.stake(u, sol.provider_id, "SOL", Decimal("0.000000001"))),  # 9 > 8 places
        # unstakes may use every stored decimal (a precision lowered after staking strands nothing)
        (InvalidParameter, lambda: ps.unstake(u, sol.provider_id, "SOL", Decimal("0.1000000000000000001"))),
        (InvalidParameter, lambda: ps.unstake(u, sol.provider_id, "SOL", Decimal("NaN"))),
        (InvalidParameter, lambda: ps.stake(u, sol.provider_id, "SOL", Decimal("Infinity"))),
        (InsufficientBalance, lambda: ps.stake(u, eth.provider_id, "ETH", Decimal(7) + Decimal("1e-18"))),
        (InsufficientBalance, lambda: ps.unstake(u, eth.provider_id, "ETH", balance + Decimal("1e-18"))),
        # the 4 SOL being paid out are no longer in the staking balance
        (InsufficientBalance, lambda: ps.unstake(u, sol.provider_id, "SOL", w.model.available(u, sol.key)
                                                 + Decimal("0.00000001"))),
    ]
    before = snapshot(services, u, master, sub)
    for error, call in cases:
        with pytest.raises(error):
            call()
        assert snapshot(services, u, master, sub) == before

    # frozen: for staking, globally, and a sub-account whose master is frozen for staking
    services.accounts.set_frozen(u, True, ["staking"])
    services.accounts.set_frozen(master, True, ["staking"])
    before = snapshot(services, u, master, sub)
    for call in (lambda: ps.stake(u, eth.provider_id, "ETH", Decimal(1)),
                 lambda: ps.unstake(u, eth.provider_id, "ETH", Decimal(1)),
                 lambda: ps.unstake(u, sol.provider_id, "SOL", Decimal("0.5")),
                 lambda: ps.stake(master, eth.provider_id, "ETH", Decimal("0.5")),
                 lambda: ps.stake(sub, eth.provider_id, "ETH", Decimal("0.5"))):
        with pytest.raises(AccountFrozen):
            call()
        assert snapshot(services, u, master, sub) == before
    services.accounts.set_frozen(u, False, ["staking"])
    services.accounts.set_frozen(u, True)
    with pytest.raises(AccountFrozen):
        ps.stake(u, eth.provider_id, "ETH", Decimal(1))
    services.accounts.set_frozen(u, False)
    services.accounts.set_frozen(master, False, ["staking"])
    assert snapshot(services, u, master, sub) == before  # the freezes moved no money

    # unfrozen, the same requests go through
    w.stake(u, eth, Decimal(1))
    w.unstake(u, sol, Decimal("0.5"))
    w.model.funding[(sub, "ETH")] += Decimal(1)
    w.stake(sub, eth, Decimal("0.5"))
    w.at(START + 5 * DAY)
    for uid in (u, master, sub):
        w.check(uid)
    assert services.audit().ok


# -- exactly once --------------------------------------------------------------------------------


def test_a_day_is_never_paid_twice(services: Services, url: str) -> None:
    w = World(services)
    eth = w.product()
    sol = w.product(None, "SOL", precision=8, queued=True, cap=Decimal(1), unbonding=1)
    w.publish(eth, START.date(), Decimal(540))
    w.publish(sol, START.date(), Decimal(700))
    u = w.user(ETH="10", SOL="10")
    w.stake(u, eth, Decimal(5))
    w.stake(u, sol, Decimal(5))
    w.at(START + DAY)
    w.unstake(u, sol, Decimal(3))
    w.at(START + 4 * DAY)
    w.check(u)
    assert w.model.payments  # parts were paid on the way
    before = snapshot(services, u)
    jobs = {job.name: job for job in services.jobs.jobs}
    days = [START.date() + dt.timedelta(days=i) for i in range(4)]
    for day in days:
        period = services.accrual_calendar.period_of_day(day)
        for name in ("provider_interest", "provider_settlement"):
            assert services.runner.run_one(jobs[name], period) is None
    assert services.advance_clock(by=dt.timedelta(0)) == []
    # a restarted process finds every period done
    again = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="t",
                              log_level="WARNING"))
    try:
        assert again.runner.run_due() == []
        for day in days:
            period = again.accrual_calendar.period_of_day(day)
            assert again.runner.run_one(jobs["provider_interest"], period) is None
    finally:
        again.close()
    # even the interest job's chunk and finish steps, called past the runner's claims, cannot pay a
    # day twice: the events are keyed by (uid, product, day), the runs by (product, day)
    run = provider_runs.interest_run(ledger=services.ledger, usd=services.usd)
    for day in days:
        period = services.accrual_calendar.period_of_day(day)
        with services.db.read() as conn:
            plan = run.plan(conn, period, 1000)
        if day != days[0]:  # (nobody earned on D0: everything was staked that day)
            with pytest.raises((sqlalchemy.exc.IntegrityError, sqlite3.IntegrityError)), \
                    services.db.write() as conn:
                run.chunk(conn, period, plan.params, plan.chunks[0])
        with pytest.raises((sqlalchemy.exc.IntegrityError, sqlite3.IntegrityError)), services.db.write() as conn:
            run.finish(conn, period, plan.params, {})
    assert snapshot(services, u) == before
    runs = [(r["provider_id"], r["ccy"], r["day"]) for r in w.ps.accrual_runs(1000)]
    assert len(runs) == len(set(runs)) == 2 * len(days)  # two products, days D0..D3, once each
    assert services.audit().ok


def test_publish_rate_for_a_paid_day_is_refused(services: Services) -> None:
    w = World(services)
    ps = w.ps
    eth = w.product()
    d0 = START.date()
    w.publish(eth, d0, Decimal(540))
    w.publish(eth, d0, Decimal(541))  # today's run has not happened: it may still change
    u = w.user(ETH="10")
    got = w.stake(u, eth, Decimal(5))
    # the stake echoes today's rate and no accrual yet (open point 8)
    assert (got.provider_id, got.ccy, got.amount, got.accrual_total, got.rate_bps) == (
        eth.provider_id, "ETH", Decimal(5), ZERO, Decimal(541))
    hidden = w.product(eth.provider_id, "SOL", stake_enabled=False)
    w.publish(hidden, d0, Decimal(100))
    assert [(r.provider_id, r.ccy) for r in ps.rates()] == [eth.key]  # closed products are not listed
    w.at(START + 2 * DAY)  # D0 and D1 paid; today is D2
    assert ps.today() == d0 + 2 * DAY
    before = snapshot(services, u)
    for day in (d0 - DAY, d0, d0 + DAY):
        with pytest.raises(NotAllowed):
            ps.publish_rate(eth.provider_id, "ETH", day, Decimal(900))
        assert snapshot(services, u) == before
    for bad in (Decimal(-1), Decimal(100_001), Decimal("1.000000001"), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(InvalidParameter):
            ps.publish_rate(eth.provider_id, "ETH", d0 + 3 * DAY, bad)
    assert snapshot(services, u) == before
    with pytest.raises(NotFound):
        ps.publish_rate(str(uuid.uuid4()), "ETH", d0 + 3 * DAY, Decimal(1))
    w.publish(eth, d0 + 2 * DAY, Decimal(600))  # today: allowed
    [rate] = [r for r in ps.rates() if r.provider_id == eth.provider_id]
    assert (rate.rate_bps, rate.rate_pct, rate.apy_pct) == (Decimal(600), Decimal(6), oracle_apy(Decimal(600)))
    w.at(START + 3 * DAY)
    with pytest.raises(NotAllowed):
        ps.publish_rate(eth.provider_id, "ETH", d0 + 2 * DAY, Decimal(700))
    w.check(u)
    # D0 earned nothing (staked that day); D1 at the replaced 541, D2 at 600
    assert [(p.rate_pct, p.count) for p in ps.rewards(u, START, None, None, None)[0].periods] == [
        (Decimal("5.41"), 1), (Decimal(6), 1)]


# -- history --------------------------------------------------------------------------------------


def test_history_filters_sorting_and_limits(services: Services) -> None:
    w = World(services)
    ps = w.ps
    a_eth = w.product()
    a_sol = w.product(a_eth.provider_id, "SOL", precision=8)
    b_eth = w.product(None, "ETH")
    for prod in (a_eth, a_sol, b_eth):
        w.publish(prod, START.date(), Decimal(1000))
    ps.set_price("ETH", Decimal(3000))
    u, other = w.user(ETH="10", SOL="10"), w.user(ETH="10")
    t0 = w.now()
    mine = [w.stake(u, a_eth, Decimal(1)), w.stake(u, a_eth, Decimal(2)), w.stake(u, b_eth, Decimal(1))]  # same moment
    w.stake(other, a_eth, Decimal(1))
    w.at(t0 + dt.timedelta(hours=1))
    mine.append(w.stake(u, a_sol, Decimal(3)))
    w.at(t0 + 2 * DAY + dt.timedelta(hours=1))  # two interest days for the three products
    mine.append(w.unstake(u, a_eth, Decimal("0.5")))
    w.at(t0 + 2 * DAY + dt.timedelta(hours=2))
    w.check(u)

    full = ps.history(u, ALL)
    # what the test did, then the model's interest: every event, in (time, id) order
    mine_ids = [m.transaction_id for m in mine]
    assert [e.transaction_id for e in full if e.type != "Interest"] == mine_ids
    assert [(e.type, e.provider_id, e.ccy, e.amount) for e in full if e.type != "Interest"] == [
        ("Deposit", a_eth.provider_id, "ETH", Decimal(1)), ("Deposit", a_eth.provider_id, "ETH", Decimal(2)),
        ("Deposit", b_eth.provider_id, "ETH", Decimal(1)), ("Deposit", a_eth.provider_id, "SOL", Decimal(3)),
        ("Redeem", a_eth.provider_id, "ETH", Decimal("0.5"))]
    assert sorted((e.provider_id, e.ccy, e.at, e.amount) for e in full if e.type == "Interest") == \
        w.model.interest_events(u)
    assert len(full) == 5 + 3  # two days: D0 nothing (staked on D0), D1 for all three products
    assert [(e.at, event_no(e.transaction_id)) for e in full] == sorted(
        (e.at, event_no(e.transaction_id)) for e in full)
    # SOL's USD price is its market's index (held still at its start, 150); ETH's the pin at 3000
    assert {(e.ccy, e.price_ccy, e.price) for e in full if e.type == "Interest"} == {
        ("ETH", "USD", Decimal(3000)), ("SOL", "USD", Decimal(150))}
    assert all(e.price is None and e.price_ccy is None for e in full if e.type != "Interest")

    def expect(since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
               provider: str | None = None, ccy: str | None = None, interest_only: bool = False,
               asc: bool = False) -> list[ProviderEvent]:
        kept = [e for e in full if (since is None or e.at >= since) and (until is None or e.at <= until)
                and (provider is None or e.provider_id == provider.lower()) and (ccy is None or e.ccy == ccy.upper())
                and (not interest_only or e.type == "Interest")]
        return (kept if asc else kept[::-1])[:max(1, min(limit, 500))]

    interest_at = next(e.at for e in full if e.type == "Interest")
    queries: list[dict[str, Any]] = [
        {}, {"asc": True}, {"limit": 2}, {"limit": 2, "asc": True}, {"limit": 0}, {"limit": -5}, {"limit": 10_000},
        {"since": t0}, {"since": t0 + US}, {"until": t0}, {"until": t0 - US},
        {"since": interest_at, "until": interest_at}, {"since": interest_at + US, "asc": True},
        {"until": interest_at - US, "asc": True, "limit": 3}, {"interest_only": True},
        {"interest_only": True, "ccy": "eth"}, {"provider": a_eth.provider_id}, {"provider": a_eth.provider_id.upper()},
        {"provider": b_eth.provider_id, "ccy": "ETH", "asc": True}, {"ccy": "SOL"}, {"ccy": "BTC"},
    ]
    for q in queries:
        got = ps.history(u, EventQuery(since=q.get("since"), until=q.get("until"), limit=q.get("limit", 50),
                                       provider_id=q.get("provider"), ccy=q.get("ccy"),
                                       interest_only=q.get("interest_only", False), sort_asc=q.get("asc", False)))
        assert got == expect(**q), q
    assert ps.history(u, EventQuery(provider_id=str(uuid.uuid4()))) == []
    assert ps.history(u, EventQuery(provider_id="not-a-uuid")) == []
    # another user's events never show, and the default `until` is now
    theirs = ps.history(other, ALL)
    assert not {e.transaction_id for e in theirs} & {e.transaction_id for e in full}
    assert all(e.at <= w.now() for e in full)
    with pytest.raises(NotFound):
        ps.history("99999999999", ALL)


# -- random sequences -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # stake | unstake | rate | wait | to_end | before_end
    user: int
    product: int  # 0 = instant ETH (18 places), 1 = queued SOL (8 places)
    share: Decimal  # of the funding (stake) or staking balance (unstake); > 1 is over
    minutes: int  # waited before the step
    late: bool  # the wait happens with the worker down
    bps: Decimal


@dataclasses.dataclass(frozen=True)
class Plan:
    cap: Decimal | None
    unbonding: int
    rates: tuple[Decimal, Decimal]
    steps: tuple[Step, ...]
    tail_minutes: int


RATES = [Decimal(540), Decimal("321.5282"), Decimal("0.00000001"), Decimal(100_000), ZERO]
steps = st.builds(
    Step,
    kind=st.sampled_from(["stake", "stake", "unstake", "unstake", "rate", "wait", "to_end", "before_end"]),
    user=st.integers(0, 1),
    product=st.integers(0, 1),
    share=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.3337"), Decimal("0.1"), Decimal("1.5"), ZERO]),
    minutes=st.one_of(st.just(0), st.integers(1, 30 * 60)),
    late=st.booleans(),
    bps=st.sampled_from(RATES),
)
plans = st.builds(
    Plan,
    cap=st.sampled_from([None, Decimal("0.7"), Decimal(3)]),
    unbonding=st.integers(0, 2),
    rates=st.tuples(st.sampled_from(RATES), st.sampled_from(RATES)),
    steps=st.lists(steps, max_size=12).map(tuple),
    tail_minutes=st.integers(0, 3 * 24 * 60),
)


def perform(w: World, users: list[str], prods: list[Prod], step: Step) -> None:
    target = w.now() + dt.timedelta(minutes=step.minutes)
    if step.kind == "to_end":
        target = end_after(w.now())
    elif step.kind == "before_end":
        target = max(end_after(w.now()) - US, w.now())
    if target > w.now():
        w.at(target, late=step.late)
    uid, prod = users[step.user], prods[step.product]
    if step.kind == "rate":
        today = day_of(w.now())
        assert w.ps.today() == today
        w.publish(prod, today, step.bps)
    elif step.kind in ("stake", "unstake"):
        base = w.model.funding[(uid, prod.ccy)] if step.kind == "stake" else w.model.available(uid, prod.key)
        amount = round_down(base * step.share, prod.precision)
        if amount <= 0 or amount > base:
            before = snapshot(w.s, uid)
            with pytest.raises(InvalidParameter if amount <= 0 else InsufficientBalance):
                getattr(w.ps, step.kind)(uid, prod.provider_id, prod.ccy, amount)
            assert snapshot(w.s, uid) == before
        else:
            getattr(w, step.kind)(uid, prod, amount)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(plan=plans)
def _one_plan(services: Services, plan: Plan) -> None:
    w = World(services)
    eth = w.product()
    sol = w.product(eth.provider_id, "SOL", precision=8, queued=True, cap=plan.cap, unbonding=plan.unbonding)
    today = day_of(w.now())
    w.publish(eth, today, plan.rates[0])
    w.publish(sol, today, plan.rates[1])
    users = [w.user(ETH="10", SOL="50"), w.user(ETH="10", SOL="50")]
    for uid in users:  # something to earn on from the start
        w.stake(uid, eth, Decimal(4))
        w.stake(uid, sol, Decimal(20))
    for step in plan.steps:
        perform(w, users, [eth, sol], step)
    w.at(w.now() + dt.timedelta(minutes=plan.tail_minutes, microseconds=1))
    for uid in users:
        w.check(uid)
    assert services.audit().ok


def test_random_sequences_agree_with_the_simulation(services: Services) -> None:
    """Random stakes, unstakes, rate changes and waits (some with the worker down, some ending on
    20:00 exactly or a microsecond before): every balance, every interest payment and every payout
    equals the simulation, and the audit passes."""
    _one_plan(services)
    assert services.audit().ok
