"""Sandbox bootstrap: an admin token and demo users with funded accounts and API keys.

Created once; the credentials are kept in ``demo-credentials.json`` beside the database (the
sandbox's own file, never used in production) so every start can print them again.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from stakehouse.wiring import Services

DEMO_FUNDS = {"ETH": Decimal("10"), "SOL": Decimal("200"), "USDT": Decimal("10000"), "BTC": Decimal("1")}
TERMS = ("ETH", "SOL")
#: Staking rates published for the sandbox's first day, so rewards accrue from the start.
DEMO_RATES = {"ETH": Decimal("0.0284"), "SOL": Decimal("0.0712")}
#: The sandbox's staking provider for the Gemini API, its products, rates (bps) and USD prices.
DEMO_PROVIDER = "5f1c1b43-7f0e-4d5c-9a51-2b0d6f1e8a27"
DEMO_PROVIDER_PRODUCTS: dict[str, dict[str, Any]] = {
    "ETH": {"deposit_usd_limit": "500000"},
    "SOL": {"deposit_usd_limit": "500000", "unstake_mode": "queued", "daily_redemption_cap": "10000",
            "unbonding_days": 2},
}
OAUTH_REDIRECT = "http://127.0.0.1:8765/callback"
DEMO_BPS = {"ETH": Decimal("228.0197"), "SOL": Decimal("321.5282")}


def data_dir(services: Services) -> Path:
    path = services.settings.sqlite_path()
    return path.parent if path else Path("data")


def _make_user(services: Services, name: str, env: str) -> dict[str, Any]:
    user = services.accounts.create_user(env=env, label=name, kyc_level=2, accept_terms=TERMS)
    key = services.accounts.create_key(user.uid, perms=["read_only", "trade", "withdraw"], label=f"{name}-key")
    for ccy, amt in DEMO_FUNDS.items():
        services.chain.credit_deposit(user.uid, ccy, amt, idempotency_key=f"sandbox-seed-{user.uid}-{ccy}")
    return {"name": name, "uid": user.uid, "env": env, "apiKey": key.key.api_key, "secretKey": key.secret,
            "passphrase": key.passphrase, "flag": "1" if env == "demo" else "0"}


def credentials_file(services: Services) -> Path:
    return data_dir(services) / "demo-credentials.json"


def bootstrap(services: Services) -> dict[str, Any]:
    """Return the sandbox credentials, creating them on the first start."""
    file = credentials_file(services)
    if file.exists():
        creds: dict[str, Any] = json.loads(file.read_text())
    else:
        creds = {
            "adminToken": services.settings.admin_token or secrets.token_urlsafe(24),
            "users": [_make_user(services, "alice", "demo"), _make_user(services, "bob", "live")],
        }
        for product, rate in DEMO_RATES.items():
            services.staking.publish_rate(product, services.staking.today(), rate)
    if "gemini" not in creds:  # also added to a sandbox created before the Gemini API existed
        creds["gemini"] = _gemini_demo(services, creds["users"])
    if "broker" not in creds:  # both demo masters are ND brokers (broker/nd/* routes; docs/broker.md)
        for u in creds["users"]:
            services.broker.set_broker(u["uid"], level=1)
        creds["broker"] = {"uids": [u["uid"] for u in creds["users"]], "level": "lv1"}
    if "web" not in creds:  # web sign-in (docs/web.md): each demo user's login is its name
        creds["web"] = {}
        for u in creds["users"]:
            password = secrets.token_urlsafe(12)
            services.logins.set_password(u["uid"], u["name"], password)
            creds["web"][u["name"]] = password
    if "oauth" not in creds:  # an FD OAuth broker with a demo app (docs/oauth.md)
        creds["oauth"] = _oauth_demo(services)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(creds, indent=2))
    file.chmod(0o600)
    return creds


def _oauth_demo(services: Services) -> dict[str, Any]:
    """``acme``: an FD broker (api and oauth) with a confidential OAuth client that offers Fast API,
    redirecting to a local app (any program listening there, or none: the code is in the URL)."""
    broker = services.accounts.create_user(env="live", label="acme", kyc_level=2)
    fd = services.fd_brokers.set_up(broker.uid, code=None, types=("api", "oauth"), ratio=Decimal("0.3"),
                                    client_ratio=Decimal("0.2"))
    client, secret = services.oauth.register_client(broker.uid, name="Acme Demo App", redirect_uris=[OAUTH_REDIRECT],
                                                    scopes=["read_only", "trade"], fast_api=True)
    return {"brokerUid": broker.uid, "brokerCode": fd.code, "clientId": client.client_id, "clientSecret": secret,
            "redirectUri": OAUTH_REDIRECT}


def _gemini_demo(services: Services, users: list[dict[str, Any]]) -> dict[str, Any]:
    """A staking provider with ETH and SOL products and rates (their USD prices are the spot
    market's indexes), and a Gemini account key (Trader and Fund Manager) for each demo user."""
    ps = services.provider_staking
    if DEMO_PROVIDER not in {p.provider_id for p in ps.providers()}:
        ps.create_provider("Stakehouse Sandbox Validators", DEMO_PROVIDER)
    for ccy, settings in DEMO_PROVIDER_PRODUCTS.items():
        ps.set_product(DEMO_PROVIDER, ccy, settings)
        ps.publish_rate(DEMO_PROVIDER, ccy, ps.today(), DEMO_BPS[ccy])
    keys = {}
    for u in users:
        key, secret = services.gemini_keys.create_key(u["uid"], roles=["Trader", "FundManager"],
                                                      label=f"{u['name']}-gemini")
        keys[u["name"]] = {"apiKey": key.api_key, "secret": secret}
    return {"providerId": DEMO_PROVIDER, "keys": keys}


def banner(creds: dict[str, Any], base_url: str, *, rate_limit_factor: float = 1.0,
           credentials_file: Path | None = None) -> str:
    lines = [
        "",
        f"Stakehouse sandbox on {base_url}",
        f"  admin token : {creds['adminToken']}   (curl -H 'Authorization: Bearer <token>' {base_url}/admin/clock)",
        f"  admin docs  : {base_url}/admin/docs",
        "",
    ]
    for u in creds["users"]:
        lines += [
            f"  {u['name']} ({u['env']}, uid {u['uid']}, python-okx flag=\"{u['flag']}\")",
            f"    apiKey     {u['apiKey']}",
            f"    secretKey  {u['secretKey']}",
            f"    passphrase {u['passphrase']}",
        ]
    if "web" in creds:
        lines += [f"  web pages   : {base_url}/earn  sign in as "
                  + ", ".join(f"{name} / {password}" for name, password in creds["web"].items())
                  + "; the operator console at /console takes the admin token"]
    gemini = creds.get("gemini", {})
    for name, key in gemini.get("keys", {}).items():
        lines += [f"  {name} on the Gemini API (ccxt.gemini): apiKey {key['apiKey']}  secret {key['secret']}"]
    if gemini:
        lines += [f"  Gemini staking provider {gemini['providerId']}: "
                  + ", ".join(f"{k} {v} bps" for k, v in DEMO_BPS.items())]
    if "broker" in creds:
        lines += [f"  ND brokers ({creds['broker']['level']}): " + ", ".join(creds["broker"]["uids"])
                  + "  (broker/nd/* routes; deposits and withdrawals move as the clock advances)"]
    if "oauth" in creds:
        o = creds["oauth"]
        lines += [f"  OAuth app   : client_id {o['clientId']}  client_secret {o['clientSecret']}  "
                  f"redirect {o['redirectUri']}",
                  f"    of FD broker {o['brokerUid']} (code {o['brokerCode']}); consent at {base_url}/oauth/authorize"
                  "?response_type=code&client_id=<id>&redirect_uri=<redirect>  (docs/oauth.md)"]
    live = next((u for u in creds["users"] if u["env"] == "live"), None)
    if live is not None:
        lines += ["", "  spot market : BTC-USDT, ETH-USDT, SOL-USDT, ETH-BTC; the index moves one step per minute of "
                  "sandbox time and fills resting limit orders it crosses. A ready-to-run ccxt script:",
                  f"    import ccxt; ex = ccxt.okx({{'apiKey': '{live['apiKey']}', 'secret': '{live['secretKey']}', "
                  f"'password': '{live['passphrase']}'}}); ex.urls['api']['rest'] = '{base_url}'",
                  "    ex.transfer('USDT', 1000, 'funding', 'trading'); print(ex.fetch_ticker('BTC/USDT')['last'])",
                  "    print(ex.create_order('BTC/USDT', 'market', 'buy', 0.001)['id'], ex.fetch_balance()['BTC'])"]
    limits = ("OKX's and Gemini's own (e.g. 2 ETH purchases a second per user); for scripted runs start with "
              "STAKEHOUSE_RATE_LIMIT_FACTOR=100" if rate_limit_factor == 1 else f"x{rate_limit_factor:g} "
              "(STAKEHOUSE_RATE_LIMIT_FACTOR)")
    lines += ["", "  funded with " + ", ".join(f"{v} {k}" for k, v in DEMO_FUNDS.items()) + " each",
              "  staking rates published: " + ", ".join(f"{k} {v}" for k, v in DEMO_RATES.items())
              + " (change: PUT /admin/staking/products/<ETH|SOL>/rates/<day>)",
              "  clock       : runs with the wall clock; move it with POST /admin/clock/advance {\"days\": 30}, "
              "pin it with POST /admin/clock/freeze (or: stakehouse clock advance|freeze|resume)",
              f"  rate limits : {limits}"]
    if credentials_file is not None:
        lines += [f"  credentials : {credentials_file} (layout: README, \"The sandbox's credentials file\")"]
    return "\n".join([*lines, ""])
