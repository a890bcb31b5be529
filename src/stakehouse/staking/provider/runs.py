"""The daily runs of provider staking, as exactly-once jobs at the end of each accrual day
(default 20:00 UTC), for every product in order:

1. **interest run**: each staker's eligible balance for the day (the minimum free staking
   balance over it, from the time-stamped journal, as in rules 5.1; but the interest credited at
   the day's very start, the previous day's run, counts as held from that start: it compounds
   the next day, as the advertised ``apyPct`` assumes), interest
   ``round_down(eligible * rate_bps / 10000 / 365, precision)`` written as ``Interest`` events and
   credited into the staking balances as **one** journal entry (``Ledger.post_credits``) from
   ``s:validator_rewards``. Crediting the balance itself is what compounds it daily.
2. **settlement run** (queued products): the FIFO pass over pending unstakes up to the daily cap
   (the liquid products' rule, ``rules.schedule_queue``), then the parts due after
   ``unbonding_days`` paid from the locked staking balance to funding, a ``RedeemPayment`` each.

The interest run is **chunked** (``jobs/chunks.py``): the plan fixes every product's rate and USD
price for the day and splits the stakers (of every product with a rate) into uid ranges; each
chunk, in a transaction of its own, writes its stakers' events and posts **one entry per product
per chunk** (idempotency key ``provider:interest:{provider}:{ccy}:{day}:{chunk}``); the finish
writes each product's ``provider_accrual_runs`` row with the chunks' exact totals. Within a
chunk the holders of a product are streamed in account order and their moves of the day read
once; the work is linear in stakers. The settlement run is chunked too: its plan is every
product's FIFO pass (behind the barrier), its chunks pay the parts due to the stakers of a uid
range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, select, true

from stakehouse.assets.prices import UsdPrices
from stakehouse.db.dialect import money_nonzero
from stakehouse.db.tables import (
    journal_entries,
    ledger_accounts,
    postings,
    provider_accrual_runs,
    provider_events,
    provider_redemption_parts,
)
from stakehouse.jobs.chunks import Chunk, Chunked, Params, Plan, Totals, uid_chunks
from stakehouse.jobs.schedule import Period
from stakehouse.ledger.journal import Credits, Ledger
from stakehouse.ledger.rules import AVAILABLE, FUNDING, LOCKED, AccountRef, Leg, staking_type
from stakehouse.money import ZERO, to_plain
from stakehouse.staking.provider.rules import ProviderProduct, daily_interest
from stakehouse.staking.provider.service import load_products, rate_on, staking_account
from stakehouse.staking.rules import Move, eligible_from_current, schedule_queue

EVENT_PAGE = 5_000


def _holdings(conn: Connection, product: ProviderProduct, start: dt.datetime, part: Chunk
              ) -> Iterator[tuple[str, Decimal, list[Move]]]:
    """(uid, free staking balance now, moves since ``start``) of every staker of ``product`` in the
    chunk ``part``; the interest credited at ``start`` (the previous day's run) counts as held
    before it."""
    a, p, j = ledger_accounts.c, postings.c, journal_entries.c
    acct_type = staking_type(product.provider_no)
    in_chunk = part.bounds(a.uid)
    moves: dict[int, dict[int, list[Any]]] = {}
    query: Select[Any]
    if conn.dialect.name == "postgresql":
        # Account by account (LATERAL ... OFFSET 0), each posting's entry by its key: the day's
        # postings are newer than the planner's statistics, which then walks the (ccy, created_at)
        # index over ALL of them for every chunk (1 000 000 postings read to keep 50 000, 1.3 s a
        # chunk at 1 000 000 stakers; 0.23 s this way: bench/provider_interest.py).
        day = (select(p.entry_id, p.created_at, p.amount)
               .where(p.account_id == a.id, p.created_at >= start, p.bucket == AVAILABLE).offset(0).lateral("m"))
        entry = select(j.type).where(j.id == day.c.entry_id).offset(0).lateral("e")
        query = (select(a.id.label("account_id"), day.c.entry_id, day.c.created_at, day.c.amount)
                 .select_from(ledger_accounts).join(day, true()).join(entry, true())
                 .where(a.acct_type == acct_type, a.ccy == product.ccy, *in_chunk,
                        ~((entry.c.type == INTEREST_ENTRY) & (day.c.created_at == start))))
    else:
        query = (select(p.account_id, p.entry_id, p.created_at, p.amount)
                 .join(ledger_accounts, a.id == p.account_id).join(journal_entries, j.id == p.entry_id)
                 .where(a.acct_type == acct_type, a.ccy == product.ccy, p.created_at >= start, p.bucket == AVAILABLE,
                        *in_chunk, ~((j.type == INTEREST_ENTRY) & (p.created_at == start))))
    for r in conn.execute(query):
        per_entry = moves.setdefault(r.account_id, {})
        if r.entry_id in per_entry:
            per_entry[r.entry_id][1] += r.amount
        else:
            per_entry[r.entry_id] = [r.created_at, r.amount]
    holders = conn.execute(select(a.id, a.uid, a.available).where(
        a.acct_type == acct_type, a.ccy == product.ccy, a.uid.is_not(None), *in_chunk).order_by(a.id))
    for h in holders:
        found = moves.get(h.id, {})
        yield h.uid, h.available, [Move(m[0], entry, m[1]) for entry, m in found.items()]


#: The journal entries of the interest runs.
INTEREST_ENTRY = "provider_interest"


def _key(product: ProviderProduct) -> str:
    return f"{product.provider_no}:{product.ccy}"


def interest_run(*, ledger: Ledger, usd: UsdPrices) -> Chunked:
    """Pay the interest of an accrual day for every product, in chunks of stakers."""

    def plan(conn: Connection, period: Period, size: int) -> Plan:
        day = dt.date.fromisoformat(period.key)
        params: Params = {}
        paying: list[str] = []
        values: dict[str, Any] = {}
        for product in load_products(conn):
            rate = rate_on(conn, product, day)
            params[f"rate:{_key(product)}"] = "" if rate is None else to_plain(rate)
            if rate is not None and rate > 0:
                price = usd.price_at(conn, product.ccy, period.end)
                params[f"price:{_key(product)}"] = "" if price is None else to_plain(price)
                n = len(paying)
                paying.append(f"(a.acct_type = %(type{n})s AND a.ccy = %(ccy{n})s)")
                values.update({f"type{n}": staking_type(product.provider_no), f"ccy{n}": product.ccy})
        chunks = []
        if paying:
            chunks = uid_chunks(conn, f"SELECT DISTINCT a.uid FROM {ledger_accounts.name} a "
                                      f"WHERE a.uid IS NOT NULL AND ({' OR '.join(paying)})", values, size)
        params["chunks"] = str(len(chunks))
        return Plan(params, chunks)

    def chunk(conn: Connection, period: Period, params: Params, part: Chunk) -> Totals:
        totals: Totals = {}
        for product in load_products(conn):
            rate = params.get(f"rate:{_key(product)}", "")
            if not rate or Decimal(rate) <= 0:
                continue  # no rate (or a product created after the plan): nothing to pay
            price = params[f"price:{_key(product)}"]
            holders, total = _accrue(conn, product, period, Decimal(rate), Decimal(price) if price else None, part)
            if total > 0:
                _post(conn, ledger, product, period, total, part)
            totals[f"holders:{_key(product)}"] = Decimal(holders)
            totals[f"total:{_key(product)}"] = total
        return totals

    def finish(conn: Connection, period: Period, params: Params, totals: Totals) -> str:
        done = []
        for product in load_products(conn):
            if f"rate:{_key(product)}" not in params:
                continue  # created after the plan: its first day is the next one
            rate = params[f"rate:{_key(product)}"]
            holders = int(totals.get(f"holders:{_key(product)}", 0))
            total = totals.get(f"total:{_key(product)}", ZERO)
            entry_id = None
            if total > 0 and params["chunks"] == "1":  # one chunk, one entry: the run's
                entry_id = conn.execute(select(journal_entries.c.id).where(
                    journal_entries.c.idempotency_key == _entry_key(product, period, 0))).scalar_one()
            conn.execute(provider_accrual_runs.insert().values(
                provider_no=product.provider_no, ccy=product.ccy, day=period.key,
                rate_bps=Decimal(rate) if rate else None, holders=holders, total=total.normalize() if total else ZERO,
                entry_id=entry_id, ran_at=period.end))
            done.append(f"{product.ccy}@{product.provider_id[:8]} {holders} stakers {to_plain(total)}")
        return "; ".join(done) or "no products"

    return Chunked(plan, chunk, finish)


def _accrue(conn: Connection, product: ProviderProduct, period: Period, rate: Decimal, price: Decimal | None,
            part: Chunk) -> tuple[int, Decimal]:
    """Write the ``Interest`` events of the chunk's stakers (shown with the USD ``price`` at the
    day's end); returns (stakers paid, total)."""
    holders, total = 0, ZERO
    page: list[dict[str, Any]] = []
    for uid, current, moves in _holdings(conn, product, period.start, part):
        eligible = eligible_from_current(current, moves, period.end) if moves else max(current, ZERO)
        interest = daily_interest(eligible, rate, product.precision)
        if interest <= 0:
            continue
        holders += 1
        total += interest
        page.append({"uid": uid, "provider_no": product.provider_no, "ccy": product.ccy, "type": "Interest",
                     "amount": interest, "created_at": period.end, "price": price, "rate_bps": rate,
                     "accrual_day": period.key})
        if len(page) >= EVENT_PAGE:
            conn.execute(provider_events.insert(), page)
            page = []
    if page:
        conn.execute(provider_events.insert(), page)
    return holders, total


def _ref(product: ProviderProduct, period: Period) -> str:
    return f"{product.provider_id}:{product.ccy}:{period.key}"


def _entry_key(product: ProviderProduct, period: Period, chunk: int) -> str:
    return f"provider:interest:{_ref(product, period)}:{chunk}"


def _post(conn: Connection, ledger: Ledger, product: ProviderProduct, period: Period, total: Decimal,
          part: Chunk) -> int:
    positive = money_nonzero(conn, "e.amount")
    credits = Credits(
        select=f"SELECT e.uid AS uid, e.amount AS amount FROM {provider_events.name} e "
               f"WHERE e.type = 'Interest' AND e.provider_no = %(e_no)s AND e.ccy = %(e_ccy)s "
               f"AND e.accrual_day = %(e_day)s AND {positive} AND {part.where('e.uid')}",
        params={"e_no": product.provider_no, "e_ccy": product.ccy, "e_day": period.key, **part.params()},
        acct_type=staking_type(product.provider_no), ccy=product.ccy)
    posted = ledger.post_credits(conn, type=INTEREST_ENTRY, ref=_ref(product, period),
                                 idempotency_key=_entry_key(product, period, part.number), at=period.end,
                                 credits=credits,
                                 counter_legs=[Leg(AccountRef.system("validator_rewards", product.ccy), -total)],
                                 memo=f"{product.ccy} staking interest for {period.key}, chunk {part.number}")
    return posted.entry_id


# -- settlement of queued unstakes --------------------------------------------------------------


#: The uids with a redemption part of any product due by a day and not paid.
_DUE_UIDS = (f"SELECT DISTINCT e.uid FROM {provider_redemption_parts.name} p "
             f"JOIN {provider_events.name} e ON e.id = p.redeem_id "
             "WHERE p.deliver_day <= %(day)s AND p.payment_id IS NULL")


def settlement_run(*, ledger: Ledger) -> Chunked:
    """End of an accrual day: every queued product's FIFO pass up to its cap (the plan, behind the
    barrier), then the parts due paid, in chunks of their stakers' uids."""

    def plan(conn: Connection, period: Period, size: int) -> Plan:
        day = dt.date.fromisoformat(period.key)
        params: Params = {f"scheduled:{_key(product)}": to_plain(_schedule(conn, product, day, period))
                          for product in load_products(conn)}
        chunks = uid_chunks(conn, _DUE_UIDS, {"day": period.key}, size)
        return Plan({**params, "chunks": str(len(chunks))}, chunks)

    def chunk(conn: Connection, period: Period, params: Params, part: Chunk) -> Totals:
        day = dt.date.fromisoformat(period.key)
        return {f"paid:{_key(product)}": _pay(conn, ledger, product, day, period, part)
                for product in load_products(conn)}

    def finish(conn: Connection, period: Period, params: Params, totals: Totals) -> str:
        done = []
        for product in load_products(conn):
            scheduled = Decimal(params.get(f"scheduled:{_key(product)}", "0"))
            paid = totals.get(f"paid:{_key(product)}", ZERO)
            if scheduled or paid:
                done.append(f"{product.ccy}@{product.provider_id[:8]} scheduled {to_plain(scheduled)}, "
                            f"paid {to_plain(paid)}")
        return "; ".join(done) or "nothing queued"

    return Chunked(plan, chunk, finish)


def _schedule(conn: Connection, product: ProviderProduct, day: dt.date, period: Period) -> Decimal:
    e = provider_events.c
    queue = conn.execute(select(e.id, e.amount, e.scheduled).where(
        e.provider_no == product.provider_no, e.ccy == product.ccy, e.type == "Redeem", e.status == "pending",
        e.created_at < period.end).order_by(e.id)).all()
    done = {r.id: r.scheduled for r in queue}
    deliver = (day + dt.timedelta(days=product.unbonding_days)).isoformat()
    total = ZERO
    for part in schedule_queue([(r.id, r.amount - r.scheduled) for r in queue], product.daily_redemption_cap):
        conn.execute(provider_redemption_parts.insert().values(
            redeem_id=part.order_id, provider_no=product.provider_no, ccy=product.ccy, scheduled_day=day.isoformat(),
            deliver_day=deliver, amount=part.amount))
        conn.execute(provider_events.update().where(e.id == part.order_id).values(
            scheduled=done[part.order_id] + part.amount))
        total += part.amount
    return total


def _pay(conn: Connection, ledger: Ledger, product: ProviderProduct, day: dt.date, period: Period, chunk: Chunk
         ) -> Decimal:
    p, e = provider_redemption_parts.c, provider_events.c
    due = conn.execute(select(provider_redemption_parts, e.uid, e.amount.label("requested"), e.paid)
                       .join(provider_events, e.id == p.redeem_id)
                       .where(p.provider_no == product.provider_no, p.ccy == product.ccy,
                              p.deliver_day <= day.isoformat(), p.payment_id.is_(None), *chunk.bounds(e.uid))
                       .order_by(p.id)).all()
    total = ZERO
    paid_so_far: dict[int, Decimal] = {}
    for part in due:
        staking = staking_account(part.uid, product)
        payment = conn.execute(provider_events.insert().values(
            uid=part.uid, provider_no=product.provider_no, ccy=product.ccy, type="RedeemPayment", amount=part.amount,
            created_at=period.end, redeem_id=part.redeem_id).returning(e.id)).scalar_one()
        posted = ledger.post(conn, type="provider_unstake_payment", ref=str(part.redeem_id), at=period.end,
                             uid=part.uid, idempotency_key=f"provider:pay:{part.id}",
                             legs=[Leg(staking, -part.amount, LOCKED),
                                   Leg(AccountRef.user(part.uid, FUNDING, product.ccy), part.amount)])
        conn.execute(provider_events.update().where(e.id == payment).values(entry_id=posted.entry_id))
        conn.execute(provider_redemption_parts.update().where(p.id == part.id).values(payment_id=payment))
        paid = paid_so_far.get(part.redeem_id, part.paid) + part.amount
        paid_so_far[part.redeem_id] = paid
        conn.execute(provider_events.update().where(e.id == part.redeem_id).values(
            paid=paid, status="done" if paid == part.requested else "pending"))
        total += part.amount
    return total

