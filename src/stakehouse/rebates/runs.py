"""The daily rebate run (job ``nd_rebates``): at 00:00 HKT of day D+1, the fills of HKT day D
become rebate records and payouts, exactly once (the job runner's claim on the period).

The run is chunked by **broker** (``jobs/chunks.py``): the plan splits the uids of the day's ND
brokers and of every FD broker into ranges, each chunk records and pays the brokers of its range
in a transaction of its own. A broker's day (its records, its payout) is always in one chunk, so
a detail file or an ``if-rebate`` read sees all of it or none of it.

- **ND** (spec §5): one record per sub-account of an ND broker, and one payout per broker in USDT
  (``nd_rebate:<broker uid>:<D>``). Set-based: one grouped statement computes every
  sub-account's day (each fill's ``ratio * netFee + markupFee`` rounded down in SQL, exactly as
  :func:`rules.fill_rebate`); Python applies the VIP fee-rate mode and the monthly caps to the
  grouped rows and writes the records in batches. Memory follows the sub-accounts, not the fills.
- **FD** (spec §7): fills whose order ``tag`` is an FD broker's code, by a user who is not that
  broker (nor one of its sub-accounts), authenticated the way the broker's type says. One record
  per (broker, type, user), and one payout entry per (broker, type): the broker's share to its
  funding account, each user's share to theirs (``fd_rebate:<broker uid>:<type>:<D>``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal, or_, select

from stakehouse.db.dialect import money_nonzero
from stakehouse.db.tables import (
    account_fee_levels,
    brokers,
    fd_affiliations,
    fd_brokers,
    fd_rebate_records,
    fills,
    nd_rebate_caps,
    nd_rebate_ratios,
    nd_rebate_records,
    nd_vip_fee_mode,
    oauth_clients,
    orders,
    users,
)
from stakehouse.db.types import Money
from stakehouse.jobs.chunks import EVERY, Chunk, Chunked, Params, Plan, Totals, add_totals, uid_chunks
from stakehouse.jobs.schedule import Period
from stakehouse.ledger.audit import money_sum
from stakehouse.ledger.journal import Credits, Ledger
from stakehouse.ledger.rules import FUNDING, AccountRef, Leg
from stakehouse.money import ZERO, to_plain
from stakehouse.rebates import rules

#: Records are written this many at a time.
INSERT_BATCH = 1000


def nd_fill_rebate_sql(conn: Connection, ratio: ColumnElement[Any], net_fee: ColumnElement[Any],
                       markup: ColumnElement[Any]) -> ColumnElement[Decimal]:
    """:func:`rules.fill_rebate` as SQL: ``trunc(ratio * netFee + markupFee, 8)`` (PostgreSQL's
    exact NUMERIC; on SQLite the exact ``decmul``/``decadd``/``dectrunc`` functions over money
    text)."""
    if conn.dialect.name == "sqlite":
        return func.dectrunc(func.decadd(func.decmul(ratio, net_fee), markup), rules.REBATE_SCALE, type_=Money)
    return func.trunc(ratio * net_fee + markup, rules.REBATE_SCALE, type_=Money)


def nd_ratio_column() -> ColumnElement[Decimal]:
    """The broker level's ratio (joined ``nd_rebate_ratios``), else the default."""
    return func.coalesce(nd_rebate_ratios.c.ratio, literal(rules.DEFAULT_RATIO, Money), type_=Money)


def nd_day_select(conn: Connection, start: dt.datetime, end: dt.datetime, part: Chunk = EVERY) -> Any:
    """Per (broker, sub-account) of the fills in ``[start, end)`` (of the brokers whose uids are in
    ``part``): the sum of the fills' rebates before caps (``raw``), of ``netFee`` and
    ``markupFee``, and the ratio used. The benchmark's bare statement is this one."""
    ratio = nd_ratio_column()
    f = fills.c
    return (select(f.broker_uid, f.uid, money_sum(nd_fill_rebate_sql(conn, ratio, f.net_fee_usdt,
                                                                           f.markup_usdt)).label("raw"),
                   money_sum(f.net_fee_usdt).label("net_fee"), money_sum(f.markup_usdt).label("markup"),
                   ratio.label("ratio"))
            .select_from(fills.join(brokers, brokers.c.uid == f.broker_uid)
                         .outerjoin(nd_rebate_ratios, nd_rebate_ratios.c.level == brokers.c.level))
            .where(f.broker_uid.is_not(None), f.ts >= start, f.ts < end, *part.bounds(f.broker_uid))
            .group_by(f.broker_uid, f.uid, ratio).order_by(f.broker_uid, f.uid))


def ratio_of(conn: Connection, level: int) -> Decimal:
    found = conn.execute(select(nd_rebate_ratios.c.ratio).where(nd_rebate_ratios.c.level == level)).scalar_one_or_none()
    return found if found is not None else rules.DEFAULT_RATIO


def month_to_date(conn: Connection, uid: str, day: dt.date, *, before: dt.date | None = None) -> Decimal:
    """The sub-account's ND rebates recorded for the days of ``day``'s HKT month (before ``before``)."""
    c = nd_rebate_records.c
    q = select(money_sum(c.income)).where(c.uid == uid, c.day >= rules.month_start(day).strftime("%Y%m%d"))
    if before is not None:
        q = q.where(c.day < before.strftime("%Y%m%d"))
    found: Decimal | None = conn.execute(q).scalar_one()
    return found if found is not None else ZERO


def fd_month_to_date(conn: Connection, broker_uid: str, uid: str, day: dt.date, *,
                     before: dt.date | None = None) -> Decimal:
    """The user's FD rebates (broker's and user's shares) with this broker in ``day``'s HKT month."""
    c = fd_rebate_records.c
    q = (select(money_sum(c.broker_rebate), money_sum(c.user_rebate))
         .where(c.broker_uid == broker_uid, c.uid == uid, c.day >= rules.month_start(day).strftime("%Y%m%d")))
    if before is not None:
        q = q.where(c.day < before.strftime("%Y%m%d"))
    b, u = conn.execute(q).one()
    return (b if b is not None else ZERO) + (u if u is not None else ZERO)


def level_of(conn: Connection, uid: str) -> str:
    found: str | None = conn.execute(select(account_fee_levels.c.level)
                                     .where(account_fee_levels.c.uid == uid)).scalar_one_or_none()
    return found or "Lv1"


def cap_of(conn: Connection, uid: str) -> Decimal | None:
    """The monthly cap of the user's fee level (VIP4 and above, when the operator set one)."""
    level = level_of(conn, uid)
    if level not in rules.CAPPED_LEVELS:
        return None
    cap: Decimal | None = conn.execute(select(nd_rebate_caps.c.monthly_cap)
                                       .where(nd_rebate_caps.c.fee_level == level)).scalar_one_or_none()
    return cap


def _caps_by_uid(conn: Connection) -> dict[str, Decimal]:
    """Every user at a capped level whose level has a cap (a handful of levels, few such users)."""
    return {r.uid: r.monthly_cap for r in conn.execute(
        select(account_fee_levels.c.uid, nd_rebate_caps.c.monthly_cap)
        .join(nd_rebate_caps, nd_rebate_caps.c.fee_level == account_fee_levels.c.level))}


def _nd_month_sums(conn: Connection, day: dt.date, uids: set[str]) -> dict[str, Decimal]:
    """ND rebates recorded this HKT month before ``day``, for the capped ``uids``."""
    if not uids:
        return {}
    c = nd_rebate_records.c
    return {r.uid: r.total for r in conn.execute(
        select(c.uid, money_sum(c.income).label("total"))
        .where(c.uid.in_(sorted(uids)), c.day >= rules.month_start(day).strftime("%Y%m%d"),
               c.day < day.strftime("%Y%m%d")).group_by(c.uid))}


#: The brokers a day's run may pay: the ND brokers with fills that day, every FD broker.
_BROKER_UIDS = (f"SELECT f.broker_uid AS uid FROM {fills.name} f WHERE f.broker_uid IS NOT NULL "
                f"AND f.ts >= %(start)s AND f.ts < %(end)s UNION SELECT b.uid FROM {fd_brokers.name} b")
#: Totals every run reports.
REBATE_TOTALS = ("nd_brokers", "nd_records", "nd_income", "fd_payouts", "fd_records", "fd_to_brokers",
                 "fd_to_users")


def rebate_run(*, ledger: Ledger) -> Chunked:
    """Job ``nd_rebates``: the ND and FD rebates of HKT day ``period``, in chunks of brokers (a
    broker's day, its records and its payouts, are always in one chunk: one transaction)."""

    def plan(conn: Connection, period: Period, size: int) -> Plan:
        chunks = uid_chunks(conn, _BROKER_UIDS, {"start": period.start, "end": period.end}, size)
        return Plan({"chunks": str(len(chunks))}, chunks)

    def chunk(conn: Connection, period: Period, params: Params, part: Chunk) -> Totals:
        return nd_rebate_run(conn, period, ledger=ledger, part=part) | fd_rebate_run(
            conn, period, ledger=ledger, part=part)

    def finish(conn: Connection, period: Period, params: Params, totals: Totals) -> str:
        return describe(totals) + (f" ({params['chunks']} chunks)" if int(params["chunks"]) > 1 else "")

    return Chunked(plan, chunk, finish, REBATE_TOTALS)


def _count(n: Decimal, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def describe(totals: Totals) -> str:
    """The run's line in ``job_runs``."""
    done = []
    if totals.get("nd_records"):
        done.append(f"ND {_count(totals['nd_brokers'], 'broker')}, {totals['nd_records']} sub-accounts, "
                    f"{to_plain(totals['nd_income'])} USDT")
    if totals.get("fd_records"):
        done.append(f"FD {_count(totals['fd_payouts'], 'payout')}, {totals['fd_records']} users, "
                    f"{to_plain(totals['fd_to_brokers'])}+{to_plain(totals['fd_to_users'])} USDT")
    return "; ".join(done) or "no fills"


def nd_rebate_run(conn: Connection, period: Period, *, ledger: Ledger, part: Chunk = EVERY) -> Totals:
    """ND records and payouts of HKT day ``period`` (its fills: ``period.start <= ts < period.end``)
    for the ND brokers in ``part``: (brokers paid, records, income)."""
    day = dt.date.fromisoformat(period.key)
    key = day.strftime("%Y%m%d")
    rebate_date = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
    rows = conn.execute(nd_day_select(conn, period.start, period.end, part)).all()
    if not rows:
        return {"nd_brokers": ZERO, "nd_records": ZERO, "nd_income": ZERO}
    vip_mode = set(conn.execute(select(nd_vip_fee_mode.c.uid)).scalars())
    caps = _caps_by_uid(conn)
    month = _nd_month_sums(conn, day, {r.uid for r in rows} & set(caps))
    by_broker: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        income = ZERO if r.uid in vip_mode else max(r.raw, ZERO)
        income = rules.capped(income, month.get(r.uid, ZERO), caps.get(r.uid))
        by_broker.setdefault(r.broker_uid, []).append(dict(
            broker_uid=r.broker_uid, uid=r.uid, day=key, rebate_date=rebate_date, rebate_time=period.end,
            income=income, net_fee=r.net_fee, markup_fee=r.markup, ratio=r.ratio))
    paid = ZERO
    for broker_uid, records in by_broker.items():
        total = sum((r["income"] for r in records), ZERO)
        paid += total
        entry_id = None
        if total > 0:
            entry_id = ledger.post(conn, type="nd_rebate", ref=f"{broker_uid}:{period.key}",
                                   idempotency_key=f"nd_rebate:{broker_uid}:{period.key}", at=period.end,
                                   uid=broker_uid, legs=[Leg(AccountRef.system("nd_rebates", "USDT"), -total),
                                                         Leg(AccountRef.user(broker_uid, FUNDING, "USDT"), total)]
                                   ).entry_id
        for i in range(0, len(records), INSERT_BATCH):
            conn.execute(nd_rebate_records.insert(), [r | {"entry_id": entry_id}
                                                      for r in records[i:i + INSERT_BATCH]])
    return {"nd_brokers": Decimal(len(by_broker)), "nd_records": Decimal(len(rows)), "nd_income": paid}


def fd_fills(conn: Connection, start: dt.datetime, end: dt.datetime, broker_uid: str | None = None,
             part: Chunk = EVERY) -> Any:
    """The tagged fills in ``[start, end)`` each FD broker earns from, with the broker type they
    count for, ordered by (broker, type, user, time): the order's ``tag`` is the broker's code,
    the user is neither the broker nor one of its sub-accounts, and the order was authenticated the
    way one of the broker's types is (an API key for ``api``; ``oauth``: a token of one of the
    broker's OAuth clients, whose id the order keeps in ``api_key``)."""
    f, o, b = fills.c, orders.c, fd_brokers.c
    q = (select(b.uid.label("fd_uid"), o.auth.label("broker_type"), f.uid, f.trade_id, f.ord_id, f.inst_id,
                f.amt_usdt, f.fee_usdt, f.net_fee_usdt, f.ts)
         .select_from(fills.join(orders, orders.c.ord_id == f.ord_id).join(fd_brokers, b.code == f.tag)
                      .join(users, users.c.uid == f.uid))
         .where(f.ts >= start, f.ts < end, f.uid != b.uid,
                or_(users.c.master_uid.is_(None), users.c.master_uid != b.uid),
                or_(and_(o.auth == "api", b.api.is_(True)),
                    and_(o.auth == "oauth", b.oauth.is_(True),  # a token of one of the broker's own clients
                         o.api_key.in_(select(oauth_clients.c.client_id)
                                       .where(oauth_clients.c.broker_uid == b.uid))))))
    if broker_uid is not None:
        q = q.where(b.uid == broker_uid)
    return q.where(*part.bounds(b.uid)).order_by(b.uid, o.auth, f.uid, f.ts, f.trade_id)


def fd_rebate_run(conn: Connection, period: Period, *, ledger: Ledger, part: Chunk = EVERY) -> Totals:
    """FD records and payouts of HKT day ``period`` for the FD brokers in ``part``: (payouts,
    records, the brokers' shares, the users' shares)."""
    day = dt.date.fromisoformat(period.key)
    key = day.strftime("%Y%m%d")
    brokers_by_uid = {r.uid: r for r in conn.execute(select(fd_brokers).where(*part.bounds(fd_brokers.c.uid)))}
    totals = {"fd_payouts": ZERO, "fd_records": ZERO, "fd_to_brokers": ZERO, "fd_to_users": ZERO}
    if not brokers_by_uid:
        return totals
    caps = _caps_by_uid(conn)
    pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
    #: what the day's records so far gave each (broker, user): a user's records of both broker types share
    #: one monthly cap (the ``api`` one, first in the fills' order, takes it first)
    given: dict[tuple[str, str], Decimal] = {}
    rows = conn.execute(fd_fills(conn, period.start, period.end, part=part))
    for (broker_uid, broker_type, uid), grouped in itertools.groupby(rows, lambda r: (r.fd_uid, r.broker_type, r.uid)):
        group = list(grouped)
        broker = brokers_by_uid[broker_uid]
        level = level_of(conn, uid)
        raws = [rules.fd_fill_rebate(broker.ratio, g.net_fee_usdt) for g in group]
        cap = caps.get(uid) if level in rules.CAPPED_LEVELS else None
        if broker.expired or level in rules.FD_TOP_LEVELS:
            target = ZERO
        else:
            so_far = fd_month_to_date(conn, broker_uid, uid, day, before=day) + given.get((broker_uid, uid), ZERO)
            target = rules.capped(max(sum(raws, ZERO), ZERO), so_far, cap)
        given[(broker_uid, uid)] = given.get((broker_uid, uid), ZERO) + target
        shares = [rules.fd_split(a, broker.client_ratio) for a in rules.allocate(raws, target)]
        affiliated = conn.execute(select(fd_affiliations.c.uid).where(fd_affiliations.c.broker_uid == broker_uid,
                                                                      fd_affiliations.c.uid == uid)).first()
        pending.setdefault((broker_uid, broker_type), []).append(dict(
            broker_uid=broker_uid, broker_type=broker_type, uid=uid, day=key, rebate_time=period.end, level=level,
            affiliated=affiliated is not None, ratio=broker.ratio, client_ratio=broker.client_ratio,
            net_fee=sum((g.net_fee_usdt for g in group), ZERO), broker_rebate=sum((b for b, _ in shares), ZERO),
            user_rebate=sum((u for _, u in shares), ZERO), entry_id=None))
    for (broker_uid, broker_type), records in sorted(pending.items()):
        for i in range(0, len(records), INSERT_BATCH):
            conn.execute(fd_rebate_records.insert(), records[i:i + INSERT_BATCH])
        to_broker = sum((r["broker_rebate"] for r in records), ZERO)
        to_users = sum((r["user_rebate"] for r in records), ZERO)
        if to_broker + to_users > 0:
            c = fd_rebate_records.c
            credits = Credits(
                select=(f"SELECT uid, user_rebate AS amount FROM {fd_rebate_records.name} WHERE broker_uid = "
                        f"%(fd_broker)s AND broker_type = %(fd_type)s AND day = %(fd_day)s AND "
                        f"{money_nonzero(conn, 'user_rebate')}"),
                params={"fd_broker": broker_uid, "fd_type": broker_type, "fd_day": key}, acct_type=FUNDING,
                ccy="USDT")
            counter = [Leg(AccountRef.system("fd_rebates", "USDT"), -(to_broker + to_users))]
            if to_broker:
                counter.append(Leg(AccountRef.user(broker_uid, FUNDING, "USDT"), to_broker))
            posted = ledger.post_credits(conn, type="fd_rebate", ref=f"{broker_uid}:{broker_type}:{period.key}",
                                         idempotency_key=f"fd_rebate:{broker_uid}:{broker_type}:{period.key}",
                                         at=period.end, credits=credits, counter_legs=counter)
            conn.execute(fd_rebate_records.update().where(c.broker_uid == broker_uid, c.broker_type == broker_type,
                                                          c.day == key).values(entry_id=posted.entry_id))
        add_totals(totals, {"fd_payouts": Decimal(1), "fd_records": Decimal(len(records)),
                            "fd_to_brokers": to_broker, "fd_to_users": to_users})
    return totals
