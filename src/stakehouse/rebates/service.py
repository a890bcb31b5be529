"""ND rebates for brokers and the operator: the daily records (``rebate-daily``), whether a
sub-account earns its broker anything (``if-rebate``), and the operator's ratios, caps and VIP
fee-rate mode."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, func, select

from stakehouse.accounts.service import AccountService, User, user_from_row
from stakehouse.broker.access import broker_caller, broker_sub_account, broker_sub_accounts
from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import (
    api_keys,
    nd_rebate_caps,
    nd_rebate_ratios,
    nd_rebate_records,
    nd_vip_fee_mode,
    users,
)
from stakehouse.errors import InvalidParameter, NotFound, Refused
from stakehouse.ledger.audit import money_sum
from stakehouse.money import ZERO, round_down
from stakehouse.rebates import rules
from stakehouse.rebates.rules import RebateReason
from stakehouse.rebates.runs import cap_of, level_of, month_to_date


@dataclass(frozen=True)
class Record:
    sub_acct: str
    uid: str
    day: str
    rebate_date: str
    rebate_time: dt.datetime
    income: Decimal
    net_fee: Decimal
    markup_fee: Decimal


@dataclass(frozen=True)
class RecordQuery:
    sub_acct: str = ""
    begin: str = ""  # YYYYMMDD, on rebateDate, inclusive
    end: str = ""  # exclusive
    begin_time: dt.datetime | None = None  # on rebateTime, inclusive
    end_time: dt.datetime | None = None  # exclusive
    page: int = 1
    limit: int = 100


@dataclass(frozen=True)
class RecordPage:
    records: list[Record]
    total_income: Decimal
    total_pages: int
    page: int


class RebateService:
    def __init__(self, db: Database, clock: Clock, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.accounts = accounts

    def daily(self, caller_uid: str, query: RecordQuery) -> RecordPage:
        """The broker's records, newest first, a page at a time; the total of every matching record."""
        with self.db.read() as conn:
            broker = broker_caller(conn, caller_uid)
            names = broker_sub_accounts(conn, broker.uid)
            c = nd_rebate_records.c
            match = [c.broker_uid == broker.uid]
            if query.sub_acct:
                match.append(c.uid == broker_sub_account(conn, broker.uid, query.sub_acct).uid)
            if query.begin:
                match.append(c.rebate_date >= query.begin)
            if query.end:
                match.append(c.rebate_date < query.end)
            if query.begin_time is not None:
                match.append(c.rebate_time >= query.begin_time)
            if query.end_time is not None:
                match.append(c.rebate_time < query.end_time)
            count, total = conn.execute(select(func.count(), money_sum(c.income)).where(*match)).one()
            rows = conn.execute(select(nd_rebate_records).where(*match).order_by(c.rebate_time.desc(), c.id.desc())
                                .offset((query.page - 1) * query.limit).limit(query.limit)).all()
        return RecordPage([Record(names.get(r.uid, ""), r.uid, r.day, r.rebate_date, r.rebate_time, r.income,
                                  r.net_fee, r.markup_fee) for r in rows], total if total is not None else ZERO,
                          max(1, -(-count // query.limit)), query.page)

    def _own_sub(self, conn: Connection, broker_uid: str, *, api_key: str, uid: str, sub_acct: str) -> User:
        """The broker's sub-account named by ``api_key`` > ``uid`` > ``sub_acct`` (the seed's priority)."""
        if api_key:
            owner = conn.execute(select(api_keys.c.uid).where(api_keys.c.api_key == api_key,
                                                              api_keys.c.revoked_at.is_(None))).scalar_one_or_none()
            if owner is None:
                raise Refused(RebateReason.API_KEY_MISSING, "API key doesn't exist")
            uid = owner
        if uid:
            row = conn.execute(select(users).where(users.c.uid == uid, users.c.master_uid == broker_uid,
                                                   users.c.deleted_at.is_(None))).first()
            if row is None:
                raise Refused(RebateReason.NOT_OWN_SUB_ACCOUNT, "Sub-account does not exist")
            return user_from_row(row)
        return broker_sub_account(conn, broker_uid, sub_acct)

    def if_rebate(self, caller_uid: str, *, api_key: str = "", uid: str = "", sub_acct: str = ""
                  ) -> tuple[str, Decimal | None]:
        """(type, this month's rebate when the sub-account is at VIP4 or above): ``0`` the broker earns
        from it, ``2`` its monthly cap is reached, ``3`` it is in VIP fee-rate mode."""
        with self.db.read() as conn:
            broker = broker_caller(conn, caller_uid)
            sub = self._own_sub(conn, broker.uid, api_key=api_key, uid=uid, sub_acct=sub_acct)
            today = rules.hkt_day(self.clock.now())
            # this HKT month's records so far (today's fills are recorded by tomorrow's run)
            so_far = month_to_date(conn, sub.uid, today)
            cap = cap_of(conn, sub.uid)
            capped_level = cap is not None or level_of(conn, sub.uid) in rules.CAPPED_LEVELS
            if conn.execute(select(nd_vip_fee_mode.c.uid).where(nd_vip_fee_mode.c.uid == sub.uid)).first():
                return "3", so_far if capped_level else None
            if cap is not None and so_far >= cap:
                return "2", so_far
            return "0", so_far if capped_level else None

    # -- the operator --------------------------------------------------------------------------

    def settings(self) -> tuple[dict[int, Decimal], dict[str, Decimal]]:
        """(ratio per broker level, monthly cap per fee level)."""
        with self.db.query() as conn:
            ratios = {r.level: r.ratio for r in conn.execute(select(nd_rebate_ratios))}
            caps = {r.fee_level: r.monthly_cap for r in conn.execute(select(nd_rebate_caps))}
        return {lv: ratios.get(lv, rules.DEFAULT_RATIO) for lv in range(1, 6)} | ratios, caps

    def set_ratio(self, level: int, ratio: Decimal) -> Decimal:
        if not 1 <= level <= 99:
            raise InvalidParameter("level", "a broker level, 1 to 99")
        if not ratio.is_finite() or not 0 <= ratio <= 1 or round_down(ratio, 8) != ratio:
            raise InvalidParameter("ratio", "a fraction in [0, 1] with at most 8 decimals")
        with self.db.write() as conn:
            conn.execute(dialect_insert(conn)(nd_rebate_ratios).values(
                level=level, ratio=ratio, updated_at=self.clock.now()).on_conflict_do_update(
                index_elements=["level"], set_={"ratio": ratio, "updated_at": self.clock.now()}))
        return ratio

    def set_cap(self, fee_level: str, cap: Decimal | None) -> Decimal | None:
        if fee_level not in rules.CAPPED_LEVELS:
            raise InvalidParameter("level", ", ".join(rules.CAPPED_LEVELS))
        if cap is not None and (not cap.is_finite() or cap < 0 or round_down(cap, 8) != cap or cap >= 10**12):
            raise InvalidParameter("monthlyCap", "USDT, at least 0, at most 8 decimals")
        with self.db.write() as conn:
            conn.execute(nd_rebate_caps.delete().where(nd_rebate_caps.c.fee_level == fee_level))
            if cap is not None:
                conn.execute(nd_rebate_caps.insert().values(fee_level=fee_level, monthly_cap=cap,
                                                            updated_at=self.clock.now()))
        return cap

    def set_vip_fee_mode(self, uid: str, on: bool) -> bool:
        with self.db.write() as conn:
            user = self.accounts.get_in(conn, uid)
            if not user.is_sub:
                raise InvalidParameter("uid", "VIP fee-rate mode is for ND brokers' sub-accounts")
            conn.execute(nd_vip_fee_mode.delete().where(nd_vip_fee_mode.c.uid == uid))
            if on:
                conn.execute(nd_vip_fee_mode.insert().values(uid=uid, since=self.clock.now()))
        return on

    def records(self, broker_uid: str, limit: int = 100) -> list[Record]:
        with self.db.read() as conn:
            if conn.execute(select(func.count()).select_from(users).where(users.c.uid == broker_uid)).scalar_one() == 0:
                raise NotFound("User", broker_uid)
            names = broker_sub_accounts(conn, broker_uid)
            c = nd_rebate_records.c
            rows = conn.execute(select(nd_rebate_records).where(c.broker_uid == broker_uid)
                                .order_by(c.rebate_time.desc(), c.id.desc()).limit(limit)).all()
        return [Record(names.get(r.uid, ""), r.uid, r.day, r.rebate_date, r.rebate_time, r.income, r.net_fee,
                       r.markup_fee) for r in rows]
