"""The audit: prove the books balance.

Checks (invariants 1, 2 and 4 of the staking rules; products pass their own to :func:`run_audit`):
  * every journal entry balances per currency and has at least two postings;
  * every posting's currency is its account's currency;
  * every cached balance equals the sum of its postings;
  * no user balance is negative.

The database compares and returns only what is off ("The audit compares in the database" in
docs/architecture.md), with the exact money constructs defined here: ``money_sum``, ``money_add``,
``money_below``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Subquery

from stakehouse.db.tables import journal_entries, ledger_accounts, postings
from stakehouse.db.types import Money
from stakehouse.money import ZERO, to_plain


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


class _MoneyBinary(FunctionElement[Any]):
    """``a OP b`` of money, exact on both databases: PostgreSQL's operator (``numeric`` is exact), an
    exact function of ``db/engine.py`` on SQLite (its operators over text go through floats, and text
    does not order as numbers do)."""

    inherit_cache = True
    #: PostgreSQL's infix operator, and SQLite's expression with ``{a}`` and ``{b}``.
    infix = ""
    sqlite = ""


class _MoneyAdd(_MoneyBinary):
    inherit_cache = True  # SQLAlchemy asks it of every class (the operator is in the class, so in the key)
    type = Money()
    name = "money_add"
    infix = "+"
    sqlite = "decadd({a}, {b})"


class _MoneyBelow(_MoneyBinary):
    inherit_cache = True
    type = Boolean()
    name = "money_below"
    infix = "<"
    sqlite = "(deccmp({a}, {b}) < 0)"


@compiles(_MoneyBinary)
def _infix(element: _MoneyBinary, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({a} {element.infix} {b})"


@compiles(_MoneyBinary, "sqlite")
def _exact(element: _MoneyBinary, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(clause, **kw) for clause in element.clauses)
    return element.sqlite.format(a=a, b=b)


def money_add(a: ColumnElement[Decimal], b: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    """An exact ``a + b`` of money on both databases (see :class:`_MoneyBinary`)."""
    return _MoneyAdd(a, b)


def money_below(a: ColumnElement[Decimal] | Decimal, b: ColumnElement[Decimal] | Decimal) -> ColumnElement[bool]:
    """Exactly ``a < b`` for money on both databases (see :class:`_MoneyBinary`); either may be a value."""
    return _MoneyBelow(*(x if isinstance(x, ColumnElement) else literal(x, Money()) for x in (a, b)))


# The audit's statements, built once ("Prebuilt statements" in docs/architecture.md; the sandbox and the
# simulation audit after every step). Each check's statement returns its violations, not the rows it
# checks: the database compares, so an audit of millions of entries and accounts moves a handful of rows
# to Python, not millions. On SQLite money is canonical text (``to_plain``: the stored values and
# ``decsum``'s), so text that differs is the only kind a difference of value can make; the few rows the
# database returns are compared again as ``Decimal`` (a non-canonical text could only add a row, never hide
# one).
_ZERO_MONEY = literal(ZERO, Money())
_ENTRY_COUNT = select(func.count()).select_from(journal_entries)
_UNBALANCED = (select(postings.c.entry_id, postings.c.ccy, money_sum(postings.c.amount).label("total"))
               .group_by(postings.c.entry_id, postings.c.ccy)
               .having(money_sum(postings.c.amount) != _ZERO_MONEY))
_THIN_ENTRIES = (select(journal_entries.c.id, func.count(postings.c.id).label("n"))
                 .select_from(journal_entries.outerjoin(postings, postings.c.entry_id == journal_entries.c.id))
                 .group_by(journal_entries.c.id)
                 .having(func.count(postings.c.id) < 2))
_POSTING_COUNT = select(func.count()).select_from(postings)
_FOREIGN_POSTINGS = (select(postings.c.id, postings.c.ccy, ledger_accounts.c.ccy.label("account_ccy"))
                     .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
                     .where(postings.c.ccy != ledger_accounts.c.ccy))
_A = ledger_accounts.c
_ACCOUNT_COUNTS = select(func.count().label("accounts"),
                         func.count().filter(_A.allow_negative.is_(False)).label("guarded"))


def _bucket_sum(bucket: str) -> Subquery:
    return (select(postings.c.account_id, money_sum(postings.c.amount).label("total"))
            .where(postings.c.bucket == bucket).group_by(postings.c.account_id).subquery(bucket))


_AV, _LK = _bucket_sum("available"), _bucket_sum("locked")
_SUMMED_AV = func.coalesce(_AV.c.total, _ZERO_MONEY, type_=Money())
_SUMMED_LK = func.coalesce(_LK.c.total, _ZERO_MONEY, type_=Money())
_ACCOUNTS_OFF = (select(_A.id, _A.owner, _A.acct_type, _A.ccy, _A.available, _A.locked,
                        _SUMMED_AV.label("summed_available"), _SUMMED_LK.label("summed_locked"))
                 .select_from(ledger_accounts.outerjoin(_AV, _AV.c.account_id == _A.id)
                              .outerjoin(_LK, _LK.c.account_id == _A.id))
                 .where((_A.available != _SUMMED_AV) | (_A.locked != _SUMMED_LK))
                 .order_by(_A.id))
_NEGATIVE = (select(_A.owner, _A.acct_type, _A.ccy, _A.available, _A.locked)
             .where(_A.allow_negative.is_(False), money_below(_A.available, ZERO) | money_below(_A.locked, ZERO))
             .order_by(_A.id))


def _entries_balance(conn: Connection) -> CheckResult:
    result = CheckResult("entries balance per currency", conn.execute(_ENTRY_COUNT).scalar_one())
    for row in conn.execute(_UNBALANCED):
        if Decimal(row.total) != 0:
            result.violations.append(f"entry {row.entry_id} is off by {to_plain(row.total)} {row.ccy}")
    for row in conn.execute(_THIN_ENTRIES):
        result.violations.append(f"entry {row.id} has {row.n} postings")
    return result


def _posting_currency(conn: Connection) -> CheckResult:
    result = CheckResult("postings in their account's currency", conn.execute(_POSTING_COUNT).scalar_one())
    for row in conn.execute(_FOREIGN_POSTINGS):
        result.violations.append(f"posting {row.id} in {row.ccy} on a {row.account_ccy} account")
    return result


def _balances(conn: Connection) -> list[CheckResult]:
    counts = conn.execute(_ACCOUNT_COUNTS).one()
    cached = CheckResult("cached balances equal the sum of postings", counts.accounts)
    negative = CheckResult("no negative user balance", counts.guarded)
    for acct in conn.execute(_ACCOUNTS_OFF):
        for bucket, value, expected in (("available", acct.available, acct.summed_available),
                                        ("locked", acct.locked, acct.summed_locked)):
            if value != expected:
                cached.violations.append(
                    f"{acct.owner} type {acct.acct_type} {acct.ccy} {bucket}: cached {to_plain(value)}, "
                    f"postings {to_plain(expected)}"
                )
    for below in conn.execute(_NEGATIVE):
        if below.available < 0 or below.locked < 0:
            negative.violations.append(
                f"{below.owner} type {below.acct_type} {below.ccy}: available {to_plain(below.available)}, "
                f"locked {to_plain(below.locked)}"
            )
    return [cached, negative]


#: A product's own invariants (e.g. liquid tokens fully backed), run after the ledger's.
AuditCheck = Callable[[Connection], list[CheckResult]]


def run_audit(conn: Connection, extra: Sequence[AuditCheck] = ()) -> AuditReport:
    checks = [_entries_balance(conn), _posting_currency(conn), *_balances(conn)]
    for check in extra:
        checks.extend(check(conn))
    return AuditReport(checks)


__all__ = ["AuditCheck", "AuditReport", "CheckResult", "money_add", "money_below", "money_sum", "run_audit"]
