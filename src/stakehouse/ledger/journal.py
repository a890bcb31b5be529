"""The journal: balanced, append-only entries and the cached balances they move.

:meth:`Ledger.post` is the only code in Stakehouse that changes a balance. It runs inside the
caller's transaction (one use case = one transaction), claims the idempotency key first,
locks the touched balance rows in a fixed order, refuses any overdraft of a user account,
then writes the postings and the new balances together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from stakehouse.db.dialect import dialect_insert, driver_params, driver_sql, for_update
from stakehouse.db.tables import journal_entries, ledger_accounts, postings
from stakehouse.db.types import money_from_db
from stakehouse.errors import InsufficientBalance
from stakehouse.ledger.rules import (
    AccountRef,
    Leg,
    Overdraft,
    UnbalancedEntry,
    apply_legs,
    check_balanced,
    reversal_legs,
)
from stakehouse.money import to_plain


@dataclass(frozen=True)
class Posted:
    entry_id: int
    #: False when the idempotency key had already been used: nothing was posted this time.
    created: bool


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


#: Rows per page when :meth:`Ledger.post_credits` works through its credits in Python (SQLite).
CREDIT_PAGE = 20_000


@dataclass(frozen=True)
class Credits:
    """Credits to many users' ``acct_type`` accounts in ``ccy``, given as SQL: ``select`` is a
    statement in the driver's own parameter style returning ``(uid, amount)`` rows with positive
    amounts and one row per uid, e.g. a day's rewards from a staging table."""

    select: str
    params: dict[str, Any]
    acct_type: int
    ccy: str

    def account(self, uid: str) -> AccountRef:
        return AccountRef.user(uid, self.acct_type, self.ccy)

    def _run(self, conn: Connection, body: str, **extra: Any) -> Any:
        """Run ``body`` with ``{credits}`` replaced by the credits' select."""
        sql = body.replace("{credits}", f"({self.select})")
        values = {**self.params, "c_type": self.acct_type, "c_ccy": self.ccy, **extra}
        return conn.exec_driver_sql(driver_sql(conn, sql), driver_params(conn, values))

    def total(self, conn: Connection) -> tuple[Decimal, int]:
        agg = "decsum" if conn.dialect.name == "sqlite" else "sum"
        row = self._run(conn, f"SELECT {agg}(c.amount), count(*) FROM {{credits}} c").one()
        return (money_from_db(row[0]) if row[0] is not None else Decimal(0)), int(row[1])

    def ensure_accounts(self, conn: Connection, at: dt.datetime) -> None:
        self._run(conn, f"INSERT INTO {ledger_accounts.name} (owner, uid, acct_type, ccy, allow_negative, available, "
                        "locked, updated_at) SELECT 'u:' || c.uid, c.uid, %(c_type)s, %(c_ccy)s, false, 0, 0, %(c_at)s "
                        "FROM {credits} c WHERE true ON CONFLICT (owner, acct_type, ccy) DO NOTHING", c_at=at)

    _JOIN = "a.owner = 'u:' || c.uid AND a.acct_type = %(c_type)s AND a.ccy = %(c_ccy)s"

    def uncredited(self, entry_id: int, at: dt.datetime) -> Credits:
        """These credits less those already posted by ``entry_id`` (at ``at``)."""
        return dataclasses.replace(self, select=(
            f"SELECT c.uid AS uid, c.amount AS amount FROM ({self.select}) c WHERE NOT EXISTS ("
            f"SELECT 1 FROM {ledger_accounts.name} a JOIN {postings.name} p ON p.account_id = a.id "
            f"WHERE {self._JOIN} AND p.created_at = %(c_at)s AND p.entry_id = %(c_entry)s)"),
            params={**self.params, "c_entry": entry_id, "c_at": at})

    def apply_in_database(self, conn: Connection, entry_id: int, at: dt.datetime) -> int:
        """PostgreSQL: add every credit to its account and write its posting, in one statement
        (one pass over the credits and the accounts). Credits whose account does not exist are
        left out; returns how many were applied."""
        result = self._run(
            conn, f"WITH moved AS (UPDATE {ledger_accounts.name} a SET available = a.available + c.amount, "
                  f"updated_at = %(c_at)s FROM {{credits}} c WHERE {self._JOIN} RETURNING a.id, c.amount) "
                  f"INSERT INTO {postings.name} (entry_id, account_id, bucket, ccy, amount, created_at) "
                  f"SELECT %(c_entry)s, moved.id, 'available', %(c_ccy)s, moved.amount, %(c_at)s FROM moved",
            c_entry=entry_id, c_at=at)
        return int(result.rowcount)

    def apply_in_pages(self, conn: Connection, entry_id: int, at: dt.datetime) -> int:
        """SQLite: the same as :meth:`apply_in_database`, the additions made exactly in Python, a
        page of users at a time (keyset paging on uid: no cursor stays open across the writes)."""
        values = driver_params(conn, {**self.params, "c_type": self.acct_type, "c_ccy": self.ccy, "c_at": at})
        stamp = values["c_at"]
        page = driver_sql(conn, f"SELECT c.uid, c.amount, a.id, a.available FROM ({self.select}) c "
                                f"JOIN {ledger_accounts.name} a ON {self._JOIN} "
                                "WHERE c.uid > %(c_after)s ORDER BY c.uid LIMIT %(c_page)s")
        insert = (f"INSERT INTO {postings.name} (entry_id, account_id, bucket, ccy, amount, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)")
        update = f"UPDATE {ledger_accounts.name} SET available = ?, updated_at = ? WHERE id = ?"
        raw = conn.connection.dbapi_connection
        assert raw is not None
        ccy = self.ccy
        applied = 0
        after = ""
        while True:
            rows = raw.execute(page, {**values, "c_after": after, "c_page": CREDIT_PAGE}).fetchall()
            if not rows:
                return applied
            new_postings, new_balances = [], []
            for _uid, amount, account_id, available in rows:
                amount = money_from_db(amount)
                new_postings.append((entry_id, account_id, "available", ccy, to_plain(amount), stamp))
                new_balances.append((to_plain(money_from_db(available) + amount), stamp, account_id))
            raw.executemany(insert, new_postings)
            raw.executemany(update, new_balances)
            applied += len(rows)
            after = rows[-1][0]


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
        claimed = self._claim(conn, type=type, ref=ref, idempotency_key=idempotency_key, at=at, uid=uid, memo=memo,
                              reverses_id=reverses_id)
        if claimed is None:
            return Posted(self._entry_id(conn, idempotency_key), created=False)
        self._write_legs(conn, claimed, legs, at)
        return Posted(claimed, created=True)

    @staticmethod
    def _claim(conn: Connection, *, type: str, ref: str, idempotency_key: str, at: dt.datetime, uid: str | None,
               memo: str, reverses_id: int | None) -> int | None:
        """Insert the entry row; ``None`` when the idempotency key was used before."""
        claimed: int | None = conn.execute(
            dialect_insert(conn)(journal_entries)
            .values(type=type, ref=ref, idempotency_key=idempotency_key, uid=uid, created_at=at, memo=memo,
                    reverses_id=reverses_id)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(journal_entries.c.id)
        ).scalar_one_or_none()
        return claimed

    @staticmethod
    def _entry_id(conn: Connection, idempotency_key: str) -> int:
        found: int = conn.execute(
            select(journal_entries.c.id).where(journal_entries.c.idempotency_key == idempotency_key)
        ).scalar_one()
        return found

    @staticmethod
    def _write_legs(conn: Connection, entry_id: int, legs: Sequence[Leg], at: dt.datetime) -> None:
        """Lock the touched balances in id order, refuse an overdraft, write postings and balances."""
        ids = ensure_accounts(conn, [leg.account for leg in legs], at)
        cols = ledger_accounts.c
        lock = select(cols.id, cols.available, cols.locked).where(cols.id.in_(sorted(ids.values()))).order_by(cols.id)
        current = {row.id: (row.available, row.locked) for row in conn.execute(for_update(conn, lock))}
        try:
            after = apply_legs({r: current[i] for r, i in ids.items()}, legs)
        except Overdraft as exc:
            raise InsufficientBalance(exc.account.ccy) from None

        conn.execute(
            postings.insert(),
            [
                {"entry_id": entry_id, "account_id": ids[leg.account], "bucket": leg.bucket,
                 "ccy": leg.account.ccy, "amount": leg.amount, "created_at": at}
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

    def post_credits(
        self,
        conn: Connection,
        *,
        type: str,
        ref: str,
        idempotency_key: str,
        at: dt.datetime,
        credits: Credits,
        counter_legs: Sequence[Leg],
        memo: str = "",
    ) -> Posted:
        """Post one balanced entry that credits many users at once (a daily run): every row of
        ``credits`` is a posting on a user account, ``counter_legs`` are the few other postings.

        Set-based, so that its cost stays linear in the rows and its memory flat: on PostgreSQL
        one statement updates the balances and writes the postings; on SQLite (whose money is
        text) the rows are read and written back in pages of :data:`CREDIT_PAGE`. Accounts are
        opened only for the credits that found none. The entry is checked to balance first.
        """
        total, count = credits.total(conn)
        check_balanced([*counter_legs, *([Leg(credits.account("_"), total)] if count else [])])
        claimed = self._claim(conn, type=type, ref=ref, idempotency_key=idempotency_key, at=at, uid=None,
                              memo=memo, reverses_id=None)
        if claimed is None:
            return Posted(self._entry_id(conn, idempotency_key), created=False)
        apply = Credits.apply_in_database if conn.dialect.name == "postgresql" else Credits.apply_in_pages
        applied = apply(credits, conn, claimed, at)
        if applied < count:
            # Users without such an account yet (rare: most were credited before): open theirs,
            # then credit what is left. Checking every account up front would cost a lookup per
            # credit on every run.
            rest = credits.uncredited(claimed, at)
            rest.ensure_accounts(conn, at)
            applied += apply(rest, conn, claimed, at)
        if applied != count:
            raise UnbalancedEntry(f"{count} credits, {applied} posted (one row per uid expected)")
        self._write_legs(conn, claimed, counter_legs, at)
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
