"""Parsers and views of DCD series and the DCD book for the operator's tools (admin API and CLI)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.money import fmt
from stakehouse.operator.providers import parse_decimal
from stakehouse.wiring import Services

#: Series fields by wire name: (column, kind).
SERIES_FIELDS = {"uly": ("uly", "text"), "tenors": ("tenors", "text"), "strikePcts": ("strike_pcts", "text"),
                 "strikeTick": ("strike_tick", "dec"), "callMin": ("call_min", "dec"), "callMax": ("call_max", "dec"),
                 "callStep": ("call_step", "dec"), "callQuota": ("call_quota", "dec"), "putMin": ("put_min", "dec"),
                 "putMax": ("put_max", "dec"), "putStep": ("put_step", "dec"), "putQuota": ("put_quota", "dec"),
                 "vol": ("vol", "dec"), "margin": ("margin", "dec"), "enabled": ("enabled", "bool")}


def parse_series(values: dict[str, Any]) -> dict[str, Any]:
    """Validated series settings (wire names -> columns); unknown names are refused."""
    unknown = set(values) - set(SERIES_FIELDS)
    if unknown:
        raise dom.InvalidParameter(sorted(unknown)[0], f"unknown; known: {', '.join(SERIES_FIELDS)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        column, kind = SERIES_FIELDS[name]
        if kind == "bool":
            if not isinstance(value, bool):
                raise dom.InvalidParameter(name, "true or false")
            out[column] = value
        elif kind == "dec":
            out[column] = parse_decimal(name, str(value))
        else:
            if not isinstance(value, str) or not value.isprintable() or len(value) > 128:
                raise dom.InvalidParameter(name, "text of at most 128 characters")
            out[column] = value
    return out


def series_out(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ccy": row["ccy"], "altCcy": row["alt_ccy"], "indexInst": row["index_inst"]}
    for name, (column, _kind) in SERIES_FIELDS.items():
        value = row[column]
        out[name] = fmt(value) if isinstance(value, Decimal) else value
    return out


def set_series(services: Services, ccy: str, alt_ccy: str, values: dict[str, Any]) -> dict[str, Any]:
    return series_out(services.dcd.set_series(ccy.upper(), alt_ccy.upper(), parse_series(values)))


def book_out(services: Services) -> list[dict[str, str]]:
    return [{"productId": r["product_id"], "state": r["state"], "notionalCcy": r["notional_ccy"],
             "orders": str(r["n"]), "notional": fmt(r["notional"])} for r in services.dcd.book()]
