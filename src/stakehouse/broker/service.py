"""Non-disclosed brokers: broker accounts and levels, their sub-accounts (two levels), the
sub-accounts' API keys, account levels, trading-fee changes with their full history, IP reports
and demo top-ups (seed 004, "Non-Disclosed Broker").

A broker is a master account (level 0) with an enabled ``brokers`` row. Every broker call names
its sub-accounts by name; a name that is not a live sub-account of this broker is refused as
"Sub-account does not exist" (59510), whoever owns it."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from stakehouse.accounts import gemini_keys
from stakehouse.accounts.service import AccountService, ApiKey, NewKey, User, user_from_row
from stakehouse.assets.reference import currency
from stakehouse.broker import rules
from stakehouse.broker.access import broker_sub_account, require_broker
from stakehouse.broker.rules import BrokerReason
from stakehouse.clock import Clock
from stakehouse.config import Settings
from stakehouse.db.engine import Database
from stakehouse.db.tables import (
    brokers,
    deposits,
    fee_rate_settings,
    ledger_accounts,
    sub_account_ips,
    users,
    withdrawals,
)
from stakehouse.errors import InvalidParameter, MissingParameter, NotFound, Refused
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import TRADING, AccountRef, Leg

#: Demo top-ups (``set-subaccount-assets``) credit this fixed amount of the currency to the
#: sub-account's trading account each call; other currencies get ``DEMO_TOP_UP_DEFAULT``.
DEMO_TOP_UPS: tuple[tuple[str, Decimal], ...] = (
    ("BTC", Decimal("3")), ("ETH", Decimal("50")), ("USDT", Decimal("10000")), ("USDC", Decimal("10000")),
    ("SOL", Decimal("500")), ("XRP", Decimal("10000")),
)
DEMO_TOP_UP_DEFAULT = Decimal("100")
#: The system account demo top-ups come from.
DEMO_SOURCE = "demo_faucet"
#: Deposit and withdrawal states after which nothing more happens.
FINAL_DEPOSIT_STATES = (2, 8, 11, 12, 13, 14)
FINAL_WITHDRAWAL_STATES = (2, -1, -2)


@dataclass(frozen=True)
class Broker:
    uid: str
    level: int
    max_sub_accts: int | None
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def max_sub_accounts(self) -> int:
        return rules.max_sub_accounts(self.level, self.max_sub_accts)


@dataclass(frozen=True)
class BrokerInfo:
    broker: Broker
    sub_accounts: int
    ts: dt.datetime


@dataclass(frozen=True)
class SubAccount:
    user: User
    main_acct: str  # the first-level parent's name for a second-level sub-account, else ""


@dataclass(frozen=True)
class SubPage:
    details: list[SubAccount]
    page: int
    total_pages: int


@dataclass(frozen=True)
class FeeLookup:
    """The fee changes that apply to a sub-account at a time, and the resulting rates."""

    uid: str
    broker_uid: str
    scope: rules.FeeScope
    at: dt.datetime
    taker: rules.FeeSetting | None
    maker: rules.FeeSetting | None
    base_taker: Decimal
    base_maker: Decimal
    taker_rate: Decimal
    maker_rate: Decimal


@dataclass(frozen=True)
class TopUp:
    sub_acct: str
    ccy: str
    amt: Decimal  # the trading balance after the top-up


def _broker(row: object) -> Broker:
    return Broker(**{f: getattr(row, f) for f in Broker.__dataclass_fields__})


def _setting(r: Any) -> rules.FeeSetting:
    return rules.FeeSetting(r.id, r.broker_uid, r.uid, rules.FeeScope(r.inst_type, r.quote_ccy_type, r.mgn_type),
                            r.chg_type, r.chg_taker, r.chg_maker, r.eff_date, r.effective_at, r.created_at)


def fee_changes_in(conn: Connection, user: User) -> list[rules.FeeSetting]:
    """The fee changes an ND broker set that may apply to its sub-account ``user`` (none for an
    account that is not an ND broker's sub-account), in the order they were set."""
    if not user.is_sub:
        return []
    if conn.execute(select(brokers.c.uid).where(brokers.c.uid == user.group_uid)).first() is None:
        return []
    q = select(fee_rate_settings).where(
        fee_rate_settings.c.broker_uid == user.group_uid,
        (fee_rate_settings.c.uid == user.uid) | fee_rate_settings.c.uid.is_(None))
    return [_setting(r) for r in conn.execute(q.order_by(fee_rate_settings.c.id))]


class BrokerService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService,
                 settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.settings = settings

    # -- who may call ----------------------------------------------------------------------------

    def _caller(self, conn: Connection, uid: str) -> tuple[User, Broker]:
        """The calling master and its broker row (``access.require_broker``)."""
        user = self.accounts.get_in(conn, uid)
        return user, _broker(require_broker(conn, user))

    def _sub(self, conn: Connection, broker_uid: str, sub_name: str) -> User:
        """A live sub-account (either level) of this broker, named; else 59510."""
        if not sub_name:
            raise MissingParameter("subAcct")
        return broker_sub_account(conn, broker_uid, sub_name)

    def _count(self, conn: Connection, broker_uid: str) -> int:
        return int(conn.execute(select(func.count()).select_from(users).where(
            users.c.master_uid == broker_uid, users.c.deleted_at.is_(None))).scalar_one())

    def _main_acct(self, conn: Connection, sub: User) -> str:
        if sub.level < 2 or sub.parent_uid is None:
            return ""
        return str(conn.execute(select(users.c.sub_name).where(users.c.uid == sub.parent_uid)).scalar_one() or "")

    # -- broker account ---------------------------------------------------------------------------

    def info(self, caller_uid: str) -> BrokerInfo:
        with self.db.read() as conn:
            _, broker = self._caller(conn, caller_uid)
            return BrokerInfo(broker, self._count(conn, caller_uid), self.clock.now())

    # -- sub-accounts -----------------------------------------------------------------------------

    def create_sub(self, caller_uid: str, *, sub_name: str, label: str = "", client_ip: str = "",
                   main_acct: str = "") -> User:
        """A first-level sub-account, or a second-level one under the first-level ``main_acct``."""
        with self.db.write() as conn:
            now = self.clock.now()
            master, broker = self._caller(conn, caller_uid)
            rules.check_sub_name(sub_name)
            rules.check_label(label)
            ip = rules.parse_ip(client_ip, "clientIP") if client_ip else ""
            parent = master
            if main_acct:
                found = self.accounts.find_sub(conn, main_acct)
                if found is None or found.master_uid != caller_uid or found.level != 1:
                    raise Refused(BrokerReason.BAD_MAIN_ACCOUNT, "You're creating a sub-account for a non-existing or "
                                  "incorrect sub-account.", mainAcct=main_acct[:32])
                parent = found
            if self.accounts.name_taken(conn, sub_name):
                raise Refused(BrokerReason.SUB_ACCOUNT_EXISTS, "Subaccount name already exists.", subAcct=sub_name)
            # Lock the broker row: concurrent creations for one broker count one after the other.
            conn.execute(update(brokers).where(brokers.c.uid == caller_uid).values(updated_at=broker.updated_at))
            if self._count(conn, caller_uid) >= broker.max_sub_accounts:
                raise Refused(BrokerReason.SUB_ACCOUNT_LIMIT, "Maximum number of subaccounts reached.")
            sub = self.accounts.insert_sub(conn, parent, sub_name=sub_name, label=label, can_trans_out=True, now=now)
            if ip:
                conn.execute(sub_account_ips.insert().values(uid=sub.uid, ip=ip, kind="register", reported_at=now))
            return sub

    def delete_sub(self, caller_uid: str, sub_name: str) -> User:
        """Delete a sub-account that holds nothing: no balance (available or locked) in any of its
        accounts, no deposit or withdrawal under way, no live second-level sub-accounts. Its keys
        (OKX and Gemini) are revoked at once; its name and history stay."""
        with self.accounts.changing_keys() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            sub = self._sub(conn, caller_uid, sub_name)
            children = conn.execute(select(func.count()).select_from(users).where(
                users.c.parent_uid == sub.uid, users.c.deleted_at.is_(None))).scalar_one()
            if children:
                raise Refused(BrokerReason.HAS_SUB_ACCOUNTS, "The sub-account has sub-accounts, which must be deleted "
                              "first.", subAcct=sub_name)
            if self._holds_funds(conn, sub.uid):
                raise Refused(BrokerReason.SUB_ACCOUNT_FUNDED, "Transfer all sub-account funds to your main account "
                              "before deleting your sub-account.", subAcct=sub_name)
            done = conn.execute(update(users).where(users.c.uid == sub.uid, users.c.deleted_at.is_(None)).values(
                deleted_at=now))
            if done.rowcount != 1:  # deleted meanwhile by another request
                raise Refused(BrokerReason.SUB_ACCOUNT_MISSING, "Sub-account does not exist", subAcct=sub_name)
            self.accounts.revoke_user_keys(conn, sub.uid, "sub_account_deleted", now)
            gemini_keys.revoke_user_keys(conn, sub.uid, now)
            return self.accounts.get_in(conn, sub.uid)

    def _holds_funds(self, conn: Connection, uid: str) -> bool:
        rows = conn.execute(select(ledger_accounts.c.available, ledger_accounts.c.locked).where(
            ledger_accounts.c.owner == f"u:{uid}")).all()
        if any(Decimal(r.available) != 0 or Decimal(r.locked) != 0 for r in rows):
            return True
        pending_dep = conn.execute(select(deposits.c.dep_id).where(
            deposits.c.uid == uid, deposits.c.state.not_in(FINAL_DEPOSIT_STATES)).limit(1)).first()
        pending_wd = conn.execute(select(withdrawals.c.wd_id).where(
            withdrawals.c.uid == uid, withdrawals.c.state.not_in(FINAL_WITHDRAWAL_STATES)).limit(1)).first()
        return pending_dep is not None or pending_wd is not None

    def list_subs(self, caller_uid: str, *, sub_name: str = "", uid: str = "", page: int = 1,
                  limit: int = 100) -> SubPage:
        """The broker's live sub-accounts (both levels), oldest first, a page at a time."""
        with self.db.read() as conn:
            self._caller(conn, caller_uid)
            q = select(users).where(users.c.master_uid == caller_uid, users.c.deleted_at.is_(None))
            if sub_name:
                q = q.where(users.c.sub_name == sub_name)
            if uid:
                q = q.where(users.c.uid == uid)
            total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
            rows = conn.execute(q.order_by(users.c.created_at, users.c.uid).offset((page - 1) * limit)
                                .limit(limit)).all()
            subs = [user_from_row(r) for r in rows]
            names = self._names(conn, {s.parent_uid for s in subs if s.level == 2 and s.parent_uid})
            details = [SubAccount(s, names.get(s.parent_uid or "", "") if s.level == 2 else "") for s in subs]
            return SubPage(details, page, rules.total_pages(total, limit))

    def _names(self, conn: Connection, uids: set[str]) -> dict[str, str]:
        if not uids:
            return {}
        return {r.uid: r.sub_name or "" for r in conn.execute(select(users.c.uid, users.c.sub_name).where(
            users.c.uid.in_(uids)))}

    def set_acct_lv(self, caller_uid: str, sub_name: str, acct_lv: str) -> int:
        """Set a sub-account's account level (``acctLv`` 1..4, as text)."""
        with self.db.write() as conn:
            self._caller(conn, caller_uid)
            level = rules.parse_acct_lv(acct_lv)
            sub = self._sub(conn, caller_uid, sub_name)
            conn.execute(update(users).where(users.c.uid == sub.uid).values(acct_lv=level))
            return level

    def report_ip(self, caller_uid: str, sub_name: str, client_ip: str) -> dt.datetime:
        with self.db.write() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            sub = self._sub(conn, caller_uid, sub_name)
            if not client_ip:
                raise MissingParameter("clientIP")
            ip = rules.parse_ip(client_ip, "clientIP")
            conn.execute(sub_account_ips.insert().values(uid=sub.uid, ip=ip, kind="report", reported_at=now))
            return now

    def reported_ips(self, uid: str) -> list[tuple[str, str, dt.datetime]]:
        """(ip, kind, time) of every IP reported for a sub-account, oldest first (operator tools)."""
        with self.db.read() as conn:
            rows = conn.execute(select(sub_account_ips).where(sub_account_ips.c.uid == uid)
                                .order_by(sub_account_ips.c.id)).all()
        return [(r.ip, r.kind, r.reported_at) for r in rows]

    def top_up_demo(self, caller_uid: str, sub_name: str, ccy: str) -> TopUp:
        """Demo environment only: credit the fixed demo amount of ``ccy`` to the sub-account's
        trading account (from the platform's faucet account); returns the trading balance after."""
        with self.db.write() as conn:
            now = self.clock.now()
            master, _ = self._caller(conn, caller_uid)
            if master.env != "demo":
                raise Refused(BrokerReason.DEMO_ONLY, "This feature is only available in demo trading.")
            sub = self._sub(conn, caller_uid, sub_name)
            cur = currency(conn, ccy)
            amt = rules.demo_top_up(cur.ccy, DEMO_TOP_UPS, DEMO_TOP_UP_DEFAULT)
            ref = secrets.token_hex(8)
            self.ledger.post(conn, type="demo_top_up", ref=f"{sub.uid}:{cur.ccy}:{ref}", uid=caller_uid,
                             idempotency_key=f"demo_top_up:{sub.uid}:{ref}", at=now, memo=f"demo top-up of {sub_name}",
                             legs=[Leg(AccountRef.system(DEMO_SOURCE, cur.ccy), -amt),
                                   Leg(AccountRef.user(sub.uid, TRADING, cur.ccy), amt)])
            balance = conn.execute(select(ledger_accounts.c.available).where(
                ledger_accounts.c.owner == f"u:{sub.uid}", ledger_accounts.c.acct_type == TRADING,
                ledger_accounts.c.ccy == cur.ccy)).scalar_one()
            return TopUp(sub_name, cur.ccy, Decimal(balance))

    # -- sub-account API keys ------------------------------------------------------------------

    def create_key(self, caller_uid: str, sub_name: str, *, label: str, passphrase: str, perm: str = "",
                   ip: str = "") -> NewKey:
        with self.db.write() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            rules.check_label(label, required=True)
            rules.check_passphrase(passphrase)
            perm_text = ",".join(rules.parse_perms(perm))
            ip_text = ",".join(rules.parse_ip_list(ip))
            sub = self._sub(conn, caller_uid, sub_name)
            if sub.frozen:
                raise Refused(BrokerReason.SUB_ACCOUNT_FROZEN, f"The sub account of {sub_name} is suspended.",
                              param0=sub_name)
            if self.accounts.live_key_count(conn, sub.uid) >= 50:
                raise Refused(BrokerReason.KEY_LIMIT, "Each account can create up to 50 API keys")
            if self.accounts.label_taken(conn, sub.uid, label):
                raise Refused(BrokerReason.KEY_LABEL_EXISTS, "This note name already exists.", label=label)
            return self.accounts.insert_key(conn, sub.uid, perm_text=perm_text, ip_text=ip_text, label=label,
                                            passphrase=passphrase, now=now)

    def keys(self, caller_uid: str, sub_name: str, api_key: str = "") -> list[ApiKey]:
        with self.db.read() as conn:
            self._caller(conn, caller_uid)
            sub = self._sub(conn, caller_uid, sub_name)
            if api_key:
                return [self._key(conn, sub.uid, api_key)]
        return self.accounts.list_keys(sub.uid)

    def _key(self, conn: Connection, uid: str, api_key: str) -> ApiKey:
        if not api_key:
            raise MissingParameter("apiKey")
        key = self.accounts.live_key_of(conn, uid, api_key)
        if key is None:
            raise Refused(BrokerReason.API_KEY_MISSING, "API key doesn't exist.")
        return key

    def modify_key(self, caller_uid: str, sub_name: str, api_key: str, *, label: str | None = None,
                   perm: str | None = None, ip: str | None = None) -> tuple[ApiKey, dt.datetime]:
        """Reset the label, permissions or IP list of a sub-account key (``None``: unchanged)."""
        with self.accounts.changing_keys() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            if label is not None:
                rules.check_label(label, required=True)
            perm_text = ",".join(rules.parse_perms(perm)) if perm is not None else None
            ip_text = ",".join(rules.parse_ip_list(ip)) if ip is not None else None
            sub = self._sub(conn, caller_uid, sub_name)
            key = self._key(conn, sub.uid, api_key)
            if label is not None and self.accounts.label_taken(conn, sub.uid, label, except_id=key.id):
                raise Refused(BrokerReason.KEY_LABEL_EXISTS, "This note name already exists.", label=label)
            return self.accounts.update_key(conn, key.id, label=label, perm_text=perm_text, ip_text=ip_text), now

    def delete_key(self, caller_uid: str, sub_name: str, api_key: str) -> None:
        with self.accounts.changing_keys() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            sub = self._sub(conn, caller_uid, sub_name)
            key = self._key(conn, sub.uid, api_key)
            self.accounts.revoke_in(conn, key.id, "deleted_by_broker", now)

    # -- trading-fee changes ---------------------------------------------------------------------

    def set_fee_rate(self, caller_uid: str, *, sub_name: str = "", inst_type: str = "", quote_ccy_type: str = "",
                     mgn_type: str = "", chg_type: str, chg_taker: str = "", chg_maker: str = "",
                     eff_date: str = "") -> rules.FeeSetting:
        """Append a fee change (the history is never rewritten). ``sub_name`` empty: the broker's
        default for all its sub-accounts."""
        with self.db.write() as conn:
            now = self.clock.now()
            self._caller(conn, caller_uid)
            kind = rules.check_chg_type(chg_type)
            scope = rules.check_scope(inst_type, quote_ccy_type, mgn_type)
            taker = rules.parse_change(kind, chg_taker, "chgTaker")
            maker = rules.parse_change(kind, chg_maker, "chgMaker")
            if taker is None and maker is None:
                raise MissingParameter("chgTaker")
            day, at = rules.effective_from(now, eff_date)
            sub_uid = self._sub(conn, caller_uid, sub_name).uid if sub_name else None
            new_id = conn.execute(fee_rate_settings.insert().values(
                broker_uid=caller_uid, uid=sub_uid, inst_type=scope.inst_type, quote_ccy_type=scope.quote_ccy_type,
                mgn_type=scope.mgn_type, chg_type=kind, chg_taker=taker, chg_maker=maker, eff_date=day,
                effective_at=at, created_at=now).returning(fee_rate_settings.c.id)).scalar_one()
            return _setting(conn.execute(select(fee_rate_settings).where(fee_rate_settings.c.id == new_id)).one())

    def fee_history(self, broker_uid: str, uid: str | None = None) -> list[rules.FeeSetting]:
        """Every fee change a broker set (or those that may apply to sub-account ``uid``), in order."""
        q = select(fee_rate_settings).where(fee_rate_settings.c.broker_uid == broker_uid)
        if uid:
            q = q.where((fee_rate_settings.c.uid == uid) | fee_rate_settings.c.uid.is_(None))
        with self.db.read() as conn:
            return [_setting(r) for r in conn.execute(q.order_by(fee_rate_settings.c.id))]

    def fee_rate_at(self, uid: str, *, inst_type: str = "SPOT", quote_ccy_type: str = "", mgn_type: str = "",
                    at: dt.datetime | None = None) -> FeeLookup:
        """The fee changes that apply to a sub-account at ``at`` (default now) for an instrument
        scope, and the effective taker and maker rates (base rates from the settings)."""
        scope = rules.check_scope(inst_type, quote_ccy_type, mgn_type)
        moment = at or self.clock.now()
        with self.db.read() as conn:
            user = self.accounts.get_in(conn, uid)
        broker_uid = user.group_uid
        history = self.fee_history(broker_uid, uid) if user.is_sub else []
        taker = rules.applicable(history, uid, scope, moment, "taker")
        maker = rules.applicable(history, uid, scope, moment, "maker")
        base_t, base_m = self.settings.spot_taker_fee_rate, self.settings.spot_maker_fee_rate
        return FeeLookup(uid, broker_uid if user.is_sub else "", scope, moment, taker, maker, base_t, base_m,
                         rules.effective_rate(base_t, taker, "taker"), rules.effective_rate(base_m, maker, "maker"))

    # -- operator ---------------------------------------------------------------------------------

    def set_broker(self, uid: str, *, level: int | None = None, max_sub_accts: int | None = None,
                   clear_max: bool = False, enabled: bool | None = None) -> Broker:
        """Mark a master account as ND broker (level 1 by default) or change its level, its
        maximum-sub-account override (``clear_max``: back to the level's figure) or whether it is enabled."""
        if level is not None and not 1 <= level <= 5:
            raise InvalidParameter("level", "1..5")
        if max_sub_accts is not None and not 0 <= max_sub_accts <= 1_000_000:
            raise InvalidParameter("maxSubAcctQty", "0..1000000")
        with self.db.write() as conn:
            now = self.clock.now()
            user = self.accounts.get_in(conn, uid)
            if user.is_sub:
                raise InvalidParameter("uid", "a broker is a master account, not a sub-account")
            row = conn.execute(select(brokers).where(brokers.c.uid == uid)).first()
            if row is None:
                conn.execute(brokers.insert().values(
                    uid=uid, level=level or 1, max_sub_accts=max_sub_accts,
                    enabled=True if enabled is None else enabled, created_at=now, updated_at=now))
            else:
                values: dict[str, object] = {"updated_at": now}
                if level is not None:
                    values["level"] = level
                if max_sub_accts is not None or clear_max:
                    values["max_sub_accts"] = max_sub_accts
                if enabled is not None:
                    values["enabled"] = enabled
                conn.execute(update(brokers).where(brokers.c.uid == uid).values(**values))
            return _broker(conn.execute(select(brokers).where(brokers.c.uid == uid)).one())

    def list_brokers(self) -> list[BrokerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(brokers).order_by(brokers.c.created_at, brokers.c.uid)).all()
            now = self.clock.now()
            return [BrokerInfo(_broker(r), self._count(conn, r.uid), now) for r in rows]

    def get_broker(self, uid: str) -> BrokerInfo:
        with self.db.read() as conn:
            row = conn.execute(select(brokers).where(brokers.c.uid == uid)).first()
            if row is None:
                raise NotFound("Broker", uid)
            return BrokerInfo(_broker(row), self._count(conn, uid), self.clock.now())

    def all_subs(self, broker_uid: str, *, include_deleted: bool = False) -> list[SubAccount]:
        """A broker's sub-accounts, both levels, oldest first (operator tools)."""
        self.get_broker(broker_uid)
        q = select(users).where(users.c.master_uid == broker_uid)
        if not include_deleted:
            q = q.where(users.c.deleted_at.is_(None))
        with self.db.read() as conn:
            subs = [user_from_row(r) for r in conn.execute(q.order_by(users.c.created_at, users.c.uid))]
            names = self._names(conn, {s.parent_uid for s in subs if s.level == 2 and s.parent_uid})
        return [SubAccount(s, names.get(s.parent_uid or "", "") if s.level == 2 else "") for s in subs]
