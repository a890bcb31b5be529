"""Provider staking use cases (Gemini-style products, staking-rules.md section 9).

The accounts (every movement a balanced journal entry through :class:`Ledger`):

* stake: user funding -> the user's staking balance with the provider (account type
  ``1000 + provider_no``, same currency);
* unstake, instant: staking balance -> funding at once;
* unstake, queued: staking balance free -> locked at once (the balance no longer counts), then the
  daily settlement run pays locked -> funding part by part (``provider_runs.py``);
* interest: ``s:validator_rewards`` -> staking balance, daily (``provider_runs.py``).

``provider_events`` is what a staker's history shows; money is only ever in the journal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select

from stakehouse.accounts.service import AccountService
from stakehouse.assets.prices import UsdPrice, UsdPrices
from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert, for_update
from stakehouse.db.engine import Database
from stakehouse.db.tables import (
    currencies,
    job_run_plans,
    ledger_accounts,
    provider_accrual_runs,
    provider_events,
    provider_products,
    provider_rates,
    staking_providers,
    users,
)
from stakehouse.errors import AccountFrozen, Conflict, InvalidParameter, NotAllowed, NotFound, Refused
from stakehouse.jobs.schedule import Daily
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, LOCKED, STAKING_BASE, AccountRef, Leg, staking_type
from stakehouse.money import MAX_STORAGE, STORAGE_SCALE, ZERO, AmountError, fmt, parse_amount, round_down
from stakehouse.staking.provider.rules import (
    DEFAULT_PRECISION,
    UNSTAKE_MODES,
    Accrual,
    ProviderProduct,
    ProviderReason,
    apy_pct,
    deposit_allowed,
    month_start,
    rate_pct,
    rate_periods,
    transaction_id,
    usd_notional,
)

STAKING_FUNCTION = "staking"
#: The daily interest job (its plan fixes the day's rates).
INTEREST_JOB = "provider_interest"
EVENT_TYPES = ("Deposit", "Redeem", "RedeemPayment", "Interest", "AdminRedeem", "AdminCreditAdjustment",
               "AdminDebitAdjustment")
MAX_RATE_BPS = Decimal(100_000)  # 1000 % a year: anything above is a typo
MAX_SETTING = MAX_STORAGE - Decimal("1e-18")  # the largest NUMERIC(38, 18)


@dataclass(frozen=True)
class Provider:
    provider_no: int
    provider_id: str
    name: str


@dataclass(frozen=True)
class ProviderRate:
    provider_id: str
    ccy: str
    rate_bps: Decimal
    rate_pct: Decimal
    apy_pct: Decimal
    deposit_usd_limit: Decimal | None


@dataclass(frozen=True)
class StakeResult:
    transaction_id: str
    provider_id: str
    ccy: str
    amount: Decimal
    accrual_total: Decimal
    rate_bps: Decimal


@dataclass(frozen=True)
class UnstakeResult:
    transaction_id: str
    ccy: str
    amount: Decimal
    paid: Decimal
    remaining: Decimal
    requested_at: dt.datetime


@dataclass(frozen=True)
class StakingBalance:
    ccy: str
    balance: Decimal
    by_provider: dict[str, Decimal]


@dataclass(frozen=True)
class EventQuery:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50
    provider_id: str | None = None
    ccy: str | None = None
    interest_only: bool = False
    sort_asc: bool = False


@dataclass(frozen=True)
class ProviderEvent:
    provider_id: str
    transaction_id: str
    type: str
    ccy: str
    amount: Decimal
    price_ccy: str | None
    price: Decimal | None
    at: dt.datetime


@dataclass(frozen=True)
class RatePeriod:
    provider_id: str
    ccy: str
    apy_pct: Decimal
    rate_pct: Decimal
    count: int
    total: Decimal
    first_at: dt.datetime
    last_at: dt.datetime


@dataclass(frozen=True)
class RewardSummary:
    provider_id: str
    ccy: str
    total: Decimal
    periods: list[RatePeriod]


@dataclass(frozen=True)
class AccountBalance:
    """An operator's view of one staking balance: free and being paid out."""

    provider_id: str
    ccy: str
    available: Decimal
    pending_unstake: Decimal


def staking_account(uid: str, product: ProviderProduct) -> AccountRef:
    return AccountRef.user(uid, staking_type(product.provider_no), product.ccy)


def _uuid(text: str) -> str | None:
    """Canonical lower-case UUID text, or ``None``."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


# -- products (operator data) -----------------------------------------------------------------

#: The settings an operator may change, with their kinds.
SETTINGS: dict[str, str] = {
    "precision": "int", "stake_enabled": "bool", "min_stake": "money", "deposit_usd_limit": "money?",
    "unstake_mode": "mode", "daily_redemption_cap": "money?", "unbonding_days": "int",
}


def coerce_setting(name: str, value: Any) -> Any:
    """A setting's value from its wire form (strings for money, JSON booleans and integers)."""
    kind = SETTINGS.get(name)
    if kind is None:
        raise InvalidParameter(name[:40], f"unknown setting; one of {', '.join(SETTINGS)}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidParameter(name, "true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(name, "an integer")
        low, high = (0, DEFAULT_PRECISION) if name == "precision" else (0, 365)
        if not low <= value <= high:
            raise InvalidParameter(name, f"{low}..{high}")
        return value
    if kind == "mode":
        if value not in UNSTAKE_MODES:
            raise InvalidParameter(name, " or ".join(UNSTAKE_MODES))
        return value
    if value is None and kind == "money?":
        return None
    if isinstance(value, float | bool) or not isinstance(value, str | int | Decimal):
        raise InvalidParameter(name, "a decimal string" + (" or null" if kind == "money?" else ""))
    try:
        return parse_amount(value, scale=18, max_amount=MAX_SETTING, allow_zero=True)
    except AmountError as exc:
        raise InvalidParameter(name, f"a non-negative plain decimal with at most 18 decimals ({exc.reason})") from None


def _product(row: Any) -> ProviderProduct:
    return ProviderProduct(row.provider_no, row.provider_id, row.ccy, row.precision, row.stake_enabled, row.min_stake,
                           row.deposit_usd_limit, row.unstake_mode, row.daily_redemption_cap, row.unbonding_days)


def _products_query() -> Any:
    return (select(provider_products, staking_providers.c.provider_id)
            .join(staking_providers, staking_providers.c.provider_no == provider_products.c.provider_no))


def load_product(conn: Connection, provider_id: str, ccy: str) -> ProviderProduct:
    pid = _uuid(provider_id)
    code = ccy.upper() if isinstance(ccy, str) else ""
    row = None
    if pid is not None and 0 < len(code) <= 16:
        row = conn.execute(_products_query().where(staking_providers.c.provider_id == pid,
                                                   provider_products.c.ccy == code)).first()
    if row is None:
        raise NotFound("Staking product", f"{provider_id[:40]} {ccy[:16]}" if isinstance(provider_id, str) else "")
    return _product(row)


def load_products(conn: Connection) -> list[ProviderProduct]:
    rows = conn.execute(_products_query().order_by(staking_providers.c.provider_no, provider_products.c.ccy))
    return [_product(r) for r in rows]


def rate_on(conn: Connection, product: ProviderProduct, day: dt.date) -> Decimal | None:
    """The rate (bps) of an accrual day: published for it, else the most recent earlier one."""
    t = provider_rates.c
    found: Decimal | None = conn.execute(
        select(t.rate_bps).where(t.provider_no == product.provider_no, t.ccy == product.ccy,
                                 t.day <= day.isoformat()).order_by(t.day.desc()).limit(1)).scalar_one_or_none()
    return found


#: A user's staking balances by provider (built once: "Prebuilt statements" in docs/architecture.md).
_STAKING_ROWS = (
    select(ledger_accounts.c.acct_type, ledger_accounts.c.ccy, ledger_accounts.c.available, ledger_accounts.c.locked,
           staking_providers.c.provider_id)
    .join(staking_providers, staking_providers.c.provider_no == ledger_accounts.c.acct_type - STAKING_BASE)
    .where(ledger_accounts.c.owner == bindparam("owner"), ledger_accounts.c.acct_type > STAKING_BASE)
    .order_by(ledger_accounts.c.ccy, staking_providers.c.provider_no))


class ProviderStakingService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService, calendar: Daily,
                 usd: UsdPrices) -> None:
        self.db = db
        #: The one USD price book (a market currency's index, else the operator's price).
        self.usd = usd
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        #: Accrual days: each ends at the accrual time (default 20:00 UTC), when its interest is paid.
        self.calendar = calendar

    # -- operator: providers, products, rates, prices ------------------------------------

    def create_provider(self, name: str, provider_id: str | None = None) -> Provider:
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= 64:
            raise InvalidParameter("name", "1..64 characters")
        pid = _uuid(provider_id) if provider_id is not None else str(uuid.uuid4())
        if pid is None:
            raise InvalidParameter("providerId", "a UUID")
        with self.db.write() as conn:
            if conn.execute(select(staking_providers.c.provider_no).where(
                    staking_providers.c.provider_id == pid)).first() is not None:
                raise Conflict(f"Staking provider {pid} exists already", providerId=pid)
            no = conn.execute(staking_providers.insert().values(provider_id=pid, name=name,
                                                                created_at=self.clock.now())
                              .returning(staking_providers.c.provider_no)).scalar_one()
            if staking_type(no) <= STAKING_BASE:
                raise NotAllowed("provider number out of range")
            return Provider(no, pid, name)

    def providers(self) -> list[Provider]:
        with self.db.read() as conn:
            rows = conn.execute(select(staking_providers).order_by(staking_providers.c.provider_no))
            return [Provider(r.provider_no, r.provider_id, r.name) for r in rows]

    def set_product(self, provider_id: str, ccy: str, changes: dict[str, Any]) -> ProviderProduct:
        """Offer ``ccy`` with the provider (defaults for what ``changes`` leaves out), or change an
        offered product's settings."""
        values = {name: coerce_setting(name, value) for name, value in changes.items()}
        pid = _uuid(provider_id)
        code = ccy.upper() if isinstance(ccy, str) else ""
        with self.db.write() as conn:
            prov = conn.execute(select(staking_providers).where(staking_providers.c.provider_id == pid)).first() \
                if pid else None
            if prov is None:
                raise NotFound("Staking provider", str(provider_id)[:40])
            if conn.execute(select(currencies.c.ccy).where(currencies.c.ccy == code)).first() is None:
                raise NotFound("Currency", code[:16])
            now = self.clock.now()
            current = conn.execute(_products_query().where(provider_products.c.provider_no == prov.provider_no,
                                                           provider_products.c.ccy == code)).first()
            base = _product(current) if current is not None else ProviderProduct(prov.provider_no, prov.provider_id,
                                                                                 code)
            updated = dataclasses.replace(base, **values)
            row = {k: v for k, v in dataclasses.asdict(updated).items() if k != "provider_id"}
            if current is None:
                conn.execute(provider_products.insert().values(**row, updated_at=now))
            else:
                conn.execute(provider_products.update().where(
                    provider_products.c.provider_no == prov.provider_no, provider_products.c.ccy == code)
                    .values(**values, updated_at=now))
            return updated

    def products(self) -> list[ProviderProduct]:
        with self.db.read() as conn:
            return load_products(conn)

    def publish_rate(self, provider_id: str, ccy: str, day: dt.date, rate_bps: Decimal) -> ProviderProduct:
        """Set the rate (basis points) from accrual day ``day`` on; refused for a day already paid."""
        if not isinstance(rate_bps, Decimal) or not rate_bps.is_finite() or rate_bps < 0 or rate_bps > MAX_RATE_BPS:
            raise InvalidParameter("rate", f"basis points, 0..{fmt(MAX_RATE_BPS)}")
        if round_down(rate_bps, 8) != rate_bps:
            raise InvalidParameter("rate", "at most 8 decimals")
        with self.db.write() as conn:
            product = load_product(conn, provider_id, ccy)
            ran = conn.execute(select(provider_accrual_runs.c.day).where(
                provider_accrual_runs.c.provider_no == product.provider_no,
                provider_accrual_runs.c.ccy == product.ccy,
                provider_accrual_runs.c.day >= day.isoformat()).limit(1)).first()
            # a run planned (in progress) has fixed its rates too
            ran = ran or conn.execute(select(job_run_plans.c.period.label("day")).where(
                job_run_plans.c.job == INTEREST_JOB, job_run_plans.c.period >= day.isoformat()).limit(1)).first()
            if ran is not None:
                raise NotAllowed(f"The interest of {ran.day} has been paid; publish for a later day")
            stmt = dialect_insert(conn)(provider_rates).values(
                provider_no=product.provider_no, ccy=product.ccy, day=day.isoformat(), rate_bps=rate_bps,
                published_at=self.clock.now())
            conn.execute(stmt.on_conflict_do_update(index_elements=["provider_no", "ccy", "day"],
                                                    set_={"rate_bps": rate_bps, "published_at": self.clock.now()}))
            return product

    def set_price(self, ccy: str, price: Decimal) -> UsdPrice:
        """The USD price of ``ccy`` now (for a currency with a USDT market: a pin of its index)."""
        with self.db.write() as conn:
            return self.usd.set_price(conn, ccy.upper(), price, self.clock.now())

    def prices(self) -> list[UsdPrice]:
        # a write transaction: in the sandbox, reading an index may first walk its minutes up to now
        with self.db.write() as conn:
            return self.usd.current(conn, self.clock.now())

    def today(self) -> dt.date:
        return self.calendar.day(self.clock.now())

    # -- public ----------------------------------------------------------------------------

    def rates(self) -> list[ProviderRate]:
        """Every product open for staking, with the rate of the current accrual day (0 if none)."""
        today = self.today()
        with self.db.read() as conn:
            out = []
            for product in load_products(conn):
                if not product.stake_enabled:
                    continue
                bps = rate_on(conn, product, today) or ZERO
                out.append(ProviderRate(product.provider_id, product.ccy, bps, rate_pct(bps), apy_pct(bps),
                                        product.deposit_usd_limit))
            return out

    # -- stake / unstake -------------------------------------------------------------------

    @staticmethod
    def _check_amount(amount: Decimal, precision: int) -> None:
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise InvalidParameter("amount", "must be greater than 0")
        if round_down(amount, precision) != amount:
            raise InvalidParameter("amount", f"at most {precision} decimals")

    def _lock_user(self, conn: Connection, uid: str) -> None:
        """Serialise one user's stakes (the monthly limit is read, then written). SQLite's writer
        lock serialises everything already."""
        user = self.accounts.get_in(conn, uid)
        conn.execute(for_update(conn, select(users.c.uid).where(users.c.uid == uid)))
        if user.frozen_for(STAKING_FUNCTION) or (user.is_sub and self.accounts.get_in(
                conn, user.group_uid).frozen_for(STAKING_FUNCTION)):
            raise AccountFrozen(uid, STAKING_FUNCTION)

    def stake(self, uid: str, provider_id: str, ccy: str, amount: Decimal) -> StakeResult:
        """Move ``amount`` from the funding balance into the staking balance with the provider."""
        with self.db.write() as conn:
            now = self.clock.now()  # inside the transaction: after the ledger barrier
            product = load_product(conn, provider_id, ccy)
            self._check_amount(amount, product.precision)
            if not product.stake_enabled:
                raise NotFound("Staking product", f"{product.provider_id} {product.ccy}")
            if amount < product.min_stake:
                raise InvalidParameter("amount", f"below the minimum stake {fmt(product.min_stake)} {product.ccy}")
            self._lock_user(conn, uid)
            price = self.usd.price_at(conn, product.ccy, now)
            notional = usd_notional(amount, price) if price is not None else None
            # kept for operators, at the column's scale (the limit is checked exactly, below)
            shown = round_down(notional, STORAGE_SCALE) if notional is not None and notional < MAX_SETTING else None
            if product.deposit_usd_limit is not None:
                if price is None:
                    raise Refused(ProviderReason.NO_PRICE, f"No USD price for {product.ccy}: staking it is closed")
                used = self._month_deposits(conn, uid, product, now)
                limit = product.deposit_usd_limit
                if not deposit_allowed(used, amount, price, limit):
                    raise Refused(
                                  ProviderReason.DEPOSIT_LIMIT, f"Staking deposits in {product.ccy} are limited to "
                                  f"{fmt(limit)} USD per month; {fmt(max(limit - used, ZERO))} USD left this month",
                                  limit=fmt(limit))
            event = self._event(conn, uid, product, "Deposit", amount, now, price=price, usd_notional=shown)
            posted = self.ledger.post(
                conn, type="provider_stake", ref=str(event), idempotency_key=f"provider:stake:{event}", at=now,
                uid=uid, legs=[Leg(AccountRef.user(uid, FUNDING, product.ccy), -amount),
                               Leg(staking_account(uid, product), amount)])
            self._set_entry(conn, event, posted.entry_id)
            bps = rate_on(conn, product, self.calendar.day(now)) or ZERO
            return StakeResult(transaction_id(event), product.provider_id, product.ccy, amount, ZERO, bps)

    def _month_deposits(self, conn: Connection, uid: str, product: ProviderProduct, now: dt.datetime) -> Decimal:
        """The month's USD notional so far, exact: from each stake's amount and price (a stored
        ``usd_notional`` may have more decimals than the column keeps)."""
        e = provider_events.c
        rows = conn.execute(select(e.amount, e.price).where(
            e.uid == uid, e.provider_no == product.provider_no, e.ccy == product.ccy, e.type == "Deposit",
            e.created_at >= month_start(now), e.price.is_not(None)))
        return sum((usd_notional(r.amount, r.price) for r in rows), ZERO)

    def unstake(self, uid: str, provider_id: str, ccy: str, amount: Decimal) -> UnstakeResult:
        """Take ``amount`` out of the staking balance: paid to funding at once (``instant``) or
        locked and paid by the daily settlement runs through the FIFO queue (``queued``)."""
        with self.db.write() as conn:
            now = self.clock.now()
            product = load_product(conn, provider_id, ccy)
            # Any amount held can come out, also digits below a precision lowered since it was staked.
            self._check_amount(amount, STORAGE_SCALE)
            self._lock_user(conn, uid)
            instant = product.unstake_mode == "instant"
            event = self._event(conn, uid, product, "Redeem", amount, now, paid=amount if instant else ZERO,
                                scheduled=amount if instant else ZERO, status="done" if instant else "pending")
            staking = staking_account(uid, product)
            if instant:
                legs = [Leg(staking, -amount), Leg(AccountRef.user(uid, FUNDING, product.ccy), amount)]
            else:
                legs = [Leg(staking, -amount), Leg(staking, amount, LOCKED)]
            posted = self.ledger.post(conn, type="provider_unstake", ref=str(event), at=now, uid=uid,
                                      idempotency_key=f"provider:unstake:{event}", legs=legs)
            self._set_entry(conn, event, posted.entry_id)
            paid = amount if instant else ZERO
            return UnstakeResult(transaction_id(event), product.ccy, amount, paid, amount - paid, now)

    @staticmethod
    def _event(conn: Connection, uid: str, product: ProviderProduct, type_: str, amount: Decimal, at: dt.datetime,
               **extra: Any) -> int:
        event: int = conn.execute(provider_events.insert().values(
            uid=uid, provider_no=product.provider_no, ccy=product.ccy, type=type_, amount=amount, created_at=at,
            **extra).returning(provider_events.c.id)).scalar_one()
        return event

    @staticmethod
    def _set_entry(conn: Connection, event: int, entry_id: int) -> None:
        conn.execute(provider_events.update().where(provider_events.c.id == event).values(entry_id=entry_id))

    # -- reading ---------------------------------------------------------------------------

    def _staking_rows(self, conn: Connection, uid: str) -> Sequence[Any]:
        return conn.execute(_STAKING_ROWS, {"owner": f"u:{uid}"}).all()

    def balances(self, uid: str) -> list[StakingBalance]:
        """Non-zero staking balances per currency, split by provider (pending unstakes excluded)."""
        with self.db.read() as conn:
            self.accounts.get_in(conn, uid)
            rows = self._staking_rows(conn, uid)
        out: dict[str, StakingBalance] = {}
        for r in rows:
            if r.available == 0:
                continue
            found = out.setdefault(r.ccy, StakingBalance(r.ccy, ZERO, {}))
            found.by_provider[r.provider_id] = r.available
            out[r.ccy] = StakingBalance(r.ccy, found.balance + r.available, found.by_provider)
        return list(out.values())

    def account_balances(self, uid: str) -> list[AccountBalance]:
        """Operator view: every staking balance of a user, with what is being paid out."""
        with self.db.read() as conn:
            self.accounts.get_in(conn, uid)
            return [AccountBalance(r.provider_id, r.ccy, r.available, r.locked) for r in self._staking_rows(conn, uid)]

    def _provider_ids(self, conn: Connection) -> dict[int, str]:
        return {r.provider_no: r.provider_id for r in conn.execute(select(staking_providers))}

    def _filters(self, conn: Connection, uid: str, provider_id: str | None, ccy: str | None) -> list[Any] | None:
        """WHERE terms for one user's events; ``None`` when a filter matches nothing."""
        e = provider_events.c
        terms: list[Any] = [e.uid == uid]
        if provider_id is not None:
            pid = _uuid(provider_id)
            no = conn.execute(select(staking_providers.c.provider_no).where(
                staking_providers.c.provider_id == pid)).scalar_one_or_none() if pid else None
            if no is None:
                return None
            terms.append(e.provider_no == no)
        if ccy is not None:
            terms.append(e.ccy == ccy.upper())
        return terms

    def history(self, uid: str, query: EventQuery) -> list[ProviderEvent]:
        """Events filtered, sorted by time (then id) and limited; ``since`` and ``until`` inclusive."""
        e = provider_events.c
        with self.db.read() as conn:
            self.accounts.get_in(conn, uid)
            terms = self._filters(conn, uid, query.provider_id, query.ccy)
            if terms is None:
                return []
            if query.interest_only:
                terms.append(e.type == "Interest")
            if query.since is not None:
                terms.append(e.created_at >= query.since)
            terms.append(e.created_at <= (query.until or self.clock.now()))
            order = (e.created_at.asc(), e.id.asc()) if query.sort_asc else (e.created_at.desc(), e.id.desc())
            rows = conn.execute(select(provider_events).where(and_(*terms)).order_by(*order)
                                .limit(max(1, min(query.limit, 500)))).all()
            ids = self._provider_ids(conn)
        return [ProviderEvent(ids[r.provider_no], transaction_id(r.id), r.type, r.ccy, r.amount,
                              "USD" if r.type == "Interest" and r.price is not None else None,
                              r.price if r.type == "Interest" else None, r.created_at) for r in rows]

    def rewards(self, uid: str, since: dt.datetime, until: dt.datetime | None, provider_id: str | None,
                ccy: str | None) -> list[RewardSummary]:
        """Interest accruals in [since, until] per (provider, currency), merged into rate periods."""
        e = provider_events.c
        with self.db.read() as conn:
            self.accounts.get_in(conn, uid)
            terms = self._filters(conn, uid, provider_id, ccy)
            if terms is None:
                return []
            terms += [e.type == "Interest", e.created_at >= since, e.created_at <= (until or self.clock.now())]
            rows = conn.execute(select(e.provider_no, e.ccy, e.created_at, e.rate_bps, e.amount)
                                .where(and_(*terms)).order_by(e.provider_no, e.ccy, e.created_at, e.id)).all()
            ids = self._provider_ids(conn)
        grouped: dict[tuple[int, str], list[Accrual]] = {}
        for r in rows:
            grouped.setdefault((r.provider_no, r.ccy), []).append(Accrual(r.created_at, r.rate_bps, r.amount))
        out = []
        for (no, code), accruals in grouped.items():
            periods = [RatePeriod(ids[no], code, apy_pct(p.rate_bps), rate_pct(p.rate_bps), p.count, p.total,
                                  p.first_at, p.last_at) for p in rate_periods(accruals)]
            out.append(RewardSummary(ids[no], code, sum((p.total for p in periods), ZERO), periods))
        return out

    def accrual_runs(self, limit: int = 30) -> list[dict[str, Any]]:
        t = provider_accrual_runs.c
        with self.db.read() as conn:
            ids = self._provider_ids(conn)
            rows = conn.execute(select(provider_accrual_runs).order_by(t.day.desc(), t.provider_no, t.ccy)
                                .limit(max(1, min(limit, 1000))))
            return [{**dict(r._mapping), "provider_id": ids.get(r.provider_no, "")} for r in rows]
