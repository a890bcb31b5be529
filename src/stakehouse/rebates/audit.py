"""The rebate invariant (``trading-and-rebates.md`` §8, 2): for each (broker, day) run, what was
paid equals the sum of that day's records, every record of a paid day points at that payout, and
every detail file's rebates for a day equal that day's records."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from stakehouse.broker.access import broker_sub_accounts
from stakehouse.db.tables import (
    fd_rebate_records,
    journal_entries,
    ledger_accounts,
    nd_rebate_records,
    postings,
    rebate_files,
)
from stakehouse.ledger.audit import AuditCheck, CheckResult
from stakehouse.ledger.rules import FUNDING
from stakehouse.money import ZERO
from stakehouse.rebates.files import FileStore, read_rebates

Key = tuple[str, ...]


# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md).
_PAYOUTS = (select(journal_entries.c.id, postings.c.amount)
            .join(postings, postings.c.entry_id == journal_entries.c.id)
            .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
            .where(journal_entries.c.type == bindparam("entry_type"), ledger_accounts.c.acct_type == FUNDING))
_ND_RECORDS = select(nd_rebate_records.c.broker_uid, nd_rebate_records.c.day, nd_rebate_records.c.income,
                     nd_rebate_records.c.entry_id)
_FD_RECORDS = select(fd_rebate_records.c.broker_uid, fd_rebate_records.c.broker_type, fd_rebate_records.c.day,
                     fd_rebate_records.c.broker_rebate, fd_rebate_records.c.user_rebate, fd_rebate_records.c.entry_id)


def _paid(conn: Connection, entry_type: str) -> dict[int, Decimal]:
    """Per payout entry of ``entry_type``: what it put into users' funding accounts."""
    paid: dict[int, Decimal] = {}
    for p in conn.execute(_PAYOUTS, {"entry_type": entry_type}):
        paid[p.id] = paid.get(p.id, ZERO) + p.amount
    return paid


def _compare(result: CheckResult, days: dict[Key, tuple[Decimal, set[int | None]]], paid: dict[int, Decimal]
             ) -> None:
    for key, (total, entries) in sorted(days.items()):
        result.checked += 1
        entry = next(iter(entries)) if len(entries) == 1 else "several"
        got = paid.get(entry, ZERO) if isinstance(entry, int) else None
        if (total > 0 and got != total) or (total == 0 and entry is not None):
            result.violations.append(f"{' '.join(key)}: records {total}, paid {got} (entry {entry})")


def _paid_equals_records(conn: Connection) -> list[CheckResult]:
    nd = CheckResult("rebates: each ND (broker, day) paid = the sum of its records", 0)
    days: dict[Key, tuple[Decimal, set[int | None]]] = {}
    for r in conn.execute(_ND_RECORDS):
        total, entries = days.get((r.broker_uid, r.day), (ZERO, set()))
        entries.add(r.entry_id)
        days[(r.broker_uid, r.day)] = (total + r.income, entries)
    _compare(nd, days, _paid(conn, "nd_rebate"))
    fd = CheckResult("rebates: each FD (broker, type, day) paid = the sum of its records (broker's and users' shares)",
                     0)
    days = {}
    for g in conn.execute(_FD_RECORDS):
        total, entries = days.get((g.broker_uid, g.broker_type, g.day), (ZERO, set()))
        entries.add(g.entry_id)
        days[(g.broker_uid, g.broker_type, g.day)] = (total + g.broker_rebate + g.user_rebate, entries)
    _compare(fd, days, _paid(conn, "fd_rebate"))
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
