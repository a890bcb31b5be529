"""The spot market through the unchanged clients (ccxt.okx, python-okx) on SQLite and PostgreSQL:
an ordinary trading script, resting orders filled by the clock, fees and ND markups, credits."""

from __future__ import annotations

import warnings
from decimal import Decimal

import okx.Funding as OkxFunding
import okx.MarketData as OkxMarket
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


def test_python_okx_places_and_cancels_and_a_limit_fills_with_the_clock(stack: Stack) -> None:
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
