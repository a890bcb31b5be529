"""Withdrawals: on-chain (through the simulator's states as the clock advances) and internal
(instant, to another user of the platform), with the fee, holds and refunds in the ledger.

Money (all in the withdrawal's currency, funding account only):

* on-chain request: ``withdrawal:hold:<wdId>`` moves amt + fee from the funding account's
  available bucket to its locked bucket;
* success: ``withdrawal:success:<wdId>`` takes amt + fee out of the locked bucket, amt to
  ``s:custody`` (the coins leave the platform's wallets) and the fee to the platform's fee account;
* cancel (user, before the broadcast) or failure (operator): ``withdrawal:refund:<wdId>`` moves
  amt + fee back from locked to available;
* internal (dest 3, or an on-chain withdrawal to one of our own deposit addresses):
  ``withdrawal:internal:<wdId>`` moves amt from the sender's funding account to the receiver's
  beneficiary account (``users.deposit_to``) at once, fee 0; the receiver gets a type-3 deposit.

Every state change is one transaction with its entry. The simulator's transitions are claimed by
a conditional ``UPDATE ... WHERE state = <old> AND next_at = <due>``: whoever changes no row lost
the race and does nothing, so a transition happens exactly once however many processes run it;
the entries' idempotency keys are a second guard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from stakehouse.accounts.service import AccountService, User
from stakehouse.assets.reference import chain_row
from stakehouse.assets.rules import Chain
from stakehouse.broker.access import broker_caller, broker_sub_account, is_broker
from stakehouse.clock import Clock
from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first
from stakehouse.db.tables import chains, deposit_addresses, deposits, users, withdrawals
from stakehouse.digits import row_id
from stakehouse.errors import AccountFrozen, InvalidParameter, NotFound, Refused
from stakehouse.funding import withdrawal_rules as rules
from stakehouse.funding.addresses import EVM, eip55, needs_tag, new_tx_id, platform_address
from stakehouse.funding.deposits import ChainService
from stakehouse.funding.rules import FundingReason
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, LOCKED, AccountRef, Leg

#: The platform account that receives withdrawal fees.
FEE_ACCOUNT = "withdrawal_fees"


#: When the earliest withdrawal moves next (read on every poll of the job runner; built once:
#: "Prebuilt statements" in docs/architecture.md).
_NEXT_DUE = select(func.min(withdrawals.c.next_at)).where(withdrawals.c.next_at.is_not(None))


@dataclass(frozen=True)
class WithdrawalRequest:
    ccy: str
    amt: Decimal
    dest: int
    to_addr: str
    chain: str = ""
    area_code: str = ""
    client_id: str = ""
    to_addr_type: int | None = None
    #: The fee the client expects (ccxt sends it); ``None`` when not sent.
    fee: Decimal | None = None


@dataclass(frozen=True)
class Withdrawal:
    wd_id: str
    uid: str
    sub_name: str
    client_id: str
    ccy: str
    chain: str
    amt: Decimal
    fee: Decimal
    fee_ccy: str
    dest: int
    to_addr: str
    tag: str
    area_code: str
    to_uid: str
    state: int
    tx_id: str
    confirmations: int
    required_confirmations: int
    block_seconds: int
    next_at: dt.datetime | None
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    broadcast_at: dt.datetime | None
    completed_at: dt.datetime | None

    @property
    def to_addr_type(self) -> int:
        return rules.to_addr_type(self.dest, self.to_addr)

    @property
    def internal(self) -> bool:
        """Settled inside the platform (no transaction on chain)."""
        return self.to_uid != ""


@dataclass(frozen=True)
class WithdrawalQuery:
    ccy: str = ""
    wd_id: str = ""
    client_id: str = ""
    tx_id: str = ""
    type: int | None = None
    state: int | None = None
    after: dt.datetime | None = None
    before: dt.datetime | None = None
    limit: int = 100


def _withdrawal(r: Any) -> Withdrawal:
    return Withdrawal(
        wd_id=str(r.wd_id), uid=r.uid, sub_name=r.sub_name or "", client_id=r.client_id or "", ccy=r.ccy,
        chain=r.chain, amt=r.amt, fee=r.fee, fee_ccy=r.fee_ccy, dest=r.dest, to_addr=r.to_addr, tag=r.tag,
        area_code=r.area_code, to_uid=r.to_uid or "", state=r.state, tx_id=r.tx_id, confirmations=r.confirmations,
        required_confirmations=r.required_confirmations, block_seconds=r.block_seconds, next_at=r.next_at,
        note=r.note, created_at=r.created_at, updated_at=r.updated_at, broadcast_at=r.broadcast_at,
        completed_at=r.completed_at)


def _rows() -> Any:
    """Withdrawals with the withdrawing user's sub-account name."""
    return select(withdrawals, users.c.sub_name).join(users, users.c.uid == withdrawals.c.uid)


def _same_request(first: Withdrawal, req: WithdrawalRequest, to_addr: str, tag: str) -> Withdrawal:
    """A retry with the same ``clientId`` returns the first withdrawal; other data is refused."""
    if (first.ccy, first.chain, first.amt, first.dest, first.to_addr, first.tag) != (
            req.ccy, req.chain or first.chain, req.amt, req.dest, to_addr, tag):
        raise InvalidParameter("clientId", "already used for a different withdrawal")
    return first


@dataclass(frozen=True)
class _Receiver:
    """Where an internal settlement lands: the user, its beneficiary account type, and the
    deposit address it was sent to (on-chain to one of ours) if any."""

    uid: str
    acct_type: int
    address_id: int | None = None


class WithdrawalService:
    name = "chain_withdrawals"

    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService,
                 chain: ChainService, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.chain = chain
        self.review_seconds = settings.withdrawal_review_seconds

    # -- who may withdraw -------------------------------------------------------------------

    def _check_sender(self, conn: Connection, user: User) -> None:
        if user.env == "demo":
            raise Refused(FundingReason.NOT_IN_DEMO, "Withdrawals are unavailable in demo trading")
        if user.is_sub and not is_broker(conn, user.group_uid):
            raise Refused(FundingReason.SUB_ACCOUNT_NO_WITHDRAWAL, "Only sub-accounts of an ND broker can withdraw")
        if user.frozen_for("withdrawal"):
            raise AccountFrozen(user.uid, "withdrawal")

    def _receiver(self, conn: Connection, sender: User, *, uid: str = "", sub_name: str = "",
                  address_id: int | None = None) -> _Receiver:
        """Another live user of the platform that can receive deposits (a master or an ND broker's
        sub-account, not deleted, not the sender)."""
        q = select(users)
        q = q.where(users.c.uid == uid) if uid else q.where(users.c.sub_name == sub_name)
        row = conn.execute(q).first()
        if (row is None or row.uid == sender.uid or row.env != sender.env or row.deleted_at is not None
                or (row.level > 0 and not is_broker(conn, row.master_uid))):
            raise Refused(FundingReason.BAD_INTERNAL_ADDRESS, "The internal transfer address is illegal: it must name "
                          "another user of the platform")
        receiver = self.accounts.get_in(conn, row.uid)
        if receiver.frozen_for("deposit"):
            raise AccountFrozen(receiver.uid, "deposit")
        return _Receiver(row.uid, row.deposit_to, address_id)

    # -- requests ---------------------------------------------------------------------------

    def _own_address(self, conn: Connection, chain: Chain, addr: str, tag: str) -> int | None:
        """The id of our deposit address ``addr`` (+``tag``) on ``chain``, if it is one."""
        c = deposit_addresses.c
        found: int | None = conn.execute(select(c.id).where(
            c.chain == chain.chain, c.addr == addr, c.tag == tag)).scalar_one_or_none()
        if found is None and needs_tag(chain.address_format) and addr == platform_address(chain.address_format):
            raise InvalidParameter("toAddr", "this tag names no deposit address of the platform")
        return found

    def withdraw(self, uid: str, req: WithdrawalRequest) -> Withdrawal:
        """Request a withdrawal from the funding account. A retry with the same ``clientId``
        returns the first withdrawal (and changes nothing)."""
        if req.dest not in rules.DESTINATIONS:
            raise InvalidParameter("dest", "3 (internal) or 4 (on chain)")
        with self.db.write() as conn:
            now = self.clock.now()  # inside the transaction: after the ledger barrier
            user = self.accounts.get_in(conn, uid)
            self._check_sender(conn, user)
            chain = chain_row(conn, req.ccy, req.chain)
            to_addr, tag = self._destination(chain, req)
            if req.client_id:
                existing = conn.execute(_rows().where(withdrawals.c.uid == uid,
                                                      withdrawals.c.client_id == req.client_id)).first()
                if existing is not None:
                    return _same_request(_withdrawal(existing), req, to_addr, tag)
            rules.check_chain(chain, req.dest)
            rules.check_amount(chain, req.amt, req.dest)
            rules.check_sent_fee(chain, req.dest, req.fee)
            receiver = self._settled_inside(conn, user, chain, req, to_addr, tag)
            on_chain = receiver is None
            fee = rules.withdrawal_fee(chain, req.dest) if on_chain else Decimal(0)
            wd_id = conn.execute(
                dialect_insert(conn)(withdrawals).values(
                    uid=uid, client_id=req.client_id or None, ccy=chain.ccy, chain=chain.chain, amt=req.amt, fee=fee,
                    fee_ccy=chain.ccy, dest=req.dest, to_addr=to_addr, tag=tag, area_code=req.area_code,
                    to_uid=receiver.uid if receiver else None,
                    state=rules.WAITING if on_chain else rules.SUCCESS, tx_id="", confirmations=0,
                    required_confirmations=chain.confirmations if on_chain else 0,
                    block_seconds=chain.block_seconds if on_chain else 0,
                    next_at=rules.review_due(now, self.review_seconds) if on_chain else None, note="",
                    created_at=now, updated_at=now, completed_at=None if on_chain else now)
                .on_conflict_do_nothing()
                .returning(withdrawals.c.wd_id)
            ).scalar_one_or_none()
            if wd_id is None:  # a concurrent retry with the same clientId won
                first = conn.execute(_rows().where(withdrawals.c.uid == uid,
                                                   withdrawals.c.client_id == req.client_id)).one()
                return _same_request(_withdrawal(first), req, to_addr, tag)
            if receiver is None:
                self._hold(conn, uid, chain.ccy, req.amt + fee, wd_id, now)
            else:
                self._settle_inside(conn, user, receiver, chain, req.amt, wd_id, to_addr, tag, now)
            return self._get(conn, wd_id)

    @staticmethod
    def _destination(chain: Chain, req: WithdrawalRequest) -> tuple[str, str]:
        """(address as stored, tag): a checked address (EIP-55 form on EVM chains) and tag on
        chain; the uid or sub-account name as given for an internal withdrawal."""
        rules.check_addr_type(req.dest, req.to_addr_type)
        if req.dest == rules.INTERNAL:
            rules.internal_target(req.to_addr, req.to_addr_type)
            return req.to_addr, ""
        addr, tag = rules.split_to_addr(req.to_addr)
        rules.check_address(chain, addr)
        tag = rules.check_tag(chain, tag)
        if chain.address_format == EVM:
            addr = eip55(addr[2:])
        return addr, tag

    def _settled_inside(self, conn: Connection, user: User, chain: Chain, req: WithdrawalRequest,
                        to_addr: str, tag: str) -> _Receiver | None:
        """The receiver when the withdrawal stays inside the platform (dest 3, or an on-chain
        withdrawal to one of our deposit addresses); ``None`` for a real on-chain withdrawal."""
        if req.dest == rules.INTERNAL:
            target = rules.internal_target(req.to_addr, req.to_addr_type)
            return self._receiver(conn, user, uid=target.uid, sub_name=target.sub_name)
        address_id = self._own_address(conn, chain, to_addr, tag)
        if address_id is None:
            return None
        owner = conn.execute(select(deposit_addresses.c.uid).where(deposit_addresses.c.id == address_id)).scalar_one()
        return self._receiver(conn, user, uid=owner, address_id=address_id)

    def _hold(self, conn: Connection, uid: str, ccy: str, total: Decimal, wd_id: int, now: dt.datetime) -> None:
        posted = self.ledger.post(
            conn, type="withdrawal_hold", ref=str(wd_id), idempotency_key=f"withdrawal:hold:{wd_id}", at=now, uid=uid,
            legs=[Leg(AccountRef.user(uid, FUNDING, ccy), -total),
                  Leg(AccountRef.user(uid, FUNDING, ccy), total, LOCKED)])
        conn.execute(update(withdrawals).where(withdrawals.c.wd_id == wd_id).values(hold_entry_id=posted.entry_id))

    def _settle_inside(self, conn: Connection, sender: User, receiver: _Receiver, chain: Chain, amt: Decimal,
                       wd_id: int, to_addr: str, tag: str, now: dt.datetime) -> None:
        posted = self.ledger.post(
            conn, type="withdrawal_internal", ref=str(wd_id), idempotency_key=f"withdrawal:internal:{wd_id}", at=now,
            uid=sender.uid,
            legs=[Leg(AccountRef.user(sender.uid, FUNDING, chain.ccy), -amt),
                  Leg(AccountRef.user(receiver.uid, receiver.acct_type, chain.ccy), amt)])
        conn.execute(update(withdrawals).where(withdrawals.c.wd_id == wd_id).values(final_entry_id=posted.entry_id))
        conn.execute(deposits.insert().values(
            uid=receiver.uid, ccy=chain.ccy, chain=chain.chain, amt=amt, type=3, from_addr=sender.uid, to_addr=to_addr,
            tx_id="", from_wd_id=str(wd_id), state=2, confirmations=0, acct_type=receiver.acct_type,
            entry_id=posted.entry_id, created_at=now, address_id=receiver.address_id, tag=tag, from_uid=sender.uid,
            credit_confirmations=0, unlock_confirmations=0, block_seconds=0, next_at=None, credited_at=now,
            completed_at=now))

    # -- cancel and fail --------------------------------------------------------------------

    def cancel(self, uid: str, wd_id: str) -> Withdrawal:
        """The user cancels a withdrawal before it is broadcast; the funds return at once."""
        with self.db.write() as conn:
            row = self._find(conn, wd_id, uid)
            return self._stop(conn, row, rules.CANCELED, rules.CANCELLABLE, "")

    def fail(self, wd_id: str, reason: str) -> Withdrawal:
        """The operator fails a withdrawal that has not succeeded (until and while it is
        broadcasting); the funds return at once and ``reason`` becomes its ``note``."""
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise InvalidParameter("reason", "1..500 characters")
        with self.db.write() as conn:
            row = self._find(conn, wd_id, None)
            return self._stop(conn, row, rules.FAILED, rules.FAILABLE, reason)

    def _find(self, conn: Connection, wd_id: str, uid: str | None) -> Withdrawal:
        """The withdrawal ``wd_id`` of ``uid`` (``None``: of anyone, for operators)."""
        row = None
        found = row_id(wd_id)
        if found is not None:
            q = _rows().where(withdrawals.c.wd_id == found)
            if uid is not None:
                q = q.where(withdrawals.c.uid == uid)
            row = conn.execute(q).first()
        if row is None:
            if uid is None:
                raise NotFound("Withdrawal", wd_id[:20])
            raise Refused(FundingReason.WITHDRAWAL_MISSING, "Withdrawal ID does not exist")
        return _withdrawal(row)

    def _stop(self, conn: Connection, wd: Withdrawal, state: int, allowed: frozenset[int], note: str) -> Withdrawal:
        if wd.state not in allowed or wd.internal:
            raise Refused(FundingReason.NOT_CANCELLABLE, f"Withdrawal {wd.wd_id} is in state {wd.state}: operation not "
                          "allowed")
        now = self.clock.now()
        claimed = conn.execute(update(withdrawals).where(
            withdrawals.c.wd_id == int(wd.wd_id), withdrawals.c.state == wd.state).values(
            state=state, next_at=None, note=note, updated_at=now, completed_at=now)).rowcount
        if claimed == 0:  # the simulator moved it meanwhile
            raise Refused(FundingReason.NOT_CANCELLABLE, f"Withdrawal {wd.wd_id} has moved on: operation not allowed")
        total = wd.amt + wd.fee
        posted = self.ledger.post(
            conn, type="withdrawal_refund", ref=wd.wd_id, idempotency_key=f"withdrawal:refund:{wd.wd_id}", at=now,
            uid=wd.uid, memo=note,
            legs=[Leg(AccountRef.user(wd.uid, FUNDING, wd.ccy), -total, LOCKED),
                  Leg(AccountRef.user(wd.uid, FUNDING, wd.ccy), total)])
        conn.execute(update(withdrawals).where(withdrawals.c.wd_id == int(wd.wd_id)).values(
            final_entry_id=posted.entry_id))
        return self._get(conn, int(wd.wd_id))

    # -- the chain simulator (an EventSource) -----------------------------------------------

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            due: dt.datetime | None = conn.execute(_NEXT_DUE).scalar_one_or_none()
        return due

    def run_due(self, until: dt.datetime) -> int:
        """Move every withdrawal due by ``until``, earliest first, each in its own transaction,
        stamped with its due time. Returns the number of transitions this caller made."""
        done = 0
        while True:
            with self.db.query() as conn:
                row = conn.execute(
                    select(withdrawals.c.wd_id, withdrawals.c.state, withdrawals.c.next_at)
                    .where(withdrawals.c.next_at.is_not(None), withdrawals.c.next_at <= until)
                    .order_by(withdrawals.c.next_at, withdrawals.c.wd_id).limit(1)).first()
            if row is None:
                return done
            if self._step(row.wd_id, row.state, row.next_at):
                done += 1

    def _step(self, wd_id: int, state: int, due: dt.datetime) -> bool:
        """One transition, claimed by a conditional update; ``False`` when another caller made it."""
        with self.db.write() as conn:
            wd = self._get(conn, wd_id)
            step = rules.next_step(state, due, confirmations=wd.required_confirmations, block_seconds=wd.block_seconds)
            values: dict[str, Any] = {"state": step.new, "next_at": step.next_at, "updated_at": due}
            if step.new == rules.BROADCASTING:
                address_format = conn.execute(select(chains.c.address_format).where(
                    chains.c.ccy == wd.ccy, chains.c.chain == wd.chain)).scalar_one()
                values.update(tx_id=new_tx_id(address_format), broadcast_at=due)
            else:
                values.update(confirmations=wd.required_confirmations, completed_at=due)
            claimed = conn.execute(update(withdrawals).where(
                withdrawals.c.wd_id == wd_id, withdrawals.c.state == state, withdrawals.c.next_at == due,
            ).values(**values)).rowcount
            if claimed == 0:
                return False
            if step.new == rules.SUCCESS:
                total = wd.amt + wd.fee
                legs = [Leg(AccountRef.user(wd.uid, FUNDING, wd.ccy), -total, LOCKED),
                        Leg(AccountRef.system("custody", wd.ccy), wd.amt)]
                if wd.fee > 0:
                    legs.append(Leg(AccountRef.system(FEE_ACCOUNT, wd.ccy), wd.fee))
                posted = self.ledger.post(conn, type="withdrawal", ref=wd.wd_id,
                                          idempotency_key=f"withdrawal:success:{wd.wd_id}", at=due, uid=wd.uid,
                                          legs=legs)
                conn.execute(update(withdrawals).where(withdrawals.c.wd_id == wd_id).values(
                    final_entry_id=posted.entry_id))
            return True

    # -- reads ------------------------------------------------------------------------------

    @staticmethod
    def _get(conn: Connection, wd_id: int) -> Withdrawal:
        return _withdrawal(conn.execute(_rows().where(withdrawals.c.wd_id == wd_id)).one())

    def get(self, wd_id: str) -> Withdrawal:
        with self.db.read() as conn:
            return self._find(conn, wd_id, None)

    @staticmethod
    def _filtered(q: Any, query: WithdrawalQuery) -> Any:
        c = withdrawals.c
        if query.ccy:
            q = q.where(c.ccy == query.ccy)
        if query.wd_id:
            q = q.where(c.wd_id == (row_id(query.wd_id) or -1))
        if query.client_id:
            q = q.where(c.client_id == query.client_id)
        if query.tx_id:
            q = q.where(c.tx_id == query.tx_id)
        if query.type is not None:
            q = q.where(c.dest == query.type)
        if query.state is not None:
            q = q.where(c.state == query.state)
        return newest_first(q, c.created_at, c.wd_id, after=query.after, before=query.before, limit=query.limit)

    def history(self, uid: str, query: WithdrawalQuery) -> list[Withdrawal]:
        """A user's own withdrawals, newest first."""
        with self.db.read() as conn:
            return [_withdrawal(r) for r in conn.execute(self._filtered(_rows().where(withdrawals.c.uid == uid),
                                                                        query))]

    def broker_history(self, broker_uid: str, sub_name: str, query: WithdrawalQuery) -> list[Withdrawal]:
        """The withdrawals of an ND broker's sub-accounts (both levels; deleted ones keep their
        history), or of the live one named ``sub_name`` (else ``sub_account_missing``)."""
        with self.db.read() as conn:
            broker_caller(conn, broker_uid)
            q = _rows().where(users.c.master_uid == broker_uid)
            if sub_name:
                q = q.where(withdrawals.c.uid == broker_sub_account(conn, broker_uid, sub_name).uid)
            return [_withdrawal(r) for r in conn.execute(self._filtered(q, query))]

    def list_all(self, *, uid: str = "", state: int | None = None, limit: int = 100) -> list[Withdrawal]:
        """Operators: every withdrawal (of one user), newest first."""
        q = _rows()
        if uid:
            self.accounts.get(uid)
            q = q.where(withdrawals.c.uid == uid)
        if state is not None:
            q = q.where(withdrawals.c.state == state)
        q = q.order_by(withdrawals.c.created_at.desc(), withdrawals.c.wd_id.desc()).limit(min(max(limit, 1), 1000))
        with self.db.read() as conn:
            return [_withdrawal(r) for r in conn.execute(q)]
