"""OKX error codes: the one table (HTTP status, message template) and the domain mapping."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from stakehouse import errors as dom
from stakehouse.broker.rules import BrokerReason
from stakehouse.dcd.rules import DcdReason
from stakehouse.funding.rules import FundingReason
from stakehouse.oauth.rules import OAuthReason
from stakehouse.rebates.rules import RebateReason
from stakehouse.staking.rules import StakingReason
from stakehouse.trading.rules import TradingReason

#: code -> (HTTP status, message template). Templates use ``{param0}``, ``{param1}``, ``{ccy}``.
CODES: dict[str, tuple[int, str]] = {
    "404": (404, "Not Found"),
    # OAuth (conventions 3.3; the seed's table)
    "53000": (400, "Invalid token"),
    "53001": (400, "Authorization canceled"),
    "53002": (400, "Token expired"),
    "53003": (400, "Token revoked"),
    "53004": (400, "Account has been frozen"),
    "53005": (400, "Wrong refresh token"),
    "53006": (401, "Invalid device"),
    "53009": (400, "Authorization failed"),
    "53010": (400, "Parameter {param0} error"),
    "53011": (400, "Parameter {param0} cannot be empty"),
    "53012": (400, "Authorization code expired"),
    "53013": (400, "You don't have permission to access this API"),
    "53014": (401, "Invalid IP"),
    "53015": (400, "Parameter {param0} length cannot exceed {param1}"),
    "53016": (400, "Invalid redirect_uri"),
    "53017": (400, "Fast API permissions not enabled"),
    "50000": (400, "Body for POST request cannot be empty."),
    "50001": (503, "Service temporarily unavailable. Please try again later."),
    "50002": (400, "JSON syntax error"),
    "50011": (429, "Too Many Requests"),
    "50013": (429, "Systems are busy. Please try again later."),
    "50014": (400, "Parameter {param0} can not be empty."),
    "50015": (400, "Either parameter {param0} or {param1} is required"),
    "50024": (200, "Parameter {param0} and {param1} can not exist at the same time."),
    "50026": (500, "System error. Try again later"),
    "50030": (200, "You don't have permission to use this API endpoint"),
    "50038": (200, "This feature is unavailable in demo trading"),
    "50053": (200, "This feature is only available in demo trading."),
    "50061": (200, "You've reached the maximum order rate limit for this account."),
    "50063": (200, "You can't activate the credits as they might have expired or are already activated."),
    "50100": (400, "API frozen, please contact customer service."),
    "50101": (401, "APIKey does not match current environment."),
    "50102": (401, "Timestamp request expired."),
    "50103": (401, 'Request header "OK-ACCESS-KEY" cannot be empty.'),
    "50104": (401, 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.'),
    "50105": (401, 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'),
    "50106": (401, 'Request header "OK-ACCESS-SIGN" cannot be empty.'),
    "50107": (401, 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.'),
    "50110": (401, "Your IP {param0} is not included in your API key's IP whitelist."),
    "50111": (401, "Invalid OK-ACCESS-KEY."),
    "50112": (401, "Invalid OK-ACCESS-TIMESTAMP."),
    "50113": (401, "Invalid signature."),
    "50115": (405, "Invalid request method."),
    "50119": (200, "API key doesn't exist"),
    "50120": (200, "This API key doesn't have permission to use this function"),
    "51000": (400, "Parameter {param0} error"),
    "51001": (200, "Instrument ID or Spread ID doesn't exist."),
    "51008": (200, "Order failed. Insufficient {param0} balance in account"),
    "51010": (200, "Request unsupported under current account mode"),
    "51016": (200, "Client order ID already exists."),
    "51019": (200, "Order failed. The post_only order would take liquidity at the current index price."),
    "51020": (200, "Your order should meet or exceed the minimum order amount."),
    "51111": (200, "Maximum {param0} orders can be placed in bulk"),
    "51121": (200, "Order quantity must be a multiple of the lot size."),
    "51400": (200, "Order cancellation failed as the order has been filled, canceled or does not exist."),
    "51603": (200, "Order does not exist."),
    "51721": (200, "Cancel redeem error"),
    "51722": (200, "Redeem already complete"),
    "51725": (200, "Cancellation is currently not supported"),
    "51727": (200, "The minimum subscription amount is {minUnit} {ccy}"),
    "51728": (200, "The subscription quantity is above the maximum limit"),
    "51730": (200, "Sold out"),
    "51731": (200, "Product is currently suspended for purchase"),
    "51732": (200, "Required user KYC level not met"),
    "51735": (200, "Sub-account is not supported"),
    "51736": (200, "Insufficient {ccy} balance"),
    "51738": (200, "Your funding account is frozen."),
    "58004": (200, "Account blocked."),
    "58114": (400, "Transfer amount must be greater than 0"),
    "58115": (200, "Sub-account does not exist."),
    "58116": (200, "Transfer exceeds the available amount."),
    "58119": (200, "{param0} Sub-account has no permission to transfer out, please set first."),
    "58123": (200, "The From parameter cannot be the same as the To parameter."),
    "58127": (200, "Main account API key does not support current transfer 'type' parameter. "
                   "Please refer to the API documentation."),
    "58128": (200, "Sub-account API key does not support current transfer 'type' parameter. "
                   "Please refer to the API documentation."),
    "58129": (200, "{param0} is incorrect or {param0} does not match with 'type'"),
    "58205": (200, "Withdrawal amount exceeds the upper limit."),
    "58206": (200, "Withdrawal amount is less than the lower limit."),
    "58209": (200, "Sub-accounts don't support withdrawals or deposits. Please use your main account instead."),
    "58213": (200, "The internal transfer address is illegal. It must be an email, phone number, or account name"),
    "58215": (200, "Withdrawal ID does not exist."),
    "58216": (200, "Operation not allowed."),
    "58300": (200, "Deposit-address count exceeds the limit."),
    "58301": (200, "Deposit-address not exist"),
    "58350": (200, "Insufficient balance."),
    "52909": (200, "Duplicate Client Order Id"),
    "52921": (200, "Quote traded, please ask for quote again"),
    "52922": (200, "Quote expired, please ask for quote again"),
    "52925": (200, "Duplicate client request ID"),
    "52927": (200, "No quote"),
    "59501": (200, "Each account can create up to 50 API keys"),
    "59502": (200, "This note name already exists. Enter a unique API key note name"),
    "59503": (200, "Each API key can bind up to 20 IP addresses"),
    "59505": (200, "The passphrase format is incorrect."),
    "59506": (200, "API key doesn't exist."),
    "59508": (200, "The sub account of {param0} is suspended."),
    "59510": (200, "Sub-account does not exist"),
    "59601": (200, "Subaccount name already exists."),
    "59603": (200, "Maximum number of subaccounts reached."),
    "59604": (200, "Only the API key of the main account can access this API."),
    "59606": (200, "Failed to delete sub-account. Transfer all sub-account funds to your main account before "
                   "deleting your sub-account."),
    "59608": (200, "Only Broker accounts have permission to access this API."),
    "59615": (200, "The time interval between the Begin Date and End Date cannot be greater than 180 days."),
    "59616": (200, "The Begin Date cannot be later than the End Date."),
    "59622": (200, "You're creating a sub-account for a non-existing or incorrect sub-account. Create a sub-account "
                   "under the main account and try again."),
    "59623": (200, "Couldn't delete the sub-account under the ND broker as the sub-account has one or more "
                   "sub-accounts, which must be deleted first."),
}


#: Liquid staking refusals -> OKX finance code.
STAKING_CODES: dict[StakingReason, str] = {
    StakingReason.PURCHASE_CLOSED: "51731",
    StakingReason.KYC: "51732",
    StakingReason.TERMS: "50030",
    StakingReason.SUB_ACCOUNT: "51735",
    StakingReason.BELOW_MINIMUM: "51727",
    StakingReason.USER_QUOTA: "51728",
    StakingReason.SOLD_OUT: "51730",
    StakingReason.CANCEL_DISABLED: "51725",
    StakingReason.ALREADY_COMPLETE: "51722",
    StakingReason.NOT_CANCELLABLE: "51721",
}

#: Broker refusals -> OKX code (59xxx, and the environment codes).
BROKER_CODES: dict[BrokerReason, str] = {
    BrokerReason.NOT_BROKER: "59608",
    BrokerReason.NOT_MASTER_KEY: "59604",
    BrokerReason.SUB_ACCOUNT_MISSING: "59510",
    BrokerReason.SUB_ACCOUNT_EXISTS: "59601",
    BrokerReason.SUB_ACCOUNT_LIMIT: "59603",
    BrokerReason.SUB_ACCOUNT_FUNDED: "59606",
    BrokerReason.BAD_MAIN_ACCOUNT: "59622",
    BrokerReason.HAS_SUB_ACCOUNTS: "59623",
    BrokerReason.KEY_LIMIT: "59501",
    BrokerReason.KEY_LABEL_EXISTS: "59502",
    BrokerReason.TOO_MANY_IPS: "59503",
    BrokerReason.PASSPHRASE_FORMAT: "59505",
    BrokerReason.API_KEY_MISSING: "59506",
    BrokerReason.SUB_ACCOUNT_FROZEN: "59508",
    BrokerReason.DEMO_ONLY: "50053",
}

#: Funding refusals -> OKX code (58xxx, and the environment code).
FUNDING_CODES: dict[FundingReason, str] = {
    FundingReason.NOT_IN_DEMO: "50038",
    FundingReason.SUB_ACCOUNT_NO_WITHDRAWAL: "58209",
    FundingReason.ABOVE_MAX_WITHDRAWAL: "58205",
    FundingReason.BELOW_MIN_WITHDRAWAL: "58206",
    FundingReason.BAD_INTERNAL_ADDRESS: "58213",
    FundingReason.WITHDRAWAL_MISSING: "58215",
    FundingReason.NOT_CANCELLABLE: "58216",
    FundingReason.ADDRESS_LIMIT: "58300",
    FundingReason.ADDRESS_MISSING: "58301",
}

#: Spot market refusals -> OKX code (51xxx, and the ND credit and order-cap codes).
TRADING_CODES: dict[TradingReason, str] = {
    TradingReason.UNKNOWN_INSTRUMENT: "51001",
    TradingReason.INSTRUMENT_SUSPENDED: "51001",
    TradingReason.TD_MODE: "51010",
    TradingReason.BELOW_MIN_SIZE: "51020",
    TradingReason.LOT_SIZE: "51121",
    TradingReason.TICK_SIZE: "51000",
    TradingReason.ABOVE_MAX_SIZE: "51000",
    TradingReason.INSUFFICIENT_BALANCE: "51008",
    TradingReason.DUPLICATE_CL_ORD_ID: "51016",
    TradingReason.POST_ONLY_WOULD_CROSS: "51019",
    TradingReason.ORDER_MISSING: "51603",
    TradingReason.ORDER_CLOSED: "51400",
    TradingReason.NO_PRICE: "51000",
    TradingReason.STALE_PRICE: "51000",
    TradingReason.CREDIT_NOT_ACTIVATABLE: "50063",
    TradingReason.NOT_ND_SUB_ACCOUNT: "50030",
    TradingReason.ORDER_CAP: "50061",
}

#: Broker rebate refusals -> OKX code.
REBATE_CODES: dict[RebateReason, str] = {
    RebateReason.NOT_OWN_SUB_ACCOUNT: "59510",
    RebateReason.API_KEY_MISSING: "50119",
    RebateReason.NOT_FD_BROKER: "59608",
    RebateReason.RANGE_TOO_LONG: "59615",
    RebateReason.END_BEFORE_BEGIN: "59616",
    RebateReason.FILE_TOO_SOON: "50011",
}

#: DCD refusals -> OKX code (DCD has no published codes: the convert codes, conventions 9.12).
DCD_CODES: dict[DcdReason, str] = {
    DcdReason.NOT_SUB_ACCOUNT: "50030",
    DcdReason.TRADING_STOPPED: "51731",
    DcdReason.QUOTA: "51730",
    DcdReason.BELOW_MIN: "51727",
    DcdReason.ABOVE_MAX: "51728",
    DcdReason.CL_REQ_ID_TAKEN: "52925",
    DcdReason.CL_ORD_ID_TAKEN: "52909",
    DcdReason.QUOTE_MISSING: "52927",
    DcdReason.QUOTE_USED: "52921",
    DcdReason.QUOTE_EXPIRED: "52922",
    DcdReason.ORDER_MISSING: "51603",
}

#: Every product's refusal table, by its reason enum: every reason of every enum is in its table
#: (a test checks it). Provider staking is not served by the OKX API.
OAUTH_CODES: dict[OAuthReason, str] = {
    OAuthReason.INVALID_TOKEN: "53000",
    OAuthReason.CONSENT_WITHDRAWN: "53001",
    OAuthReason.TOKEN_EXPIRED: "53002",
    OAuthReason.TOKEN_REVOKED: "53003",
    OAuthReason.ACCOUNT_FROZEN: "53004",
    OAuthReason.INVALID_DEVICE: "53006",
    OAuthReason.BOTH_CREDENTIALS: "53009",
    OAuthReason.NO_PERMISSION: "53013",
    OAuthReason.INVALID_IP: "53014",
    OAuthReason.FAST_API_NOT_ENABLED: "53017",
    OAuthReason.NOT_OAUTH_BROKER: "53009",
}

REFUSAL_CODES: dict[type[StrEnum], Mapping[Any, str]] = {
    StakingReason: STAKING_CODES, BrokerReason: BROKER_CODES, FundingReason: FUNDING_CODES,
    TradingReason: TRADING_CODES, RebateReason: REBATE_CODES, DcdReason: DCD_CODES, OAuthReason: OAUTH_CODES,
}
#: Spot refusals whose message says more than the code's template (which instrument, which field).
TRADING_OWN_MESSAGE = frozenset({
    TradingReason.INSTRUMENT_SUSPENDED, TradingReason.TICK_SIZE, TradingReason.ABOVE_MAX_SIZE, TradingReason.NO_PRICE,
    TradingReason.STALE_PRICE, TradingReason.NOT_ND_SUB_ACCOUNT})
#: Staking refusals answered with the service's own message (it says more than the code's template).
OWN_MESSAGE = frozenset({StakingReason.TERMS, StakingReason.NOT_CANCELLABLE})


class _Blank(dict[str, str]):
    """Template values; a placeholder without one is left empty rather than failing."""

    def __missing__(self, key: str) -> str:
        return ""


class OkxError(Exception):
    """An OKX error reply: ``{"code": code, "msg": msg, "data": []}`` with the code's HTTP status."""

    def __init__(self, code: str, *, msg: str | None = None, **params: str) -> None:
        status, template = CODES[code]
        self.code = code
        self.status = status
        self.msg = msg if msg is not None else template.format_map(_Blank(params)) if params else template
        super().__init__(f"{code} {self.msg}")


def missing(field: str) -> OkxError:
    return OkxError("50014", param0=field)


def bad(field: str, detail: str = "") -> OkxError:
    text = CODES["51000"][1].format(param0=field)
    return OkxError("51000", msg=f"{text}: {detail}" if detail else text)


#: Per-route overrides: domain error class -> OKX code (e.g. a short balance on a transfer is 58116).
Overrides = dict[type[dom.DomainError], str]


def from_domain(exc: dom.DomainError, overrides: Overrides | None = None) -> OkxError:
    for cls in type(exc).__mro__:
        if overrides and cls in overrides:
            code = overrides[cls]
            field = getattr(exc, "field", "") or exc.params.get("subAcct", "")
            return OkxError(code, param0=field, **exc.params) if "{" in CODES[code][1] else OkxError(code)
    if isinstance(exc, dom.Refused):
        code = REFUSAL_CODES[type(exc.reason)][exc.reason]
        # isinstance first: reasons are strings, so another enum's "not_cancellable" compares equal
        if isinstance(exc.reason, StakingReason) and exc.reason in OWN_MESSAGE:
            return OkxError(code, msg=exc.message)
        if isinstance(exc.reason, TradingReason) and exc.reason in TRADING_OWN_MESSAGE:
            return OkxError(code, msg=exc.message)
        return OkxError(code, **exc.params) if "{" in CODES[code][1] else OkxError(code)
    if isinstance(exc, dom.TransferTypeNotAllowed):
        return OkxError("58128" if exc.caller_is_sub else "58127")
    if isinstance(exc, dom.InvalidParameter):
        return bad(exc.field, exc.reason)
    if isinstance(exc, dom.MissingParameter):
        return missing(exc.field)
    if isinstance(exc, dom.AmountNotPositive):
        return bad(exc.field, "must be greater than 0")
    if isinstance(exc, dom.InsufficientBalance):
        return OkxError("58350")
    if isinstance(exc, dom.AccountFrozen):
        return OkxError("58004")
    if isinstance(exc, dom.NotFound):
        return OkxError("51000", msg=exc.message)
    if isinstance(exc, dom.NotAllowed):
        return OkxError("50030")
    return OkxError("51000", msg=exc.message)
