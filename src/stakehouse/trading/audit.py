"""The spot market's invariants (``trading-and-rebates.md`` §8, 1, 3 and 4), for the audit."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, func, literal, select

from stakehouse.db.tables import contract_credits, fills, ledger_accounts, orders
from stakehouse.db.types import Money
from stakehouse.ledger.audit import AuditCheck, CheckResult, money_add, money_below, money_sum
from stakehouse.ledger.rules import TRADING
from stakehouse.money import ZERO, to_plain

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md). Each returns what
# is off, not every fill or order: the database compares (exactly: ``money_add``, ``money_below``; on
# SQLite equal money is equal canonical text), and the rows it returns are compared again in Python.
_F, _O, _A, _K = fills.c, orders.c, ledger_accounts.c, contract_credits.c
_FILL_COUNT = select(func.count()).select_from(fills)
_BAD_FILLS = (select(_F.trade_id, _F.fee, _F.base_fee, _F.markup_fee, _F.credit_fee)
              .where((_F.fee != money_add(_F.base_fee, _F.markup_fee)) | money_below(_F.credit_fee, ZERO)
                     | money_below(_F.fee, _F.credit_fee))
              .order_by(_F.trade_id))
_FEE_SUMS = (select(_F.fee_ccy, money_sum(_F.base_fee).label("trading_fees"),
                    money_sum(_F.markup_fee).label("broker_markup"), money_sum(_F.credit_fee).label("fee_credits"))
             .group_by(_F.fee_ccy))
_FEE_ACCOUNTS = (select(_A.owner, _A.ccy, _A.available)
                 .where(_A.owner.in_(["s:trading_fees", "s:broker_markup", "s:fee_credits"])))
_UNDONE_HOLDS = (select(_O.ord_id, _O.state, _O.locked, _O.lock_ccy)
                 .where(_O.state != "live", _O.locked != literal(ZERO, Money())).order_by(_O.ord_id))
_HELD = (select(_O.uid, _O.lock_ccy, money_sum(_O.locked).label("held"))
         .where(_O.locked != literal(ZERO, Money())).group_by(_O.uid, _O.lock_ccy).subquery("held"))
_TRADING_COUNT = select(func.count()).select_from(ledger_accounts).where(_A.acct_type == TRADING)
_HELD_SUM = func.coalesce(_HELD.c.held, literal(ZERO, Money()), type_=Money())
#: Trading accounts whose lock is not what their orders hold, and holds on no trading account.
_LOCKS_OFF = (select(_A.owner, _A.ccy, _A.locked, _HELD_SUM.label("held"))
              .select_from(ledger_accounts.outerjoin(
                  _HELD, (_A.owner == literal("u:") + _HELD.c.uid) & (_A.ccy == _HELD.c.lock_ccy)))
              .where(_A.acct_type == TRADING, _A.locked != _HELD_SUM)
              .order_by(_A.id))
_HOLDS_OFF_BOOKS = (select(_HELD.c.uid, _HELD.c.lock_ccy, _HELD.c.held)
                    .where(~select(_A.id).where(_A.owner == literal("u:") + _HELD.c.uid, _A.acct_type == TRADING,
                                                _A.ccy == _HELD.c.lock_ccy).exists())
                    .order_by(_HELD.c.uid, _HELD.c.lock_ccy))
_CREDIT_COUNT = select(func.count()).select_from(contract_credits)
_BAD_CREDITS = (select(_K.credit_id, _K.amt, _K.used)
                .where(money_below(_K.used, ZERO) | money_below(_K.amt, _K.used)).order_by(_K.credit_id))


def _fees(conn: Connection) -> list[CheckResult]:
    """1. Every fill's fee = base fee + markup, credit part within it; the fee accounts hold the
    sums of the fills (base fees in ``s:trading_fees``, markups in ``s:broker_markup``, credit-paid
    parts out of ``s:fee_credits``), per currency."""
    per_fill = CheckResult("trading: each fill's fee = base fee + markup", conn.execute(_FILL_COUNT).scalar_one())
    for f in conn.execute(_BAD_FILLS):
        if f.fee != f.base_fee + f.markup_fee or not 0 <= f.credit_fee <= f.fee:
            per_fill.violations.append(f"fill {f.trade_id}: fee {to_plain(f.fee)} base {to_plain(f.base_fee)} "
                                       f"markup {to_plain(f.markup_fee)} credit {to_plain(f.credit_fee)}")
    sums: dict[tuple[str, str], Decimal] = {}
    for row in conn.execute(_FEE_SUMS):
        for name, sign in (("trading_fees", 1), ("broker_markup", 1), ("fee_credits", -1)):
            sums[(name, row.fee_ccy)] = sign * Decimal(row._mapping[name])
    accounts = CheckResult("trading: fee accounts equal the sums of the fills", 0)
    balances = {(r.owner[2:], r.ccy): r.available for r in conn.execute(_FEE_ACCOUNTS)}
    for key in sorted(set(sums) | set(balances)):
        accounts.checked += 1
        if sums.get(key, Decimal(0)) != balances.get(key, Decimal(0)):
            accounts.violations.append(f"s:{key[0]} {key[1]}: fills {to_plain(sums.get(key, ZERO))}, "
                                       f"balance {to_plain(balances.get(key, ZERO))}")
    return [per_fill, accounts]


def _locks(conn: Connection) -> list[CheckResult]:
    """3. Each trading account's locked balance equals what its open orders hold (``checked``: the
    trading accounts)."""
    result = CheckResult("trading: locked trading balances = open orders' holds", conn.execute(_TRADING_COUNT)
                         .scalar_one())
    for o in conn.execute(_UNDONE_HOLDS):
        if o.locked != 0:
            result.violations.append(f"order {o.ord_id} is {o.state} but holds {to_plain(o.locked)} {o.lock_ccy}")
    for r in conn.execute(_LOCKS_OFF):
        if r.locked != r.held:
            result.violations.append(f"{r.owner} {r.ccy}: orders hold {to_plain(r.held)}, locked {to_plain(r.locked)}")
    for h in conn.execute(_HOLDS_OFF_BOOKS):
        result.violations.append(f"u:{h.uid} {h.lock_ccy}: orders hold {to_plain(h.held)}, locked 0")
    return [result]


def _credits(conn: Connection) -> list[CheckResult]:
    """4. A credit's used amount is within its amount (that fees paid by credits and in money add up
    to the fees is checked per fill and per currency by the fee check)."""
    result = CheckResult("trading: credits used within their amounts", conn.execute(_CREDIT_COUNT).scalar_one())
    for c in conn.execute(_BAD_CREDITS):
        result.violations.append(f"credit {c.credit_id}: used {to_plain(c.used)} of {to_plain(c.amt)}")
    return [result]


CHECKS: tuple[AuditCheck, ...] = (_fees, _locks, _credits)
