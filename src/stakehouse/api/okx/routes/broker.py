"""OKX routes: the non-disclosed broker (seed 004). Master key of an enabled broker only (a
sub-account key: 59604, a master that is not a broker: 59608); every rule is in
``broker/service.py`` and ``broker/rules.py``."""

from __future__ import annotations

from typing import Any

from stakehouse import errors as dom
from stakehouse.accounts.service import ApiKey, User
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.broker.service import SubAccount
from stakehouse.clock import to_ms
from stakehouse.money import fmt


def _names(u: User) -> list[str]:
    return [f for f in u.frozen_funcs.split(",") if f]


def sub_detail(s: SubAccount) -> dict[str, Any]:
    u = s.user
    return {"acctLv": str(u.acct_lv), "canTransOut": u.can_trans_out, "mainAcct": s.main_acct, "enable": not u.frozen,
            "frozenFunc": _names(u), "label": u.label, "subAcct": u.sub_name or "", "ts": str(to_ms(u.created_at)),
            "uid": u.uid}


def key_row(k: ApiKey) -> dict[str, str]:
    return {"label": k.label, "apiKey": k.api_key, "perm": k.perms, "ip": k.ips, "ts": str(to_ms(k.created_at))}


def get_info(call: Call) -> list[dict[str, str]]:
    info = call.services.broker.info(call.caller.uid)
    return [{"level": f"lv{info.broker.level}", "maxSubAcctQty": str(info.broker.max_sub_accounts),
             "subAcctQty": str(info.sub_accounts), "ts": str(to_ms(info.ts))}]


def post_create_sub(call: Call) -> list[dict[str, str]]:
    p = call.params
    sub = call.services.broker.create_sub(call.caller.uid, sub_name=p.text("subAcct", required=True),
                                          label=p.text("label"), client_ip=p.text("clientIP"),
                                          main_acct=p.text("mainAcct"))
    return [{"acctLv": str(sub.acct_lv), "label": sub.label, "subAcct": sub.sub_name or "", "uid": sub.uid,
             "ts": str(to_ms(sub.created_at))}]


def post_delete_sub(call: Call) -> list[dict[str, str]]:
    name = call.params.text("subAcct", required=True)
    call.services.broker.delete_sub(call.caller.uid, name)
    return [{"subAcct": name}]


def get_sub_info(call: Call) -> list[dict[str, Any]]:
    p = call.params
    page = p.integer("page", lo=1, hi=10**9, default=1)
    found = call.services.broker.list_subs(call.caller.uid, sub_name=p.text("subAcct"), uid=p.text("uid", max_len=20),
                                           page=page, limit=p.limit())
    return [{"details": [sub_detail(s) for s in found.details], "page": str(found.page),
             "totalPage": str(found.total_pages)}]


def post_create_key(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct", required=True)
    made = call.services.broker.create_key(call.caller.uid, name, label=p.text("label"),
                                           passphrase=p.text("passphrase"), perm=p.text("perm"),
                                           ip=p.text("ip", max_len=2000))
    k = made.key
    return [{"subAcct": name, "label": k.label, "apiKey": k.api_key, "secretKey": made.secret,
             "passphrase": made.passphrase, "perm": k.perms, "ip": k.ips, "ts": str(to_ms(k.created_at))}]


def get_keys(call: Call) -> list[dict[str, str]]:
    p = call.params
    keys = call.services.broker.keys(call.caller.uid, p.text("subAcct", required=True), p.text("apiKey"))
    return [key_row(k) for k in keys]


def post_modify_key(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct", required=True)
    api_key = p.text("apiKey", required=True)
    key, now = call.services.broker.modify_key(
        call.caller.uid, name, api_key, label=p.text("label") if p.has("label") else None,
        perm=p.text("perm") if p.has("perm") else None, ip=p.text("ip", max_len=2000) if p.has("ip") else None)
    return [{"subAcct": name, "label": key.label, "apiKey": key.api_key, "perm": key.perms, "ip": key.ips,
             "ts": str(to_ms(now))}]


def post_delete_key(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct", required=True)
    call.services.broker.delete_key(call.caller.uid, name, p.text("apiKey", required=True))
    return [{"subAcct": name}]


def post_set_level(call: Call) -> list[dict[str, str]]:
    p = call.params
    level = call.services.broker.set_acct_lv(call.caller.uid, p.text("subAcct", required=True), p.text("acctLv"))
    return [{"acctLv": str(level)}]


def post_set_fee_rate(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct")
    setting = call.services.broker.set_fee_rate(
        call.caller.uid, sub_name=name, inst_type=p.text("instType"), quote_ccy_type=p.text("quoteCcyType"),
        mgn_type=p.text("mgnType"), chg_type=p.text("chgType"), chg_taker=p.text("chgTaker"),
        chg_maker=p.text("chgMaker"), eff_date=p.text("effDate"))
    return [{"subAcct": name, "effTs": setting.eff_date}]


def post_set_assets(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct", required=True)
    ccy = p.ccy(required=True)
    done = call.services.broker.top_up_demo(call.caller.uid, name, ccy)
    return [{"subAcct": done.sub_acct, "ccy": done.ccy, "amt": fmt(done.amt)}]


def post_report_ip(call: Call) -> list[dict[str, str]]:
    p = call.params
    name = p.text("subAcct", required=True)
    at = call.services.broker.report_ip(call.caller.uid, name, p.text("clientIP"))
    return [{"subAcct": name, "ts": str(to_ms(at))}]


#: A name taken by a concurrent creation (the service checks first; the database has the last word).
CREATE_ERRORS: dict[type[dom.DomainError], str] = {dom.Conflict: "59601"}

ROUTES = [
    Route("GET", "/broker/nd/info", get_info, "read", Limit(1, 1, "uid")),
    Route("POST", "/broker/nd/create-subaccount", post_create_sub, "trade", Limit(40, 1, "uid"), CREATE_ERRORS),
    Route("POST", "/broker/nd/delete-subaccount", post_delete_sub, "trade", Limit(10, 1, "uid")),
    Route("GET", "/broker/nd/subaccount-info", get_sub_info, "read", Limit(1, 1, "uid")),
    Route("POST", "/broker/nd/subaccount/apikey", post_create_key, "trade", Limit(40, 1, "uid")),
    Route("GET", "/broker/nd/subaccount/apikey", get_keys, "read", Limit(1, 1, "uid")),
    Route("POST", "/broker/nd/subaccount/modify-apikey", post_modify_key, "trade", Limit(10, 1, "uid")),
    Route("POST", "/broker/nd/subaccount/delete-apikey", post_delete_key, "trade", Limit(10, 1, "uid")),
    Route("POST", "/broker/nd/set-subaccount-level", post_set_level, "trade", Limit(5, 2, "uid")),
    Route("POST", "/broker/nd/set-subaccount-fee-rate", post_set_fee_rate, "trade", Limit(5, 2, "uid")),
    Route("POST", "/broker/nd/set-subaccount-assets", post_set_assets, "trade", Limit(40, 1, "uid")),
    Route("POST", "/broker/nd/report-subaccount-ip", post_report_ip, "trade", Limit(40, 1, "uid")),
]
