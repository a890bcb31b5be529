"""The operator's HTTP API under ``/admin`` (bearer admin token). Thin: each route calls one service."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from stakehouse import errors as dom
from stakehouse.api.admin.broker import build_broker_admin
from stakehouse.api.admin.chain import build_chain_admin
from stakehouse.api.admin.dcd import build_dcd_admin
from stakehouse.api.admin.oauth import build_oauth_admin
from stakehouse.api.admin.providers import build_provider_admin
from stakehouse.api.admin.rebates import build_rebates_admin
from stakehouse.api.admin.staking import build_staking_admin
from stakehouse.api.admin.trading import build_trading_admin
from stakehouse.api.admin.withdrawals import build_withdrawals_admin
from stakehouse.ledger.rules import FUNDING, TRADING
from stakehouse.money import AmountError, parse_amount
from stakehouse.operator.accounts import balance_out, key_out, new_key_out, posting_out, user_out
from stakehouse.operator.funding import deposit_out
from stakehouse.operator.platform import advance_out, clock_out, run_progress_out
from stakehouse.wiring import Services

bearer = HTTPBearer(auto_error=False)

AMOUNT_PATTERN = r"^[0-9]{1,40}(\.[0-9]{1,40})?$"


class UserIn(BaseModel):
    env: str = Field("live", pattern="^(live|demo)$")
    label: str = Field("", max_length=50)
    kycLevel: int = Field(0, ge=0, le=3)
    #: Products whose terms the user accepts. Absent: none in production; every staking product in
    #: the sandbox (its users accept on creation, staking rules 3.1).
    acceptTerms: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(None, max_length=20)


class MaintenanceIn(BaseModel):
    on: bool


class SubAccountIn(BaseModel):
    subAcct: str = Field(min_length=1, max_length=32)
    label: str = Field("", max_length=50)
    canTransOut: bool = True


class WebLoginIn(BaseModel):
    login: str = Field(min_length=3, max_length=32)
    password: str = Field(min_length=10, max_length=128)


class KycIn(BaseModel):
    level: int = Field(ge=0, le=3)


class TermsIn(BaseModel):
    product: str = Field(min_length=1, max_length=32)


class FreezeIn(BaseModel):
    functions: list[str] = Field(default_factory=list, max_length=10)


class KeyIn(BaseModel):
    perms: list[str] = Field(default_factory=lambda: ["read_only"], max_length=3)
    ips: list[str] = Field(default_factory=list, max_length=21)
    label: str = Field("", max_length=50)
    passphrase: str | None = Field(None, min_length=8, max_length=32)


class DepositIn(BaseModel):
    ccy: str = Field(min_length=1, max_length=16)
    amt: str = Field(pattern=AMOUNT_PATTERN, max_length=80)
    chain: str = Field("", max_length=48)
    txId: str = Field("", max_length=128)
    fromAddr: str = Field("", max_length=128)
    toAddr: str = Field("", max_length=128)
    idempotencyKey: str = Field("", max_length=64)


class AdvanceIn(BaseModel):
    seconds: int | None = Field(None, ge=0, le=10 * 366 * 86400)
    days: int | None = Field(None, ge=0, le=10 * 366)
    to: dt.datetime | None = None


def _amount(text: str, services: Services) -> Decimal:
    try:
        return parse_amount(text, scale=18, max_amount=services.settings.max_amount)
    except AmountError as exc:
        raise dom.InvalidParameter("amt", exc.reason) from None


def _printable(name: str, value: Any) -> None:
    """Every string in ``value`` (a JSON value) is free of control characters (PostgreSQL cannot
    store NUL; none belongs in an operator's input)."""
    if isinstance(value, str):
        if not value.isprintable():
            raise dom.InvalidParameter(name, "must not contain control characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _printable(str(key), key)
            _printable(str(key), item)
    elif isinstance(value, list):
        for item in value:
            _printable(name, item)


async def printable_input(request: Request) -> None:
    """No control character in a path or query parameter or in any string of a JSON body (400)."""
    for source in (request.path_params, request.query_params):
        for name, value in source.items():
            _printable(name, value)
    body = await request.body()  # read once: FastAPI's own parse reuses it
    if body:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return  # FastAPI reports a body that is not JSON (422)
        _printable("body", parsed)


def build_admin(app: FastAPI, services: Services, admin_token: str) -> None:
    def require_admin(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), admin_token.encode()):
            raise HTTPException(401, "admin bearer token required")

    r = APIRouter(prefix="/admin", dependencies=[Depends(require_admin), Depends(printable_input)], tags=["admin"])
    acc = services.accounts

    @r.post("/users")
    def create_user(body: UserIn) -> dict[str, Any]:
        terms = body.acceptTerms
        if terms is None:
            terms = [p.product for p in services.staking.products()] if services.settings.sandbox else []
        return user_out(acc.create_user(env=body.env, label=body.label, kyc_level=body.kycLevel,
                                        accept_terms=tuple(terms)))

    @r.get("/users")
    def list_users(masterUid: str = "", limit: int = 100) -> list[dict[str, Any]]:
        return [user_out(u) for u in acc.list_users(master_uid=masterUid or None, limit=min(max(limit, 1), 1000))]

    @r.get("/users/{uid}")
    def get_user(uid: str) -> dict[str, Any]:
        return user_out(acc.get(uid))

    @r.post("/users/{uid}/sub-accounts")
    def create_sub(uid: str, body: SubAccountIn) -> dict[str, Any]:
        return user_out(acc.create_sub_account(parent_uid=uid, sub_name=body.subAcct, label=body.label,
                                               can_trans_out=body.canTransOut))

    @r.put("/users/{uid}/web-login")
    def set_web_login(uid: str, body: WebLoginIn) -> dict[str, Any]:
        """Set the user's web login and password (hashed; never echoed). Ends its open web sessions."""
        return {"uid": uid, "login": services.logins.set_password(uid, body.login, body.password)}

    @r.post("/users/{uid}/kyc")
    def set_kyc(uid: str, body: KycIn) -> dict[str, Any]:
        return user_out(acc.set_kyc(uid, body.level))

    @r.post("/users/{uid}/terms")
    def accept_terms(uid: str, body: TermsIn) -> dict[str, Any]:
        acc.accept_terms(uid, body.product)
        return {"uid": uid, "product": body.product, "accepted": True}

    @r.post("/users/{uid}/freeze")
    def freeze(uid: str, body: FreezeIn) -> dict[str, Any]:
        return user_out(acc.set_frozen(uid, True, body.functions))

    @r.post("/users/{uid}/unfreeze")
    def unfreeze(uid: str, body: FreezeIn) -> dict[str, Any]:
        return user_out(acc.set_frozen(uid, False, body.functions))

    @r.post("/users/{uid}/api-keys")
    def create_key(uid: str, body: KeyIn) -> dict[str, Any]:
        return new_key_out(acc.create_key(uid, perms=body.perms, ips=body.ips, label=body.label,
                                          passphrase=body.passphrase))

    @r.get("/users/{uid}/api-keys")
    def list_keys(uid: str, includeRevoked: bool = False) -> list[dict[str, Any]]:
        acc.get(uid)
        return [key_out(k) for k in acc.list_keys(uid, include_revoked=includeRevoked)]

    @r.post("/api-keys/{api_key}/revoke")
    def revoke_key(api_key: str) -> dict[str, Any]:
        return key_out(acc.revoke_key(api_key))

    @r.post("/api-keys/{api_key}/freeze")
    def freeze_key(api_key: str) -> dict[str, Any]:
        """Freeze an OKX key: every request signed with it gets 50100 until it is unfrozen."""
        return key_out(acc.set_key_frozen(api_key, True))

    @r.post("/api-keys/{api_key}/unfreeze")
    def unfreeze_key(api_key: str) -> dict[str, Any]:
        return key_out(acc.set_key_frozen(api_key, False))

    @r.post("/users/{uid}/deposits")
    def credit_deposit(uid: str, body: DepositIn) -> dict[str, Any]:
        return deposit_out(services.chain.credit_deposit(
            uid, body.ccy.upper(), _amount(body.amt, services), chain=body.chain, tx_id=body.txId,
            from_addr=body.fromAddr, to_addr=body.toAddr, idempotency_key=body.idempotencyKey))

    @r.get("/users/{uid}/balances")
    def balances(uid: str) -> list[dict[str, str]]:
        acc.get(uid)
        return [balance_out(t, b) for t in (FUNDING, TRADING) for b in services.assets.balances(uid, t)]

    @r.get("/users/{uid}/journal")
    def journal(uid: str, limit: int = 100, beforeEntry: int | None = None) -> list[dict[str, str]]:
        return [posting_out(p) for p in services.accounts.journal(uid, limit=limit, before_entry=beforeEntry)]

    @r.get("/clock")
    def get_clock() -> dict[str, Any]:
        return clock_out(services)

    @r.post("/clock/freeze")
    def freeze_clock() -> dict[str, Any]:
        """Stop the sandbox clock where it is: only ``/clock/advance`` moves it until ``/clock/resume``."""
        services.pin_clock(running=False)
        return clock_out(services)

    @r.post("/clock/resume")
    def resume_clock() -> dict[str, Any]:
        """Let the sandbox clock run with the wall clock again, from where it stands."""
        services.pin_clock(running=True)
        return clock_out(services)

    @r.post("/clock/advance")
    def advance(body: AdvanceIn) -> dict[str, Any]:
        """Move the sandbox clock ``days`` and/or ``seconds`` ahead, or ``to`` a moment (at most
        3660 days at once), running everything that falls due on the way."""
        given = body.seconds is not None or body.days is not None
        by = dt.timedelta(seconds=body.seconds or 0, days=body.days or 0) if given else None
        return advance_out(services.clock.now, services.advance_clock(to=body.to, by=by))

    @r.get("/maintenance")
    def get_maintenance() -> dict[str, bool]:
        return {"on": services.in_maintenance()}

    @r.put("/maintenance")
    def put_maintenance(body: MaintenanceIn) -> dict[str, bool]:
        """While on, the OKX and Gemini APIs answer 503 (OKX 50001, Gemini Maintenance); the admin
        API and the daily jobs go on. Every worker follows within 2 s."""
        return {"on": services.set_maintenance(body.on)}

    @r.get("/jobs")
    def jobs(limit: int = 100) -> list[dict[str, Any]]:
        return [{"job": j.job, "period": j.period, "dueAt": j.due_at.isoformat(), "result": j.result}
                for j in services.runner.history(min(max(limit, 1), 1000))]

    @r.get("/jobs/runs")
    def job_runs(limit: int = 20, job: str | None = None, running: bool = False) -> list[dict[str, Any]]:
        """Chunked runs (runs in progress first, then newest first): chunks planned and done,
        parameters, totals. ``running=true``: only those in progress."""
        if job is not None and len(job) > 64:
            raise dom.InvalidParameter("job", "at most 64 characters")
        return [run_progress_out(p) for p in
                services.runner.runs(limit=min(max(limit, 1), 1000), job=job, open_only=running)]

    @r.get("/audit")
    def audit() -> JSONResponse:
        report = services.audit()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 409)

    build_staking_admin(r, services)
    build_provider_admin(r, services)
    build_trading_admin(r, services)
    build_rebates_admin(r, services)
    build_dcd_admin(r, services)
    build_oauth_admin(r, services)
    build_broker_admin(r, services)
    build_chain_admin(r, services)
    build_withdrawals_admin(r, services)
    app.include_router(r)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        """FastAPI's 422 without the values sent: an error must never echo a secret (a passphrase)."""
        assert isinstance(exc, RequestValidationError)
        detail = [{"type": e.get("type", ""), "loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    @app.exception_handler(dom.DomainError)
    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, dom.DomainError)
        status = 404 if isinstance(exc, dom.NotFound) else 409 if isinstance(exc, dom.Conflict) else \
            403 if isinstance(exc, dom.NotAllowed) else 400
        return JSONResponse({"error": type(exc).__name__, "message": exc.message}, status_code=status)
