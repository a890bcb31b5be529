"""The pure staking rules (``staking/rules.py``) against the rule book (spec sections 2, 4, 5).

Each property is checked against an independent oracle: exact rational arithmetic
(:class:`fractions.Fraction`) for the reward formulas, a brute-force minimum over every prefix
of the day's postings for the eligible balance, and a day-by-day simulation of the queue for the
completion estimates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from stakehouse.money import round_down
from stakehouse.staking.rules import (
    DAYS_PER_YEAR,
    DEFAULT_PRODUCTS,
    Move,
    ProductConfig,
    Reward,
    days_until_scheduled,
    eligible,
    eligible_from_current,
    estimated_completion,
    is_fast,
    rate_for,
    reward,
    schedule_queue,
)

ETH = DEFAULT_PRODUCTS[0]
ZERO = Decimal(0)
DAY_START = dt.datetime(2026, 11, 20, 21, 0, tzinfo=dt.UTC)  # 00:00 of 2026-11-21 in GMT+3
DAY_END = DAY_START + dt.timedelta(days=1)


# -- oracles ------------------------------------------------------------------------------


def floor_to(value: Fraction, precision: int) -> Decimal:
    """Exact round-down (toward zero) of a non-negative rational to ``precision`` places."""
    assert value >= 0
    scaled = math.floor(value * 10**precision)
    return Decimal(scaled).scaleb(-precision)


def oracle_reward(eligible_amount: Decimal, rate: Decimal | None, fee_rate: Decimal, precision: int) -> Reward:
    if rate is None or eligible_amount <= 0:
        return Reward(ZERO, ZERO, ZERO)
    gross = floor_to(Fraction(eligible_amount) * Fraction(rate) / 365, precision)
    net = floor_to(Fraction(gross) * (1 - Fraction(fee_rate)), precision)
    return Reward(gross, net, gross - net)


def brute_eligible(opening: Decimal, moves: list[Move], day_end: dt.datetime | None = None) -> Decimal:
    """The minimum of the opening balance and of the balance after every prefix of the day's
    entries in (time, entry id) order, never below zero."""
    day = sorted((m for m in moves if day_end is None or m.at < day_end), key=lambda m: (m.at, m.entry_id))
    balances = [opening + sum((m.delta for m in day[:k]), ZERO) for k in range(len(day) + 1)]
    return max(min(balances), ZERO)


def simulate_queue(queue: list[tuple[int, Decimal]], cap: Decimal) -> dict[int, int]:
    """Apply :func:`schedule_queue` once per settlement run until the queue is empty; the run
    index (0 = today's) on which each order's last part was scheduled."""
    left = dict(queue)
    order = [oid for oid, _ in queue]
    done: dict[int, int] = {}
    run = 0
    while any(left[o] > 0 for o in order):
        for part in schedule_queue([(o, left[o]) for o in order], cap):
            left[part.order_id] -= part.amount
            if left[part.order_id] == 0:
                done[part.order_id] = run
        run += 1
        assert run < 100_000
    return done


# -- strategies ---------------------------------------------------------------------------

amounts8 = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000"), places=8)
eligibles = st.one_of(
    st.decimals(min_value=0, max_value=Decimal(10) ** 12, places=8),
    st.decimals(min_value=0, max_value=Decimal(10) ** 6, places=18),
)
rates = st.decimals(min_value=0, max_value=10, places=8)
fee_rates = st.one_of(st.sampled_from([ZERO, Decimal("0.1"), Decimal("0.25"), Decimal(1)]),
                      st.decimals(min_value=0, max_value=1, places=18))
precisions = st.integers(min_value=0, max_value=18)
deltas = st.decimals(min_value=Decimal(-50), max_value=Decimal(50), places=8)
openings = st.decimals(min_value=0, max_value=Decimal(100), places=8)


@st.composite
def moves_in(draw: st.DrawFn, start: dt.datetime, end: dt.datetime, max_size: int = 12) -> list[Move]:
    """Moves with unique entry ids at times in [start, end); times repeat often (same-second entries)."""
    seconds = int((end - start).total_seconds())
    n = draw(st.integers(0, max_size))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    pool = draw(st.lists(st.integers(0, seconds - 1), min_size=1, max_size=4))
    out = []
    for entry_id in ids:
        second = draw(st.one_of(st.sampled_from(pool), st.integers(0, seconds - 1)))
        out.append(Move(start + dt.timedelta(seconds=second), entry_id, draw(deltas)))
    return out


day_moves = moves_in(DAY_START, DAY_END)


# -- reward amounts (5.2) -----------------------------------------------------------------


def test_hand_computed_rewards() -> None:
    # 2.5 * 0.0284 / 365 = 0.000194520547945... -> 0.00019452
    assert reward(Decimal("2.5"), Decimal("0.0284"), ZERO, 8) == Reward(
        Decimal("0.00019452"), Decimal("0.00019452"), ZERO)
    # fee 10 %: net = round_down(0.00019452 * 0.9 = 0.000175068) = 0.00017506, fee = 0.00001946
    assert reward(Decimal("2.5"), Decimal("0.0284"), Decimal("0.1"), 8) == Reward(
        Decimal("0.00019452"), Decimal("0.00017506"), Decimal("0.00001946"))
    # 0.05 / 365 = 0.000136986301... : half-up would give ...99, round-down gives ...98
    assert reward(Decimal(1), Decimal("0.05"), ZERO, 8).gross == Decimal("0.00013698")
    # exact: 100 * 0.0365 / 365 = 0.01; fee 25 % -> 0.0075 + 0.0025
    assert reward(Decimal(100), Decimal("0.0365"), Decimal("0.25"), 8) == Reward(
        Decimal("0.01"), Decimal("0.0075"), Decimal("0.0025"))
    # fee 1 (100 %): the whole gross is fee
    assert reward(Decimal(100), Decimal("0.0365"), Decimal(1), 8) == Reward(Decimal("0.01"), ZERO, Decimal("0.01"))
    # 2 decimals of precision: 1000 * 0.0284 / 365 = 0.0778... -> 0.07
    assert reward(Decimal(1000), Decimal("0.0284"), ZERO, 2).gross == Decimal("0.07")
    # too little to earn one unit of the last decimal: nothing
    assert reward(Decimal("0.0001"), Decimal("0.0284"), ZERO, 8) == Reward(ZERO, ZERO, ZERO)


def test_no_rate_or_nothing_eligible_pays_nothing() -> None:
    nothing = Reward(ZERO, ZERO, ZERO)
    assert reward(Decimal(1000), None, ZERO, 8) == nothing
    assert reward(Decimal(1000), ZERO, Decimal("0.1"), 8) == nothing
    assert reward(ZERO, Decimal("0.05"), ZERO, 8) == nothing
    assert reward(Decimal(-5), Decimal("0.05"), ZERO, 8) == nothing


@given(eligibles, st.one_of(st.none(), rates), fee_rates, precisions)
def test_reward_is_the_exact_formula_rounded_down(amount: Decimal, rate: Decimal | None, fee_rate: Decimal,
                                                  precision: int) -> None:
    got = reward(amount, rate, fee_rate, precision)
    assert got == oracle_reward(amount, rate, fee_rate, precision)
    unit = Fraction(1, 10**precision)
    if rate is not None:
        exact = Fraction(amount) * Fraction(rate) / DAYS_PER_YEAR
        assert Fraction(got.gross) <= exact < Fraction(got.gross) + unit  # down, never up
    assert got.gross == got.net + got.fee
    assert ZERO <= got.net <= got.gross
    assert got.fee >= 0
    for value in (got.gross, got.net, got.fee):
        assert round_down(value, precision) == value  # at most `precision` places


@given(eligibles, rates, precisions)
def test_no_fee_means_net_is_gross(amount: Decimal, rate: Decimal, precision: int) -> None:
    got = reward(amount, rate, ZERO, precision)
    assert got.net == got.gross and got.fee == 0


@given(eligibles, eligibles, rates)
def test_more_eligible_never_earns_less(a: Decimal, b: Decimal, rate: Decimal) -> None:
    low, high = sorted((a, b))
    assert reward(low, rate, ZERO, 8).gross <= reward(high, rate, ZERO, 8).gross


def test_a_year_is_365_days_also_in_a_leap_year() -> None:
    published = {dt.date(2027, 12, 31): Decimal("0.0365")}
    amount = Decimal(100)
    leap_days = [dt.date(2028, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    paid = [reward(amount, rate_for(d, published), ZERO, 8).gross for d in leap_days]
    assert dt.date(2028, 2, 29) in leap_days
    # 100 * 0.0365 / 365 = 0.01 on every day, 29 February included: a leap year pays 366 days
    assert set(paid) == {Decimal("0.01")}
    assert sum(paid) == Decimal("3.66")
    assert reward(Decimal("2.5"), Decimal("0.0284"), ZERO, 8).gross == Decimal("0.00019452")  # never / 366


# -- rate(D) (5.2) --------------------------------------------------------------------------

dates = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2029, 12, 31))


@given(st.dictionaries(dates, rates, max_size=8), dates)
def test_rate_for_carries_the_latest_earlier_rate_forward(published: dict[dt.date, Decimal], day: dt.date) -> None:
    got = rate_for(day, published)
    # brute force: walk back day by day to the first day that has a rate
    first = min(published, default=None)
    expected = None
    probe = day
    while first is not None and probe >= first:
        if probe in published:
            expected = published[probe]
            break
        probe -= dt.timedelta(days=1)
    assert got == expected


def test_rate_for_examples() -> None:
    d = dt.date(2026, 11, 21)
    published = {d: Decimal("0.03"), d + dt.timedelta(days=3): Decimal("0.04")}
    assert rate_for(d - dt.timedelta(days=1), published) is None  # nothing before the first rate
    assert rate_for(d, published) == Decimal("0.03")
    assert rate_for(d + dt.timedelta(days=2), published) == Decimal("0.03")  # carried forward
    assert rate_for(d + dt.timedelta(days=3), published) == Decimal("0.04")
    assert rate_for(d + dt.timedelta(days=400), published) == Decimal("0.04")
    assert rate_for(d, {}) is None
    assert rate_for(d, {d: ZERO}) == ZERO  # a published zero is a rate (it pays nothing)


# -- eligible balance (5.1) ---------------------------------------------------------------


@given(openings, day_moves)
def test_eligible_is_the_minimum_over_every_prefix(opening: Decimal, moves: list[Move]) -> None:
    assert eligible(opening, moves) == brute_eligible(opening, moves)


@given(openings, day_moves, st.randoms(use_true_random=False))
def test_eligible_orders_by_time_then_entry_not_by_list_order(opening: Decimal, moves: list[Move],
                                                             rnd: random.Random) -> None:
    shuffled = list(moves)
    rnd.shuffle(shuffled)
    assert eligible(opening, shuffled) == eligible(opening, moves)


def test_eligible_order_examples() -> None:
    t1 = DAY_START + dt.timedelta(hours=1)
    t2 = DAY_START + dt.timedelta(hours=2)
    opening = Decimal(10)
    # listed sell-first, but the +5 happened first in time: 10 -> 15 -> 5
    assert eligible(opening, [Move(t2, 1, Decimal(-10)), Move(t1, 2, Decimal(5))]) == Decimal(5)
    # same moment: entry 1 (+5) before entry 2 (-10), whatever the list order
    assert eligible(opening, [Move(t1, 2, Decimal(-10)), Move(t1, 1, Decimal(5))]) == Decimal(5)
    # the other way round: 10 -> 0 -> 5
    assert eligible(opening, [Move(t1, 1, Decimal(-10)), Move(t1, 2, Decimal(5))]) == ZERO


@given(openings, day_moves)
def test_eligible_never_exceeds_the_opening_or_the_closing_balance(opening: Decimal, moves: list[Move]) -> None:
    got = eligible(opening, moves)
    closing = opening + sum((m.delta for m in moves), ZERO)
    assert ZERO <= got <= opening
    assert got <= max(closing, ZERO)


@given(openings, day_moves)
def test_buying_or_receiving_during_the_day_earns_nothing_for_that_day(opening: Decimal,
                                                                        moves: list[Move]) -> None:
    buys = [dataclasses.replace(m, delta=abs(m.delta)) for m in moves]
    assert eligible(opening, buys) == opening  # only inflows: exactly the opening balance earns
    assert eligible(ZERO, buys) == ZERO  # bought today from nothing: nothing today


@given(openings, day_moves, moves_in(DAY_END, DAY_END + dt.timedelta(days=3)))
def test_eligible_from_current_equals_eligible_from_the_opening(opening: Decimal, today: list[Move],
                                                                later: list[Move]) -> None:
    later = [dataclasses.replace(m, entry_id=m.entry_id + 20_000) for m in later]  # later entries: larger ids
    since_start = today + later
    current = opening + sum((m.delta for m in since_start), ZERO)
    got = eligible_from_current(current, since_start, DAY_END)
    assert got == eligible(opening, today) == brute_eligible(opening, since_start, DAY_END)
    # moves after the day ended never change the day's figure
    assert got == eligible_from_current(opening + sum((m.delta for m in today), ZERO), today, DAY_END)


def test_moves_after_day_end_do_not_count() -> None:
    at_end = Move(DAY_END, 5, Decimal(-7))  # 00:00 of the next day belongs to the next day
    inside = Move(DAY_END - dt.timedelta(microseconds=1), 4, Decimal(-1))
    assert eligible_from_current(Decimal(2), [inside, at_end], DAY_END) == Decimal(9)
    assert eligible(Decimal(10), [inside]) == Decimal(9)


# -- FIFO queue with a daily cap (4.3) ---------------------------------------------------------

queues = st.lists(amounts8, max_size=12).map(lambda amts: [(i + 1, a) for i, a in enumerate(amts)])
caps = st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal(3000), places=8))
positive_caps = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(500), places=8)


@given(queues, caps)
def test_schedule_queue_is_strict_fifo_up_to_the_cap(queue: list[tuple[int, Decimal]], cap: Decimal | None) -> None:
    parts = schedule_queue(queue, cap)
    total = sum((a for _, a in queue), ZERO)
    scheduled = sum((p.amount for p in parts), ZERO)
    assert scheduled == (total if cap is None else min(cap, total))
    # a prefix of the queue, in queue order, each order at most once
    assert [p.order_id for p in parts] == [oid for oid, _ in queue[: len(parts)]]
    amounts = dict(queue)
    for i, part in enumerate(parts):
        assert 0 < part.amount <= amounts[part.order_id]
        if part.amount < amounts[part.order_id]:
            assert i == len(parts) - 1  # only the last one may be partial: nothing behind a partial head
            assert cap is not None and scheduled == cap
    if len(parts) < len(queue):  # something left behind: the cap is used up exactly
        assert cap is not None and scheduled == cap


@given(queues)
def test_unlimited_cap_schedules_everything_whole(queue: list[tuple[int, Decimal]]) -> None:
    parts = schedule_queue(queue, None)
    assert [(p.order_id, p.amount) for p in parts] == queue


def test_schedule_queue_examples() -> None:
    q = [(1, Decimal(3)), (2, Decimal(1)), (3, Decimal(2))]
    assert [(p.order_id, p.amount) for p in schedule_queue(q, Decimal(2))] == [(1, Decimal(2))]
    assert [(p.order_id, p.amount) for p in schedule_queue(q, Decimal(4))] == [(1, Decimal(3)), (2, Decimal(1))]
    assert [(p.order_id, p.amount) for p in schedule_queue(q, Decimal("4.5"))] == [
        (1, Decimal(3)), (2, Decimal(1)), (3, Decimal("0.5"))]
    assert schedule_queue(q, ZERO) == []
    # a head larger than the cap blocks the small request behind it
    assert [(p.order_id, p.amount) for p in schedule_queue([(1, Decimal(10)), (2, Decimal("0.1"))], Decimal(1))] == [
        (1, Decimal(1))]
    # nothing-left entries (already fully scheduled) are passed over
    assert [(p.order_id, p.amount) for p in schedule_queue([(1, ZERO), (2, Decimal(1))], Decimal(5))] == [
        (2, Decimal(1))]


@given(st.lists(amounts8, min_size=1, max_size=10).map(lambda a: [(i + 1, x) for i, x in enumerate(a)]),
       positive_caps)
def test_daily_runs_drain_the_queue_and_pay_every_order_exactly(queue: list[tuple[int, Decimal]],
                                                               cap: Decimal) -> None:
    left = dict(queue)
    paid = dict.fromkeys(left, ZERO)
    finished: list[int] = []
    runs = 0
    while any(v > 0 for v in left.values()):
        remaining = sum(left.values(), ZERO)
        parts = schedule_queue([(o, left[o]) for o, _ in queue], cap)
        assert sum((p.amount for p in parts), ZERO) == min(cap, remaining)
        for p in parts:
            left[p.order_id] -= p.amount
            paid[p.order_id] += p.amount
            assert left[p.order_id] >= 0
            if left[p.order_id] == 0:
                finished.append(p.order_id)
        runs += 1
    assert paid == dict(queue)
    assert finished == [o for o, _ in queue]  # orders complete in FIFO order
    total = sum(paid.values(), ZERO)
    assert runs == math.ceil(Fraction(total) / Fraction(cap))


@given(st.lists(amounts8, max_size=8), amounts8, positive_caps)
@example(ahead=[], amount=Decimal(5), cap=Decimal(2))  # 2 + 2 + 1: the third run (index 2)
@example(ahead=[], amount=Decimal("2.5"), cap=Decimal(2))  # 2 + 0.5: the second run (index 1)
@example(ahead=[Decimal(1)], amount=Decimal(1), cap=Decimal(2))  # exactly today's cap: today
def test_days_until_scheduled_agrees_with_simulating_the_queue(ahead: list[Decimal], amount: Decimal,
                                                               cap: Decimal) -> None:
    queue = [(i + 1, a) for i, a in enumerate(ahead)] + [(0, amount)]
    simulated = simulate_queue(queue, cap)[0]
    assert days_until_scheduled(sum(ahead, ZERO), amount, cap) == simulated
    cfg = dataclasses.replace(ETH, daily_redemption_cap=cap, unbonding_days=5)
    today = dt.date(2026, 11, 21)
    assert estimated_completion(today, sum(ahead, ZERO), amount, cfg) == today + dt.timedelta(days=simulated + 5)


@given(st.lists(amounts8, max_size=8), amounts8)
def test_without_a_cap_everything_is_scheduled_today(ahead: list[Decimal], amount: Decimal) -> None:
    assert days_until_scheduled(sum(ahead, ZERO), amount, None) == 0
    cfg = dataclasses.replace(ETH, daily_redemption_cap=None, unbonding_days=3)
    today = dt.date(2028, 2, 27)
    assert estimated_completion(today, sum(ahead, ZERO), amount, cfg) == dt.date(2028, 3, 1)  # leap day counted


# -- fast or standard (4.2) -------------------------------------------------------------------


@given(amounts8, st.decimals(min_value=0, max_value=Decimal(1000), places=8), st.booleans())
def test_is_fast_only_when_the_whole_amount_fits(amount: Decimal, allowance: Decimal, enabled: bool) -> None:
    cfg = dataclasses.replace(ETH, fast_redemption_enabled=enabled)
    assert is_fast(amount, allowance, cfg) == (enabled and amount <= allowance)


def test_is_fast_examples() -> None:
    on = ETH
    off = dataclasses.replace(ETH, fast_redemption_enabled=False)
    assert is_fast(Decimal(100), Decimal(100), on)  # exactly what is left
    assert not is_fast(Decimal("100.00000001"), Decimal(100), on)  # never split into fast + standard
    assert not is_fast(Decimal(1), ZERO, on)
    assert not is_fast(Decimal("0.00000001"), Decimal(100), off)  # disabled: always standard


def test_default_products_follow_the_rule_book() -> None:
    by_name = {p.product: p for p in DEFAULT_PRODUCTS}
    assert by_name["ETH"] == ProductConfig("ETH", "ETH", "BETH", fast_redemption_daily_limit=Decimal(100),
                                           unbonding_days=5)
    assert (by_name["SOL"].token_ccy, by_name["SOL"].fast_redemption_daily_limit, by_name["SOL"].unbonding_days) == (
        "OKSOL", Decimal(240), 3)
    for p in DEFAULT_PRODUCTS:
        assert p.precision == 8 and p.service_fee_rate == 0 and p.daily_redemption_cap is None
        assert p.min_purchase == Decimal("0.01") and p.min_redeem == Decimal("0.00000001")

