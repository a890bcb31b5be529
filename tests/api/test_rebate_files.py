"""ND rebate detail files through ccxt's implicit methods on SQLite and PostgreSQL: asked for,
written at the next job tick, listed with a signed link, downloaded by anyone holding the link
until it expires (9 hours), refused when altered; the rows checked against rebates computed here
from the fills, and adding up to the day's records even when a cap cut the day. Bad input changes
nothing."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from stakehouse.db.tables import rebate_files
from tests.api.test_broker_api import make_broker, ok, okx, reply
from tests.api.test_rebates import expected
from tests.api.test_trading_broker import buy, fixed_price, funded_sub
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
ND_COLUMNS = ["subAcct", "instId", "ordId", "tradeId", "amt", "fee", "execType", "rebate", "rebateCat", "netFee",
              "markupFee", "ts"]


def ask(stack: Stack, c: Creds, begin: str, end: str) -> dict[str, Any]:
    ex = okx(stack, c)
    return reply(ex.privatePostBrokerNdRebatePerOrders, {"begin": begin, "end": end})


def listing(stack: Stack, c: Creds, params: dict[str, Any]) -> dict[str, Any]:
    return reply(okx(stack, c).privateGetBrokerNdRebatePerOrders, params)


def download(href: str) -> httpx.Response:
    return httpx.get(href, timeout=10)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def file_count(stack: Stack) -> int:
    with stack.services.db.read() as conn:
        return len(conn.execute(rebate_files.select()).all())


def test_a_file_of_a_day_is_written_listed_and_downloaded(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own
    broker = make_broker(stack, funds={"USDT": "1"})
    one, two = funded_sub(stack, broker, "50000"), funded_sub(stack, broker, "50000")
    stack.call("PUT", f"/admin/users/{two.uid}/fee-level", json={"level": "VIP4"})
    fixed_price(stack, "BTC-USDT", "60000")
    fills_one = [buy(stack, one, "0.01"), buy(stack, one, "0.003")]
    fills_two = [buy(stack, two, "0.02"), buy(stack, two, "0.01")]
    # two's month is capped just below its two fills' rebates: the file spreads the cut over them
    whole_two = expected(fills_two, D("0.4"))
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": str(whole_two - D("0.05"))})
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # the run at 00:00 HKT
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": None})
    records = {r["uid"]: r for r in stack.call("GET", f"/admin/brokers/{broker.uid}/rebates")}
    day, date = records[one.uid]["day"], records[one.uid]["rebateDate"]

    first = ask(stack, broker, day, date)
    assert first["code"] == "0" and first["data"][0]["result"] == "false", first
    again = ask(stack, broker, day, date)
    assert again["data"][0] == {"result": "true", "ts": first["data"][0]["ts"]}  # ts: the first request
    pending = ok(okx(stack, broker).privateGetBrokerNdRebatePerOrders, {"type": "true"})
    assert [(f["state"], f["fileHref"], f["ts"]) for f in pending] == [("ongoing", "", "")]
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})  # the next job tick writes it
    listed = ok(okx(stack, broker).privateGetBrokerNdRebatePerOrders, {"type": "false", "begin": day, "end": date})
    assert len(listed) == 1 and listed[0]["state"] == "finished", listed
    f = listed[0]
    assert f["cTime"] == first["data"][0]["ts"] and f["beginTime"] == f["endTime"]  # one day, as the seed shows
    got = download(f["fileHref"])
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = rows_of(got.text)
    assert list(rows[0]) == ND_COLUMNS
    names = {s["uid"]: s["subAcct"] for s in stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")}
    by_ord = {r["ordId"]: r for r in rows}
    assert set(by_ord) == {x["ordId"] for x in fills_one + fills_two}
    for fill in fills_one:  # uncut: each row is the fill's own rebate
        row = by_ord[fill["ordId"]]
        assert D(row["rebate"]) == expected([fill], D("0.4"))
        assert (row["subAcct"], row["tradeId"], row["amt"], row["fee"], row["netFee"], row["markupFee"],
                row["execType"], row["rebateCat"], row["ts"]) == (
            names[one.uid], fill["tradeId"], fill["amtUsdt"], fill["feeUsdt"], fill["netFeeUsdt"],
            fill["markupUsdt"], fill["execType"], "spot", fill["ts"])
    # cut: the day's record (the cap) spread over the fills in time order, adding up exactly
    capped = [D(by_ord[x["ordId"]]["rebate"]) for x in sorted(fills_two, key=lambda x: int(x["tradeId"]))]
    assert sum(capped) == D(records[two.uid]["income"]) == whole_two - D("0.05")
    assert capped[0] == expected([sorted(fills_two, key=lambda x: int(x["tradeId"]))[0]], D("0.4"))
    assert sum(D(r["rebate"]) for r in rows) == sum(D(r["income"]) for r in records.values())

    # the link: anyone may use it; altered or truncated links are refused; it lasts 9 hours
    parts = urlsplit(f["fileHref"])
    sig = parse_qs(parts.query)["Signature"][0]
    flipped = f["fileHref"].replace(sig, ("A" if sig[0] != "A" else "B") + sig[1:])
    for bad in (flipped, f["fileHref"].split("&Signature")[0], f["fileHref"][:-1],
                f["fileHref"].replace("Expires=", "Expires=9")):
        assert download(bad).status_code == 403, bad
    stack.call("POST", "/admin/clock/advance", json={"seconds": 9 * 3600 + 1})
    assert download(f["fileHref"]).status_code == 403
    fresh = ok(okx(stack, broker).privateGetBrokerNdRebatePerOrders, {"type": "true"})[0]["fileHref"]
    assert download(fresh).status_code == 200
    stack.audit_ok()


def test_file_requests_bad_input_change_nothing(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own
    broker = make_broker(stack)
    sub = funded_sub(stack, broker, "10")
    plain = stack.new_user(env="live")
    before = file_count(stack)
    for params, code in [({"begin": "20260101"}, "50014"), ({"end": "20260101"}, "50014"),
                         ({"begin": "2026-01-01", "end": "20260102"}, "51000"),
                         ({"begin": "20260230", "end": "20260302"}, "51000"),
                         ({"begin": "\u0662\u0660\u0662\u0666\u0660\u0661\u0660\u0661", "end": "20260102"}, "51000"),
                         ({"begin": "20260105", "end": "20260101"}, "59616"),
                         ({"begin": "20260105", "end": "20260105"}, "59616"),
                         ({"begin": "20260101", "end": "20260701"}, "59615")]:
        got = reply(okx(stack, broker).privatePostBrokerNdRebatePerOrders, params)
        assert got["code"] == code, (params, got)
    assert ask(stack, broker, "20260101", "20260630")["data"][0]["result"] == "false"  # 180 days: fine
    assert ask(stack, broker, "20260101", "20260630")["data"][0]["result"] == "true"
    # a new range within the hour (by the platform's clock) is refused
    assert ask(stack, broker, "20260101", "20260102")["code"] == "50011"
    assert ask(stack, sub, "20260101", "20260102")["code"] == "59604"
    assert ask(stack, plain, "20260101", "20260102")["code"] == "59608"
    for params, code in [({}, "50014"), ({"type": "all"}, "51000"), ({"type": "false"}, "50014"),
                         ({"type": "false", "begin": "20260101"}, "50014"),
                         ({"type": "false", "begin": "20260105", "end": "20260101"}, "59616")]:
        got = listing(stack, broker, params)
        assert got["code"] == code, (params, got)
    assert listing(stack, plain, {"type": "true"})["code"] == "59608"
    assert file_count(stack) == before + 1
    stack.call("POST", "/admin/clock/advance", json={"seconds": 3601})
    assert ask(stack, broker, "20260101", "20260102")["data"][0]["result"] == "false"
    stack.audit_ok()
