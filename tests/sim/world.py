"""The seeded generator and driver of the deterministic simulation (issue 19, scope 6).

One ``random.Random(seed)`` decides everything: the installation's settings (each liquid product's
fee rate, daily redemption cap and fast allowance; the provider products' precision, minimum, cap
and unbonding days; the spot fee rates, instrument rules and index prices; the withdrawal chains'
fee, minimum, maximum and confirmations and the review time; the DCD series' tenors, strikes, sizes,
quotas, volatility and margin), the users, every operation and its amount, which process runs it,
how far the clock moves, and where the process "crashes". Operations go through
:class:`stakehouse.wiring.Services` (the service layer is the public interface here) on a SQLite
file or a PostgreSQL database (where the runs' chunks go on two connections at once); after every
step the audit (unless nothing was committed since it last passed: :meth:`World.data_version`), the
users' balances (funding, trading, provider staking), credits and reward rows are compared with
:class:`tests.sim.model.Model`.

Two processes share the database (two ``Services`` on it, as API workers and the job worker): each
step runs on one of them, chosen by the seed (:data:`SWITCH_P`), so no process may rely on what it
alone remembers once the other has changed the database.

Crashes, without mocks or hooks in the code:

* **restart** between steps: ``Services.close()`` of the step's process and a new ``Services`` on the
  same database (all its in-process state is lost; the sandbox clock must come back from the
  database, frozen);
* **inside a run**: a trigger makes the database refuse one write of the daily runs (a chunk of
  a liquid reward or settlement run, of the provider interest run or of the ND rebate run marked
  done, a reward run's plan or finish, a settlement, interest or rebate run's last statement, a
  DCD product's fixing or payment); the transaction rolls back whole
  and the error comes out of ``advance_clock``. The trigger is dropped, the process restarts, one of
  the two processes (either) resumes what is due with ``advance_clock(by=0)``, then the clock goes
  on to where the step wanted it: nothing may be paid twice or skipped;
* **inside an operation**: a trigger refuses the operation's postings; nothing of it may remain.

No wall time is read: the database is created with its sandbox clock frozen at ``START``, and only
the simulation moves it. (The uids are random: the service makes them, and the model knows users by
their creation order; they decide which chunk of a reward run a user falls in, nothing else.)
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import random
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import psycopg
import structlog
from sqlalchemy import make_url

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.db.engine import Database, libpq_conninfo
from stakehouse.db.migrate import upgrade
from stakehouse.db.tables import clock_state
from stakehouse.dcd.service import QuoteRequest
from stakehouse.errors import DomainError
from stakehouse.funding.withdrawals import WithdrawalRequest
from stakehouse.security import new_server_key
from stakehouse.trading.service import PlaceRequest
from stakehouse.wiring import Services
from tests.sim.model import (
    DCD_FLOAT_SLACK,
    FUNDING,
    HKT_OFFSET,
    SCALES,
    TRADING,
    ZERO,
    Credit,
    DcdProduct,
    FdBroker,
    Instrument,
    Markets,
    Model,
    Product,
    Redemption,
    RewardRow,
    SpotOrder,
    StakingProduct,
    Withdrawal,
    WithdrawalChain,
    accrual_end_after,
    dcd_annual_yield,
    dcd_markup_units,
    dcd_yield,
    floor_to,
)

T = TypeVar("T")
START = dt.datetime(2031, 1, 6, 9, 0, tzinfo=dt.UTC)
#: The liquid products: (name, staked asset, token, unbonding days, the default fast allowance).
PRODUCTS = (("ETH", "ETH", "BETH", 5, Decimal(100)), ("SOL", "SOL", "OKSOL", 3, Decimal(240)))
NAMES = tuple(name for name, *_ in PRODUCTS)
TRIGGER = "sim_crash"
#: Probabilities per step.
RESTART_P = 0.015
#: Two processes share the database, as API workers and the job worker do (two ``Services`` on it); a
#: step runs on one of them, the other with probability ``SWITCH_P``: no process may rely on what it
#: alone remembers (its runner's progress, its caches) after the other has changed the database.
PROCESSES = 2
SWITCH_P = 0.3
OP_CRASH_P = 0.03
RUN_CRASH_P = 0.25
#: Of the users created, the share that are sub-accounts of an earlier master.
SUB_P = 0.35
#: Of the redemptions, the share made by a member of a group that has drawn on today's fast allowance.
GROUP_P = 0.4
#: (kind, weight) of the operations.
OPS = (("create_user", 4), ("deposit", 14), ("transfer", 12), ("purchase", 20), ("redeem", 14), ("cancel", 4),
       ("publish_rate", 5), ("stake", 10), ("unstake", 7), ("publish_staking_rate", 3), ("sub_transfer", 5),
       ("order", 16), ("cancel_order", 3), ("set_price", 6), ("withdraw", 6), ("cancel_withdrawal", 3),
       ("dcd", 6), ("fee_change", 3), ("credit", 6), ("fd_expired", 1), ("fee_level", 3), ("trade", 4),
       ("advance", 18))
#: A new user is a sub-account of the ND broker with probability ``SUB_P * ND_P`` (else, with ``SUB_P``,
#: a plain master's sub-account).
ND_P = 0.5
#: How many orders one order step places (one user's).
ORDER_BURSTS = (1, 1, 2, 3)
#: The share of orders (and of transfers, which fund them) made by the ND broker's sub-accounts.
ND_ORDER_P = 0.35
#: The spot instruments traded, and the decimals of the index prices the operator sets on them.
INSTRUMENTS = (("ETH-USDT", "ETH", 2), ("SOL-USDT", "SOL", 3))
#: The scopes of the ND broker's fee changes: (instType, quoteCcyType, mgnType, covers a spot USDT pair).
FEE_SCOPES = (("", "", "", True), ("SPOT", "", "", True), ("SPOT", "2", "", True), ("SPOT", "3", "", False),
              ("SWAP", "", "", False), ("SWAP", "", "1", False), ("FUTURES", "", "2", False))
#: The FD broker's rebate ratio and its users' share, drawn from; the share of orders tagged with its
#: code, and with a code no broker has.
FD_RATIOS = (Decimal("0.2"), Decimal("0.3"), Decimal("0.5"))
FD_CLIENT_RATIOS = (ZERO, Decimal("0.25"), Decimal("0.5"))
FD_TAG_P = 0.3
UNKNOWN_TAG_P = 0.03
#: The FD broker's types drawn from; the share of orders placed with an OAuth token (of the FD broker's own
#: client, else of another broker's).
FD_TYPES = (("api",), ("oauth",), ("api", "oauth"), ("api", "oauth"))
OAUTH_P = 0.4
OWN_CLIENT_P = 0.8
#: The fee levels used (all users start at Lv1), and the monthly rebate caps drawn from.
LEVELS = ("Lv1", "VIP4", "VIP6")
CAPS = (None, Decimal("0.2"), Decimal("1"), Decimal("5"), Decimal("20"), Decimal("100"))
#: The chains withdrawn on.
CHAINS = ("ETH-ERC20", "USDT-ERC20")
#: Where a run (of product {p}) is made to fail: (label, the table whose UPDATE is refused, when).
RUN_CRASHES = (
    ("{p} reward chunk {k} done", "job_run_chunks",
     "NEW.job = 'staking_rewards:{p}' AND NEW.chunk = {k} AND NEW.done_at IS NOT NULL"),
    ("{p} reward run planned", "job_run_plans", "NEW.job = 'staking_rewards:{p}' AND NEW.finished_at IS NULL"),
    ("{p} reward run finish", "job_runs", "NEW.job = 'staking_rewards:{p}'"),
    ("{p} settlement run", "job_runs", "NEW.job = 'staking_settlement:{p}'"),
    ("{p} settlement chunk {k} done", "job_run_chunks",
     "NEW.job = 'staking_settlement:{p}' AND NEW.chunk = {k} AND NEW.done_at IS NOT NULL"),
    ("provider interest chunk {k} done", "job_run_chunks",
     "NEW.job = 'provider_interest' AND NEW.chunk = {k} AND NEW.done_at IS NOT NULL"),
    ("provider interest finish", "job_runs", "NEW.job = 'provider_interest'"),
    ("provider settlement run", "job_runs", "NEW.job = 'provider_settlement'"),
    ("ND rebate chunk {k} done", "job_run_chunks",
     "NEW.job = 'nd_rebates' AND NEW.chunk = {k} AND NEW.done_at IS NOT NULL"),
    ("ND rebate run", "job_runs", "NEW.job = 'nd_rebates'"),
    ("DCD fixing", "dcd_orders", "NEW.state = 'pending_settled'"),
    ("DCD payment", "dcd_orders", "NEW.state = 'settled'"),
)


class SimulationFailure(AssertionError):
    """A violation: the seed, the step and the last operations, enough to reproduce it."""


def quiet_logs() -> None:
    """Drop the services' info logs (thousands per seed)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))


def create_database(url: str, start: dt.datetime) -> str:
    """An empty database made a sandbox one whose clock is frozen at ``start`` before any service
    reads it; on PostgreSQL, with the function the crash triggers call."""
    db = Database(url)
    try:
        upgrade(db)
        with db.write() as conn:
            conn.execute(clock_state.insert().values(id=1, base_time=start, base_wall=start, running=False))
            if not db.is_sqlite:
                conn.exec_driver_sql(f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS "
                                     "$$ BEGIN RAISE EXCEPTION 'sim crash'; END $$")
    finally:
        db.dispose()
    return url


@dataclasses.dataclass
class Stats:
    steps: int = 0
    ops: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def add(self, key: str) -> None:
        self.ops[key] += 1


class World:
    def __init__(self, seed: int, directory: Path, *, url: str = "", days: int = 30, users: tuple[int, int] = (8, 15),
                 full_check_every: int = 10) -> None:
        """On a SQLite file in ``directory``, or on the empty database at ``url`` (PostgreSQL)."""
        self.seed = seed
        self.days = days
        self.rng = random.Random(seed)
        self.url = create_database(url or f"sqlite:///{directory / f'sim-{seed}.db'}", START)
        self.sqlite = self.url.startswith("sqlite")
        self.armed = ""  # the table of the crash trigger in place
        self.server_key = new_server_key()  # encrypts API secrets only; nothing here depends on it
        self.max_users = self.rng.randint(*users)
        self.review_seconds = self.rng.choice([0, 60, 1800, 7200])
        self.full_check_every = full_check_every
        self.log: collections.deque[str] = collections.deque(maxlen=20)
        self.stats = Stats()
        self.step = 0
        #: the connections :meth:`data_version` reads on (made at its first call)
        self._sqlite_version: sqlite3.Connection | None = None
        self._pg_version: psycopg.Connection[tuple[object, ...]] | None = None
        #: :meth:`data_version` when the last audit passed
        self.audited: int | str | None = None
        self.svc = self._open()
        #: the processes (``svc`` is the one the current step runs on)
        self.procs = [self.svc]
        assert self.svc.sandbox_clock is not None
        products = []
        for name, staked, token, unbonding, default_fast in PRODUCTS:
            fee = self.rng.choice([ZERO, ZERO, Decimal("0.1"), Decimal("0.25")])
            cap = self.rng.choice([None, None, Decimal(15), Decimal(60)])
            fast = self.rng.choice([default_fast, Decimal(20), Decimal(5), ZERO])
            self.svc.staking.update_product(name, {
                "service_fee_rate": str(fee), "fast_redemption_daily_limit": str(fast),
                "daily_redemption_cap": None if cap is None else str(cap)})
            products.append(Product(name, staked, token, unbonding, fee, cap, fast))
        # One DCD series (ETH/USDT, seeded tenors, strikes, sizes and quotas) is listed daily; the others cost
        # their listing and add nothing: the operator turns them off.
        for row in self.svc.dcd.series():
            self.svc.dcd.set_series(row["ccy"], row["alt_ccy"], {"enabled": False})
        self.dcd_sizes = {
            "C": (Decimal("0.01"), self.rng.choice([Decimal(5), Decimal(200)]), Decimal("0.01"),
                  self.rng.choice([Decimal(3), Decimal(200)])),
            "P": (Decimal(10), self.rng.choice([Decimal(20000), Decimal(10**6)]), Decimal(1),
                  self.rng.choice([Decimal(30000), Decimal(5 * 10**6)]))}
        #: The series' volatility and platform margin (the model prices each quote with them again).
        self.dcd_vol = self.rng.choice([Decimal("0.3"), Decimal("0.55"), Decimal("0.9")])
        self.dcd_margin = self.rng.choice([ZERO, Decimal("0.2"), Decimal("0.35")])
        self.svc.dcd.set_series("ETH", "USDT", {
            "enabled": True, "tenors": self.rng.choice(["1", "1,2", "1,3"]), "vol": self.dcd_vol,
            "margin": self.dcd_margin,
            "strike_pcts": self.rng.choice(["-2,2", "-1,1,3", "-5,-1,1,5"]), "strike_tick": Decimal(10),
            **{f"{side}_{k}": v for side, opt in (("call", "C"), ("put", "P"))
               for k, v in zip(("min", "max", "step", "quota"), self.dcd_sizes[opt], strict=True)}})
        # Prices move only when the simulation pins them (op_set_price): the index walks are held still, as
        # an operator setting prices by hand does, so no minute of them is walked.
        for path in self.svc.prices.paths():
            self.svc.prices.set_path(path.inst_id, walk=False)
        self.provider = self.svc.provider_staking.create_provider("sim").provider_id
        staking = []
        for ccy, queued in (("ETH", True), ("SOL", False)):
            product = StakingProduct(
                ccy, precision=self.rng.choice([8, 8, 9, 6]), queued=queued,
                cap=self.rng.choice([None, Decimal(10), Decimal(40)]) if queued else None,
                unbonding_days=self.rng.randint(0, 3) if queued else 0,
                min_stake=self.rng.choice([ZERO, Decimal("0.1")]))
            self.svc.provider_staking.set_product(self.provider, ccy, {
                "precision": product.precision, "unstake_mode": "queued" if queued else "instant",
                "daily_redemption_cap": None if product.cap is None else str(product.cap),
                "unbonding_days": product.unbonding_days, "min_stake": str(product.min_stake)})
            staking.append(product)
        self.model = Model(START, products, staking)
        self._set_up_markets_and_chains()
        self.note(f"start {START.isoformat()} users<={self.max_users} " + "; ".join(
            f"{p.name}: fee_rate={p.fee_rate} cap={p.cap} fast={p.fast_limit}" for p in products) + "; " + "; ".join(
            f"staking {p.ccy}: precision={p.precision} queued={p.queued} cap={p.cap} unbonding={p.unbonding_days} "
            f"min={p.min_stake}" for p in staking))
        self.uids: list[str] = []
        #: the sub-accounts' names by user
        self.sub_names: dict[int, str] = {}
        #: every redemption the service accepted: (user, order id, the model's queued request or None if fast)
        self.redemptions: list[tuple[int, str, Redemption | None]] = []
        #: every order that rested, and every on-chain withdrawal the service accepted
        self.orders: list[SpotOrder] = []
        self.withdrawals: list[tuple[str, Withdrawal]] = []
        self.broker = 0  # the first user is also an ND broker: its sub-accounts buy DCDs
        self.op_create_user()
        self.svc.broker.set_broker(self.uids[self.broker])
        self.create_nd_sub()  # at least one: DCDs and ND rebates need one
        for _ in range(2):
            self.op_create_user()
        # the next user (a master: the only other master so far is the ND broker) is an FD broker of seeded types
        fd_user = next(i for i, u in enumerate(self.model.users) if u.group == i and i != self.broker)
        ratio, client_ratio = self.rng.choice(FD_RATIOS), self.rng.choice(FD_CLIENT_RATIOS)
        types = self.rng.choice(FD_TYPES)
        code = self.svc.fd_brokers.set_up(self.uids[fd_user], code=None, types=types, ratio=ratio,
                                          client_ratio=client_ratio).code
        self.model.fd = FdBroker(fd_user, code, types, ratio, client_ratio,
                                 client=self.oauth_client(fd_user) if "oauth" in types else "")
        # the ND broker is an FD broker of type oauth too, only so that its OAuth client exists: orders placed with
        # that client's tokens and the first broker's code earn nobody anything (the code is not its broker's)
        self.svc.fd_brokers.set_up(self.uids[self.broker], code=None, types=("oauth",), ratio=Decimal("0.5"),
                                   client_ratio=ZERO)
        self.foreign_client = self.oauth_client(self.broker)
        self.note(f"#{fd_user} is an FD broker: code {code}, types {types}, ratio {ratio}, client ratio "
                  f"{client_ratio}, OAuth client {self.model.fd.client or '-'}; #{self.broker}'s OAuth client "
                  f"{self.foreign_client}")
        self.procs += [self._open() for _ in range(PROCESSES - 1)]

    def oauth_client(self, i: int) -> str:
        """A new OAuth client of FD broker #i (of type oauth): its id."""
        client, _ = self.svc.oauth.register_client(self.uids[i], name=f"sim{i}", redirect_uris=["https://sim.example/cb"],
                                                   scopes=["read_only", "trade"])
        return client.client_id

    def _set_up_markets_and_chains(self) -> None:
        """Seeded fee rates, instrument rules, index prices and withdrawal chains, set as an operator
        sets them; the model gets the same numbers."""
        taker = self.rng.choice([Decimal("0.001"), Decimal("0.002"), Decimal("0.0015")])
        maker = self.rng.choice([Decimal("0.0008"), ZERO, Decimal("0.0005")])
        self.svc.trading.set_fee_level("Lv1", taker=taker, maker=maker)
        instruments, index = [], {}
        for inst_id, base, px_places in INSTRUMENTS:
            tick = self.rng.choice([Decimal("0.01"), Decimal("0.1")] if base == "ETH" else
                                   [Decimal("0.01"), Decimal("0.001")])
            lot = self.rng.choice([Decimal("0.000001"), Decimal("0.0001"), Decimal("0.01")])
            min_sz = self.rng.choice([lot, Decimal("0.001"), Decimal("0.05")])
            max_sz = self.rng.choice([Decimal(9999999999), Decimal(30)])
            self.svc.prices.set_instrument(inst_id, {"tick_sz": tick, "lot_sz": lot, "min_sz": min_sz,
                                                     "max_sz": max_sz})
            px = Decimal(self.rng.randint(1500, 4000) if base == "ETH" else self.rng.randint(50, 250))
            px += Decimal(self.rng.randint(0, 10**px_places - 1)).scaleb(-px_places)
            self.svc.prices.set_price(inst_id, px)
            index[inst_id] = px
            instruments.append(Instrument(inst_id, base, "USDT", tick, lot, min_sz, max_sz))
        self.model.markets = Markets(self.model, instruments, index, taker, maker)
        # two VIP levels at seeded discounts, their monthly rebate caps (VIP4 and up may have one)
        for level in LEVELS[1:]:
            cut = self.rng.choice([Decimal("0.5"), Decimal("0.7"), Decimal("0.8")])
            rates = ((taker * cut).quantize(Decimal("1e-8")), (maker * cut).quantize(Decimal("1e-8")))
            self.svc.trading.set_fee_level(level, taker=rates[0], maker=rates[1])
            self.model.markets.rates[level] = rates
            cap = self.rng.choice(CAPS)
            self.svc.rebates.set_cap(level, cap)
            if cap is not None:
                self.model.caps[level] = cap
            self.note(f"{level}: taker={rates[0]} maker={rates[1]} monthly rebate cap={cap}")
        decimals = {c.chain: c.wd_tick_sz for c in self.svc.chain.chains(["ETH", "USDT"])}
        for chain in CHAINS:
            ccy = chain.split("-")[0]
            fee = self.rng.choice([Decimal("0.0016"), ZERO, Decimal("0.01")] if ccy == "ETH" else
                                  [Decimal(3), ZERO, Decimal("1.5")])
            min_wd = self.rng.choice([Decimal("0.005"), Decimal("0.1")] if ccy == "ETH" else [Decimal(10), Decimal(1)])
            max_wd = self.rng.choice([Decimal(10000), Decimal(50)] if ccy == "ETH" else [Decimal(10**7), Decimal(5000)])
            confirmations = self.rng.choice([1, 12, 64])
            block_seconds = self.rng.choice([12, 600, 3600])
            self.svc.chain.configure_chain(chain, {
                "fee": fee, "min_wd": min_wd, "max_wd": max_wd, "confirmations": confirmations,
                "unlock_confirmations": confirmations, "block_seconds": block_seconds})
            self.model.chains[chain] = WithdrawalChain(chain, ccy, decimals[chain], fee, min_wd, max_wd,
                                                       confirmations, block_seconds)
        self.model.review = dt.timedelta(seconds=self.review_seconds)
        self.note(f"spot: taker={taker} maker={maker} " + "; ".join(
            f"{i.inst_id} tick={i.tick} lot={i.lot} min={i.min_sz} max={i.max_sz} index={index[i.inst_id]}"
            for i in instruments) + f"; withdrawals: review={self.review_seconds}s " + "; ".join(
            f"{c.chain} fee={c.fee} min={c.min_wd} max={c.max_wd} {c.confirmations}x{c.block_seconds}s"
            for c in self.model.chains.values()))

    # -- plumbing ---------------------------------------------------------------------------

    def _open(self) -> Services:
        # chunks of 3 users, on 2 connections at once on PostgreSQL
        return Services(Settings(database_url=self.url, sandbox=True, server_key=self.server_key, admin_token="t",
                                 log_level="WARNING", job_chunk_size=3, job_connections=2,
                                 withdrawal_review_seconds=self.review_seconds))

    def note(self, text: str) -> None:
        self.log.append(f"[{self.step}] {text}")

    def fail(self, message: str) -> SimulationFailure:
        ops = "\n  ".join(self.log)
        return SimulationFailure(
            f"seed {self.seed}, step {self.step} ({self.model.now.isoformat()}): {message}\n"
            f"reproduce: .venv/bin/python bench/simulate.py --seed {self.seed} --days {self.days}"
            f"{'' if self.sqlite else ' --backend postgres'}\n"
            f"last operations:\n  {ops}")

    def sql(self, statement: str) -> None:
        """Run one statement on the database from outside the services (a trigger)."""
        if self.sqlite:
            conn = sqlite3.connect(make_url(self.url).database or "", timeout=30)
            try:
                conn.execute(statement)
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(libpq_conninfo(self.url), autocommit=True) as pg:
                pg.execute(statement.encode())

    def arm(self, table: str, event: str, condition: str = "") -> None:
        """From now on the database refuses ``event`` (INSERT, UPDATE) on ``table`` where
        ``condition`` holds: the transaction doing it rolls back, and its error comes out."""
        if self.sqlite:
            self.sql(f"CREATE TRIGGER {TRIGGER} BEFORE {event} ON {table}" + (f" WHEN {condition}" if condition else "")
                     + " BEGIN SELECT RAISE(ABORT, 'sim crash'); END")
        else:
            self.sql(f"CREATE TRIGGER {TRIGGER} BEFORE {event} ON {table} FOR EACH ROW"
                     + (f" WHEN ({condition})" if condition else "") + f" EXECUTE FUNCTION {TRIGGER}()")
        self.armed = table

    def disarm(self) -> None:
        self.sql(f"DROP TRIGGER {TRIGGER}" + ("" if self.sqlite else f" ON {self.armed}"))
        self.armed = ""

    def restart(self, reason: str) -> None:
        k = self.procs.index(self.svc)
        self.svc.close()
        self.svc = self.procs[k] = self._open()
        self.stats.add("restart")
        self.note(f"restart of process {k} ({reason})")
        assert self.svc.sandbox_clock is not None
        if self.svc.clock_running():
            raise self.fail("the sandbox clock runs again after a restart")

    def check_clock(self) -> None:
        now = self.svc.clock.now()
        if now != self.model.now:
            raise self.fail(f"sandbox clock {now.isoformat()}, model {self.model.now.isoformat()}")

    # -- checks -----------------------------------------------------------------------------

    def data_version(self) -> int | str:
        """A value that changes whenever anything is committed to the database (by the services or by
        :meth:`sql`): SQLite's ``data_version`` as seen by a connection of the simulation's own, which
        changes on every commit of any other connection; PostgreSQL's WAL insert position, which moves
        on every commit anywhere on the server (and on more, so it only ever re-runs an audit)."""
        if self.sqlite:
            if self._sqlite_version is None:
                self._sqlite_version = sqlite3.connect(make_url(self.url).database or "", timeout=30)
            return int(self._sqlite_version.execute("PRAGMA data_version").fetchone()[0])
        if self._pg_version is None:
            self._pg_version = psycopg.connect(libpq_conninfo(self.url), autocommit=True)
        row = self._pg_version.execute(b"SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def check(self, users: list[int] | None = None, *, rewards: bool = False) -> None:
        """The audit (skipped when nothing was committed since the last clean one: its verdict is a
        function of the database alone, which is then the one it passed on), then the users' balances,
        credits, staking balances and, if asked, reward rows against the model (always)."""
        version = self.data_version()
        if version == self.audited:
            self.stats.add("audit_unchanged")
        else:
            report = self.svc.audit()
            if not report.ok:
                raise self.fail(f"audit failed: {report.as_dict()}")
            self.audited = version
        for i in (range(len(self.uids)) if users is None else users):
            self.check_user(i, rewards=rewards)

    def check_user(self, i: int, *, rewards: bool) -> None:
        uid, user = self.uids[i], self.model.users[i]
        for acct in (FUNDING, TRADING):
            got = {b.ccy: (b.available, b.locked) for b in self.svc.assets.balances(uid, acct)
                   if (b.available, b.locked) != (ZERO, ZERO)}
            want = user.expected_balances(acct)
            if got != want:
                raise self.fail(f"user #{i} ({uid}) account {acct}: service {got}, model {want}")
        if i in self.model.nd_subs:
            got_credits = {c.credit_id: (c.state, c.used) for c in self.svc.credits.list(uid, limit=10**6)}
            want_credits = {c.credit_id: (c.state(self.model.now), c.used) for c in self.model.credits if c.user == i}
            if got_credits != want_credits:
                raise self.fail(f"user #{i} ({uid}) credits (id: state, used): service {got_credits}, "
                                f"model {want_credits}")
        staked = {b.ccy: (b.available, b.pending_unstake) for b in self.svc.provider_staking.account_balances(uid)}
        if staked != self.model.staking_balances(i):
            raise self.fail(f"user #{i} ({uid}) staking: service {staked}, model {self.model.staking_balances(i)}")
        if rewards:
            for product in NAMES:
                rows = {dt.date.fromisoformat(r["day"]): RewardRow(r["eligible"], r["gross"], r["net"], r["fee"])
                        for r in self.svc.staking.rewards_of(uid, product)}
                model_rows = user.rewards.get(product, {})
                if rows != model_rows:
                    diff = {d: (rows.get(d), model_rows.get(d)) for d in sorted(set(rows) | set(model_rows))
                            if rows.get(d) != model_rows.get(d)}
                    raise self.fail(f"user #{i} ({uid}) {product} rewards differ (day: service, model): {diff}")

    # -- amounts ----------------------------------------------------------------------------

    def amount_from(self, balance: Decimal, places: int, minimum: Decimal = ZERO) -> tuple[Decimal, str]:
        """An amount against ``balance``: mostly valid, sometimes over it, with too many decimals,
        below the minimum, zero or negative. Returns (amount, what kind)."""
        r = self.rng.random()
        unit = Decimal(1).scaleb(-places)
        if r < 0.06:
            return balance + unit * self.rng.randint(1, 10**6), "over"
        if r < 0.11:
            return unit * self.rng.randint(1, 10**6) + unit / 10, "decimals"
        if r < 0.15 and minimum > 0:
            return max(minimum - unit * self.rng.randint(1, 10**4), unit), "below"
        if r < 0.17:
            return self.rng.choice([ZERO, -unit]), "nonpositive"
        if r < 0.25:
            return balance, "all"
        amount = (balance * Decimal(self.rng.randint(1, 1000)) / 1000).quantize(unit, rounding="ROUND_DOWN")
        return amount if amount > 0 else unit, "part"

    # -- operations -------------------------------------------------------------------------

    def attempt(self, kind: str, expect_ok: bool, action_text: str, fn: Callable[[], T]) -> T | None:
        """Run one user operation, maybe with its postings refused by the database. Returns its
        result, or ``None`` if it was refused (which must be what the model expected)."""
        crash = self.rng.random() < OP_CRASH_P
        if crash:
            self.arm("postings", "INSERT")
        try:
            result: T | None = fn()
        except DomainError as exc:
            self.note(f"{action_text}: refused ({type(exc).__name__}: {exc})")
            if expect_ok and not crash:
                raise self.fail(f"{kind} refused, the model accepts it: {exc}") from exc
            result = None
        except Exception as exc:
            if not crash:
                raise self.fail(f"{kind} raised {type(exc).__name__}: {exc}") from exc
            self.note(f"{action_text}: crashed in the database ({type(exc).__name__})")
            result = None
        else:
            self.note(f"{action_text}: ok")
            if not expect_ok and not crash:
                raise self.fail(f"{kind} accepted, the model refuses it")
            if crash and expect_ok:
                raise self.fail(f"{kind} succeeded although its postings were refused")
        if crash:
            self.disarm()
            self.stats.add("op_crash")
            self.restart("after a refused posting")
            self.check_clock()
            return None
        return result

    def decide(self, kind: str, ok: bool, fn: Callable[[], T]) -> T | None:
        """Run a setting of the operator's or a broker's (it posts nothing, so no crash is injected): the
        service must accept it exactly when the model does. Its result, or ``None`` when refused."""
        try:
            result = fn()
        except DomainError as exc:
            if ok:
                raise self.fail(f"{kind} refused, the model accepts it: {exc}") from exc
            return None
        if not ok:
            raise self.fail(f"{kind} accepted, the model refuses it")
        return result

    def pick_user(self) -> int:
        return self.rng.randrange(len(self.uids))

    def pick_nd_trader(self) -> int:
        """Anyone, but an ND sub-account more often than the others: they trade most (their fills carry
        markups, credits and rebates), so they get more of the deposits and of the fee-level moves."""
        return self.rng.choice(sorted(self.model.nd_subs)) if self.rng.random() < ND_ORDER_P else self.pick_user()

    def pick_holder(self, acct: int, ccy: str, *, masters: bool = False, nd: bool = False) -> int:
        """Mostly a user holding some ``ccy`` in ``acct`` (a master, or an ND sub-account, if asked),
        else anyone: operations on empty accounts are refused, and a few of those are enough."""
        holders = [i for i, u in enumerate(self.model.users)
                   if u.get(acct, ccy) > 0 and (not masters or u.group == i) and (not nd or i in self.model.nd_subs)]
        return self.rng.choice(holders) if holders and self.rng.random() < 0.85 else self.pick_user()

    def create_nd_sub(self) -> list[int]:
        name = f"sim{self.seed}n{len(self.uids)}"
        user = self.svc.broker.create_sub(self.uids[self.broker], sub_name=name)
        self.uids.append(user.uid)
        i = self.model.create_user(self.broker)
        self.sub_names[i] = name
        self.model.nd_subs.add(i)
        self.note(f"create user #{i} {user.uid}, a sub-account of the ND broker #{self.broker}")
        return [i]

    def op_create_user(self) -> list[int]:
        """A master (KYC passed, the terms accepted), or now and then a sub-account of one: it stakes
        under its master's KYC and terms and shares the group's fast allowance."""
        # the broker's sub-accounts are all ND sub-accounts (their fills earn it rebates): plain ones have other masters
        masters = [i for i, u in enumerate(self.model.users) if u.group == i and i != self.broker]
        if len(self.uids) >= 3 and self.rng.random() < SUB_P * ND_P:
            return self.create_nd_sub()
        if masters and self.rng.random() < SUB_P:
            master = self.rng.choice(masters)
            user = self.svc.accounts.create_sub_account(parent_uid=self.uids[master],
                                                        sub_name=f"sim{self.seed}n{len(self.uids)}")
            self.uids.append(user.uid)
            i = self.model.create_user(master)
            self.sub_names[i] = f"sim{self.seed}n{i}"
            self.note(f"create user #{i} {user.uid}, a sub-account of #{master}")
            return [i]
        user = self.svc.accounts.create_user(kyc_level=2, accept_terms=NAMES)
        self.uids.append(user.uid)
        i = self.model.create_user()
        self.note(f"create user #{i} {user.uid}")
        return [i]

    def op_deposit(self) -> list[int]:
        i = self.pick_nd_trader()
        ccy = self.rng.choices(["ETH", "SOL", "USDT"], [45, 35, 20])[0]
        places = {"ETH": 18, "SOL": 9, "USDT": 6}[ccy]
        amt = Decimal(self.rng.randint(1, 8000)) / 100 if ccy != "USDT" else Decimal(self.rng.randint(1, 10**7)) / 100
        r = self.rng.random()
        if r < 0.1:
            amt += Decimal(self.rng.randint(1, 999)).scaleb(-places)  # all the decimals there are
        elif r < 0.15:
            amt += Decimal(1).scaleb(-places - 1)  # one too many
        ok = self.model.deposit(i, ccy, amt) if not self._crash_pending() else False
        self.attempt("deposit", ok, f"deposit #{i} {amt} {ccy}",
                     lambda: self.svc.chain.credit_deposit(self.uids[i], ccy, amt))
        return [i]

    def _crash_pending(self) -> bool:
        """Peek (without drawing) whether the next operation's postings will be refused: the model
        applies an operation only if it can commit. Draws the same number as :meth:`attempt`."""
        state = self.rng.getstate()
        crash = self.rng.random() < OP_CRASH_P
        self.rng.setstate(state)
        return crash

    def op_transfer(self) -> list[int]:
        """Funding to trading (mostly) or back, of any currency, by a holder of it (mostly; an ND
        sub-account more often than the others)."""
        ccy = self.rng.choice(["ETH", "SOL", "USDT", "USDT", "BETH", "BETH", "OKSOL", "OKSOL"])
        frm, to = (FUNDING, TRADING) if self.rng.random() < 0.65 else (TRADING, FUNDING)
        i = self.pick_holder(frm, ccy, nd=self.rng.random() < ND_ORDER_P)
        places = {"ETH": 18, "SOL": 9, "USDT": 6, "BETH": 8, "OKSOL": 8}[ccy]
        amt, how = self.amount_from(self.model.users[i].get(frm, ccy), places)
        self._transfer(i, ccy, amt, frm, to, how)
        return [i]

    def _transfer(self, i: int, ccy: str, amt: Decimal, frm: int, to: int, how: str) -> None:
        ok = False if self._crash_pending() else self.model.transfer(i, ccy, amt, frm, to)
        self.attempt("transfer", ok, f"transfer #{i} {amt} {ccy} {frm}->{to} ({how})",
                     lambda: self.svc.assets.transfer(self.uids[i], TransferRequest(ccy, amt, frm, to)))

    def pick_product(self) -> Product:
        return self.model.products[self.rng.choice(NAMES)]

    def op_purchase(self) -> list[int]:
        i, p = self.pick_user(), self.pick_product()
        amt, how = self.amount_from(self.model.users[i].get(FUNDING, p.staked), 8, Decimal("0.01"))
        ok = False if self._crash_pending() else self.model.purchase(i, p.name, amt)
        self.attempt("purchase", ok, f"purchase #{i} {amt} {p.staked} ({how})",
                     lambda: self.svc.staking.purchase(self.uids[i], p.name, amt))
        return [i]

    def op_redeem(self) -> list[int]:
        i, p = self.pick_user(), self.pick_product()
        drawn = [(g, prod) for (prod, g, day) in self.model.fast_used if day == self.model.today()]
        if drawn and self.rng.random() < GROUP_P:  # another member of a group that drew on its allowance today
            group, product = self.rng.choice(drawn)
            i, p = self.rng.choice([u for u, m in enumerate(self.model.users) if m.group == group]), \
                self.model.products[product]
        amt, how = self.amount_from(self.model.users[i].get(FUNDING, p.token), 8, Decimal("0.00000001"))
        crash = self._crash_pending()
        kind = None if crash else self.model.redeem_kind(i, p.name, amt)
        order = self.attempt("redeem", kind is not None, f"redeem #{i} {amt} {p.token} ({how}, model: {kind})",
                             lambda: self.svc.staking.redeem(self.uids[i], p.name, amt))
        if order is not None:
            fast = order.fast
            ord_id = order.ord_id
            if fast != (kind == "fast"):
                raise self.fail(f"redeem of {amt} {p.token}: service fast={fast}, model {kind}")
            self.model.redeem(i, p.name, amt, ord_id)
            self.redemptions.append((i, ord_id, self.model.queue[-1] if kind == "standard" else None))
        return [i]

    def op_cancel(self) -> list[int]:
        if not self.redemptions:
            return []
        i, ord_id, red = self.rng.choice(self.redemptions)
        ok = red is not None and self.model.cancellable(red) and not self._crash_pending()
        product = red.product if red is not None else self.rng.choice(NAMES)  # a fast one: either product's
        done = self.attempt("cancel", ok, f"cancel #{i} {product} order {ord_id}",
                            lambda: self.svc.staking.cancel(self.uids[i], product, ord_id))
        if done is not None:
            assert red is not None
            self.model.cancel(red)
        return [i]

    def op_publish_rate(self) -> list[int]:
        product = self.rng.choice(NAMES)
        rate = Decimal(self.rng.randint(0, 20_000_000)) / 10**8
        if self.rng.random() < 0.1:
            rate += Decimal("0.000000001")
        ok = self.model.publish_rate(product, rate)
        self.note(f"publish {product} rate {rate} for {self.model.today()} (model: {'ok' if ok else 'refused'})")
        self.decide("publish_rate", ok, lambda: self.svc.staking.publish_rate(product, self.model.today(), rate))
        return []

    def op_stake(self) -> list[int]:
        i, ccy = self.pick_user(), self.rng.choice(["ETH", "SOL"])
        product = self.model.staking[ccy]
        amt, how = self.amount_from(self.model.users[i].get(FUNDING, ccy), product.precision, product.min_stake)
        ok = False if self._crash_pending() else self.model.stake(i, ccy, amt)
        self.attempt("stake", ok, f"stake #{i} {amt} {ccy} ({how})",
                     lambda: self.svc.provider_staking.stake(self.uids[i], self.provider, ccy, amt))
        return [i]

    def op_unstake(self) -> list[int]:
        i, ccy = self.pick_user(), self.rng.choice(["ETH", "SOL"])
        amt, how = self.amount_from(self.model.staking_available(i, ccy), self.rng.choice([8, 9, 18]))
        ok = False if self._crash_pending() else self.model.unstake(i, ccy, amt)
        self.attempt("unstake", ok, f"unstake #{i} {amt} {ccy} ({how})",
                     lambda: self.svc.provider_staking.unstake(self.uids[i], self.provider, ccy, amt))
        return [i]

    def op_publish_staking_rate(self) -> list[int]:
        ccy = self.rng.choice(["ETH", "SOL"])
        bps = Decimal(self.rng.randint(0, 200_000_000)) / 10**5  # 0..2000 bps, 5 decimals
        if self.rng.random() < 0.1:
            bps = self.rng.choice([bps + Decimal("1e-9"), Decimal(100_001), Decimal(-1)])
        ok = self.model.publish_staking_rate(ccy, bps)
        day = accrual_end_after(self.model.now).date()
        if self.svc.provider_staking.today() != day:
            raise self.fail(f"the provider's accrual day is {self.svc.provider_staking.today()}, the model's {day}")
        self.note(f"publish staking {ccy} rate {bps} bps for {day} (model: {'ok' if ok else 'refused'})")
        self.decide("provider publish_rate", ok,
                    lambda: self.svc.provider_staking.publish_rate(self.provider, ccy, day, bps))
        return []

    def op_sub_transfer(self) -> list[int]:
        """A master moves funds to or from one of its sub-accounts (now and then another master's)."""
        subs = list(self.sub_names)
        if not subs:
            return []
        sub = self.rng.choice(subs)
        master = self.model.users[sub].group
        asker = master
        masters = [i for i, u in enumerate(self.model.users) if u.group == i and i != master]
        if masters and self.rng.random() < 0.1:
            asker = self.rng.choice(masters)  # not its master: refused
        kind = self.rng.choice([1, 2])
        src, dst = (master, sub) if kind == 1 else (sub, master)
        ccy = self.rng.choice(["ETH", "SOL", "USDT", "BETH", "OKSOL"])
        frm, to = self.rng.choice([FUNDING, TRADING]), self.rng.choice([FUNDING, TRADING])
        amt, how = self.amount_from(self.model.users[src].get(frm, ccy), SCALES[ccy])
        ok = asker == master and not self._crash_pending() and self.model.sub_transfer(src, dst, ccy, amt, frm, to)
        self.attempt("sub_transfer", ok, f"#{asker}: {amt} {ccy} #{src}/{frm} -> #{dst}/{to} (type {kind}, {how})",
                     lambda: self.svc.assets.transfer(self.uids[asker], TransferRequest(
                         ccy, amt, frm, to, type=kind, sub_acct=self.sub_names[sub])))
        return [src, dst]

    def op_order(self) -> list[int]:
        """One to three spot orders of one user (several fills of a user in a day: its rebates are cut by
        caps and handed out over them in time order)."""
        fd = self.model.fd
        assert fd is not None
        r = self.rng.random()  # the tag the user's app sends: the FD broker's code, a code of nobody, none
        tag = fd.code if r < FD_TAG_P else ("0000000000000000" if r < FD_TAG_P + UNKNOWN_TAG_P else "")
        i = self.one_order(None, tag)
        for _ in range(self.rng.choice(ORDER_BURSTS) - 1):
            self.one_order(i, tag)
        return [i]

    def op_trade(self) -> list[int]:
        """A trader's session: two to four market orders of one user holding 100 USDT or more (one at a
        capped fee level, if any, half the time; it moves USDT to trading first if it has less there),
        each a part of what it holds, all with the same tag (mostly the FD broker's code), with an API
        key or an OAuth token each: the day's fills of one user, its FD records of both types, and the
        monthly cap they share."""
        fd = self.model.fd
        assert fd is not None
        holders = [i for i, u in enumerate(self.model.users) if u.get(TRADING, "USDT") + u.get(FUNDING, "USDT") >= 100]
        if not holders:
            return []
        capped = [i for i in holders if self.model.cap(i) is not None]
        i = self.rng.choice(capped if capped and self.rng.random() < 0.5 else holders)
        user = self.model.users[i]
        if user.get(TRADING, "USDT") < 100:  # it moves some of its USDT to trading first
            part = Decimal(self.rng.randint(50, 100)) / 100
            self._transfer(i, "USDT", (user.get(FUNDING, "USDT") * part).quantize(Decimal("0.000001"), "ROUND_DOWN"),
                           FUNDING, TRADING, "trader")
        tag = fd.code if self.rng.random() < 0.7 else ""
        for _ in range(self.rng.randint(2, 4)):
            self.one_order(i, tag, trader=True)
        return [i]

    def one_order(self, i: int | None, tag: str, *, trader: bool = False) -> int:
        """A spot order of any type, mostly valid, against the index the operator set, by user #i (or by
        one picked here, mostly a holder of what it pays with), with ``tag``, placed with an API key or an
        OAuth token; that user. A ``trader``'s order is a market order for 5-30 % of what it holds."""
        markets = self.model.markets
        assert markets is not None
        inst_id, base, _ = self.rng.choice(INSTRUMENTS)
        side = self.rng.choice(["buy", "sell"])
        if i is None:
            i = self.pick_holder(TRADING, "USDT" if side == "buy" else base, nd=self.rng.random() < ND_ORDER_P)
        inst, index, user = markets.instruments[inst_id], markets.index[inst_id], self.model.users[i]
        if trader:
            side = "sell" if user.get(TRADING, base) >= inst.min_sz and self.rng.random() < 0.4 else "buy"
        ord_type = "market" if trader else self.rng.choices(["market", "limit", "post_only", "ioc", "fok"],
                                                            [4, 5, 2, 1, 1])[0]
        tgt = ""
        if ord_type == "market" and not trader:
            tgt = self.rng.choice(["", "", "", "base_ccy", "quote_ccy"])
        in_quote = ord_type == "market" and (tgt or ("quote_ccy" if side == "buy" else "base_ccy")) == "quote_ccy"
        px = None
        if ord_type != "market":
            away = 1 + Decimal(self.rng.randint(-300, 300)) / 10_000
            px = (index * away).quantize(inst.tick, rounding="ROUND_DOWN")
            if self.rng.random() < 0.05:
                px += inst.tick / 10
            if px <= 0:
                px = inst.tick
        lot_places = -inst.lot.as_tuple().exponent  # type: ignore[operator]
        part = Decimal(self.rng.randint(5, 30)) / 100
        if trader and side == "buy":  # quote-sized (a market buy's default), at least about the minimum size
            sz = max(user.get(TRADING, "USDT") * part, inst.min_sz * index * Decimal("1.05"))
            sz, how = sz.quantize(Decimal("0.000001"), rounding="ROUND_DOWN"), "trader"
        elif trader:  # base-sized (a market sell's default)
            sz, how = max(floor_to(user.get(TRADING, base) * part, inst.lot), inst.min_sz), "trader"
        elif in_quote:
            worth = user.get(TRADING, "USDT") if side == "buy" else user.get(TRADING, base) * index
            sz, how = self.amount_from(worth.quantize(Decimal("0.000001"), rounding="ROUND_DOWN"), 6)
        else:
            most = user.get(TRADING, base) if side == "sell" else user.get(TRADING, "USDT") / (px or index)
            sz, how = self.amount_from(most.quantize(inst.lot, rounding="ROUND_DOWN"), lot_places, inst.min_sz)
            if self.rng.random() < 0.6:
                sz = max(floor_to(sz, inst.lot), inst.min_sz)  # mostly a valid size
        if sz <= 0:
            sz, how = inst.lot, "one lot"
        fd = self.model.fd
        assert fd is not None
        # an API key, or a token of an OAuth client (the FD broker's own, if it has one, or another broker's)
        auth, client = "api", ""
        if self.rng.random() < OAUTH_P:
            auth = "oauth"
            client = fd.client if fd.client and self.rng.random() < OWN_CLIENT_P else self.foreign_client
        crash = self._crash_pending()
        outcome = None if crash else markets.place(i, inst_id, side, ord_type, sz, px, tgt or
                                                   ("quote_ccy" if in_quote else "base_ccy"), tag, auth, client)
        text = f"order #{i} {side} {ord_type} {sz} {inst_id}" + (f" @{px}" if px is not None else "") + \
            (f" tgt={tgt}" if tgt else "") + (f" tag={tag}" if tag else "") + \
            (f" oauth={client}" if auth == "oauth" else "") + \
            f" ({how}, index {index}, model: {outcome[0] if outcome else 'refused'})"
        order = self.attempt("order", outcome is not None, text, lambda: self.svc.trading.place(
            self.uids[i], PlaceRequest(inst_id, "cash", side, ord_type, sz, px, tgt, tag=tag, auth=auth,
                                       api_key=client)))
        if order is not None and outcome is not None:
            state, resting = outcome
            if order.state != state:
                raise self.fail(f"order {order.ord_id}: service {order.state}, model {state}")
            if resting is not None:
                resting.ord_id = str(order.ord_id)
                self.orders.append(resting)
        return i

    def op_cancel_order(self) -> list[int]:
        markets = self.model.markets
        assert markets is not None
        if not self.orders:
            return []
        live = [o for o in self.orders if o.state == "live"]
        order = self.rng.choice(live if live and self.rng.random() < 0.7 else self.orders)
        ok = order.state == "live" and not self._crash_pending()
        done = self.attempt("cancel_order", ok, f"cancel order #{order.user} {order.inst} {order.ord_id} "
                                                f"(model: {order.state})",
                            lambda: self.svc.trading.cancel(self.uids[order.user], order.inst,
                                                            ord_id=int(order.ord_id)))
        if done is not None:
            markets.cancel(order)
        return [order.user]

    def op_set_price(self) -> list[int]:
        """The operator pins an index price (up to 6 % away): it may cross resting orders and DCD strikes."""
        markets = self.model.markets
        assert markets is not None
        inst_id, _, places = self.rng.choice(INSTRUMENTS)
        move = 1 + Decimal(self.rng.randint(-600, 600)) / 10_000
        px = max((markets.index[inst_id] * move).quantize(Decimal(1).scaleb(-places)), Decimal(1))
        self.svc.prices.set_price(inst_id, px)
        markets.set_price(inst_id, px)
        self.note(f"set {inst_id} index {px}")
        return []

    def op_withdraw(self) -> list[int]:
        """On chain (ETH or USDT, an outside address) or, now and then, inside to another user."""
        chain = self.model.chains[self.rng.choice(CHAINS)]
        i = self.pick_holder(FUNDING, chain.ccy, masters=True)
        if self.rng.random() < 0.25:
            to = self.pick_user()
            amt, how = self.amount_from(self.model.users[i].get(FUNDING, chain.ccy), chain.decimals)
            ok = not self._crash_pending() and self.model.withdraw_inside(i, to, chain.chain, amt)
            self.attempt("withdraw", ok, f"withdraw #{i} {amt} {chain.ccy} inside to #{to} ({how})",
                         lambda: self.svc.withdrawals.withdraw(self.uids[i], WithdrawalRequest(
                             chain.ccy, amt, 3, self.uids[to], chain=chain.chain, to_addr_type=2)))
            return [i, to]
        funds = max(self.model.users[i].get(FUNDING, chain.ccy) - chain.fee, ZERO)
        amt, how = self.amount_from(funds, chain.decimals, chain.min_wd)
        address = "0x" + "".join(self.rng.choice("0123456789abcdef") for _ in range(40))
        crash = self._crash_pending()
        expected = None if crash else self.model.withdraw(i, chain.chain, amt)
        done = self.attempt("withdraw", expected is not None, f"withdraw #{i} {amt} {chain.ccy} on {chain.chain} "
                                                              f"({how})",
                            lambda: self.svc.withdrawals.withdraw(self.uids[i], WithdrawalRequest(
                                chain.ccy, amt, 4, address, chain=chain.chain)))
        if done is not None and expected is not None:
            self.withdrawals.append((done.wd_id, expected))
            if self.rng.random() < 0.25:  # the user changes their mind at once
                self._cancel_withdrawal(done.wd_id, expected)
        return [i]

    def op_cancel_withdrawal(self) -> list[int]:
        if not self.withdrawals:
            return []
        pending = [(wd_id, w) for wd_id, w in self.withdrawals if not w.broadcast and not w.cancelled]
        wd_id, w = self.rng.choice(pending if pending and self.rng.random() < 0.7 else self.withdrawals)
        return self._cancel_withdrawal(wd_id, w)

    def _cancel_withdrawal(self, wd_id: str, w: Withdrawal) -> list[int]:
        ok = not w.cancelled and not w.broadcast and not self._crash_pending()
        done = self.attempt("cancel_withdrawal", ok, f"cancel withdrawal {wd_id} of #{w.user}",
                            lambda: self.svc.withdrawals.cancel(self.uids[w.user], wd_id))
        if done is not None:
            self.model.cancel_withdrawal(w)
        return [w.user]

    def op_dcd(self) -> list[int]:
        """An ND sub-account asks for a quote on a listed ETH/USDT product and (mostly) executes it."""
        subs = sorted(self.model.nd_subs)
        if not subs:
            return []
        opt = self.rng.choice(["C", "P"])
        ccy = "ETH" if opt == "C" else "USDT"
        holders = [i for i in subs if self.model.users[i].get(FUNDING, ccy) > 0]
        i = self.rng.choice(holders if holders and self.rng.random() < 0.85 else subs)
        listed = self.svc.dcd.products("ETH", "USDT", opt)
        if not listed:
            return []
        p = self.rng.choice(listed).product
        low, high, step, quota = self.dcd_sizes[opt]
        product = DcdProduct(p.product_id, p.ccy, p.alt_ccy, p.opt_type, p.stk, p.notional_ccy, low, high, step, quota,
                             p.exp_time, p.sett_time, p.stop_trading_time)
        left = quota - self.model.dcd_sold.get(p.product_id, ZERO)
        if p.quota_left != left:
            raise self.fail(f"DCD {p.product_id}: quota left {p.quota_left}, model {left}")
        places = -step.normalize().as_tuple().exponent  # type: ignore[operator]
        notional, how = self.amount_from(min(self.model.users[i].get(FUNDING, ccy), left), max(places, 0), low)
        if self.rng.random() < 0.5:
            notional = (notional / step).to_integral_value(rounding="ROUND_DOWN") * step  # mostly on the step
        priced = self.dcd_priced(product)
        markup = self.pick_markup(priced)
        text = f"DCD #{i} {notional} {ccy} of {p.product_id} ({how}), markUp {markup}"
        try:
            quote = self.svc.dcd.quote(self.uids[i], QuoteRequest(p.product_id, notional, ccy, tag="", markup=markup))
        except DomainError as exc:
            self.note(f"{text}: quote refused ({type(exc).__name__}: {exc})")
            if self.model.dcd_quotable(product, notional):
                raise self.fail(f"DCD quote refused, the model accepts it: {exc}") from exc
            return [i]
        if not self.model.dcd_quotable(product, notional):
            raise self.fail(f"DCD quote of {notional} {ccy} on {p.product_id} accepted, the model refuses it")
        self.check_dcd_yields(product, priced, markup or ZERO, quote.abs_yield, quote.annual_yield)
        # the broker's part rounded down (never below 0: a far out-of-the-money float may be -1E-17)
        markup_yield = Decimal(max(0, math.floor(dcd_markup_units(priced, markup or ZERO)))).scaleb(-8)
        crash = self._crash_pending()
        expected = None if crash else self.model.dcd_order(i, product, notional, quote.abs_yield, broker=self.broker,
                                                           markup_yield=markup_yield)
        self.attempt("dcd_order", expected is not None, f"{text} at absYield {quote.abs_yield}",
                     lambda: self.svc.dcd.order(self.uids[i], quote.quote_id))
        return [i]

    def dcd_priced(self, product: DcdProduct) -> float:
        """The model's yield of ``product`` now, before the broker's markup (dcd.md §3)."""
        markets = self.model.markets
        assert markets is not None
        return dcd_yield(product.opt_type, markets.index[f"{product.ccy}-{product.alt_ccy}"], product.stk,
                         self.model.now, product.exp_time, self.dcd_vol, self.dcd_margin)

    def pick_markup(self, priced: float) -> Decimal | None:
        """The ND broker's markUp for a quote (often none). One whose part of ``priced`` lies within the
        float's error of an 8-decimal step is not asked for: the model could not tell how it rounds."""
        markup = self.rng.choice([None, None, ZERO, Decimal("0.1"), Decimal("0.25"), Decimal("0.5")])
        part = dcd_markup_units(priced, markup or ZERO)
        if round(part) >= 1 and abs(part - round(part)) < DCD_FLOAT_SLACK * 1e8:
            self.note(f"markUp {markup} not asked for: its part {part / 1e8:.12f} is at a rounding step")
            return None
        return markup

    def check_dcd_yields(self, product: DcdProduct, priced: float, markup: Decimal, abs_yield: Decimal,
                         annual_yield: Decimal) -> None:
        """The quote's yields against the model's own pricing (``priced``, at the index pinned last,
        dcd.md §3), the user's part of it being ``1 - markup``."""
        want = priced * (1 - float(markup))
        # absYield is the exact value rounded down to 8 decimals: in (exact - 1E-8, exact]
        if not want - 1e-8 - DCD_FLOAT_SLACK < float(abs_yield) <= want + DCD_FLOAT_SLACK:
            raise self.fail(f"DCD {product.product_id}: absYield {abs_yield}, the model prices {want:.12f} (vol "
                            f"{self.dcd_vol}, margin {self.dcd_margin}, markUp {markup})")
        annual = dcd_annual_yield(abs_yield, self.model.now, product.exp_time)
        if annual_yield != annual:
            raise self.fail(f"DCD {product.product_id}: annualYield {annual_yield}, the model {annual}")
        self.stats.add("dcd_priced" if abs_yield else "dcd_priced_zero")

    def op_fee_change(self) -> list[int]:
        """The ND broker sets a fee change: its default (now and then), one sub-account's own, or one
        for a sub-account that is not its own (refused); in force from a later Hong Kong day."""
        subs = sorted(self.model.nd_subs)
        plain = [i for i in self.sub_names if i not in self.model.nd_subs]
        r = self.rng.random()
        user = None if r < 0.3 else (self.rng.choice(plain) if plain and r > 0.95 else self.rng.choice(subs))
        inst_type, quote_type, mgn_type, covers = self.rng.choice(FEE_SCOPES)
        kind = self.rng.choice(["absolute", "percentage"])

        def value() -> Decimal | None:
            if self.rng.random() < 0.3:
                return None  # this side is not changed
            v = Decimal(self.rng.randint(0, 2000)) / 10 if kind == "absolute" else Decimal(self.rng.randint(0, 150))
            r = self.rng.random()
            if r < 0.05:
                v += Decimal("0.01")  # too precise for either kind
            elif r < 0.08:
                v = Decimal(1001 if kind == "absolute" else 10001)  # too large
            return v

        taker, maker = value(), value()
        days = self.rng.choice([None, None, 0, 1, 2, 4])  # after today (Hong Kong): 0 is refused
        eff_day = None if days is None else (self.model.now + HKT_OFFSET).date() + dt.timedelta(days=days)
        change = self.model.set_fee_change(
            user, specificity=sum(bool(f) for f in (inst_type, quote_type, mgn_type)), covers_spot=covers, kind=kind,
            taker=taker, maker=maker, eff_day=eff_day)
        text = (f"fee change for {'all' if user is None else f'#{user}'} {kind} taker={taker} maker={maker} scope="
                f"{inst_type}/{quote_type}/{mgn_type} effDate={eff_day} (model: {'ok' if change else 'refused'})")
        self.note(text)
        self.decide("fee change", change is not None, lambda: self.svc.broker.set_fee_rate(
            self.uids[self.broker], sub_name="" if user is None else self.sub_names[user], inst_type=inst_type,
            quote_ccy_type=quote_type, mgn_type=mgn_type, chg_type=kind,
            chg_taker="" if taker is None else str(taker), chg_maker="" if maker is None else str(maker),
            eff_date="" if eff_day is None else eff_day.strftime("%Y%m%d")))
        return []

    def op_credit(self) -> list[int]:
        """The operator grants an ND sub-account a contract credit (or someone else: refused), a
        sub-account activates one (its own, mostly), or the operator invalidates one."""
        credits = self.model.credits
        waiting = [c for c in credits if c.state(self.model.now) == "unactivated"]
        r = self.rng.random()
        if r < 0.45 or not credits or (r < 0.9 and not waiting and self.rng.random() < 0.8):
            subs = sorted(self.model.nd_subs)
            i = self.rng.choice(subs) if self.rng.random() < 0.9 else self.pick_user()
            amt = Decimal(self.rng.randint(1, 5_000_000)).scaleb(-6) * self.rng.choice([1, 1, 10])
            if self.rng.random() < 0.05:
                amt += Decimal("0.0000001")
            late = self.rng.random() < 0.05  # a deadline already past: refused
            activate_by = self.model.now + dt.timedelta(
                milliseconds=self.rng.randint(-3_600_000, -1) if late else self.rng.randint(1, 3 * 86_400_000))
            r = self.rng.random()
            period_ms = (59_999 if r < 0.05 else self.rng.randint(60_000, 86_400_000) if r < 0.5 else
                         self.rng.randint(86_400_000, 20 * 86_400_000))
            expected = self.model.grant_credit(i, amt, activate_by, period_ms)
            self.note(f"grant #{i} a credit of {amt} USDT, activate by {activate_by.isoformat()}, "
                      f"use for {period_ms} ms (model: {'ok' if expected else 'refused'})")
            granted = self.decide("credit grant", expected is not None, lambda: self.svc.credits.grant(
                self.uids[i], amt, activate_exp_at=activate_by, valid_period_ms=period_ms))
            if granted is None or expected is None:
                return []
            expected.credit_id = granted.credit_id
            if self.rng.random() < 0.5:
                self._activate(i, expected)  # the sub-account activates it at once
            return [i]
        if r < 0.9:
            credit = self.rng.choice(waiting if waiting and self.rng.random() < 0.9 else credits)
            i = credit.user if self.rng.random() < 0.9 else self.rng.choice(sorted(self.model.nd_subs))
            self._activate(i, credit)
            return [credit.user]
        credit = self.rng.choice(credits)
        ok = self.model.invalidate_credit(credit)
        self.note(f"invalidate credit {credit.credit_id} of #{credit.user} (model: {'ok' if ok else 'refused'})")
        self.decide("credit invalidation", ok, lambda: self.svc.credits.invalidate(credit.credit_id))
        return [credit.user]

    def op_fd_expired(self) -> list[int]:
        """The operator marks the FD broker's identification expired (it earns nothing while it is) or
        valid again."""
        fd = self.model.fd
        assert fd is not None
        fd.expired = self.rng.random() < 0.5
        self.svc.fd_brokers.set_expired(self.uids[fd.user], fd.expired)
        self.note(f"FD broker #{fd.user} identification {'expired' if fd.expired else 'valid'}")
        return []

    def op_fee_level(self) -> list[int]:
        """The operator moves a user to another fee level (mostly one who trades), sets a level's
        monthly rebate cap, or switches a sub-account's VIP fee-rate mode (a master's is refused)."""
        r = self.rng.random()
        if r < 0.6:
            i, level = self.pick_nd_trader(), self.rng.choice(LEVELS)
            self.svc.trading.set_account_level(self.uids[i], level)
            if level == "Lv1":
                self.model.levels.pop(i, None)
            else:
                self.model.levels[i] = level
            self.note(f"#{i} to fee level {level}")
            return []
        if r < 0.8:
            level = self.rng.choice(LEVELS[1:])
            cap = self.rng.choice((*CAPS, Decimal(-1), Decimal("0.000000001")))
            ok = cap is None or (cap >= 0 and cap == cap.quantize(Decimal("1e-8")))
            self.note(f"{level} monthly rebate cap {cap} (model: {'ok' if ok else 'refused'})")
            self.decide("rebate cap", ok, lambda: self.svc.rebates.set_cap(level, cap))
            if ok:
                if cap is None:
                    self.model.caps.pop(level, None)
                else:
                    self.model.caps[level] = cap
            return []
        i, on = self.pick_user(), self.rng.random() < 0.5
        ok = self.model.users[i].group != i
        self.note(f"#{i} VIP fee-rate mode {'on' if on else 'off'} (model: {'ok' if ok else 'refused'})")
        self.decide("VIP fee-rate mode", ok, lambda: self.svc.rebates.set_vip_fee_mode(self.uids[i], on))
        if ok:
            (self.model.vip_mode.add if on else self.model.vip_mode.discard)(i)
        return []

    def _activate(self, i: int, credit: Credit) -> None:
        ok = self.model.activate_credit(i, credit)
        self.note(f"#{i} activates credit {credit.credit_id} of #{credit.user} (model: {'ok' if ok else 'refused'})")
        self.decide("credit activation", ok, lambda: self.svc.credits.activate(self.uids[i], credit.credit_id))

    def op_advance(self) -> None:
        hours = self.rng.randint(1, 30)
        minutes = self.rng.choice([0, 0, 0, self.rng.randint(1, 59)])
        target = self.model.now + dt.timedelta(hours=hours, minutes=minutes)
        crosses = bool(self.model.boundaries(target))
        crash = crosses and self.rng.random() < RUN_CRASH_P
        label = ""
        if crash:
            label, table, condition = self.rng.choice(RUN_CRASHES)
            k, product = self.rng.randint(0, 3), self.rng.choice(NAMES)
            label = label.format(k=k, p=product)
            self.arm(table, "UPDATE", condition.format(k=k, p=product))
        self.note(f"advance {hours}h{minutes:02d} to {target.isoformat()}" + (f", crash at {label}" if crash else ""))
        try:
            self.svc.advance_clock(to=target)
        except Exception as exc:
            if not crash:
                raise self.fail(f"advance_clock raised {type(exc).__name__}: {exc}") from exc
            self.disarm()
            self.stats.add("run_crash")
            self.note(f"crashed ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
            report = self.svc.audit()  # a run in progress is allowed, a broken book is not
            if not report.ok:
                raise self.fail(f"audit failed after the crash: {report.as_dict()}") from exc
            self.restart("after a crash inside a run")
            self.svc = self.rng.choice(self.procs)  # the restarted process or the other resumes the run
            self.note(f"process {self.procs.index(self.svc)} resumes")
            reached = self.svc.clock.now()
            if not self.model.now <= reached <= target:
                raise self.fail(f"after the crash the clock is {reached.isoformat()}") from exc
            self.svc.advance_clock(by=dt.timedelta(0))  # resumes the interrupted run
            if self.svc.clock.now() < target:
                self.svc.advance_clock(to=target)
        else:
            if crash:
                self.disarm()
                self.note("(the crash point was not reached)")
        self.model.advance_to(target)
        self.check_clock()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> Stats:
        end = START + dt.timedelta(days=self.days)
        kinds = [k for k, _ in OPS]
        weights = [w for _, w in OPS]
        self.check(rewards=True)
        while self.model.now < end:
            self.step += 1
            self.stats.steps += 1
            if self.rng.random() < RESTART_P:
                self.restart("between steps")
                self.check_clock()
            if self.rng.random() < SWITCH_P:
                k = self.rng.randrange(len(self.procs))
                if self.procs[k] is not self.svc:
                    self.svc = self.procs[k]
                    self.stats.add("switch")
                    self.note(f"on process {k}")
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "create_user" and len(self.uids) >= self.max_users:
                kind = "deposit"
            self.stats.add(kind)
            if kind == "advance":
                self.op_advance()
                self.check(rewards=True)
                continue
            touched: list[int] = getattr(self, f"op_{kind}")()
            full = self.step % self.full_check_every == 0
            self.check(None if full else touched, rewards=full)
        self.svc.advance_clock(to=self.model.now + dt.timedelta(days=UNBOND_TAIL))
        self.model.advance_to(self.model.now + dt.timedelta(days=UNBOND_TAIL))
        self.note("final: every queued redemption delivered")
        self.check(rewards=True)
        return self.stats

    def close(self) -> None:
        for svc in self.procs:
            svc.close()
        for conn in (self._sqlite_version, self._pg_version):
            if conn is not None:
                conn.close()


#: Days run at the end with no operations, so that the last redemptions are delivered and checked.
UNBOND_TAIL = 6


def run_seed(seed: int, directory: Path, *, url: str = "", days: int = 30, full_check_every: int = 10) -> Stats:
    """One seed from start to end (on SQLite in ``directory``, or on the empty PostgreSQL database
    at ``url``); raises :class:`SimulationFailure` on the first violation."""
    world = World(seed, directory, url=url, days=days, full_check_every=full_check_every)
    try:
        return world.run()
    finally:
        world.close()
