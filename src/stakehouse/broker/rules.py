"""Pure rules of the non-disclosed broker (seed 004): sub-account names, labels, API-key
passphrases and IP lists, account levels, broker levels, trading-fee changes (validation, the
00:00 HKT effective instant, "which change applied at time t" and the effective rate).

No I/O, no clock: the caller passes ``now``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from stakehouse.accounts.rules import normalise_perms
from stakehouse.errors import InvalidParameter, MissingParameter, Refused


class BrokerReason(StrEnum):
    """Why an ND broker request is refused (each adapter maps these to its codes)."""

    NOT_BROKER = "not_broker"
    NOT_MASTER_KEY = "not_master_key"
    SUB_ACCOUNT_MISSING = "sub_account_missing"
    SUB_ACCOUNT_EXISTS = "sub_account_exists"
    SUB_ACCOUNT_LIMIT = "sub_account_limit"
    SUB_ACCOUNT_FUNDED = "sub_account_funded"
    BAD_MAIN_ACCOUNT = "bad_main_account"
    HAS_SUB_ACCOUNTS = "has_sub_accounts"
    KEY_LIMIT = "key_limit"
    KEY_LABEL_EXISTS = "key_label_exists"
    TOO_MANY_IPS = "too_many_ips"
    PASSPHRASE_FORMAT = "passphrase_format"  # noqa: S105 (a reason, not a password)
    API_KEY_MISSING = "api_key_missing"
    SUB_ACCOUNT_FROZEN = "sub_account_frozen"
    DEMO_ONLY = "demo_only"

HKT = ZoneInfo("Asia/Hong_Kong")

_SUB_NAME = re.compile(r"[A-Za-z0-9]{6,20}", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9]{1,50}", re.ASCII)
_SPECIALS = frozenset(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,18})?", re.ASCII)
_YYYYMMDD = re.compile(r"[0-9]{8}", re.ASCII)

MAX_LABEL = 50
MAX_IPS = 20
#: Account levels (``acctLv``): 1 spot, 2 spot and futures, 3 multi-currency margin, 4 portfolio margin.
ACCT_LEVELS = (1, 2, 3, 4)
#: Broker level -> the maximum number of sub-accounts (both levels, not deleted) it may hold.
LEVEL_MAX_SUB_ACCOUNTS = {1: 1000, 2: 2000, 3: 5000, 4: 10000, 5: 20000}
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
QUOTE_CCY_TYPES = (2, 3)  # 2 USDT, 3 USD(S)/crypto; SPOT only
MGN_TYPES = (1, 2, 3)  # 1 USDT-margined, 2 crypto-margined, 3 USDC-margined; FUTURES/SWAP only
CHG_TYPES = ("absolute", "percentage")
#: absolute: basis points in [0, 1000] with at most 1 decimal; percentage: whole percent in [0, 10000].
CHG_LIMITS = {"absolute": (Decimal(1000), 1), "percentage": (Decimal(10000), 0)}
BP = Decimal("0.0001")


# -- names, labels, passphrases, IPs -------------------------------------------------------------


def check_sub_name(name: str, field: str = "subAcct") -> str:
    """6-20 ASCII letters or digits, at least one letter (case sensitive)."""
    if not name:
        raise MissingParameter(field)
    if not _SUB_NAME.fullmatch(name) or name.isdigit():
        raise InvalidParameter(field, "6-20 letters or digits, not all digits")
    return name


def check_label(label: str, field: str = "label", *, required: bool = False) -> str:
    """At most 50 ASCII letters or digits (may be all letters or all digits); empty if not required."""
    if not label:
        if required:
            raise MissingParameter(field)
        return ""
    if not _LABEL.fullmatch(label):
        raise InvalidParameter(field, f"at most {MAX_LABEL} letters or digits")
    return label


def passphrase_ok(phrase: str) -> bool:
    """8-32 printable ASCII characters (no space) with a digit, an upper-case and a lower-case
    letter and a special character."""
    if not 8 <= len(phrase) <= 32 or not phrase.isascii():
        return False
    if any(not (ch.isalnum() or ch in _SPECIALS) for ch in phrase):
        return False
    return (any(ch.isdigit() for ch in phrase) and any(ch.isupper() for ch in phrase)
            and any(ch.islower() for ch in phrase) and any(ch in _SPECIALS for ch in phrase))


def check_passphrase(phrase: str) -> str:
    if not phrase:
        raise MissingParameter("passphrase")
    if not passphrase_ok(phrase):
        raise Refused(BrokerReason.PASSPHRASE_FORMAT, "The passphrase format is incorrect.")
    return phrase


def parse_ip(text: str, field: str = "ip") -> str:
    """One IPv4 or IPv6 address in canonical form (no networks)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidParameter(field, f"{text.strip()[:64]} is not an IP address") from None


def parse_ip_list(text: str, field: str = "ip") -> list[str]:
    """A comma list of at most 20 IP addresses (more: 59503; a malformed one: 51000), duplicates dropped."""
    items = [part.strip() for part in text.split(",")] if text else []
    items = [i for i in items if i]
    if len(items) > MAX_IPS:
        raise Refused(BrokerReason.TOO_MANY_IPS, "Each API key can bind up to 20 IP addresses")
    return list(dict.fromkeys(parse_ip(i, field) for i in items))


def parse_perms(text: str) -> list[str]:
    """A comma list of ``read_only``, ``trade``, ``withdraw``; ``read_only`` is always added."""
    return normalise_perms(text.split(",") if text else []).split(",")


def parse_acct_lv(text: str) -> int:
    if not text:
        raise MissingParameter("acctLv")
    if text not in {str(n) for n in ACCT_LEVELS}:
        raise InvalidParameter("acctLv", "1, 2, 3 or 4")
    return int(text)


# -- broker levels -------------------------------------------------------------------------------


def max_sub_accounts(level: int, override: int | None) -> int:
    """The broker's maximum number of sub-accounts: the operator's override, else by level
    (levels above 5 get the level-5 figure)."""
    if override is not None:
        return override
    return LEVEL_MAX_SUB_ACCOUNTS[min(max(level, 1), max(LEVEL_MAX_SUB_ACCOUNTS))]


def level_text(level: int) -> str:
    return f"lv{level}"


def total_pages(count: int, limit: int) -> int:
    return math.ceil(count / limit)


# -- trading-fee changes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeScope:
    inst_type: str | None = None
    quote_ccy_type: int | None = None
    mgn_type: int | None = None

    @property
    def specificity(self) -> int:
        return sum(v is not None for v in (self.inst_type, self.quote_ccy_type, self.mgn_type))


def check_scope(inst_type: str, quote_ccy_type: str, mgn_type: str) -> FeeScope:
    """``instType`` one of the five; ``quoteCcyType`` (2|3) only with SPOT; ``mgnType`` (1|2|3)
    only with FUTURES or SWAP (empty text = absent)."""
    if inst_type and inst_type not in INST_TYPES:
        raise InvalidParameter("instType", ", ".join(INST_TYPES))
    qct: int | None = None
    if quote_ccy_type:
        if quote_ccy_type not in {str(n) for n in QUOTE_CCY_TYPES}:
            raise InvalidParameter("quoteCcyType", "2 or 3")
        if not inst_type:
            raise MissingParameter("instType")
        if inst_type != "SPOT":
            raise InvalidParameter("quoteCcyType", "applies to instType SPOT only")
        qct = int(quote_ccy_type)
    mgn: int | None = None
    if mgn_type:
        if mgn_type not in {str(n) for n in MGN_TYPES}:
            raise InvalidParameter("mgnType", "1, 2 or 3")
        if not inst_type:
            raise MissingParameter("instType")
        if inst_type not in ("FUTURES", "SWAP"):
            raise InvalidParameter("mgnType", "applies to instType FUTURES or SWAP only")
        mgn = int(mgn_type)
    return FeeScope(inst_type or None, qct, mgn)


def parse_change(chg_type: str, text: str, field: str) -> Decimal | None:
    """A fee change value: absolute in bp, [0, 1000], at most 0.1 bp precision; percentage in
    whole percent, [0, 10000]. Empty text: ``None`` (that side is not changed)."""
    if not text:
        return None
    hi, decimals = CHG_LIMITS[chg_type]
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise InvalidParameter(field, "a plain non-negative decimal")
    value = Decimal(text)
    if value > hi:
        raise InvalidParameter(field, f"must be between 0 and {hi}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        raise InvalidParameter(field, "precision is 0.1 bp" if decimals else "precision is 1%")
    return value


def check_chg_type(text: str) -> str:
    if not text:
        raise MissingParameter("chgType")
    if text not in CHG_TYPES:
        raise InvalidParameter("chgType", "absolute or percentage")
    return text


def hkt_midnight(day: dt.date) -> dt.datetime:
    """00:00 Hong Kong time of ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(), HKT).astimezone(dt.UTC)


def effective_from(now: dt.datetime, eff_date: str) -> tuple[str, dt.datetime]:
    """(YYYYMMDD, UTC instant) a change set at ``now`` takes effect: 00:00 HKT of ``eff_date``
    (which must be later than ``now``: today or a past day is refused), else of the next HKT day."""
    if not eff_date:
        day = now.astimezone(HKT).date() + dt.timedelta(days=1)
        return day.strftime("%Y%m%d"), hkt_midnight(day)
    if not _YYYYMMDD.fullmatch(eff_date):
        raise InvalidParameter("effDate", "format YYYYMMDD")
    try:
        day = dt.date(int(eff_date[:4]), int(eff_date[4:6]), int(eff_date[6:]))
    except ValueError:
        raise InvalidParameter("effDate", "not a calendar date") from None
    at = hkt_midnight(day)
    if at <= now:
        raise InvalidParameter("effDate", "must be a later day than today (HKT)")
    return eff_date, at


@dataclass(frozen=True)
class FeeSetting:
    """One fee change a broker set (a ``fee_rate_settings`` row)."""

    id: int
    broker_uid: str
    uid: str | None  # None: the broker's default for all its sub-accounts
    scope: FeeScope
    chg_type: str
    chg_taker: Decimal | None
    chg_maker: Decimal | None
    eff_date: str
    effective_at: dt.datetime
    created_at: dt.datetime


def _matches(setting: FeeSetting, sub_uid: str, query: FeeScope) -> bool:
    s = setting.scope
    return ((setting.uid is None or setting.uid == sub_uid)
            and (s.inst_type is None or s.inst_type == query.inst_type)
            and (s.quote_ccy_type is None or s.quote_ccy_type == query.quote_ccy_type)
            and (s.mgn_type is None or s.mgn_type == query.mgn_type))


def applicable(settings: Iterable[FeeSetting], sub_uid: str, query: FeeScope, at: dt.datetime,
               side: str) -> FeeSetting | None:
    """The change of ``side`` (``taker`` or ``maker``) that applies to ``sub_uid`` at ``at`` for the
    instrument scope ``query``: among the settings in effect (``effective_at <= at``) whose scope
    covers it and that change that side, a sub-account's own before the broker default, then the
    most specific scope, then the latest effective time (then the latest set)."""
    best: tuple[tuple[bool, int, dt.datetime, int], FeeSetting] | None = None
    for s in settings:
        change = s.chg_taker if side == "taker" else s.chg_maker
        if change is None or s.effective_at > at or not _matches(s, sub_uid, query):
            continue
        rank = (s.uid is not None, s.scope.specificity, s.effective_at, s.id)
        if best is None or rank > best[0]:
            best = (rank, s)
    return best[1] if best else None


def effective_rate(base: Decimal, setting: FeeSetting | None, side: str) -> Decimal:
    """``base`` changed by ``setting``: + bp / 10000 (absolute) or x (1 + pct / 100) (percentage)."""
    if setting is None:
        return base
    change = setting.chg_taker if side == "taker" else setting.chg_maker
    if change is None:
        return base
    if setting.chg_type == "absolute":
        return base + change * BP
    return base * (1 + change / 100)


def demo_top_up(ccy: str, amounts: Sequence[tuple[str, Decimal]], default: Decimal) -> Decimal:
    """The fixed amount a demo top-up of ``ccy`` credits."""
    return dict(amounts).get(ccy, default)
