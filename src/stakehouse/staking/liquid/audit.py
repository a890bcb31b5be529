"""The staking invariants of the rules (section 8), checked by the audit:

3. for each liquid product, the tokens outstanding (all users, free and locked, every account
   type) equal the staked asset held in ``s:staked_principal``, and the token's issuance
   account mirrors them;
5. for each (product, day) reward run, ``net + fee = gross`` per holder and in total, and the
   run's recorded totals match its rows.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.tables import ledger_accounts, staking_reward_runs, staking_rewards
from stakehouse.ledger.audit import CheckResult, money_sum
from stakehouse.money import ZERO
from stakehouse.staking.liquid.products import load_products
from stakehouse.staking.liquid.service import issuance, staked


def _sum(conn: Connection, *where: object) -> Decimal:
    c = ledger_accounts.c
    total = ZERO
    for r in conn.execute(select(money_sum(conn, c.available).label("a"), money_sum(conn, c.locked).label("l"))
                          .where(*where)):  # type: ignore[arg-type]
        total += Decimal(r.a or 0) + Decimal(r.l or 0)
    return total


def backing(conn: Connection) -> list[CheckResult]:
    result = CheckResult("liquid tokens backed 1:1 by staked principal", 0)
    c = ledger_accounts.c
    for cfg in load_products(conn):
        result.checked += 1
        tokens = _sum(conn, c.ccy == cfg.token_ccy, c.uid.is_not(None))
        principal = _sum(conn, c.owner == staked(cfg).owner, c.ccy == cfg.staked_ccy)
        issued = -_sum(conn, c.owner == issuance(cfg).owner, c.ccy == cfg.token_ccy)
        if not tokens == principal == issued:
            result.violations.append(f"{cfg.product}: {tokens} {cfg.token_ccy} held by users, {issued} issued, "
                                     f"{principal} {cfg.staked_ccy} staked principal")
    return [result]


def reward_totals(conn: Connection) -> list[CheckResult]:
    result = CheckResult("reward runs: net + fee = gross", 0)
    r = staking_rewards.c
    sums = {
        (row.product, row.day): row
        for row in conn.execute(select(r.product, r.day, money_sum(conn, r.gross).label("gross"),
                                       money_sum(conn, r.net).label("net"), money_sum(conn, r.fee).label("fee"))
                                .group_by(r.product, r.day))
    }
    for run in conn.execute(select(staking_reward_runs)):
        result.checked += 1
        row = sums.get((run.product, run.day))
        gross, net, fee = (Decimal(row.gross), Decimal(row.net), Decimal(row.fee)) if row else (ZERO, ZERO, ZERO)
        if net + fee != gross or (gross, net, fee) != (run.gross, run.net, run.fee):
            result.violations.append(f"{run.product} {run.day}: rows gross {gross} net {net} fee {fee}, "
                                     f"run gross {run.gross} net {run.net} fee {run.fee}")
    rows = select(r.product, r.day, r.uid, r.gross, r.net, r.fee)
    if conn.dialect.name == "postgresql":  # the check in SQL; SQLite's money is text: checked as it streams
        rows = rows.where((r.net + r.fee != r.gross) | (r.net < 0) | (r.fee < 0))
    for row in conn.execute(rows):
        if row.net + row.fee != row.gross or row.net < 0 or row.fee < 0:
            result.violations.append(f"{row.product} {row.day} {row.uid}: gross {row.gross} net {row.net} "
                                     f"fee {row.fee}")
    return [result]


CHECKS = (backing, reward_totals)
