"""DCD event sources: the daily listing at 08:00 UTC, and each product's fixing at ``expTime``
and payment at ``settTime``, exactly once, in due-time order with every other job.

- ``dcd_listing``: due at the next 08:00 UTC after the last one listed (at once on a first start,
  for the current day). Lists, per enabled series, a product per tenor and strike of the ladder
  at that moment's index. ``dcd_state.listed_until`` is moved by a conditional update (the claim).
- ``dcd_settlement``: at a product's ``expTime`` its live orders become ``pending_settled`` with
  the settlement price (the index's close of the minute that ended at ``expTime``): a conditional
  update. At ``settTime`` (under the product's row lock) each pending order's payout (§1) and the
  broker's markup are computed and written, and one journal entry pays them (the users' funding
  accounts through ``post_credits``, the brokers' markups, all from ``s:dcd_book``): one entry per
  product (``dcd:settle:<productId>``) up to ``job_chunk_size`` users, beyond that one per chunk
  of that many users in uid order, each its own transaction (``dcd:settle:<productId>:<first
  uid>`` after the first), so that a product's transaction stays bounded however many bought it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, func, select

from stakehouse.assets.reference import all_currencies
from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert, driver_params, driver_sql, for_update
from stakehouse.db.engine import Database
from stakehouse.db.tables import dcd_orders, dcd_products, dcd_series, dcd_state
from stakehouse.dcd import rules
from stakehouse.jobs.chunks import Chunk
from stakehouse.ledger.journal import Credits, Ledger
from stakehouse.ledger.rules import FUNDING, AccountRef, Leg
from stakehouse.money import ZERO, round_down
from stakehouse.trading.prices import PriceService

log = structlog.get_logger(__name__)

BOOK = "dcd_book"
CREDITS_TMP = "dcd_settle_credits"
ONE_DAY = dt.timedelta(days=1)


def index_at(conn: Connection, prices: PriceService, inst_id: str, at: dt.datetime) -> Decimal | None:
    """The index as of ``at``: the close of the minute that ended at ``at`` (the sandbox walks the
    path that far first); the first price there is when the path starts later."""
    prices.price_until(conn, inst_id, at)
    found = prices.latest_in(conn, inst_id, at - dt.timedelta(minutes=1)) or prices.latest_in(conn, inst_id)
    return found.px if found is not None else None


#: What the event sources read on every poll of the job runner (built once: "Prebuilt statements" in
#: docs/architecture.md): how far products are listed; the first live order to fix, the first to pay.
_LISTED_UNTIL = select(dcd_state.c.listed_until).where(dcd_state.c.id == 1)
_FIRST_EXPIRY = (select(dcd_orders.c.exp_time).where(dcd_orders.c.state == "live")
                 .order_by(dcd_orders.c.exp_time).limit(1))
_FIRST_SETTLEMENT = (select(dcd_orders.c.sett_time).where(dcd_orders.c.state == "pending_settled")
                     .order_by(dcd_orders.c.sett_time).limit(1))


class DcdListing:
    """Event source ``dcd_listing``."""

    name = "dcd_listing"

    def __init__(self, db: Database, clock: Clock, prices: PriceService, stop_before: dt.timedelta) -> None:
        self.db = db
        self.clock = clock
        self.prices = prices
        self.stop_before = stop_before

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            listed = conn.execute(_LISTED_UNTIL).scalar_one_or_none()
        return listed + ONE_DAY if listed is not None else rules.listing_boundary(self.clock.now())

    def run_due(self, until: dt.datetime) -> int:
        due = self.next_due()
        if due is None or due > until:
            return 0
        boundary = rules.listing_boundary(due)
        with self.db.write() as conn:
            conn.execute(dialect_insert(conn)(dcd_state).values(id=1, listed_until=None).on_conflict_do_nothing())
            current = conn.execute(for_update(conn, select(dcd_state.c.listed_until)
                                              .where(dcd_state.c.id == 1))).scalar_one()
            if current is not None and current >= boundary:
                return 0  # another worker listed it
            n = sum(self._list(conn, s, boundary) for s in conn.execute(
                select(dcd_series).where(dcd_series.c.enabled.is_(True)).order_by(dcd_series.c.ccy)).all())
            conn.execute(dcd_state.update().where(dcd_state.c.id == 1).values(listed_until=boundary))
        log.info("dcd_listed", at=boundary.isoformat(), products=n)
        return 1

    def _list(self, conn: Connection, s: Any, boundary: dt.datetime) -> int:
        spot = index_at(conn, self.prices, s.index_inst, boundary)
        if spot is None:
            log.warning("dcd_no_index", inst=s.index_inst)
            return 0
        rows = []
        for tenor in rules.parse_list(s.tenors, integers=True):
            expiry = boundary + dt.timedelta(days=int(tenor))
            for opt_type, stk in rules.ladder(spot, rules.parse_list(s.strike_pcts), s.strike_tick):
                side = "call" if opt_type == "C" else "put"
                rows.append(dict(
                    product_id=rules.product_id(s.ccy, s.alt_ccy, expiry, stk, opt_type), ccy=s.ccy,
                    alt_ccy=s.alt_ccy, uly=s.uly, index_inst=s.index_inst, opt_type=opt_type, stk=stk,
                    notional_ccy=s.ccy if opt_type == "C" else s.alt_ccy, min_size=getattr(s, f"{side}_min"),
                    max_size=getattr(s, f"{side}_max"), step_size=getattr(s, f"{side}_step"),
                    quota=getattr(s, f"{side}_quota"), sold=ZERO, vol=s.vol, margin=s.margin, list_time=boundary,
                    exp_time=expiry, sett_time=expiry + rules.SETTLE_AFTER,
                    stop_trading_time=expiry - self.stop_before))
        for row in rows:  # a product already listed (same expiry and strike) stays as it was
            conn.execute(dialect_insert(conn)(dcd_products).values(**row).on_conflict_do_nothing())
        return len(rows)


class DcdSettlement:
    """Event source ``dcd_settlement``."""

    name = "dcd_settlement"

    def __init__(self, db: Database, prices: PriceService, ledger: Ledger, chunk_size: int = 50_000) -> None:
        self.db = db
        self.prices = prices
        self.ledger = ledger
        #: How many users' orders one payment transaction settles at most.
        self.chunk_size = max(1, chunk_size)

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            fix = conn.execute(_FIRST_EXPIRY).scalar_one_or_none()
            pay = conn.execute(_FIRST_SETTLEMENT).scalar_one_or_none()
        found = [t for t in (fix, pay) if t is not None]
        return min(found) if found else None

    def run_due(self, until: dt.datetime) -> int:
        c = dcd_orders.c
        with self.db.query() as conn:
            to_fix = conn.execute(select(c.product_id, c.exp_time).where(c.state == "live", c.exp_time <= until)
                                  .group_by(c.product_id, c.exp_time).order_by(c.exp_time, c.product_id)).all()
            to_pay = conn.execute(select(c.product_id, c.sett_time).where(c.state == "pending_settled",
                                                                        c.sett_time <= until)
                                  .group_by(c.product_id, c.sett_time).order_by(c.sett_time, c.product_id)).all()
        done = 0
        for product_id, exp_time in to_fix:
            done += self.fix(product_id, exp_time)
        for product_id, sett_time in to_pay:
            done += self.pay(product_id, sett_time)
        return done

    def fix(self, product_id: str, exp_time: dt.datetime) -> int:
        """The product's live orders get the settlement price at ``exp_time``."""
        with self.db.write() as conn:
            inst = conn.execute(select(dcd_products.c.index_inst).where(dcd_products.c.product_id == product_id)
                                ).scalar_one()
            px = index_at(conn, self.prices, inst, exp_time)
            if px is None:
                return 0
            n = conn.execute(dcd_orders.update().where(dcd_orders.c.product_id == product_id,
                                                       dcd_orders.c.state == "live")
                             .values(state="pending_settled", sett_price=px, updated_at=exp_time)).rowcount
        return int(n)

    def pay(self, product_id: str, sett_time: dt.datetime) -> int:
        """Pay the product's pending orders at ``sett_time``, in chunks of ``chunk_size`` users, a
        transaction and a journal entry each; the number of orders paid."""
        done = 0
        while n := self._pay_chunk(product_id, sett_time):
            done += n
        return done

    def _pay_chunk(self, product_id: str, sett_time: dt.datetime) -> int:
        """Pay the pending orders of the product's first ``chunk_size`` users not paid yet (in uid
        order): one journal entry, keyed ``dcd:settle:<productId>`` for the first chunk and
        ``dcd:settle:<productId>:<its first uid>`` for the next; 0 when none is left. A chunk rolled
        back is the same chunk when done again: the pending orders decide it."""
        c = dcd_orders.c
        with self.db.write() as conn:
            p = conn.execute(for_update(conn, select(dcd_products).where(dcd_products.c.product_id == product_id))
                             ).one()
            pending = (c.product_id == product_id, c.state == "pending_settled")
            lo = conn.execute(select(func.min(c.uid)).where(*pending)).scalar_one_or_none()
            if lo is None:
                return 0  # none left, or another worker paid them
            hi = conn.execute(select(c.uid).where(*pending).group_by(c.uid).order_by(c.uid).offset(self.chunk_size)
                              .limit(1)).scalar_one_or_none()
            part = Chunk(0, None, hi)
            first = conn.execute(select(c.ord_id).where(c.product_id == product_id, c.state == "settled").limit(1)
                                 ).first() is None
            orders = conn.execute(select(c.ord_id, c.uid, c.broker_uid, c.notional, c.abs_yield, c.markup_yield,
                                         c.sett_price).where(*pending, *part.bounds(c.uid))
                                  .order_by(c.ord_id)).all()
            scales = {ccy: cur.scale for ccy, cur in all_currencies(conn).items()}
            updates = []
            markups: dict[str, Decimal] = {}
            paid_ccy = ""
            total = ZERO
            for o in orders:
                payout = rules.settlement(p.opt_type, o.notional, o.abs_yield, p.stk, o.sett_price, ccy=p.ccy,
                                          alt_ccy=p.alt_ccy, scales=scales)
                markup = round_down(o.notional * o.markup_yield, scales[p.notional_ccy])
                if markup:
                    markups[o.broker_uid] = markups.get(o.broker_uid, ZERO) + markup
                paid_ccy = payout.ccy
                total += payout.amount
                updates.append({"b_id": o.ord_id, "b_amt": payout.amount, "b_ccy": payout.ccy,
                                "b_yield": payout.yield_amt, "b_markup": markup})
            conn.execute(dcd_orders.update().where(c.ord_id == bindparam("b_id")).values(
                sett_amt=bindparam("b_amt"), sett_ccy=bindparam("b_ccy"), yield_amt=bindparam("b_yield"),
                markup_amt=bindparam("b_markup")), updates)
            # The users' credits, summed once into a temporary table: the ledger reads them several
            # times, and PostgreSQL plans a small real table well where it would misjudge the rows just
            # updated (stale statistics made this step take 90 s for 100 000 orders, bench/dcd_settlement.py).
            sqlite = conn.dialect.name == "sqlite"
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {CREDITS_TMP}")
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {CREDITS_TMP} (uid VARCHAR(20) PRIMARY KEY, amount "
                                 f"{'TEXT' if sqlite else 'NUMERIC(38, 18)'} NOT NULL)")
            conn.exec_driver_sql(
                driver_sql(conn, f"INSERT INTO {CREDITS_TMP} (uid, amount) SELECT uid, "
                                 f"{'decsum' if sqlite else 'sum'}(sett_amt) FROM {dcd_orders.name} WHERE product_id = "
                                 f"%(d_product)s AND state = 'pending_settled' AND {part.where('uid')} GROUP BY uid"),
                driver_params(conn, {"d_product": product_id, **part.params()}))
            credits = Credits(select=f"SELECT uid, amount FROM {CREDITS_TMP}", params={}, acct_type=FUNDING,
                              ccy=paid_ccy)
            counter = [Leg(AccountRef.system(BOOK, paid_ccy), -total)]
            for broker_uid, amount in sorted(markups.items()):
                counter += [Leg(AccountRef.system(BOOK, p.notional_ccy), -amount),
                            Leg(AccountRef.user(broker_uid, FUNDING, p.notional_ccy), amount)]
            key = f"dcd:settle:{product_id}" if first else f"dcd:settle:{product_id}:{lo}"
            posted = self.ledger.post_credits(conn, type="dcd_settle", ref=product_id, idempotency_key=key,
                                              at=sett_time, credits=credits, counter_legs=counter)
            n = conn.execute(dcd_orders.update().where(*pending, *part.bounds(c.uid))
                             .values(state="settled", settled_at=sett_time, updated_at=sett_time,
                                     settle_entry_id=posted.entry_id)).rowcount
            conn.exec_driver_sql(f"DROP TABLE {CREDITS_TMP}")
        return int(n)
