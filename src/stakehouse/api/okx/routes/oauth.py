"""Fast API (oauth-and-web.md section 4): ``POST /api/v5/users/oauth/fast-api-key``, called by the
broker with the user's access token, hands over the API key that consent created, once."""

from __future__ import annotations

from typing import Any

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import OkxError
from stakehouse.api.okx.ratelimit import Limit


def fast_api_key(call: Call) -> list[dict[str, Any]]:
    auth = call.caller
    if not auth.grant_id:  # an API key has no grant to take a key from
        raise OkxError("53017")
    key = call.services.oauth.fast_api_key(auth.grant_id)
    return [{"apiKey": key.api_key, "secretKey": key.secret, "passphrase": key.passphrase, "perm": key.perm,
             "ip": key.ips}]


ROUTES = [Route("POST", "/users/oauth/fast-api-key", fast_api_key, "read", Limit(1, 1, "uid"))]
