"""OKX request authentication, in the conventions' documented order (section 2.4)."""

from __future__ import annotations

import datetime as dt
import hmac
import re
from base64 import b64encode
from typing import NamedTuple
from urllib.parse import unquote

from stakehouse.accounts.rules import ip_allowed
from stakehouse.accounts.service import ApiKey, AuthKey, User
from stakehouse.api.okx.errors import OkxError
from stakehouse.clock import Clock
from stakehouse.security import PassphraseVerifier

_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)\Z")

#: Route permission -> the key permission it needs.
NEEDS = {"read": "read_only", "trade": "trade", "withdraw": "withdraw"}


class AuthContext(NamedTuple):
    """Who made a request: the user, the API key it signed with (``None`` for an OAuth bearer
    token), the client IP, and for a token its OAuth client (a named tuple: one per request)."""

    user: User
    key: ApiKey | None
    ip: str
    client_id: str = ""
    grant_id: int = 0

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
    # hmac.new with the digest's name: measured faster per request here than hmac.digest or a
    # hashlib constructor (bench/RESULTS.md)
    return b64encode(hmac.new(secret.encode(), prehash, "sha256").digest())


class Presented(NamedTuple):
    """What a request presents for a key that exists and fits its environment (steps 2-5a)."""

    found: AuthKey
    sign: str
    ts_text: str
    passphrase: str


class Authenticator:
    """The conventions' checks in their order (section 2.4), pure CPU: no I/O unless the sandbox
    clock must be read for a timestamp far from the wall clock. The passphrase step sits between
    :meth:`present` and :meth:`finish`: a remembered passphrase is checked here
    (:meth:`passphrase_known`); any other costs a slow hash, which the adapter runs off the event
    loop behind a failure limiter."""

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

    def present(self, headers: dict[str, str], found: AuthKey | None) -> Presented:
        """Headers (50103, 50106, 50107, 50104), timestamp (50112, 50102), key (50111),
        environment (50101)."""
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
        return Presented(found, sign, ts_text, passphrase)

    def passphrase_known(self, presented: Presented) -> bool:
        """Whether this process has already verified this passphrase for this key (no slow hash)."""
        return self.passphrases.known(presented.found.passphrase_hash, presented.passphrase)

    def passphrase_ok(self, presented: Presented) -> bool:
        """The slow check (scrypt): run it off the event loop."""
        return self.passphrases.verify(presented.found.passphrase_hash, presented.passphrase)

    def finish(self, presented: Presented, *, method: str, target: str, body: bytes, ip: str,
               perm: str) -> AuthContext:
        """Signature (50113), key state (50100), IP allow-list (50110), permission (50120)."""
        found = presented.found
        given = presented.sign.encode()
        prefix = presented.ts_text.encode() + method.encode()
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
