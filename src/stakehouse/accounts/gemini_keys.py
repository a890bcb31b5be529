"""Gemini API keys: roles, a nonce sequence per key, account or master scope, bound IPs.

A key belongs to a user of the same platform the OKX keys serve (the same uid, the same
funding balances). An *account* key acts on its own user; a *master* key belongs to a group's
master and acts on any account of the group, named in each request (``primary`` = the master
itself, a sub-account by its sub name). Secrets are encrypted at rest like the OKX ones.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from stakehouse.accounts import rules
from stakehouse.accounts.service import AccountService, AuthCache, User, live_key_with_user, user_from_row
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.tables import gemini_api_keys, users
from stakehouse.errors import AccountRequired, Conflict, InvalidParameter, NotFound, UnknownAccount
from stakehouse.security import SecretBox

ROLES = ("Administrator", "Trader", "FundManager", "Auditor")
SCOPES = ("account", "master")
PRIMARY = "primary"
#: Nonces are kept as exact integers of millionths: below this bound they fit a 64-bit column.
MAX_NONCE_MICROS = 9 * 10**18

_KEY_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class GeminiKey:
    id: int
    api_key: str
    uid: str
    scope: str
    roles: tuple[str, ...]
    time_based_nonce: bool
    ips: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class GeminiAuthKey:
    key: GeminiKey
    secret: str
    user: User


def normalise_roles(roles: list[str] | tuple[str, ...], scope: str) -> tuple[str, ...]:
    """Roles in canonical order. Auditor cannot be combined; Administrator is for master keys."""
    wanted = {r.strip() for r in roles if r.strip()}
    if not wanted:
        raise InvalidParameter("roles", "at least one role")
    unknown = wanted - set(ROLES)
    if unknown:
        raise InvalidParameter("roles", f"unknown role {sorted(unknown)[0][:32]}; one of {', '.join(ROLES)}")
    if "Auditor" in wanted and len(wanted) > 1:
        raise InvalidParameter("roles", "Auditor cannot be combined with other roles")
    if "Administrator" in wanted and scope != "master":
        raise InvalidParameter("roles", "Administrator is a master-key role")
    return tuple(r for r in ROLES if r in wanted)


def _key(row: object) -> GeminiKey:
    r = row
    return GeminiKey(r.id, r.api_key, r.uid, r.scope, tuple(x for x in r.roles.split(",") if x),  # type: ignore[attr-defined]
                     r.time_based_nonce, r.ips, r.label, r.created_at, r.revoked_at)  # type: ignore[attr-defined]


def revoke_user_keys(conn: Connection, uid: str, at: dt.datetime) -> int:
    """Revoke every live Gemini key of ``uid`` (a deleted sub-account), in the caller's transaction;
    open it with ``AccountService.changing_keys`` so that the key caches are cleared."""
    result = conn.execute(update(gemini_api_keys).where(
        gemini_api_keys.c.uid == uid, gemini_api_keys.c.revoked_at.is_(None)).values(revoked_at=at))
    return int(result.rowcount)


def account_name(user: User) -> str:
    """How a Gemini request names this account: ``primary`` for a master, else its sub name."""
    return user.sub_name if user.is_sub and user.sub_name else PRIMARY


class GeminiKeyService:
    def __init__(self, db: Database, clock: Clock, box: SecretBox, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.accounts = accounts
        self._cache: AuthCache[GeminiAuthKey] = AuthCache()
        accounts.share_cache_clearing(self._cache)  # a user change made there (e.g. a deletion) reaches it

    def create_key(self, uid: str, *, scope: str = "account", roles: list[str] | tuple[str, ...] = ("Trader",),
                   time_based_nonce: bool = False, ips: list[str] | tuple[str, ...] = (), label: str = "",
                   ) -> tuple[GeminiKey, str]:
        """A new key and its secret (the only time the secret is shown)."""
        if scope not in SCOPES:
            raise InvalidParameter("scope", "account or master")
        role_text = ",".join(normalise_roles(roles, scope))
        ip_text = rules.normalise_ips(ips)
        if len(label) > rules.MAX_LABEL:
            raise InvalidParameter("label", f"at most {rules.MAX_LABEL} characters")
        secret = secrets.token_urlsafe(21)
        api_key = f"{scope}-" + "".join(secrets.choice(_KEY_CHARS) for _ in range(20))
        with self.db.write() as conn:
            user = self.accounts.get_in(conn, uid)
            if scope == "master" and user.is_sub:
                raise InvalidParameter("scope", "a master key belongs to the group's master account")
            live = conn.execute(select(func.count()).select_from(gemini_api_keys).where(
                gemini_api_keys.c.uid == uid, gemini_api_keys.c.revoked_at.is_(None))).scalar_one()
            if live >= rules.MAX_KEYS_PER_ACCOUNT:
                raise Conflict(f"Each account can create up to {rules.MAX_KEYS_PER_ACCOUNT} API keys")
            key_id = conn.execute(gemini_api_keys.insert().values(
                api_key=api_key, uid=uid, scope=scope, roles=role_text, time_based_nonce=time_based_nonce,
                last_nonce=None, secret_enc=self.box.seal(secret), ips=ip_text, label=label,
                created_at=self.clock.now()).returning(gemini_api_keys.c.id)).scalar_one()
            row = conn.execute(select(gemini_api_keys).where(gemini_api_keys.c.id == key_id)).one()
        return _key(row), secret

    def list_keys(self, uid: str, *, include_revoked: bool = False) -> list[GeminiKey]:
        q = select(gemini_api_keys).where(gemini_api_keys.c.uid == uid).order_by(gemini_api_keys.c.id)
        if not include_revoked:
            q = q.where(gemini_api_keys.c.revoked_at.is_(None))
        with self.db.read() as conn:
            self.accounts.get_in(conn, uid)
            return [_key(r) for r in conn.execute(q)]

    def revoke_key(self, api_key: str) -> GeminiKey:
        self._cache.clear()
        with self.db.write() as conn:
            row = conn.execute(select(gemini_api_keys).where(gemini_api_keys.c.api_key == api_key)).first()
            if row is None or row.revoked_at is not None:
                raise NotFound("API key", api_key[:64])
            conn.execute(update(gemini_api_keys).where(gemini_api_keys.c.id == row.id).values(
                revoked_at=self.clock.now()))
            found = _key(conn.execute(select(gemini_api_keys).where(gemini_api_keys.c.id == row.id)).one())
        self._cache.clear()
        return found

    # -- authentication ----------------------------------------------------------------

    def cached_auth_key(self, api_key: str) -> tuple[bool, GeminiAuthKey | None]:
        """(True, key) when :meth:`lookup_for_auth` found it less than ``AUTH_CACHE_SECONDS`` ago;
        (True, None) for text that cannot be a key."""
        return self._cache.get(api_key)

    def lookup_for_auth(self, api_key: str) -> GeminiAuthKey | None:
        """The live key and its user (``None`` if unknown or revoked)."""
        with self.db.query() as conn:
            found = live_key_with_user(conn, gemini_api_keys, api_key)
        if found is None:
            return None
        row, user = found
        key = GeminiAuthKey(_key(row), self.box.open(row.secret_enc), user)
        self._cache.put(api_key, key)
        return key

    def consume_nonce(self, key_id: int, micros: int) -> bool:
        """Accept ``micros`` (the nonce times 10^6) if it is above the key's last accepted one, and
        store it: one conditional UPDATE, so of two requests with the same nonce exactly one wins,
        whatever process serves them."""
        if not 0 <= micros < MAX_NONCE_MICROS:
            return False
        c = gemini_api_keys.c
        with self.db.write() as conn:
            result = conn.execute(update(gemini_api_keys).where(
                c.id == key_id, c.revoked_at.is_(None), (c.last_nonce.is_(None)) | (c.last_nonce < micros),
            ).values(last_nonce=micros))
            return bool(result.rowcount == 1)

    def resolve_account(self, auth: GeminiAuthKey, account: str | None) -> User:
        """The user a request acts on (gemini-staking.md 7.3 and open point 16)."""
        with self.db.read() as conn:
            return self._resolve(conn, auth, account)

    def _resolve(self, conn: Connection, auth: GeminiAuthKey, account: str | None) -> User:
        user = self.accounts.get_in(conn, auth.key.uid)  # fresh: freezes and the like apply at once
        if auth.key.scope == "account":
            if account is not None and account != account_name(user):
                raise UnknownAccount(account)
            return user
        if account is None:
            raise AccountRequired()
        if account == PRIMARY:
            return user
        row = conn.execute(select(users).where(users.c.sub_name == account, users.c.master_uid == user.uid,
                                               users.c.deleted_at.is_(None))).first()
        if row is None:
            raise UnknownAccount(account)
        return user_from_row(row)
