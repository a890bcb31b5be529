"""An exception nobody expected reaches the client as OKX 50026, never as a stack trace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import uvicorn

from stakehouse.api.okx import routes as okx_routes
from stakehouse.api.okx.app import Call, OkxAdapter, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.app import create_app
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.stack import free_port


def crashing_handler(_call: Call) -> list[str]:
    raise RuntimeError("internal detail /srv/secret.py line 42")


def test_unhandled_exception_is_a_clean_50026(make_db: Callable[[str], str]) -> None:
    services = Services(Settings(database_url=make_db("sqlite"), server_key=new_server_key(), admin_token="t"))
    app = create_app(services, "t")
    # An adapter with one more route, installed ahead of the app's own.
    crash = Route("GET", "/crash", crashing_handler, None, Limit(10, 1, "ip"))
    OkxAdapter(services, [*okx_routes.ALL, crash]).install(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v5/crash")
        assert r.status_code == 500
        assert r.json() == {"code": "50026", "msg": "System error. Try again later", "data": []}
        assert "secret" not in r.text and "Traceback" not in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/v5/public/time").json()["code"] == "0"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.close()
