"""The DCD invariants (``dcd.md`` §5): the platform's book holds every open order's notional (its
balance per currency = subscriptions - payouts - markups), and every settled order paid exactly
what §1 gives for its settlement price."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.assets.reference import all_currencies
from stakehouse.db.tables import dcd_orders, dcd_products, ledger_accounts
from stakehouse.dcd import rules
from stakehouse.ledger.audit import AuditCheck, CheckResult, money_sum
from stakehouse.money import ZERO, to_plain

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md). The book's sums are
# made by the database (a row per currency); a settled order is derived again in Python, by the rule.
_D = dcd_orders.c
_SUBSCRIBED = (select(_D.notional_ccy.label("ccy"), money_sum(_D.notional).label("amount"))
               .where(_D.state != "rejected").group_by(_D.notional_ccy))
_PAID_OUT = (select(_D.sett_ccy.label("ccy"), money_sum(_D.sett_amt).label("amount"))
             .where(_D.state == "settled").group_by(_D.sett_ccy))
_MARKUPS = (select(_D.notional_ccy.label("ccy"), money_sum(_D.markup_amt).label("amount"))
            .where(_D.state == "settled").group_by(_D.notional_ccy))
_BOOK = (select(ledger_accounts.c.ccy, ledger_accounts.c.available, ledger_accounts.c.locked)
         .where(ledger_accounts.c.owner == "s:dcd_book"))
_SETTLED = (select(dcd_orders.c.ord_id, dcd_orders.c.notional, dcd_orders.c.abs_yield, dcd_orders.c.sett_price,
                   dcd_orders.c.sett_amt, dcd_orders.c.sett_ccy, dcd_products.c.opt_type, dcd_products.c.stk,
                   dcd_products.c.ccy, dcd_products.c.alt_ccy)
            .join(dcd_products, dcd_products.c.product_id == dcd_orders.c.product_id)
            .where(dcd_orders.c.state == "settled"))


def _book_holds_open_orders(conn: Connection) -> list[CheckResult]:
    result = CheckResult("dcd: the book = subscriptions - payouts - markups, per currency", 0)
    want: dict[str, Decimal] = {}
    for statement, sign in ((_SUBSCRIBED, 1), (_PAID_OUT, -1), (_MARKUPS, -1)):
        for r in conn.execute(statement):
            want[r.ccy] = want.get(r.ccy, ZERO) + sign * r.amount
    have = {r.ccy: r.available + r.locked for r in conn.execute(_BOOK)}
    for ccy in sorted(set(want) | set(have)):
        result.checked += 1
        if want.get(ccy, ZERO) != have.get(ccy, ZERO):
            result.violations.append(f"{ccy}: book {to_plain(have.get(ccy, ZERO))}, "
                                     f"orders say {to_plain(want.get(ccy, ZERO))}")
    return [result]


def _settled_orders_paid_the_rule(conn: Connection) -> list[CheckResult]:
    result = CheckResult("dcd: each settled order paid what its settlement price gives", 0)
    scales = {ccy: cur.scale for ccy, cur in all_currencies(conn).items()}
    for o in conn.execute(_SETTLED):
        result.checked += 1
        want = rules.settlement(o.opt_type, o.notional, o.abs_yield, o.stk, o.sett_price, ccy=o.ccy,
                                alt_ccy=o.alt_ccy, scales=scales)
        if (want.amount, want.ccy) != (o.sett_amt, o.sett_ccy):
            result.violations.append(f"order {o.ord_id}: paid {to_plain(o.sett_amt)} {o.sett_ccy}, the rule gives "
                                     f"{to_plain(want.amount)} {want.ccy}")
    return [result]


CHECKS: tuple[AuditCheck, ...] = (_book_holds_open_orders, _settled_orders_paid_the_rule)
