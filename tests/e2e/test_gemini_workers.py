"""Nonces are consumed safely across worker processes: two servers on one database, the same
signed request sent to both at once, again and again; exactly one of each pair is served."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import httpx

from tests.stack import two_workers

PROVIDER = "62b21e17-2534-4b9f-afcf-b7edb609dd8d"


def test_one_nonce_is_served_once_by_two_processes(make_db: Callable[[str], str], backend: str) -> None:
    with two_workers(make_db(backend)) as (a, b, call):
        call("POST", "/admin/providers", json={"name": "Example Validators", "providerId": PROVIDER})
        call("PUT", f"/admin/providers/{PROVIDER}/products/ETH", json={})
        uid = call("POST", "/admin/users", json={"env": "live", "kycLevel": 2})["uid"]
        call("POST", f"/admin/users/{uid}/deposits", json={"ccy": "ETH", "amt": "10"})
        gemini = call("POST", f"/admin/users/{uid}/gemini-keys", json={"roles": ["Trader"]})

        rounds = 6
        lock = threading.Lock()
        for n in range(rounds):
            text = base64.b64encode(json.dumps({
                "request": "/v1/staking/stake", "nonce": str(int(time.time() * 1000) + n),
                "providerId": PROVIDER, "currency": "ETH", "amount": "1"}).encode()).decode()
            headers = {"X-GEMINI-APIKEY": gemini["apiKey"], "X-GEMINI-PAYLOAD": text,
                       "X-GEMINI-SIGNATURE": hmac.new(gemini["secret"].encode(), text.encode(),
                                                      hashlib.sha384).hexdigest()}
            barrier = threading.Barrier(2)
            replies: list[httpx.Response] = []

            def send(base: str, h: dict[str, str] = headers, bar: threading.Barrier = barrier,
                     out: list[httpx.Response] = replies) -> None:
                with httpx.Client(timeout=30) as client:
                    bar.wait()
                    r = client.post(base + "/v1/staking/stake", headers=h)
                with lock:
                    out.append(r)

            threads = [threading.Thread(target=send, args=(base,)) for base in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(r.status_code for r in replies) == [200, 400], [r.text for r in replies]
            assert [r.json()["reason"] for r in replies if r.status_code == 400] == ["InvalidNonce"]

        balances = {(r["acctType"], r["ccy"]): Decimal(r["available"])
                    for r in call("GET", f"/admin/users/{uid}/balances")}
        assert balances[("6", "ETH")] == Decimal(10 - rounds)
        staking = call("GET", f"/admin/users/{uid}/staking-balances")
        assert [(s["ccy"], Decimal(s["balance"])) for s in staking] == [("ETH", Decimal(rounds))]
        assert call("GET", "/admin/audit")["ok"]

