"""The journal: balanced, append-only entries and the cached balances they move.

:meth:`Ledger.post` is the only code in Stakehouse that changes a balance. It runs inside the
caller's transaction (one use case = one transaction), claims the idempotency key first,
locks the touched balance rows in a fixed order, refuses any overdraft of a user account,
then writes the postings and the new balances together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from stakehouse.db.tables import journal_entries, ledger_accounts, postings
from stakehouse.errors import InsufficientBalance
from stakehouse.ledger.rules import AccountRef, Leg, Overdraft, apply_legs, check_balanced, reversal_legs


@dataclass(frozen=True)
class Posted:
    entry_id: int
    #: False when the idempotency key had already been used: nothing was posted this time.
    created: bool


def dialect_insert(conn: Connection) -> Callable[..., Any]:
    """``INSERT`` with ``on_conflict_do_nothing`` for the connection's dialect."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _account_key(ref: AccountRef) -> tuple[str, int, str]:
    return (ref.owner, ref.acct_type, ref.ccy)


def _account_ids(conn: Connection, wanted: Sequence[AccountRef]) -> dict[AccountRef, int]:
    by_key = {_account_key(r): r for r in wanted}
    cols = ledger_accounts.c
    rows = conn.execute(
        select(cols.id, cols.owner, cols.acct_type, cols.ccy).where(
            tuple_(cols.owner, cols.acct_type, cols.ccy).in_(list(by_key))
        )
    )
    return {by_key[(row.owner, row.acct_type, row.ccy)]: row.id for row in rows}


def ensure_accounts(conn: Connection, refs: Sequence[AccountRef], now: dt.datetime) -> dict[AccountRef, int]:
    """Ids of the ledger accounts, creating missing ones at zero."""
    wanted = sorted(set(refs))
    ids = _account_ids(conn, wanted)
    missing = [r for r in wanted if r not in ids]
    if missing:
        rows = [
            {"owner": r.owner, "uid": r.uid, "acct_type": r.acct_type, "ccy": r.ccy,
             "allow_negative": r.allow_negative, "available": Decimal(0), "locked": Decimal(0), "updated_at": now}
            for r in missing
        ]
        stmt = dialect_insert(conn)(ledger_accounts).values(rows)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["owner", "acct_type", "ccy"]))
        ids = _account_ids(conn, wanted)
    return ids


class Ledger:
    def post(
        self,
        conn: Connection,
        *,
        type: str,
        ref: str,
        idempotency_key: str,
        legs: Sequence[Leg],
        at: dt.datetime,
        uid: str | None = None,
        memo: str = "",
        reverses_id: int | None = None,
    ) -> Posted:
        """Post one balanced entry in the caller's transaction.

        Returns the existing entry (``created=False``) if the idempotency key was used before.
        Raises :class:`InsufficientBalance` (and changes nothing) if a user balance would go
        negative.
        """
        check_balanced(legs)
        claimed = conn.execute(
            dialect_insert(conn)(journal_entries)
            .values(type=type, ref=ref, idempotency_key=idempotency_key, uid=uid, created_at=at, memo=memo,
                    reverses_id=reverses_id)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(journal_entries.c.id)
        ).scalar_one_or_none()
        if claimed is None:
            existing = conn.execute(
                select(journal_entries.c.id).where(journal_entries.c.idempotency_key == idempotency_key)
            ).scalar_one()
            return Posted(existing, created=False)

        ids = ensure_accounts(conn, [leg.account for leg in legs], at)
        cols = ledger_accounts.c
        lock = select(cols.id, cols.available, cols.locked).where(cols.id.in_(sorted(ids.values()))).order_by(cols.id)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update()
        current = {row.id: (row.available, row.locked) for row in conn.execute(lock)}
        try:
            after = apply_legs({r: current[i] for r, i in ids.items()}, legs)
        except Overdraft as exc:
            raise InsufficientBalance(exc.account.ccy) from None

        conn.execute(
            postings.insert(),
            [
                {"entry_id": claimed, "account_id": ids[leg.account], "bucket": leg.bucket, "ccy": leg.account.ccy,
                 "amount": leg.amount, "created_at": at}
                for leg in legs
            ],
        )
        conn.execute(
            update(ledger_accounts)
            .where(cols.id == bindparam("b_id"))
            .values(available=bindparam("b_available"), locked=bindparam("b_locked"), updated_at=at),
            [
                {"b_id": ids[r], "b_available": available, "b_locked": locked}
                for r, (available, locked) in sorted(after.items())
            ],
        )
        return Posted(claimed, created=True)

    def entry_legs(self, conn: Connection, entry_id: int) -> list[Leg]:
        cols = ledger_accounts.c
        rows = conn.execute(
            select(cols.owner, cols.acct_type, cols.ccy, postings.c.bucket, postings.c.amount)
            .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id == entry_id)
            .order_by(postings.c.id)
        )
        return [Leg(AccountRef(r.owner, r.acct_type, r.ccy), r.amount, r.bucket) for r in rows]

    def reverse(self, conn: Connection, *, entry_id: int, reason: str, at: dt.datetime) -> Posted:
        """Compensate an entry with its negation; history keeps both. Idempotent per entry."""
        original = conn.execute(select(journal_entries).where(journal_entries.c.id == entry_id)).one()
        return self.post(
            conn,
            type="reversal",
            ref=str(entry_id),
            idempotency_key=f"reversal:{entry_id}",
            legs=reversal_legs(self.entry_legs(conn, entry_id)),
            at=at,
            uid=original.uid,
            memo=reason,
            reverses_id=entry_id,
        )


@dataclass(frozen=True)
class PostingView:
    entry_id: int
    type: str
    ref: str
    memo: str
    acct_type: int
    ccy: str
    bucket: str
    amount: Decimal
    created_at: dt.datetime


def user_journal(conn: Connection, uid: str, *, limit: int = 100, before_entry: int | None = None) -> list[PostingView]:
    """A user's postings, newest first (for operators)."""
    q = (
        select(journal_entries.c.id, journal_entries.c.type, journal_entries.c.ref, journal_entries.c.memo,
               ledger_accounts.c.acct_type, postings.c.ccy, postings.c.bucket, postings.c.amount,
               postings.c.created_at)
        .join(postings, postings.c.entry_id == journal_entries.c.id)
        .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
        .where(ledger_accounts.c.owner == f"u:{uid}")
        .order_by(journal_entries.c.id.desc(), postings.c.id)
        .limit(limit)
    )
    if before_entry is not None:
        q = q.where(journal_entries.c.id < before_entry)
    return [PostingView(r.id, r.type, r.ref, r.memo, r.acct_type, r.ccy, r.bucket, r.amount, r.created_at)
            for r in conn.execute(q)]
