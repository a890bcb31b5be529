"""Parsers and views of broker rebates (ND and FD) for the operator's tools (admin API and CLI)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stakehouse.clock import to_ms
from stakehouse.money import fmt
from stakehouse.operator.providers import parse_decimal
from stakehouse.rebates.fd import FdBroker, FdRecord
from stakehouse.rebates.service import Record
from stakehouse.wiring import Services


def settings_out(services: Services) -> dict[str, Any]:
    ratios, caps = services.rebates.settings()
    return {"ratios": {str(lv): fmt(r) for lv, r in sorted(ratios.items())},
            "monthlyCaps": {lv: fmt(c) for lv, c in sorted(caps.items())}}


def set_ratio(services: Services, level: int, ratio: str) -> dict[str, str]:
    return {"level": str(level), "ratio": fmt(services.rebates.set_ratio(level, parse_decimal("ratio", ratio)))}


def set_cap(services: Services, fee_level: str, cap: str | None) -> dict[str, str]:
    value: Decimal | None = parse_decimal("monthlyCap", cap) if cap is not None else None
    got = services.rebates.set_cap(fee_level, value)
    return {"level": fee_level, "monthlyCap": fmt(got) if got is not None else ""}


def record_out(r: Record) -> dict[str, Any]:
    return {"subAcct": r.sub_acct, "uid": r.uid, "day": r.day, "rebateDate": r.rebate_date,
            "rebateTime": str(to_ms(r.rebate_time)), "income": fmt(r.income), "netFee": fmt(r.net_fee),
            "markupFee": fmt(r.markup_fee)}


# -- FD brokers ----------------------------------------------------------------------------------

def fd_out(b: FdBroker) -> dict[str, Any]:
    return {"uid": b.uid, "brokerCode": b.code, "types": list(b.types), "ratio": fmt(b.ratio),
            "clientRebateRatio": fmt(b.client_ratio), "expired": b.expired}


def set_up_fd(services: Services, uid: str, *, code: str | None, types: list[str], ratio: str,
              client_ratio: str) -> dict[str, Any]:
    return fd_out(services.fd_brokers.set_up(uid, code=code, types=tuple(types), ratio=parse_decimal("ratio", ratio),
                                             client_ratio=parse_decimal("clientRebateRatio", client_ratio)))


def fd_record_out(r: FdRecord) -> dict[str, Any]:
    return {"uid": r.uid, "brokerType": r.broker_type, "day": r.day, "level": r.level, "affiliated": r.affiliated,
            "netFee": fmt(r.net_fee), "brokerRebate": fmt(r.broker_rebate), "userRebate": fmt(r.user_rebate)}
