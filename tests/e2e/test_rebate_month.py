"""A month of sandbox trading, on SQLite and PostgreSQL: sub-accounts of two ND brokers of two
levels (ratios 0.4 and 0.5, one with a markup) and two users tagging an FD broker's code trade
every day; each day's run (in chunks of one broker) is checked against rebates computed here from
that day's fills (records, payouts to brokers and FD users), the audit after each day; then the month's detail files (ND
through ccxt, FD through python-okx) add up to what was paid, and ``if-rebate`` answers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from tests.api.test_broker_api import make_broker, ok, okx
from tests.api.test_fd_brokers import buy as fd_buy
from tests.api.test_fd_brokers import down, fd_api, fd_broker, shares, trader
from tests.api.test_rebates import expected, nd
from tests.api.test_trading_broker import buy, fixed_price, funded_sub
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
DAYS = 30
HKT = dt.timezone(dt.timedelta(hours=8))


def funding_usdt(stack: Stack, c: Creds) -> Decimal:
    return stack.balances(c.uid).get(("6", "USDT"), D(0))


def test_a_month_of_nd_and_fd_rebates(fresh_stack: Callable[..., Stack]) -> None:
    # keys idle for a month stay valid; each day's run in chunks of one broker, on two connections
    stack = fresh_stack(key_expiry_enabled=False, job_chunk_size=1, job_connections=2)
    stack.call("POST", "/admin/clock/freeze")
    stack.call("PUT", "/admin/rebates/ratios/2", json={"ratio": "0.5"})
    low, high = make_broker(stack, funds={"USDT": "1"}), make_broker(stack, funds={"USDT": "1"}, level=2)
    ratio = {low.uid: D("0.4"), high.uid: D("0.5")}
    subs = {low.uid: [funded_sub(stack, low, "60000"), funded_sub(stack, low, "60000")],
            high.uid: [funded_sub(stack, high, "60000")]}
    ok(okx(stack, low).privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10"})
    fd, code = fd_broker(stack, ratio="0.3", client="0.25")
    users = [trader(stack, "60000"), trader(stack, "60000")]
    stack.call("PUT", f"/admin/fd-brokers/{fd.uid}/affiliates/{users[0].uid}", json={"on": True})
    fixed_price(stack, "BTC-USDT", "60000")
    first_day = ""
    paid = {c.uid: D(0) for c in (low, high, fd, *users)}
    nd_fills: dict[str, list[dict[str, Any]]] = {low.uid: [], high.uid: []}
    fd_fills: list[dict[str, Any]] = []

    for n in range(DAYS):
        sz = str(D("0.001") * (n % 5 + 1))
        day_nd = {b: [buy(stack, s, sz) for s in subs[b]] for b in subs}
        day_fd = [fd_buy(stack, u, sz, code) for u in users]
        before = {uid: funding_usdt(stack, c) for uid, c in ((c.uid, c) for c in (low, high, fd, *users))}
        stack.call("POST", "/admin/clock/advance", json={"days": 1})
        for b, fills in day_nd.items():
            want = sum((expected([f], ratio[b]) for f in fills), D(0))
            records = stack.call("GET", f"/admin/brokers/{b}/rebates", params={"limit": 10})
            newest = [r for r in records if r["day"] == records[0]["day"]]
            assert len(newest) == len(subs[b]) and sum(D(r["income"]) for r in newest) == want, (n, b)
            broker_creds = low if b == low.uid else high
            assert funding_usdt(stack, broker_creds) == before[b] + want
            paid[b] += want
            nd_fills[b] += fills
            first_day = first_day or newest[0]["day"]
        split = [shares(f, D("0.3"), D("0.25")) for f in day_fd]
        assert funding_usdt(stack, fd) == before[fd.uid] + sum(s for s, _ in split)
        for u, (_, to_user) in zip(users, split, strict=True):
            assert funding_usdt(stack, u) == before[u.uid] + to_user
            paid[u.uid] += to_user
        paid[fd.uid] += sum(s for s, _ in split)
        fd_fills += day_fd
        stack.audit_ok()
        if n == 0:  # the markup is in force from the first day after it was set
            assert all(D(f["markupUsdt"]) == 0 for f in day_nd[low.uid])
    assert all(D(f["markupUsdt"]) > 0 for f in nd_fills[low.uid][2:])
    runs = [r for r in stack.call("GET", "/admin/jobs/runs", params={"job": "nd_rebates", "limit": 100})
            if r["totals"]["nd_records"] != "0"]
    assert len(runs) == DAYS and {(r["chunksPlanned"], r["chunksDone"]) for r in runs} == {(3, 3)}, runs
    assert sum(D(r["totals"]["nd_income"]) for r in runs) == paid[low.uid] + paid[high.uid]
    assert sum(D(r["totals"]["fd_to_users"]) for r in runs) == paid[users[0].uid] + paid[users[1].uid]

    # the month's files: their rows add up to what was paid
    end = (dt.datetime.strptime(first_day, "%Y%m%d") + dt.timedelta(days=DAYS)).strftime("%Y%m%d")
    assert ok(okx(stack, low).privatePostBrokerNdRebatePerOrders, {"begin": first_day, "end": end})[0]["result"] == \
        "false"
    api = fd_api(stack, fd)
    assert api.generate_rebate_details_download_link(begin=first_day, end=end)["data"][0]["result"] == "false"
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})
    nd_file = ok(okx(stack, low).privateGetBrokerNdRebatePerOrders, {"type": "true"})[0]
    fd_file = api.get_rebate_details_download_link(type="true")["data"][0]
    nd_rows = list(csv.DictReader(io.StringIO(httpx.get(nd_file["fileHref"], timeout=10).text)))
    fd_rows = list(csv.DictReader(io.StringIO(httpx.get(fd_file["fileHref"], timeout=10).text)))
    assert len(nd_rows) == len(nd_fills[low.uid]) and len(fd_rows) == len(fd_fills)
    assert sum(D(r["rebate"]) for r in nd_rows) == paid[low.uid]
    assert sum(D(r["brokerRebate"]) for r in fd_rows) == paid[fd.uid]
    assert sum(D(r["userRebate"]) for r in fd_rows) == paid[users[0].uid] + paid[users[1].uid]
    assert {r["affiliated"] for r in fd_rows if r["ordId"] in {f["ordId"] for f in fd_fills[::2]}} == {"true"}
    assert all(D(r["brokerRebate"]) + D(r["userRebate"]) == down(D("0.3") * D(r["netFee"])) for r in fd_rows)

    # if-rebate: both earn their brokers something
    for sub in subs[high.uid]:
        assert nd(stack, high, "if-rebate", {"apiKey": sub.api_key})["data"] == [{"type": "0", "lastRebate": ""}]
    for u in users:
        assert ok(okx(stack, fd).privateGetBrokerFdIfRebate, {"apiKey": u.api_key})[0]["type"] == "0"
    stack.audit_ok()
