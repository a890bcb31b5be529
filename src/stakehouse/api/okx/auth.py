"""OKX request authentication, in the conventions' documented order (section 2.4)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import unquote

from stakehouse.accounts.rules import ip_allowed
from stakehouse.accounts.service import ApiKey, AuthKey, User
from stakehouse.api.okx.errors import OkxError
from stakehouse.clock import Clock
from stakehouse.security import PassphraseVerifier

_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)\Z")

#: Route permission -> the key permission it needs.
NEEDS = {"read": "read_only", "trade": "trade", "withdraw": "withdraw"}


@dataclass(frozen=True)
class AuthContext:
    user: User
    key: ApiKey
    ip: str

    @property
    def uid(self) -> str:
        return self.user.uid


def parse_timestamp(value: str) -> dt.datetime:
    if not _TS.match(value):
        raise OkxError("50112")
    try:
        return dt.datetime.fromisoformat(value)  # the pattern admits only UTC ("Z" or +00:00)
    except ValueError:  # e.g. month 13
        raise OkxError("50112") from None


def signature(secret: str, prehash: bytes) -> bytes:
    return b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest())


class Authenticator:
    def __init__(self, clock: Clock, *, skew_ms: int, sandbox: bool) -> None:
        self.clock = clock
        self.skew = dt.timedelta(milliseconds=skew_ms)
        self.sandbox = sandbox
        self.passphrases = PassphraseVerifier()

    def _fresh(self, ts: dt.datetime) -> bool:
        # Production: business time is wall time. Sandbox: clients sign with their host's clock
        # while business time may have been advanced far ahead, so either one makes it fresh.
        if abs(self.clock.wall() - ts) <= self.skew:
            return True
        return self.sandbox and abs(self.clock.now() - ts) <= self.skew

    def authenticate(self, *, headers: dict[str, str], method: str, target: str, body: bytes, ip: str,
                     perm: str, found: AuthKey | None) -> AuthContext:
        """Check a request against the key ``found`` for its OK-ACCESS-KEY (pure CPU: no I/O
        unless the sandbox clock must be read for a timestamp far from the wall clock)."""
        api_key = headers.get("ok-access-key", "")
        sign = headers.get("ok-access-sign", "")
        ts_text = headers.get("ok-access-timestamp", "")
        passphrase = headers.get("ok-access-passphrase", "")
        for value, code in ((api_key, "50103"), (sign, "50106"), (ts_text, "50107"), (passphrase, "50104")):
            if not value:
                raise OkxError(code)
        if not self._fresh(parse_timestamp(ts_text)):
            raise OkxError("50102")
        if found is None:
            raise OkxError("50111")
        env = "demo" if headers.get("x-simulated-trading", "") == "1" else "live"
        if env != found.user.env:
            raise OkxError("50101")
        if not self.passphrases.verify(found.passphrase_hash, passphrase):
            raise OkxError("50105")
        given = sign.encode()
        prefix = ts_text.encode() + method.encode()
        if not hmac.compare_digest(signature(found.secret, prefix + target.encode() + body), given):
            decoded = unquote(target)
            if decoded == target or not hmac.compare_digest(
                    signature(found.secret, prefix + decoded.encode() + body), given):
                raise OkxError("50113")
        if found.key.frozen:
            raise OkxError("50100")
        if not ip_allowed(found.key.ips, ip):
            raise OkxError("50110", param0=ip)
        if NEEDS[perm] not in found.key.perms.split(","):
            raise OkxError("50120")
        return AuthContext(found.user, found.key, ip)
