"""Pure ND broker rules: names, labels, passphrases, IP lists, levels, fee changes and their lookup."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.broker import rules
from stakehouse.broker.rules import FeeScope, FeeSetting
from stakehouse.errors import InvalidParameter, MissingParameter
from stakehouse.errors import Refused as BrokerRefused

ALNUM = string.ascii_letters + string.digits


# -- names and labels ---------------------------------------------------------------------------


@given(st.text(alphabet=ALNUM, min_size=6, max_size=20).filter(lambda s: not s.isdigit()))
def test_valid_names_pass(name: str) -> None:
    assert rules.check_sub_name(name) == name


@given(st.text(min_size=1, max_size=40))
def test_a_name_passes_only_when_6_to_20_ascii_alnum_with_a_letter(name: str) -> None:
    valid = 6 <= len(name) <= 20 and all(c in ALNUM for c in name) and not name.isdigit()
    try:
        rules.check_sub_name(name)
        assert valid
    except InvalidParameter as exc:
        assert not valid and exc.field == "subAcct"


FULLWIDTH = "".join(chr(0xFF41 + i) for i in range(6)) + chr(0xFF11)  # full-width "abcdef1"


@pytest.mark.parametrize("name", ["abc12", "a" * 21, "1234567", "brökerTest", FULLWIDTH, "broker_1", "٣٣٣٣٣٣a"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidParameter):
        rules.check_sub_name(name)


def test_names_at_the_limits_and_empty() -> None:
    assert rules.check_sub_name("abcde1") == "abcde1"
    assert rules.check_sub_name("A" * 20) == "A" * 20
    with pytest.raises(MissingParameter):
        rules.check_sub_name("")


def test_labels() -> None:
    assert rules.check_label("") == ""
    assert rules.check_label("x" * 50) == "x" * 50
    assert rules.check_label("5566") == "5566"
    for bad in ("x" * 51, "two words", "ünïcode", "a-b"):
        with pytest.raises(InvalidParameter):
            rules.check_label(bad)
    with pytest.raises(MissingParameter):
        rules.check_label("", required=True)


# -- passphrases, IPs, permissions --------------------------------------------------------------------


@pytest.mark.parametrize(("phrase", "good"), [
    ("Qwr4321!", True), ("Qwr4321!" * 4, True), ("Qwr4321!" * 4 + "a", False), ("Qw4!abc", False),
    ("qwr4321!", False), ("QWR4321!", False), ("Qwrabcd!", False), ("Qwr43210", False), ("Qwr 4321!", False),
    ("Qwr4321!é", False), ("Qwr4321!\t", False), ("Aa1~~~~~", True),
])
def test_passphrase_rule(phrase: str, good: bool) -> None:
    assert rules.passphrase_ok(phrase) is good


@given(st.text(min_size=0, max_size=40))
def test_passphrase_rule_matches_its_definition(phrase: str) -> None:
    specials = [c for c in phrase if c.isascii() and c.isprintable() and not c.isalnum() and c != " "]
    allowed = all(c.isascii() and (c.isalnum() or c in specials) for c in phrase)
    expected = (8 <= len(phrase) <= 32 and allowed and any(c.isdigit() for c in phrase)
                and any(c.isupper() for c in phrase) and any(c.islower() for c in phrase) and bool(specials))
    assert rules.passphrase_ok(phrase) is expected


def test_passphrase_errors() -> None:
    with pytest.raises(MissingParameter):
        rules.check_passphrase("")
    with pytest.raises(BrokerRefused) as exc:
        rules.check_passphrase("nope")
    assert exc.value.reason == "passphrase_format"


def test_ip_lists() -> None:
    assert rules.parse_ip_list("") == []
    assert rules.parse_ip_list(" 1.1.1.1 , 2.2.2.2,1.1.1.1") == ["1.1.1.1", "2.2.2.2"]
    assert rules.parse_ip_list("2001:DB8::1") == ["2001:db8::1"]
    twenty = ",".join(f"10.0.0.{i}" for i in range(20))
    assert len(rules.parse_ip_list(twenty)) == 20
    with pytest.raises(BrokerRefused) as exc:
        rules.parse_ip_list(twenty + ",10.0.1.1")
    assert exc.value.reason == "too_many_ips"
    for bad in ("1.2.3", "10.0.0.0/8", "example.com", "1.1.1.1;2.2.2.2"):
        with pytest.raises(InvalidParameter) as err:
            rules.parse_ip_list(bad)
        assert err.value.field == "ip"


def test_perms() -> None:
    assert rules.parse_perms("") == ["read_only"]
    assert rules.parse_perms("trade,read_only") == ["read_only", "trade"]
    assert rules.parse_perms("withdraw, trade") == ["read_only", "trade", "withdraw"]
    with pytest.raises(InvalidParameter):
        rules.parse_perms("read")


def test_acct_lv() -> None:
    assert [rules.parse_acct_lv(str(n)) for n in (1, 2, 3, 4)] == [1, 2, 3, 4]
    for bad in ("0", "5", "01", "1.0", "one", " 1"):
        with pytest.raises(InvalidParameter):
            rules.parse_acct_lv(bad)
    with pytest.raises(MissingParameter):
        rules.parse_acct_lv("")


def test_broker_levels_and_pages() -> None:
    assert [rules.max_sub_accounts(n, None) for n in (1, 2, 3, 4, 5)] == [1000, 2000, 5000, 10000, 20000]
    assert rules.max_sub_accounts(2, 7) == 7
    assert rules.max_sub_accounts(2, 0) == 0
    assert (rules.total_pages(0, 100), rules.total_pages(100, 100), rules.total_pages(101, 100)) == (0, 1, 2)


# -- fee changes ------------------------------------------------------------------------------------


def test_fee_change_values() -> None:
    assert rules.parse_change("absolute", "", "chgTaker") is None
    assert rules.parse_change("absolute", "1000", "chgTaker") == Decimal(1000)
    assert rules.parse_change("absolute", "0.1", "chgTaker") == Decimal("0.1")
    assert rules.parse_change("absolute", "12.50", "chgTaker") == Decimal("12.5")  # trailing zero: fine
    assert rules.parse_change("percentage", "10000", "chgMaker") == Decimal(10000)
    assert rules.parse_change("percentage", "7.0", "chgMaker") == Decimal(7)
    for kind, text in (("absolute", "1000.1"), ("absolute", "0.05"), ("absolute", "-1"), ("absolute", "1e2"),
                       ("percentage", "10001"), ("percentage", "0.5"), ("absolute", " 1"), ("absolute", "NaN")):
        with pytest.raises(InvalidParameter):
            rules.parse_change(kind, text, "chgTaker")


@given(st.decimals(min_value=0, max_value=2000, places=3, allow_nan=False, allow_infinity=False))
def test_absolute_changes_accept_exactly_the_range_and_precision(value: Decimal) -> None:
    text = format(value, "f")
    ok = value <= 1000 and value == value.quantize(Decimal("0.1"))
    try:
        assert rules.parse_change("absolute", text, "chgTaker") == value
        assert ok
    except InvalidParameter:
        assert not ok


def test_scope_rules() -> None:
    assert rules.check_scope("", "", "") == FeeScope()
    assert rules.check_scope("SPOT", "2", "") == FeeScope("SPOT", 2, None)
    assert rules.check_scope("SWAP", "", "3") == FeeScope("SWAP", None, 3)
    assert rules.check_scope("FUTURES", "", "1").specificity == 2
    with pytest.raises(MissingParameter):
        rules.check_scope("", "2", "")
    with pytest.raises(MissingParameter):
        rules.check_scope("", "", "1")
    for args in (("BOND", "", ""), ("MARGIN", "2", ""), ("SPOT", "4", ""), ("OPTION", "", "1"), ("SWAP", "", "9")):
        with pytest.raises(InvalidParameter):
            rules.check_scope(*args)


FULLWIDTH_DATE = "".join(chr(0xFF10 + int(d)) for d in "20260310")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_effective_instant_is_hkt_midnight() -> None:
    # 2026-03-01 15:59 UTC is 23:59 HKT: the next HKT day starts a minute later
    assert rules.effective_from(utc(2026, 3, 1, 15, 59), "") == ("20260302", utc(2026, 3, 1, 16))
    # 16:00 UTC is already 2 March in Hong Kong: the change starts on 3 March HKT
    assert rules.effective_from(utc(2026, 3, 1, 16), "") == ("20260303", utc(2026, 3, 2, 16))
    assert rules.effective_from(utc(2026, 3, 1, 12), "20260310") == ("20260310", utc(2026, 3, 9, 16))
    assert rules.effective_from(utc(2026, 3, 1, 12), "20260302") == ("20260302", utc(2026, 3, 1, 16))
    for bad in ("20260301", "20260228", "2026-03-10", "20261301", "20260230", "00000101", "2026031",
                FULLWIDTH_DATE):
        with pytest.raises(InvalidParameter) as exc:
            rules.effective_from(utc(2026, 3, 1, 12), bad)
        assert exc.value.field == "effDate"


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)))
def test_default_effective_time_is_the_next_hkt_midnight(now: dt.datetime) -> None:
    day, at = rules.effective_from(now, "")
    assert now < at <= now + dt.timedelta(days=1)
    local = at.astimezone(rules.HKT)
    assert (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)
    assert local.strftime("%Y%m%d") == day


ANY = FeeScope()


def setting(i: int, uid: str | None, at: dt.datetime, *, scope: FeeScope = ANY, taker: str | None = "1",
            maker: str | None = None, kind: str = "absolute") -> FeeSetting:
    return FeeSetting(i, "b", uid, scope, kind, None if taker is None else Decimal(taker),
                      None if maker is None else Decimal(maker), at.strftime("%Y%m%d"), at, at)


def test_lookup_prefers_own_then_specific_then_latest() -> None:
    t0 = utc(2026, 1, 1)
    spot = FeeScope("SPOT")
    history = [
        setting(1, None, t0, taker="10", maker="5"),
        setting(2, None, t0 + dt.timedelta(days=1), taker="20"),
        setting(3, None, t0, scope=FeeScope("SPOT", 2), taker="30"),
        setting(4, "s1", t0 + dt.timedelta(days=2), taker="40"),
        setting(5, "s1", t0 + dt.timedelta(days=2), scope=spot, taker="50"),
        setting(6, "s1", t0 + dt.timedelta(days=10), taker="60"),
    ]
    pick = rules.applicable
    assert pick(history, "s1", spot, t0 - dt.timedelta(seconds=1), "taker") is None
    assert pick(history, "s1", spot, t0, "taker").id == 1  # type: ignore[union-attr]
    assert pick(history, "s1", FeeScope("SPOT", 2), t0, "taker").id == 3  # type: ignore[union-attr]
    assert pick(history, "s2", spot, t0 + dt.timedelta(days=1), "taker").id == 2  # type: ignore[union-attr]
    assert pick(history, "s1", FeeScope("SPOT", 2), t0 + dt.timedelta(days=2), "taker").id == 5  # type: ignore[union-attr]
    assert pick(history, "s1", FeeScope("SWAP"), t0 + dt.timedelta(days=3), "taker").id == 4  # type: ignore[union-attr]
    assert pick(history, "s1", spot, t0 + dt.timedelta(days=11), "taker").id == 5  # type: ignore[union-attr]
    assert pick(history, "s1", FeeScope("SWAP"), t0 + dt.timedelta(days=11), "taker").id == 6  # type: ignore[union-attr]
    # a setting that leaves a side alone does not hide an older one for that side
    assert pick(history, "s1", spot, t0 + dt.timedelta(days=11), "maker").id == 1  # type: ignore[union-attr]
    same_time = [setting(7, None, t0, taker="1"), setting(8, None, t0, taker="2")]
    assert pick(same_time, "s1", spot, t0, "taker").id == 8  # type: ignore[union-attr]


def test_effective_rate_math() -> None:
    base = Decimal("0.001")
    t0 = utc(2026, 1, 1)
    assert rules.effective_rate(base, None, "taker") == base
    assert rules.effective_rate(base, setting(1, None, t0, taker="10"), "taker") == Decimal("0.002")
    assert rules.effective_rate(base, setting(1, None, t0, taker="0.1"), "taker") == Decimal("0.00101")
    assert rules.effective_rate(base, setting(1, None, t0, taker="50", kind="percentage"), "taker") == Decimal("0.0015")
    assert rules.effective_rate(base, setting(1, None, t0, taker="10000", kind="percentage"), "taker") == \
        Decimal("0.101")
    assert rules.effective_rate(base, setting(1, None, t0, taker="1"), "maker") == base  # maker not changed


def test_demo_top_up_amounts() -> None:
    table = (("BTC", Decimal(3)),)
    assert rules.demo_top_up("BTC", table, Decimal(100)) == 3
    assert rules.demo_top_up("DOGE", table, Decimal(100)) == 100
