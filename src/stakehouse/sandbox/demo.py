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

from stakehouse.services import Services

DEMO_FUNDS = {"ETH": Decimal("10"), "SOL": Decimal("200"), "USDT": Decimal("10000"), "BTC": Decimal("1")}
TERMS = ("ETH", "SOL")
#: Staking rates published for the sandbox's first day, so rewards accrue from the start.
DEMO_RATES = {"ETH": Decimal("0.0284"), "SOL": Decimal("0.0712")}


def data_dir(services: Services) -> Path:
    path = services.settings.sqlite_path()
    return path.parent if path else Path("data")


def _make_user(services: Services, name: str, env: str) -> dict[str, Any]:
    user = services.accounts.create_user(env=env, label=name, kyc_level=2, accept_terms=TERMS)
    key = services.accounts.create_key(user.uid, perms=["read_only", "trade", "withdraw"], label=f"{name}-key")
    for ccy, amt in DEMO_FUNDS.items():
        services.assets.credit_deposit(user.uid, ccy, amt, idempotency_key=f"sandbox-seed-{user.uid}-{ccy}")
    return {"name": name, "uid": user.uid, "env": env, "apiKey": key.key.api_key, "secretKey": key.secret,
            "passphrase": key.passphrase, "flag": "1" if env == "demo" else "0"}


def bootstrap(services: Services) -> dict[str, Any]:
    """Return the sandbox credentials, creating them on the first start."""
    file = data_dir(services) / "demo-credentials.json"
    if file.exists():
        return json.loads(file.read_text())  # type: ignore[no-any-return]
    creds = {
        "adminToken": services.settings.admin_token or secrets.token_urlsafe(24),
        "users": [_make_user(services, "alice", "demo"), _make_user(services, "bob", "live")],
    }
    for product, rate in DEMO_RATES.items():
        services.staking.publish_rate(product, services.staking.today(), rate)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(creds, indent=2))
    file.chmod(0o600)
    return creds


def banner(creds: dict[str, Any], base_url: str) -> str:
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
    lines += ["", "  funded with " + ", ".join(f"{v} {k}" for k, v in DEMO_FUNDS.items()) + " each",
              "  staking rates published: " + ", ".join(f"{k} {v}" for k, v in DEMO_RATES.items())
              + " (change: PUT /admin/staking/products/<ETH|SOL>/rates/<day>)", ""]
    return "\n".join(lines)
