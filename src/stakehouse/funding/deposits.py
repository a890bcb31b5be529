"""Deposit addresses and the sandbox chain simulator's deposits: an on-chain deposit waits for
confirmations as the clock advances, is credited, then succeeds (seed 004, conventions 6.9).

The simulator's deposits are an event source of the job runner (``jobs/runner.py``): each
transition is claimed by a conditional ``UPDATE ... WHERE state = <old> AND next_at = <due>`` in
its own transaction, posts with an idempotency key per transition and is stamped at its due time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Select, func, select

from stakehouse.accounts.service import AccountService
from stakehouse.assets.reference import (
    ReferenceData,
    chain_by_name,
    chain_row,
    currency,
    update_chain,
)
from stakehouse.assets.rules import Chain
from stakehouse.broker.access import broker_caller, broker_sub_account, broker_sub_accounts, caller_sub_account
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first
from stakehouse.db.tables import chains, deposit_addresses, deposits, journal_entries, users
from stakehouse.digits import row_id
from stakehouse.errors import (
    AccountFrozen,
    AmountNotPositive,
    Conflict,
    InvalidParameter,
    NotAllowed,
    NotFound,
    Refused,
)
from stakehouse.funding import addresses
from stakehouse.funding.deposit_rules import (
    BENEFICIARIES,
    CREDITED,
    FROZEN,
    MAX_ADDRESSES,
    PENDING_STATES,
    SUCCESS,
    WAITING,
    ChainSettings,
    confirmations_at,
    credit_step,
    due_at,
    validate_settings,
)
from stakehouse.funding.rules import FundingReason
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, AccountRef, Leg
from stakehouse.money import round_down

log = structlog.get_logger(__name__)

#: When the earliest pending deposit moves next (read on every poll of the job runner; built once:
#: "Prebuilt statements" in docs/architecture.md).
_NEXT_DUE = select(func.min(deposits.c.next_at)).where(deposits.c.state.in_(PENDING_STATES),
                                                       deposits.c.next_at.is_not(None))


#: Tags of tag chains: 9-digit numbers, unique per chain.
_TAG_LOW, _TAG_SPAN = 100_000_000, 900_000_000


# -- views ----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class DepositAddress:
    id: int
    uid: str
    ccy: str
    chain: str
    addr: str
    tag: str
    addr_type: int
    created_at: dt.datetime
    #: the owner's beneficiary account (6 or 18), shared by all its addresses
    to: int
    #: the newest address of its (ccy, chain)
    selected: bool
    need_tag: bool


@dataclass(frozen=True)
class SendDeposit:
    """An on-chain deposit the operator sends to one of our deposit addresses."""

    addr: str
    ccy: str
    amt: Decimal
    chain: str = ""
    tag: str = ""
    tx_id: str = ""
    from_addr: str = ""


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


class _LostRace(Exception):
    """Raised inside a transaction to roll it back when a concurrent twin already committed."""


def split_address(addr: str, need_tag: bool) -> tuple[str, str]:
    """``addr`` or ``addr:tag`` (documented form for tag chains) -> (address, tag)."""
    if need_tag and ":" in addr:
        base, _, tag = addr.rpartition(":")
        return base, tag
    return addr, ""


class ChainService:
    name = "chain_deposits"

    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService, *,
                 sandbox: bool) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.reference = ReferenceData(db)
        #: The simulator sends deposits only in the sandbox (production deposits come from real chains).
        self.sandbox = sandbox

    # -- deposits credited at once (the sandbox faucet, operator credits) and history ------------

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

    # -- broker callers -------------------------------------------------------------------

    def broker_deposit_history(self, caller_uid: str, sub_name: str, query: DepositQuery
                               ) -> list[tuple[str, Deposit]]:
        """(sub-account name, deposit) for the deposits of an ND broker's sub-accounts (both levels;
        deleted ones keep their history), or of the live one named ``sub_name``; newest first."""
        with self.db.read() as conn:
            now = self.clock.now()
            caller = broker_caller(conn, caller_uid)
            if sub_name:
                sub = broker_sub_account(conn, caller.uid, sub_name)
                names, q = {sub.uid: sub_name}, deposits_query(query, uid=sub.uid)
            else:
                names, q = broker_sub_accounts(conn, caller.uid), deposits_query(query, master_uid=caller.uid)
            return [(names.get(r.uid, ""), deposit_view(r, now)) for r in conn.execute(q)]

    # -- deposit addresses ----------------------------------------------------------------

    def _address_views(self, conn: Connection, uid: str, rows: list[Any]) -> list[DepositAddress]:
        to = conn.execute(select(users.c.deposit_to).where(users.c.uid == uid)).scalar_one()
        newest: dict[tuple[str, str], int] = {}
        for r in conn.execute(select(deposit_addresses.c.ccy, deposit_addresses.c.chain,
                                     func.max(deposit_addresses.c.id).label("id"))
                              .where(deposit_addresses.c.uid == uid)
                              .group_by(deposit_addresses.c.ccy, deposit_addresses.c.chain)):
            newest[(r.ccy, r.chain)] = r.id
        need = {c.chain: c.need_tag for c in self.reference.chains([])}
        return [DepositAddress(r.id, r.uid, r.ccy, r.chain, r.addr, r.tag, r.addr_type, r.created_at, to,
                               newest.get((r.ccy, r.chain)) == r.id, need.get(r.chain, False)) for r in rows]

    def create_address(self, caller_uid: str, sub_name: str, ccy: str, *, chain: str = "", addr_type: int = 1,
                       to: int | None = None) -> DepositAddress:
        """A new deposit address of a broker's sub-account for ``ccy`` on ``chain`` (its main chain
        when empty). ``to`` (6|18), when given, becomes the sub-account's beneficiary account for
        all its addresses. At most 20 per (sub-account, ccy, chain)."""
        if addr_type not in (addresses.ADDR_TYPE_LEGACY, addresses.ADDR_TYPE_SEGWIT):
            raise InvalidParameter("addrType")
        if to is not None and to not in BENEFICIARIES:
            raise InvalidParameter("to")
        with self.db.write() as conn:
            now = self.clock.now()
            sub = caller_sub_account(conn, caller_uid, sub_name)
            found = chain_row(conn, ccy, chain)
            if addr_type == addresses.ADDR_TYPE_SEGWIT and found.address_format != addresses.BTC:
                raise InvalidParameter("addrType", "2 (SegWit) exists only on BTC chains")
            # one creation per user at a time, so that the count below holds (PostgreSQL row lock)
            conn.execute(select(users.c.uid).where(users.c.uid == sub.uid).with_for_update())
            count = conn.execute(select(func.count()).select_from(deposit_addresses).where(
                deposit_addresses.c.uid == sub.uid, deposit_addresses.c.ccy == found.ccy,
                deposit_addresses.c.chain == found.chain)).scalar_one()
            if count >= MAX_ADDRESSES:
                raise Refused(FundingReason.ADDRESS_LIMIT, "Deposit-address count exceeds the limit.")
            addr, tag = self._fresh_address(conn, found, addr_type)
            new_id = conn.execute(deposit_addresses.insert().values(
                uid=sub.uid, ccy=found.ccy, chain=found.chain, addr=addr, tag=tag, addr_type=addr_type,
                created_at=now).returning(deposit_addresses.c.id)).scalar_one()
            if to is not None:
                conn.execute(users.update().where(users.c.uid == sub.uid).values(deposit_to=to))
            row = conn.execute(select(deposit_addresses).where(deposit_addresses.c.id == new_id)).one()
            return self._address_views(conn, sub.uid, [row])[0]

    @staticmethod
    def _fresh_address(conn: Connection, chain: Chain, addr_type: int) -> tuple[str, str]:
        """An (address, tag) used nowhere on the chain yet: a new address, or on tag chains the
        platform's shared address with a new tag."""
        while True:
            if chain.need_tag or addresses.needs_tag(chain.address_format):
                addr = addresses.platform_address(chain.address_format)
                tag = str(_TAG_LOW + secrets.randbelow(_TAG_SPAN))
            else:
                addr, tag = addresses.new_address(chain.address_format, addr_type), ""
            taken = conn.execute(select(deposit_addresses.c.id).where(
                deposit_addresses.c.chain == chain.chain, deposit_addresses.c.addr == addr,
                deposit_addresses.c.tag == tag)).first()
            if taken is None:
                return addr, tag

    def set_beneficiary(self, caller_uid: str, sub_name: str, ccy: str, *, addr: str, to: int,
                        chain: str = "") -> tuple[DepositAddress, dt.datetime]:
        """Set the beneficiary account (6|18) of all the sub-account's addresses, naming one of
        them (``addr``, or ``addr:tag`` on tag chains) as proof: not the sub-account's ->
        ``address_missing``. Returns the address named and the time of the change."""
        if to not in BENEFICIARIES:
            raise InvalidParameter("to")
        with self.db.write() as conn:
            now = self.clock.now()
            sub = caller_sub_account(conn, caller_uid, sub_name)
            found = chain_row(conn, ccy, chain)
            base, tag = split_address(addr, found.need_tag)
            row = conn.execute(select(deposit_addresses).where(
                deposit_addresses.c.uid == sub.uid, deposit_addresses.c.ccy == found.ccy,
                deposit_addresses.c.chain == found.chain, deposit_addresses.c.addr == base,
                deposit_addresses.c.tag == tag)).first()
            if row is None:
                raise Refused(FundingReason.ADDRESS_MISSING, "Deposit-address not exist")
            conn.execute(users.update().where(users.c.uid == sub.uid).values(deposit_to=to))
            return self._address_views(conn, sub.uid, [row])[0], now

    def addresses(self, caller_uid: str, sub_name: str, ccy: str) -> list[DepositAddress]:
        """A broker's sub-account's deposit addresses of ``ccy``, newest first."""
        with self.db.read() as conn:
            sub = caller_sub_account(conn, caller_uid, sub_name)
            currency(conn, ccy)
            rows = list(conn.execute(select(deposit_addresses).where(
                deposit_addresses.c.uid == sub.uid, deposit_addresses.c.ccy == ccy)
                .order_by(deposit_addresses.c.id.desc())))
            return self._address_views(conn, sub.uid, rows)

    def find_addresses(self, addr: str, *, tag: str = "", chain: str = "") -> list[DepositAddress]:
        """Operator lookup: the deposit addresses ``addr`` (with ``tag`` on tag chains) names."""
        q = select(deposit_addresses).where(deposit_addresses.c.addr == addr)
        if tag:
            q = q.where(deposit_addresses.c.tag == tag)
        if chain:
            q = q.where(deposit_addresses.c.chain == chain)
        with self.db.read() as conn:
            rows = list(conn.execute(q.order_by(deposit_addresses.c.id).limit(100)))
            out: list[DepositAddress] = []
            for uid in dict.fromkeys(r.uid for r in rows):
                out.extend(self._address_views(conn, uid, [r for r in rows if r.uid == uid]))
            return sorted(out, key=lambda a: a.id)

    # -- chains (operator) ----------------------------------------------------------------

    def chains(self, ccys: list[str] | None = None) -> list[Chain]:
        return self.reference.chains(ccys or [])

    def configure_chain(self, chain: str, changes: dict[str, Any]) -> Chain:
        """Change a chain's settings (``Chain`` field names of ``reference.CHAIN_SETTINGS``),
        validated together with the values kept. Deposits already sent keep the confirmation counts
        and block time they were sent with."""
        with self.db.write() as conn:
            found = chain_by_name(conn, chain)
            if found is None:
                raise NotFound("Chain", chain[:48])
            merged = dataclasses.replace(ChainSettings(
                confirmations=found.confirmations, unlock_confirmations=found.unlock_confirmations, fee=found.fee,
                min_dep=found.min_dep, min_wd=found.min_wd, max_wd=found.max_wd, block_seconds=found.block_seconds,
                can_dep=found.can_dep, can_wd=found.can_wd), **changes)
            validate_settings(merged, scale=currency(conn, found.ccy).scale)
            return update_chain(conn, chain, changes)

    # -- the simulator: deposits ----------------------------------------------------------

    def send_deposit(self, req: SendDeposit) -> Deposit:
        """An on-chain deposit to one of our deposit addresses: state 0 (waiting for
        confirmation), credited at the chain's confirmation count, successful at its unlock count,
        as the clock advances. The same ``txId`` sent again to the same address returns the first
        deposit (a different amount with it is a conflict). A user frozen for deposits gets state
        12 and no credit. Sandbox only."""
        if not self.sandbox:
            raise NotAllowed("The chain simulator runs only in the sandbox")
        if req.amt <= 0:
            raise AmountNotPositive("amt")
        if len(req.tx_id) > 128 or len(req.from_addr) > 128 or len(req.tag) > 32:
            raise InvalidParameter("txId" if len(req.tx_id) > 128 else "fromAddr" if len(req.from_addr) > 128
                                   else "tag", "too long")
        with self.db.write() as conn:
            now = self.clock.now()
            found = chain_row(conn, req.ccy, req.chain)
            cur = currency(conn, found.ccy)
            if round_down(req.amt, cur.scale) != req.amt:
                raise InvalidParameter("amt", f"at most {cur.scale} decimals for {cur.ccy}")
            if not found.can_dep:
                raise InvalidParameter("chain", f"deposits on {found.chain} are suspended")
            if req.amt < found.min_dep:
                raise InvalidParameter("amt", f"below the minimum deposit of {found.chain}")
            base, tag = split_address(req.addr, found.need_tag)
            tag = req.tag or tag
            if found.need_tag and not tag:
                raise InvalidParameter("tag", f"{found.chain} deposits need the address's tag")
            if req.from_addr and not addresses.is_valid_address(found.address_format, req.from_addr):
                raise InvalidParameter("fromAddr", f"not a {found.address_format} address")
            target = conn.execute(select(deposit_addresses).where(
                deposit_addresses.c.chain == found.chain, deposit_addresses.c.addr == base,
                deposit_addresses.c.tag == (tag if found.need_tag else ""))).first()
            if target is None:
                raise NotFound("Deposit address", f"{base}{':' + tag if tag else ''} on {found.chain}")
            owner = self.accounts.get_in(conn, target.uid)
            if conn.execute(select(users.c.deleted_at).where(users.c.uid == owner.uid)).scalar_one() is not None:
                raise InvalidParameter("addr", "belongs to a deleted sub-account")
            if req.tx_id:
                prior = conn.execute(select(deposits).where(
                    deposits.c.address_id == target.id, deposits.c.tx_id == req.tx_id)).first()
                if prior is not None:
                    if prior.amt != req.amt:
                        raise Conflict("txId already sent to this address with another amount", txId=req.tx_id)
                    return deposit_view(prior, now)
            frozen = owner.frozen_for("deposit")
            dep_id = conn.execute(deposits.insert().values(
                uid=owner.uid, ccy=found.ccy, chain=found.chain, amt=req.amt, type=4, from_addr=req.from_addr,
                to_addr=base, tx_id=req.tx_id or addresses.new_tx_id(found.address_format), from_wd_id="",
                state=FROZEN if frozen else WAITING, confirmations=0, acct_type=6, created_at=now,
                address_id=target.id, tag=target.tag, from_uid=None,
                credit_confirmations=found.confirmations, unlock_confirmations=found.unlock_confirmations,
                block_seconds=found.block_seconds,
                next_at=None if frozen else due_at(now, found.confirmations, found.block_seconds),
            ).returning(deposits.c.dep_id)).scalar_one()
            row = conn.execute(select(deposits).where(deposits.c.dep_id == dep_id)).one()
            log.info("chain_deposit_sent", dep_id=dep_id, chain=found.chain, state=row.state)
            return deposit_view(row, now)

    def deposit(self, dep_id: str) -> Deposit:
        """One deposit, confirmations as of now (operator)."""
        found = row_id(dep_id)
        if found is None:
            raise NotFound("Deposit", dep_id[:20])
        with self.db.read() as conn:
            now = self.clock.now()
            row = conn.execute(select(deposits).where(deposits.c.dep_id == found)).first()
        if row is None:
            raise NotFound("Deposit", dep_id)
        return deposit_view(row, now)

    # -- EventSource ----------------------------------------------------------------------

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            due: dt.datetime | None = conn.execute(_NEXT_DUE).scalar_one_or_none()
        return due

    def run_due(self, until: dt.datetime) -> int:
        """Move every deposit due by ``until``, earliest first, each in its own transaction."""
        done = 0
        skipped: set[tuple[int, int]] = set()
        while True:
            with self.db.query() as conn:
                q = (select(deposits.c.dep_id, deposits.c.state, deposits.c.next_at)
                     .where(deposits.c.state.in_(PENDING_STATES), deposits.c.next_at <= until)
                     .order_by(deposits.c.next_at, deposits.c.dep_id).limit(len(skipped) + 1))
                rows = [r for r in conn.execute(q) if (r.dep_id, r.state) not in skipped]
            if not rows:
                return done
            r = rows[0]
            if self._advance(r.dep_id, r.state, r.next_at):
                done += 1
            else:  # another process moved it; never look at this (id, state) again in this call
                skipped.add((r.dep_id, r.state))

    def _advance(self, dep_id: int, state: int, due: dt.datetime) -> bool:
        """One transition, claimed by a conditional update; False if another process did it."""
        with self.db.write() as conn:
            row = conn.execute(select(deposits).where(deposits.c.dep_id == dep_id)).one()
            if row.state != state or row.next_at != due:
                return False
            if state == CREDITED:
                return self._claim(conn, row, SUCCESS, None, completed_at=due)
            owner = self.accounts.get_in(conn, row.uid)
            step = credit_step(created_at=row.created_at, unlock=row.unlock_confirmations,
                               block_seconds=row.block_seconds, due=due, frozen=owner.frozen_for("deposit"))
            if step.state == FROZEN:
                return self._claim(conn, row, FROZEN, None)
            acct_type = conn.execute(select(users.c.deposit_to).where(users.c.uid == row.uid)).scalar_one()
            if not self._claim(conn, row, step.state, step.next_at, credited_at=due, acct_type=acct_type,
                               confirmations=row.unlock_confirmations if step.state == SUCCESS
                               else row.credit_confirmations, completed_at=due if step.state == SUCCESS else None):
                return False
            posted = self.ledger.post(
                conn, type="deposit", ref=str(dep_id), idempotency_key=f"deposit:credit:{dep_id}", at=due,
                uid=row.uid, legs=[Leg(AccountRef.system("custody", row.ccy), -row.amt),
                                   Leg(AccountRef.user(row.uid, acct_type, row.ccy), row.amt)])
            conn.execute(deposits.update().where(deposits.c.dep_id == dep_id).values(entry_id=posted.entry_id))
        log.info("chain_deposit_credited", dep_id=dep_id, state=step.state, acct_type=acct_type)
        return True

    @staticmethod
    def _claim(conn: Connection, row: Any, state: int, next_at: dt.datetime | None, **values: Any) -> bool:
        if state == SUCCESS:
            values.setdefault("confirmations", row.unlock_confirmations)
        claimed = conn.execute(deposits.update().where(
            deposits.c.dep_id == row.dep_id, deposits.c.state == row.state, deposits.c.next_at == row.next_at,
        ).values(state=state, next_at=next_at, **values))
        return claimed.rowcount == 1

