"""What the operator's tools (admin API and CLI) show of users, API keys, balances and postings.

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

from typing import Any

from stakehouse.accounts.service import ApiKey, NewKey, User
from stakehouse.assets.service import Balance
from stakehouse.ledger.journal import PostingView
from stakehouse.money import fmt


def user_out(u: User) -> dict[str, Any]:
    return {"uid": u.uid, "env": u.env, "masterUid": u.master_uid or "", "parentUid": u.parent_uid or "",
            "level": u.level, "subAcct": u.sub_name or "", "label": u.label, "kycLevel": u.kyc_level,
            "frozen": u.frozen, "frozenFuncs": [f for f in u.frozen_funcs.split(",") if f],
            "canTransOut": u.can_trans_out, "createdAt": u.created_at.isoformat()}


def key_out(k: ApiKey) -> dict[str, Any]:
    return {"apiKey": k.api_key, "uid": k.uid, "perms": k.perms, "ips": [i for i in k.ips.split(",") if i],
            "label": k.label, "frozen": k.frozen, "createdAt": k.created_at.isoformat(),
            "lastUsedAt": k.last_used_at.isoformat() if k.last_used_at else None,
            "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None, "revokeReason": k.revoke_reason}


def new_key_out(n: NewKey) -> dict[str, Any]:
    return {**key_out(n.key), "secretKey": n.secret, "passphrase": n.passphrase}


def balance_out(acct_type: int, b: Balance) -> dict[str, str]:
    return {"acctType": str(acct_type), "ccy": b.ccy, "available": fmt(b.available), "locked": fmt(b.locked),
            "total": fmt(b.total)}


def posting_out(p: PostingView) -> dict[str, str]:
    return {"entryId": str(p.entry_id), "type": p.type, "ref": p.ref, "memo": p.memo, "acctType": str(p.acct_type),
            "ccy": p.ccy, "bucket": p.bucket, "amount": fmt(p.amount), "ts": p.created_at.isoformat()}
