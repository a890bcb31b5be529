"""Users, sub-accounts, KYC, terms, freezes and OKX API keys."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from threading import Lock
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table, bindparam, func, or_, select, update

from stakehouse.accounts import rules
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.tables import api_keys, terms_acceptances, users
from stakehouse.errors import Conflict, InvalidParameter, NotAllowed, NotFound
from stakehouse.ledger.journal import PostingView, user_journal
from stakehouse.security import SecretBox, hash_passphrase, new_api_key, new_passphrase, new_secret

KEY_EXPIRY = dt.timedelta(days=14)
#: Authenticated keys are kept in memory this long (seconds). A change made through this process
#: (revoke, freeze, ...) clears the cache at once; another worker process sees it within this time.
AUTH_CACHE_SECONDS = 2.0
#: ``last_used_at`` is written at most this often per key (a write per request would serialise reads).
TOUCH_EVERY = dt.timedelta(minutes=1)

K = TypeVar("K")


@dataclass(frozen=True)
class User:
    uid: str
    env: str
    master_uid: str | None
    parent_uid: str | None
    level: int
    sub_name: str | None
    label: str
    kyc_level: int
    frozen: bool
    frozen_funcs: str
    can_trans_out: bool
    created_at: dt.datetime
    acct_lv: int = 1
    deleted_at: dt.datetime | None = None

    @property
    def is_sub(self) -> bool:
        return self.level > 0

    @property
    def group_uid(self) -> str:
        return self.master_uid or self.uid

    def frozen_for(self, function: str) -> bool:
        return rules.is_frozen_for(self.frozen, self.frozen_funcs, function)


@dataclass(frozen=True)
class ApiKey:
    id: int
    api_key: str
    uid: str
    perms: str
    ips: str
    label: str
    frozen: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoke_reason: str | None


@dataclass(frozen=True)
class AuthKey:
    """What request authentication needs of a key (secret decrypted)."""

    key: ApiKey
    secret: str
    passphrase_hash: str
    user: User


@dataclass(frozen=True)
class NewKey:
    """A created key; the only moment secret and passphrase are ever shown."""

    key: ApiKey
    secret: str
    passphrase: str


def user_from_row(row: object) -> User:
    return User(**{f: getattr(row, f) for f in User.__dataclass_fields__})


def _key(row: object) -> ApiKey:
    return ApiKey(**{f: getattr(row, f) for f in ApiKey.__dataclass_fields__})


MAX_API_KEY = 64
_CACHE_LIMIT = 50_000


class AuthCache(Generic[K]):
    """Keys found by an authentication lookup, kept in memory ``AUTH_CACHE_SECONDS`` so that a
    request usually needs no database round trip (OKX and Gemini keys alike)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, K]] = {}

    def get(self, api_key: str) -> tuple[bool, K | None]:
        """(True, key) when found less than ``AUTH_CACHE_SECONDS`` ago; (True, None) for text that
        cannot be a key; (False, None) when the database must be asked."""
        entry = self._entries.get(api_key)
        if entry is None or entry[0] < time.monotonic():
            return (not api_key or len(api_key) > MAX_API_KEY), None
        return True, entry[1]

    def put(self, api_key: str, found: K) -> None:
        if len(self._entries) > _CACHE_LIMIT:
            self._entries.clear()
        self._entries[api_key] = (time.monotonic() + AUTH_CACHE_SECONDS, found)

    def clear(self) -> None:
        self._entries.clear()


def live_key_with_user(conn: Connection, table: Table, api_key: str) -> tuple[Any, User] | None:
    """The live (not revoked) row of ``table`` (a key table with ``api_key``, ``uid`` and
    ``revoked_at``) for ``api_key``, and its user, in one statement; ``None`` if there is none."""
    if not api_key or len(api_key) > MAX_API_KEY:
        return None
    row = conn.execute(
        select(table, *[c.label(f"u_{c.name}") for c in users.c])
        .join(users, users.c.uid == table.c.uid)
        .where(table.c.api_key == api_key, table.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return row, User(**{f: getattr(row, f"u_{f}") for f in User.__dataclass_fields__})


#: One user by uid, read on every request (built once: see "Prebuilt statements" in docs/architecture.md).
_USER = select(users).where(users.c.uid == bindparam("uid"))


class AccountService:
    def __init__(self, db: Database, clock: Clock, box: SecretBox) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self._touched: dict[int, dt.datetime] = {}
        self._touch_lock = Lock()
        self._auth_cache: AuthCache[AuthKey] = AuthCache()
        #: Other key caches (the Gemini keys') cleared with this one: a change made here to a user or
        #: its keys (a deleted sub-account, a freeze) reaches them at once too.
        self._other_caches: list[AuthCache[Any]] = []

    # -- users -------------------------------------------------------------------------

    def _new_uid(self, conn: Connection) -> str:
        while True:
            uid = str(10**15 + secrets.randbelow(9 * 10**15))
            if conn.execute(select(users.c.uid).where(users.c.uid == uid)).first() is None:
                return uid

    def create_user(self, *, env: str = "live", label: str = "", kyc_level: int = 0,
                    accept_terms: tuple[str, ...] = ()) -> User:
        if env not in rules.ENVIRONMENTS:
            raise InvalidParameter("env", "live or demo")
        if len(label) > rules.MAX_LABEL:
            raise InvalidParameter("label", f"at most {rules.MAX_LABEL} characters")
        if kyc_level < 0 or kyc_level > 3:
            raise InvalidParameter("kycLevel", "0..3")
        products = tuple(dict.fromkeys(accept_terms))  # a product named twice is accepted once
        if any(not product or len(product) > 32 for product in products):
            raise InvalidParameter("acceptTerms", "product names of 1..32 characters")
        with self.db.write() as conn:
            now = self.clock.now()
            uid = self._new_uid(conn)
            conn.execute(users.insert().values(uid=uid, env=env, level=0, label=label, kyc_level=kyc_level,
                                               frozen=False, frozen_funcs="", can_trans_out=True, created_at=now))
            for product in products:
                conn.execute(terms_acceptances.insert().values(uid=uid, product=product, accepted_at=now))
            return self._get(conn, uid)

    def create_sub_account(self, *, parent_uid: str, sub_name: str, label: str = "",
                           can_trans_out: bool = True) -> User:
        """A sub-account of a master (level 1) or of a level-1 sub-account (level 2)."""
        now = self.clock.now()
        with self.db.write() as conn:
            return self.insert_sub(conn, self._get(conn, parent_uid), sub_name=sub_name, label=label,
                                   can_trans_out=can_trans_out, now=now)

    def insert_sub(self, conn: Connection, parent: User, *, sub_name: str, label: str = "",
                   can_trans_out: bool = True, now: dt.datetime) -> User:
        """:meth:`create_sub_account` inside the caller's transaction (the ND broker checks its own
        rules first, in the same transaction). A name stays taken forever, deleted or not."""
        if not sub_name or len(sub_name) > 32:
            raise InvalidParameter("subAcct", "1..32 characters")
        if len(label) > rules.MAX_LABEL:
            raise InvalidParameter("label", f"at most {rules.MAX_LABEL} characters")
        if parent.level >= 2:
            raise NotAllowed("A sub-account can have sub-accounts only two levels deep")
        if self.name_taken(conn, sub_name):
            raise Conflict("Sub-account name already exists.", subAcct=sub_name)
        uid = self._new_uid(conn)
        conn.execute(users.insert().values(
            uid=uid, env=parent.env, master_uid=parent.group_uid, parent_uid=parent.uid,
            level=parent.level + 1, sub_name=sub_name, label=label, kyc_level=parent.kyc_level,
            frozen=False, frozen_funcs="", can_trans_out=can_trans_out, created_at=now))
        return self._get(conn, uid)

    def name_taken(self, conn: Connection, sub_name: str) -> bool:
        """Whether any sub-account (deleted ones included) has this name."""
        return conn.execute(select(users.c.uid).where(users.c.sub_name == sub_name)).first() is not None

    def _get(self, conn: Connection, uid: str) -> User:
        row = conn.execute(_USER, {"uid": uid}).first()
        if row is None:
            raise NotFound("User", uid)
        return user_from_row(row)

    def get(self, uid: str) -> User:
        with self.db.read() as conn:
            return self._get(conn, uid)

    def get_in(self, conn: Connection, uid: str) -> User:
        return self._get(conn, uid)

    def find_sub(self, conn: Connection, sub_name: str) -> User | None:
        """The live (not deleted) sub-account of that name."""
        row = conn.execute(select(users).where(users.c.sub_name == sub_name, users.c.deleted_at.is_(None))).first()
        return user_from_row(row) if row else None

    def journal(self, uid: str, *, limit: int = 100, before_entry: int | None = None) -> list[PostingView]:
        """A user's postings, newest first (raises NotFound for an unknown user)."""
        with self.db.read() as conn:
            self._get(conn, uid)
            return user_journal(conn, uid, limit=min(max(limit, 1), 1000), before_entry=before_entry)

    def list_users(self, *, master_uid: str | None = None, limit: int = 100) -> list[User]:
        q = select(users).order_by(users.c.created_at, users.c.uid).limit(limit)
        if master_uid:
            q = q.where(users.c.master_uid == master_uid)
        with self.db.read() as conn:
            return [user_from_row(r) for r in conn.execute(q)]

    def set_kyc(self, uid: str, level: int) -> User:
        if level < 0 or level > 3:
            raise InvalidParameter("kycLevel", "0..3")
        return self._update(uid, kyc_level=level)

    def set_frozen(self, uid: str, frozen: bool, functions: list[str] | None = None) -> User:
        """Global freeze when ``functions`` is empty, else freeze/unfreeze those functions."""
        names = rules.normalise_functions(functions or [])
        with self._changing_keys() as conn:
            user = self._get(conn, uid)
            if not names:
                conn.execute(update(users).where(users.c.uid == uid).values(frozen=frozen))
            else:
                current = [f for f in user.frozen_funcs.split(",") if f]
                new = sorted(set(current) | set(names)) if frozen else [f for f in current if f not in names]
                conn.execute(update(users).where(users.c.uid == uid).values(frozen_funcs=",".join(new)))
            return self._get(conn, uid)

    def _update(self, uid: str, **values: object) -> User:
        with self._changing_keys() as conn:
            self._get(conn, uid)
            conn.execute(update(users).where(users.c.uid == uid).values(**values))
            return self._get(conn, uid)

    def accept_terms(self, uid: str, product: str) -> None:
        if not product or len(product) > 32:
            raise InvalidParameter("product", "1..32 characters")
        with self.db.write() as conn:
            self._get(conn, uid)
            exists = conn.execute(select(terms_acceptances.c.uid).where(
                terms_acceptances.c.uid == uid, terms_acceptances.c.product == product)).first()
            if exists is None:
                conn.execute(terms_acceptances.insert().values(uid=uid, product=product,
                                                               accepted_at=self.clock.now()))

    def accepted_terms(self, conn: Connection, uid: str) -> set[str]:
        rows = conn.execute(select(terms_acceptances.c.product).where(terms_acceptances.c.uid == uid))
        return {r.product for r in rows}

    # -- API keys ----------------------------------------------------------------------

    def create_key(self, uid: str, *, perms: list[str], ips: list[str] | None = None, label: str = "",
                   passphrase: str | None = None) -> NewKey:
        perm_text = rules.normalise_perms(perms)
        ip_text = rules.normalise_ips(ips or [])
        if len(label) > rules.MAX_LABEL:
            raise InvalidParameter("label", f"at most {rules.MAX_LABEL} characters")
        phrase = passphrase or new_passphrase()
        if not 8 <= len(phrase) <= 32:
            raise InvalidParameter("passphrase", "8..32 characters")
        now = self.clock.now()
        with self.db.write() as conn:
            if self._get(conn, uid).deleted_at is not None:
                raise NotFound("User", uid)
            if self.live_key_count(conn, uid) >= rules.MAX_KEYS_PER_ACCOUNT:
                raise Conflict(f"Each account can create up to {rules.MAX_KEYS_PER_ACCOUNT} API keys")
            if label and self.label_taken(conn, uid, label):
                raise Conflict("This note name already exists.", label=label)
            return self.insert_key(conn, uid, perm_text=perm_text, ip_text=ip_text, label=label, passphrase=phrase,
                                   now=now)

    def live_key_count(self, conn: Connection, uid: str) -> int:
        return int(conn.execute(select(func.count()).select_from(api_keys).where(
            api_keys.c.uid == uid, api_keys.c.revoked_at.is_(None))).scalar_one())

    def label_taken(self, conn: Connection, uid: str, label: str, *, except_id: int | None = None) -> bool:
        """Whether another live key of ``uid`` has this label."""
        q = select(api_keys.c.id).where(api_keys.c.uid == uid, api_keys.c.label == label,
                                        api_keys.c.revoked_at.is_(None))
        if except_id is not None:
            q = q.where(api_keys.c.id != except_id)
        return conn.execute(q).first() is not None

    def insert_key(self, conn: Connection, uid: str, *, perm_text: str, ip_text: str, label: str, passphrase: str,
                   now: dt.datetime) -> NewKey:
        """A new key in the caller's transaction; the caller has checked the quota and the label."""
        secret = new_secret()
        key_id = conn.execute(api_keys.insert().values(
            api_key=new_api_key(), uid=uid, secret_enc=self.box.seal(secret),
            passphrase_hash=hash_passphrase(passphrase), perms=perm_text, ips=ip_text, label=label,
            frozen=False, created_at=now).returning(api_keys.c.id)).scalar_one()
        return NewKey(_key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()), secret, passphrase)

    def live_key_of(self, conn: Connection, uid: str, api_key: str) -> ApiKey | None:
        """The live key ``api_key`` if it belongs to ``uid``."""
        if not api_key or len(api_key) > MAX_API_KEY:
            return None
        row = conn.execute(select(api_keys).where(api_keys.c.api_key == api_key, api_keys.c.uid == uid,
                                                  api_keys.c.revoked_at.is_(None))).first()
        return _key(row) if row else None

    def update_key(self, conn: Connection, key_id: int, *, label: str | None = None, perm_text: str | None = None,
                   ip_text: str | None = None) -> ApiKey:
        """Reset a key's label, permissions or IP list (``None``: kept), in a transaction opened with
        :meth:`changing_keys`."""
        values = {k: v for k, v in (("label", label), ("perms", perm_text), ("ips", ip_text)) if v is not None}
        if values:
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
        return _key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())

    def revoke_in(self, conn: Connection, key_id: int, reason: str, at: dt.datetime) -> None:
        """Revoke one key in a transaction opened with :meth:`changing_keys`."""
        conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(
            revoked_at=at, revoke_reason=reason))

    def revoke_user_keys(self, conn: Connection, uid: str, reason: str, at: dt.datetime) -> int:
        """Revoke every live OKX key of ``uid`` in a transaction opened with :meth:`changing_keys`."""
        result = conn.execute(update(api_keys).where(api_keys.c.uid == uid, api_keys.c.revoked_at.is_(None)).values(
            revoked_at=at, revoke_reason=reason))
        return int(result.rowcount)

    def list_keys(self, uid: str, *, include_revoked: bool = False) -> list[ApiKey]:
        q = select(api_keys).where(api_keys.c.uid == uid).order_by(api_keys.c.id)
        if not include_revoked:
            q = q.where(api_keys.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return [_key(r) for r in conn.execute(q)]

    def revoke_key(self, api_key: str, reason: str = "revoked", *, owner: str | None = None) -> ApiKey:
        """Revoke a live key; with ``owner``, only a key of that user (another's is NotFound)."""
        with self._changing_keys() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.api_key == api_key)).first()
            if row is None or row.revoked_at is not None or (owner is not None and row.uid != owner):
                raise NotFound("API key", api_key)
            conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(
                revoked_at=self.clock.now(), revoke_reason=reason))
            return _key(conn.execute(select(api_keys).where(api_keys.c.id == row.id)).one())

    def set_key_frozen(self, api_key: str, frozen: bool) -> ApiKey:
        with self._changing_keys() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.api_key == api_key)).first()
            if row is None or row.revoked_at is not None:
                raise NotFound("API key", api_key)
            conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(frozen=frozen))
            return _key(conn.execute(select(api_keys).where(api_keys.c.id == row.id)).one())

    def cached_auth_key(self, api_key: str) -> tuple[bool, AuthKey | None]:
        """(True, key) when :meth:`lookup_for_auth` found it less than ``AUTH_CACHE_SECONDS`` ago."""
        return self._auth_cache.get(api_key)

    def forget_cached_keys(self) -> None:
        self._auth_cache.clear()
        for cache in self._other_caches:
            cache.clear()

    def share_cache_clearing(self, cache: AuthCache[Any]) -> None:
        """Clear ``cache`` too whenever this service clears its own."""
        self._other_caches.append(cache)

    def changing_keys(self) -> AbstractContextManager[Connection]:
        """A write transaction that changes keys or users (the key caches are cleared around it)."""
        return self._changing_keys()

    @contextmanager
    def _changing_keys(self) -> Iterator[Connection]:
        """A write transaction that changes keys or users: the auth cache is cleared before it
        and again after the commit, so no request of this process sees the old state after it."""
        self.forget_cached_keys()
        with self.db.write() as conn:
            yield conn
        self.forget_cached_keys()

    def lookup_for_auth(self, api_key: str) -> AuthKey | None:
        """The live (not revoked) key and its user, or ``None``."""
        with self.db.query() as conn:
            found = live_key_with_user(conn, api_keys, api_key)
        if found is None:
            return None
        row, user = found
        key = AuthKey(_key(row), self.box.open(row.secret_enc), row.passphrase_hash, user)
        self._auth_cache.put(api_key, key)
        return key

    def touch_due(self, key: ApiKey, now: dt.datetime) -> bool:
        """Whether :meth:`touch_key` would write (in memory only)."""
        last = self._touched.get(key.id) or key.last_used_at
        return last is None or now - last >= TOUCH_EVERY

    def touch_key(self, key: ApiKey, now: dt.datetime) -> None:
        """Record use of a key, at most once a minute per key and process."""
        with self._touch_lock:
            if not self.touch_due(key, now):
                return
            self._touched[key.id] = now
        with self.db.write() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(last_used_at=now))

    def expire_idle_keys(self, conn: Connection, at: dt.datetime) -> int:
        """Revoke live-environment keys with trade or withdraw, no bound IP, unused for 14 days: one
        ``UPDATE`` however many keys there are (``perms`` is the canonical comma list)."""
        k = api_keys.c
        expired = conn.execute(
            update(api_keys).where(
                k.revoked_at.is_(None), k.ips == "",
                or_(k.perms.contains("trade"), k.perms.contains("withdraw")),
                func.coalesce(k.last_used_at, k.created_at) <= at - KEY_EXPIRY,
                k.uid.in_(select(users.c.uid).where(users.c.env == "live")),
            ).values(revoked_at=at, revoke_reason="expired")).rowcount
        if expired:
            self.forget_cached_keys()
        return int(expired)
