"""Web logins and OAuth clients set through the CLI and the admin API: secrets hashed, shown once or
never, refused when bad."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from stakehouse.accounts.logins import BadCredentials
from stakehouse.config import Settings
from stakehouse.db.tables import web_logins
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.stack import Stack
from tests.support.cli import Done, invoke


def test_cli_sets_a_password_from_stdin_and_stores_only_a_hash(tmp_sqlite: str) -> None:
    key = new_server_key()
    services = Services(Settings(database_url=tmp_sqlite, server_key=key, sandbox=True))
    uid = services.accounts.create_user().uid
    env = {"STAKEHOUSE_SERVER_KEY": key}
    done = invoke("users", "set-password", uid, "carol", "--db", tmp_sqlite, input="correct-horse-battery\n", env=env)
    assert done.returncode == 0, done.stderr
    assert '"login": "carol"' in done.stdout and "correct-horse" not in done.stdout + done.stderr
    with services.db.read() as conn:
        stored = conn.execute(select(web_logins.c.password_hash).where(web_logins.c.uid == uid)).scalar_one()
    assert stored.startswith("scrypt$") and "correct-horse" not in stored
    assert services.logins.check("carol", "correct-horse-battery").uid == uid
    try:
        services.logins.check("carol", "wrong-horse-battery")
        raise AssertionError("a wrong password was accepted")
    except BadCredentials:
        pass
    short = invoke("users", "set-password", uid, "carol", "--db", tmp_sqlite, input="short\n", env=env)
    assert short.returncode != 0 and "password" in (short.stdout + short.stderr)
    services.close()


def test_admin_api_refuses_taken_logins_and_bad_passwords(stack: Stack) -> None:
    a, b = stack.new_user(), stack.new_user()
    login = "l" + a.uid
    assert stack.call("PUT", f"/admin/users/{a.uid}/web-login", json={"login": login, "password": "x" * 12}) == {
        "uid": a.uid, "login": login}
    r = stack.admin.put(f"/admin/users/{b.uid}/web-login", json={"login": login, "password": "y" * 12})
    assert r.status_code == 409 and "taken" in r.text
    for body in ({"login": "ab", "password": "x" * 12}, {"login": "Upper" + b.uid, "password": "x" * 12},
                 {"login": "ok" + b.uid, "password": "short"}, {"login": "ok" + b.uid, "password": "x\ty" * 4}):
        r = stack.admin.put(f"/admin/users/{b.uid}/web-login", json=body)
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
        assert "x\ty" not in r.text
    assert stack.admin.put("/admin/users/0000/web-login", json={"login": "nouser", "password": "x" * 12}
                           ).status_code == 404


def test_cli_registers_oauth_clients_showing_the_secret_once(tmp_sqlite: str) -> None:
    key = new_server_key()
    services = Services(Settings(database_url=tmp_sqlite, server_key=key, sandbox=True))
    broker = services.accounts.create_user().uid

    def cli(*args: str) -> Done:
        return invoke("oauth", *args, "--db", tmp_sqlite, env={"STAKEHOUSE_SERVER_KEY": key})

    refused = cli("client-create", broker, "App", "--redirect-uri", "https://a.example/cb")
    assert refused.returncode != 0 and "not an FD broker of type oauth" in refused.stdout + refused.stderr
    services.fd_brokers.set_up(broker, code=None, types=("oauth",), ratio=Decimal("0.3"), client_ratio=Decimal(0))
    made = cli("client-create", broker, "App", "--redirect-uri", "https://a.example/cb", "--fast-api")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    assert body["fastApi"] and body["public"] is False and len(body["clientSecret"]) >= 40
    listed = cli("client-list")
    assert body["clientId"] in listed.stdout and body["clientSecret"] not in listed.stdout
    public = json.loads(cli("client-create", broker, "Mobile", "--redirect-uri", "acme://cb", "--public").stdout)
    assert public["public"] and "clientSecret" not in public
    bad = cli("client-create", broker, "Bad", "--redirect-uri", "javascript:alert(1)")
    assert bad.returncode != 0
    assert cli("client-delete", body["clientId"]).returncode == 0
    assert body["clientId"] not in cli("client-list").stdout
    services.close()
