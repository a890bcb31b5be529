"""The audit: prove the books balance.

Checks (invariants 1, 2 and 4 of the staking rules; products pass their own to :func:`run_audit`):
  * every journal entry balances per currency and has at least two postings;
  * every posting's currency is its account's currency;
  * every cached balance equals the sum of its postings;
  * no user balance is negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from stakehouse.db.tables import journal_entries, ledger_accounts, postings
from stakehouse.db.types import Money


@dataclass
class CheckResult:
    name: str
    checked: int
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class AuditReport:
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "checked": c.checked, "ok": c.ok, "violations": c.violations[:100],
                 "violationCount": len(c.violations)}
                for c in self.checks
            ],
        }


def money_sum(conn: Connection, column: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    """An exact SUM on both databases (SQLite keeps money as text; ``decsum`` adds it exactly)."""
    if conn.dialect.name == "sqlite":
        return func.decsum(column, type_=Money)
    return func.sum(column, type_=Money)


def _entries_balance(conn: Connection) -> CheckResult:
    total = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
    result = CheckResult("entries balance per currency", total)
    per_ccy = (
        select(postings.c.entry_id, postings.c.ccy, money_sum(conn, postings.c.amount).label("total"))
        .group_by(postings.c.entry_id, postings.c.ccy)
    )
    for row in conn.execute(per_ccy):
        if Decimal(row.total) != 0:
            result.violations.append(f"entry {row.entry_id} is off by {row.total} {row.ccy}")
    thin = (
        select(journal_entries.c.id, func.count(postings.c.id).label("n"))
        .select_from(journal_entries.outerjoin(postings, postings.c.entry_id == journal_entries.c.id))
        .group_by(journal_entries.c.id)
        .having(func.count(postings.c.id) < 2)
    )
    for row in conn.execute(thin):
        result.violations.append(f"entry {row.id} has {row.n} postings")
    return result


def _posting_currency(conn: Connection) -> CheckResult:
    total = conn.execute(select(func.count()).select_from(postings)).scalar_one()
    result = CheckResult("postings in their account's currency", total)
    rows = conn.execute(
        select(postings.c.id, postings.c.ccy, ledger_accounts.c.ccy.label("account_ccy"))
        .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
        .where(postings.c.ccy != ledger_accounts.c.ccy)
    )
    for row in rows:
        result.violations.append(f"posting {row.id} in {row.ccy} on a {row.account_ccy} account")
    return result


def _balances(conn: Connection) -> list[CheckResult]:
    sums: dict[tuple[int, str], Decimal] = {}
    for row in conn.execute(
        select(postings.c.account_id, postings.c.bucket, money_sum(conn, postings.c.amount).label("total"))
        .group_by(postings.c.account_id, postings.c.bucket)
    ):
        sums[(row.account_id, row.bucket)] = Decimal(row.total)
    cached = CheckResult("cached balances equal the sum of postings", 0)
    negative = CheckResult("no negative user balance", 0)
    for acct in conn.execute(select(ledger_accounts).order_by(ledger_accounts.c.id)):
        cached.checked += 1
        for bucket, value in (("available", acct.available), ("locked", acct.locked)):
            expected = sums.get((acct.id, bucket), Decimal(0))
            if value != expected:
                cached.violations.append(
                    f"{acct.owner} type {acct.acct_type} {acct.ccy} {bucket}: cached {value}, postings {expected}"
                )
        if not acct.allow_negative:
            negative.checked += 1
            if acct.available < 0 or acct.locked < 0:
                negative.violations.append(
                    f"{acct.owner} type {acct.acct_type} {acct.ccy}: available {acct.available}, locked {acct.locked}"
                )
    return [cached, negative]


#: A product's own invariants (e.g. liquid tokens fully backed), run after the ledger's.
AuditCheck = Callable[[Connection], list[CheckResult]]


def run_audit(conn: Connection, extra: Sequence[AuditCheck] = ()) -> AuditReport:
    checks = [_entries_balance(conn), _posting_currency(conn), *_balances(conn)]
    for check in extra:
        checks.extend(check(conn))
    return AuditReport(checks)


__all__ = ["AuditCheck", "AuditReport", "CheckResult", "money_sum", "run_audit"]
