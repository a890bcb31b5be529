"""The worked example of ``docs/rebates.md``, executed with the unchanged clients (ccxt for the ND
routes, python-okx for trading and the FD broker) on SQLite and PostgreSQL. The records and both
files' rows are read from the document's tables and compared with what the server answers, so the
document cannot drift from the code."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import okx.Funding as OkxFunding

from tests.api.test_broker_api import admin_now, ok, okx, sub_key
from tests.api.test_fd_brokers import buy as fd_buy
from tests.api.test_fd_brokers import fd_api, fd_broker, trader
from tests.api.test_rebates import nd
from tests.api.test_trading_broker import buy, fixed_price
from tests.stack import Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
DOC = Path(__file__).resolve().parents[2] / "docs" / "rebates.md"


def doc_table(anchor: str) -> list[dict[str, str]]:
    """The markdown table right after ``<!-- worked-example: anchor -->``."""
    text = DOC.read_text()
    start = text.index(f"<!-- worked-example: {anchor} -->")
    lines = [ln for ln in text[start:].splitlines()[1:] if ln.strip()]
    rows = []
    for ln in lines:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r, strict=True)) for r in body]


def sub(stack: Stack, broker: Any, name: str, usdt: str) -> Any:
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": name})
    c = sub_key(stack, broker, name)
    stack.call("POST", f"/admin/users/{c.uid}/deposits", json={"ccy": "USDT", "amt": usdt})
    funding = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url,
                                    debug=False)
    assert funding.funds_transfer("USDT", usdt, "6", "18")["code"] == "0"
    return c


def test_the_worked_example(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.call("POST", "/admin/clock/freeze")
    b = stack.new_user(env="live", funds={"USDT": "1"})
    stack.call("PUT", f"/admin/brokers/{b.uid}", json={"level": 1})
    alpha, beta = sub(stack, b, "alpha01", "10000"), sub(stack, b, "beta01", "10000")
    ok(okx(stack, b).privatePostBrokerNdSetSubaccountFeeRate,
       {"subAcct": "alpha01", "chgType": "absolute", "chgTaker": "10"})
    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    fixed_price(stack, "BTC-USDT", "60000")
    now_ms = int(admin_now(stack).timestamp() * 1000)
    credit = stack.call("POST", "/admin/credits", json={"uid": beta.uid, "amt": "0.6", "validPeriod": "86400000",
                                                        "activateExpTime": str(now_ms + 10**7)})
    ex = okx(stack, beta)
    assert ok(lambda p: ex.request("broker/nd/activate-credit", ["private"], "POST", p),
              {"creditId": credit["creditId"]}) == [{"result": True}]
    f, code = fd_broker(stack, ratio="0.3", client="0.25")
    gamma = trader(stack, "10000")

    fills = [buy(stack, alpha, "0.01"), buy(stack, alpha, "0.005"), buy(stack, beta, "0.02")]
    tagged = fd_buy(stack, gamma, "0.01", code)
    assert [(x["feeUsdt"], x["netFeeUsdt"], x["markupUsdt"]) for x in [*fills, tagged]] == [
        ("1.2", "0.6", "0.6"), ("0.6", "0.3", "0.3"), ("1.2", "0.6", "0"), ("0.6", "0.6", "0")]
    before = {c.uid: stack.balances(c.uid)[("6", "USDT")] for c in (b, f, gamma)}
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # past 00:00 HKT: the run

    records = doc_table("records")
    got = nd(stack, b, "rebate-daily")["data"][0]
    details = {d["subAcct"]: d for d in got["details"]}
    for row in records[:2]:
        d = details[row["record"]]
        assert (d["income"], d["netFee"], d["markupFee"]) == (row["income"], row["netFee"], row["markupFee"])
    fd_record = stack.call("GET", f"/admin/fd-brokers/{f.uid}/rebates")
    assert [(r["uid"], f"{r['brokerRebate']}, {r['userRebate']}", r["netFee"]) for r in fd_record] == [
        (gamma.uid, records[2]["income"], records[2]["netFee"])]
    # the payouts the document names
    assert stack.balances(b.uid)[("6", "USDT")] - before[b.uid] == D("1.5") == D(got["totIncome"])
    assert stack.balances(f.uid)[("6", "USDT")] - before[f.uid] == D("0.135")
    assert stack.balances(gamma.uid)[("6", "USDT")] - before[gamma.uid] == D("0.045")

    # B's file and F's file, row by row as the document shows them
    day = next(iter(details.values()))["rebateDate"]
    first = (dt.datetime.strptime(day, "%Y%m%d") - dt.timedelta(days=1)).strftime("%Y%m%d")
    assert ok(okx(stack, b).privatePostBrokerNdRebatePerOrders, {"begin": first, "end": day})[0]["result"] == "false"
    assert fd_api(stack, f).generate_rebate_details_download_link(begin=first, end=day)["data"][0]["result"] == \
        "false"
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})
    nd_href = ok(okx(stack, b).privateGetBrokerNdRebatePerOrders, {"type": "true"})[0]["fileHref"]
    fd_href = fd_api(stack, f).get_rebate_details_download_link(type="true")["data"][0]["fileHref"]
    nd_rows = list(csv.DictReader(io.StringIO(httpx.get(nd_href, timeout=10).text)))
    fd_rows = list(csv.DictReader(io.StringIO(httpx.get(fd_href, timeout=10).text)))
    by_ord = {x["ordId"]: x for x in [*fills, tagged]}
    for got_row in nd_rows + fd_rows:  # ordId, tradeId and ts are the fill's
        fill = by_ord[got_row["ordId"]]
        assert got_row["ts"] == fill["ts"] and got_row.get("tradeId", fill["tradeId"]) == fill["tradeId"]

    def shown(rows: list[dict[str, str]], columns: list[str]) -> list[tuple[str, ...]]:
        return sorted(tuple(r[c] for c in columns) for r in rows)

    nd_doc, fd_doc = doc_table("nd-file"), doc_table("fd-file")
    assert shown(nd_rows, list(nd_doc[0])) == shown(nd_doc, list(nd_doc[0]))
    assert shown(fd_rows, list(fd_doc[0])) == shown(fd_doc, list(fd_doc[0]))
    assert {r["brokerCode"] for r in fd_rows} == {code}

    # if-rebate, as the document shows it
    assert nd(stack, b, "if-rebate", {"subAcct": "alpha01"})["data"] == [{"type": "0", "lastRebate": ""}]
    assert ok(okx(stack, f).privateGetBrokerFdIfRebate, {"apiKey": gamma.api_key}) == [
        {"affiliated": False, "brokerCode": code, "type": "0", "clientRebateRatio": "0.25", "lastRebate": ""}]
    figures = re.findall(r"gets (\d+\.\d+) USDT", DOC.read_text())
    assert [D(x) for x in figures] == [D("1.5"), D("0.135")]
    stack.audit_ok()
