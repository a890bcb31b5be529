"""Secrets: API secrets encrypted at rest, passphrases hashed, constant-time comparisons."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections import OrderedDict
from threading import Lock

from cryptography.fernet import Fernet, InvalidToken

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def new_server_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts API secrets with the server key (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, server_key: str) -> None:
        self._fernet = Fernet(server_key.encode())
        self._key = server_key.encode()

    def derive(self, purpose: str) -> bytes:
        """A key for ``purpose`` (e.g. signing download links) derived from the server key: the
        server key itself never leaves this object."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this server key") from exc


def hash_passphrase(passphrase: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(passphrase.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_passphrase(stored: str, passphrase: str) -> bool:
    """Whether ``passphrase`` matches the scrypt hash ``stored`` (constant-time comparison; slow)."""
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        passphrase.encode(), salt=base64.b64decode(salt_b64), n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


class PassphraseVerifier:
    """scrypt is deliberately slow, so successful checks are remembered in memory, keyed by a
    keyed hash (never the passphrase itself) of (stored hash, passphrase).

    :meth:`known` asks only that memory (microseconds); :meth:`verify` runs scrypt when it must
    (tens of milliseconds: callers on an event loop run it in a worker thread)."""

    def __init__(self, size: int = 10_000) -> None:
        self._pepper = secrets.token_bytes(32)
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def _token(self, stored: str, passphrase: str) -> bytes:
        # keyed BLAKE2b: a MAC in one call, cheaper than HMAC on this path that every request takes
        return hashlib.blake2b(stored.encode() + b"\0" + passphrase.encode(), key=self._pepper,
                               digest_size=32).digest()

    def known(self, stored: str, passphrase: str) -> bool:
        token = self._token(stored, passphrase)
        with self._lock:
            if token in self._ok:
                self._ok.move_to_end(token)
                return True
        return False

    def verify(self, stored: str, passphrase: str) -> bool:
        if self.known(stored, passphrase):
            return True
        if not verify_passphrase(stored, passphrase):
            return False
        with self._lock:
            self._ok[self._token(stored, passphrase)] = None
            if len(self._ok) > self._size:
                self._ok.popitem(last=False)
        return True


def new_api_key() -> str:
    return str(uuid.uuid4())


def new_secret() -> str:
    return secrets.token_hex(16).upper()


def new_passphrase() -> str:
    # letters, digits and a special character, as OKX's passphrase rules want
    return "Sh-" + secrets.token_urlsafe(12)
