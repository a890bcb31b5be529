"""Who is an ND broker, and which sub-accounts are a broker's: the checks every broker route
makes first (broker accounts, deposit addresses, deposit and withdrawal history)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from stakehouse.accounts.service import User, user_from_row
from stakehouse.broker.rules import BrokerReason
from stakehouse.db.tables import brokers, users
from stakehouse.errors import NotFound, Refused


def is_broker(conn: Connection, uid: str) -> bool:
    """A master with an enabled ``brokers`` row."""
    return bool(conn.execute(select(brokers.c.enabled).where(brokers.c.uid == uid)).scalar_one_or_none())


def require_broker(conn: Connection, caller: User) -> Any:
    """The caller's ``brokers`` row. A sub-account's key -> ``not_master_key`` (59604); a master
    that is not an enabled broker -> ``not_broker`` (59608)."""
    if caller.is_sub:
        raise Refused(BrokerReason.NOT_MASTER_KEY, "Only the API key of the main account can access this API.")
    row = conn.execute(select(brokers).where(brokers.c.uid == caller.uid)).first()
    if row is None or not row.enabled:
        raise Refused(BrokerReason.NOT_BROKER, "Only Broker accounts have permission to access this API.")
    return row


def broker_sub_account(conn: Connection, broker_uid: str, sub_name: str) -> User:
    """A live sub-account (either level) of the broker by name; anything else (unknown, another
    broker's, deleted) -> ``sub_account_missing`` (59510)."""
    row = conn.execute(select(users).where(users.c.sub_name == sub_name, users.c.master_uid == broker_uid,
                                           users.c.deleted_at.is_(None))).first()
    if row is None:
        raise Refused(BrokerReason.SUB_ACCOUNT_MISSING, "Sub-account does not exist", subAcct=sub_name[:32])
    return user_from_row(row)


def broker_sub_accounts(conn: Connection, broker_uid: str) -> dict[str, str]:
    """Every sub-account of the broker ever made, deleted ones included: uid -> name."""
    rows = conn.execute(select(users.c.uid, users.c.sub_name).where(users.c.master_uid == broker_uid))
    return {r.uid: r.sub_name or "" for r in rows}


def broker_caller(conn: Connection, caller_uid: str) -> User:
    """The calling user, if it is an ND broker's master account (:func:`require_broker`)."""
    row = conn.execute(select(users).where(users.c.uid == caller_uid)).first()
    if row is None:
        raise NotFound("User", caller_uid)
    caller = user_from_row(row)
    require_broker(conn, caller)
    return caller


def caller_sub_account(conn: Connection, caller_uid: str, sub_name: str) -> User:
    """The sub-account ``sub_name`` of the calling broker (:func:`broker_caller`,
    :func:`broker_sub_account`)."""
    return broker_sub_account(conn, broker_caller(conn, caller_uid).uid, sub_name)
