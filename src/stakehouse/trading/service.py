"""Spot orders and fills: place, cancel, read; fills with fees, markups and contract credits.

One use case, one transaction. Placing an order either fills it at once (one journal entry:
``order:fill:<ordId>``), rests it (``order:hold:<ordId>`` moves the spending currency from the
trading account's available to its locked bucket) or, for an ``ioc``/``fok`` that cannot fill,
records it canceled with nothing moved. A resting order is filled by the market's minute step
(``runs.py``) with the same fill code, or canceled (``order:release:<ordId>`` unlocks it).

A fill's legs: the user pays the market maker (``s:market_maker``) and receives from it; the fee,
in the received currency, goes to ``s:trading_fees`` (the base fee) and ``s:broker_markup`` (the
part above the base rate); what a contract credit pays of it comes from ``s:fee_credits``
instead of the user's proceeds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.exc import IntegrityError

from stakehouse.accounts.service import AccountService, User
from stakehouse.assets.prices import UsdPrices
from stakehouse.broker import rules as broker_rules
from stakehouse.broker.service import fee_changes_in
from stakehouse.clock import Clock
from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert, for_update
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first_by_id
from stakehouse.db.tables import (
    account_fee_levels,
    brokers,
    contract_credits,
    currencies,
    fee_levels,
    fills,
    instruments,
    ledger_accounts,
    orders,
)
from stakehouse.errors import AccountFrozen, InsufficientBalance, InvalidParameter, Refused
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import LOCKED, TRADING, AccountRef, Leg
from stakehouse.money import ZERO, round_down
from stakehouse.trading import rules
from stakehouse.trading.prices import PriceService
from stakehouse.trading.rules import Decision, InstrumentRules, OrderSpec, TradingReason

USDT_SCALE = 6
#: The window of the ND sub-account order cap.
ORDER_CAP_WINDOW = dt.timedelta(seconds=2)


@dataclass(frozen=True)
class PlaceRequest:
    inst_id: str
    td_mode: str
    side: str
    ord_type: str
    sz: Decimal
    px: Decimal | None
    tgt_ccy: str = ""
    cl_ord_id: str = ""
    tag: str = ""
    #: How the order was authenticated (``api`` or ``oauth``) and by which key (for ``oauth``: the
    #: OAuth client's id): FD attribution.
    auth: str = "api"
    api_key: str = ""


@dataclass(frozen=True)
class Fill:
    trade_id: int
    ord_id: int
    cl_ord_id: str
    uid: str
    broker_uid: str | None
    inst_id: str
    side: str
    tag: str
    exec_type: str
    fill_px: Decimal
    fill_sz: Decimal
    quote_amt: Decimal
    idx_px: Decimal
    fee_ccy: str
    fee_rate: Decimal
    base_rate: Decimal
    fee: Decimal
    base_fee: Decimal
    markup_fee: Decimal
    credit_fee: Decimal
    amt_usdt: Decimal
    fee_usdt: Decimal
    net_fee_usdt: Decimal
    markup_usdt: Decimal
    entry_id: int
    ts: dt.datetime


@dataclass(frozen=True)
class Order:
    ord_id: int
    uid: str
    inst_id: str
    cl_ord_id: str
    tag: str
    side: str
    ord_type: str
    td_mode: str
    tgt_ccy: str
    px: Decimal | None
    sz: Decimal
    state: str
    lock_ccy: str
    locked: Decimal
    acc_fill_sz: Decimal
    avg_px: Decimal | None
    fee: Decimal
    fee_ccy: str
    auth: str
    api_key: str
    created_at: dt.datetime
    updated_at: dt.datetime
    fill: Fill | None = None

    @property
    def spec(self) -> OrderSpec:
        return OrderSpec(self.side, self.ord_type, self.sz, self.px, self.tgt_ccy)


@dataclass(frozen=True)
class OrderQuery:
    inst_id: str = ""
    ord_type: str = ""
    state: str = ""
    after: int | None = None  # ordId cursors
    before: int | None = None
    begin: dt.datetime | None = None  # cTime window
    end: dt.datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class FillQuery:
    inst_id: str = ""
    ord_id: int | None = None
    after: int | None = None  # billId (= tradeId) cursors
    before: int | None = None
    begin: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = 100


_ORDER_FIELDS = tuple(f for f in Order.__dataclass_fields__ if f != "fill")
_FILL_FIELDS = tuple(f for f in Fill.__dataclass_fields__ if f != "cl_ord_id")


def _order(row: Row[Any], fill: Fill | None = None) -> Order:
    return Order(**{f: getattr(row, f) for f in _ORDER_FIELDS}, fill=fill)


def _fill(row: Row[Any], cl_ord_id: str = "") -> Fill:
    return Fill(**{f: getattr(row, f) for f in _FILL_FIELDS}, cl_ord_id=cl_ord_id)


def instrument_rules(conn: Connection, inst_id: str, *, new_orders: bool = True) -> InstrumentRules:
    """An instrument's rules; for ``new_orders`` it must be live (a suspended one still fills the
    orders resting on it)."""
    base, quote = currencies.alias("base"), currencies.alias("quote")
    row = conn.execute(select(instruments, base.c.scale.label("base_scale"), quote.c.scale.label("quote_scale"))
                       .join(base, base.c.ccy == instruments.c.base_ccy)
                       .join(quote, quote.c.ccy == instruments.c.quote_ccy)
                       .where(instruments.c.inst_id == inst_id)).first()
    if row is None:
        raise Refused(TradingReason.UNKNOWN_INSTRUMENT, "Instrument ID or Spread ID doesn't exist.", instId=inst_id)
    if new_orders and row.state != "live":
        raise Refused(TradingReason.INSTRUMENT_SUSPENDED, f"Instrument ID {inst_id} is suspended: no new orders",
                      instId=inst_id)
    return InstrumentRules(row.inst_id, row.base_ccy, row.quote_ccy, row.tick_sz, row.lot_sz, row.min_sz, row.max_sz,
                           row.base_scale, row.quote_scale)


class TradingService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService, prices: PriceService,
                 usd: UsdPrices, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.prices = prices
        #: The one price book: what a fill's fee and amount are worth (USDT counted as one dollar).
        self.usd = usd
        self.settings = settings

    # -- placing ---------------------------------------------------------------------------------

    def place(self, uid: str, req: PlaceRequest) -> Order:
        """Place one order (one transaction): filled at once, resting, or (ioc/fok) canceled."""
        if req.td_mode != "cash":
            raise Refused(TradingReason.TD_MODE, "Request unsupported under current account mode")
        tgt = req.tgt_ccy or rules.default_tgt_ccy(req.side, req.ord_type)
        spec = OrderSpec(req.side, req.ord_type, req.sz, req.px, tgt if req.ord_type == "market" else "base_ccy")
        try:
            with self.db.write() as conn:
                return self._place(conn, uid, req, spec)
        except IntegrityError as exc:  # the live-clOrdId index: a concurrent twin won
            if "cl_ord_id" not in str(exc.orig):
                raise
            raise Refused(TradingReason.DUPLICATE_CL_ORD_ID, "Client order ID already exists.") from None

    def _place(self, conn: Connection, uid: str, req: PlaceRequest, spec: OrderSpec) -> Order:
        user = self.accounts.get_in(conn, uid)
        if user.frozen_for("trade"):
            raise AccountFrozen(uid, "trade")
        inst = instrument_rules(conn, req.inst_id)
        now = self.clock.now()
        broker_uid = nd_broker_of(conn, user)
        if broker_uid is not None:
            self._order_cap(conn, uid, now)
        reason = rules.check_order(spec, inst)
        if reason is not None:
            raise Refused(reason, _REASON_TEXT[reason], field="px" if reason is TradingReason.TICK_SIZE else "sz")
        if req.cl_ord_id and conn.execute(select(orders.c.ord_id).where(
                orders.c.uid == uid, orders.c.cl_ord_id == req.cl_ord_id, orders.c.state == "live")).first():
            raise Refused(TradingReason.DUPLICATE_CL_ORD_ID, "Client order ID already exists.")
        index = self.prices.for_order(conn, inst.inst_id)
        decision = rules.decide(spec, index)
        if decision is Decision.REJECT:
            raise Refused(TradingReason.POST_ONLY_WOULD_CROSS,
                          "Order failed. The post_only order would take liquidity at the current index price.")
        lock_ccy, lock_amt = rules.lock_for(spec, inst, index)
        fill_px = index if decision is not Decision.REST else spec.px
        if fill_px is not None and rules.trade(spec, inst, fill_px, lock_amt) is None:
            # buys or sells less than a lot / is worth less than the quote's smallest unit
            raise Refused(TradingReason.BELOW_MIN_SIZE, _REASON_TEXT[TradingReason.BELOW_MIN_SIZE], field="sz")
        if decision is Decision.CANCEL:
            # nothing moves, so nothing else would check the funds (a hold or a fill is refused by
            # the ledger itself when the balance is short, and the whole transaction with it)
            self._require_available(conn, uid, lock_ccy, lock_amt)
        state = "canceled" if decision is Decision.CANCEL else "live"
        row = conn.execute(orders.insert().values(
            uid=uid, inst_id=inst.inst_id, cl_ord_id=req.cl_ord_id, tag=req.tag, side=spec.side,
            ord_type=spec.ord_type, td_mode=req.td_mode, tgt_ccy=spec.tgt_ccy, px=spec.px, sz=spec.sz, state=state,
            lock_ccy=lock_ccy, locked=ZERO, acc_fill_sz=ZERO, avg_px=None, fee=ZERO, fee_ccy="", auth=req.auth,
            api_key=req.api_key, created_at=now, updated_at=now).returning(orders)).one()
        order = _order(row)
        if decision is Decision.REST:
            user_ref = AccountRef.user(uid, TRADING, lock_ccy)
            self.ledger.post(conn, type="order_hold", ref=str(order.ord_id),
                             idempotency_key=f"order:hold:{order.ord_id}",
                             legs=[Leg(user_ref, -lock_amt), Leg(user_ref, lock_amt, LOCKED)], at=now, uid=uid)
            conn.execute(orders.update().where(orders.c.ord_id == order.ord_id).values(locked=lock_amt))
            return dataclasses.replace(order, locked=lock_amt)
        if decision is Decision.FILL:
            fill = self.execute_fill(conn, row, user, inst, fill_px=index, index=index, at=now, exec_type="T",
                                     held=ZERO, budget=lock_amt, broker_uid=broker_uid)
            assert fill is not None  # a new order's first fill
            return dataclasses.replace(order, state="filled", acc_fill_sz=fill.fill_sz, avg_px=fill.fill_px,
                                       fee=fill.fee, fee_ccy=fill.fee_ccy, fill=fill)
        return order

    def _order_cap(self, conn: Connection, uid: str, now: dt.datetime) -> None:
        """An ND broker's sub-account places at most ``nd_sub_order_cap`` orders per 2 seconds (50061)."""
        recent = conn.execute(select(func.count()).select_from(orders).where(
            orders.c.uid == uid, orders.c.created_at > now - ORDER_CAP_WINDOW)).scalar_one()
        if recent >= self.settings.nd_sub_order_cap:
            raise Refused(TradingReason.ORDER_CAP, "You've reached the maximum order rate limit for this account.")

    @staticmethod
    def _require_available(conn: Connection, uid: str, ccy: str, amount: Decimal) -> None:
        row = conn.execute(select(ledger_accounts.c.available).where(
            ledger_accounts.c.owner == f"u:{uid}", ledger_accounts.c.acct_type == TRADING,
            ledger_accounts.c.ccy == ccy)).first()
        if row is None or row.available < amount:
            raise InsufficientBalance(ccy)

    # -- filling ---------------------------------------------------------------------------------

    def execute_fill(self, conn: Connection, row: Row[Any], user: User, inst: InstrumentRules, *, fill_px: Decimal,
                     index: Decimal, at: dt.datetime, exec_type: str, held: Decimal, budget: Decimal,
                     broker_uid: str | None) -> Fill | None:
        """Fill order ``row`` fully at ``fill_px`` (one journal entry) and record the fill. ``held``
        is what the order has locked (zero for a taker fill at placement, which pays from available),
        ``budget`` the most it may spend, ``broker_uid`` the account's ND broker (``nd_broker_of``).
        ``None`` when the journal already has this fill."""
        spec = _order(row).spec
        t = rules.trade(spec, inst, fill_px, budget)
        if t is None:
            return None
        side = "taker" if exec_type == "T" else "maker"
        base_rate, rate = self._rates(conn, user, inst, side, at, broker_uid)
        get_scale = inst.base_scale if t.get_ccy == inst.base_ccy else inst.quote_scale
        total, base_fee, markup = rules.fee_split(t.get, rate=rate, base_rate=base_rate, scale=get_scale)
        fee_px = self._usdt_price(conn, t.get_ccy, inst, index, at)
        # contract credits are granted to ND brokers' sub-accounts only
        credit_fee, credit_uses = (self._plan_credits(conn, user.uid, total, fee_px, get_scale, at) if broker_uid
                                   else (ZERO, []))
        money_fee = total - credit_fee
        net_fee, money_markup = rules.paid_in_money(base_fee, markup, credit_fee)
        uid = user.uid
        legs: list[Leg] = []
        pay_ref = AccountRef.user(uid, TRADING, t.pay_ccy)
        if held > 0:
            legs.append(Leg(pay_ref, -held, LOCKED))
            if held - t.pay > 0:
                legs.append(Leg(pay_ref, held - t.pay))
        else:
            legs.append(Leg(pay_ref, -t.pay))
        legs.append(Leg(AccountRef.system("market_maker", t.pay_ccy), t.pay))
        legs.append(Leg(AccountRef.system("market_maker", t.get_ccy), -t.get))
        if t.get - money_fee > 0:
            legs.append(Leg(AccountRef.user(uid, TRADING, t.get_ccy), t.get - money_fee))
        if base_fee:
            legs.append(Leg(AccountRef.system("trading_fees", t.get_ccy), base_fee))
        if markup:
            legs.append(Leg(AccountRef.system("broker_markup", t.get_ccy), markup))
        if credit_fee:
            legs.append(Leg(AccountRef.system("fee_credits", t.get_ccy), -credit_fee))
        posted = self.ledger.post(conn, type="order_fill", ref=str(row.ord_id),
                                  idempotency_key=f"order:fill:{row.ord_id}", legs=legs, at=at, uid=uid)
        if not posted.created:
            return None
        for credit_id, used in credit_uses:
            conn.execute(contract_credits.update().where(contract_credits.c.credit_id == credit_id)
                         .values(used=used, updated_at=at))
        quote_px = self._usdt_price(conn, inst.quote_ccy, inst, index, at)
        values = {
            "ord_id": row.ord_id, "uid": uid, "broker_uid": broker_uid, "inst_id": inst.inst_id,
            "side": row.side, "tag": row.tag, "exec_type": exec_type, "fill_px": fill_px, "fill_sz": t.fill_sz,
            "quote_amt": t.quote_amt, "idx_px": index, "fee_ccy": t.get_ccy, "fee_rate": rate, "base_rate": base_rate,
            "fee": total, "base_fee": base_fee, "markup_fee": markup, "credit_fee": credit_fee,
            "amt_usdt": round_down(t.quote_amt * quote_px, 18), "fee_usdt": round_down(total * fee_px, 18),
            # for rebates (spec 5): the base fee and the markup paid in money, credits taking the base first
            "net_fee_usdt": round_down(net_fee * fee_px, 18), "markup_usdt": round_down(money_markup * fee_px, 18),
            "entry_id": posted.entry_id, "ts": at,
        }
        trade_id: int = conn.execute(fills.insert().values(**values).returning(fills.c.trade_id)).scalar_one()
        conn.execute(orders.update().where(orders.c.ord_id == row.ord_id).values(
            state="filled", locked=ZERO, acc_fill_sz=t.fill_sz, avg_px=fill_px, fee=total, fee_ccy=t.get_ccy,
            updated_at=at))
        return Fill(trade_id=trade_id, cl_ord_id=row.cl_ord_id, **values)

    def _rates(self, conn: Connection, user: User, inst: InstrumentRules, side: str, at: dt.datetime,
               broker_uid: str | None) -> tuple[Decimal, Decimal]:
        """(base rate of the account's fee level, effective rate with its ND broker's change in force at ``at``)."""
        level = conn.execute(select(fee_levels.c.taker, fee_levels.c.maker).where(fee_levels.c.level == func.coalesce(
            select(account_fee_levels.c.level).where(account_fee_levels.c.uid == user.uid).scalar_subquery(),
            "Lv1"))).first()
        base = (level.taker if side == "taker" else level.maker) if level is not None else (
            self.settings.spot_taker_fee_rate if side == "taker" else self.settings.spot_maker_fee_rate)
        if broker_uid is None:
            return base, base
        history = fee_changes_in(conn, user)
        scope = broker_rules.FeeScope("SPOT", 2 if inst.quote_ccy == "USDT" else 3, None)
        setting = broker_rules.applicable(history, user.uid, scope, at, side)
        return base, broker_rules.effective_rate(base, setting, side)

    def _usdt_price(self, conn: Connection, ccy: str, inst: InstrumentRules, index: Decimal, at: dt.datetime
                    ) -> Decimal:
        """One ``ccy`` in USDT at the fill: the fill's own index for a USDT pair's base, else the one
        USD price book (zero when it has no price)."""
        if ccy == inst.base_ccy and inst.quote_ccy == "USDT":
            return index
        return self.usd.price_at(conn, ccy, at) or ZERO

    @staticmethod
    def _plan_credits(conn: Connection, uid: str, fee: Decimal, fee_px: Decimal, scale: int, at: dt.datetime
                      ) -> tuple[Decimal, list[tuple[int, Decimal]]]:
        """What active contract credits can pay of ``fee`` (soonest to expire first): the part paid,
        and each credit's new used amount (applied once the fill's entry is posted)."""
        if fee <= 0 or fee_px <= 0:
            return ZERO, []
        rows = conn.execute(for_update(conn, select(contract_credits).where(
            contract_credits.c.uid == uid, contract_credits.c.state == "activated",
            contract_credits.c.use_exp_at > at).order_by(contract_credits.c.use_exp_at, contract_credits.c.credit_id)
        )).all()
        paid, uses = ZERO, []
        for credit in rows:
            remaining = credit.amt - credit.used
            if remaining <= 0:
                continue
            owed = fee - paid
            value = rules.ceil_to(owed * fee_px, rules.unit(USDT_SCALE))
            part, used = rules.credit_cover(owed, value, remaining, fee_px, scale)
            if used <= 0:
                continue
            uses.append((credit.credit_id, credit.used + used))
            paid += part
            if paid >= fee:
                break
        return paid, uses

    # -- canceling -------------------------------------------------------------------------------

    def cancel(self, uid: str, inst_id: str, *, ord_id: int | None = None, cl_ord_id: str = "") -> Order:
        with self.db.write() as conn:
            found = self._find(conn, uid, inst_id, ord_id, cl_ord_id, lock=True)
            if found.state != "live":
                raise Refused(TradingReason.ORDER_CLOSED, "Order cancellation failed as the order has been filled, "
                                                          "canceled or does not exist.")
            now = self.clock.now()
            self._release(conn, found, now)
            return self._get(conn, found.ord_id)

    def _release(self, conn: Connection, order: Order, at: dt.datetime) -> None:
        if order.locked > 0:
            ref = AccountRef.user(order.uid, TRADING, order.lock_ccy)
            self.ledger.post(conn, type="order_release", ref=str(order.ord_id),
                             idempotency_key=f"order:release:{order.ord_id}",
                             legs=[Leg(ref, -order.locked, LOCKED), Leg(ref, order.locked)], at=at, uid=order.uid)
        conn.execute(orders.update().where(orders.c.ord_id == order.ord_id)
                     .values(state="canceled", locked=ZERO, updated_at=at))

    # -- reading ---------------------------------------------------------------------------------

    def _find(self, conn: Connection, uid: str, inst_id: str, ord_id: int | None, cl_ord_id: str, *,
              lock: bool = False) -> Order:
        q = select(orders).where(orders.c.uid == uid)
        if inst_id:
            q = q.where(orders.c.inst_id == inst_id)
        if ord_id is not None:
            q = q.where(orders.c.ord_id == ord_id)
        else:
            q = q.where(orders.c.cl_ord_id == cl_ord_id).order_by(orders.c.ord_id.desc()).limit(1)
        row = conn.execute(for_update(conn, q) if lock else q).first()
        if row is None:
            raise Refused(TradingReason.ORDER_MISSING, "Order does not exist.")
        return _order(row)

    def _get(self, conn: Connection, ord_id: int) -> Order:
        row = conn.execute(select(orders).where(orders.c.ord_id == ord_id)).one()
        f = conn.execute(select(fills).where(fills.c.ord_id == ord_id)).first()
        return _order(row, _fill(f, row.cl_ord_id) if f is not None else None)

    def order(self, uid: str, inst_id: str, *, ord_id: int | None = None, cl_ord_id: str = "") -> Order:
        with self.db.query() as conn:
            found = self._find(conn, uid, inst_id, ord_id, cl_ord_id)
            return self._get(conn, found.ord_id)

    def orders(self, uid: str, query: OrderQuery, *, live: bool, since: dt.datetime | None = None) -> list[Order]:
        """Newest first: the live orders, or the finished ones created after ``since``."""
        c = orders.c
        q = select(orders, fills).join(fills, fills.c.ord_id == c.ord_id, isouter=True).where(c.uid == uid)
        q = q.where(c.state == "live") if live else q.where(c.state != "live")
        if query.state:
            q = q.where(c.state == query.state)
        if since is not None:
            q = q.where(c.created_at >= since)
        if query.inst_id:
            q = q.where(c.inst_id == query.inst_id)
        if query.ord_type:
            q = q.where(c.ord_type == query.ord_type)
        if query.begin is not None:
            q = q.where(c.created_at >= query.begin)
        if query.end is not None:
            q = q.where(c.created_at <= query.end)
        q = newest_first_by_id(q, c.ord_id, after=query.after, before=query.before, limit=query.limit)
        with self.db.query() as conn:
            return [_order(r, _fill_from_join(r)) for r in conn.execute(q)]

    def fills(self, uid: str, query: FillQuery, *, since: dt.datetime) -> list[Fill]:
        f = fills.c
        q = select(fills, orders.c.cl_ord_id).join(orders, orders.c.ord_id == f.ord_id).where(f.uid == uid,
                                                                                             f.ts >= since)
        if query.inst_id:
            q = q.where(f.inst_id == query.inst_id)
        if query.ord_id is not None:
            q = q.where(f.ord_id == query.ord_id)
        if query.begin is not None:
            q = q.where(f.ts >= query.begin)
        if query.end is not None:
            q = q.where(f.ts <= query.end)
        q = newest_first_by_id(q, f.trade_id, after=query.after, before=query.before, limit=query.limit)
        with self.db.query() as conn:
            return [_fill(r, r.cl_ord_id) for r in conn.execute(q)]

    # -- fee levels ------------------------------------------------------------------------------

    def fee_levels(self) -> list[tuple[str, Decimal, Decimal]]:
        with self.db.query() as conn:
            rows = conn.execute(select(fee_levels)).all()
        order = {lv: i for i, lv in enumerate(rules.LEVELS)}
        return sorted(((r.level, r.taker, r.maker) for r in rows), key=lambda r: order.get(r[0], 99))

    def set_fee_level(self, level: str, *, taker: Decimal, maker: Decimal) -> tuple[str, Decimal, Decimal]:
        if level not in rules.LEVELS:
            raise InvalidParameter("level", ", ".join(rules.LEVELS))
        for name, rate in (("taker", taker), ("maker", maker)):
            if not rate.is_finite() or rate < 0 or rate >= Decimal("0.1") or round_down(rate, 8) != rate:
                raise InvalidParameter(name, "a fraction in [0, 0.1) with at most 8 decimals")
        with self.db.write() as conn:
            now = self.clock.now()
            updated = conn.execute(fee_levels.update().where(fee_levels.c.level == level)
                                   .values(taker=taker, maker=maker, updated_at=now)).rowcount
            if not updated:
                conn.execute(fee_levels.insert().values(level=level, taker=taker, maker=maker, updated_at=now))
        return level, taker, maker

    def account_level(self, uid: str) -> str:
        with self.db.query() as conn:
            self.accounts.get_in(conn, uid)
            found: str | None = conn.execute(select(account_fee_levels.c.level)
                                             .where(account_fee_levels.c.uid == uid)).scalar_one_or_none()
        return found or "Lv1"

    def set_account_level(self, uid: str, level: str) -> str:
        if level not in rules.LEVELS:
            raise InvalidParameter("level", ", ".join(rules.LEVELS))
        with self.db.write() as conn:
            self.accounts.get_in(conn, uid)
            now = self.clock.now()
            conn.execute(account_fee_levels.delete().where(account_fee_levels.c.uid == uid))
            conn.execute(account_fee_levels.insert().values(uid=uid, level=level, updated_at=now))
        return level


def nd_broker_of(conn: Connection, user: User) -> str | None:
    """The ND broker whose sub-account ``user`` is (its fills carry the broker's markup and count
    for the broker's rebates), or ``None``."""
    if not user.is_sub:
        return None
    found = conn.execute(select(brokers.c.uid).where(brokers.c.uid == user.group_uid)).first()
    return user.group_uid if found is not None else None


def _fill_from_join(r: Row[Any]) -> Fill | None:
    if getattr(r, "trade_id", None) is None:
        return None
    return _fill(r, r.cl_ord_id)


def seed_fee_levels(conn: Connection, now: dt.datetime, taker: Decimal, maker: Decimal) -> None:
    """``Lv1`` at the configured base rates, ``VIP1``..``VIP8`` lower, if not there yet."""
    insert = dialect_insert(conn)
    steps = [Decimal(1), Decimal("0.8"), Decimal("0.7"), Decimal("0.6"), Decimal("0.5"), Decimal("0.45"),
             Decimal("0.4"), Decimal("0.35"), Decimal("0.3")]
    for level, factor in zip(rules.LEVELS, steps, strict=True):
        conn.execute(insert(fee_levels).values(level=level, taker=(taker * factor).normalize(),
                                               maker=(maker * factor).normalize(), updated_at=now)
                     .on_conflict_do_nothing())


_REASON_TEXT: dict[TradingReason, str] = {
    TradingReason.BELOW_MIN_SIZE: "Your order should meet or exceed the minimum order amount.",
    TradingReason.LOT_SIZE: "Order quantity must be a multiple of the lot size.",
    TradingReason.TICK_SIZE: "Parameter px error: not a multiple of the tick size",
    TradingReason.ABOVE_MAX_SIZE: "Parameter sz error: above the instrument's maximum size",
}
