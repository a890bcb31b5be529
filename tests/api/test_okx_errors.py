"""OKX v5 error paths over HTTP: auth order and codes, envelope, bad input, idempotency, rate limits.

Plain ``httpx`` with our own signer, so every header, query target and body byte is under the test's
control. Every refusal must carry the documented HTTP status, the exact ``code`` string and
``data == []``; refused money-moving requests must leave balances untouched.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.stack import Creds, Stack

TRANSFER = "/api/v5/asset/transfer"
BALANCES = "/api/v5/asset/balances"
DEPOSITS = "/api/v5/asset/deposit-history"
MOVE_ONE = {"ccy": "USDT", "amt": "1", "from": "6", "to": "18"}

Balances = dict[tuple[str, str], Decimal]


# -- signing helper -------------------------------------------------------------------------------


def okx_ts(at: dt.datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as python-okx and ccxt send it."""
    moment = at or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sign(secret: str, ts: str, method: str, target: str, body: bytes = b"") -> str:
    prehash = ts.encode() + method.upper().encode() + target.encode() + body
    return base64.b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest()).decode()


def auth_headers(c: Creds, method: str, target: str, body: bytes = b"", *, ts: str | None = None,
                 secret: str | None = None, passphrase: str | None = None, demo: bool | None = None
                 ) -> dict[str, str]:
    stamp = ts if ts is not None else okx_ts()
    headers = {
        "OK-ACCESS-KEY": c.api_key,
        "OK-ACCESS-SIGN": sign(secret if secret is not None else c.secret, stamp, method, target, body),
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": passphrase if passphrase is not None else c.passphrase,
        "Content-Type": "application/json",
    }
    if (c.env == "demo") if demo is None else demo:
        headers["x-simulated-trading"] = "1"
    return headers


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Api:
    """A thin client over one server: raw targets, raw bodies, optional signing."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.base_url, timeout=30)

    def raw(self, method: str, target: str, *, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.request(method, target, content=body, headers=headers or {})

    def signed(self, c: Creds, method: str, target: str, body: bytes = b"", *, drop: tuple[str, ...] = (),
               **overrides: Any) -> httpx.Response:
        headers = auth_headers(c, method, target, body, **overrides)
        for name in drop:
            headers.pop(name)
        return self.raw(method, target, body=body or None, headers=headers)

    def get(self, c: Creds, target: str, **overrides: Any) -> httpx.Response:
        return self.signed(c, "GET", target, **overrides)

    def post(self, c: Creds, target: str, payload: Any, **overrides: Any) -> httpx.Response:
        return self.signed(c, "POST", target, encode(payload), **overrides)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.close()


def refused(r: httpx.Response, status: int, code: str, *, msg_has: str | None = None) -> dict[str, Any]:
    """Assert an OKX error reply: HTTP status, exact code string, empty data, JSON content type."""
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert (r.status_code, body.get("code")) == (status, code), (r.status_code, r.text)
    assert body["data"] == [], body
    assert isinstance(body["msg"], str) and body["msg"], body
    if msg_has is not None:
        assert msg_has in body["msg"], body
    return body


def ok(r: httpx.Response) -> list[Any]:
    body = r.json()
    assert (r.status_code, body.get("code"), body.get("msg")) == (200, "0", ""), (r.status_code, r.text)
    data = body["data"]
    assert isinstance(data, list)
    return data


# -- authentication -------------------------------------------------------------------------------


def test_missing_headers_are_reported_in_the_documented_order(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    body = encode(MOVE_ONE)
    cases: list[tuple[tuple[str, ...], str]] = [
        (("OK-ACCESS-KEY",), "50103"),
        (("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"), "50103"),
        (("OK-ACCESS-SIGN",), "50106"),
        (("OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"), "50106"),
        (("OK-ACCESS-TIMESTAMP",), "50107"),
        (("OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"), "50107"),
        (("OK-ACCESS-PASSPHRASE",), "50104"),
    ]
    for drop, code in cases:
        refused(api.signed(c, "POST", TRANSFER, body, drop=drop), 401, code)
    # an empty header value counts as missing
    headers = auth_headers(c, "POST", TRANSFER, body)
    headers["OK-ACCESS-PASSPHRASE"] = ""
    refused(api.raw("POST", TRANSFER, body=body, headers=headers), 401, "50104")
    # authentication comes before body parsing: unsigned malformed JSON is an auth error
    refused(api.raw("POST", TRANSFER, body=b"{nope", headers={"Content-Type": "application/json"}), 401, "50103")
    assert stack.balances(c.uid) == before


@pytest.mark.parametrize("stamp", ["2020-12-08 09:08:57.715Z", "1700000000000", "2020-12-08T09:08:57.715",
                                   "2020-13-08T09:08:57.715Z", "yesterday"])
def test_unparseable_timestamp_is_50112(stack: Stack, api: Api, stamp: str) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    refused(api.post(c, TRANSFER, MOVE_ONE, ts=stamp), 401, "50112")
    # the timestamp is checked before the key: an unknown key with a bad timestamp is still 50112
    stranger = Creds(c.uid, c.env, "no-such-key", c.secret, c.passphrase)
    refused(api.post(stranger, TRANSFER, MOVE_ONE, ts=stamp), 401, "50112")
    assert stack.balances(c.uid) == before


@pytest.mark.parametrize("offset_s", [-31, -120, 31, 120])
def test_stale_or_future_timestamp_is_50102(stack: Stack, api: Api, offset_s: int) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    stamp = okx_ts(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s + (1 if offset_s > 0 else -1)))
    refused(api.post(c, TRANSFER, MOVE_ONE, ts=stamp), 401, "50102", msg_has="expired")
    # skew is checked before the key
    stranger = Creds(c.uid, c.env, "no-such-key", c.secret, c.passphrase)
    refused(api.post(stranger, TRANSFER, MOVE_ONE, ts=stamp), 401, "50102")
    assert stack.balances(c.uid) == before


def test_timestamp_within_the_window_is_accepted(stack: Stack, api: Api) -> None:
    c = stack.new_user()
    for offset_s in (-20, 20):
        stamp = okx_ts(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s))
        assert ok(api.get(c, BALANCES, ts=stamp)) == []


def test_unknown_key_is_50111_and_checked_before_environment(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    for key in ("no-such-key", "k" * 65, c.api_key + "x"):
        stranger = Creds(c.uid, c.env, key, c.secret, c.passphrase)
        refused(api.post(stranger, TRANSFER, MOVE_ONE), 401, "50111")
        refused(api.post(stranger, TRANSFER, MOVE_ONE, demo=True), 401, "50111")
    assert stack.balances(c.uid) == before


def test_environment_mismatch_is_50101_both_ways(stack: Stack, api: Api) -> None:
    live = stack.new_user(env="live", funds={"USDT": "100"})
    demo = stack.new_user(env="demo", funds={"USDT": "100"})
    before = (stack.balances(live.uid), stack.balances(demo.uid))
    refused(api.post(live, TRANSFER, MOVE_ONE, demo=True), 401, "50101")
    refused(api.post(demo, TRANSFER, MOVE_ONE, demo=False), 401, "50101")
    # any header value other than "1" means live
    for flag in ("0", "true", "yes"):
        headers = auth_headers(demo, "POST", TRANSFER, encode(MOVE_ONE))
        headers["x-simulated-trading"] = flag
        refused(api.raw("POST", TRANSFER, body=encode(MOVE_ONE), headers=headers), 401, "50101")
    # environment is checked before the passphrase
    refused(api.post(live, TRANSFER, MOVE_ONE, demo=True, passphrase="wrong-Pass1"), 401, "50101")
    assert (stack.balances(live.uid), stack.balances(demo.uid)) == before
    # and the right environment works
    assert ok(api.get(live, BALANCES)) and ok(api.get(demo, BALANCES))


def test_wrong_passphrase_is_50105_before_signature(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    refused(api.post(c, TRANSFER, MOVE_ONE, passphrase=c.passphrase + "x"), 401, "50105")
    refused(api.post(c, TRANSFER, MOVE_ONE, passphrase=c.passphrase + "x", secret="wrong"), 401, "50105")
    assert stack.balances(c.uid) == before


def test_bad_signature_is_50113(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    refused(api.post(c, TRANSFER, MOVE_ONE, secret=c.secret + "x"), 401, "50113")
    # a body changed after signing: signed for 1 USDT, sent for 50
    headers = auth_headers(c, "POST", TRANSFER, encode(MOVE_ONE))
    tampered = encode({**MOVE_ONE, "amt": "50"})
    refused(api.raw("POST", TRANSFER, body=tampered, headers=headers), 401, "50113")
    # same JSON re-serialized differently is different bytes: the server must not re-serialize
    headers = auth_headers(c, "POST", TRANSFER, json.dumps(MOVE_ONE).encode())
    refused(api.raw("POST", TRANSFER, body=encode(MOVE_ONE), headers=headers), 401, "50113")
    # a signature for another method or path
    headers = auth_headers(c, "GET", TRANSFER, encode(MOVE_ONE))
    refused(api.raw("POST", TRANSFER, body=encode(MOVE_ONE), headers=headers), 401, "50113")
    headers = auth_headers(c, "GET", BALANCES + "?ccy=BTC")
    refused(api.raw("GET", BALANCES + "?ccy=ETH", headers=headers), 401, "50113")
    # garbage in the sign header
    headers = auth_headers(c, "GET", BALANCES)
    headers["OK-ACCESS-SIGN"] = "not-base64!"
    refused(api.raw("GET", BALANCES, headers=headers), 401, "50113")
    assert stack.balances(c.uid) == before


def test_read_only_key_cannot_transfer(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"}, perms=("read_only",))
    before = stack.balances(c.uid)
    refused(api.post(c, TRANSFER, MOVE_ONE), 200, "50120")
    assert stack.balances(c.uid) == before
    # it can still read
    assert ok(api.get(c, BALANCES))[0]["availBal"] == "100"


def test_ip_allow_list(stack: Stack, api: Api) -> None:
    elsewhere = stack.new_user(funds={"USDT": "100"}, ips=("10.1.2.3",))
    before = stack.balances(elsewhere.uid)
    body = refused(api.post(elsewhere, TRANSFER, MOVE_ONE), 401, "50110", msg_has="127.0.0.1")
    assert "10.1.2.3" not in body["msg"]
    refused(api.get(elsewhere, BALANCES), 401, "50110", msg_has="127.0.0.1")
    # the IP check comes after the signature check and before the permission check
    refused(api.post(elsewhere, TRANSFER, MOVE_ONE, secret="wrong"), 401, "50113")
    ro_elsewhere = stack.new_user(funds={"USDT": "100"}, ips=("10.1.2.3",), perms=("read_only",))
    refused(api.post(ro_elsewhere, TRANSFER, MOVE_ONE), 401, "50110")
    assert stack.balances(elsewhere.uid) == before

    local = stack.new_user(funds={"USDT": "100"}, ips=("127.0.0.1",))
    assert ok(api.post(local, TRANSFER, MOVE_ONE))[0]["amt"] == "1"
    assert stack.balances(local.uid)[("6", "USDT")] == Decimal("99")
    in_range = stack.new_user(ips=("10.0.0.0/8", "127.0.0.0/8"))
    assert ok(api.get(in_range, BALANCES)) == []


def test_revoked_key_is_50111(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    assert ok(api.get(c, BALANCES))[0]["availBal"] == "100"
    stack.call("POST", f"/admin/api-keys/{c.api_key}/revoke")
    before = stack.balances(c.uid)
    refused(api.get(c, BALANCES), 401, "50111")
    refused(api.post(c, TRANSFER, MOVE_ONE), 401, "50111")
    assert stack.balances(c.uid) == before
    # another key of the same user still works
    other = stack.add_key(c.uid, env=c.env)
    assert ok(api.get(other, BALANCES))[0]["availBal"] == "100"


@pytest.mark.parametrize("target", [
    BALANCES + "?ccy=BTC,ETH",  # python-okx: hand-built, left raw
    BALANCES + "?ccy=BTC%2CETH",  # ccxt: urlencoded
])
def test_query_string_signed_raw_or_percent_encoded(stack: Stack, api: Api, target: str) -> None:
    c = stack.new_user(funds={"USDT": "100", "BTC": "0.5", "ETH": "2"})
    data = ok(api.get(c, target))
    assert {r["ccy"]: r["availBal"] for r in data} == {"BTC": "0.5", "ETH": "2"}


def test_python_okx_style_unencoded_space_is_accepted(stack: Stack, api: Api) -> None:
    """python-okx signs ``ccy=BTC ETH`` but httpx sends ``BTC%20ETH``: the decoded retry must match."""
    c = stack.new_user(funds={"BTC": "0.5"})
    headers = auth_headers(c, "GET", DEPOSITS + "?txId=a b")
    assert ok(api.raw("GET", DEPOSITS + "?txId=a%20b", headers=headers)) == []


# -- envelope -------------------------------------------------------------------------------------


def test_unknown_path_is_json_404(stack: Stack, api: Api) -> None:
    c = stack.new_user()
    refused(api.raw("GET", "/api/v5/asset/nope"), 404, "404")
    refused(api.get(c, "/api/v5/nope/nope?x=1"), 404, "404")
    refused(api.raw("POST", "/api/v5/does-not-exist", body=b"{}"), 404, "404")


def test_wrong_method_is_405_50115(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    refused(api.get(c, TRANSFER), 405, "50115")
    refused(api.post(c, BALANCES, {}), 405, "50115")
    refused(api.raw("DELETE", BALANCES), 405, "50115")
    refused(api.raw("PUT", TRANSFER, body=encode(MOVE_ONE)), 405, "50115")
    refused(api.raw("POST", "/api/v5/public/time", body=b"{}"), 405, "50115")
    assert stack.balances(c.uid) == before


def test_malformed_json_is_400_50002(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    for raw in (b"{", b'{"ccy":"USDT",}', b"ccy=USDT&amt=1", b"\xff\xfe{}", b'{"ccy":"USDT","amt":"1"'):
        refused(api.signed(c, "POST", TRANSFER, raw), 400, "50002")
    assert stack.balances(c.uid) == before


def test_json_array_or_scalar_body_on_transfer_is_51000(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    for payload in ([MOVE_ONE], [], "USDT", 1):
        refused(api.post(c, TRANSFER, payload), 400, "51000")
    assert stack.balances(c.uid) == before


def test_body_over_64_kib_is_a_json_error_without_trace(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    big = encode({**MOVE_ONE, "pad": "x" * (70 * 1024)})
    r = api.signed(c, "POST", TRANSFER, big)
    body = refused(r, 400, "51000", msg_has="body")
    for leak in ("Traceback", "File \"", "Exception", "stakehouse"):
        assert leak not in r.text, r.text
    assert set(body) == {"code", "msg", "data"}
    # unsigned too: the size limit does not depend on auth
    r = api.raw("POST", TRANSFER, body=big, headers={"Content-Type": "application/json"})
    assert r.json()["data"] == [] and r.json()["code"] != "0" and "Traceback" not in r.text
    assert stack.balances(c.uid) == before
    # just under the limit is still processed normally
    fits = encode({**MOVE_ONE, "pad": "x" * (60 * 1024)})
    assert ok(api.signed(c, "POST", TRANSFER, fits))[0]["amt"] == "1"


def test_public_routes_need_no_key(stack: Stack, api: Api) -> None:
    # the server's time is business time: the shared sandbox clock, which other tests may have advanced
    now_ms = int(dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"]).timestamp() * 1000)
    data = ok(api.raw("GET", "/api/v5/public/time"))
    assert abs(int(data[0]["ts"]) - now_ms) < 60_000
    spot = ok(api.raw("GET", "/api/v5/public/instruments?instType=SPOT"))
    assert "BTC-USDT" in {r["instId"] for r in spot}
    for inst_type in ("SWAP", "FUTURES", "OPTION"):
        ok(api.raw("GET", f"/api/v5/public/instruments?instType={inst_type}"))
    # public routes ignore auth headers, even bogus ones
    bogus = {"OK-ACCESS-KEY": "nope", "OK-ACCESS-SIGN": "nope", "OK-ACCESS-TIMESTAMP": "nope",
             "OK-ACCESS-PASSPHRASE": "nope", "x-simulated-trading": "1"}
    ok(api.raw("GET", "/api/v5/public/time", headers=bogus))
    refused(api.raw("GET", "/api/v5/public/instruments"), 400, "50014", msg_has="instType")
    refused(api.raw("GET", "/api/v5/public/instruments?instType="), 400, "50014", msg_has="instType")
    for bad_type in ("spot", "NOPE", "SPOT,SWAP"):
        refused(api.raw("GET", f"/api/v5/public/instruments?instType={bad_type}"), 400, "51000", msg_has="instType")


# -- transfer input validation --------------------------------------------------------------------


def test_transfer_bad_input(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    before = stack.balances(c.uid)
    assert before[("6", "USDT")] == Decimal("100")

    def expect(payload: Any, status: int, code: str, msg_has: str | None = None) -> None:
        refused(api.post(c, TRANSFER, payload), status, code, msg_has=msg_has)

    for name in ("ccy", "amt", "from", "to"):
        missing = {k: v for k, v in MOVE_ONE.items() if k != name}
        expect(missing, 400, "50014", msg_has=name)
        expect({**MOVE_ONE, name: ""}, 400, "50014", msg_has=name)
        expect({**MOVE_ONE, name: None}, 400, "50014", msg_has=name)

    for amt in ("0", "-1", "0.000", "-0"):
        expect({**MOVE_ONE, "amt": amt}, 400, "58114")

    bad_amounts: list[Any] = ["abc", "1e3", "1E3", "NaN", "Infinity", "1.1234567", "1" * 200,
                              "1000000000001", "0x10", "1,5", " 1 2", "+1", "1.", ".5", True, {"v": 1}, [1]]
    for amt in bad_amounts:
        expect({**MOVE_ONE, "amt": amt}, 400, "51000", msg_has="amt")
    for raw in (b'{"ccy":"USDT","amt":1e2,"from":"6","to":"18"}',
                b'{"ccy":"USDT","amt":1.5e0,"from":"6","to":"18"}',
                b'{"ccy":"USDT","amt":NaN,"from":"6","to":"18"}',
                b'{"ccy":"USDT","amt":Infinity,"from":"6","to":"18"}'):
        refused(api.signed(c, "POST", TRANSFER, raw), 400, "51000", msg_has="amt")

    for ccy in ("NOPE", "US-DT", "X" * 40):
        expect({**MOVE_ONE, "ccy": ccy}, 400, "51000", msg_has="ccy")
    for field, value in (("from", "7"), ("from", "1"), ("from", "x"), ("to", "7"), ("to", "-6"),
                         ("type", "9"), ("type", "x")):
        expect({**MOVE_ONE, field: value}, 400, "51000", msg_has=field)

    expect({**MOVE_ONE, "from": "6", "to": "6", "type": "0"}, 200, "58123")
    expect({**MOVE_ONE, "from": "18", "to": "18"}, 200, "58123")
    expect({**MOVE_ONE, "amt": "100.000001"}, 200, "58116")
    expect({**MOVE_ONE, "amt": "1", "from": "18", "to": "6"}, 200, "58116")  # trading account is empty

    refused(api.signed(c, "POST", TRANSFER, b""), 400, "50014", msg_has="ccy")
    refused(api.signed(c, "POST", TRANSFER, b"{}"), 400, "50014", msg_has="ccy")

    assert stack.balances(c.uid) == before
    stack.audit_ok()


def test_transfer_moves_exact_amount_and_accepts_json_integers(stack: Stack, api: Api) -> None:
    """Control for the refusals above: the same shapes with valid values do move money."""
    c = stack.new_user(funds={"USDT": "100"})
    assert ok(api.post(c, TRANSFER, {**MOVE_ONE, "amt": "1.123456"}))[0]["amt"] == "1.123456"
    assert ok(api.signed(c, "POST", TRANSFER, b'{"ccy":"usdt","amt":2,"from":6,"to":18}'))[0]["amt"] == "2"
    after = stack.balances(c.uid)
    assert after[("6", "USDT")] == Decimal("96.876544")
    assert after[("18", "USDT")] == Decimal("3.123456")
    stack.audit_ok()


def test_transfer_retry_with_client_id_moves_money_once(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    payload = {**MOVE_ONE, "amt": "10", "clientId": "retry42"}
    first = ok(api.post(c, TRANSFER, payload))
    second = ok(api.post(c, TRANSFER, payload))
    assert first[0]["transId"] and first[0]["clientId"] == "retry42"
    assert second[0]["transId"] == first[0]["transId"]
    assert second == first
    after = stack.balances(c.uid)
    assert (after[("6", "USDT")], after[("18", "USDT")]) == (Decimal("90"), Decimal("10"))
    # a different clientId is a different transfer
    third = ok(api.post(c, TRANSFER, {**payload, "clientId": "retry43"}))
    assert third[0]["transId"] != first[0]["transId"]
    assert stack.balances(c.uid)[("6", "USDT")] == Decimal("80")
    # a malformed clientId is refused, not silently ignored
    refused(api.post(c, TRANSFER, {**payload, "clientId": "bad id!"}), 400, "51000", msg_has="clientId")
    # the same clientId with other data is refused, not answered with the first transfer
    refused(api.post(c, TRANSFER, {**payload, "amt": "11"}), 400, "51000", msg_has="clientId")
    assert stack.balances(c.uid)[("6", "USDT")] == Decimal("80")
    stack.audit_ok()


# -- query parameters on GET routes ---------------------------------------------------------------


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("limit=-1", "limit"),
    ("limit=1.5", "limit"), ("after=abc", "after"), ("before=abc", "before"), ("after=-5", "after"),
    ("state=99", "state"), ("type=1", "type"), ("ccy=US-DT", "ccy"),
])
def test_deposit_history_bad_query(stack: Stack, api: Api, query: str, field: str) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    refused(api.get(c, f"{DEPOSITS}?{query}"), 400, "51000", msg_has=field)


def test_deposit_history_good_query_is_accepted(stack: Stack, api: Api) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    assert [d["amt"] for d in ok(api.get(c, f"{DEPOSITS}?limit=1"))] == ["100"]
    assert len(ok(api.get(c, f"{DEPOSITS}?limit=100&after=99999999999999"))) == 1
    assert ok(api.get(c, f"{DEPOSITS}?limit=&after=")) != []  # empty values mean absent


@pytest.mark.parametrize("query", ["ccy=NOPE", "ccy=BTC,NOPE", "ccy=US-DT", "ccy=BTC,,ETH"])
def test_balances_unknown_or_bad_currency_is_51000(stack: Stack, api: Api, query: str) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    refused(api.get(c, f"{BALANCES}?{query}"), 400, "51000", msg_has="ccy")


# -- rate limits ----------------------------------------------------------------------------------


def test_rate_limit_is_per_user(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(rate_limit_factor=1.0)
    api = Api(stack)
    try:
        first = stack.new_user(funds={"USDT": "100"})
        second = stack.new_user(funds={"USDT": "100"})
        replies = [api.get(first, BALANCES) for _ in range(7)]  # the route allows 6 per second per user
        limited = [r for r in replies if r.status_code == 429]
        assert limited, [r.status_code for r in replies]
        for r in limited:
            assert r.json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
            assert r.headers["content-type"].startswith("application/json")
        assert all(r.json()["code"] == "0" for r in replies if r.status_code != 429)
        # the second user of the same server (same IP) has a budget of its own
        for _ in range(5):
            assert ok(api.get(second, BALANCES))[0]["availBal"] == "100"
    finally:
        api.close()
