"""Parsers and views of the spot market for the operator's tools (admin API and CLI): price paths
and pins, fee levels, account levels, contract credits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.assets.rules import Instrument
from stakehouse.clock import to_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt
from stakehouse.operator.broker import parse_at
from stakehouse.operator.funding import parse_money
from stakehouse.operator.providers import parse_decimal
from stakehouse.trading.credits import Credit
from stakehouse.trading.prices import IndexPrice, PricePath
from stakehouse.trading.service import Fill
from stakehouse.wiring import Services

#: Path settings the operator may change, by their wire names: (column, parser).
PATH_FIELDS = ("vol", "drift", "seed", "walk", "spreadBp", "bookLevels", "levelSz")


def parse_path(values: dict[str, Any]) -> dict[str, object]:
    """Validated path settings (wire names -> columns); unknown names are refused."""
    unknown = set(values) - set(PATH_FIELDS)
    if unknown:
        raise dom.InvalidParameter(sorted(unknown)[0], f"not a price path setting ({', '.join(PATH_FIELDS)})")
    out: dict[str, object] = {}
    for name in ("vol", "drift"):
        if name in values:
            value = parse_decimal(name, str(values[name]))
            if (name == "vol" and not 0 <= value <= 10) or (name == "drift" and not -10 <= value <= 10):
                raise dom.InvalidParameter(name, "an annual fraction: vol in [0, 10], drift in [-10, 10]")
            out[name] = value
    if "seed" in values:
        seed = str(values["seed"])
        if not 1 <= len(seed) <= 64 or not seed.isprintable():
            raise dom.InvalidParameter("seed", "1 to 64 printable characters")
        out["seed"] = seed
    if "walk" in values:
        if not isinstance(values["walk"], bool):
            raise dom.InvalidParameter("walk", "true or false")
        out["walk"] = values["walk"]
    if "spreadBp" in values:
        spread = parse_decimal("spreadBp", str(values["spreadBp"]))
        if not Decimal("0.1") <= spread <= 1000:
            raise dom.InvalidParameter("spreadBp", "between 0.1 and 1000 basis points")
        out["spread_bp"] = spread
    if "bookLevels" in values:
        levels = values["bookLevels"]
        if not isinstance(levels, int) or isinstance(levels, bool) or not 1 <= levels <= 400:
            raise dom.InvalidParameter("bookLevels", "an integer from 1 to 400")
        out["book_levels"] = levels
    if "levelSz" in values:
        size = parse_decimal("levelSz", str(values["levelSz"]))
        if not 0 < size <= 10**9:
            raise dom.InvalidParameter("levelSz", "a positive size")
        out["level_sz"] = size
    return out


def path_out(p: PricePath, latest: IndexPrice | None) -> dict[str, Any]:
    return {"instId": p.inst_id, "startPx": fmt(p.start_px), "vol": fmt(p.vol), "drift": fmt(p.drift),
            "seed": p.seed, "walk": p.walk, "spreadBp": fmt(p.spread_bp), "bookLevels": p.book_levels,
            "levelSz": fmt(p.level_sz), "px": fmt(latest.px) if latest else "",
            "pxTime": str(to_ms(latest.at)) if latest else ""}


def markets(services: Services) -> list[dict[str, Any]]:
    paths = services.prices.paths()
    latest = services.prices.latest([p.inst_id for p in paths])
    return [path_out(p, latest.get(p.inst_id)) for p in paths]


def set_path(services: Services, inst_id: str, values: dict[str, Any]) -> dict[str, Any]:
    path = services.prices.set_path(inst_id.upper(), **parse_path(values))
    return path_out(path, services.prices.latest([path.inst_id]).get(path.inst_id))


def set_price(services: Services, inst_id: str, px: str) -> dict[str, str]:
    found = services.prices.set_price(inst_id.upper(), parse_decimal("px", px))
    return {"instId": found.inst_id, "px": fmt(found.px), "ts": str(to_ms(found.at))}


def level_out(level: str, taker: Decimal, maker: Decimal) -> dict[str, str]:
    return {"level": level, "taker": fmt(taker), "maker": fmt(maker)}


def set_level(services: Services, level: str, taker: str, maker: str) -> dict[str, str]:
    return level_out(*services.trading.set_fee_level(level, taker=parse_decimal("taker", taker),
                                                     maker=parse_decimal("maker", maker)))


def credit_out(c: Credit) -> dict[str, Any]:
    return {"creditId": str(c.credit_id), "uid": c.uid, "ccy": c.ccy, "amt": fmt(c.amt), "used": fmt(c.used),
            "state": c.state, "activateExpTime": str(to_ms(c.activate_exp_at)),
            "validPeriod": str(c.valid_period_ms), "useExpTime": str(to_ms(c.use_exp_at)) if c.use_exp_at else "",
            "invalidTime": str(to_ms(c.invalid_at)) if c.invalid_at else ""}


def grant_credit(services: Services, uid: str, amt: str, activate_exp_time: str, valid_period: str) -> dict[str, Any]:
    if not ascii_digits(valid_period, 12):
        raise dom.InvalidParameter("validPeriod", "milliseconds, digits only")
    deadline = parse_at(activate_exp_time, "activateExpTime")
    if deadline is None:
        raise dom.MissingParameter("activateExpTime")
    return credit_out(services.credits.grant(uid, parse_money("amt", amt), activate_exp_at=deadline,
                                             valid_period_ms=int(valid_period)))


def fill_out(f: Fill) -> dict[str, Any]:
    """A fill as the operator sees it: the fee split into base fee and markup, what credits paid,
    and the USDT values recorded for rebates."""
    return {"tradeId": str(f.trade_id), "ordId": str(f.ord_id), "uid": f.uid, "brokerUid": f.broker_uid or "",
            "instId": f.inst_id, "side": f.side, "tag": f.tag, "execType": f.exec_type, "fillPx": fmt(f.fill_px),
            "fillSz": fmt(f.fill_sz), "quoteAmt": fmt(f.quote_amt), "idxPx": fmt(f.idx_px), "feeCcy": f.fee_ccy,
            "feeRate": fmt(f.fee_rate), "baseRate": fmt(f.base_rate), "fee": fmt(f.fee), "baseFee": fmt(f.base_fee),
            "markupFee": fmt(f.markup_fee), "creditFee": fmt(f.credit_fee), "amtUsdt": fmt(f.amt_usdt),
            "feeUsdt": fmt(f.fee_usdt), "netFeeUsdt": fmt(f.net_fee_usdt), "markupUsdt": fmt(f.markup_usdt),
            "ts": str(to_ms(f.ts))}


#: Instrument fields by wire name: (column, kind).
INSTRUMENT_FIELDS = {"baseCcy": "base_ccy", "quoteCcy": "quote_ccy", "tickSz": "tick_sz", "lotSz": "lot_sz",
                     "minSz": "min_sz", "maxSz": "max_sz", "state": "state", "startPx": "start_px"}


def parse_instrument(values: dict[str, Any]) -> dict[str, Any]:
    """Validated instrument settings (wire names -> columns); unknown names are refused."""
    unknown = set(values) - set(INSTRUMENT_FIELDS)
    if unknown:
        raise dom.InvalidParameter(sorted(unknown)[0], f"not an instrument setting ({', '.join(INSTRUMENT_FIELDS)})")
    out: dict[str, Any] = {}
    for name, column in INSTRUMENT_FIELDS.items():
        if name not in values:
            continue
        text = values[name]
        if not isinstance(text, str):
            raise dom.InvalidParameter(name, "a string")
        if name in ("baseCcy", "quoteCcy"):
            if not (1 <= len(text) <= 16 and text.isascii() and text.isalnum()):
                raise dom.InvalidParameter(name, "a currency code")
            out[column] = text.upper()
        elif name == "state":
            if text not in ("live", "suspend"):
                raise dom.InvalidParameter(name, "live or suspend")
            out[column] = text
        else:
            number = parse_money(name, text)  # positive, plain, at most 18 decimals
            if number >= Decimal(10) ** 12:
                raise dom.InvalidParameter(name, "below 10^12")
            out[column] = number
    if "min_sz" in out and "lot_sz" in out and out["min_sz"] % out["lot_sz"] != 0:
        raise dom.InvalidParameter("minSz", "must be a multiple of lotSz")
    return out


def instrument_out(i: Instrument, p: PricePath) -> dict[str, Any]:
    return {"instId": i.inst_id, "baseCcy": i.base_ccy, "quoteCcy": i.quote_ccy, "tickSz": fmt(i.tick_sz),
            "lotSz": fmt(i.lot_sz), "minSz": fmt(i.min_sz), "maxSz": fmt(i.max_sz), "state": i.state,
            "listTime": str(to_ms(i.list_time)), "startPx": fmt(p.start_px), "walk": p.walk}


def set_instrument(services: Services, inst_id: str, values: dict[str, Any]) -> dict[str, Any]:
    return instrument_out(*services.prices.set_instrument(inst_id.upper(), parse_instrument(values)))
