"""Pure rules about accounts and API keys."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from stakehouse.errors import InvalidParameter

PERMISSIONS = ("read_only", "trade", "withdraw")
#: Function names that can be frozen one by one (broker document + ``staking``).
FREEZABLE_FUNCTIONS = ("trading", "convert", "transfer", "withdrawal", "deposit", "flexible_loan", "staking")
MAX_IPS = 20
MAX_KEYS_PER_ACCOUNT = 50
MAX_LABEL = 50
ENVIRONMENTS = ("live", "demo")


def normalise_perms(perms: Iterable[str]) -> str:
    """Comma list in canonical order, ``read_only`` always present."""
    wanted = {p.strip() for p in perms if p.strip()}
    unknown = wanted - set(PERMISSIONS)
    if unknown:
        raise InvalidParameter("perm", f"unknown permission {sorted(unknown)[0]}")
    wanted.add("read_only")
    return ",".join(p for p in PERMISSIONS if p in wanted)


def normalise_ips(ips: Iterable[str]) -> str:
    """Comma list of IPv4/IPv6 addresses or CIDR networks, at most 20."""
    out: list[str] = []
    for raw in ips:
        text = raw.strip()
        if not text:
            continue
        try:
            parsed = ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
        except ValueError:
            raise InvalidParameter("ip", f"{text[:64]} is not an IP address") from None
        out.append(str(parsed))
    if len(out) > MAX_IPS:
        raise InvalidParameter("ip", f"at most {MAX_IPS} IP addresses per key")
    return ",".join(dict.fromkeys(out))


def ip_allowed(allow_list: str, client_ip: str) -> bool:
    if not allow_list:
        return True
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for entry in allow_list.split(","):
        if "/" in entry:
            if addr in ipaddress.ip_network(entry):
                return True
        elif addr == ipaddress.ip_address(entry):
            return True
    return False


def normalise_functions(functions: Iterable[str]) -> list[str]:
    out = []
    for f in functions:
        f = f.strip()
        if not f:
            continue
        if f not in FREEZABLE_FUNCTIONS:
            raise InvalidParameter("function", f"unknown function {f[:32]}")
        out.append(f)
    return out


def is_frozen_for(frozen: bool, frozen_funcs: str, function: str) -> bool:
    return frozen or function in frozen_funcs.split(",")


# -- web sign-in (oauth-and-web.md section 1) -----------------------------------------------

LOGIN_MIN, LOGIN_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 10, 128
_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


def check_login_name(login: str) -> str:
    """A login name: 3 to 32 of ASCII lower-case letters, digits, ``.``, ``_`` and ``-``, starting with
    a letter or digit. Returned as given (names are compared exactly)."""
    if not LOGIN_MIN <= len(login) <= LOGIN_MAX or not set(login) <= _LOGIN_CHARS or not login[0].isalnum():
        raise InvalidParameter("login", f"{LOGIN_MIN} to {LOGIN_MAX} of a-z, 0-9, '.', '_', '-', starting with a "
                                        "letter or digit")
    return login


def check_password(password: str) -> str:
    """A new password: 10 to 128 printable characters (no control characters)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX or not password.isprintable():
        raise InvalidParameter("password", f"{PASSWORD_MIN} to {PASSWORD_MAX} printable characters")
    return password
