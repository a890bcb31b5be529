"""The spot market's invariants (``trading-and-rebates.md`` §8, 1, 3 and 4), for the audit."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.tables import contract_credits, fills, ledger_accounts, orders
from stakehouse.ledger.audit import AuditCheck, CheckResult
from stakehouse.ledger.rules import TRADING

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md).
_FILL_FEES = select(fills.c.trade_id, fills.c.fee_ccy, fills.c.fee, fills.c.base_fee, fills.c.markup_fee,
                    fills.c.credit_fee)
_FEE_ACCOUNTS = (select(ledger_accounts.c.owner, ledger_accounts.c.ccy, ledger_accounts.c.available)
                 .where(ledger_accounts.c.owner.in_(["s:trading_fees", "s:broker_markup", "s:fee_credits"])))
_ORDER_HOLDS = select(orders.c.uid, orders.c.lock_ccy, orders.c.locked, orders.c.state, orders.c.ord_id)
_TRADING_LOCKED = (select(ledger_accounts.c.owner, ledger_accounts.c.ccy, ledger_accounts.c.locked)
                   .where(ledger_accounts.c.acct_type == TRADING))
_CREDITS = select(contract_credits.c.credit_id, contract_credits.c.amt, contract_credits.c.used)


def _fees(conn: Connection) -> list[CheckResult]:
    """1. Every fill's fee = base fee + markup, credit part within it; the fee accounts hold the
    sums of the fills (base fees in ``s:trading_fees``, markups in ``s:broker_markup``, credit-paid
    parts out of ``s:fee_credits``), per currency."""
    per_fill = CheckResult("trading: each fill's fee = base fee + markup", 0)
    sums: dict[tuple[str, str], Decimal] = {}
    for f in conn.execute(_FILL_FEES):
        per_fill.checked += 1
        if f.fee != f.base_fee + f.markup_fee or not 0 <= f.credit_fee <= f.fee:
            per_fill.violations.append(f"fill {f.trade_id}: fee {f.fee} base {f.base_fee} markup {f.markup_fee} "
                                       f"credit {f.credit_fee}")
        for name, amount in (("trading_fees", f.base_fee), ("broker_markup", f.markup_fee),
                             ("fee_credits", -f.credit_fee)):
            sums[(name, f.fee_ccy)] = sums.get((name, f.fee_ccy), Decimal(0)) + amount
    accounts = CheckResult("trading: fee accounts equal the sums of the fills", 0)
    balances = {(r.owner[2:], r.ccy): r.available for r in conn.execute(_FEE_ACCOUNTS)}
    for key in sorted(set(sums) | set(balances)):
        accounts.checked += 1
        if sums.get(key, Decimal(0)) != balances.get(key, Decimal(0)):
            accounts.violations.append(f"s:{key[0]} {key[1]}: fills {sums.get(key, 0)}, balance {balances.get(key, 0)}")
    return [per_fill, accounts]


def _locks(conn: Connection) -> list[CheckResult]:
    """3. Each account's locked trading balance equals what its open orders hold."""
    result = CheckResult("trading: locked trading balances = open orders' holds", 0)
    held: dict[tuple[str, str], Decimal] = {}
    for o in conn.execute(_ORDER_HOLDS):
        if o.state != "live" and o.locked != 0:
            result.violations.append(f"order {o.ord_id} is {o.state} but holds {o.locked} {o.lock_ccy}")
        if o.locked:
            held[(o.uid, o.lock_ccy)] = held.get((o.uid, o.lock_ccy), Decimal(0)) + o.locked
    locked = {(r.owner[2:], r.ccy): r.locked for r in conn.execute(_TRADING_LOCKED)}
    for key in sorted(set(held) | {k for k, v in locked.items() if v != 0}):
        result.checked += 1
        if held.get(key, Decimal(0)) != locked.get(key, Decimal(0)):
            result.violations.append(f"u:{key[0]} {key[1]}: orders hold {held.get(key, 0)}, "
                                     f"locked {locked.get(key, 0)}")
    return [result]


def _credits(conn: Connection) -> list[CheckResult]:
    """4. A credit's used amount is within its amount (that fees paid by credits and in money add up
    to the fees is checked per fill and per currency by the fee check)."""
    result = CheckResult("trading: credits used within their amounts", 0)
    for c in conn.execute(_CREDITS):
        result.checked += 1
        if not 0 <= c.used <= c.amt:
            result.violations.append(f"credit {c.credit_id}: used {c.used} of {c.amt}")
    return [result]


CHECKS: tuple[AuditCheck, ...] = (_fees, _locks, _credits)
