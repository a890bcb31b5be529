"""The ND rebate run: at 00:00 HKT of day D+1, every ND broker's sub-accounts' fills of HKT day D
become one record per sub-account, and each broker is paid the day's total in USDT in one journal
entry (``nd_rebate:<broker uid>:<D>``), exactly once (the job runner's claim on the period).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.tables import (
    account_fee_levels,
    brokers,
    fills,
    nd_rebate_caps,
    nd_rebate_ratios,
    nd_rebate_records,
    nd_vip_fee_mode,
)
from stakehouse.jobs.schedule import Period
from stakehouse.ledger.audit import money_sum
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, AccountRef, Leg
from stakehouse.money import ZERO, to_plain
from stakehouse.rebates import rules
from stakehouse.rebates.rules import FillFees


def ratio_of(conn: Connection, level: int) -> Decimal:
    found = conn.execute(select(nd_rebate_ratios.c.ratio).where(nd_rebate_ratios.c.level == level)).scalar_one_or_none()
    return found if found is not None else rules.DEFAULT_RATIO


def month_income(conn: Connection, uid: str, day: dt.date) -> Decimal:
    """The sub-account's rebates recorded so far in ``day``'s HKT month."""
    return month_to_date(conn, uid, day, before=day)


def month_to_date(conn: Connection, uid: str, day: dt.date, *, before: dt.date | None = None) -> Decimal:
    """The sub-account's rebates recorded for the days of ``day``'s HKT month (before ``before``)."""
    c = nd_rebate_records.c
    q = select(money_sum(conn, c.income)).where(c.uid == uid, c.day >= rules.month_start(day).strftime("%Y%m%d"))
    if before is not None:
        q = q.where(c.day < before.strftime("%Y%m%d"))
    found: Decimal | None = conn.execute(q).scalar_one()
    return found if found is not None else ZERO


def cap_of(conn: Connection, uid: str) -> Decimal | None:
    """The monthly cap of the sub-account's fee level (VIP4 and above, when the operator set one)."""
    level = conn.execute(select(account_fee_levels.c.level).where(account_fee_levels.c.uid == uid)
                         ).scalar_one_or_none()
    if level not in rules.CAPPED_LEVELS:
        return None
    cap: Decimal | None = conn.execute(select(nd_rebate_caps.c.monthly_cap)
                                       .where(nd_rebate_caps.c.fee_level == level)).scalar_one_or_none()
    return cap


def nd_rebate_run(conn: Connection, period: Period, *, ledger: Ledger) -> str:
    """Records and payouts of HKT day ``period`` (its fills: ``period.start <= ts < period.end``)."""
    day = dt.date.fromisoformat(period.key)
    by_broker: dict[str, list[FillFees]] = {}
    for f in conn.execute(select(fills.c.broker_uid, fills.c.uid, fills.c.net_fee_usdt, fills.c.markup_usdt)
                          .where(fills.c.broker_uid.is_not(None), fills.c.ts >= period.start,
                                 fills.c.ts < period.end)):
        by_broker.setdefault(f.broker_uid, []).append(FillFees(f.uid, f.net_fee_usdt, f.markup_usdt))
    vip_mode = set(conn.execute(select(nd_vip_fee_mode.c.uid)).scalars())
    rebate_date = (day + dt.timedelta(days=1)).strftime("%Y%m%d")
    done = []
    for broker_uid in sorted(by_broker):
        level = conn.execute(select(brokers.c.level).where(brokers.c.uid == broker_uid)).scalar_one()
        total = ZERO
        ids = []
        for r in rules.day_records(by_broker[broker_uid], ratio_of(conn, level)):
            income = ZERO if r.uid in vip_mode else max(r.income, ZERO)
            income = rules.capped(income, month_income(conn, r.uid, day), cap_of(conn, r.uid))
            total += income
            ids.append(conn.execute(nd_rebate_records.insert().values(
                broker_uid=broker_uid, uid=r.uid, day=day.strftime("%Y%m%d"), rebate_date=rebate_date,
                rebate_time=period.end, income=income, net_fee=r.net_fee, markup_fee=r.markup_fee, entry_id=None)
                .returning(nd_rebate_records.c.id)).scalar_one())
        if total > 0:
            posted = ledger.post(conn, type="nd_rebate", ref=f"{broker_uid}:{period.key}",
                                 idempotency_key=f"nd_rebate:{broker_uid}:{period.key}", at=period.end,
                                 uid=broker_uid, legs=[Leg(AccountRef.system("nd_rebates", "USDT"), -total),
                                                       Leg(AccountRef.user(broker_uid, FUNDING, "USDT"), total)])
            conn.execute(nd_rebate_records.update().where(nd_rebate_records.c.id.in_(ids))
                         .values(entry_id=posted.entry_id))
        done.append(f"{broker_uid} {len(ids)} sub-accounts {to_plain(total)} USDT")
    return "; ".join(done) or "no fills"
