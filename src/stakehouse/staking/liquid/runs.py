"""The two daily runs of every liquid product, as exactly-once jobs (rules 4.3, 5.3, 5.4).

At 00:00 of T-day D+1 (business time zone), for each product and in this order:

1. **reward run for D**: every holder's eligible balance for D (the minimum free token balance
   over D, from the time-stamped journal), ``gross``/``net``/``fee`` rounded down, written to
   ``staking_rewards`` and paid as **one** balanced journal entry: ``net`` token minted into each
   holder's funding account, ``gross`` of the staked asset from ``s:validator_rewards`` into
   ``s:staked_principal`` (``net``) and ``s:fees`` (``fee``).
2. **settlement run for D**: schedule D's cap from the head of the FIFO queue, then deliver the
   scheduled parts that are due (with ``unbonding_days`` 0, what was just scheduled).

The reward run is **chunked** (``jobs/chunks.py``): planned once behind the ledger barrier (the
day's rate is fixed then, and the holders split into uid ranges), then each chunk computes and pays
its holders in a transaction of its own, **one balanced journal entry per chunk** (idempotency key
``staking:reward:{product}:{day}:{chunk}``), on as many connections as the job runner has, any
worker joining in; ``staking_reward_runs`` is written when the last chunk is done. A crash loses
the chunks in flight only, which are done again from scratch; none is paid twice (rules 5.4).
The settlement run is chunked too: its plan is the FIFO pass over the queue (one pass, in request
order, behind the barrier: the cap is shared by the whole queue), its chunks deliver the parts due
to the holders of a uid range, a journal entry per part as before.

Each chunk is set-based. On PostgreSQL it is a few SQL statements whatever the number of
holders; on SQLite (money is text there, so arithmetic must not happen in SQL) one pass in uid
order streams the holders through the pure rules and writes pages of results. Memory stays flat
on both (``bench/reward_run.py`` measures it, with the time, for up to a million holders).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from stakehouse.db.dialect import driver_params, driver_sql, money_nonzero
from stakehouse.db.tables import (
    journal_entries,
    ledger_accounts,
    postings,
    redemption_parts,
    staking_orders,
    staking_reward_runs,
    staking_rewards,
)
from stakehouse.db.types import money_from_db, utc_from_db
from stakehouse.jobs.chunks import Chunk, Chunked, Params, Plan, Totals, uid_chunks
from stakehouse.jobs.schedule import Daily, Period
from stakehouse.ledger.audit import money_sum
from stakehouse.ledger.journal import Credits, Ledger
from stakehouse.ledger.rules import FUNDING, LOCKED, TRADING, AccountRef, Leg
from stakehouse.money import ZERO, to_plain
from stakehouse.staking.liquid import products
from stakehouse.staking.liquid.service import issuance, staked
from stakehouse.staking.rules import (
    Move,
    ProductConfig,
    days_until_scheduled,
    eligible_from_current,
    reward,
    schedule_queue,
)

#: Rows per page written by the SQLite reward pass.
REWARD_PAGE = 20_000

#: The free liquid tokens of every holder: funding and trading, available bucket only.
_HOLDER_FILTER = "a.ccy = %(token)s AND a.uid IS NOT NULL AND a.acct_type IN (%(funding)s, %(trading)s)"
#: The holders, for planning the chunks.
_HOLDER_UIDS = f"SELECT DISTINCT a.uid FROM {ledger_accounts.name} a WHERE {_HOLDER_FILTER}"
#: Totals every run reports.
REWARD_TOTALS = ("holders", "eligible", "gross", "net", "fee", "entries")

#: PostgreSQL: the eligible balance, gross, net and fee of every holder of a chunk, in one
#: statement. ``mv`` is each holder's net move per journal entry since the day started, looked up
#: account by account in (account_id, created_at) (``LATERAL ... OFFSET 0``, and no condition on
#: ``p.ccy``, which an account's postings share, to keep the planner off (ccy, created_at): a chunk
#: must not scan every posting of the day, which the planner chose with the day's postings not yet
#: in its statistics, at 1 000 000 holders 1.1 s of each chunk's 1.5 s); one sort of it serves both the
#: total since the start and the running balance within the day (moves after the day come last in
#: that order, so the running sums within the day are those of the day alone). ``OFFSET 0`` keeps
#: each level a level: otherwise the planner copies the eligible and gross expressions into every
#: filter and column above it, and numeric arithmetic repeated for every holder was most of the
#: statement's time. Holders come out in uid order (merge join), the order of both indexes the
#: insert writes.
_PG_REWARDS = f"""
INSERT INTO {staking_rewards.name} (product, day, uid, eligible, gross, net, fee)
SELECT %(product)s, %(day)s, uid, eligible, gross, net, gross - net FROM (
    SELECT uid, eligible, gross, trunc(gross * (1 - %(fee_rate)s), %(precision)s) AS net FROM (
        SELECT uid, eligible, div(eligible * %(rate)s * %(scale)s, 365) * %(unit)s AS gross FROM (
            SELECT cur.uid, cur.bal - coalesce(mv.since, 0) + least(coalesce(mv.low, 0), 0) AS eligible
            FROM (
                SELECT a.uid, sum(a.available) AS bal FROM {ledger_accounts.name} a
                WHERE {_HOLDER_FILTER} AND {{chunk}}
                GROUP BY a.uid
            ) cur LEFT JOIN (
                SELECT uid, sum(delta) AS since, min(running) FILTER (WHERE at < %(end)s) AS low FROM (
                    SELECT uid, at, delta,
                           sum(delta) OVER (PARTITION BY uid ORDER BY at, entry_id ROWS UNBOUNDED PRECEDING)
                               AS running
                    FROM (
                        SELECT a.uid, p.entry_id, min(p.created_at) AS at, sum(p.amount) AS delta
                        FROM {ledger_accounts.name} a CROSS JOIN LATERAL (
                            SELECT p.entry_id, p.created_at, p.amount FROM {postings.name} p
                            WHERE p.account_id = a.id AND p.created_at >= %(start)s AND p.bucket = 'available'
                            OFFSET 0
                        ) p
                        WHERE {_HOLDER_FILTER} AND {{chunk}}
                        GROUP BY a.uid, p.entry_id
                    ) mv
                ) r GROUP BY uid
            ) mv ON mv.uid = cur.uid
            OFFSET 0
        ) e WHERE eligible > 0 OFFSET 0
    ) g WHERE gross > 0 OFFSET 0
) n
"""

#: SQLite: every holder's accounts in uid order, each with the postings since the day started
#: (a LEFT JOIN: one row per posting, or one with NULLs). It walks the (ccy, uid) index and looks
#: each account's postings up in (account_id, created_at): no sort (the index's entries end with
#: the row id, so ``uid, id`` is its order), nothing held but a holder; an account's rows are
#: consecutive, which ``_holdings`` relies on.
#: ``+p.ccy`` keeps SQLite (which has no statistics here) off the (ccy, created_at) index, which
#: would scan all of the day's postings once per account.
_SQLITE_HOLDINGS = f"""
SELECT a.uid, a.id, a.available, p.created_at, p.entry_id, p.amount
FROM {ledger_accounts.name} a LEFT JOIN {postings.name} p
     ON p.account_id = a.id AND p.created_at >= %(start)s AND +p.ccy = %(token)s AND p.bucket = 'available'
WHERE {_HOLDER_FILTER} AND {{chunk}}
ORDER BY a.uid, a.id
"""


def _holdings(conn: Connection, params: dict[str, Any]) -> Iterator[tuple[str, Decimal, list[Move]]]:
    """(uid, free tokens now, moves since the day started) per holder, streamed in uid order."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.execute(driver_sql(conn, _SQLITE_HOLDINGS.format(chunk=params["chunk_where"])),
                         driver_params(conn, params))
    cursor.arraysize = 1000
    uid: str | None = None
    account: int | None = None
    current = ZERO
    moves: dict[int, list[Any]] = {}
    stamp, moment = None, None  # the last time parsed: a day's reward postings all share one
    for row_uid, account_id, available, at, entry_id, amount in cursor:
        if row_uid != uid:
            if uid is not None:
                yield uid, current, [Move(m[0], e, m[1]) for e, m in moves.items()] if moves else []
            uid, current, moves, account = row_uid, ZERO, {}, None
        if account_id != account:
            account = account_id
            current += money_from_db(available)
        if at is None:
            continue
        value = money_from_db(amount)
        if entry_id in moves:
            moves[entry_id][1] += value
        else:
            if at != stamp:
                stamp, moment = at, utc_from_db(at)
            moves[entry_id] = [moment, value]
    if uid is not None:
        yield uid, current, [Move(m[0], e, m[1]) for e, m in moves.items()] if moves else []


def _stream_rewards(conn: Connection, cfg: ProductConfig, period: Period, rate: Decimal, params: dict[str, Any]
                    ) -> dict[str, Any]:
    """SQLite: compute every holder's reward with the pure rules, written a page at a time.
    Returns the day's totals (exact sums of what was written)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    sql = (f"INSERT INTO {staking_rewards.name} (product, day, uid, eligible, gross, net, fee) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
    product, day, end, fee_rate, precision = cfg.product, period.key, period.end, cfg.service_fee_rate, cfg.precision
    holders = 0
    eligible_sum = gross_sum = net_sum = fee_sum = ZERO
    page: list[tuple[str, ...]] = []
    for uid, current, moves in _holdings(conn, params):
        # eligible_from_current, without the list work when nothing moved since the day started
        amount = eligible_from_current(current, moves, end) if moves else max(current, ZERO)
        paid = reward(amount, rate, fee_rate, precision)
        if paid.gross > 0:
            holders += 1
            eligible_sum += amount
            gross_sum += paid.gross
            net_sum += paid.net
            fee_sum += paid.fee
            page.append((product, day, uid, to_plain(amount), to_plain(paid.gross), to_plain(paid.net),
                         to_plain(paid.fee)))
            if len(page) >= REWARD_PAGE:
                raw.executemany(sql, page)
                page = []
    if page:
        raw.executemany(sql, page)
    return {"holders": holders, **{k: v.normalize() if v else ZERO for k, v in (
        ("eligible", eligible_sum), ("gross", gross_sum), ("net", net_sum), ("fee", fee_sum))}}


def reward_run(*, ledger: Ledger, product: str) -> Chunked:
    """The reward run of ``product`` for a T-day (rules 5), in chunks of holders."""

    def plan(conn: Connection, period: Period, size: int) -> Plan:
        # The product's row is locked until the plan commits: no rate is published meanwhile, and
        # ``publish_rate`` refuses a day whose run is planned.
        cfg = products.load_product(conn, product, lock=True)
        rate = products.rate_on(conn, product, dt.date.fromisoformat(period.key))
        chunks = []
        if rate is not None and rate > 0:
            chunks = uid_chunks(conn, _HOLDER_UIDS, {"token": cfg.token_ccy, "funding": FUNDING,
                                                     "trading": TRADING}, size)
        return Plan({"rate": "" if rate is None else to_plain(rate), "chunks": str(len(chunks))}, chunks)

    def chunk(conn: Connection, period: Period, params: Params, part: Chunk) -> Totals:
        cfg = products.load_product(conn, product)
        rate = Decimal(params["rate"])
        sql_params = {"token": cfg.token_ccy, "funding": FUNDING, "trading": TRADING, "start": period.start,
                      "end": period.end, "rate": rate, "fee_rate": cfg.service_fee_rate,
                      # div() truncates exactly; multiplying by 10^-p (not dividing by 10^p, which
                      # PostgreSQL rounds to ~16 digits) keeps the round-down exact at any precision.
                      "scale": Decimal(10) ** cfg.precision, "unit": Decimal(10) ** -cfg.precision,
                      "precision": cfg.precision, "product": product, "day": period.key,
                      "chunk_where": part.where("a.uid"), **part.params()}
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_REWARDS.format(chunk=part.where("a.uid")), sql_params)
            totals = _totals(conn, product, period.key, part)
        else:
            totals = _stream_rewards(conn, cfg, period, rate, sql_params)
        posted = _post_rewards(conn, ledger, cfg, period, totals, part)
        return {**{k: Decimal(v) for k, v in totals.items()}, "entries": Decimal(posted is not None)}

    def finish(conn: Connection, period: Period, params: Params, totals: Totals) -> str:
        cfg = products.load_product(conn, product)
        rate = Decimal(params["rate"]) if params["rate"] else None
        entry_id = None
        if params["chunks"] == "1" and totals["entries"] == 1:  # one chunk, one entry: the run's
            entry_id = conn.execute(select(journal_entries.c.id).where(
                journal_entries.c.idempotency_key == _entry_key(product, period, 0))).scalar_one()
        conn.execute(staking_reward_runs.insert().values(
            product=product, day=period.key, rate=rate, entry_id=entry_id, ran_at=period.end,
            holders=int(totals["holders"]), **{k: totals[k].normalize() if totals[k] else ZERO
                                               for k in ("eligible", "gross", "net", "fee")}))
        if rate is None:
            return "no rate published"
        return (f"rate {to_plain(rate)}: {totals['holders']} holders, net {to_plain(totals['net'])} "
                f"{cfg.token_ccy}, fee {to_plain(totals['fee'])} {cfg.staked_ccy}, "
                f"{params['chunks']} chunk{'s' if params['chunks'] != '1' else ''}")

    return Chunked(plan, chunk, finish, REWARD_TOTALS)


def _entry_key(product: str, period: Period, chunk: int) -> str:
    return f"staking:reward:{product}:{period.key}:{chunk}"


def _totals(conn: Connection, product: str, day: str, part: Chunk) -> dict[str, Any]:
    r = staking_rewards.c
    query = select(
        func.count().label("holders"), money_sum(r.eligible).label("eligible"),
        money_sum(r.gross).label("gross"), money_sum(r.net).label("net"),
        money_sum(r.fee).label("fee"),
    ).where(r.product == product, r.day == day, *part.bounds(r.uid))
    row = conn.execute(query).one()._mapping
    return {"holders": int(row["holders"]),
            **{k: Decimal(row[k]) if row[k] is not None else ZERO for k in ("eligible", "gross", "net", "fee")}}


def _post_rewards(conn: Connection, ledger: Ledger, cfg: ProductConfig, period: Period, totals: dict[str, Any],
                  part: Chunk) -> int | None:
    """One chunk's entry: ``net`` to each of its holders, the counter legs last (they lock the few
    system accounts that every chunk shares: held from there to the commit only)."""
    if totals["gross"] == 0:
        return None
    legs = [Leg(AccountRef.system("validator_rewards", cfg.staked_ccy), -totals["gross"])]
    if totals["net"] > 0:
        legs += [Leg(staked(cfg), totals["net"]), Leg(issuance(cfg), -totals["net"])]
    if totals["fee"] > 0:
        legs.append(Leg(AccountRef.system("fees", cfg.staked_ccy), totals["fee"]))
    positive = money_nonzero(conn, "r.net")
    credits = Credits(
        select=f"SELECT r.uid AS uid, r.net AS amount FROM {staking_rewards.name} r "
               f"WHERE r.product = %(r_product)s AND r.day = %(r_day)s AND {positive} AND {part.where('r.uid')}",
        params={"r_product": cfg.product, "r_day": period.key, **part.params()}, acct_type=FUNDING,
        ccy=cfg.token_ccy)
    posted = ledger.post_credits(conn, type="staking_reward", ref=f"{cfg.product}:{period.key}",
                                 idempotency_key=_entry_key(cfg.product, period, part.number), at=period.end,
                                 credits=credits, counter_legs=legs,
                                 memo=f"{cfg.product} rewards for {period.key}, chunk {part.number}")
    return posted.entry_id


# -- settlement --------------------------------------------------------------------------


#: The uids with a redemption part of the product due by a day and not delivered.
_DUE_UIDS = (f"SELECT DISTINCT o.uid FROM {redemption_parts.name} p "
             f"JOIN {staking_orders.name} o ON o.ord_id = p.ord_id "
             "WHERE p.product = %(product)s AND p.deliver_day <= %(day)s AND p.delivered_at IS NULL")
#: Totals every settlement run reports.
SETTLEMENT_TOTALS = ("parts", "delivered")


def settlement_run(*, ledger: Ledger, calendar: Daily, product: str) -> Chunked:
    """End of T-day D for ``product``: schedule D's cap from the FIFO queue (the plan: one pass over
    the queue, behind the barrier), then deliver the parts due, in chunks of their holders' uids."""

    def plan(conn: Connection, period: Period, size: int) -> Plan:
        cfg = products.load_product(conn, product)
        day = dt.date.fromisoformat(period.key)
        scheduled = _schedule(conn, cfg, calendar, day, period)
        chunks = uid_chunks(conn, _DUE_UIDS, {"product": product, "day": period.key}, size)
        return Plan({"scheduled": to_plain(scheduled), "chunks": str(len(chunks))}, chunks)

    def chunk(conn: Connection, period: Period, params: Params, part: Chunk) -> Totals:
        cfg = products.load_product(conn, product)
        parts, delivered = _deliver(conn, ledger, cfg, dt.date.fromisoformat(period.key), period, part)
        return {"parts": Decimal(parts), "delivered": delivered}

    def finish(conn: Connection, period: Period, params: Params, totals: Totals) -> str:
        cfg = products.load_product(conn, product)
        return (f"scheduled {params['scheduled']}, delivered {to_plain(totals['delivered'])} {cfg.staked_ccy}"
                + (f", {params['chunks']} chunks" if int(params["chunks"]) > 1 else ""))

    return Chunked(plan, chunk, finish, SETTLEMENT_TOTALS)


def _schedule(conn: Connection, cfg: ProductConfig, calendar: Daily, day: dt.date, period: Period) -> Decimal:
    c = staking_orders.c
    queue = conn.execute(select(c.ord_id, c.amt, c.scheduled_amt).where(
        c.product == cfg.product, c.type == "redeem", c.status == "pending", c.request_time < period.end,
    ).order_by(c.request_time, c.ord_id)).all()
    unscheduled = [(r.ord_id, r.amt - r.scheduled_amt) for r in queue]
    deliver_day = day + dt.timedelta(days=cfg.unbonding_days)
    total = ZERO
    amounts = dict(unscheduled)
    done = {r.ord_id: r.scheduled_amt for r in queue}
    for part in schedule_queue(unscheduled, cfg.daily_redemption_cap):
        conn.execute(redemption_parts.insert().values(
            ord_id=part.order_id, product=cfg.product, scheduled_day=day.isoformat(),
            deliver_day=deliver_day.isoformat(), amount=part.amount))
        values: dict[str, Any] = {"scheduled_amt": done[part.order_id] + part.amount}
        rest = amounts[part.order_id] - part.amount
        if rest == 0:  # fully scheduled: its last part's delivery is known
            values["est_completed_time"] = calendar.period_of_day(deliver_day).end
        elif cfg.daily_redemption_cap:  # the head, partly scheduled: the rest goes from tomorrow
            last = day + dt.timedelta(days=1 + days_until_scheduled(ZERO, rest, cfg.daily_redemption_cap)
                                      + cfg.unbonding_days)
            values["est_completed_time"] = calendar.period_of_day(last).end
        conn.execute(staking_orders.update().where(c.ord_id == part.order_id).values(**values))
        total += part.amount
    return total


def _deliver(conn: Connection, ledger: Ledger, cfg: ProductConfig, day: dt.date, period: Period, part: Chunk
             ) -> tuple[int, Decimal]:
    """Burn the locked tokens of every due part of the chunk's holders and pay out the staked
    asset; (parts delivered, total)."""
    p, o = redemption_parts.c, staking_orders.c
    due = conn.execute(select(redemption_parts, o.uid)
                       .join(staking_orders, o.ord_id == p.ord_id)
                       .where(p.product == cfg.product, p.deliver_day <= day.isoformat(), p.delivered_at.is_(None),
                              *part.bounds(o.uid))
                       .order_by(p.id)).all()
    total = ZERO
    for due_part in due:
        token = AccountRef.user(due_part.uid, FUNDING, cfg.token_ccy)
        posted = ledger.post(
            conn, type="staking_redeem_delivery", ref=str(due_part.ord_id), at=period.end, uid=due_part.uid,
            idempotency_key=f"staking:deliver:{due_part.id}", legs=[
                Leg(token, -due_part.amount, LOCKED), Leg(issuance(cfg), due_part.amount),
                Leg(staked(cfg), -due_part.amount),
                Leg(AccountRef.user(due_part.uid, FUNDING, cfg.staked_ccy), due_part.amount)])
        conn.execute(redemption_parts.update().where(p.id == due_part.id).values(delivered_at=period.end,
                                                                                entry_id=posted.entry_id))
        order = conn.execute(select(o.redeeming_amt).where(o.ord_id == due_part.ord_id)).scalar_one()
        left = order - due_part.amount
        values: dict[str, Any] = {"redeeming_amt": left}
        if left == 0:
            values.update(status="success", completed_time=period.end)
        conn.execute(staking_orders.update().where(o.ord_id == due_part.ord_id).values(**values))
        total += due_part.amount
    return len(due), total
