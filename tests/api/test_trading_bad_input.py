"""Every documented order parameter at and beyond its limits, on SQLite and PostgreSQL: each gets
its documented code and changes nothing (no order, no fill, no balance moved, audit clean). A
malformed or missing parameter refuses the whole request (HTTP 400, top-level 51000/50014, as the
conventions decide); what the market's rules refuse is answered per order, as ``sCode``/``sMsg``
inside the order-style reply (top-level code "1")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_bad_input_corpus import state
from tests.api.test_okx_errors import Api
from tests.api.test_trading import to_trading
from tests.stack import Creds, Stack

GOOD = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.001", "px": "50000"}


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.close()


@pytest.fixture
def trader(stack: Stack) -> Creds:
    c = stack.new_user(env="live", funds={"USDT": "1000"})
    to_trading(stack, c, "USDT", "1000")
    stack.call("PUT", "/admin/markets/BTC-USDT", json={"vol": "0"})
    stack.call("POST", "/admin/markets/BTC-USDT/price", json={"px": "60000"})
    return c


#: Malformed or missing parameters: (changes to a good limit buy, top-level code, words of msg)
PARAM_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"instId": "BTCUSDT"}, "51000", "instId"),
    ({"sz": "0"}, "51000", "sz"),
    ({"sz": "-1"}, "51000", "sz"),
    ({"sz": "1e-3"}, "51000", "sz"),
    ({"sz": "0.0000000000000000001"}, "51000", "sz"),
    ({"sz": "\u0661"}, "51000", "sz"),
    ({"px": "0"}, "51000", "px"),
    ({"px": "-50000"}, "51000", "px"),
    ({"px": "5e4"}, "51000", "px"),
    ({"ordType": "stop"}, "51000", "ordType"),
    ({"tdMode": "margin"}, "51000", "tdMode"),
    ({"side": "long"}, "51000", "side"),
    ({"tgtCcy": "usd"}, "51000", "tgtCcy"),
    ({"clOrdId": "x" * 33}, "51000", "clOrdId"),
    ({"clOrdId": "not-alnum"}, "51000", "clOrdId"),
    ({"tag": "t" * 17}, "51000", "tag"),
    ({"tag": "a b"}, "51000", "tag"),
    ({"px": None}, "50014", "px"),
    ({"sz": None}, "50014", "sz"),
    ({"instId": None}, "50014", "instId"),
]

#: What the market refuses: (changes to a good limit buy, sCode, words of sMsg)
ITEM_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"instId": "DOGE-USDT"}, "51001", "doesn't exist"),
    ({"sz": "0.000001"}, "51020", "minimum"),
    ({"sz": "0.000010001"}, "51121", "lot size"),
    ({"px": "50000.05"}, "51000", "px"),
    ({"sz": "10000000000"}, "51000", "sz"),
    ({"tdMode": "isolated"}, "51010", "account mode"),
    ({"sz": "1"}, "51008", "USDT"),  # 60 000 USDT of BTC with 1 000
    ({"ordType": "post_only", "px": "60000"}, "51019", "post_only"),
    ({"side": "sell"}, "51008", "BTC"),
]


@pytest.mark.parametrize(("change", "code", "words"), PARAM_CASES)
def test_each_malformed_order_refuses_the_request_and_changes_nothing(
        stack: Stack, api: Api, trader: Creds, change: dict[str, Any], code: str, words: str) -> None:
    order = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    before = state(stack)
    # alone, and beside a good order in a batch (which is then not placed either)
    for path, payload in (("/api/v5/trade/order", order), ("/api/v5/trade/batch-orders", [GOOD, order])):
        r = api.post(trader, path, payload)
        body = r.json()
        assert (r.status_code, body["code"], body["data"]) == (400, code, []), body
        assert words in body["msg"], body
    assert state(stack) == before
    stack.audit_ok()


@pytest.mark.parametrize(("change", "code", "words"), ITEM_CASES)
def test_each_refused_order_gets_its_code_and_changes_nothing(stack: Stack, api: Api, trader: Creds,
                                                              change: dict[str, Any], code: str, words: str) -> None:
    order = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    before = state(stack)
    for path, payload in (("/api/v5/trade/order", order), ("/api/v5/trade/batch-orders", [order])):
        r = api.post(trader, path, payload)
        body = r.json()
        assert (r.status_code, body["code"], body["msg"]) == (200, "1", "All operations failed"), body
        item = body["data"][0]
        assert item["sCode"] == code and words in item["sMsg"], item
        assert item["ordId"] == ""
    assert state(stack) == before
    stack.audit_ok()


def test_batches_answer_per_order_and_refuse_a_21st(stack: Stack, api: Api, trader: Creds) -> None:
    before = state(stack)
    r = api.post(trader, "/api/v5/trade/batch-orders", [GOOD] * 21)
    assert (r.status_code, r.json()["code"]) == (200, "51111") and "20" in r.json()["msg"]
    assert api.post(trader, "/api/v5/trade/batch-orders", []).json()["code"] == "50000"
    assert api.post(trader, "/api/v5/trade/batch-orders", [GOOD, 1]).json()["code"] == "51000"
    assert state(stack) == before
    mixed = api.post(trader, "/api/v5/trade/batch-orders", [GOOD, {**GOOD, "sz": "1"}]).json()
    assert mixed["code"] == "2" and [d["sCode"] for d in mixed["data"]] == ["0", "51008"]


def test_duplicate_pending_client_order_id(stack: Stack, api: Api, trader: Creds) -> None:
    first = api.post(trader, "/api/v5/trade/order", {**GOOD, "clOrdId": "dup1"}).json()
    assert first["code"] == "0"
    before = state(stack)
    again = api.post(trader, "/api/v5/trade/order", {**GOOD, "clOrdId": "dup1"}).json()
    assert again["data"][0]["sCode"] == "51016"
    assert state(stack) == before
    # once the first is no longer live, the id may be used again
    cancel = api.post(trader, "/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "dup1"}).json()
    assert cancel["code"] == "0"
    assert api.post(trader, "/api/v5/trade/order", {**GOOD, "clOrdId": "dup1"}).json()["code"] == "0"


def test_cancels_of_someone_elses_or_a_filled_order(stack: Stack, api: Api, trader: Creds) -> None:
    other = stack.new_user(env="live", funds={"USDT": "100"})
    to_trading(stack, other, "USDT", "100")
    theirs = api.post(other, "/api/v5/trade/order", {**GOOD, "sz": "0.001"}).json()["data"][0]["ordId"]
    filled = api.post(trader, "/api/v5/trade/order", {**GOOD, "ordType": "market", "sz": "10"}).json()
    filled_id = filled["data"][0]["ordId"]
    before = state(stack)
    for ord_id, code in ((theirs, "51603"), (filled_id, "51400"), ("123456789", "51603")):
        r = api.post(trader, "/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "ordId": ord_id}).json()
        assert (r["code"], r["data"][0]["sCode"]) == ("1", code), r
    looked = api.get(trader, f"/api/v5/trade/order?instId=BTC-USDT&ordId={theirs}").json()
    assert looked["code"] == "51603"
    missing = api.post(trader, "/api/v5/trade/cancel-order", {"instId": "BTC-USDT"}).json()
    assert missing["data"][0]["sCode"] == "50015"  # per cancel: one of a batch may name its order wrongly
    assert api.get(trader, "/api/v5/trade/fills-history?instId=BTC-USDT").json()["code"] == "50014"
    assert api.get(trader, "/api/v5/trade/orders-pending?limit=101").json()["code"] == "51000"
    assert api.get(trader, "/api/v5/trade/fills?after=\u0661").json()["code"] == "51000"
    assert api.get(trader, "/api/v5/market/candles?instId=BTC-USDT&bar=7m").json()["code"] == "51000"
    assert api.get(trader, "/api/v5/market/ticker?instId=NOPE-USDT").json()["code"] == "51001"
    assert state(stack) == before
    stack.audit_ok()
