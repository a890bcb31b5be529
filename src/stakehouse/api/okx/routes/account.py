"""Trading account balance (the fields ccxt's fetch_balance reads)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.ledger.rules import TRADING
from stakehouse.money import fmt

#: Margin and valuation fields that have no meaning in Spot mode (acctLv 1): present as "".
_DETAIL_EMPTY = ("availEq", "isoEq", "disEq", "liab", "upl", "uplLiab", "crossLiab", "isoLiab", "mgnRatio",
                 "interest", "twap", "maxLoan", "notionalLever", "stgyEq", "isoUpl", "spotInUseAmt",
                 "clSpotInUseAmt", "maxSpotInUse", "spotIsoBal", "imr", "mmr", "smtSyncEq", "spotCopyTradingEq",
                 "openAvgPx", "accAvgPx", "spotUpl", "spotUplRatio", "totalPnl", "totalPnlRatio", "borrowFroz",
                 "rewardBal", "colRes", "colBorrAutoConversion", "frpType")
_TOP_EMPTY = ("isoEq", "adjEq", "availEq", "ordFroz", "imr", "mmr", "borrowFroz", "mgnRatio", "notionalUsd",
              "notionalUsdForBorrow", "notionalUsdForFutures", "notionalUsdForOption", "notionalUsdForSwap", "upl",
              "delta", "deltaLever", "deltaNeutralStatus")


async def get_balance(call: Call) -> list[dict[str, Any]]:
    ccys = call.params.ccy_list()
    if ccys:
        call.services.reference.require_currencies(ccys)
    rows = [b for b in await call.services.assets.read_balances(call.caller.uid, TRADING, ccys) if b.total != 0]
    # USD values from the one price book (a market's index, else the operator's price; "" for none)
    usd = await anyio.to_thread.run_sync(call.services.usd.prices_now, [b.ccy for b in rows]) if rows else {}
    details = [
        {"ccy": b.ccy, "eq": fmt(b.total), "cashBal": fmt(b.total), "availBal": fmt(b.available),
         "frozenBal": fmt(b.locked), "ordFrozen": fmt(b.locked), "fixedBal": "0", "spotBal": fmt(b.total),
         "eqUsd": fmt(b.total * usd[b.ccy]) if b.ccy in usd else "",
         "uTime": str(to_ms(b.updated_at)), **dict.fromkeys(_DETAIL_EMPTY, "")}
        for b in rows
    ]
    total = sum((b.total * usd[b.ccy] for b in rows if b.ccy in usd), Decimal(0))
    now = to_ms(max((b.updated_at for b in rows), default=call.services.clock.now()))
    return [{"uTime": str(now), "details": details, "totalEq": fmt(total), **dict.fromkeys(_TOP_EMPTY, "")}]


ROUTES = [Route("GET", "/account/balance", get_balance, "read", Limit(10, 2, "uid"))]
