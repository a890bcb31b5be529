"""Contract credits (ND): trading-fee vouchers the operator grants to a broker's sub-account, which
the sub-account activates and its fills then spend (``service.py``: ``_use_credits``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.accounts.service import AccountService
from stakehouse.clock import Clock
from stakehouse.db.dialect import for_update
from stakehouse.db.engine import Database
from stakehouse.db.tables import brokers, contract_credits
from stakehouse.errors import InvalidParameter, NotFound, Refused
from stakehouse.money import round_down
from stakehouse.trading.rules import TradingReason

STATES = ("unactivated", "activated", "expired", "invalid")
#: Longest use period after activation the operator may grant (a year), in ms.
MAX_VALID_PERIOD_MS = 366 * 86_400_000


@dataclass(frozen=True)
class Credit:
    credit_id: int
    uid: str
    ccy: str
    amt: Decimal
    used: Decimal
    state: str
    activate_exp_at: dt.datetime
    valid_period_ms: int
    use_exp_at: dt.datetime | None
    invalid_at: dt.datetime | None
    created_at: dt.datetime


def _credit(r: object) -> Credit:
    return Credit(**{f: getattr(r, f) for f in Credit.__dataclass_fields__})


class CreditService:
    def __init__(self, db: Database, clock: Clock, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.accounts = accounts

    def _nd_sub(self, conn: Connection, uid: str) -> None:
        user = self.accounts.get_in(conn, uid)
        broker = conn.execute(select(brokers.c.uid).where(brokers.c.uid == user.group_uid)).first()
        if not user.is_sub or broker is None:
            raise Refused(TradingReason.NOT_ND_SUB_ACCOUNT, "Contract credits are for ND brokers' sub-accounts only")

    def grant(self, uid: str, amt: Decimal, *, activate_exp_at: dt.datetime, valid_period_ms: int) -> Credit:
        """The operator grants ``amt`` USDT of fee credit to an ND sub-account."""
        if not amt.is_finite() or amt <= 0 or round_down(amt, 6) != amt or amt > Decimal(10) ** 9:
            raise InvalidParameter("amt", "a positive USDT amount with at most 6 decimals")
        if not 60_000 <= valid_period_ms <= MAX_VALID_PERIOD_MS:
            raise InvalidParameter("validPeriod", f"between 60000 and {MAX_VALID_PERIOD_MS} ms")
        with self.db.write() as conn:
            now = self.clock.now()
            if activate_exp_at <= now:
                raise InvalidParameter("activateExpTime", "must be in the future")
            self._nd_sub(conn, uid)
            credit_id = conn.execute(contract_credits.insert().values(
                uid=uid, ccy="USDT", amt=amt, used=Decimal(0), state="unactivated", activate_exp_at=activate_exp_at,
                valid_period_ms=valid_period_ms, use_exp_at=None, invalid_at=None, created_at=now, updated_at=now)
                .returning(contract_credits.c.credit_id)).scalar_one()
            return _credit(conn.execute(select(contract_credits)
                                        .where(contract_credits.c.credit_id == credit_id)).one())

    def list(self, uid: str, *, state: str = "", limit: int = 10) -> list[Credit]:
        q = select(contract_credits)
        if uid:
            q = q.where(contract_credits.c.uid == uid)
        if state:
            q = q.where(contract_credits.c.state == state)
        with self.db.query() as conn:
            return [_credit(r) for r in conn.execute(q.order_by(contract_credits.c.credit_id.desc()).limit(limit))]

    def activate(self, uid: str, credit_id: int) -> Credit:
        """The sub-account activates its own unactivated, unexpired credit: 50063 otherwise."""
        with self.db.write() as conn:
            self._nd_sub(conn, uid)
            row = conn.execute(for_update(conn, select(contract_credits).where(
                contract_credits.c.credit_id == credit_id))).first()
            now = self.clock.now()
            if row is None or row.uid != uid or row.state != "unactivated" or row.activate_exp_at <= now:
                raise Refused(TradingReason.CREDIT_NOT_ACTIVATABLE, "You can't activate the credits as they might "
                                                                    "have expired or are already activated.")
            use_exp = now + dt.timedelta(milliseconds=row.valid_period_ms)
            conn.execute(contract_credits.update().where(contract_credits.c.credit_id == credit_id)
                         .values(state="activated", use_exp_at=use_exp, updated_at=now))
            return _credit(conn.execute(select(contract_credits)
                                        .where(contract_credits.c.credit_id == credit_id)).one())

    def invalidate(self, credit_id: int) -> Credit:
        """The operator withdraws a credit (unused remainder lost): state ``invalid``."""
        with self.db.write() as conn:
            row = conn.execute(for_update(conn, select(contract_credits).where(
                contract_credits.c.credit_id == credit_id))).first()
            if row is None:
                raise NotFound("Credit", str(credit_id))
            if row.state in ("expired", "invalid"):
                raise InvalidParameter("creditId", f"credit {credit_id} is already {row.state}")
            now = self.clock.now()
            conn.execute(contract_credits.update().where(contract_credits.c.credit_id == credit_id)
                         .values(state="invalid", invalid_at=now, updated_at=now))
            return _credit(conn.execute(select(contract_credits)
                                        .where(contract_credits.c.credit_id == credit_id)).one())
