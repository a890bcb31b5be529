"""Parsers and views of ND brokers for the operator's tools (admin API and CLI).

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from stakehouse import errors as dom
from stakehouse.broker.rules import FeeSetting
from stakehouse.broker.service import BrokerInfo, FeeLookup, SubAccount
from stakehouse.clock import MAX_MS, from_ms, to_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt


def parse_at(text: str, field: str = "at") -> dt.datetime | None:
    """A time as Unix milliseconds or ISO 8601 with a time zone; empty: ``None`` (now). Errors name
    ``field``."""
    text = text.strip()
    if not text:
        return None
    if ascii_digits(text, 15) and int(text) <= MAX_MS:
        return from_ms(int(text))
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise dom.InvalidParameter(field, "needs a time zone, e.g. 2026-01-01T00:00:00Z")
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: a zone shifts it past year 1 or 9999
        raise dom.InvalidParameter(field, "Unix milliseconds or ISO 8601, e.g. 2026-01-01T00:00:00Z") from None


def broker_out(info: BrokerInfo) -> dict[str, Any]:
    b = info.broker
    return {"uid": b.uid, "level": f"lv{b.level}", "maxSubAcctQty": str(b.max_sub_accounts),
            "maxSubAcctQtyOverride": None if b.max_sub_accts is None else str(b.max_sub_accts),
            "subAcctQty": str(info.sub_accounts), "enabled": b.enabled, "createdAt": b.created_at.isoformat(),
            "updatedAt": b.updated_at.isoformat()}


def sub_out(s: SubAccount) -> dict[str, Any]:
    u = s.user
    return {"uid": u.uid, "subAcct": u.sub_name or "", "level": u.level, "mainAcct": s.main_acct,
            "parentUid": u.parent_uid or "", "label": u.label, "acctLv": str(u.acct_lv), "env": u.env,
            "enable": not u.frozen, "frozenFunc": [f for f in u.frozen_funcs.split(",") if f],
            "canTransOut": u.can_trans_out, "createdAt": u.created_at.isoformat(),
            "deletedAt": u.deleted_at.isoformat() if u.deleted_at else None}


def setting_out(s: FeeSetting) -> dict[str, Any]:
    return {"id": str(s.id), "brokerUid": s.broker_uid, "uid": s.uid or "", "instType": s.scope.inst_type or "",
            "quoteCcyType": "" if s.scope.quote_ccy_type is None else str(s.scope.quote_ccy_type),
            "mgnType": "" if s.scope.mgn_type is None else str(s.scope.mgn_type), "chgType": s.chg_type,
            "chgTaker": "" if s.chg_taker is None else fmt(s.chg_taker),
            "chgMaker": "" if s.chg_maker is None else fmt(s.chg_maker), "effDate": s.eff_date,
            "effectiveAt": s.effective_at.isoformat(), "effTs": str(to_ms(s.effective_at)),
            "createdAt": s.created_at.isoformat()}


def lookup_out(f: FeeLookup) -> dict[str, Any]:
    return {"uid": f.uid, "brokerUid": f.broker_uid, "instType": f.scope.inst_type or "",
            "quoteCcyType": "" if f.scope.quote_ccy_type is None else str(f.scope.quote_ccy_type),
            "mgnType": "" if f.scope.mgn_type is None else str(f.scope.mgn_type),
            "at": f.at.isoformat(), "ts": str(to_ms(f.at)),
            "taker": {"base": fmt(f.base_taker), "rate": fmt(f.taker_rate),
                      "change": setting_out(f.taker) if f.taker else None},
            "maker": {"base": fmt(f.base_maker), "rate": fmt(f.maker_rate),
                      "change": setting_out(f.maker) if f.maker else None}}
