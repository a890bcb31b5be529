"""Bad input on every route: never a 5xx, always the protocol's own error, nothing changed.

Every OKX route gets every value of a corpus (out-of-range numbers, non-ASCII digits, exponents,
control characters, over-long text, JSON of the wrong type and absurd nesting): once with every
parameter name the API knows set to it, and once for each parameter alone. The Gemini routes get
the same corpus in their payload fields. The database (row counts of every table and every ledger
balance) and the audit are compared before and after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import cycle
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from stakehouse.api.okx import routes as okx_routes
from stakehouse.db.tables import ledger_accounts, metadata
from tests.api.test_gemini_api import gemini_key, payload_text, signed_headers
from tests.api.test_okx_errors import Api, encode
from tests.stack import Creds, Stack

#: Every parameter name an OKX route of ours reads.
NAMES = ("acctLv", "addr", "addrType", "after", "amt", "apiKey", "areaCode", "before", "begin", "ccy", "chain",
         "chgMaker", "chgTaker", "chgType", "clientId", "clientIP", "days", "depId", "dest", "effDate", "end", "fee",
         "from", "fromWdId", "instFamily", "instId", "instType", "ip", "label", "limit", "mainAcct", "mgnType",
         "ordId", "page", "passphrase", "perm", "quoteCcyType", "state", "status", "subAcct", "to", "toAddr",
         "toAddrType", "transId", "txId", "type", "uid", "uly", "wdId", "canTransOut", "tdMode", "side", "ordType",
         "sz", "px", "tgtCcy", "clOrdId", "tag", "bar", "creditId", "quoteCcy", "beginTime", "endTime")

#: Query-string values (none of them valid for any parameter of any route).
QUERY_VALUES = ("999999999999999", "253402300800000", "99999999999999999999999", "-1", "\u00b2", "\u0661\u0662\u0663",
                "\uff11", "1e308", "1e-7", "0x10", "9" * 40, "x" * 300, "\x00", "\u00fc\u00e9", "%", "' OR 1=1 --",
                "<script>", ",,,", "1.5.5", " ", "\ud7ff\u202e", "-0", "+1")

#: JSON values for POST bodies.
JSON_VALUES: tuple[Any, ...] = ("\u00b2", "\u0661\u0662\u0663", "-1", "9" * 40, "x" * 300, "\x00", "1e308", "1.5.5",
                                -1, 10**40, 1e308, -0.0, True, False, [], {}, [1, [2]], {"a": {"b": None}}, "", " ")

#: Gemini payload fields.
GEMINI_FIELDS = ("providerId", "currency", "amount", "since", "until", "limit", "sortAsc", "account")
GEMINI_PATHS = ("/v1/balances/staking", "/v1/staking/stake", "/v1/staking/unstake", "/v1/staking/history",
                "/v1/staking/rewards")


def state(stack: Stack) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    """Row counts of every table and every ledger balance."""
    with stack.services.db.read() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in metadata.sorted_tables}
        balances = [tuple(r) for r in conn.execute(
            select(ledger_accounts.c.owner, ledger_accounts.c.acct_type, ledger_accounts.c.ccy,
                   ledger_accounts.c.available, ledger_accounts.c.locked).order_by(ledger_accounts.c.id))]
    return counts, balances


@pytest.fixture
def caller(stack: Stack) -> Creds:
    """An ND broker master with money in its funding account (so requests get past the broker checks)."""
    c = stack.new_user(funds={"USDT": "100"})
    stack.call("PUT", f"/admin/brokers/{c.uid}", json={"level": 1})
    return c


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.close()


def envelope(r: httpx.Response, where: str) -> dict[str, Any]:
    assert r.status_code < 500, (where, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), (where, r.headers)
    body = r.json()
    assert set(body) == {"code", "msg", "data"} and isinstance(body["code"], str), (where, body)
    return body


def test_every_okx_route_answers_bad_input_in_its_envelope_and_changes_nothing(stack: Stack, api: Api,
                                                                                caller: Creds) -> None:
    before = state(stack)
    one_at_a_time = cycle(NAMES)
    answered = 0
    for route in okx_routes.ALL:
        target = "/api/v5" + route.path
        if route.method == "GET":
            for value in QUERY_VALUES:
                shapes = [dict.fromkeys(NAMES, value)] + [{next(one_at_a_time): value} for _ in range(3)]
                for params in shapes:
                    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
                    body = envelope(api.get(caller, f"{target}?{query}"), f"GET {target}?{query[:80]}")
                    answered += 1
                    if body["code"] == "0":  # a read may ignore what it does not read; a read changes nothing
                        assert route.method == "GET"
        else:
            for json_value in JSON_VALUES:
                shapes = [dict.fromkeys(NAMES, json_value)] + [{next(one_at_a_time): json_value} for _ in range(3)]
                for payload in shapes:
                    body = envelope(api.post(caller, target, payload), f"POST {target} {str(payload)[:80]}")
                    assert body["code"] != "0", (target, payload, body)
                    answered += 1
            for raw in (b"[" * 30000 + b"]" * 30000, b"\xff\xfe", b'{"amt": NaN}', b'{"amt": 1e99999}', b"{" * 10,
                        b'{"a": "\\ud800"}', b"null", b"7"):
                body = envelope(api.signed(caller, "POST", target, raw), f"POST {target} {raw[:20]!r}")
                assert body["code"] != "0", (target, raw, body)
                answered += 1
    assert answered > 1000
    assert state(stack) == before
    stack.audit_ok()


def test_every_gemini_route_answers_bad_input_and_changes_nothing(stack: Stack, caller: Creds) -> None:
    key = gemini_key(stack, caller.uid, roles=("Trader",))
    before = state(stack)
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        for path in GEMINI_PATHS:
            for value in JSON_VALUES:
                for fields in (dict.fromkeys(GEMINI_FIELDS, value), *({name: value} for name in GEMINI_FIELDS)):
                    text = payload_text(path, fields)
                    r = http.post(path, headers=signed_headers(key, text))
                    assert r.status_code < 500, (path, fields, r.text)
                    body = r.json()
                    if r.status_code != 200:
                        assert body["result"] == "error" and isinstance(body["reason"], str), (path, fields, body)
                    else:  # a read may ignore what it does not read
                        assert path in ("/v1/balances/staking", "/v1/staking/history", "/v1/staking/rewards"), body
        r = http.get("/v1/staking/rates", params={n: "\u00b2" for n in GEMINI_FIELDS})
        assert r.status_code == 200 and isinstance(json.loads(r.text), dict)
    assert state(stack) == before
    stack.audit_ok()


def test_encode_is_json() -> None:
    # the corpus's JSON values go out as JSON (a float like 1e308 stays a JSON number)
    assert json.loads(encode({"a": 1e308, "b": 10**40})) == {"a": 1e308, "b": 10**40}


#: Values for the admin API's path parameters and JSON fields.
ADMIN_VALUES: tuple[Any, ...] = ("\x00", "\u00b2", "9" * 40, "x" * 300, -1, 10**40, 1e308, [], {"a": "\x00"}, True)


def test_every_admin_route_answers_bad_input_without_a_5xx(stack: Stack) -> None:
    """The admin API (FastAPI's validation, then the services) on odd path and query parameters and
    bodies whose every documented field is odd: a 4xx with a JSON body, never a 5xx. The clock and
    maintenance mode are left alone (this server is shared; each has tests of its own)."""
    schema = stack.call("GET", "/admin/openapi.json")
    sent = 0
    for path, operations in schema["paths"].items():
        if path.startswith(("/admin/clock", "/admin/maintenance")):
            continue
        for method, operation in operations.items():
            ref = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref", ""))
            fields = list(schema["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {})) if ref else []
            params = operation.get("parameters", [])
            for value in ADMIN_VALUES:
                target = path
                for name in [p["name"] for p in params if p["in"] == "path"]:
                    target = target.replace("{" + name + "}", quote(str(value), safe=""))
                query = {p["name"]: str(value) for p in params if p["in"] == "query"}
                body = dict.fromkeys(fields, value) if fields else None
                r = stack.admin.request(method.upper(), target, params=query, json=body)
                assert r.status_code < 500, (method, target, body, r.status_code, r.text[:300])
                assert isinstance(r.json(), dict | list), (method, target, r.text[:300])
                sent += 1
    assert sent > 200
    stack.audit_ok()
