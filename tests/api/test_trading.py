"""The spot market through the unchanged clients (ccxt.okx, python-okx) on SQLite and PostgreSQL:
an ordinary trading script, resting orders filled by the clock, fees and ND markups, credits."""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable
from decimal import Decimal

import okx.Funding as OkxFunding
import okx.MarketData as OkxMarket
import okx.PublicData as OkxPublic
import okx.Trade as OkxTrade
import pytest

from tests.api.test_clients import ccxt_okx
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal


def trader(stack: Stack, usdt: str = "100000") -> Creds:
    """A user with ``usdt`` in the trading account (deposits arrive in funding; orders trade from 18)."""
    c = stack.new_user(env="live", funds={"USDT": usdt})
    to_trading(stack, c, "USDT", usdt)
    return c


def to_trading(stack: Stack, c: Creds, ccy: str, amt: str) -> None:
    f = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    assert f.funds_transfer(ccy, amt, "6", "18")["code"] == "0"


def pin(stack: Stack, inst_id: str, px: str) -> None:
    """Hold the instrument's walk still and set its index (exact figures need a price that stays)."""
    stack.call("PUT", f"/admin/markets/{inst_id}", json={"walk": False})
    stack.call("POST", f"/admin/markets/{inst_id}/price", json={"px": px})


def test_ccxt_trading_script(stack: Stack) -> None:
    c = trader(stack)
    ex = ccxt_okx(stack, c)
    markets = ex.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["precision"]["price"] is not None
    pin(stack, "BTC-USDT", "60000")
    ticker = ex.fetch_ticker("BTC/USDT")
    assert D(str(ticker["last"])) == D("60000")
    assert ticker["ask"] > ticker["last"] > ticker["bid"]
    book = ex.fetch_order_book("BTC/USDT", limit=5)
    assert len(book["asks"]) == 5 and book["asks"][0][0] > book["bids"][0][0]
    ohlcv = ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert ohlcv and all(len(row) == 6 for row in ohlcv)

    bought = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    got = ex.fetch_order(bought["id"], "BTC/USDT")
    assert got["status"] == "closed" and D(str(got["filled"])) == D("0.01")
    assert D(str(got["fee"]["cost"])) == D("0.00001") and got["fee"]["currency"] == "BTC"

    resting = ex.create_order("BTC/USDT", "limit", "buy", 0.001, 50000)
    open_orders = ex.fetch_open_orders("BTC/USDT")
    assert [o["id"] for o in open_orders] == [resting["id"]]
    bal = ex.fetch_balance()
    assert D(str(bal["USDT"]["used"])) == D("50")
    ex.cancel_order(resting["id"], "BTC/USDT")
    assert ex.fetch_open_orders("BTC/USDT") == []
    closed = ex.fetch_closed_orders("BTC/USDT")  # ccxt asks for state=filled
    assert [(o["id"], o["status"]) for o in closed] == [(bought["id"], "closed")]
    canceled = ex.fetch_canceled_orders("BTC/USDT")
    assert [(o["id"], o["status"]) for o in canceled] == [(resting["id"], "canceled")]

    sold = ex.create_order("BTC/USDT", "market", "sell", 0.005)
    trades = ex.fetch_my_trades("BTC/USDT")
    assert {t["order"] for t in trades} == {bought["id"], sold["id"]}
    sell = next(t for t in trades if t["order"] == sold["id"])
    assert D(str(sell["price"])) == D("60000") and D(str(sell["fee"]["cost"])) == D("0.3")
    bal = ex.fetch_balance()
    # 100000 - 600 (buy) + 300 - 0.3 (sell, fee in USDT); BTC 0.01 - 0.00001 fee - 0.005
    assert D(str(bal["USDT"]["total"])) == D("99699.7")
    assert D(str(bal["BTC"]["total"])) == D("0.00499")
    # USD valuations read the same index: 0.00499 BTC x 60000 + 99699.7 USDT
    info = bal["info"]["data"][0]
    assert {d["ccy"]: d["eqUsd"] for d in info["details"]} == {"BTC": "299.4", "USDT": "99699.7"}
    assert info["totalEq"] == "99999.1"
    stack.audit_ok()


def test_python_okx_places_and_cancels_and_a_limit_fills_with_the_clock(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own (others compare the shared one with wall time)
    c = trader(stack)
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    market = OkxMarket.MarketAPI(flag=c.flag, domain=stack.base_url, debug=False)
    pin(stack, "ETH-USDT", "3000")
    assert market.get_ticker("ETH-USDT")["data"][0]["last"] == "3000"
    placed = trade.place_order(instId="ETH-USDT", tdMode="cash", side="buy", ordType="limit", sz="1", px="2900",
                               clOrdId="mine1")
    assert placed["code"] == "0", placed
    ord_id = placed["data"][0]["ordId"]
    dup = trade.place_order(instId="ETH-USDT", tdMode="cash", side="buy", ordType="limit", sz="1", px="2800",
                            clOrdId="mine1")
    assert dup["code"] == "1" and dup["data"][0]["sCode"] == "51016"
    other = trade.place_order(instId="ETH-USDT", tdMode="cash", side="sell", ordType="limit", sz="0.5", px="3500")
    assert other["data"][0]["sCode"] == "51008"  # no ETH to sell
    assert trade.get_order(instId="ETH-USDT", ordId=ord_id)["data"][0]["state"] == "live"
    canceled = trade.place_order(instId="ETH-USDT", tdMode="cash", side="buy", ordType="limit", sz="1", px="2800")
    assert trade.cancel_order(instId="ETH-USDT", ordId=canceled["data"][0]["ordId"])["code"] == "0"
    again = trade.cancel_order(instId="ETH-USDT", ordId=canceled["data"][0]["ordId"])
    assert again["code"] == "1" and again["data"][0]["sCode"] == "51400"

    pin(stack, "ETH-USDT", "2899")  # the open minute crosses the bid; the minute's step fills it
    stack.call("POST", "/admin/clock/advance", json={"seconds": 120})
    order = trade.get_order(instId="ETH-USDT", ordId=ord_id)["data"][0]
    assert (order["state"], order["avgPx"], order["accFillSz"], order["fee"], order["feeCcy"]) == (
        "filled", "2900", "1", "-0.0008", "ETH")
    fills = trade.get_fills(instId="ETH-USDT")["data"]
    assert [(f["ordId"], f["execType"], f["fillPx"]) for f in fills] == [(ord_id, "M", "2900")]
    stack.audit_ok()


@pytest.mark.parametrize("ord_type", ["post_only", "fok", "ioc"])
def test_order_types_that_cannot_rest_or_fill(stack: Stack, ord_type: str) -> None:
    c = trader(stack, usdt="10000")
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    pin(stack, "SOL-USDT", "150")
    before = stack.balances(c.uid)
    crossing = "151" if ord_type == "post_only" else "149"
    r = trade.place_order(instId="SOL-USDT", tdMode="cash", side="buy", ordType=ord_type, sz="1", px=crossing)
    if ord_type == "post_only":
        assert r["code"] == "1" and r["data"][0]["sCode"] == "51019"
    else:
        assert r["code"] == "0"
        got = trade.get_order(instId="SOL-USDT", ordId=r["data"][0]["ordId"])["data"][0]
        assert got["state"] == "canceled" and got["accFillSz"] == "0"
    assert stack.balances(c.uid) == before
    stack.audit_ok()


def test_python_okx_market_data_and_every_trade_call(stack: Stack) -> None:
    c = trader(stack)
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    market = OkxMarket.MarketAPI(flag=c.flag, domain=stack.base_url, debug=False)
    pin(stack, "SOL-USDT", "150")
    tickers = market.get_tickers(instType="SPOT")["data"]
    assert {"BTC-USDT", "ETH-USDT", "SOL-USDT", "ETH-BTC"} <= {t["instId"] for t in tickers}
    assert market.get_tickers(instType="SWAP")["data"] == []
    book = market.get_orderbook(instId="SOL-USDT", sz="3")["data"][0]
    # level i at index x (1 +- spreadBp/20000 x (i+1)), spreadBp 2: asks rounded up, bids down, to the tick
    assert [a[0] for a in book["asks"]] == ["150.02", "150.03", "150.05"]
    assert [b[0] for b in book["bids"]] == ["149.98", "149.97", "149.95"]
    candles = market.get_candlesticks(instId="SOL-USDT", bar="1m", limit="3")["data"]
    assert candles and candles[0][4] == "150" and candles[0][8] == "0"  # the open minute: unconfirmed
    assert market.get_history_candlesticks(instId="SOL-USDT", bar="1H")["code"] == "0"
    index = market.get_index_tickers(instId="SOL-USD")["data"]
    assert [(i["instId"], i["idxPx"]) for i in index] == [("SOL-USD", "150")]

    placed = trade.place_multiple_orders([
        {"instId": "SOL-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "1", "px": "140",
         "clOrdId": "a1"},
        {"instId": "SOL-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "15"},
        {"instId": "SOL-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "1", "px": "140.001"}])
    assert placed["code"] == "2" and [d["sCode"] for d in placed["data"]] == ["0", "0", "51000"]
    resting, bought = placed["data"][0]["ordId"], placed["data"][1]["ordId"]
    pending = trade.get_order_list(instType="SPOT")["data"]
    assert [o["ordId"] for o in pending] == [resting] and pending[0]["clOrdId"] == "a1"
    # a market buy of 15 USDT at 150: 0.1 SOL, less the 0.1 % fee in SOL
    got = trade.get_order(instId="SOL-USDT", ordId=bought)["data"][0]
    assert (got["accFillSz"], got["fee"], got["feeCcy"], got["tgtCcy"]) == ("0.1", "-0.0001", "SOL", "quote_ccy")
    canceled = trade.cancel_multiple_orders([{"instId": "SOL-USDT", "ordId": resting},
                                             {"instId": "SOL-USDT", "ordId": bought}])
    assert canceled["code"] == "2" and [d["sCode"] for d in canceled["data"]] == ["0", "51400"]
    history = trade.get_orders_history(instType="SPOT", instId="SOL-USDT")["data"]
    assert [(o["ordId"], o["state"]) for o in history] == [(bought, "filled"), (resting, "canceled")]  # newest id first
    assert trade.get_orders_history_archive(instType="SPOT")["data"] == history
    assert trade.get_orders_history(instType="SWAP")["data"] == []  # only spot is traded here
    assert trade.get_fills_history(instType="MARGIN")["data"] == []
    assert [f["ordId"] for f in trade.get_fills_history(instType="SPOT")["data"]] == [bought]
    # paging: newest first, after/before on the id
    assert [o["ordId"] for o in trade.get_orders_history(instType="SPOT", after=bought)["data"]] == [resting]
    assert [o["ordId"] for o in trade.get_orders_history(instType="SPOT", before=resting)["data"]] == [bought]
    stack.audit_ok()


def test_production_refuses_orders_on_a_stale_or_missing_index(fresh_stack: Callable[..., Stack]) -> None:
    """Production has no walk: prices are pushed, and an index older than ``max_price_age`` (here
    1 s) refuses new orders until a new price arrives."""
    stack = fresh_stack(sandbox=False, max_price_age=1)
    c = trader(stack, usdt="1000")
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    order = {"instId": "ETH-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "10"}
    none_yet = trade.place_order(**order)
    assert none_yet["data"][0]["sCode"] == "51000" and "No index price" in none_yet["data"][0]["sMsg"]
    stack.call("POST", "/admin/markets/ETH-USDT/price", json={"px": "3000"})
    assert trade.place_order(**order)["code"] == "0"
    time.sleep(1.5)
    before = stack.balances(c.uid)
    stale = trade.place_order(**order)
    assert stale["data"][0]["sCode"] == "51000" and "stale" in stale["data"][0]["sMsg"]
    assert stack.balances(c.uid) == before
    stack.call("POST", "/admin/markets/ETH-USDT/price", json={"px": "3001"})
    assert trade.place_order(**order)["code"] == "0"
    stack.audit_ok()


def test_the_operator_lists_and_suspends_an_instrument(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock

    def put(inst_id: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
        r = stack.admin.put(f"/admin/instruments/{inst_id}", json=body)
        return r.status_code, r.json()

    before = stack.call("GET", "/admin/markets")
    for inst_id, body, words in [
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "0.01", "lotSz": "0.0001", "minSz": "0.001"},
         "startPx"),
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDT", "tickSz": "0.01", "lotSz": "0.0001", "minSz": "0.001",
                      "startPx": "3000"}, "instId"),
        ("DOGE-USDC", {"baseCcy": "DOGE", "quoteCcy": "USDC", "tickSz": "0.01", "lotSz": "1", "minSz": "1",
                       "startPx": "1"}, "DOGE"),
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "0", "lotSz": "0.0001", "minSz": "0.001",
                      "startPx": "3000"}, "tickSz"),
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "1e-2", "lotSz": "0.0001", "minSz": "0.001",
                      "startPx": "3000"}, "tickSz"),
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "0.01", "lotSz": "0.0001", "minSz": "0.00015",
                      "startPx": "3000"}, "minSz"),
        ("ETH-USDC", {"baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "0.01", "lotSz": "0.0001", "minSz": "0.001",
                      "startPx": "3000", "colour": "red"}, "colour"),
    ]:
        status, reply = put(inst_id, body)
        assert status in (400, 404) and words in str(reply), (body, status, reply)
    assert stack.call("GET", "/admin/markets") == before  # nothing listed by a refused request

    listed = stack.call("PUT", "/admin/instruments/eth-usdc", json={
        "baseCcy": "ETH", "quoteCcy": "USDC", "tickSz": "0.01", "lotSz": "0.0001", "minSz": "0.001",
        "startPx": "3000"})
    assert (listed["instId"], listed["state"], listed["maxSz"]) == ("ETH-USDC", "live", "9999999999")
    c = stack.new_user(env="live", funds={"USDC": "500"})
    to_trading(stack, c, "USDC", "500")
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    pin(stack, "ETH-USDC", "3000")
    public = OkxPublic.PublicAPI(flag=c.flag, domain=stack.base_url, debug=False)
    rows = public.get_instruments(instType="SPOT", instId="ETH-USDC")["data"]
    assert [(r["instId"], r["tickSz"], r["lotSz"], r["minSz"]) for r in rows] == [("ETH-USDC", "0.01", "0.0001",
                                                                                  "0.001")]
    bought = trade.place_order(instId="ETH-USDC", tdMode="cash", side="buy", ordType="market", sz="0.1",
                               tgtCcy="base_ccy")
    assert bought["code"] == "0", bought
    resting = trade.place_order(instId="ETH-USDC", tdMode="cash", side="buy", ordType="limit", sz="0.01", px="2990")
    stack.call("PUT", "/admin/instruments/ETH-USDC", json={"state": "suspend"})
    refused = trade.place_order(instId="ETH-USDC", tdMode="cash", side="buy", ordType="market", sz="0.1",
                                tgtCcy="base_ccy")
    assert refused["data"][0]["sCode"] == "51001" and "suspended" in refused["data"][0]["sMsg"]
    # what rests on a suspended instrument still fills when the index crosses it
    stack.call("POST", "/admin/markets/ETH-USDC/price", json={"px": "2980"})
    stack.call("POST", "/admin/clock/advance", json={"seconds": 120})
    rested = trade.get_order(instId="ETH-USDC", ordId=resting["data"][0]["ordId"])["data"][0]
    assert (rested["state"], rested["avgPx"]) == ("filled", "2990")
    stack.call("PUT", "/admin/instruments/ETH-USDC", json={"state": "live", "minSz": "0.01"})
    below = trade.place_order(instId="ETH-USDC", tdMode="cash", side="buy", ordType="market", sz="0.001",
                              tgtCcy="base_ccy")
    assert below["data"][0]["sCode"] == "51020"
    assert put("ETH-USDC", {"startPx": "1"})[0] == 400  # a listed instrument's price is pinned, not restarted
    stack.audit_ok()


def test_a_resting_order_is_not_filled_by_prices_from_before_it(fresh_stack: Callable[..., Stack]) -> None:
    """On a frozen sandbox clock, an order placed at a minute's very start shares that minute's candle
    with the prices pinned before it at the same moment (and the candle opens at the previous close).
    Only what the index does after the order was placed fills it (found by the simulation, seed 7)."""
    stack = fresh_stack()  # moves the clock
    c = stack.new_user(env="live", funds={"ETH": "1"})
    to_trading(stack, c, "ETH", "1")
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    pin(stack, "ETH-USDT", "3100")
    stack.call("POST", "/admin/clock/freeze")
    now = dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])
    minute = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=2)
    stack.call("POST", "/admin/clock/advance", json={"to": minute.isoformat()})
    pin(stack, "ETH-USDT", "3000")  # this minute's candle: open 3100, low 3000
    placed = trade.place_order(instId="ETH-USDT", tdMode="cash", side="sell", ordType="limit", sz="0.5", px="3050")
    assert placed["code"] == "0", placed
    ord_id = placed["data"][0]["ordId"]
    stack.call("POST", "/admin/clock/advance", json={"seconds": 180})
    order = trade.get_order(instId="ETH-USDT", ordId=ord_id)["data"][0]
    assert (order["state"], order["accFillSz"]) == ("live", "0")  # the index stayed at 3000 since it was placed
    assert stack.balances(c.uid)[("18", "ETH")] == D("0.5")  # available; the other half locked
    pin(stack, "ETH-USDT", "3050")
    stack.call("POST", "/admin/clock/advance", json={"seconds": 60})
    order = trade.get_order(instId="ETH-USDT", ordId=ord_id)["data"][0]
    assert (order["state"], order["avgPx"], order["accFillSz"]) == ("filled", "3050", "0.5")
    stack.audit_ok()
