"""Web sign-in: login names with scrypt-hashed passwords, and server-side sessions.

Sessions run on wall time, not on the platform clock: they are a security matter, like an API
request's timestamp window, and advancing the sandbox's business clock by a month must not sign
the operator out of the console that advanced it. The cookie holds a random token; the table
holds only its SHA-256, so a copy of the database opens no session.

Checking a password costs a scrypt hash (tens of milliseconds of CPU): callers on an event loop
throttle failures first and run :meth:`LoginService.check` in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from stakehouse.accounts import rules
from stakehouse.accounts.service import AccountService, User
from stakehouse.db.engine import Database
from stakehouse.db.tables import web_logins, web_sessions
from stakehouse.errors import Conflict, NotAllowed, NotFound
from stakehouse.security import hash_passphrase, verify_passphrase

#: A session ends after this long without a request ...
IDLE = dt.timedelta(minutes=30)
#: ... and this long after sign-in in any case.
ABSOLUTE = dt.timedelta(hours=12)
#: ``seen_at`` is written at most this often per session (not on every page view).
TOUCH_EVERY = dt.timedelta(minutes=1)
#: A stored hash nobody's password matches: unknown logins cost the same scrypt as known ones.
_DUMMY_HASH = hash_passphrase(secrets.token_urlsafe(16))


class BadCredentials(NotAllowed):
    """The login is unknown or the password is wrong (one message for both)."""

    def __init__(self) -> None:
        super().__init__("The login or the password is wrong.")


class SignInRefused(NotAllowed):
    """Right password, but the account may not sign in (frozen, deleted)."""


@dataclass(frozen=True)
class WebSession:
    token_hash: str
    uid: str | None
    role: str  # "user" or "operator"
    created_at: dt.datetime
    expires_at: dt.datetime

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginService:
    def __init__(self, db: Database, accounts: AccountService, now: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.accounts = accounts
        self.now = now

    # -- logins ------------------------------------------------------------------------

    def set_password(self, uid: str, login: str, password: str) -> str:
        """Give ``uid`` the web login ``login`` with ``password`` (or change them). Ends the user's
        open sessions. Returns the login name."""
        rules.check_login_name(login)
        rules.check_password(password)
        digest = hash_passphrase(password)
        now = self.now()
        with self.db.write() as conn:
            user = self.accounts.get_in(conn, uid)
            if user.deleted_at is not None:
                raise NotFound("User", uid)
            owner = conn.execute(select(web_logins.c.uid).where(web_logins.c.login == login)).scalar()
            if owner is not None and owner != uid:
                raise Conflict(f"The login {login} is taken.", field="login")
            conn.execute(web_logins.delete().where(web_logins.c.uid == uid))
            conn.execute(web_logins.insert().values(
                login=login, uid=uid, password_hash=digest, created_at=now, updated_at=now))
            self._end_all(conn, uid, now)
        return login

    def login_of(self, uid: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(select(web_logins.c.login).where(web_logins.c.uid == uid)).scalar()

    def check(self, login: str, password: str) -> User:
        """The user whose login and password these are (CPU-heavy: scrypt). Raises
        :class:`BadCredentials` (same message for an unknown login and a wrong password, and the
        same cost) or :class:`SignInRefused` (frozen or deleted)."""
        with self.db.read() as conn:
            row = conn.execute(select(web_logins.c.uid, web_logins.c.password_hash)
                               .where(web_logins.c.login == login)).first()
        ok = verify_passphrase(row.password_hash if row else _DUMMY_HASH, password)
        if row is None or not ok:
            raise BadCredentials()
        user = self.accounts.get(row.uid)
        if user.deleted_at is not None:
            raise SignInRefused("This account has been deleted.")
        if user.frozen:
            raise SignInRefused("This account is frozen; it cannot sign in.")
        return user

    # -- sessions ----------------------------------------------------------------------

    def open_session(self, uid: str | None) -> tuple[str, WebSession]:
        """A new session for ``uid`` (``None``: an operator's). Returns the cookie token (shown to
        nobody else) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        session = WebSession(token_hash(token), uid, "user" if uid else "operator", now, now + ABSOLUTE)
        with self.db.write() as conn:
            conn.execute(web_sessions.insert().values(
                token_hash=session.token_hash, uid=uid, role=session.role, created_at=now, seen_at=now,
                expires_at=session.expires_at))
        return token, session

    def session(self, token: str) -> WebSession | None:
        """The live session of ``token``, or ``None`` (unknown, signed out, idle too long, past its
        absolute expiry, or its user frozen or deleted since)."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        now = self.now()
        with self.db.read() as conn:
            row = conn.execute(select(web_sessions).where(web_sessions.c.token_hash == digest)).first()
            if row is None or row.ended_at is not None or now >= row.expires_at or now - row.seen_at >= IDLE:
                return None
            if row.uid is not None:
                user = self.accounts.get_in(conn, row.uid)
                if user.frozen or user.deleted_at is not None:
                    return None
        if now - row.seen_at >= TOUCH_EVERY:
            with self.db.write() as conn:
                conn.execute(update(web_sessions).where(web_sessions.c.token_hash == digest).values(seen_at=now))
        return WebSession(row.token_hash, row.uid, row.role, row.created_at, row.expires_at)

    def end_session(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(update(web_sessions).where(web_sessions.c.token_hash == token_hash(token),
                                                    web_sessions.c.ended_at.is_(None)).values(ended_at=self.now()))

    def end_user_sessions(self, uid: str) -> None:
        with self.db.write() as conn:
            self._end_all(conn, uid, self.now())

    @staticmethod
    def _end_all(conn: Connection, uid: str, now: dt.datetime) -> None:
        conn.execute(update(web_sessions).where(web_sessions.c.uid == uid, web_sessions.c.ended_at.is_(None))
                     .values(ended_at=now))
