"""Gemini wire pieces, pure: the spec's signature test vector (section 7.1), number rendering,
payload timestamps, the route match, nonces, roles, the burst queue of the rate limiter."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from decimal import Decimal

import orjson
import pytest

from stakehouse import errors as dom
from stakehouse.api.gemini import auth, wire
from stakehouse.api.gemini.errors import REASONS, GeminiError, from_domain
from stakehouse.api.gemini.ratelimit import BurstLimiter
from stakehouse.api.gemini.routes import Payload
from stakehouse.api.okx.ratelimit import Limit, RateLimiter
from stakehouse.staking.provider.rules import ProviderReason

UTC = dt.UTC

# -- section 7.1 test vector -----------------------------------------------------------------

VECTOR_JSON = ('{"request":"/v1/staking/stake","nonce":"1700000000000","providerId":'
               '"62b21e17-2534-4b9f-afcf-b7edb609dd8d","currency":"MATIC","amount":"30"}')
VECTOR_B64 = ("eyJyZXF1ZXN0IjoiL3YxL3N0YWtpbmcvc3Rha2UiLCJub25jZSI6IjE3MDAwMDAwMDAwMDAiLCJwcm92aWRlcklkIjoiNjJi"
              "MjFlMTctMjUzNC00YjlmLWFmY2YtYjdlZGI2MDlkZDhkIiwiY3VycmVuY3kiOiJNQVRJQyIsImFtb3VudCI6IjMwIn0=")
VECTOR_SIG = ("57eb2466823fb83ca78925241a94ca758115cdaca931bd7fed289ff141d48b1aa24c9d426e18be62dd4a732ff0ca09a1")


def test_spec_test_vector() -> None:
    assert base64.b64encode(VECTOR_JSON.encode()).decode() == VECTOR_B64
    assert auth.sign("TESTSECRET", VECTOR_B64) == VECTOR_SIG
    assert auth.signature_ok("TESTSECRET", VECTOR_B64, VECTOR_SIG)
    assert auth.signature_ok("TESTSECRET", VECTOR_B64, VECTOR_SIG.upper())  # hex is case-insensitive
    assert not auth.signature_ok("TESTSECRET2", VECTOR_B64, VECTOR_SIG)
    assert not auth.signature_ok("TESTSECRET", VECTOR_B64, VECTOR_SIG[:-1])
    assert not auth.signature_ok("TESTSECRET", VECTOR_B64, VECTOR_SIG[:-1] + "0")
    # the signature covers the header text as sent: a re-encoded payload does not verify
    respaced = base64.b64encode(VECTOR_JSON.replace(",", ", ").encode()).decode()
    assert not auth.signature_ok("TESTSECRET", respaced, VECTOR_SIG)
    payload = auth.decode_payload(VECTOR_B64)
    assert payload == {"request": "/v1/staking/stake", "nonce": "1700000000000",
                       "providerId": "62b21e17-2534-4b9f-afcf-b7edb609dd8d", "currency": "MATIC", "amount": "30"}
    auth.check_request(payload, "/v1/staking/stake")
    assert auth.parse_nonce(payload).micros == 1700000000000 * 10**6
    assert Payload(payload).amount(Decimal(10**12)) == Decimal(30)


def test_signature_ok_takes_non_ascii_text() -> None:
    assert not auth.signature_ok("s", VECTOR_B64, "é" * 96)


# -- headers and payload ---------------------------------------------------------------------


def _reason(exc: pytest.ExceptionInfo[GeminiError]) -> str:
    return exc.value.reason


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "MissingApikeyHeader"),
    ({"x-gemini-apikey": "", "x-gemini-payload": "p", "x-gemini-signature": "s"}, "MissingApikeyHeader"),
    ({"x-gemini-apikey": "k", "x-gemini-signature": "s"}, "MissingPayloadHeader"),
    ({"x-gemini-apikey": "k", "x-gemini-payload": "p"}, "MissingSignatureHeader"),
])
def test_headers_first_missing_decides(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(GeminiError) as exc:
        auth.read_headers(headers)
    assert _reason(exc) == reason and exc.value.status == 400


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("payload", [
    "not base64!", _b64("not json"), _b64("[1, 2]"), _b64('"text"'), _b64('{"a": NaN}'),
    _b64('{"a": Infinity}'), base64.b64encode(b'{"a": "\xff"}').decode(), _b64('{"a": 1'),
    _b64('{"request":"/v1/balances/staking"}')[:-2],  # padding cut: not valid base64
    _b64("[" * 100_000 + "]" * 100_000),  # absurd nesting
])
def test_payload_must_be_base64_of_a_json_object(payload: str) -> None:
    with pytest.raises(GeminiError) as exc:
        auth.decode_payload(payload)
    assert _reason(exc) == "InvalidJson"


def test_payload_numbers_keep_their_text() -> None:
    payload = auth.decode_payload(_b64('{"amount": 0.1000000000000000055511151231257827, "big": 12345678901234567890,'
                                       ' "e": 1e3}'))
    assert payload["amount"] == "0.1000000000000000055511151231257827"
    assert isinstance(payload["amount"], wire.JsonNumber)
    assert payload["big"] == 12345678901234567890
    assert payload["e"] == "1e3"


# -- route match -----------------------------------------------------------------------------


@pytest.mark.parametrize("request_field", [
    "/v1/staking/stake", "v1/staking/stake", "/v1/staking/stake?x=1", "v1/staking/stake?",
])
def test_route_match_ignores_one_leading_slash_and_the_query(request_field: str) -> None:
    auth.check_request({"request": request_field}, "/v1/staking/stake")


@pytest.mark.parametrize(("request_field", "reason"), [
    (None, "EndpointNotFound"), ("", "EndpointNotFound"),
    ("/v1/staking/unstake", "EndpointMismatch"), ("//v1/staking/stake", "EndpointMismatch"),
    ("/v1/staking/stake/", "EndpointMismatch"), ("/V1/staking/stake", "EndpointMismatch"),
    (5, "EndpointMismatch"), (["/v1/staking/stake"], "EndpointMismatch"),
])
def test_route_mismatch(request_field: object, reason: str) -> None:
    payload = {} if request_field is None else {"request": request_field}
    with pytest.raises(GeminiError) as exc:
        auth.check_request(payload, "/v1/staking/stake")
    assert _reason(exc) == reason and exc.value.status == 400


# -- nonces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "micros"), [
    ("1700000000000", 1700000000000 * 10**6),
    (1700000000000, 1700000000000 * 10**6),
    ("1712000000.123", 1712000000123000),
    (wire.JsonNumber("1712000000.5"), 1712000000500000),
    ("1", 10**6),
    ("8999999999999.999999", 9 * 10**18 - 1),
])
def test_nonce_forms(raw: object, micros: int) -> None:
    assert auth.parse_nonce({"nonce": raw}).micros == micros


def test_missing_nonce() -> None:
    with pytest.raises(GeminiError) as exc:
        auth.parse_nonce({"request": "/v1/x"})
    assert _reason(exc) == "MissingNonce"


@pytest.mark.parametrize("raw", [
    "", "abc", "-5", -5, "0", 0, "1e12", wire.JsonNumber("1.7e12"), True, 1.5, [1], {"n": 1}, " 12", "12 ",
    "9000000000000", 9 * 10**12, "1.1234567", "0x10", "\uff11\uff12\uff13",
])
def test_invalid_nonces(raw: object) -> None:
    with pytest.raises(GeminiError) as exc:
        auth.parse_nonce({"nonce": raw})
    assert _reason(exc) == "InvalidNonce"


def test_nonce_window_messages() -> None:
    nonce = auth.parse_nonce({"nonce": "1695066299.5"})
    assert auth.in_window(nonce, 1695066329_500000)
    assert not auth.in_window(nonce, 1695066329_500001)
    assert auth.in_window(nonce, 1695066269_500000)
    assert not auth.in_window(nonce, 1695066269_499999)
    msg = auth.outside_window(auth.parse_nonce({"nonce": "1695066299324"}), 1695066301).message
    assert msg == "Nonce '1695066299324' is not within 30 seconds of server time '1695066301'"
    assert auth.not_increased(auth.parse_nonce({"nonce": 1533831705})).message == \
        "Nonce '1533831705' has not increased since your last call to the Gemini API."


def test_roles() -> None:
    auth.check_roles(auth.READ_ROLES, ("Auditor",), "account-x")
    auth.check_roles(auth.MOVE_ROLES, ("FundManager",), "account-x")
    with pytest.raises(GeminiError) as exc:
        auth.check_roles(auth.MOVE_ROLES, ("Auditor",), "account-abc")
    assert exc.value.status == 403 and exc.value.reason == "MissingRole"
    assert "[Trader, FundManager]" in exc.value.message and "account-abc" in exc.value.message
    assert exc.value.message.endswith("which currently has roles [Auditor]")
    with pytest.raises(GeminiError):
        auth.check_roles(auth.READ_ROLES, ("Administrator",), "master-abc")


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("10"), "10"), (Decimal("10.000"), "10"), (Decimal("1E+3"), "1000"), (Decimal("1E-18"),
                                                                                 "0.000000000000000001"),
    (Decimal("0.017999076209977"), "0.017999076209977"), (Decimal("0"), "0"), (Decimal("-0.00"), "0"),
    (Decimal("1234567890123456789.123456789012345678"), "1234567890123456789.123456789012345678"),
    (Decimal("-2.50"), "-2.5"), (Decimal("429.386"), "429.386"), (540, "540"),
])
def test_numbers_are_exact_json_literals(value: Decimal | int, text: str) -> None:
    out = wire.dumps({"n": wire.num(value)})
    assert out == b'{"n":' + text.encode() + b"}"
    assert orjson.loads(out)  # valid JSON
    assert b"e" not in out.lower().replace(b'"n"', b"")


@pytest.mark.parametrize("value", [1.5, True, "1", Decimal("NaN"), Decimal("Infinity")])
def test_numbers_refuse_anything_not_exact(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        wire.num(value)  # type: ignore[arg-type]


def test_a_bare_decimal_cannot_be_dumped() -> None:
    with pytest.raises(TypeError):
        wire.dumps({"n": Decimal("1.5")})


# -- times -----------------------------------------------------------------------------------


def test_time_formats() -> None:
    moment = dt.datetime(2022, 11, 2, 19, 49, 20, 153999, tzinfo=UTC)
    assert wire.epoch_ms(moment) == 1667418560153
    assert wire.iso_ms(moment) == "2022-11-02T19:49:20.153Z"
    assert wire.iso_ms(dt.datetime(2022, 11, 2, 20, tzinfo=UTC)) == "2022-11-02T20:00:00.000Z"
    other_zone = dt.datetime(2022, 11, 2, 22, 49, 20, 153000, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert wire.iso_ms(other_zone) == "2022-11-02T19:49:20.153Z"
    assert wire.epoch_us(moment) == 1667418560153999


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("value", "at", "last"), [
    ("2022-11-01T00:00:00.000Z", _utc(2022, 11, 1), _utc(2022, 11, 1, 0, 0, 0, 999)),
    ("2022-11-01T00:00:00Z", _utc(2022, 11, 1), _utc(2022, 11, 1, 0, 0, 0, 999999)),
    ("2022-11-01T03:00:00+03:00", _utc(2022, 11, 1), _utc(2022, 11, 1, 0, 0, 0, 999999)),
    ("2022-11-01T00:00:00.123456Z", _utc(2022, 11, 1, 0, 0, 0, 123456), _utc(2022, 11, 1, 0, 0, 0, 123456)),
    ("2022-11-01", _utc(2022, 11, 1), _utc(2022, 11, 1, 23, 59, 59, 999999)),
    ("2022-11-01T10:30", _utc(2022, 11, 1, 10, 30), _utc(2022, 11, 1, 10, 30, 59, 999999)),
    ("2022-11-01T10:30:00", _utc(2022, 11, 1, 10, 30), _utc(2022, 11, 1, 10, 30, 0, 999999)),  # no zone: UTC
    (1667418560153, _utc(2022, 11, 2, 19, 49, 20, 153000), _utc(2022, 11, 2, 19, 49, 20, 153999)),
    ("1667418560153", _utc(2022, 11, 2, 19, 49, 20, 153000), _utc(2022, 11, 2, 19, 49, 20, 153999)),
    (1667418560, _utc(2022, 11, 2, 19, 49, 20), _utc(2022, 11, 2, 19, 49, 20, 999999)),
    ("1667418560", _utc(2022, 11, 2, 19, 49, 20), _utc(2022, 11, 2, 19, 49, 20, 999999)),
    ("1667418560.5", _utc(2022, 11, 2, 19, 49, 20, 500000), _utc(2022, 11, 2, 19, 49, 20, 599999)),
    (wire.JsonNumber("1667418560.25"), _utc(2022, 11, 2, 19, 49, 20, 250000),
     _utc(2022, 11, 2, 19, 49, 20, 259999)),
    (99999999999, _utc(5138, 11, 16, 9, 46, 39), _utc(5138, 11, 16, 9, 46, 39, 999999)),  # below 1e11: seconds
    (100000000000, _utc(1973, 3, 3, 9, 46, 40), _utc(1973, 3, 3, 9, 46, 40, 999)),  # 1e11: milliseconds
    (0, _utc(1970, 1, 1), _utc(1970, 1, 1, 0, 0, 0, 999999)),
    ("9999-12-31", _utc(9999, 12, 31), _utc(9999, 12, 31, 23, 59, 59, 999999)),
])
def test_timestamps(value: object, at: dt.datetime, last: dt.datetime) -> None:
    stamp = wire.parse_stamp(value)
    assert (stamp.at, stamp.last) == (at, last)


@pytest.mark.parametrize("value", [
    "yesterday", "2022-13-01T00:00:00Z", "2022-11-01T25:00:00Z", -1, "-1", True, 1.5, [2022], {"t": 1},
    wire.JsonNumber("1.6e12"), "1.6e12", "", "9" * 21, 10**20, "253402300800000000",
    "2022-11-01T00:00:00.000Z" + " " * 50, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
])
def test_bad_timestamps(value: object) -> None:
    with pytest.raises(wire.BadTimestamp):
        wire.parse_stamp(value)


# -- payload fields --------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "value"), [
    ("30", Decimal(30)), (30, Decimal(30)), ("0.000000000000000001", Decimal("1E-18")),
    (wire.JsonNumber("1.25"), Decimal("1.25")), ("12345678.9", Decimal("12345678.9")),
])
def test_amounts(raw: object, value: Decimal) -> None:
    assert Payload({"amount": raw}).amount(Decimal(10**12)) == value


@pytest.mark.parametrize("raw", [
    "0", 0, "-1", -1, "1e3", wire.JsonNumber("1e3"), "abc", True, [1], {"a": 1}, "1.0000000000000000001",
    "10000000000000", "NaN", "+1", ".5", "1.",
])
def test_bad_amounts(raw: object) -> None:
    with pytest.raises(GeminiError) as exc:
        Payload({"amount": raw}).amount(Decimal(10**12))
    assert exc.value.reason == "InvalidQuantity"


def test_absent_fields_and_strict_types() -> None:
    for empty in ({}, {"amount": None}, {"amount": ""}):
        with pytest.raises(GeminiError) as exc:
            Payload(empty).amount(Decimal(1))
        assert exc.value.reason == "MissingPayloadKey" and "'amount'" in exc.value.message
    p = Payload({"limit": "9999", "sortAsc": True})
    assert p.limit() == 500 and p.flag("sortAsc") is True and p.flag("interestOnly") is False
    assert Payload({"limit": 0}).limit() == 1 and Payload({"limit": -5}).limit() == 1
    assert Payload({}).limit() == 50
    for bad in ({"limit": "ten"}, {"limit": 1.5}, {"limit": True}, {"interestOnly": "true"}, {"interestOnly": 1}):
        with pytest.raises(GeminiError) as exc:
            Payload(bad).limit()
            Payload(bad).flag("interestOnly")
        assert exc.value.reason == "InvalidJson"
    assert Payload({"providerId": "62B21E17-2534-4B9F-AFCF-B7EDB609DD8D"}).provider_id(required=True) == \
        "62b21e17-2534-4b9f-afcf-b7edb609dd8d"
    for bad_pid in ("62b21e17", "{62b21e17-2534-4b9f-afcf-b7edb609dd8d}", 5):
        with pytest.raises(GeminiError) as exc:
            Payload({"providerId": bad_pid}).provider_id(required=True)
        assert exc.value.reason == "InvalidSymbol"
    assert Payload({"currency": "matic"}).currency(required=True) == "MATIC"
    with pytest.raises(GeminiError) as exc:
        Payload({"currency": "MA TIC"}).currency(required=True)
    assert exc.value.reason == "InvalidSymbol"
    with pytest.raises(GeminiError) as exc:
        Payload({"since": "2022-11-02", "until": "2022-11-01T23:59:59Z"}).window(since_required=False)
    assert exc.value.reason == "InvalidTimestampInPayload"
    since, until = Payload({"since": "2022-11-02", "until": "2022-11-02"}).window(since_required=True)
    assert since is not None and until is not None and since.at == until.at
    with pytest.raises(GeminiError) as exc:
        Payload({}).window(since_required=True)
    assert exc.value.reason == "MissingPayloadKey"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "status", "reason"), [
    (dom.InvalidParameter("amount", "at most 8 decimals"), 400, "InvalidQuantity"),
    (dom.AmountNotPositive("amount"), 400, "InvalidQuantity"),
    (dom.Refused(ProviderReason.DEPOSIT_LIMIT, "limited to 500000 USD per month"), 400, "InvalidQuantity"),
    (dom.Refused(ProviderReason.NO_PRICE, "no price"), 400, "InvalidQuantity"),
    (dom.NotFound("Staking product", "x"), 400, "InvalidSymbol"),
    (dom.InsufficientBalance("ETH"), 406, "InsufficientFunds"),
    (dom.AccountRequired(), 400, "MissingAccounts"),
    (dom.UnknownAccount("nope"), 400, "InvalidAccountName"),
    (dom.AccountFrozen("u1", "staking"), 403, "AccountFrozen"),
    (dom.MissingParameter("since"), 400, "MissingPayloadKey"),
    (dom.InvalidParameter("until"), 400, "InvalidTimestampInPayload"),
    (dom.InvalidParameter("whatever"), 400, "InvalidJson"),
    (dom.NotAllowed("closed"), 400, "InvalidRequest"),
])
def test_domain_mapping(exc: dom.DomainError, status: int, reason: str) -> None:
    err = from_domain(exc)
    assert (err.status, err.reason) == (status, reason)
    assert err.message == exc.message or exc.message in err.message or reason == "MissingPayloadKey"


def test_messages_never_trip_ccxt_broad_or_exact_matches() -> None:
    broad = ("The Gemini Exchange is currently undergoing maintenance.",
             "We are investigating technical issues with the Gemini Exchange.", "Internal Server Error")
    for reason, (_status, message) in REASONS.items():
        assert not any(b in message for b in broad)
        assert message not in REASONS or message == reason


# -- the burst queue -------------------------------------------------------------------------


def test_burst_queue_serves_five_late_and_refuses_the_rest() -> None:
    async def run() -> tuple[list[tuple[bool, float]], float]:
        limiter = BurstLimiter(RateLimiter())
        limit = Limit(2, 1, "key")
        start = time.monotonic()

        async def one() -> tuple[bool, float]:
            ok = await limiter.admit(limit, "gemini", "k1")
            return ok, time.monotonic() - start

        results = await asyncio.gather(*(one() for _ in range(9)))
        # another key is not held up by k1's queue
        other = time.monotonic()
        assert await limiter.admit(limit, "gemini", "k2")
        return list(results), time.monotonic() - other

    results, other_wait = asyncio.run(run())
    served_now = [r for r in results if r[0] and r[1] < 0.5]
    served_late = [r for r in results if r[0] and r[1] >= 0.5]
    refused = [r for r in results if not r[0]]
    assert len(served_now) == 2  # the rate
    assert len(served_late) == 5  # the queued burst: one window later, two per window
    assert len(refused) == 2 and all(t < 0.5 for _, t in refused)  # at once
    assert max(t for _, t in served_late) < 3.6  # 5 queued at 2 per second: within ~3 windows
    assert other_wait < 0.1


def test_a_queued_request_gives_up_when_others_take_every_slot() -> None:
    """Another process sharing the counters (here: direct hits on the same limiter) takes each slot
    as it frees: the queued request is refused once its patience (one window + 1 s) is spent."""

    async def run() -> tuple[bool, bool, float]:
        shared = RateLimiter()
        limiter = BurstLimiter(shared, burst=1)
        limit = Limit(1, 1, "key")
        first = await limiter.admit(limit, "k")
        stop = False

        async def other_process() -> None:
            while not stop:
                await shared.hit(limit, "k")
                await asyncio.sleep(0)  # every loop turn, ahead of timers that fall due in it

        thief = asyncio.create_task(other_process())
        started = time.monotonic()
        queued = await limiter.admit(limit, "k")
        waited = time.monotonic() - started
        stop = True
        await thief
        return first, queued, waited

    first, queued, waited = asyncio.run(run())
    assert first and not queued
    assert 1.9 < waited < 2.6
