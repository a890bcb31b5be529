"""Liquid staking use cases: purchase, redeem, cancel, the reading endpoints and operator actions.

Each use case is one database transaction; every movement of money is a balanced journal entry
posted through :class:`~stakehouse.ledger.journal.Ledger`. The accounts (rules 3, 4, 5.3):

* purchase: staked asset user funding -> ``s:staked_principal``; token ``s:issuance`` -> user funding;
* redeem request: token free -> locked inside the user's funding account;
* fast redemption / delivery: token (free or locked) -> ``s:issuance`` (burnt); staked asset
  ``s:staked_principal`` -> user funding;
* cancel: token locked -> free.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select

from stakehouse.accounts.service import AccountService, User
from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert, for_update
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first
from stakehouse.db.tables import (
    fast_redemption_usage,
    ledger_accounts,
    redemption_parts,
    staking_orders,
    staking_products,
    staking_reward_runs,
    staking_rewards,
)
from stakehouse.digits import row_id
from stakehouse.errors import (
    AccountFrozen,
    InsufficientBalance,
    InvalidParameter,
    NotAllowed,
    NotFound,
    Refused,
)
from stakehouse.jobs.schedule import Daily
from stakehouse.ledger.audit import money_sum
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, LOCKED, TRADING, AccountRef, Leg
from stakehouse.money import ZERO, fmt, round_down
from stakehouse.staking.liquid import products
from stakehouse.staking.rules import ProductConfig, StakingReason, estimated_completion, is_fast, quota_left, rate_for

ORDER_TYPES = ("purchase", "redeem")
ORDER_STATUSES = ("pending", "success", "failed", "cancelled")
STAKING_FUNCTION = "staking"


@dataclass(frozen=True)
class Order:
    ord_id: str
    product: str
    uid: str
    type: str
    amt: Decimal
    redeeming_amt: Decimal | None  # None once nothing is left to deliver
    scheduled_amt: Decimal
    status: str
    fast: bool
    request_time: dt.datetime
    completed_time: dt.datetime | None
    est_completed_time: dt.datetime | None
    reversal_reason: str | None


@dataclass(frozen=True)
class TokenBalance:
    ccy: str
    amt: Decimal  # free + redeeming, funding account
    latest_accrual: Decimal
    total_accrual: Decimal


@dataclass(frozen=True)
class HistoryQuery:
    type: str = ""
    status: str = ""
    after: dt.datetime | None = None
    before: dt.datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class QueueItem:
    order: Order
    unscheduled: Decimal


def _order(r: Any) -> Order:
    pending = r.status == "pending" and r.type == "redeem"
    return Order(str(r.ord_id), r.product, r.uid, r.type, r.amt, r.redeeming_amt if pending else None,
                 r.scheduled_amt, r.status, r.fast, r.request_time, r.completed_time, r.est_completed_time,
                 r.reversal_reason)


def _order_id(text: str) -> int:
    found = row_id(text)
    if found is None:
        raise NotFound("Order", text[:20])
    return found


def _to_ms(moment: dt.datetime) -> dt.datetime:
    """Order times are kept to the millisecond, the wire's resolution, so that a ``requestTime``
    handed back as an ``after``/``before`` cursor compares exactly."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def staked(cfg: ProductConfig) -> AccountRef:
    return AccountRef.system("staked_principal", cfg.staked_ccy)


def issuance(cfg: ProductConfig) -> AccountRef:
    return AccountRef.system("issuance", cfg.token_ccy)

#: A user's reward rows of one product (built once: "Prebuilt statements" in docs/architecture.md).
_REWARDS = (select(staking_rewards)
            .where(staking_rewards.c.uid == bindparam("uid"), staking_rewards.c.product == bindparam("product"))
            .order_by(staking_rewards.c.day))


class StakingService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService, calendar: Daily,
                 ) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.calendar = calendar

    # -- products ----------------------------------------------------------------------

    def product(self, product: str) -> ProductConfig:
        with self.db.read() as conn:
            return products.load_product(conn, product)

    def products(self) -> list[ProductConfig]:
        with self.db.read() as conn:
            return products.load_products(conn)

    def update_product(self, product: str, changes: dict[str, Any]) -> ProductConfig:
        with self.db.write() as conn:
            return products.update_product(conn, product, changes, self.clock.now())

    def publish_rate(self, product: str, day: dt.date, rate: Decimal) -> None:
        with self.db.write() as conn:
            products.publish_rate(conn, product, day, rate, self.clock.now())

    def today(self) -> dt.date:
        return self.calendar.day(self.clock.now())

    def day_end(self, day: dt.date) -> dt.datetime:
        return self.calendar.period_of_day(day).end

    # -- purchase ----------------------------------------------------------------------

    def _check_amount(self, cfg: ProductConfig, amt: Decimal) -> None:
        if amt <= 0:
            raise InvalidParameter("amt", "must be greater than 0")
        if round_down(amt, cfg.precision) != amt:
            raise InvalidParameter("amt", f"at most {cfg.precision} decimals")

    def _member(self, conn: Connection, uid: str) -> tuple[User, User]:
        """(the user, the master of their group)."""
        user = self.accounts.get_in(conn, uid)
        master = user if not user.is_sub else self.accounts.get_in(conn, user.group_uid)
        return user, master

    def purchase(self, uid: str, product: str, amt: Decimal) -> Order:
        """Stake ``amt`` of the product's asset for as much liquid token (rules 3)."""
        with self.db.write() as conn:
            now = _to_ms(self.clock.now())  # inside the transaction: after the ledger barrier
            cfg = products.load_product(conn, product)
            self._check_amount(cfg, amt)
            user, master = self._member(conn, uid)
            if user.frozen_for(STAKING_FUNCTION) or master.frozen_for(STAKING_FUNCTION):
                raise AccountFrozen(uid, STAKING_FUNCTION)
            if user.kyc_level < cfg.min_kyc_level:
                raise Refused(StakingReason.KYC, "Required user KYC level not met")
            accepted = self.accounts.accepted_terms(conn, uid) | self.accounts.accepted_terms(conn, master.uid)
            if product not in accepted:
                raise Refused(StakingReason.TERMS, f"Accept the {product} staking terms first", product=product)
            if user.is_sub and not cfg.sub_accounts_allowed:
                raise Refused(StakingReason.SUB_ACCOUNT, "Sub-account is not supported")
            if not cfg.purchase_enabled:
                raise Refused(StakingReason.PURCHASE_CLOSED, "Product is currently suspended for purchase")
            if amt < cfg.min_purchase:
                raise Refused(StakingReason.BELOW_MINIMUM,
                              f"The minimum subscription amount is {fmt(cfg.min_purchase)} {cfg.staked_ccy}",
                              minUnit=fmt(cfg.min_purchase), ccy=cfg.staked_ccy)
            if cfg.total_quota is not None or cfg.user_quota is not None:
                self._check_quotas(conn, cfg, uid, amt)
            ord_id = self._insert_order(conn, cfg, user, "purchase", amt, status="success", now=now, fast=False,
                                        completed=now)
            posted = self.ledger.post(
                conn, type="staking_purchase", ref=str(ord_id), idempotency_key=f"staking:purchase:{ord_id}",
                at=now, uid=uid, legs=[
                    Leg(AccountRef.user(uid, FUNDING, cfg.staked_ccy), -amt), Leg(staked(cfg), amt),
                    Leg(issuance(cfg), -amt), Leg(AccountRef.user(uid, FUNDING, cfg.token_ccy), amt)])
            return self._set_entry(conn, ord_id, posted.entry_id)

    def _check_quotas(self, conn: Connection, cfg: ProductConfig, uid: str, amt: Decimal) -> None:
        """Total quota: staked principal outstanding; user quota: the tokens the user holds (free and
        redeeming, funding and trading). The product row is locked so concurrent purchases queue."""
        lock = select(staking_products.c.product).where(staking_products.c.product == cfg.product)
        conn.execute(for_update(conn, lock))
        if cfg.user_quota is not None:
            held = self._held(conn, [f"u:{uid}"], cfg.token_ccy, (FUNDING, TRADING), both_buckets=True)
            left = quota_left(cfg.user_quota, held)
            if left is not None and amt > left:
                raise Refused(StakingReason.USER_QUOTA, "The subscription quantity is above the maximum limit")
        if cfg.total_quota is not None:
            outstanding = self._held(conn, [staked(cfg).owner], cfg.staked_ccy, (0,), both_buckets=True)
            left = quota_left(cfg.total_quota, outstanding)
            if left is not None and amt > left:
                raise Refused(StakingReason.SOLD_OUT, "Sold out")

    @staticmethod
    def _held(conn: Connection, owners: list[str], ccy: str, types: tuple[int, ...], *, both_buckets: bool
              ) -> Decimal:
        c = ledger_accounts.c
        total = ZERO
        for r in conn.execute(select(c.available, c.locked).where(c.owner.in_(owners), c.ccy == ccy,
                                                                   c.acct_type.in_(types))):
            total += r.available + (r.locked if both_buckets else ZERO)
        return total

    def _insert_order(self, conn: Connection, cfg: ProductConfig, user: User, type_: str, amt: Decimal, *,
                      status: str, now: dt.datetime, fast: bool, completed: dt.datetime | None = None,
                      redeeming: Decimal = ZERO, est: dt.datetime | None = None) -> int:
        ord_id: int = conn.execute(staking_orders.insert().values(
            product=cfg.product, uid=user.uid, group_uid=user.group_uid, type=type_, amt=amt,
            redeeming_amt=redeeming, scheduled_amt=ZERO, status=status, fast=fast, request_time=now,
            completed_time=completed, est_completed_time=est,
        ).returning(staking_orders.c.ord_id)).scalar_one()
        return ord_id

    def _set_entry(self, conn: Connection, ord_id: int, entry_id: int) -> Order:
        conn.execute(staking_orders.update().where(staking_orders.c.ord_id == ord_id).values(entry_id=entry_id))
        return _order(conn.execute(select(staking_orders).where(staking_orders.c.ord_id == ord_id)).one())

    # -- redeem ------------------------------------------------------------------------

    def redeem(self, uid: str, product: str, amt: Decimal) -> Order:
        """Redeem ``amt`` free liquid token from the funding account: fast when it fits whole into
        what is left of the group's allowance today, else queued (rules 4.1-4.3)."""
        with self.db.write() as conn:
            now = _to_ms(self.clock.now())  # inside the transaction: after the ledger barrier
            today = self.calendar.day(now)
            cfg = products.load_product(conn, product)
            self._check_amount(cfg, amt)
            user, master = self._member(conn, uid)
            if user.frozen_for(STAKING_FUNCTION) or master.frozen_for(STAKING_FUNCTION):
                raise AccountFrozen(uid, STAKING_FUNCTION)
            if amt < cfg.min_redeem:
                raise InvalidParameter("amt", f"below the minimum redemption amount {fmt(cfg.min_redeem)} "
                                       f"{cfg.token_ccy}")
            token = AccountRef.user(uid, FUNDING, cfg.token_ccy)
            if self._held(conn, [token.owner], cfg.token_ccy, (FUNDING,), both_buckets=False) < amt:
                raise InsufficientBalance(cfg.token_ccy)  # only free tokens in the funding account count
            used = self._lock_fast_usage(conn, cfg, user.group_uid, today)
            if is_fast(amt, max(cfg.fast_redemption_daily_limit - used, ZERO), cfg):
                ord_id = self._insert_order(conn, cfg, user, "redeem", amt, status="success", now=now, fast=True,
                                            completed=now)
                posted = self.ledger.post(
                    conn, type="staking_redeem", ref=str(ord_id), idempotency_key=f"staking:redeem:{ord_id}",
                    at=now, uid=uid, legs=[
                        Leg(token, -amt), Leg(issuance(cfg), amt),
                        Leg(staked(cfg), -amt), Leg(AccountRef.user(uid, FUNDING, cfg.staked_ccy), amt)])
                conn.execute(fast_redemption_usage.update().where(
                    fast_redemption_usage.c.product == cfg.product,
                    fast_redemption_usage.c.group_uid == user.group_uid,
                    fast_redemption_usage.c.day == today.isoformat()).values(used=used + amt))
                return self._set_entry(conn, ord_id, posted.entry_id)
            ahead = self._queued(conn, cfg.product)
            # With a cap of 0 nothing is scheduled until the operator raises it: no estimate.
            est = None if cfg.daily_redemption_cap == 0 else self.day_end(
                estimated_completion(today, ahead, amt, cfg))
            ord_id = self._insert_order(conn, cfg, user, "redeem", amt, status="pending", now=now, fast=False,
                                        redeeming=amt, est=est)
            posted = self.ledger.post(
                conn, type="staking_redeem_request", ref=str(ord_id), idempotency_key=f"staking:redeem:{ord_id}",
                at=now, uid=uid, legs=[Leg(token, -amt), Leg(token, amt, LOCKED)])
            return self._set_entry(conn, ord_id, posted.entry_id)

    def _lock_fast_usage(self, conn: Connection, cfg: ProductConfig, group_uid: str, day: dt.date) -> Decimal:
        """Today's fast redemption drawn by the group, its row locked until the transaction ends."""
        t = fast_redemption_usage
        conn.execute(dialect_insert(conn)(t).values(product=cfg.product, group_uid=group_uid, day=day.isoformat(),
                                                    used=ZERO).on_conflict_do_nothing())
        q = select(t.c.used).where(t.c.product == cfg.product, t.c.group_uid == group_uid, t.c.day == day.isoformat())
        used: Decimal = conn.execute(for_update(conn, q)).scalar_one()
        return used

    @staticmethod
    def _queued(conn: Connection, product: str) -> Decimal:
        """Everything in the product's queue not yet scheduled."""
        total = ZERO
        for r in conn.execute(select(staking_orders.c.amt, staking_orders.c.scheduled_amt).where(
                staking_orders.c.product == product, staking_orders.c.status == "pending",
                staking_orders.c.type == "redeem")):
            total += r.amt - r.scheduled_amt
        return total

    def fast_allowance_left(self, uid: str, product: str) -> Decimal:
        today = self.today()
        with self.db.read() as conn:
            cfg = products.load_product(conn, product)
            user = self.accounts.get_in(conn, uid)
            used = conn.execute(select(fast_redemption_usage.c.used).where(
                fast_redemption_usage.c.product == product, fast_redemption_usage.c.group_uid == user.group_uid,
                fast_redemption_usage.c.day == today.isoformat())).scalar_one_or_none() or ZERO
        if not cfg.fast_redemption_enabled:
            return ZERO
        return max(cfg.fast_redemption_daily_limit - used, ZERO)

    # -- cancel ------------------------------------------------------------------------

    def cancel(self, uid: str, product: str, ord_id: str) -> Order:
        """Cancel a queued redemption no part of which is scheduled yet (rules 4.4)."""
        oid = _order_id(ord_id)
        with self.db.write() as conn:
            now = self.clock.now()
            cfg = products.load_product(conn, product)
            if not cfg.redeem_cancellable:
                raise Refused(StakingReason.CANCEL_DISABLED, "Cancellation is currently not supported")
            user, master = self._member(conn, uid)
            if user.frozen_for(STAKING_FUNCTION) or master.frozen_for(STAKING_FUNCTION):
                raise AccountFrozen(uid, STAKING_FUNCTION)
            q = select(staking_orders).where(staking_orders.c.ord_id == oid, staking_orders.c.uid == uid,
                                             staking_orders.c.product == product)
            row = conn.execute(for_update(conn, q)).first()
            if row is None:
                raise NotFound("Order", ord_id)
            if row.type != "redeem":
                raise Refused(StakingReason.NOT_CANCELLABLE, "Cancel redeem error: only redemptions can be cancelled")
            if row.status == "success":
                raise Refused(StakingReason.ALREADY_COMPLETE, "Redeem already complete")
            if row.status != "pending":
                raise Refused(StakingReason.NOT_CANCELLABLE, f"Cancel redeem error: the redemption is {row.status}")
            if row.scheduled_amt > 0:
                raise Refused(StakingReason.NOT_CANCELLABLE,
                              "Cancel redeem error: part of the redemption is already scheduled")
            token = AccountRef.user(uid, FUNDING, cfg.token_ccy)
            self.ledger.post(conn, type="staking_redeem_cancel", ref=str(oid), at=now, uid=uid,
                             idempotency_key=f"staking:cancel:{oid}",
                             legs=[Leg(token, -row.amt, LOCKED), Leg(token, row.amt)])
            conn.execute(staking_orders.update().where(staking_orders.c.ord_id == oid).values(
                status="cancelled", redeeming_amt=ZERO, est_completed_time=None))
            return _order(conn.execute(select(staking_orders).where(staking_orders.c.ord_id == oid)).one())

    # -- reading -----------------------------------------------------------------------

    def balance(self, uid: str, product: str) -> TokenBalance | None:
        """The liquid token in the funding account (free + redeeming) and the accrual figures;
        ``None`` for a user who never held it."""
        with self.db.read() as conn:
            cfg = products.load_product(conn, product)
            c = ledger_accounts.c
            row = conn.execute(select(c.available, c.locked).where(
                c.owner == f"u:{uid}", c.acct_type == FUNDING, c.ccy == cfg.token_ccy)).first()
            r = staking_rewards.c
            total = conn.execute(select(money_sum(r.net)).where(r.uid == uid, r.product == product)
                                 ).scalar_one_or_none()
            latest = conn.execute(select(r.net).where(r.uid == uid, r.product == product)
                                  .order_by(r.day.desc()).limit(1)).scalar_one_or_none()
        if row is None and latest is None:
            return None
        amt = (row.available + row.locked) if row is not None else ZERO
        return TokenBalance(cfg.token_ccy, amt, latest or ZERO, Decimal(total) if total is not None else ZERO)

    def history(self, uid: str, product: str, query: HistoryQuery) -> list[Order]:
        c = staking_orders.c
        q = select(staking_orders).where(c.uid == uid, c.product == product)
        if query.type:
            q = q.where(c.type == query.type)
        if query.status:
            q = q.where(c.status == query.status)
        q = newest_first(q, c.request_time, c.ord_id, after=query.after, before=query.before, limit=query.limit)
        with self.db.read() as conn:
            products.load_product(conn, product)
            return [_order(r) for r in conn.execute(q)]

    def apy_history(self, product: str, days: int) -> list[tuple[dt.datetime, Decimal]]:
        """(start of T-day, rate) for the last ``days`` T-days up to today, newest first; days
        before the first published rate are left out."""
        today = self.today()
        first = today - dt.timedelta(days=days - 1)
        with self.db.read() as conn:
            products.load_product(conn, product)
            published = products.rates_between(conn, product, first, today)
        out = []
        for back in range(days):
            day = today - dt.timedelta(days=back)
            rate = rate_for(day, published)
            if rate is not None:
                out.append((self.calendar.period_of_day(day).start, rate))
        return out

    # -- operator views ----------------------------------------------------------------

    def queue(self, product: str) -> list[QueueItem]:
        """The product's redemption queue in FIFO order."""
        c = staking_orders.c
        with self.db.read() as conn:
            products.load_product(conn, product)
            rows = conn.execute(select(staking_orders).where(c.product == product, c.status == "pending",
                                                              c.type == "redeem")
                                .order_by(c.request_time, c.ord_id))
            return [QueueItem(_order(r), r.amt - r.scheduled_amt) for r in rows]

    def cap_use(self, product: str, day: dt.date) -> Decimal:
        """What the settlement run of ``day`` scheduled (0 until it has run)."""
        with self.db.read() as conn:
            total = conn.execute(select(money_sum(redemption_parts.c.amount)).where(
                redemption_parts.c.product == product,
                redemption_parts.c.scheduled_day == day.isoformat())).scalar_one_or_none()
        return Decimal(total) if total is not None else ZERO

    def reward_runs(self, product: str, limit: int = 30) -> list[dict[str, Any]]:
        t = staking_reward_runs.c
        with self.db.read() as conn:
            products.load_product(conn, product)  # an unknown product is NotFound, not []
            rows = conn.execute(select(staking_reward_runs).where(t.product == product)
                                .order_by(t.day.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def rewards_of(self, uid: str, product: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            products.load_product(conn, product)  # an unknown product or user is NotFound, not []
            self.accounts.get_in(conn, uid)
            rows = conn.execute(_REWARDS, {"uid": uid, "product": product})
            return [dict(x._mapping) for x in rows]

    # -- corrections -------------------------------------------------------------------

    def reverse_order(self, ord_id: str, reason: str) -> Order:
        """Undo a completed order with compensating entries (never by editing history): every entry
        the order posted is reversed, newest first, and the order is marked failed with the reason.
        Refused while a redemption is still in the queue (cancel it instead)."""
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise InvalidParameter("reason", "1..500 characters")
        oid = _order_id(ord_id)
        with self.db.write() as conn:
            now = self.clock.now()
            q = select(staking_orders).where(staking_orders.c.ord_id == oid)
            row = conn.execute(for_update(conn, q)).first()
            if row is None:
                raise NotFound("Order", ord_id)
            if row.status != "success":
                raise NotAllowed(f"Only completed orders can be reversed; this one is {row.status}")
            parts = conn.execute(select(redemption_parts.c.entry_id).where(
                redemption_parts.c.ord_id == oid, redemption_parts.c.entry_id.is_not(None))
                .order_by(redemption_parts.c.id.desc())).scalars().all()
            last = None
            for entry_id in [*parts, row.entry_id]:
                last = self.ledger.reverse(conn, entry_id=entry_id, reason=f"order {oid}: {reason}", at=now)
            assert last is not None
            conn.execute(staking_orders.update().where(staking_orders.c.ord_id == oid).values(
                status="failed", reversal_entry_id=last.entry_id, reversal_reason=reason))
            return _order(conn.execute(select(staking_orders).where(staking_orders.c.ord_id == oid)).one())

    def order(self, ord_id: str) -> Order:
        with self.db.read() as conn:
            row = conn.execute(select(staking_orders).where(staking_orders.c.ord_id == _order_id(ord_id))).first()
        if row is None:
            raise NotFound("Order", ord_id)
        return _order(row)

