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
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

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


class _MoneySum(FunctionElement[Decimal]):
    """``SUM`` of a money column, exact on both databases: ``sum`` on PostgreSQL (``numeric``),
    ``decsum`` on SQLite (money is text there; ``decsum`` adds it exactly). The dialect is chosen
    when the statement is compiled, so a statement using it can be built once for both."""

    type = Money()
    name = "money_sum"
    inherit_cache = True


@compiles(_MoneySum)
def _sum(element: _MoneySum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(_MoneySum, "sqlite")
def _decsum(element: _MoneySum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"decsum({compiler.process(element.clauses, **kw)})"


def money_sum(column: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    """An exact SUM of a money column on both databases (see :class:`_MoneySum`)."""
    return _MoneySum(column)


# The audit's statements, built once ("Prebuilt statements" in docs/architecture.md; the sandbox and the
# simulation audit after every step).
_ENTRY_COUNT = select(func.count()).select_from(journal_entries)
_ENTRY_SUMS = (select(postings.c.entry_id, postings.c.ccy, money_sum(postings.c.amount).label("total"))
               .group_by(postings.c.entry_id, postings.c.ccy))
_THIN_ENTRIES = (select(journal_entries.c.id, func.count(postings.c.id).label("n"))
                 .select_from(journal_entries.outerjoin(postings, postings.c.entry_id == journal_entries.c.id))
                 .group_by(journal_entries.c.id)
                 .having(func.count(postings.c.id) < 2))
_POSTING_COUNT = select(func.count()).select_from(postings)
_FOREIGN_POSTINGS = (select(postings.c.id, postings.c.ccy, ledger_accounts.c.ccy.label("account_ccy"))
                     .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
                     .where(postings.c.ccy != ledger_accounts.c.ccy))
_BUCKET_SUMS = (select(postings.c.account_id, postings.c.bucket, money_sum(postings.c.amount).label("total"))
                .group_by(postings.c.account_id, postings.c.bucket))
_ACCOUNTS = select(ledger_accounts).order_by(ledger_accounts.c.id)


def _entries_balance(conn: Connection) -> CheckResult:
    result = CheckResult("entries balance per currency", conn.execute(_ENTRY_COUNT).scalar_one())
    for row in conn.execute(_ENTRY_SUMS):
        if Decimal(row.total) != 0:
            result.violations.append(f"entry {row.entry_id} is off by {row.total} {row.ccy}")
    for row in conn.execute(_THIN_ENTRIES):
        result.violations.append(f"entry {row.id} has {row.n} postings")
    return result


def _posting_currency(conn: Connection) -> CheckResult:
    result = CheckResult("postings in their account's currency", conn.execute(_POSTING_COUNT).scalar_one())
    for row in conn.execute(_FOREIGN_POSTINGS):
        result.violations.append(f"posting {row.id} in {row.ccy} on a {row.account_ccy} account")
    return result


def _balances(conn: Connection) -> list[CheckResult]:
    sums = {(row.account_id, row.bucket): Decimal(row.total) for row in conn.execute(_BUCKET_SUMS)}
    cached = CheckResult("cached balances equal the sum of postings", 0)
    negative = CheckResult("no negative user balance", 0)
    for acct in conn.execute(_ACCOUNTS):
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
