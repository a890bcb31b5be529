"""Balances and transfers between accounts (the funds every product stands on)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from stakehouse.accounts.service import AccountService, User
from stakehouse.assets.reference import currency
from stakehouse.clock import Clock
from stakehouse.db.batch import Batcher
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import ledger_accounts, transfers
from stakehouse.db.types import money_from_db, utc_from_db
from stakehouse.digits import row_id
from stakehouse.errors import (
    AccountFrozen,
    AmountNotPositive,
    InvalidParameter,
    MissingParameter,
    NotFound,
    SameAccount,
    TransferOutNotAllowed,
    TransferTypeNotAllowed,
)
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import USER_ACCOUNT_TYPES, AccountRef, Leg
from stakehouse.money import round_down

TRANSFER_TYPES = (0, 1, 2, 3, 4)
#: Balance statements running at once per API process: they share its one hot-read connection
#: (``Database.hot``), and one at a time gave the largest batches (bench/RESULTS.md).
BALANCE_READS_IN_FLIGHT = 1


def _balances_sql(db: Database, owners: list[str]) -> tuple[str, tuple[Any, ...]]:
    """The balances of some owners, in the bare driver's SQL (it also runs on ``Database.hot``)."""
    where, params = db.in_list("owner", owners)
    return (f"SELECT owner, acct_type, ccy, available, locked, updated_at FROM {ledger_accounts.name} "
            f"WHERE {where} ORDER BY owner, acct_type, ccy"), params


#: An owner's balance rows as the driver gives them: ``(owner, acct_type, ccy, available, locked,
#: updated_at)``, turned into :class:`Balance` only for the rows a request asks for.
Rows = tuple[tuple[Any, ...], ...]


def _by_owner(rows: list[Any]) -> dict[str, Rows]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        found.setdefault(r[0], []).append(r)
    return {owner: tuple(items) for owner, items in found.items()}


def _select(rows: Rows, acct_type: int, ccys: list[str] | None) -> list[Balance]:
    wanted = set(ccys) if ccys else None
    return [Balance(r[2], money_from_db(r[3]), money_from_db(r[4]), r[5])
            for r in rows if r[1] == acct_type and (wanted is None or r[2] in wanted)]


class Balance(NamedTuple):
    """One currency of one account (a named tuple: built for every row of the hottest read).

    ``stamp`` is the last change as the driver gives it; :attr:`updated_at` reads it (only the
    replies that show it pay for that)."""

    ccy: str
    available: Decimal
    locked: Decimal
    stamp: Any

    @property
    def total(self) -> Decimal:
        return self.available + self.locked

    @property
    def updated_at(self) -> dt.datetime:
        return utc_from_db(self.stamp)


@dataclass(frozen=True)
class TransferRequest:
    ccy: str
    amt: Decimal
    from_type: int
    to_type: int
    type: int = 0
    sub_acct: str = ""
    client_id: str = ""


@dataclass(frozen=True)
class Transfer:
    trans_id: str
    client_id: str
    ccy: str
    amt: Decimal
    type: int
    from_type: int
    to_type: int
    sub_acct: str
    state: str
    created_at: dt.datetime


def _transfer(r: Any) -> Transfer:
    return Transfer(str(r.trans_id), r.client_id or "", r.ccy, r.amt, r.type, r.from_type, r.to_type, r.sub_acct,
                    r.state, r.created_at)


def _same_request(first: Transfer, req: TransferRequest) -> Transfer:
    """A retry returns the first result; the same ``clientId`` with other data is refused."""
    if (first.ccy, first.amt, first.type, first.from_type, first.to_type, first.sub_acct) != (
            req.ccy, req.amt, req.type, req.from_type, req.to_type, req.sub_acct):
        raise InvalidParameter("clientId", "already used for a different transfer")
    return first


class AssetService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self._balance_reads: Batcher[str, Rows] = Batcher(self._load_balances, tuple,
                                                         max_inflight=BALANCE_READS_IN_FLIGHT)
        #: The one-owner balance statement on SQLite, built once (its text depends only on the number
        #: of owners): the hottest read there
        self._one_owner_sql = _balances_sql(db, [""])[0]

    # -- balances ----------------------------------------------------------------------

    def balances(self, uid: str, acct_type: int, ccys: list[str] | None = None) -> list[Balance]:
        """The balances of one account type of a user, by currency (operator tools)."""
        owner = f"u:{uid}"
        with self.db.query() as conn:
            found = _by_owner(list(conn.exec_driver_sql(*_balances_sql(self.db, [owner]))))
        return _select(found.get(owner, ()), acct_type, ccys)

    async def read_balances(self, uid: str, acct_type: int, ccys: list[str] | None = None) -> list[Balance]:
        """:meth:`balances` for API requests, awaited on the event loop. Where the read waits for
        the network (PostgreSQL), the balances of all requests waiting at the same moment are
        read with one statement (``db.batch``); a local SQLite read is simply made."""
        owner = f"u:{uid}"
        if self.db.hot.waits:
            return _select(await self._balance_reads.get(owner), acct_type, ccys)
        return _select(tuple(await self.db.hot.fetch(self._one_owner_sql, (owner,))), acct_type, ccys)

    async def _load_balances(self, owners: list[str]) -> dict[str, Rows]:
        return _by_owner(await self.db.hot.fetch(*_balances_sql(self.db, owners)))

    # -- transfers ---------------------------------------------------------------------

    def _resolve(self, conn: Connection, caller: User, req: TransferRequest) -> tuple[User, User]:
        """(source user, destination user) of a transfer, by its type."""
        if req.type == 0:
            if req.from_type == req.to_type:
                raise SameAccount()
            return caller, caller
        if req.type in (1, 2):
            if caller.is_sub:
                raise TransferTypeNotAllowed(caller_is_sub=True)
            if not req.sub_acct:
                raise MissingParameter("subAcct")
            sub = self.accounts.find_sub(conn, req.sub_acct)
            if sub is None or sub.master_uid != caller.uid:
                raise NotFound("Sub-account", req.sub_acct)
            return (caller, sub) if req.type == 1 else (sub, caller)
        if not caller.is_sub:
            raise TransferTypeNotAllowed(caller_is_sub=False)
        master = self.accounts.get_in(conn, caller.group_uid)
        if req.type == 3:
            return caller, master
        if not req.sub_acct:
            raise MissingParameter("subAcct")
        sibling = self.accounts.find_sub(conn, req.sub_acct)
        if sibling is None or sibling.master_uid != caller.master_uid or sibling.uid == caller.uid:
            raise NotFound("Sub-account", req.sub_acct)
        if not caller.can_trans_out:
            raise TransferOutNotAllowed(caller.sub_name or caller.uid)
        return caller, sibling

    def transfer(self, caller_uid: str, req: TransferRequest) -> Transfer:
        """Move funds synchronously. A retry with the same ``clientId`` returns the first result."""
        if req.type not in TRANSFER_TYPES:
            raise InvalidParameter("type")
        if req.from_type not in USER_ACCOUNT_TYPES:
            raise InvalidParameter("from")
        if req.to_type not in USER_ACCOUNT_TYPES:
            raise InvalidParameter("to")
        if req.amt <= 0:
            raise AmountNotPositive("amt")
        with self.db.write() as conn:
            now = self.clock.now()  # inside the transaction: after the ledger barrier
            if req.client_id:
                existing = conn.execute(select(transfers).where(
                    transfers.c.uid == caller_uid, transfers.c.client_id == req.client_id)).first()
                if existing is not None:
                    return _same_request(_transfer(existing), req)
            cur = currency(conn, req.ccy)
            if round_down(req.amt, cur.scale) != req.amt:
                raise InvalidParameter("amt", f"at most {cur.scale} decimals for {cur.ccy}")
            caller = self.accounts.get_in(conn, caller_uid)
            source, dest = self._resolve(conn, caller, req)
            for user in (caller, source):
                if user.frozen_for("transfer"):
                    raise AccountFrozen(user.uid, "transfer")
            trans_id = conn.execute(
                dialect_insert(conn)(transfers)
                .values(uid=caller_uid, client_id=req.client_id or None, type=req.type, ccy=req.ccy, amt=req.amt,
                        from_uid=source.uid, from_type=req.from_type, to_uid=dest.uid, to_type=req.to_type,
                        sub_acct=req.sub_acct, state="success", created_at=now)
                .on_conflict_do_nothing()
                .returning(transfers.c.trans_id)
            ).scalar_one_or_none()
            if trans_id is None:  # a concurrent retry with the same clientId won
                return _same_request(_transfer(conn.execute(select(transfers).where(
                    transfers.c.uid == caller_uid, transfers.c.client_id == req.client_id)).one()), req)
            posted = self.ledger.post(
                conn, type="transfer", ref=str(trans_id), idempotency_key=f"transfer:{trans_id}", at=now,
                uid=caller_uid,
                legs=[Leg(AccountRef.user(source.uid, req.from_type, req.ccy), -req.amt),
                      Leg(AccountRef.user(dest.uid, req.to_type, req.ccy), req.amt)],
            )
            conn.execute(transfers.update().where(transfers.c.trans_id == trans_id).values(entry_id=posted.entry_id))
            return _transfer(conn.execute(select(transfers).where(transfers.c.trans_id == trans_id)).one())

    def transfer_state(self, caller_uid: str, *, trans_id: str = "", client_id: str = "") -> Transfer:
        q = select(transfers).where(transfers.c.uid == caller_uid)
        if trans_id:
            found = row_id(trans_id)
            if found is None:
                raise NotFound("Transfer", trans_id[:20])
            q = q.where(transfers.c.trans_id == found)
        elif client_id:
            q = q.where(transfers.c.client_id == client_id)
        else:
            raise MissingParameter("transId")
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFound("Transfer", trans_id or client_id)
        return _transfer(row)
