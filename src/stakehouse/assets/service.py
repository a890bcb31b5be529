"""Balances, transfers between accounts, and deposits (the funds every product stands on)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, select

from stakehouse.accounts.service import AccountService, User
from stakehouse.assets.reference import currency
from stakehouse.chain.deposit_rules import confirmations_at
from stakehouse.clock import Clock
from stakehouse.db.batch import Batcher
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first
from stakehouse.db.tables import chains, deposits, journal_entries, ledger_accounts, transfers, users
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
from stakehouse.ledger.journal import Ledger, dialect_insert
from stakehouse.ledger.rules import FUNDING, USER_ACCOUNT_TYPES, AccountRef, Leg
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


class _LostRace(Exception):
    """Raised inside a transaction to roll it back when a concurrent twin already committed."""


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


@dataclass(frozen=True)
class Deposit:
    """A deposit as users, brokers and operators see it; ``confirmations`` as of the read
    (``chain/deposit_rules.confirmations_at``)."""

    dep_id: str
    uid: str
    ccy: str
    chain: str
    amt: Decimal
    type: int
    from_addr: str
    to_addr: str
    tag: str
    tx_id: str
    from_wd_id: str
    state: int
    confirmations: int
    created_at: dt.datetime
    #: the sending user of an internal deposit (type 3), else ""
    from_uid: str
    #: the account type credited (6 funding, 18 trading)
    acct_type: int
    # the chain simulator's schedule: confirmations to credit and to succeed, seconds per block,
    # when it moves next and when it did
    credit_confirmations: int
    unlock_confirmations: int
    block_seconds: int
    next_at: dt.datetime | None
    credited_at: dt.datetime | None
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class DepositQuery:
    ccy: str = ""
    dep_id: str = ""
    from_wd_id: str = ""
    tx_id: str = ""
    type: int | None = None
    state: int | None = None
    after: dt.datetime | None = None
    before: dt.datetime | None = None
    limit: int = 100


def _transfer(r: Any) -> Transfer:
    return Transfer(str(r.trans_id), r.client_id or "", r.ccy, r.amt, r.type, r.from_type, r.to_type, r.sub_acct,
                    r.state, r.created_at)


def _same_request(first: Transfer, req: TransferRequest) -> Transfer:
    """A retry returns the first result; the same ``clientId`` with other data is refused."""
    if (first.ccy, first.amt, first.type, first.from_type, first.to_type, first.sub_acct) != (
            req.ccy, req.amt, req.type, req.from_type, req.to_type, req.sub_acct):
        raise InvalidParameter("clientId", "already used for a different transfer")
    return first


def deposit_view(r: Any, now: dt.datetime) -> Deposit:
    """A ``deposits`` row as seen at ``now``."""
    shown = confirmations_at(state=r.state, created_at=r.created_at, block_seconds=r.block_seconds,
                             unlock=r.unlock_confirmations, now=now)
    return Deposit(str(r.dep_id), r.uid, r.ccy, r.chain, r.amt, r.type, r.from_addr, r.to_addr, r.tag, r.tx_id,
                   r.from_wd_id, r.state, shown, r.created_at, r.from_uid or "", r.acct_type, r.credit_confirmations,
                   r.unlock_confirmations, r.block_seconds, r.next_at, r.credited_at, r.completed_at)


def deposits_query(query: DepositQuery, *, uid: str = "", master_uid: str = "") -> Select[Any]:
    """The deposits of one user, or of every sub-account of a master (a broker's, deleted ones
    included), filtered as ``query`` says, newest first."""
    c = deposits.c
    if uid:
        q = select(deposits).where(c.uid == uid)
    elif master_uid:
        q = select(deposits).where(c.uid.in_(select(users.c.uid).where(users.c.master_uid == master_uid)))
    else:
        raise ValueError("uid or master_uid")
    if query.ccy:
        q = q.where(c.ccy == query.ccy)
    if query.dep_id:
        q = q.where(c.dep_id == (row_id(query.dep_id) or -1))
    if query.from_wd_id:
        q = q.where(c.from_wd_id == query.from_wd_id)
    if query.tx_id:
        q = q.where(c.tx_id == query.tx_id)
    if query.type is not None:
        q = q.where(c.type == query.type)
    if query.state is not None:
        q = q.where(c.state == query.state)
    return newest_first(q, c.created_at, c.dep_id, after=query.after, before=query.before, limit=query.limit)


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

    # -- deposits ----------------------------------------------------------------------

    def credit_deposit(self, uid: str, ccy: str, amt: Decimal, *, chain: str = "", tx_id: str = "",
                       from_addr: str = "", to_addr: str = "", idempotency_key: str = "") -> Deposit:
        """Credit an on-chain deposit at once (the sandbox faucet and operator credits).

        With an ``idempotency_key``, a retry returns the first deposit and credits nothing."""
        if amt <= 0:
            raise AmountNotPositive("amt")
        if len(idempotency_key) > 64:
            raise InvalidParameter("idempotencyKey", "at most 64 characters")
        entry_key = f"deposit:ext:{idempotency_key}" if idempotency_key else ""
        try:
            return self._credit(uid, ccy, amt, chain, tx_id, from_addr, to_addr, entry_key)
        except _LostRace:
            # A concurrent retry with the same key committed first; ours rolled back whole.
            with self.db.read() as conn:
                winner = self._deposit_by_entry_key(conn, entry_key, self.clock.now())
            assert winner is not None
            return winner

    def _credit(self, uid: str, ccy: str, amt: Decimal, chain: str, tx_id: str, from_addr: str, to_addr: str,
                entry_key: str) -> Deposit:
        with self.db.write() as conn:
            now = self.clock.now()  # inside the transaction: after the ledger barrier
            if entry_key:
                prior = self._deposit_by_entry_key(conn, entry_key, now)
                if prior is not None:
                    return prior
            user = self.accounts.get_in(conn, uid)
            cur = currency(conn, ccy)
            if round_down(amt, cur.scale) != amt:
                raise InvalidParameter("amt", f"at most {cur.scale} decimals for {ccy}")
            if user.frozen_for("deposit"):
                raise AccountFrozen(uid, "deposit")
            chain_q = select(chains.c.chain).where(chains.c.ccy == ccy)
            chain_q = chain_q.where(chains.c.chain == chain) if chain else chain_q.where(chains.c.main_net.is_(True))
            chain_name = conn.execute(chain_q).scalar_one_or_none()
            if chain and chain_name is None:
                raise InvalidParameter("chain", f"unknown chain {chain[:48]}")
            dep_id = conn.execute(deposits.insert().values(
                uid=uid, ccy=ccy, chain=chain_name or ccy, amt=amt, type=4, from_addr=from_addr, to_addr=to_addr,
                tx_id=tx_id, from_wd_id="", state=2, confirmations=0, acct_type=FUNDING, created_at=now,
            ).returning(deposits.c.dep_id)).scalar_one()
            posted = self.ledger.post(
                conn, type="deposit", ref=str(dep_id), idempotency_key=entry_key or f"deposit:{dep_id}", at=now,
                uid=uid,
                legs=[Leg(AccountRef.system("custody", ccy), -amt), Leg(AccountRef.user(uid, FUNDING, ccy), amt)],
            )
            if not posted.created:
                raise _LostRace()
            conn.execute(deposits.update().where(deposits.c.dep_id == dep_id).values(entry_id=posted.entry_id))
            return deposit_view(conn.execute(select(deposits).where(deposits.c.dep_id == dep_id)).one(), now)

    def _deposit_by_entry_key(self, conn: Connection, entry_key: str, now: dt.datetime) -> Deposit | None:
        row = conn.execute(
            select(deposits).join(journal_entries, journal_entries.c.id == deposits.c.entry_id)
            .where(journal_entries.c.idempotency_key == entry_key)
        ).first()
        return deposit_view(row, now) if row else None

    def deposit_history(self, uid: str, query: DepositQuery) -> list[Deposit]:
        """A user's deposits (on-chain and internal), newest first; confirmations as of now."""
        with self.db.read() as conn:
            now = self.clock.now()
            return [deposit_view(r, now) for r in conn.execute(deposits_query(query, uid=uid))]
