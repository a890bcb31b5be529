"""Parsers and views of liquid staking for the operator's tools (admin API and CLI).

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from stakehouse import errors as dom
from stakehouse.money import fmt
from stakehouse.staking.liquid.service import Order, QueueItem
from stakehouse.staking.rules import RATE_SCALE, ProductConfig
from stakehouse.wiring import Services

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RATE = re.compile(r"^-?[0-9]{1,20}(\.[0-9]{1,40})?$")


def parse_day(text: str) -> dt.date:
    if not _DAY.match(text):
        raise dom.InvalidParameter("day", "an ISO date, e.g. 2026-01-31")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise dom.InvalidParameter("day", "an ISO date, e.g. 2026-01-31") from None


def parse_rate(text: str) -> Decimal:
    """A plain decimal (sign allowed, so that the service can refuse a negative rate by name)."""
    if not _RATE.match(text.strip()):
        raise dom.InvalidParameter("rate", 'a plain decimal APY, e.g. "0.0284" for 2.84 %')
    return Decimal(text.strip())


def _money(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def product_out(cfg: ProductConfig) -> dict[str, Any]:
    """Every config value; money (and the fee rate) as strings, ``None`` = unlimited."""
    return settings_out(cfg)


def settings_out(cfg: DataclassInstance) -> dict[str, Any]:
    """Every field of a product's settings under its rule-book name; money as strings, ``None`` =
    unlimited (shared by the liquid and the provider products)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = _money(value) if isinstance(value, Decimal) else value
    return out


def order_out(o: Order) -> dict[str, Any]:
    return {"ordId": o.ord_id, "product": o.product, "uid": o.uid, "type": o.type, "amt": fmt(o.amt),
            "redeemingAmt": _money(o.redeeming_amt), "scheduledAmt": fmt(o.scheduled_amt), "status": o.status,
            "fast": o.fast, "requestTime": o.request_time.isoformat(), "completedTime": _iso(o.completed_time),
            "estCompletedTime": _iso(o.est_completed_time), "reversalReason": o.reversal_reason}


def queue_item_out(position: int, item: QueueItem) -> dict[str, Any]:
    return {"position": position, **order_out(item.order), "unscheduled": fmt(item.unscheduled)}


def queue_out(services: Services, product: str) -> dict[str, Any]:
    staking = services.staking
    items = staking.queue(product)
    cfg = staking.product(product)
    today = staking.today()
    previous = today - dt.timedelta(days=1)
    return {"product": product, "today": today.isoformat(),
            "dailyRedemptionCap": _money(cfg.daily_redemption_cap),
            "capUsedToday": fmt(staking.cap_use(product, today)),
            "previousDay": previous.isoformat(), "capUsedPreviousDay": fmt(staking.cap_use(product, previous)),
            "unscheduledTotal": fmt(sum((i.unscheduled for i in items), Decimal(0))),
            "queue": [queue_item_out(n, item) for n, item in enumerate(items, start=1)]}


def rates_out(services: Services, product: str, days: int) -> list[dict[str, str]]:
    if not 1 <= days <= 365:
        raise dom.InvalidParameter("days", "1..365")
    return [{"day": services.calendar.day(start).isoformat(), "start": start.isoformat(),
             "rate": fmt(rate, RATE_SCALE)} for start, rate in services.staking.apy_history(product, days)]


def run_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"product": r["product"], "day": r["day"], "rate": None if r["rate"] is None else fmt(r["rate"], RATE_SCALE),
            "holders": r["holders"], "eligible": fmt(r["eligible"]), "gross": fmt(r["gross"]), "net": fmt(r["net"]),
            "fee": fmt(r["fee"]), "entryId": None if r["entry_id"] is None else str(r["entry_id"]),
            "ranAt": _iso(r["ran_at"])}


def reward_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"product": r["product"], "day": r["day"], "uid": r["uid"], "eligible": fmt(r["eligible"]),
            "gross": fmt(r["gross"]), "net": fmt(r["net"]), "fee": fmt(r["fee"])}


def publish(services: Services, product: str, day: str, rate: str) -> dict[str, str]:
    on, value = parse_day(day), parse_rate(rate)
    services.staking.publish_rate(product, on, value)
    return {"product": product, "day": on.isoformat(), "rate": fmt(value, RATE_SCALE)}


def runs_out(services: Services, product: str, limit: int) -> list[dict[str, Any]]:
    return [run_out(r) for r in services.staking.reward_runs(product, min(max(limit, 1), 1000))]


def rewards_out(services: Services, uid: str, product: str) -> list[dict[str, Any]]:
    return [reward_out(r) for r in services.staking.rewards_of(uid, product)]
