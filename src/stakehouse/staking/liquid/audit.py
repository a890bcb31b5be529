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
from stakehouse.ledger.audit import CheckResult, money_add, money_below, money_sum
from stakehouse.money import ZERO, to_plain
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
#: The rows that break ``net + fee = gross`` or have a negative part: the database compares, exactly on both
#: (``money_add``, ``money_below``), and only those rows come back (a run has a row per holder).
_BAD_ROWS = (select(_R.product, _R.day, _R.uid, _R.gross, _R.net, _R.fee)
             .where((money_add(_R.net, _R.fee) != _R.gross) | money_below(_R.net, ZERO) | money_below(_R.fee, ZERO))
             .order_by(_R.product, _R.day, _R.uid))


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
            result.violations.append(f"{run.product} {run.day}: rows gross {to_plain(gross)} net {to_plain(net)} "
                                     f"fee {to_plain(fee)}, run gross {to_plain(run.gross)} net {to_plain(run.net)} "
                                     f"fee {to_plain(run.fee)}")
    for row in conn.execute(_BAD_ROWS):
        if row.net + row.fee != row.gross or row.net < 0 or row.fee < 0:
            result.violations.append(f"{row.product} {row.day} {row.uid}: gross {to_plain(row.gross)} "
                                     f"net {to_plain(row.net)} fee {to_plain(row.fee)}")
    return [result]


CHECKS = (backing, reward_totals)
