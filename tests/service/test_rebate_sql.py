"""The daily run computes each fill's ND rebate in SQL (``runs.nd_fill_rebate_sql``): on both
databases it equals the pure rule (``rules.fill_rebate``) for amounts with up to 18 decimals,
negative markups (discounts) included."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import literal, select

from stakehouse.db.engine import Database
from stakehouse.db.types import Money
from stakehouse.rebates import rules
from stakehouse.rebates.runs import nd_fill_rebate_sql


def amounts(rng: random.Random, n: int) -> list[tuple[Decimal, Decimal, Decimal]]:
    def dec(lo: int, hi: int, places: int) -> Decimal:
        return Decimal(rng.randint(lo * 10**places, hi * 10**places)).scaleb(-places)

    out = [(Decimal("0.4"), Decimal("0.6"), Decimal("0.6")), (Decimal("0.4"), Decimal("0.5"), Decimal("-0.3")),
           (Decimal("0.4"), Decimal("0.123456789"), Decimal(0)), (Decimal(1), Decimal(0), Decimal("-0.000000001"))]
    for _ in range(n):
        out.append((dec(0, 1, rng.choice([1, 2, 4, 8])), dec(0, 10**6, rng.choice([2, 8, 12, 18])),
                    dec(-10, 10**4, rng.choice([0, 8, 18]))))
    return out


def test_the_sql_rebate_is_the_rule(backend: str, make_db: Callable[[str], str]) -> None:
    db = Database(make_db(backend))
    try:
        with db.query() as conn:
            for ratio, net, markup in amounts(random.Random(15), 300):
                got = conn.execute(select(nd_fill_rebate_sql(conn, literal(ratio, Money), literal(net, Money),
                                                             literal(markup, Money)))).scalar_one()
                assert got == rules.fill_rebate(ratio, net, markup), (ratio, net, markup, got)
    finally:
        db.engine.dispose()
