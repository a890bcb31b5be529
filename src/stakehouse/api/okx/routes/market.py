"""Public market data from the index prices: tickers, the synthetic book, candles, index tickers."""

from __future__ import annotations

from typing import Any

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import OkxError, bad
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.assets.rules import Instrument
from stakehouse.clock import to_ms
from stakehouse.money import fmt
from stakehouse.trading.market_rules import BARS

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
#: index-tickers' quote currencies: our indexes are USDT pairs, and USD is taken as USDT.
INDEX_QUOTES = ("USD", "USDT", "BTC")


def _instrument(call: Call, *, field: str = "instId") -> Instrument:
    inst_id = call.params.text(field, required=True, max_len=33).upper()
    found = call.services.reference.instruments(inst_id)
    if not found:
        raise OkxError("51001")
    return found[0]


def _ticker(call: Call, inst: Instrument) -> dict[str, Any] | None:
    prices = call.services.prices
    latest = prices.latest([inst.inst_id]).get(inst.inst_id)
    if latest is None:
        return None
    asks, bids, _ = prices.book(inst.inst_id, 1)
    stats = prices.day_stats(inst.inst_id)
    open24, high, low, sod = stats if stats else (latest.px, latest.px, latest.px, latest.px)
    return {"instType": "SPOT", "instId": inst.inst_id, "last": fmt(latest.px), "lastSz": "0",
            "askPx": fmt(asks[0][0]) if asks else "", "askSz": fmt(asks[0][1]) if asks else "",
            "bidPx": fmt(bids[0][0]) if bids else "", "bidSz": fmt(bids[0][1]) if bids else "",
            "open24h": fmt(open24), "high24h": fmt(high), "low24h": fmt(low), "volCcy24h": "0", "vol24h": "0",
            "sodUtc0": fmt(sod), "sodUtc8": fmt(sod), "ts": str(to_ms(latest.at))}


def get_tickers(call: Call) -> list[dict[str, Any]]:
    inst_type = call.params.choice("instType", INST_TYPES, required=True)
    call.params.text("uly", max_len=32)
    call.params.text("instFamily", max_len=32)
    if inst_type != "SPOT":
        return []
    out = [_ticker(call, inst) for inst in call.services.reference.instruments()]
    return [t for t in out if t is not None]


def get_ticker(call: Call) -> list[dict[str, Any]]:
    ticker = _ticker(call, _instrument(call))
    return [ticker] if ticker else []


def get_books(call: Call) -> list[dict[str, Any]]:
    inst = _instrument(call)
    depth = call.params.integer("sz", lo=1, hi=400, default=1)
    asks, bids, at = call.services.prices.book(inst.inst_id, depth)
    return [{"asks": [[fmt(px), fmt(sz), "0", "1"] for px, sz in asks],
             "bids": [[fmt(px), fmt(sz), "0", "1"] for px, sz in bids], "ts": str(to_ms(at))}]


def _candles(call: Call, hi: int) -> list[list[str]]:
    inst = _instrument(call)
    p = call.params
    bar = p.text("bar", max_len=8) or "1m"
    if bar not in BARS:
        raise bad("bar", ", ".join(BARS))
    after, before = p.ms_time("after"), p.ms_time("before")
    limit = p.limit(default=100, hi=hi)
    bars = call.services.prices.candles(inst.inst_id, bar, after=to_ms(after) if after else None,
                                        before=to_ms(before) if before else None, limit=limit)
    now = to_ms(call.services.clock.now())
    length = BARS[bar]
    # volumes are not kept for the index (no trades move it): "0"; a bar still open is unconfirmed
    return [[str(c.ts), fmt(c.o), fmt(c.h), fmt(c.l), fmt(c.c), "0", "0", "0", "1" if c.ts + length <= now else "0"]
            for c in bars]


def get_candles(call: Call) -> list[list[str]]:
    return _candles(call, 300)


def get_history_candles(call: Call) -> list[list[str]]:
    return _candles(call, 100)


def get_index_tickers(call: Call) -> list[dict[str, Any]]:
    p = call.params
    quote = p.choice("quoteCcy", INDEX_QUOTES)
    inst_id = p.text("instId", max_len=33).upper()
    if not quote and not inst_id:
        raise OkxError("50015", param0="quoteCcy", param1="instId")
    out = []
    for inst in call.services.reference.instruments():
        shown_quote = "USD" if inst.quote_ccy == "USDT" else inst.quote_ccy
        index_id = f"{inst.base_ccy}-{shown_quote}"
        if inst_id and inst_id not in (index_id, inst.inst_id):
            continue
        if quote and quote not in (shown_quote, inst.quote_ccy):
            continue
        latest = call.services.prices.latest([inst.inst_id]).get(inst.inst_id)
        if latest is None:
            continue
        stats = call.services.prices.day_stats(inst.inst_id)
        open24, high, low, sod = stats if stats else (latest.px, latest.px, latest.px, latest.px)
        out.append({"instId": index_id, "idxPx": fmt(latest.px), "open24h": fmt(open24), "high24h": fmt(high),
                    "low24h": fmt(low), "sodUtc0": fmt(sod), "sodUtc8": fmt(sod), "ts": str(to_ms(latest.at))})
    return out


#: Threaded: each reads several statements, and in the sandbox may first walk an instrument's
#: minutes up to now (seconds after a long clock advance), which must not hold the event loop.
ROUTES = [
    Route("GET", "/market/tickers", get_tickers, None, Limit(20, 2, "ip"), threaded=True),
    Route("GET", "/market/ticker", get_ticker, None, Limit(20, 2, "ip"), threaded=True),
    Route("GET", "/market/books", get_books, None, Limit(40, 2, "ip"), threaded=True),
    Route("GET", "/market/candles", get_candles, None, Limit(40, 2, "ip"), threaded=True),
    Route("GET", "/market/history-candles", get_history_candles, None, Limit(20, 2, "ip"), threaded=True),
    Route("GET", "/market/index-tickers", get_index_tickers, None, Limit(20, 2, "ip"), threaded=True),
]
