"""The daily reward run on real databases agrees with the pure rules (spec sections 5 and 8).

PostgreSQL computes the rewards in SQL (``runs._PG_REWARDS``), SQLite streams the holders through
the pure rules. Both are checked here against an independent replay: every user's own postings
(``AccountService.journal``) are replayed entry by entry, the minimum balance of each T-day is
taken over every prefix of the day, and the pure :func:`~stakehouse.staking.rules.reward` gives
the amounts. The actions run at arbitrary moments of the day (including exactly 00:00, where the
previous day's rewards are posted too), and sometimes the runs happen late (a worker that was
down), which must not change anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy.exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.errors import DomainError
from stakehouse.jobs.chunks import Chunk, Chunked
from stakehouse.ledger import journal
from stakehouse.ledger.rules import FUNDING, TRADING
from stakehouse.money import ZERO, round_down
from stakehouse.security import new_server_key
from stakehouse.staking.liquid import runs
from stakehouse.staking.liquid.service import HistoryQuery
from stakehouse.staking.rules import rate_for, reward
from stakehouse.wiring import Services

PRODUCT = "ETH"
TOKEN = "BETH"
PRECISION = 8


def _services(url: str) -> Iterator[Services]:
    s = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="t",
                          log_level="WARNING"))
    assert s.sandbox_clock is not None
    s.sandbox_clock.freeze()
    yield s
    s.close()


@pytest.fixture
def services(backend: str, make_db: Callable[[str], str]) -> Iterator[Services]:
    yield from _services(make_db(backend))


@pytest.fixture
def pg_services(make_db: Callable[[str], str]) -> Iterator[Services]:
    """For what only PostgreSQL has: row locks one transaction can wait on while others go on."""
    yield from _services(make_db("postgres"))


# -- the independent replay ----------------------------------------------------------------


@dataclasses.dataclass
class Book:
    """What the test knows besides the journal: the rates it published and the fee rate in force
    for each day's run."""

    rates: dict[dt.date, Decimal] = dataclasses.field(default_factory=dict)
    fee_rate: dict[dt.date, Decimal] = dataclasses.field(default_factory=dict)
    #: standard (queued) redemptions: order id -> the estimate given when it was requested
    estimates: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)

    def publish(self, services: Services, day: dt.date, rate: Decimal) -> None:
        services.staking.publish_rate(PRODUCT, day, rate)
        self.rates[day] = rate


def token_entries(services: Services, uid: str) -> list[tuple[dt.datetime, int, Decimal]]:
    """(time, entry id, net change of the user's free tokens) per journal entry, in time order."""
    postings = services.accounts.journal(uid, limit=1000)
    assert len(postings) < 1000, "replay needs the whole journal"
    by_entry: dict[int, list[Any]] = {}
    for p in postings:
        if p.ccy != TOKEN or p.bucket != "available" or p.acct_type not in (FUNDING, TRADING):
            continue
        at, delta = by_entry.setdefault(p.entry_id, [p.created_at, ZERO])
        assert at == p.created_at
        by_entry[p.entry_id][1] = delta + p.amount
    return sorted((at, entry_id, delta) for entry_id, (at, delta) in by_entry.items())


def replay_eligible(entries: list[tuple[dt.datetime, int, Decimal]], start: dt.datetime, end: dt.datetime
                    ) -> Decimal:
    """Brute force: the balance before the day and after every entry of the day, the minimum."""
    opening = sum((d for at, _, d in entries if at < start), ZERO)
    day = [d for at, _, d in entries if start <= at < end]
    balances = [opening + sum(day[:k], ZERO) for k in range(len(day) + 1)]
    return max(min(balances), ZERO)


def expected_rewards(services: Services, uid: str, days: list[dt.date], book: Book) -> dict[str, dict[str, Any]]:
    entries = token_entries(services, uid)
    # the replay reaches every balance the ledger holds now
    held = sum((b.available for t in (FUNDING, TRADING) for b in services.assets.balances(uid, t, [TOKEN])), ZERO)
    assert sum((d for _, _, d in entries), ZERO) == held
    out = {}
    for day in days:
        period = services.calendar.period_of_day(day)
        amount = replay_eligible(entries, period.start, period.end)
        paid = reward(amount, rate_for(day, book.rates), book.fee_rate.get(day, ZERO), PRECISION)
        if paid.gross > 0:
            out[day.isoformat()] = {"eligible": amount, "gross": paid.gross, "net": paid.net, "fee": paid.fee}
    return out


def actual_rewards(services: Services, uid: str) -> dict[str, dict[str, Any]]:
    return {r["day"]: {k: r[k] for k in ("eligible", "gross", "net", "fee")}
            for r in services.staking.rewards_of(uid, PRODUCT)}


def run_days(services: Services) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(r["day"]) for r in services.staking.reward_runs(PRODUCT, limit=1000))


def check_against_replay(services: Services, uids: list[str], book: Book) -> None:
    days = run_days(services)
    for uid in uids:
        assert actual_rewards(services, uid) == expected_rewards(services, uid, days, book), uid


def next_day_start(services: Services) -> tuple[dt.date, dt.datetime]:
    day = services.calendar.day(services.clock.now()) + dt.timedelta(days=1)
    return day, services.calendar.period_of_day(day).start


def staker(services: Services, eth: str = "10") -> str:
    uid = services.accounts.create_user(kyc_level=2, accept_terms=(PRODUCT,)).uid
    services.chain.credit_deposit(uid, PRODUCT, Decimal(eth))
    return uid


def move(services: Services, uid: str, amt: str, frm: int, to: int, **kw: Any) -> None:
    services.assets.transfer(uid, TransferRequest(TOKEN, Decimal(amt), frm, to, **kw))


def free_tokens(services: Services, uid: str, acct_type: int) -> Decimal:
    found = services.assets.balances(uid, acct_type, [TOKEN])
    return found[0].available if found else ZERO


# -- worked scenarios -------------------------------------------------------------------------


def test_worked_example_matches_hand_figures_and_replay(services: Services) -> None:
    book = Book()
    d1, start = next_day_start(services)
    d2, d3, d4 = (d1 + dt.timedelta(days=i) for i in (1, 2, 3))
    services.advance_clock(to=start + dt.timedelta(hours=1))
    book.publish(services, d1, Decimal("0.0284"))
    a, b = staker(services), staker(services)
    services.staking.purchase(a, PRODUCT, Decimal("2.5"))
    services.staking.purchase(b, PRODUCT, Decimal("4"))

    # D2: b moves tokens to trading and back (still held: still earns), then redeems 1 (fast)
    # and parks another 0.5 in trading; a does nothing.
    at = services.calendar.period_of_day(d2).start
    services.advance_clock(to=at + dt.timedelta(hours=9))
    move(services, b, "3", FUNDING, TRADING)
    services.advance_clock(to=at + dt.timedelta(hours=10))
    move(services, b, "3", TRADING, FUNDING)
    services.staking.redeem(b, PRODUCT, Decimal(1))
    move(services, b, "0.5", FUNDING, TRADING)
    # D3: new rate with a service fee from D3's run on; b buys more (earns from D4)
    services.advance_clock(to=services.calendar.period_of_day(d3).start + dt.timedelta(hours=12))
    book.publish(services, d3, Decimal("0.05"))
    services.staking.update_product(PRODUCT, {"service_fee_rate": "0.1"})
    book.fee_rate.update({d3: Decimal("0.1"), d4: Decimal("0.1")})
    services.staking.purchase(b, PRODUCT, Decimal(2))
    services.advance_clock(to=services.calendar.period_of_day(d4).end + dt.timedelta(minutes=1))

    ra, rb = actual_rewards(services, a), actual_rewards(services, b)
    # D1: both bought during the day -> nothing
    assert d1.isoformat() not in ra and d1.isoformat() not in rb
    # D2: 2.5 * 0.0284 / 365 = 0.00019452 (rounded down), no fee yet
    assert ra[d2.isoformat()] == {"eligible": Decimal("2.5"), "gross": Decimal("0.00019452"),
                                  "net": Decimal("0.00019452"), "fee": ZERO}
    # b: 4 -> (trading move keeps 4) -> 3 after the redemption; minimum 3
    assert rb[d2.isoformat()]["eligible"] == Decimal(3)
    # D3: the D2 reward was posted at 00:00 of D3, so it earns only from D4; rate 0.05, fee 10 %
    # 2.5 * 0.05 / 365 = 0.000342465... -> 0.00034246; net 0.000308214 -> 0.00030821
    assert ra[d3.isoformat()] == {"eligible": Decimal("2.5"), "gross": Decimal("0.00034246"),
                                  "net": Decimal("0.00030821"), "fee": Decimal("0.00003425")}
    assert rb[d3.isoformat()]["eligible"] == Decimal(3)  # bought 2 more during D3: not yet
    # D4: the D2 reward now earns; the D3 one (posted at 00:00 of D4) not yet
    assert ra[d4.isoformat()]["eligible"] == Decimal("2.50019452")
    assert rb[d4.isoformat()]["eligible"] == Decimal(5) + rb[d2.isoformat()]["net"]
    check_against_replay(services, [a, b], book)

    # the balance endpoint's accrual figures are the net amounts
    bal = services.staking.balance(a, PRODUCT)
    assert bal is not None
    assert bal.latest_accrual == ra[d4.isoformat()]["net"]
    assert bal.total_accrual == sum((r["net"] for r in ra.values()), ZERO)
    assert services.audit().ok


def test_no_rate_pays_nothing_and_rates_carry_forward(services: Services) -> None:
    book = Book()
    d1, start = next_day_start(services)
    services.advance_clock(to=start)
    a = staker(services)
    services.staking.purchase(a, PRODUCT, Decimal(5))
    # D2 has no rate at all yet: its run pays nothing. D3 gets one, D4 and D5 carry it forward.
    d3 = d1 + dt.timedelta(days=2)
    services.advance_clock(to=services.calendar.period_of_day(d3).start + dt.timedelta(hours=3))
    book.publish(services, d3, Decimal("0.0365"))
    services.advance_clock(by=dt.timedelta(days=3))
    got = actual_rewards(services, a)
    assert sorted(got) == [(d3 + dt.timedelta(days=i)).isoformat() for i in range(3)]
    assert got[d3.isoformat()]["gross"] == Decimal("0.0005")  # 5 * 0.0365 / 365
    runs = {r["day"]: r for r in services.staking.reward_runs(PRODUCT)}
    assert runs[(d1 + dt.timedelta(days=1)).isoformat()]["rate"] is None
    assert runs[(d1 + dt.timedelta(days=1)).isoformat()]["holders"] == 0
    assert runs[(d3 + dt.timedelta(days=1)).isoformat()]["rate"] == Decimal("0.0365")
    check_against_replay(services, [a], book)
    assert services.audit().ok


def test_a_day_is_never_paid_twice(services: Services) -> None:
    book = Book()
    d1, start = next_day_start(services)
    services.advance_clock(to=start)
    book.publish(services, d1, Decimal("0.0284"))
    a = staker(services)
    services.staking.purchase(a, PRODUCT, Decimal(3))
    services.advance_clock(by=dt.timedelta(days=3))
    before = (actual_rewards(services, a), services.accounts.journal(a, limit=1000),
              services.staking.reward_runs(PRODUCT), services.assets.balances(a, FUNDING, [TOKEN]))
    assert len(before[0]) == 2
    jobs = {job.name: job for job in services.jobs.jobs}
    for day in (d1, d1 + dt.timedelta(days=1), d1 + dt.timedelta(days=2)):
        period = services.calendar.period_of_day(day)
        for name in (f"staking_rewards:{PRODUCT}", f"staking_settlement:{PRODUCT}"):
            assert services.runner.run_one(jobs[name], period) is None
    assert services.advance_clock(by=dt.timedelta(0)) == []
    # even the job's chunk and finish steps, called again past the runner's claims, cannot pay a day
    # twice: the day's rows are keyed by (product, day[, uid]) and the whole transaction rolls back
    run = jobs[f"staking_rewards:{PRODUCT}"].run
    assert isinstance(run, Chunked)
    params = {"rate": "0.0284", "chunks": "1"}
    for day in (d1, d1 + dt.timedelta(days=1), d1 + dt.timedelta(days=2)):
        period = services.calendar.period_of_day(day)
        if day != d1:  # (d1 paid nobody: the coins were bought that day)
            with pytest.raises((sqlalchemy.exc.IntegrityError, sqlite3.IntegrityError)), \
                    services.db.write() as conn:
                run.chunk(conn, period, params, Chunk(0, None, None))
        with pytest.raises((sqlalchemy.exc.IntegrityError, sqlite3.IntegrityError)), services.db.write() as conn:
            run.finish(conn, period, params, dict.fromkeys(run.totals, Decimal(0)))
    after = (actual_rewards(services, a), services.accounts.journal(a, limit=1000),
             services.staking.reward_runs(PRODUCT), services.assets.balances(a, FUNDING, [TOKEN]))
    assert after == before
    # and the rate of a day whose run happened can no longer change
    with pytest.raises(DomainError):
        services.staking.publish_rate(PRODUCT, d1 + dt.timedelta(days=1), Decimal("0.9"))
    assert services.audit().ok


@pytest.mark.parametrize("late", [False, True])
def test_same_moment_as_the_run_and_late_runs(services: Services, late: bool) -> None:
    """Postings at exactly 00:00 belong to the new day, like the rewards posted then; late runs
    (a worker that was down) must see the same balances as on-time ones."""
    book = Book()
    d1, start = next_day_start(services)
    d2, d3 = d1 + dt.timedelta(days=1), d1 + dt.timedelta(days=2)
    services.advance_clock(to=start)
    book.publish(services, d1, Decimal("0.0284"))
    a, b = staker(services), staker(services)
    services.staking.purchase(a, PRODUCT, Decimal(4))
    services.staking.purchase(b, PRODUCT, Decimal(4))
    clock = services.sandbox_clock
    assert clock is not None

    def go(to: dt.datetime) -> None:
        if late:
            clock.set_to(to)  # no runs happen
        else:
            services.advance_clock(to=to)

    go(services.calendar.period_of_day(d2).start)  # exactly 00:00 of D2
    services.staking.redeem(a, PRODUCT, Decimal(3))
    move(services, b, "4", FUNDING, TRADING)
    go(services.calendar.period_of_day(d2).start + dt.timedelta(hours=23, minutes=59))
    move(services, b, "1", TRADING, FUNDING)
    services.staking.redeem(b, PRODUCT, Decimal("0.5"))
    go(services.calendar.period_of_day(d3).start)
    services.staking.purchase(a, PRODUCT, Decimal(1))
    move(services, b, "3", TRADING, FUNDING)
    go(services.calendar.period_of_day(d3).start + dt.timedelta(hours=1))
    services.staking.redeem(b, PRODUCT, Decimal(3))
    services.advance_clock(to=services.calendar.period_of_day(d3).end + dt.timedelta(seconds=1))

    got_a, got_b = actual_rewards(services, a), actual_rewards(services, b)
    assert got_a[d2.isoformat()]["eligible"] == Decimal(1)
    assert got_b[d2.isoformat()]["eligible"] == Decimal("3.5")
    assert got_a[d3.isoformat()]["eligible"] == Decimal(1)  # the D2 reward and the D3 purchase: from D4
    # b sold 3 of its 3.5 during D3; the D2 reward (posted at 00:00 of D3) was still there then
    assert got_b[d3.isoformat()]["eligible"] == Decimal("0.5") + got_b[d2.isoformat()]["net"]
    check_against_replay(services, [a, b], book)
    assert services.audit().ok


# -- random days, both backends -----------------------------------------------------------------

KINDS = ("purchase", "to_trading", "to_funding", "redeem", "cancel", "to_sub", "from_sub", "sub_to_master")


@dataclasses.dataclass(frozen=True)
class Action:
    minute: int  # of the T-day, 0 = exactly 00:00
    kind: str
    actor: int  # 0 = master, 1 = its sub-account, 2 = an unrelated user
    share: Decimal  # of what the actor could use


@dataclasses.dataclass(frozen=True)
class Plan:
    rates: tuple[Decimal | None, ...]  # published for day 1..3 (None: nothing published that day)
    fee_rate: Decimal
    late: tuple[bool, ...]  # the run at the end of day 1 / day 2 happens late
    days: tuple[tuple[Action, ...], ...]


actions = st.builds(
    Action,
    minute=st.one_of(st.just(0), st.integers(0, 1439), st.sampled_from([1, 720, 1439])),
    kind=st.sampled_from(KINDS),
    actor=st.integers(0, 2),
    share=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.1"), Decimal("0.37")]),
)
plans = st.builds(
    Plan,
    rates=st.tuples(*[st.one_of(st.none(), st.sampled_from([ZERO, Decimal("0.0284"), Decimal("0.12345678"),
                                                          Decimal(3)]))] * 3),
    fee_rate=st.sampled_from([ZERO, Decimal("0.1"), Decimal("0.33333333"), Decimal(1)]),
    late=st.tuples(st.booleans(), st.booleans()),
    days=st.tuples(*[st.lists(actions, max_size=6).map(lambda xs: tuple(sorted(xs, key=lambda a: a.minute)))] * 3),
)

_counter = itertools.count()


def _amount(value: Decimal, share: Decimal) -> Decimal:
    return round_down(value * share, PRECISION)


def perform(services: Services, book: Book, users: list[str], sub_name: str, action: Action) -> None:
    uid = users[action.actor]
    master = users[0]
    try:
        if action.kind == "purchase":
            eth = services.assets.balances(uid, FUNDING, [PRODUCT])[0].available
            services.staking.purchase(uid, PRODUCT, max(_amount(eth, action.share), Decimal("0.01")))
        elif action.kind == "to_trading":
            move(services, uid, str(_amount(free_tokens(services, uid, FUNDING), action.share)), FUNDING, TRADING)
        elif action.kind == "to_funding":
            move(services, uid, str(_amount(free_tokens(services, uid, TRADING), action.share)), TRADING, FUNDING)
        elif action.kind == "redeem":
            order = services.staking.redeem(uid, PRODUCT, _amount(free_tokens(services, uid, FUNDING), action.share))
            if not order.fast:
                assert order.est_completed_time is not None
                book.estimates[order.ord_id] = order.est_completed_time
        elif action.kind == "cancel":
            orders = services.staking.history(uid, PRODUCT, HistoryQuery(type="redeem"))
            pending = [o for o in orders if o.status == "pending"]
            if pending:
                services.staking.cancel(uid, PRODUCT, pending[0].ord_id)
        elif action.kind == "to_sub":
            move(services, master, str(_amount(free_tokens(services, master, FUNDING), action.share)), FUNDING,
                 FUNDING, type=1, sub_acct=sub_name)
        elif action.kind == "from_sub":
            move(services, master, str(_amount(free_tokens(services, users[1], FUNDING), action.share)), FUNDING,
                 FUNDING, type=2, sub_acct=sub_name)
        elif action.kind == "sub_to_master":
            move(services, users[1], str(_amount(free_tokens(services, users[1], TRADING), action.share)), TRADING,
                 FUNDING, type=3)
    except DomainError:
        pass  # refused (nothing to move, below a minimum, already scheduled, ...): changes nothing


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(plan=plans)
def _one_plan(services: Services, book: Book, plan: Plan) -> None:
    d1, start = next_day_start(services)
    days = [d1 + dt.timedelta(days=i) for i in range(3)]
    for day, rate in zip(days, plan.rates, strict=True):
        if rate is not None:
            book.publish(services, day, rate)
    services.staking.update_product(PRODUCT, {"service_fee_rate": str(plan.fee_rate)})
    for day in days:
        book.fee_rate[day] = plan.fee_rate
    services.advance_clock(to=start)
    n = next(_counter)
    master = staker(services)
    sub_name = f"sub{n}x{master}"[:32]
    sub = services.accounts.create_sub_account(parent_uid=master, sub_name=sub_name).uid
    services.chain.credit_deposit(sub, PRODUCT, Decimal(10))
    other = staker(services)
    users = [master, sub, other]
    # everyone stakes 3 on D1 (new users: D1 itself pays nothing, "bought today earns nothing")
    for uid in users:
        services.staking.purchase(uid, PRODUCT, Decimal(3))
    clock = services.sandbox_clock
    assert clock is not None
    for i, (day, todays) in enumerate(zip(days, plan.days, strict=True)):
        day_start = services.calendar.period_of_day(day).start
        for action in todays:
            at = max(day_start + dt.timedelta(minutes=action.minute), services.clock.now())
            if i > 0 and plan.late[i - 1]:
                clock.set_to(at)
            else:
                services.advance_clock(to=at)
            perform(services, book, users, sub_name, action)
    services.advance_clock(to=services.calendar.period_of_day(days[-1]).end)
    check_against_replay(services, users, book)


def test_random_days_agree_with_the_rules(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random intra-day actions over three days: the engine's rewards (SQL on PostgreSQL, the
    streamed pure rules on SQLite) equal the rules applied to a brute-force replay."""
    # tiny pages, so that SQLite's paged reward and credit passes turn many pages
    monkeypatch.setattr(runs, "REWARD_PAGE", 2)
    monkeypatch.setattr(journal, "CREDIT_PAGE", 2)
    book = Book()
    services.staking.update_product(PRODUCT, {"fast_redemption_daily_limit": "2", "daily_redemption_cap": "4",
                                              "unbonding_days": 1})
    _one_plan(services, book)
    assert services.audit().ok
    paid = defaultdict(Decimal)
    for run in services.staking.reward_runs(PRODUCT, limit=1000):
        paid[run["day"]] += run["gross"]
    assert any(v > 0 for v in paid.values())
    # queued redemptions complete no later than first estimated, and the estimate ends up exact
    completed = 0
    for ord_id, first in book.estimates.items():
        order = services.staking.order(ord_id)
        if order.status == "success":
            completed += 1
            assert order.completed_time is not None and order.completed_time <= first
            assert order.est_completed_time == order.completed_time
    assert completed > 0


# -- cases that once disagreed with the rules ---------------------------------------------------


def test_pg_reward_is_rounded_down_at_every_precision(services: Services, backend: str,
                                                     request: pytest.FixtureRequest) -> None:
    """Rule 2/5.2: gross = round_down(eligible * rate / 365) to the product precision (0..18).
    ``_PG_REWARDS`` must stay exact at 17-18 decimals: a division by 10^p there would be rounded
    by PostgreSQL to ~16 significant digits (it once paid 2.7397260273972603 here)."""
    book = Book()
    services.staking.update_product(PRODUCT, {"precision": 18})
    d1, start = next_day_start(services)
    services.advance_clock(to=start)
    book.publish(services, d1, Decimal(1))
    a = staker(services, "2000")
    services.staking.purchase(a, PRODUCT, Decimal(1000))
    services.advance_clock(to=services.calendar.period_of_day(d1 + dt.timedelta(days=1)).end)
    got = actual_rewards(services, a)[(d1 + dt.timedelta(days=1)).isoformat()]
    # 1000 * 1 / 365 = 2.739726027397260273972...; PostgreSQL pays 2.7397260273972603
    assert got["gross"] == Decimal("2.739726027397260273")
    assert got == dataclasses.asdict(reward(Decimal(1000), Decimal(1), ZERO, 18)) | {"eligible": Decimal(1000)}


def recording(errors: list[BaseException]) -> Callable[[Callable[[], object]], Callable[[], None]]:
    """Wrap a thread's target so that what it raises lands in ``errors`` for the test to assert."""
    def wrap(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
        return run
    return wrap


@dataclasses.dataclass
class _PausingClock:
    """The staking service's clock, pausing the use case right after it read the time (inside its
    transaction) until the test lets it go: the moment a real worker reaching midnight, or a slow
    request, can be caught in while the day's run starts."""

    services: Services
    inside: threading.Event = dataclasses.field(default_factory=threading.Event)
    go: threading.Event = dataclasses.field(default_factory=threading.Event)

    def now(self) -> dt.datetime:
        moment = self.services.clock.now()
        self.inside.set()
        assert self.go.wait(30)
        return moment


def staked_4_until_a_second_before_day_2_ends(services: Services) -> tuple[Book, str, dt.date, dt.datetime]:
    """A user who bought 4 on day 1 (rate 0.0284), the clock at 23:59:59 of day 2: (book, uid, day 2,
    end of day 2)."""
    book = Book()
    d1, start = next_day_start(services)
    d2 = d1 + dt.timedelta(days=1)
    services.advance_clock(to=start)
    book.publish(services, d1, Decimal("0.0284"))
    a = staker(services)
    services.staking.purchase(a, PRODUCT, Decimal(4))
    end = services.calendar.period_of_day(d2).end
    services.advance_clock(to=end - dt.timedelta(seconds=1))
    return book, a, d2, end


def test_a_posting_of_the_day_in_flight_when_its_run_starts_is_counted(services: Services) -> None:
    """Rule 5.1: eligible(D) counts every posting timestamped within D. A redemption stamped
    23:59:59 of D whose transaction is still open when D's reward run starts must be seen by the
    run: the run waits behind the ledger barrier (``Database.write``) until it has committed."""
    book, a, d2, end = staked_4_until_a_second_before_day_2_ends(services)
    clock = _PausingClock(services)
    services.staking.clock = clock  # type: ignore[assignment]
    errors: list[BaseException] = []
    guarded = recording(errors)
    redeem = threading.Thread(target=guarded(lambda: services.staking.redeem(a, PRODUCT, Decimal(3))))
    runner = threading.Thread(target=guarded(lambda: services.advance_clock(to=end + dt.timedelta(minutes=1))))
    redeem.start()
    assert clock.inside.wait(30)  # the redemption has read 23:59:59 inside its transaction
    runner.start()  # the run of D2 is due now and starts while the redemption is in flight
    time.sleep(0.5)
    clock.go.set()
    redeem.join(30)
    runner.join(60)
    services.staking.clock = services.clock
    assert not errors, errors
    # the journal says: held 4 all D2 until 23:59:59, then 1 -> eligible(D2) = 1
    assert actual_rewards(services, a)[d2.isoformat()]["eligible"] == Decimal(1)
    check_against_replay(services, [a], book)


def test_a_redemption_waiting_on_a_lock_at_midnight_is_not_missed(pg_services: Services) -> None:
    """The same on PostgreSQL with real concurrency and no test double: the redemption is stamped
    23:59:59 and waits for a row lock; meanwhile D's reward run computes without it."""
    services = pg_services
    book, a, d2, end = staked_4_until_a_second_before_day_2_ends(services)

    def lock_waits() -> int:
        with services.db.engine.connect() as c:
            return int(c.execute(sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar_one())

    errors: list[BaseException] = []
    attempt = recording(errors)
    blocker = services.db.engine.connect()
    tx = blocker.begin()
    blocker.execute(sqlalchemy.text("SELECT id FROM ledger_accounts WHERE owner = :o AND ccy = :c FOR UPDATE"),
                    {"o": f"u:{a}", "c": TOKEN})
    redeem = threading.Thread(target=attempt(lambda: services.staking.redeem(a, PRODUCT, Decimal(3))))
    runner = threading.Thread(target=attempt(lambda: services.advance_clock(to=end + dt.timedelta(minutes=1))))
    try:
        redeem.start()
        deadline = time.monotonic() + 10
        while lock_waits() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        runner.start()  # the run computes D2 now; it then waits on the same row to credit the reward
        while lock_waits() < 2 and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tx.rollback()
        blocker.close()
        redeem.join(30)
        runner.join(30)
    assert not errors
    assert actual_rewards(services, a)[d2.isoformat()]["eligible"] == Decimal(1)
    check_against_replay(services, [a], book)
