"""What an outside probe found (issue 12), each through the public interface: the inputs that gave
HTTP 500, the unbounded clock advance, the passphrase DoS, the rate-limit key bypass, the
unreachable 50100, the echoed passphrase, FastAPI's envelope on the OKX surface.

A Redis outage and dropped database connections have files of their own (``test_redis_outage.py``,
``test_dropped_connections.py``); the corpus of bad input over every route is
``test_bad_input_corpus.py``."""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from collections.abc import Callable, Iterator
from itertools import pairwise
from urllib.parse import quote, urlsplit

import httpx
import okx.Funding as OkxFunding
import pytest

from tests.api.test_okx_errors import Api, auth_headers, ok, refused
from tests.stack import Creds, Stack
from tests.support.raw_http import exchange, request

warnings.filterwarnings("ignore", category=DeprecationWarning)

#: The six history routes with Unix-millisecond cursors (the last two: a broker's sub-accounts).
HISTORIES = ("/api/v5/asset/deposit-history", "/api/v5/asset/withdrawal-history",
             "/api/v5/finance/staking-defi/eth/purchase-redeem-history",
             "/api/v5/finance/staking-defi/sol/purchase-redeem-history",
             "/api/v5/asset/broker/nd/subaccount-deposit-history",
             "/api/v5/asset/broker/nd/subaccount-withdrawal-history")
#: Not a millisecond a datetime can hold, or not ASCII digits (superscript two, Arabic-Indic 123,
#: fullwidth 1, a sign, a fraction).
BAD_CURSORS = ("999999999999999", "253402300800000", "\u00b2", "\u0661\u0662\u0663", "\uff11", "-1", "1.5", "1e3", " 1")


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.close()


def broker(stack: Stack) -> Creds:
    c = stack.new_user(funds={"USDT": "100"})
    stack.call("PUT", f"/admin/brokers/{c.uid}", json={"level": 1})
    return c


def signed_raw(c: Creds, method: str, target: str, host: str, body: bytes = b"") -> bytes:
    return request(method, target, host, auth_headers(c, method, target, body), body)


# -- 1. time cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", HISTORIES)
def test_bad_time_cursors_are_51000_naming_the_field_on_a_kept_connection(stack: Stack, path: str) -> None:
    c = broker(stack)
    host = urlsplit(stack.base_url).netloc
    raws, expected = [], []
    for field in ("after", "before"):
        for value in BAD_CURSORS:
            raws.append(signed_raw(c, "GET", f"{path}?{field}={quote(value)}", host))
            expected.append(field)
    # the largest moment a cursor can name, and zero, are fine
    raws += [signed_raw(c, "GET", f"{path}?after=253402300799999", host), signed_raw(c, "GET", f"{path}?before=0",
                                                                                     host)]
    replies = exchange(stack.base_url, *raws)  # one connection: every reply keeps it open
    for reply, field in zip(replies, expected, strict=False):
        body = reply.json()
        assert (reply.status, body["code"], body["data"]) == (400, "51000", []), (field, reply)
        assert f"Parameter {field} error" in body["msg"], body
    for reply in replies[len(expected):]:
        assert (reply.status, reply.json()["code"]) == (200, "0"), reply


# -- 2. deeply nested JSON ---------------------------------------------------------------------------


def test_deeply_nested_json_is_50002(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    for body in (b"[" * 30000 + b"]" * 30000, b'{"a":' * 10000 + b"1" + b"}" * 10000):
        refused(api.signed(c, "POST", "/api/v5/asset/transfer", body), 400, "50002")
    assert stack.balances(c.uid) == before


# -- 3. a product named twice in acceptTerms ---------------------------------------------------------


def test_terms_named_twice_are_accepted_once(stack: Stack) -> None:
    r = stack.admin.post("/admin/users", json={"env": "live", "acceptTerms": ["ETH", "ETH", "SOL", "ETH"]})
    assert r.status_code == 200, r.text
    uid = r.json()["uid"]
    # accepting again is a no-op; the user can stake ETH (terms accepted) and was made once
    assert stack.call("POST", f"/admin/users/{uid}/terms", json={"product": "ETH"})["accepted"] is True
    assert [u["uid"] for u in stack.call("GET", "/admin/users", params={"limit": 1000})].count(uid) == 1
    too_long = stack.admin.post("/admin/users", json={"acceptTerms": ["X" * 33]})
    assert too_long.status_code == 422, too_long.text


# -- 4. clock advance ---------------------------------------------------------------------------------


def test_clock_advance_is_bounded_and_each_mistake_has_its_message(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.call("POST", "/admin/clock/freeze")
    start = dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])

    def refused_advance(payload: dict[str, object], fragment: str) -> None:
        r = stack.admin.post("/admin/clock/advance", json=payload)
        assert r.status_code == 400, r.text
        assert fragment in r.json()["message"], r.json()

    refused_advance({"to": "9999-01-01T00:00:00Z"}, "at most 3660 days ahead")
    refused_advance({"to": (start + dt.timedelta(days=3661)).isoformat()}, "at most 3660 days ahead")
    refused_advance({}, "say how far to move the sandbox clock")
    refused_advance({"to": (start - dt.timedelta(days=1)).isoformat()}, "is before the sandbox clock")
    refused_advance({"days": 1, "to": (start + dt.timedelta(days=2)).isoformat()}, "not both")
    refused_advance({"to": "2030-01-01T00:00:00"}, "needs a time zone")
    assert stack.admin.post("/admin/clock/advance", json={"days": 3661}).status_code == 422
    # nothing moved
    assert stack.call("GET", "/admin/clock")["now"] == start.isoformat()
    # zero runs what is due and leaves the clock where it is
    zero = stack.call("POST", "/admin/clock/advance", json={"days": 0})
    assert zero["now"] == start.isoformat()
    # (on a first start that is the day's DCD listing, due at the last 08:00 UTC: nothing later)
    assert all(dt.datetime.fromisoformat(j["dueAt"]) <= start for j in zero["jobsRun"]), zero
    assert stack.call("POST", "/admin/clock/advance", json={"days": 0})["jobsRunCount"] == 0
    # a frozen clock moves only when advanced, to the exact moment asked
    time.sleep(1.1)
    assert stack.call("GET", "/admin/clock")["now"] == start.isoformat()
    moved = stack.call("POST", "/admin/clock/advance", json={"days": 3})
    assert moved["now"] == (start + dt.timedelta(days=3)).isoformat()
    assert moved["jobsRunCount"] == len(moved["jobsRun"]) > 0
    assert stack.call("POST", "/admin/clock/resume")["running"] is True
    time.sleep(1.1)
    assert dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"]) > start + dt.timedelta(days=3)


def test_a_long_advance_is_worked_through_day_by_day(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    services = stack.services
    start = services.pin_clock(running=False)
    seen: list[dt.datetime] = []
    ran = services.advance_clock(by=dt.timedelta(days=20, hours=5), progress=lambda at, runs: seen.append(at))
    # windows of at most a day (from the installation's first start), the last one ending at the target
    assert 21 <= len(seen) <= 22 and seen[-1] == start + dt.timedelta(days=20, hours=5)
    assert all(dt.timedelta(0) < later - earlier <= dt.timedelta(days=1) for earlier, later in pairwise(seen))
    # every daily job ran once a day, in time order
    assert len([r for r in ran if r.job == "staking_rewards:ETH"]) in (20, 21)
    assert [r.due_at for r in ran] == sorted(r.due_at for r in ran)


# -- 5. wrong passphrases ------------------------------------------------------------------------------


def test_wrong_passphrases_are_limited_per_key_and_per_ip(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(rate_limit_factor=1.0)
    api = Api(stack)
    try:
        owner = stack.new_user(funds={"USDT": "100"})
        assert ok(api.get(owner, "/api/v5/asset/balances"))[0]["availBal"] == "100"  # remembered as correct
        for _ in range(5):  # five wrong passphrases a minute per key are checked and refused
            refused(api.get(owner, "/api/v5/asset/balances", passphrase="Wrong-pass-1"), 401, "50105")
        # the sixth is refused without the slow check, with the rate-limit code
        throttled = refused(api.get(owner, "/api/v5/asset/balances", passphrase="Wrong-pass-2"), 429, "50011")
        assert "passphrase" in throttled["msg"]
        # the owner, whose passphrase this server has already verified, is not locked out
        assert ok(api.get(owner, "/api/v5/asset/balances"))[0]["availBal"] == "100"
        # per IP: 20 failures a minute over any keys (5 so far), then every unverified passphrase waits
        others = [stack.new_user() for _ in range(4)]
        for c in others[:3]:
            for _ in range(5):
                refused(api.get(c, "/api/v5/asset/balances", passphrase="Wrong-pass-3"), 401, "50105")
        for c in others[3:]:
            refused(api.get(c, "/api/v5/asset/balances", passphrase="Wrong-pass-4"), 429, "50011")
            refused(api.get(c, "/api/v5/asset/balances"), 429, "50011")  # not yet verified here
    finally:
        api.close()


# -- 7. the currency of a rate-limit key ---------------------------------------------------------------


def test_transfer_limit_counts_one_currency_however_it_is_spelled(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(rate_limit_factor=1.0)
    api = Api(stack)
    try:
        c = stack.new_user(funds={"USDT": "100"})
        codes = [api.post(c, "/api/v5/asset/transfer", {"ccy": ccy, "amt": "1", "from": "6", "to": "18"}).json()["code"]
                 for ccy in ("USDT", "usdt", "Usdt", "uSdt") * 2]
        assert sorted(codes) == ["0", "0"] + ["50011"] * 6, codes  # 2 a second per user and currency
        assert stack.balances(c.uid)[("18", "USDT")] == 2
    finally:
        api.close()


# -- 8. frozen API keys -------------------------------------------------------------------------------


def test_a_frozen_key_gets_50100_until_unfrozen(stack: Stack) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    client = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url,
                                   debug=False)
    assert client.get_balances()["code"] == "0"
    frozen = stack.call("POST", f"/admin/api-keys/{c.api_key}/freeze")
    assert frozen["frozen"] is True
    reply = client.get_balances()
    assert (reply["code"], reply["data"]) == ("50100", [])
    # frozen for transfers too, and nothing moved
    assert client.funds_transfer("USDT", "1", "6", "18")["code"] == "50100"
    assert stack.balances(c.uid) == {("6", "USDT"): 100}
    assert stack.call("POST", f"/admin/api-keys/{c.api_key}/unfreeze")["frozen"] is False
    assert client.get_balances()["code"] == "0"
    assert stack.admin.post("/admin/api-keys/no-such-key/freeze").status_code == 404


# -- 9. secrets in validation errors ------------------------------------------------------------------


def test_admin_validation_errors_never_echo_what_was_sent(stack: Stack) -> None:
    uid = stack.call("POST", "/admin/users", json={"env": "live"})["uid"]
    for payload in ({"passphrase": "Sh0rt!"}, {"passphrase": "Sh0rt!" * 10}, {"perms": "Sh0rt!-not-a-list"}):
        r = stack.admin.post(f"/admin/users/{uid}/api-keys", json=payload)
        assert r.status_code == 422, r.text
        assert "Sh0rt!" not in r.text, r.text
        assert r.json()["detail"][0]["loc"][-1] in ("passphrase", "perms")


# -- 10. the OKX envelope for every method and request-target form ------------------------------------


def test_trace_and_odd_methods_get_the_okx_envelope(stack: Stack, api: Api) -> None:
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        r = api.raw(method, "/api/v5/asset/balances")
        refused(r, 405, "50115")
    refused(api.raw("TRACE", "/api/v5/no-such-route"), 404, "404")
    refused(api.raw("GET", "/api/v5"), 404, "404")


def test_absolute_form_targets_reach_the_okx_routes(stack: Stack) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    host = urlsplit(stack.base_url).netloc
    replies = exchange(stack.base_url,
                       request("GET", f"http://{host}/api/v5/public/time", host),
                       request("GET", f"http://{host}/api/v5/no-such-route", host),
                       request("TRACE", f"http://{host}/api/v5/public/time", host),
                       # signed over the path, as clients sign
                       request("GET", f"http://{host}/api/v5/asset/balances", host,
                               auth_headers(c, "GET", "/api/v5/asset/balances")))
    assert (replies[0].status, replies[0].json()["code"]) == (200, "0")
    assert replies[1].status == 404 and replies[1].json() == {"code": "404", "msg": "Not Found", "data": []}
    assert (replies[2].status, replies[2].json()["code"]) == (405, "50115")
    assert replies[3].json()["data"][0]["availBal"] == "100", replies[3]
    assert all("detail" not in json.loads(r.body) for r in replies)
    assert httpx.get(stack.base_url + "/healthz").json()["status"] == "ok"
