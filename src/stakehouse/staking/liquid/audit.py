"""The staking invariants of the rules (section 8), checked by the audit:

3. for each liquid product, the tokens outstanding (all users, free and locked, every account
   type) equal the staked asset held in ``s:staked_principal``, and the token's issuance
   account mirrors them;
5. for each (product, day) reward run, ``net + fee = gross`` per holder and in total, and the
   run's recorded totals match its rows.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Select, bindparam, select

from stakehouse.db.tables import ledger_accounts, staking_reward_runs, staking_rewards
from stakehouse.ledger.audit import CheckResult, money_sum
from stakehouse.money import ZERO
from stakehouse.staking.liquid.products import load_products
from stakehouse.staking.liquid.service import issuance, staked

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md).
_A = ledger_accounts.c
_R = staking_rewards.c
_HELD_BY_USERS = (select(money_sum(_A.available).label("a"), money_sum(_A.locked).label("l"))
                  .where(_A.ccy == bindparam("ccy"), _A.uid.is_not(None)))
_HELD_BY = (select(money_sum(_A.available).label("a"), money_sum(_A.locked).label("l"))
            .where(_A.owner == bindparam("owner"), _A.ccy == bindparam("ccy")))
_RUN_SUMS = (select(_R.product, _R.day, money_sum(_R.gross).label("gross"), money_sum(_R.net).label("net"),
                    money_sum(_R.fee).label("fee"))
             .group_by(_R.product, _R.day))
_RUNS = select(staking_reward_runs)
_ROWS = select(_R.product, _R.day, _R.uid, _R.gross, _R.net, _R.fee)
#: On PostgreSQL the check is made in SQL; SQLite's money is text: checked as the rows stream.
_BAD_ROWS = _ROWS.where((_R.net + _R.fee != _R.gross) | (_R.net < 0) | (_R.fee < 0))


def _sum(conn: Connection, statement: Select[Decimal, Decimal], **params: str) -> Decimal:
    row = conn.execute(statement, params).one()
    return Decimal(row.a or 0) + Decimal(row.l or 0)


def backing(conn: Connection) -> list[CheckResult]:
    result = CheckResult("liquid tokens backed 1:1 by staked principal", 0)
    for cfg in load_products(conn):
        result.checked += 1
        tokens = _sum(conn, _HELD_BY_USERS, ccy=cfg.token_ccy)
        principal = _sum(conn, _HELD_BY, owner=staked(cfg).owner, ccy=cfg.staked_ccy)
        issued = -_sum(conn, _HELD_BY, owner=issuance(cfg).owner, ccy=cfg.token_ccy)
        if not tokens == principal == issued:
            result.violations.append(f"{cfg.product}: {tokens} {cfg.token_ccy} held by users, {issued} issued, "
                                     f"{principal} {cfg.staked_ccy} staked principal")
    return [result]


def reward_totals(conn: Connection) -> list[CheckResult]:
    result = CheckResult("reward runs: net + fee = gross", 0)
    sums = {(row.product, row.day): row for row in conn.execute(_RUN_SUMS)}
    for run in conn.execute(_RUNS):
        result.checked += 1
        row = sums.get((run.product, run.day))
        gross, net, fee = (Decimal(row.gross), Decimal(row.net), Decimal(row.fee)) if row else (ZERO, ZERO, ZERO)
        if net + fee != gross or (gross, net, fee) != (run.gross, run.net, run.fee):
            result.violations.append(f"{run.product} {run.day}: rows gross {gross} net {net} fee {fee}, "
                                     f"run gross {run.gross} net {run.net} fee {run.fee}")
    for row in conn.execute(_BAD_ROWS if conn.dialect.name == "postgresql" else _ROWS):
        if row.net + row.fee != row.gross or row.net < 0 or row.fee < 0:
            result.violations.append(f"{row.product} {row.day} {row.uid}: gross {row.gross} net {row.net} "
                                     f"fee {row.fee}")
    return [result]


CHECKS = (backing, reward_totals)
