"""The rebate invariant (``trading-and-rebates.md`` §8, 2): for each (broker, day) run, what was
paid equals the sum of that day's records, every record of a paid day points at that payout, and
every detail file's rebates for a day equal that day's records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Row, Select, case, distinct, func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from stakehouse.broker.access import broker_sub_accounts
from stakehouse.db.tables import (
    fd_rebate_records,
    journal_entries,
    ledger_accounts,
    nd_rebate_records,
    postings,
    rebate_files,
)
from stakehouse.db.types import Money
from stakehouse.ledger.audit import AuditCheck, CheckResult, money_add, money_below, money_sum
from stakehouse.ledger.rules import FUNDING
from stakehouse.money import ZERO, to_plain
from stakehouse.rebates.files import FileStore, read_rebates


# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md). Records are a row per
# (broker, sub-account or user, day): the database sums them per day and compares with the payouts, and
# returns only the days that are off (on SQLite equal money is equal canonical text); Python checks those again.
def _paid(entry_type: str) -> Subquery:
    """Per payout entry of ``entry_type``: what it put into users' funding accounts."""
    return (select(postings.c.entry_id, money_sum(postings.c.amount).label("paid"))
            .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
            .where(journal_entries.c.type == entry_type, ledger_accounts.c.acct_type == FUNDING)
            .group_by(postings.c.entry_id).subquery("paid"))


def _days_off(keys: Sequence[Column[str]], amount: ColumnElement[Decimal], entry_id: ColumnElement[int],
              entry_type: str) -> tuple[Select[Any], Select[Any]]:
    """(how many days there are, the days whose records and payout disagree): a day with records paid by
    one entry must have been paid their sum if it is positive, and no entry if it is zero."""
    days = (select(*keys, money_sum(amount).label("total"), func.count(distinct(entry_id)).label("entries"),
                   (func.count() - func.count(entry_id)).label("unpaid"), func.min(entry_id).label("entry"))
            .group_by(*keys).subquery("days"))
    paid = _paid(entry_type)
    d = days.c
    several = (d.entries + case((d.unpaid > 0, 1), else_=0)) != 1
    positive, zero = money_below(ZERO, d.total), d.total == literal(ZERO, Money())
    off = (select(*(d[k.name] for k in keys), d.total, d.entries, d.unpaid, d.entry, paid.c.paid)
           .select_from(days.outerjoin(paid, paid.c.entry_id == d.entry))
           .where((several & (positive | zero))
                  | (~several & (d.entries == 0) & positive)
                  | (~several & (d.entries == 1)
                     & ((positive & (func.coalesce(paid.c.paid, literal(ZERO, Money())) != d.total)) | zero)))
           .order_by(*(d[k.name] for k in keys)))
    return select(func.count()).select_from(days), off


_N, _F = nd_rebate_records.c, fd_rebate_records.c
_ND_DAYS, _ND_OFF = _days_off((_N.broker_uid, _N.day), _N.income, _N.entry_id, "nd_rebate")
_FD_DAYS, _FD_OFF = _days_off((_F.broker_uid, _F.broker_type, _F.day), money_add(_F.broker_rebate, _F.user_rebate),
                              _F.entry_id, "fd_rebate")


def _compare(result: CheckResult, rows: Iterable[Row[Any]], width: int) -> None:
    """Each day the database found off (its first ``width`` columns are its key), checked again."""
    for r in rows:
        several = r.entries + (1 if r.unpaid else 0) != 1
        entry: int | str | None = "several" if several else r.entry
        got = (r.paid if r.paid is not None else ZERO) if isinstance(entry, int) else None
        total = r.total
        if (total > 0 and got != total) or (total == 0 and entry is not None):
            shown = to_plain(got) if got is not None else None
            result.violations.append(f"{' '.join(r[:width])}: records {to_plain(total)}, paid {shown} (entry {entry})")


def _paid_equals_records(conn: Connection) -> list[CheckResult]:
    nd = CheckResult("rebates: each ND (broker, day) paid = the sum of its records",
                     conn.execute(_ND_DAYS).scalar_one())
    _compare(nd, conn.execute(_ND_OFF), 2)
    fd = CheckResult("rebates: each FD (broker, type, day) paid = the sum of its records (broker's and users' shares)",
                     conn.execute(_FD_DAYS).scalar_one())
    _compare(fd, conn.execute(_FD_OFF), 3)
    return [nd, fd]


def files_match_records(store: FileStore) -> AuditCheck:
    """Every finished detail file: for each day it covers that was settled when it was written, the
    sum of its rows' rebates per sub-account (ND) or in all (FD) equals the records."""

    def check(conn: Connection) -> list[CheckResult]:
        result = CheckResult("rebates: each detail file's rebates per day = the day's records", 0)
        for file in conn.execute(select(rebate_files).where(rebate_files.c.state == "finished")
                                 .order_by(rebate_files.c.id)):
            result.checked += 1
            path = store.path(file.name)
            if not path.is_file():
                result.violations.append(f"file {file.name} is missing")
                continue
            got = read_rebates(path, file.kind)
            want = _file_records(conn, file)
            for key in sorted(set(got) | set(want)):
                if got.get(key, ZERO) != want.get(key, ZERO):
                    result.violations.append(f"file {file.name} {' '.join(key)}: rows {got.get(key, ZERO)}, "
                                             f"records {want.get(key, ZERO)}")
        return [result]

    return check


def _file_records(conn: Connection, file: Row[Any]) -> dict[tuple[str, str], Decimal]:
    """The records a file should add up to, keyed as :func:`read_rebates` keys its rows."""
    begin, end, finished, broker_uid = file.begin_day, file.end_day, file.finished_at, file.broker_uid
    want: dict[tuple[str, str], Decimal] = {}
    if file.kind == "nd":
        names = broker_sub_accounts(conn, broker_uid)
        c = nd_rebate_records.c
        for r in conn.execute(select(c.uid, c.day, c.income).where(
                c.broker_uid == broker_uid, c.day >= begin, c.day < end, c.rebate_time <= finished)):
            if r.income:
                key = (names.get(r.uid, ""), r.day)
                want[key] = want.get(key, ZERO) + r.income
        return want
    f = fd_rebate_records.c
    for r in conn.execute(select(f.day, f.broker_rebate, f.user_rebate).where(
            f.broker_uid == broker_uid, f.broker_type == file.broker_type, f.day >= begin, f.day < end,
            f.rebate_time <= finished)):
        if r.broker_rebate + r.user_rebate:
            want[("", r.day)] = want.get(("", r.day), ZERO) + r.broker_rebate + r.user_rebate
    return want


CHECKS: tuple[AuditCheck, ...] = (_paid_equals_records,)
#: Checks that need the files directory (installed with it).
FILE_CHECKS: tuple[Callable[[FileStore], AuditCheck], ...] = (files_match_records,)
