"""The market's minute step, as event-source work: for every instrument with resting orders, each
finished minute gets its index price (the sandbox walks it, ``prices.py``), then every resting
order that minute crosses is filled at its own price, as maker, in time order (minute, then order
id). Instruments nobody has an order on are not walked here; their prices are computed when read.

Exactly once: a step claims its span by moving ``market_state.stepped_until`` from the value it
read (a conditional update), and each fill's journal entry has the key ``order:fill:<ordId>``.
A step works through every minute up to the horizon the job runner gives it (the next job or
other source item), so a month's advance is a few dozen transactions, not 43 200.
"""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, select

from stakehouse.accounts.service import User
from stakehouse.clock import from_ms, to_ms
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import contract_credits, market_state, orders
from stakehouse.trading import rules
from stakehouse.trading.prices import MINUTE_MS, Minute, PriceService, finished_minutes, minute_of
from stakehouse.trading.rules import InstrumentRules
from stakehouse.trading.service import TradingService, instrument_rules, nd_broker_of

#: At most this much market time per transaction (bounds its size and the rows it holds).
MAX_STEP_MS = 86_400_000


def start_market(conn: Connection, now: dt.datetime) -> None:
    """The market steps from the minute the installation first starts."""
    conn.execute(dialect_insert(conn)(market_state).values(id=1, stepped_until=from_ms(minute_of(now)))
                 .on_conflict_do_nothing())


def _first_cross(side: str, px: Decimal, minutes: list[Minute], starts: list[int], extremes: list[Decimal],
                 created_ms: int) -> int | None:
    """Index of the first minute that crosses ``px`` after the order was placed: a minute the order
    saw whole counts with its low/high, the minute it was placed in with its close only, also when
    it was placed at the minute's very start: the minute's candle opens at the previous close and
    may hold prices pinned at that same moment before the order, which it never saw.
    ``extremes`` are the running lows (buys) or highs (sells) from the first minute."""
    whole = bisect.bisect_right(starts, created_ms)  # the first minute that began after placing
    if whole > 0 and starts[whole - 1] + MINUTE_MS > created_ms:
        close = minutes[whole - 1].close
        if rules.crossed(side, px, close, close):
            return whole - 1
    if whole == 0:  # placed before the span (the usual case): bisect the running extremes
        if not extremes or not rules.crossed(side, px, extremes[-1], extremes[-1]):
            return None
        return bisect.bisect_left(range(len(extremes)), True,
                                  key=lambda k: rules.crossed(side, px, extremes[k], extremes[k]))
    for i in range(whole, len(minutes)):
        if rules.crossed(side, px, minutes[i].low, minutes[i].high):
            return i
    return None


#: What the event sources read on every poll of the job runner (built once: "Prebuilt statements" in
#: docs/architecture.md): the minute the market has stepped to; the first credits to expire.
_STEPPED_UNTIL = select(market_state.c.stepped_until).where(market_state.c.id == 1)
_FIRST_ACTIVATE_EXP = (select(contract_credits.c.activate_exp_at).where(contract_credits.c.state == "unactivated")
                       .order_by(contract_credits.c.activate_exp_at).limit(1))
_FIRST_USE_EXP = (select(contract_credits.c.use_exp_at).where(contract_credits.c.state == "activated")
                  .order_by(contract_credits.c.use_exp_at).limit(1))


class MarketSource:
    """Event source ``market``: the next minute to finish is due at its end."""

    name = "market"
    #: The job runner may hand this source everything up to its horizon at once.
    batches = True

    def __init__(self, db: Database, trading: TradingService, prices: PriceService) -> None:
        self.db = db
        self.trading = trading
        self.prices = prices

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            until = conn.execute(_STEPPED_UNTIL).scalar_one_or_none()
        return None if until is None else until + dt.timedelta(milliseconds=MINUTE_MS)

    def run_due(self, until: dt.datetime) -> int:
        """Finish every minute that ended by ``until`` (at most a day of them); minutes finished."""
        with self.db.write() as conn:
            start_at = conn.execute(select(market_state.c.stepped_until).where(market_state.c.id == 1)).scalar_one()
            start = to_ms(start_at)
            end = min(to_ms(until) - to_ms(until) % MINUTE_MS, start + MAX_STEP_MS)
            if end <= start:
                return 0
            claimed = conn.execute(market_state.update().where(market_state.c.id == 1,
                                                               market_state.c.stepped_until == start_at)
                                   .values(stepped_until=from_ms(end))).rowcount
            if not claimed:
                return 0
            resting = conn.execute(select(orders.c.inst_id).where(orders.c.state == "live").distinct()).scalars()
            minutes = {}
            for inst_id in sorted(resting):
                self.prices.price_until(conn, inst_id, from_ms(end))
                minutes[inst_id] = finished_minutes(conn, inst_id, start, end)
            self._match(conn, minutes)
        return (end - start) // MINUTE_MS

    def _match(self, conn: Connection, minutes: dict[str, list[Minute]]) -> int:
        due: list[tuple[int, int, Row[Any], Minute]] = []
        by_inst: dict[str, list[Row[Any]]] = {}
        for row in conn.execute(select(orders).where(orders.c.state == "live").order_by(orders.c.ord_id)):
            by_inst.setdefault(row.inst_id, []).append(row)
        for inst_id, rows in by_inst.items():
            mins = minutes.get(inst_id, [])
            if not mins:
                continue
            starts = [m.ts for m in mins]
            lows, highs = [], []
            low, high = mins[0].low, mins[0].high
            for m in mins:
                low, high = min(low, m.low), max(high, m.high)
                lows.append(low)
                highs.append(high)
            for row in rows:
                if row.px is None:
                    continue
                i = _first_cross(row.side, row.px, mins, starts, lows if row.side == "buy" else highs,
                                 to_ms(row.created_at))
                if i is not None:
                    due.append((mins[i].ts, row.ord_id, row, mins[i]))
        due.sort(key=lambda d: (d[0], d[1]))
        users: dict[str, tuple[User, str | None]] = {}
        insts: dict[str, InstrumentRules] = {}
        filled = 0
        for ts, _, row, _minute in due:
            if row.uid not in users:
                found = self.trading.accounts.get_in(conn, row.uid)
                users[row.uid] = (found, nd_broker_of(conn, found))
            user, broker_uid = users[row.uid]
            if row.inst_id not in insts:
                insts[row.inst_id] = instrument_rules(conn, row.inst_id, new_orders=False)
            inst = insts[row.inst_id]
            at = from_ms(ts + MINUTE_MS)
            if self.trading.execute_fill(conn, row, user, inst, fill_px=row.px, index=row.px, at=at, exec_type="M",
                                         held=row.locked, budget=row.locked, broker_uid=broker_uid):
                filled += 1
        return filled


class CreditExpiry:
    """Event source ``contract_credits``: unactivated credits past ``activateExpTime`` and active
    ones past ``useExpTime`` become ``expired``."""

    name = "contract_credits"

    def __init__(self, db: Database) -> None:
        self.db = db

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            a = conn.execute(_FIRST_ACTIVATE_EXP).scalar_one_or_none()
            u = conn.execute(_FIRST_USE_EXP).scalar_one_or_none()
        found = [t for t in (a, u) if t is not None]
        return min(found) if found else None

    def run_due(self, until: dt.datetime) -> int:
        c = contract_credits.c
        with self.db.write() as conn:
            n = conn.execute(contract_credits.update().where(c.state == "unactivated", c.activate_exp_at <= until)
                             .values(state="expired", updated_at=until)).rowcount
            n += conn.execute(contract_credits.update().where(c.state == "activated", c.use_exp_at <= until)
                              .values(state="expired", updated_at=until)).rowcount
        return int(n)
