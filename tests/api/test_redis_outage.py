"""A Redis outage degrades the shared rate limits to per-process ones; it never fails a request.

The server counts in its own memory while Redis cannot answer (a warning, a metric, ``/healthz``
says ``degraded``), and goes back to Redis once it answers again."""

from __future__ import annotations

import time
from collections.abc import Callable

import ccxt
import httpx

from tests.api.test_okx_errors import Api, ok, refused
from tests.stack import start_stack
from tests.support.external import PrivateRedis


def test_a_redis_outage_degrades_to_per_process_limits(backend: str, make_db: Callable[[str], str]) -> None:
    with PrivateRedis() as redis:
        stack = start_stack(make_db(backend), redis_url=redis.url, rate_limit_factor=1.0)
        api = Api(stack)
        try:
            c = stack.new_user(funds={"USDT": "100"})
            assert ok(api.get(c, "/api/v5/asset/balances"))[0]["availBal"] == "100"
            health = httpx.get(stack.base_url + "/healthz").json()
            assert (health["status"], health["rateLimits"]) == ("ok", "redis"), health

            redis.stop()
            # every surface still answers: public, signed, the Gemini adapter, the admin API
            assert ok(api.raw("GET", "/api/v5/public/time"))
            replies = [api.get(c, "/api/v5/asset/balances") for _ in range(7)]
            codes = [r.json()["code"] for r in replies]
            # and the limits still hold, counted in this process: 6 a second per user
            assert codes.count("0") == 6 and codes.count("50011") == 1, codes
            refused(next(r for r in replies if r.json()["code"] == "50011"), 429, "50011")
            gemini = ccxt.gemini()
            gemini.urls["api"] = {k: stack.base_url for k in ("public", "private", "web", "webExchange")}
            assert isinstance(gemini.publicGetV1StakingRates(), dict)
            assert stack.balances(c.uid)[("6", "USDT")] == 100
            health_reply = httpx.get(stack.base_url + "/healthz")
            assert health_reply.status_code == 200
            assert health_reply.json() == {"status": "degraded", "sandbox": True, "database": "ok",
                                           "rateLimits": "memory (redis unavailable)"}
            metrics = httpx.get(stack.base_url + "/metrics").text
            fallbacks = [line for line in metrics.splitlines()
                         if line.startswith("stakehouse_rate_limit_fallback_total ")]
            assert fallbacks and float(fallbacks[0].split()[1]) >= 1, fallbacks

            redis.start()  # back on the same port: the health check finds it, counting goes back there
            deadline = time.monotonic() + 10
            while httpx.get(stack.base_url + "/healthz").json()["status"] != "ok":
                assert time.monotonic() < deadline, "the server did not go back to Redis"
                time.sleep(0.2)
            assert ok(api.get(c, "/api/v5/asset/balances"))[0]["availBal"] == "100"
            assert httpx.get(stack.base_url + "/healthz").json()["rateLimits"] == "redis"
        finally:
            api.close()
            stack.stop()
