"""The ND rebate invariant (``trading-and-rebates.md`` §8, 2, for what is built): for each
(broker, day), what was paid equals the sum of that day's records, and every record of a paid day
points at that payout."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.tables import journal_entries, ledger_accounts, nd_rebate_records, postings
from stakehouse.ledger.audit import AuditCheck, CheckResult
from stakehouse.ledger.rules import FUNDING


def _paid_equals_records(conn: Connection) -> list[CheckResult]:
    result = CheckResult("rebates: each (broker, day) paid = the sum of its records", 0)
    days: dict[tuple[str, str], tuple[Decimal, set[int | None]]] = {}
    for r in conn.execute(select(nd_rebate_records.c.broker_uid, nd_rebate_records.c.day, nd_rebate_records.c.income,
                                 nd_rebate_records.c.entry_id)):
        total, entries = days.get((r.broker_uid, r.day), (Decimal(0), set()))
        entries.add(r.entry_id)
        days[(r.broker_uid, r.day)] = (total + r.income, entries)
    paid = {}
    for p in conn.execute(select(journal_entries.c.id, postings.c.amount, ledger_accounts.c.owner)
                          .join(postings, postings.c.entry_id == journal_entries.c.id)
                          .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
                          .where(journal_entries.c.type == "nd_rebate", ledger_accounts.c.acct_type == FUNDING)):
        paid[p.id] = p.amount
    for (broker_uid, day), (total, entries) in sorted(days.items()):
        result.checked += 1
        entry = next(iter(entries)) if len(entries) == 1 else "several"
        got = paid.get(entry, Decimal(0)) if isinstance(entry, int) else None
        if (total > 0 and got != total) or (total == 0 and entry is not None):
            result.violations.append(f"broker {broker_uid} day {day}: records {total}, paid {got} (entry {entry})")
    return [result]


CHECKS: tuple[AuditCheck, ...] = (_paid_equals_records,)
