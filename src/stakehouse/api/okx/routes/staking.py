"""ETH and SOL liquid staking: ``/api/v5/finance/staking-defi/{eth|sol}/...`` (seeds 000 and 001).

The two products share every handler; only the product-info shape differs (ETH: an array,
SOL: an object with ``fastRedemptionAvail``), as documented.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.money import fmt
from stakehouse.staking.liquid.service import ORDER_STATUSES, ORDER_TYPES, HistoryQuery, Order
from stakehouse.staking.rules import RATE_SCALE

Handler = Callable[[Call], Any]


def _ms(moment: Any) -> str:
    return str(to_ms(moment)) if moment is not None else ""


def order_out(o: Order) -> dict[str, str]:
    return {"ordId": o.ord_id, "type": o.type, "amt": fmt(o.amt), "redeemingAmt": fmt(o.redeeming_amt),
            "status": o.status, "requestTime": _ms(o.request_time), "completedTime": _ms(o.completed_time),
            "estCompletedTime": _ms(o.est_completed_time)}


def product_info(product: str) -> Handler:
    def handle(call: Call) -> Any:
        cfg = call.services.staking.product(product)
        if product == "SOL":  # SOL's documented reply is an object, not an array
            avail = call.services.staking.fast_allowance_left(call.caller.uid, product)
            return {"fastRedemptionDailyLimit": fmt(cfg.fast_redemption_daily_limit),
                    "fastRedemptionAvail": fmt(avail)}
        return [{"fastRedemptionDailyLimit": fmt(cfg.fast_redemption_daily_limit)}]

    return handle


def purchase(product: str) -> Handler:
    """Body ``{"amt": "..."}``, reply ``[]`` (as documented)."""

    def handle(call: Call) -> list[Any]:
        call.services.staking.purchase(call.caller.uid, product, _amount(call))
        return []

    return handle


def redeem(product: str) -> Handler:
    """Body ``{"amt": "..."}``, reply ``[]`` (as documented)."""

    def handle(call: Call) -> list[Any]:
        call.services.staking.redeem(call.caller.uid, product, _amount(call))
        return []

    return handle


def _amount(call: Call) -> Decimal:
    return call.params.amount("amt", max_amount=call.services.settings.max_amount)


def cancel_redeem(product: str) -> Handler:
    def handle(call: Call) -> list[dict[str, str]]:
        ord_id = call.params.text("ordId", required=True, max_len=20)
        order = call.services.staking.cancel(call.caller.uid, product, ord_id)
        return [{"ordId": order.ord_id}]

    return handle


def balance(product: str) -> Handler:
    def handle(call: Call) -> list[dict[str, str]]:
        found = call.services.staking.balance(call.caller.uid, product)
        if found is None:
            return []
        return [{"ccy": found.ccy, "amt": fmt(found.amt), "latestInterestAccrual": fmt(found.latest_accrual),
                 "totalInterestAccrual": fmt(found.total_accrual), "ts": _ms(call.services.clock.now())}]

    return handle


def history(product: str) -> Handler:
    def handle(call: Call) -> list[dict[str, str]]:
        p = call.params
        query = HistoryQuery(type=p.choice("type", ORDER_TYPES), status=p.choice("status", ORDER_STATUSES),
                             after=p.ms_time("after"), before=p.ms_time("before"), limit=p.limit())
        return [order_out(o) for o in call.services.staking.history(call.caller.uid, product, query)]

    return handle


def apy_history(product: str) -> Handler:
    def handle(call: Call) -> list[dict[str, str]]:
        days = call.params.integer("days", lo=1, hi=365)
        return [{"rate": fmt(rate, RATE_SCALE), "ts": _ms(start)}
                for start, rate in call.services.staking.apy_history(product, days)]

    return handle


#: Route-specific codes: a short balance is 51736, a frozen user 51738, an unknown order 51603.
STAKING_ERRORS: dict[type[dom.DomainError], str] = {
    dom.InsufficientBalance: "51736",
    dom.AccountFrozen: "51738",
    dom.NotFound: "51603",
}


def _routes(product: str) -> list[Route]:
    base = f"/finance/staking-defi/{product.lower()}"
    return [
        Route("GET", f"{base}/product-info", product_info(product), "read", Limit(3, 1, "uid")),
        Route("POST", f"{base}/purchase", purchase(product), "trade",
              Limit(2, 1, "uid"), STAKING_ERRORS),
        Route("POST", f"{base}/redeem", redeem(product), "trade",
              Limit(2, 1, "uid"), STAKING_ERRORS),
        Route("POST", f"{base}/cancel-redeem", cancel_redeem(product), "trade", Limit(2, 1, "uid"), STAKING_ERRORS),
        Route("GET", f"{base}/balance", balance(product), "read", Limit(6, 1, "uid")),
        Route("GET", f"{base}/purchase-redeem-history", history(product), "read", Limit(6, 1, "uid")),
        Route("GET", f"{base}/apy-history", apy_history(product), None, Limit(6, 1, "ip")),
    ]


ROUTES = [*_routes("ETH"), *_routes("SOL")]
