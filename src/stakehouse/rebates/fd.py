"""FD brokers (spec §7): the operator's set-up (code, types, ratios, affiliations, expired
identification), the broker's ``if-rebate`` for a user's API key, and the records of the run."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from stakehouse.accounts.service import AccountService
from stakehouse.broker.rules import BrokerReason
from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import api_keys, fd_affiliations, fd_brokers, fd_rebate_records, users
from stakehouse.errors import Conflict, InvalidParameter, NotFound, Refused
from stakehouse.money import round_down
from stakehouse.rebates import rules
from stakehouse.rebates.rules import RebateReason
from stakehouse.rebates.runs import cap_of, fd_month_to_date, level_of


@dataclass(frozen=True)
class FdBroker:
    uid: str
    code: str
    types: tuple[str, ...]
    ratio: Decimal
    client_ratio: Decimal
    expired: bool


@dataclass(frozen=True)
class FdRebateInfo:
    type: str
    code: str
    affiliated: bool
    client_ratio: Decimal
    last_rebate: Decimal | None


@dataclass(frozen=True)
class FdRecord:
    uid: str
    broker_type: str
    day: str
    level: str
    affiliated: bool
    net_fee: Decimal
    broker_rebate: Decimal
    user_rebate: Decimal


def fd_from_row(row: Any) -> FdBroker:
    return FdBroker(row.uid, row.code, tuple(t for t in rules.FD_TYPES if getattr(row, t)), row.ratio,
                    row.client_ratio, row.expired)


def fd_caller(conn: Connection, caller_uid: str) -> FdBroker:
    """The calling master account's FD set-up: a sub-account's key -> 59604, a master that is not
    an FD broker -> 59608 (the conventions' codes for broker routes)."""
    master = conn.execute(select(users.c.master_uid).where(users.c.uid == caller_uid)).scalar_one_or_none()
    if master is not None:
        raise Refused(BrokerReason.NOT_MASTER_KEY, "Only the API key of the main account can access this API.")
    row = conn.execute(select(fd_brokers).where(fd_brokers.c.uid == caller_uid)).first()
    if row is None:
        raise Refused(RebateReason.NOT_FD_BROKER, "Only Broker accounts have permission to access this API.")
    return fd_from_row(row)


def broker_type_of(broker: FdBroker, asked: str) -> str:
    """The broker type a request means: ``asked`` if the broker has it; when nothing is asked, the
    broker's only type (a broker of both types must say which: 51000 naming ``brokerType``)."""
    if asked:
        if asked not in broker.types:
            raise InvalidParameter("brokerType", f"the broker's types are {', '.join(broker.types)}")
        return asked
    if len(broker.types) > 1:
        raise InvalidParameter("brokerType", "required: the broker has both types")
    return broker.types[0]


def _fraction(field: str, value: Decimal) -> Decimal:
    if not value.is_finite() or not 0 <= value <= 1 or round_down(value, 8) != value:
        raise InvalidParameter(field, "a fraction in [0, 1] with at most 8 decimals")
    return value


def new_code() -> str:
    """A fresh broker code in the seed's shape (``6099c63a8d75SCDE``: 12 hex digits, 4 letters)."""
    return secrets.token_hex(6) + "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))


class FdBrokerService:
    def __init__(self, db: Database, clock: Clock, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.accounts = accounts

    # -- the broker ------------------------------------------------------------------------------

    def if_rebate(self, caller_uid: str, *, api_key: str, broker_type: str = "") -> FdRebateInfo:
        """Whether the user of ``api_key`` earns the calling FD broker a rebate (spec §7)."""
        with self.db.read() as conn:
            broker = fd_caller(conn, caller_uid)
            broker_type_of(broker, broker_type)
            owner = conn.execute(select(users.c.uid, users.c.master_uid).join(api_keys, api_keys.c.uid == users.c.uid)
                                 .where(api_keys.c.api_key == api_key, api_keys.c.revoked_at.is_(None))).first()
            # another broker's sub-account is not a user this broker can ask about
            if owner is None or (owner.master_uid is not None and owner.master_uid != broker.uid):
                raise Refused(RebateReason.API_KEY_MISSING, "API key doesn't exist")
            uid = owner.uid
            level = level_of(conn, uid)
            so_far = fd_month_to_date(conn, broker.uid, uid, rules.hkt_day(self.clock.now()))
            capped_level = level in ("VIP4", "VIP5")
            kind = rules.fd_rebate_type(expired=broker.expired, level=level, month_so_far=so_far,
                                        cap=cap_of(conn, uid) if capped_level else None)
            affiliated = conn.execute(select(fd_affiliations.c.uid).where(
                fd_affiliations.c.broker_uid == broker.uid, fd_affiliations.c.uid == uid)).first() is not None
        return FdRebateInfo(kind, broker.code, affiliated, broker.client_ratio, so_far if capped_level else None)

    # -- the operator ----------------------------------------------------------------------------

    def set_up(self, uid: str, *, code: str | None, types: tuple[str, ...], ratio: Decimal,
               client_ratio: Decimal) -> FdBroker:
        """Make the master account ``uid`` an FD broker, or change its set-up (the code too)."""
        if not types or any(t not in rules.FD_TYPES for t in types):
            raise InvalidParameter("types", "api and/or oauth")
        if code is not None and not rules.valid_code(code):
            raise InvalidParameter("code", "16 ASCII letters or digits")
        _fraction("ratio", ratio)
        _fraction("clientRebateRatio", client_ratio)
        now = self.clock.now()
        with self.db.write() as conn:
            user = self.accounts.get_in(conn, uid)
            if user.is_sub:
                raise InvalidParameter("uid", "an FD broker is a master account")
            current = conn.execute(select(fd_brokers.c.code).where(fd_brokers.c.uid == uid)).scalar_one_or_none()
            code = code or current or new_code()
            taken = conn.execute(select(fd_brokers.c.uid).where(fd_brokers.c.code == code,
                                                               fd_brokers.c.uid != uid)).first()
            if taken is not None:
                raise Conflict(f"broker code {code} belongs to another broker")
            values = dict(code=code, api="api" in types, oauth="oauth" in types, ratio=ratio,
                          client_ratio=client_ratio, updated_at=now)
            conn.execute(dialect_insert(conn)(fd_brokers).values(uid=uid, expired=False, created_at=now, **values)
                         .on_conflict_do_update(index_elements=["uid"], set_=values))
            return fd_from_row(conn.execute(select(fd_brokers).where(fd_brokers.c.uid == uid)).one())

    def set_expired(self, uid: str, expired: bool) -> FdBroker:
        """Mark the broker's identification expired (it earns nothing; if-rebate type 1) or valid."""
        with self.db.write() as conn:
            n = conn.execute(fd_brokers.update().where(fd_brokers.c.uid == uid)
                             .values(expired=expired, updated_at=self.clock.now())).rowcount
            if not n:
                raise NotFound("FD broker", uid)
            return fd_from_row(conn.execute(select(fd_brokers).where(fd_brokers.c.uid == uid)).one())

    def affiliate(self, broker_uid: str, uid: str, on: bool) -> bool:
        """Link (or unlink) a user to the broker as its invitee (``affiliated``)."""
        with self.db.write() as conn:
            if conn.execute(select(fd_brokers.c.uid).where(fd_brokers.c.uid == broker_uid)).first() is None:
                raise NotFound("FD broker", broker_uid)
            user = self.accounts.get_in(conn, uid)
            if user.uid == broker_uid:
                raise InvalidParameter("uid", "a broker is not its own affiliate")
            conn.execute(fd_affiliations.delete().where(fd_affiliations.c.broker_uid == broker_uid,
                                                        fd_affiliations.c.uid == uid))
            if on:
                conn.execute(fd_affiliations.insert().values(broker_uid=broker_uid, uid=uid, since=self.clock.now()))
        return on

    def get(self, uid: str) -> FdBroker:
        with self.db.read() as conn:
            row = conn.execute(select(fd_brokers).where(fd_brokers.c.uid == uid)).first()
        if row is None:
            raise NotFound("FD broker", uid)
        return fd_from_row(row)

    def all(self) -> list[FdBroker]:
        with self.db.read() as conn:
            return [fd_from_row(r) for r in conn.execute(select(fd_brokers).order_by(fd_brokers.c.uid))]

    def records(self, broker_uid: str, limit: int = 100) -> list[FdRecord]:
        """The broker's daily records, newest first."""
        self.get(broker_uid)
        c = fd_rebate_records.c
        with self.db.read() as conn:
            rows = conn.execute(select(fd_rebate_records).where(c.broker_uid == broker_uid)
                                .order_by(c.day.desc(), c.id.desc()).limit(limit)).all()
        return [FdRecord(r.uid, r.broker_type, r.day, r.level, r.affiliated, r.net_fee, r.broker_rebate,
                         r.user_rebate) for r in rows]
