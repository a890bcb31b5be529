"""The OAuth 2.0 server's storage and lifecycle (oauth-and-web.md sections 3 and 4).

The grant logic (what a code, PKCE, a refresh or a revocation request must carry and how each is
checked) is Authlib's, in the adapter (``api/oauth``); this service keeps what Authlib asks a
server to store and enforces the lifecycle in the database, where concurrent requests meet:

- **Codes** are stored as SHA-256 hashes, live 10 minutes, and are redeemed with a conditional
  update: a second redemption revokes the grant the first one made (RFC 6749 section 4.1.2).
- **Tokens** are stored as SHA-256 hashes. A refresh supersedes the pair it used with a
  conditional update before the new pair is stored, so two refreshes racing with one token cannot
  both win; presenting a superseded refresh token again revokes the whole grant (reuse detection).
  At most one pair of a grant is ever live.
- **Client secrets** are 256-bit random strings, so a SHA-256 hash (compared in constant time)
  protects them as well as a slow hash would, without a slow hash per token request.
- Token lifetimes run on the platform clock (the sandbox can expire a token by advancing it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from stakehouse.accounts.rules import MAX_KEYS_PER_ACCOUNT, normalise_ips
from stakehouse.accounts.service import AccountService, User
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.tables import api_keys, fd_brokers, oauth_clients, oauth_codes, oauth_grants, oauth_tokens
from stakehouse.errors import InvalidParameter, NotFound, Refused
from stakehouse.oauth import rules
from stakehouse.oauth.rules import OAuthReason
from stakehouse.security import SecretBox, new_passphrase


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Client:
    client_id: str
    broker_uid: str
    name: str
    logo_url: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    ips: str
    fast_api: bool
    public: bool
    created_at: dt.datetime
    secret_hash: str | None = None

    def secret_ok(self, secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, digest(secret))


@dataclass(frozen=True)
class Code:
    code_hash: str
    client_id: str
    uid: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    fast_api: bool
    expires_at: dt.datetime
    used_at: dt.datetime | None


@dataclass(frozen=True)
class Grant:
    id: int
    client_id: str
    uid: str
    scope: str
    term_id: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    fast_api_key: str | None
    client_name: str = ""


@dataclass(frozen=True)
class TokenPair:
    id: int
    grant: Grant
    access_expires_at: dt.datetime
    refresh_expires_at: dt.datetime
    superseded_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class Bearer:
    """A request's valid access token: its user, client and grant."""

    user: User
    client: Client
    grant: Grant

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.grant.scope.split())


@dataclass(frozen=True)
class FastApiKey:
    api_key: str
    secret: str
    passphrase: str
    perm: str
    ips: str


def _client(r: Any) -> Client:
    return Client(r.client_id, r.broker_uid, r.name, r.logo_url, tuple(r.redirect_uris.split("\n")),
                  tuple(r.scopes.split()), r.ips, r.fast_api, r.secret_hash is None, r.created_at, r.secret_hash)


def _grant(r: Any, client_name: str = "") -> Grant:
    return Grant(r.id, r.client_id, r.uid, r.scope, r.term_id, r.created_at, r.revoked_at, r.fast_api_key,
                 client_name)


def _joined_grant(r: Any, client_name: str = "") -> Grant:
    """A grant from a row where its columns are labelled ``g_<name>`` (a join with tokens)."""
    return Grant(r.g_id, r.g_client_id, r.g_uid, r.g_scope, r.g_term_id, r.g_created_at, r.g_revoked_at,
                 r.g_fast_api_key, client_name)


class OAuthService:
    def __init__(self, db: Database, clock: Clock, box: SecretBox, accounts: AccountService, *,
                 sandbox: bool) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.accounts = accounts
        self.sandbox = sandbox

    # -- clients (the operator) ----------------------------------------------------------

    def register_client(self, broker_uid: str, *, name: str, redirect_uris: list[str], scopes: list[str],
                        ips: list[str] | None = None, fast_api: bool = False, public: bool = False,
                        logo_url: str = "") -> tuple[Client, str | None]:
        """A client for an FD broker of type ``oauth``; returns it and its secret (``None`` for a
        public client), shown this once and stored only as a hash."""
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidParameter("name", "1 to 64 printable characters")
        if not redirect_uris or len(redirect_uris) > rules.MAX_REDIRECT_URIS:
            raise InvalidParameter("redirectUris", f"1 to {rules.MAX_REDIRECT_URIS} URIs")
        uris = [rules.check_redirect_uri(u, sandbox=self.sandbox) for u in redirect_uris]
        scope = rules.parse_scopes(" ".join(scopes))
        ip_text = normalise_ips(ips or [])
        if len(logo_url) > 256 or (logo_url and not logo_url.startswith("https://")):
            raise InvalidParameter("logoUrl", "an https URL of at most 256 characters")
        secret = None if public else secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.write() as conn:
            self.accounts.get_in(conn, broker_uid)
            broker = conn.execute(select(fd_brokers.c.oauth).where(fd_brokers.c.uid == broker_uid)).first()
            if broker is None or not broker.oauth:
                raise Refused(OAuthReason.NOT_OAUTH_BROKER, f"User {broker_uid} is not an FD broker of type oauth")
            values = {"client_id": secrets.token_hex(16), "secret_hash": digest(secret) if secret else None,
                      "broker_uid": broker_uid, "name": name, "logo_url": logo_url, "redirect_uris": "\n".join(uris),
                      "scopes": " ".join(scope), "ips": ip_text, "fast_api": fast_api, "created_at": now}
            conn.execute(oauth_clients.insert().values(**values))
            row = conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == values["client_id"])).one()
        return _client(row), secret

    def clients(self, broker_uid: str | None = None) -> list[Client]:
        q = select(oauth_clients).where(oauth_clients.c.revoked_at.is_(None)).order_by(oauth_clients.c.created_at)
        if broker_uid:
            q = q.where(oauth_clients.c.broker_uid == broker_uid)
        with self.db.read() as conn:
            return [_client(r) for r in conn.execute(q)]

    def client(self, client_id: str) -> Client | None:
        """A live (not revoked) client."""
        if not client_id or len(client_id) > 32:
            return None
        with self.db.read() as conn:
            row = conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id,
                                                           oauth_clients.c.revoked_at.is_(None))).first()
        return _client(row) if row else None

    def revoke_client(self, client_id: str) -> None:
        """Retire a client: its grants end with it (their tokens get 53001)."""
        now = self.clock.now()
        with self.db.write() as conn:
            done = conn.execute(update(oauth_clients).where(oauth_clients.c.client_id == client_id,
                                                            oauth_clients.c.revoked_at.is_(None))
                                .values(revoked_at=now)).rowcount
            if not done:
                raise NotFound("OAuth client", client_id)
            conn.execute(update(oauth_grants).where(oauth_grants.c.client_id == client_id,
                                                    oauth_grants.c.revoked_at.is_(None))
                         .values(revoked_at=now, revoke_reason="client"))

    # -- codes -----------------------------------------------------------------------------

    def save_code(self, code: str, *, client_id: str, uid: str, redirect_uri: str, scope: str,
                  code_challenge: str | None, code_challenge_method: str | None, fast_api: bool) -> None:
        now = self.clock.now()
        with self.db.write() as conn:
            conn.execute(oauth_codes.insert().values(
                code_hash=digest(code), client_id=client_id, uid=uid, redirect_uri=redirect_uri, scope=scope,
                code_challenge=code_challenge, code_challenge_method=code_challenge_method, fast_api=fast_api,
                created_at=now, expires_at=now + rules.CODE_TTL))

    def code(self, code: str, client_id: str) -> Code | None:
        """The client's unused, unexpired code. A code presented again after it was redeemed revokes
        the grant it produced (and so every token issued under it) and is ``None``."""
        if not code or len(code) > rules.MAX_LENGTHS["code"]:
            return None
        now = self.clock.now()
        with self.db.read() as conn:
            row = conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == digest(code),
                                                         oauth_codes.c.client_id == client_id)).first()
        if row is None:
            return None
        if row.used_at is not None:
            if row.grant_id is not None:
                self._revoke_grant_id(row.grant_id, "code_reuse")
            return None
        if now >= row.expires_at:
            return None
        return Code(row.code_hash, row.client_id, row.uid, row.redirect_uri, row.scope, row.code_challenge,
                    row.code_challenge_method, row.fast_api, row.expires_at, row.used_at)

    # -- tokens ----------------------------------------------------------------------------

    def issue_for_code(self, code: Code, *, access: str, refresh: str, term_id: str | None) -> Grant:
        """Redeem ``code`` and store the first token pair of its new grant, in one transaction (a
        code redeemed meanwhile refuses: :class:`Refused` ``TOKEN_REVOKED``). With Fast API the
        grant's API key is made here too, atomically: an abandoned code leaves no key behind."""
        now = self.clock.now()
        with self.db.write() as conn:
            client = conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == code.client_id)).one()
            grant_id = conn.execute(oauth_grants.insert().values(
                client_id=code.client_id, uid=code.uid, scope=code.scope, term_id=term_id, created_at=now)
                .returning(oauth_grants.c.id)).scalar_one()
            redeemed = conn.execute(update(oauth_codes).where(oauth_codes.c.code_hash == code.code_hash,
                                                              oauth_codes.c.used_at.is_(None))
                                    .values(used_at=now, grant_id=grant_id)).rowcount
            if not redeemed:  # another request redeemed it first: this transaction rolls back
                raise Refused(OAuthReason.TOKEN_REVOKED, "The authorization code was already used")
            if code.fast_api and client.fast_api and \
                    self.accounts.live_key_count(conn, code.uid) < MAX_KEYS_PER_ACCOUNT:
                # (a user at the key quota gets the grant without a key: the fetch answers 53017)
                passphrase = new_passphrase()
                made = self.accounts.insert_key(conn, code.uid, perm_text="read_only,trade", ip_text=client.ips,
                                                label=self._free_label(conn, code.uid, client.name[:40]),
                                                passphrase=passphrase, now=now)
                conn.execute(update(oauth_grants).where(oauth_grants.c.id == grant_id).values(
                    fast_api_key=made.key.api_key, fast_api_passphrase_enc=self.box.seal(passphrase)))
            self._insert_pair(conn, grant_id, access, refresh, now)
            row = conn.execute(select(oauth_grants).where(oauth_grants.c.id == grant_id)).one()
        return _grant(row, client.name)

    def _free_label(self, conn: Connection, uid: str, name: str) -> str:
        """The app's name as the key's label, numbered when the user has a key of that label already."""
        label, n = name, 1
        while self.accounts.label_taken(conn, uid, label):
            n += 1
            label = f"{name} {n}"
        return label

    @staticmethod
    def _insert_pair(conn: Connection, grant_id: int, access: str, refresh: str, now: dt.datetime) -> None:
        conn.execute(oauth_tokens.insert().values(
            grant_id=grant_id, access_hash=digest(access), refresh_hash=digest(refresh), issued_at=now,
            access_expires_at=now + rules.ACCESS_TTL, refresh_expires_at=now + rules.REFRESH_TTL))

    def refresh_token(self, refresh: str, client_id: str) -> TokenPair | None:
        """The live pair of ``refresh`` (for ``client_id``); ``None`` when unknown, expired or
        revoked. A superseded refresh token presented again revokes its whole grant."""
        if not refresh or len(refresh) > rules.MAX_LENGTHS["refresh_token"]:
            return None
        pair = self._pair(oauth_tokens.c.refresh_hash == digest(refresh))
        if pair is None or pair.grant.client_id != client_id:
            return None
        if pair.superseded_at is not None:
            self._revoke_grant_id(pair.grant.id, "refresh_reuse")
            return None
        if pair.revoked_at is not None or pair.grant.revoked_at is not None:
            return None
        if self.clock.now() >= pair.refresh_expires_at:
            return None
        return pair

    def rotate(self, old: TokenPair, *, access: str, refresh: str) -> None:
        """Supersede ``old`` (its access token dies with it) and store the new pair; if ``old`` was
        superseded meanwhile (a second refresh with the same token), that is reuse: the grant is
        revoked and :class:`Refused` ``TOKEN_REVOKED`` raised."""
        now = self.clock.now()
        with self.db.write() as conn:
            won = conn.execute(update(oauth_tokens).where(oauth_tokens.c.id == old.id,
                                                          oauth_tokens.c.superseded_at.is_(None),
                                                          oauth_tokens.c.revoked_at.is_(None))
                               .values(superseded_at=now)).rowcount
            if won:
                self._insert_pair(conn, old.grant.id, access, refresh, now)
                return
        self._revoke_grant_id(old.grant.id, "refresh_reuse")
        raise Refused(OAuthReason.TOKEN_REVOKED, "The refresh token was already used")

    def find_token(self, token: str) -> TokenPair | None:
        """The pair ``token`` (access or refresh) belongs to, live or not (for revocation)."""
        if not token or len(token) > rules.MAX_LENGTHS["token"]:
            return None
        hashed = digest(token)
        return self._pair(oauth_tokens.c.access_hash == hashed) or self._pair(oauth_tokens.c.refresh_hash == hashed)

    def revoke_pair(self, pair: TokenPair) -> None:
        """RFC 7009 revocation of either token: the whole grant ends."""
        self._revoke_grant_id(pair.grant.id, "revoked")

    def _pair(self, where: Any) -> TokenPair | None:
        t, g = oauth_tokens.c, oauth_grants
        with self.db.read() as conn:
            row = conn.execute(select(oauth_tokens, *[c.label(f"g_{c.name}") for c in g.c])
                               .join(g, g.c.id == t.grant_id).where(where)).first()
        if row is None:
            return None
        grant = _joined_grant(row)
        return TokenPair(row.id, grant, row.access_expires_at, row.refresh_expires_at, row.superseded_at,
                         row.revoked_at)

    def _revoke_grant_id(self, grant_id: int, reason: str) -> None:
        now = self.clock.now()
        with self.db.write() as conn:
            conn.execute(update(oauth_grants).where(oauth_grants.c.id == grant_id, oauth_grants.c.revoked_at.is_(None))
                         .values(revoked_at=now, revoke_reason=reason))
            conn.execute(update(oauth_tokens).where(oauth_tokens.c.grant_id == grant_id,
                                                    oauth_tokens.c.revoked_at.is_(None)).values(revoked_at=now))

    # -- using a token -----------------------------------------------------------------------

    def bearer(self, access: str) -> Bearer:
        """The grant behind a presented access token, or :class:`Refused`: unknown 53000, consent
        withdrawn 53001, expired 53002, superseded or revoked 53003, frozen user 53004."""
        if not access or len(access) > rules.MAX_LENGTHS["token"]:
            raise Refused(OAuthReason.INVALID_TOKEN, "Invalid token")
        t, g, c = oauth_tokens.c, oauth_grants, oauth_clients
        with self.db.read() as conn:
            row = conn.execute(select(oauth_tokens, *[x.label(f"g_{x.name}") for x in g.c],
                                      *[x.label(f"c_{x.name}") for x in c.c])
                               .join(g, g.c.id == t.grant_id).join(c, c.c.client_id == g.c.client_id)
                               .where(t.access_hash == digest(access))).first()
            if row is None:
                raise Refused(OAuthReason.INVALID_TOKEN, "Invalid token")
            if row.g_revoked_at is not None and row.g_revoke_reason in ("user", "client"):
                raise Refused(OAuthReason.CONSENT_WITHDRAWN, "Authorization canceled")
            if row.superseded_at is not None or row.revoked_at is not None or row.g_revoked_at is not None:
                raise Refused(OAuthReason.TOKEN_REVOKED, "Token revoked")
            if self.clock.now() >= row.access_expires_at:
                raise Refused(OAuthReason.TOKEN_EXPIRED, "Token expired")
            user = self.accounts.get_in(conn, row.g_uid)
        if user.frozen or user.deleted_at is not None:
            raise Refused(OAuthReason.ACCOUNT_FROZEN, "Account has been frozen")
        client = Client(row.c_client_id, row.c_broker_uid, row.c_name, row.c_logo_url,
                        tuple(row.c_redirect_uris.split("\n")), tuple(row.c_scopes.split()), row.c_ips,
                        row.c_fast_api, row.c_secret_hash is None, row.c_created_at)
        grant = _joined_grant(row, row.c_name)
        return Bearer(user, client, grant)

    def fast_api_key(self, grant_id: int) -> FastApiKey:
        """The key Fast API made for this grant, once (53017 for a client without Fast API, a grant
        without a key, or a second fetch)."""
        now = self.clock.now()
        with self.db.write() as conn:
            row = conn.execute(select(oauth_grants, oauth_clients.c.fast_api)
                               .join(oauth_clients, oauth_clients.c.client_id == oauth_grants.c.client_id)
                               .where(oauth_grants.c.id == grant_id)).one()
            if not row.fast_api or row.fast_api_key is None or row.fast_api_passphrase_enc is None:
                raise Refused(OAuthReason.FAST_API_NOT_ENABLED, "Fast API permissions not enabled")
            taken = conn.execute(update(oauth_grants).where(oauth_grants.c.id == row.id,
                                                            oauth_grants.c.fast_api_fetched_at.is_(None))
                                 .values(fast_api_fetched_at=now, fast_api_passphrase_enc=None)).rowcount
            if not taken:
                raise Refused(OAuthReason.FAST_API_NOT_ENABLED, "Fast API permissions not enabled")
            key = conn.execute(select(api_keys).where(api_keys.c.api_key == row.fast_api_key)).one()
        return FastApiKey(key.api_key, self.box.open(key.secret_enc), self.box.open(row.fast_api_passphrase_enc),
                          key.perms, key.ips)

    # -- the user's view -----------------------------------------------------------------------

    def grants_of(self, uid: str) -> list[Grant]:
        """The user's live grants (the apps it authorised), newest first."""
        g = oauth_grants
        with self.db.read() as conn:
            rows = conn.execute(select(g, oauth_clients.c.name.label("client_name"))
                                .join(oauth_clients, oauth_clients.c.client_id == g.c.client_id)
                                .where(g.c.uid == uid, g.c.revoked_at.is_(None)).order_by(g.c.id.desc()))
            return [_grant(r, r.client_name) for r in rows]

    def revoke_by_user(self, uid: str, grant_id: int) -> None:
        """The user withdraws consent: later calls with the grant's tokens get 53001."""
        now = self.clock.now()
        with self.db.write() as conn:
            done = conn.execute(update(oauth_grants).where(oauth_grants.c.id == grant_id, oauth_grants.c.uid == uid,
                                                           oauth_grants.c.revoked_at.is_(None))
                                .values(revoked_at=now, revoke_reason="user")).rowcount
            if not done:
                raise NotFound("Authorised app", str(grant_id))
            conn.execute(update(oauth_tokens).where(oauth_tokens.c.grant_id == grant_id,
                                                    oauth_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
