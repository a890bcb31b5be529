"""The simulation's independent model of what every user holds (issue 19, scope 6).

Pure Python and :class:`~decimal.Decimal`; it imports nothing of ``stakehouse``. Everything here is
re-derived from the rule book (``/work/shared/spec/staking-rules.md``) and from what the operations
did, so that a mistake shared by the service and its rules module would still show:

Two liquid products, each with its own settings, queue, rates and allowance: ETH -> BETH
(unbonding 5 days) and SOL -> OKSOL (unbonding 3 days).

* amounts: exact, at most the currency's or product's decimals, else refused (rules 2);
* purchase: ``amt >= 0.01`` of the staked asset, enough of it available in funding; it becomes the
  token in funding 1:1 (rules 3);
* redeem: ``amt >= 0.00000001``, enough *free* token in funding; fast when it fits whole into what
  is left of today's allowance of that product for the user's group (a master and its
  sub-accounts share one), else queued (tokens locked) (rules 4.1, 4.2);
* the end of T-day D (00:00 of D+1 in Europe/Istanbul): every product's reward run for D, then
  every product's settlement run for D: schedule FIFO up to the daily cap, deliver the parts due
  ``unbonding_days`` later (rules 4.3, 5.3); cancel only while nothing of the request is
  scheduled (rules 4.4);
* rewards: eligible(D) = the minimum free token (funding + trading) over D, rate(D) the last rate
  of the product published on or before D, gross/net/fee rounded down to 8 decimals, net minted
  into funding (rules 5.1, 5.2).

And provider staking (rules 9, the Gemini-style products), one provider offering ETH (unstakes
queued through a FIFO queue with a daily cap and unbonding days) and SOL (unstakes paid at once):

* stake: more than 0, at most the product's precision, at least its minimum, enough in funding;
  unstake: more than 0, at most 18 decimals, enough free in the staking balance;
* at each accrual day's end (20:00 UTC), the interest run: eligible = the lowest free staking
  balance over the day, the interest credited at the day's very start (the previous run) counted
  as held from it; interest = eligible x rate_bps / 10000 / 365 rounded down to the precision,
  credited into the staking balance (it compounds); then the settlement run of the queued
  product, as the liquid one (its parts paid to funding).

And the rest of what moves a user's money (trading-and-rebates.md §2-3, the OKX v5 conventions of
transfers and withdrawals):

* transfers between a master and its sub-accounts (``type`` 1 and 2, any pair of funding and
  trading accounts): the master asks; a sub-account of another master is refused;
* spot orders on ``ETH-USDT`` and ``SOL-USDT`` against the index price (set by the operator, never
  walked): instrument rules (tick, lot, minimum, maximum; a quote-sized market order's decimals);
  a market order, a marketable limit, ``ioc`` or ``fok`` fills at once as taker at the index; a
  non-marketable limit or ``post_only`` rests as maker with its spending currency locked (a
  ``post_only`` that would cross is refused, a non-marketable ``ioc``/``fok`` is cancelled, with
  nothing moved); the fee is the level's rate on what is received, rounded up to its currency's
  decimals; a resting order fills at its own price when an index price set after it was placed
  crosses it (the minute it was placed in counts with its close only), at that minute's end;
* on-chain withdrawals of ETH and USDT from funding (not from a sub-account other than an ND
  broker's): the chain's
  decimals, minimum and maximum; ``amt`` plus the chain's fee locked; cancellable until broadcast
  (review seconds after the request), paid out once confirmed (the confirmations' blocks later);
  internal withdrawals (``dest`` 3) to another master or ND sub-account: at once, no fee.

And dual-currency deposits (dcd.md §1, §4, §5), bought by an ND broker's sub-accounts on the
products the daily listing offers (the model takes each product's strike, sizes, quota and times as
given):

* each quote's yields are derived again (dcd.md §3, :func:`dcd_yield` and :func:`dcd_annual_yield`):
  Black-Scholes with zero rates at the index the operator pinned last, the time to expiry in 365-day
  years and the series' volatility, less the platform's margin, in binary floating point (the
  service works in 50-digit decimals); of that the user gets ``1 - markUp`` and the ND broker
  ``markUp`` (the quote's, often none): the quote's ``absYield`` must be the user's part rounded down
  to 8 decimals, within the float's error; its ``annualYield`` is then exact. The model then uses
  the quote's ``absYield``, and the broker's part rounded down to 8 decimals (a markup whose part
  lies within the float's error of that rounding is not asked for: the model could not tell);
* a quote: a positive notional in the product's currency with at most its decimals, within the
  minimum and maximum, a multiple of the step, within the quota left; the order: the notional
  debited from funding (enough available), the quota consumed;
* the settlement price is the index as of ``expTime`` (the last price set before it); at
  ``settTime`` a call pays ``notional x (1 + absYield) x stk`` in the alternative currency when the
  price is at or above the strike, else ``notional x (1 + absYield)`` in its own; a put pays
  ``notional x (1 + absYield) / stk`` in ``ccy`` at or below the strike, else ``notional x
  (1 + absYield)``; exactly, rounded down to the paid currency's decimals; into funding; and the
  ND broker ``notional x`` its part, rounded down to the notional currency's decimals, into its
  funding account.

And the ND broker's fee changes, contract credits and daily rebates, and an FD broker's rebates
(broker.md "Trading-fee changes", trading.md "Fees" and "Contract credits", rebates.md,
trading-and-rebates.md §5-6):

* a fee change (the broker's default, or one sub-account's own; ``absolute`` in bp up to 1000 with
  one decimal, or ``percentage`` in whole percent up to 10000; a scope that covers spot USDT pairs or
  not) takes effect at 00:00 Hong Kong time of the next day or of a later ``effDate``; at a fill of
  a sub-account, per side, the change in effect that covers it wins by: its own before the
  default, the more specific scope, the later effective time, the later set; the fee is the
  received amount at the changed rate and the base fee at the level's rate, each rounded up, the
  markup their difference;
* a credit (USDT, at most 6 decimals) is granted to a sub-account, activated by it before its
  activation deadline (its use period then starts), invalidated by the operator, and expires at
  either deadline; at a fill, the active credits pay the fee, soonest to expire first: each owes
  the rest of the fee valued in USDT at the fill's price rounded up to 6 decimals, and pays it
  whole if it has that much left, else what its rest buys rounded down in the fee's currency (and
  is used up); credits pay the base fee first, then the markup;
* fee levels: a user's base rates are its level's (``Lv1``, or ``VIP4``/``VIP6`` at seeded
  discounts) at the fill;
* each fill of an ND sub-account earns the broker ``0.4 x netFee + markupFee`` (the base fee and the
  markup paid in money, in USDT at the fill's price to 18 decimals) rounded down to 8 decimals; the
  run at 00:00 Hong Kong time (16:00 UTC) pays the broker's funding account, per sub-account, the
  day's sum: nothing while the sub-account is in VIP fee-rate mode, and for a level of VIP4 and up
  with a monthly cap at most what is left of it this Hong Kong month;
* an FD broker (a master, of type ``api``, ``oauth`` or both): a fill of an order tagged with its code,
  by anyone but the broker and its sub-accounts, placed with an API key (type ``api``) or with a token
  of the broker's own OAuth client (type ``oauth``), for a type the broker has, earns
  ``ratio x netFee`` rounded down to 8 decimals; the same run gives each user's day per type:
  nothing while the broker's identification is expired or the user is above VIP5, else the day's
  sum under the level's monthly cap (the broker's and the user's shares counted together, over both
  types: the ``api`` day takes it first), handed out over the day's fills in time order (each at most
  its own), and each fill's part split: the user ``clientRebateRatio`` of it rounded down, the
  broker the rest; into funding.

Users are known by the order they were created (index 0, 1, ...): the service makes the uids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from statistics import NormalDist
from zoneinfo import ZoneInfo

ZERO = Decimal(0)
FUNDING = 6
TRADING = 18
AVAILABLE = "available"
LOCKED = "locked"

#: Decimals of each currency (the reference data's scales).
SCALES = {"ETH": 18, "USDT": 6, "BETH": 8, "SOL": 9, "OKSOL": 8}
BUSINESS_TZ = ZoneInfo("Europe/Istanbul")
PRECISION = 8
MIN_PURCHASE = Decimal("0.01")
MIN_REDEEM = Decimal("0.00000001")
DAYS_PER_YEAR = 365
#: Rates are published with at most 8 decimals, between 0 and 10.
RATE_DECIMALS = 8
MAX_RATE = Decimal(10)


def round_down(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def fits(amount: Decimal, places: int) -> bool:
    """At most ``places`` decimals (trailing zeros do not count)."""
    return round_down(amount, places) == amount


def t_day(moment: dt.datetime) -> dt.date:
    """The T-day (business day) a moment belongs to: days are [00:00, 24:00) in Europe/Istanbul."""
    return moment.astimezone(BUSINESS_TZ).date()


def fifo_takes(rests: list[Decimal], cap: Decimal | None) -> list[Decimal]:
    """What one day's cap schedules of each queued request's rest, in queue order: whole while the
    cap lasts, the head of the queue partly when it runs out, nothing after it (rules 4.3; the
    provider products' queue is the same rule, section 9). ``None``: no cap."""
    takes: list[Decimal] = []
    left = cap
    for rest in rests:
        take = rest if left is None else min(rest, left)
        if take <= 0:
            break
        takes.append(take)
        if left is not None:
            left -= take
        if take < rest:
            break
    return takes


#: Provider staking's accrual days end at 20:00 UTC.
ACCRUAL_END = dt.time(20, 0)
#: Unstaked amounts may have up to the storage's 18 decimals (also below a lowered precision).
UNSTAKE_DECIMALS = 18
MAX_RATE_BPS = Decimal(100_000)


def accrual_end_after(t: dt.datetime) -> dt.datetime:
    """The first accrual-day end (20:00 UTC) strictly after ``t``."""
    end = dt.datetime.combine(t.astimezone(dt.UTC).date(), ACCRUAL_END, dt.UTC)
    return end if end > t else end + dt.timedelta(days=1)


def day_end(day: dt.date) -> dt.datetime:
    """00:00 of the next T-day, in UTC."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=BUSINESS_TZ).astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Product:
    """A liquid product's fixed facts and the settings the simulation chose for it."""

    name: str
    staked: str
    token: str
    unbonding_days: int
    fee_rate: Decimal = ZERO
    cap: Decimal | None = None
    fast_limit: Decimal = Decimal(100)


@dataclasses.dataclass(frozen=True)
class StakingProduct:
    """A provider product's settings, as the simulation chose them."""

    ccy: str
    precision: int
    queued: bool
    cap: Decimal | None
    unbonding_days: int
    min_stake: Decimal


@dataclasses.dataclass
class Unstake:
    """A queued unstake: locked in the staking balance until its parts are paid."""

    user: int
    ccy: str
    amount: Decimal
    at: dt.datetime
    scheduled: Decimal = ZERO
    paid: Decimal = ZERO


@dataclasses.dataclass
class UnstakePart:
    unstake: Unstake
    deliver_day: dt.date
    amount: Decimal
    paid: bool = False


@dataclasses.dataclass(frozen=True)
class RewardRow:
    eligible: Decimal
    gross: Decimal
    net: Decimal
    fee: Decimal


@dataclasses.dataclass
class Redemption:
    """A queued (standard) redemption: the service's order id is only a handle for cancelling."""

    user: int
    product: str
    ord_id: str
    amt: Decimal
    request_time: dt.datetime
    scheduled: Decimal = ZERO
    delivered: Decimal = ZERO
    cancelled: bool = False

    @property
    def pending(self) -> bool:
        return not self.cancelled and self.delivered < self.amt


@dataclasses.dataclass
class Part:
    redemption: Redemption
    amount: Decimal
    deliver_day: dt.date
    delivered: bool = False


@dataclasses.dataclass
class UserModel:
    #: the products' tokens
    tokens: tuple[str, ...]
    #: the master of the user's group (its own index for a master): the group shares the daily fast
    #: redemption allowance (rules 4.1)
    group: int
    #: (account type, currency, bucket) -> amount; missing = 0
    bal: dict[tuple[int, str, str], Decimal] = dataclasses.field(default_factory=dict)
    #: per token, the lowest free amount (funding + trading, available) so far in the current T-day
    day_low: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    #: per product, its reward rows by day
    rewards: dict[str, dict[dt.date, RewardRow]] = dataclasses.field(default_factory=dict)

    def get(self, acct: int, ccy: str, bucket: str = AVAILABLE) -> Decimal:
        return self.bal.get((acct, ccy, bucket), ZERO)

    def add(self, acct: int, ccy: str, amount: Decimal, bucket: str = AVAILABLE) -> None:
        self.bal[(acct, ccy, bucket)] = self.get(acct, ccy, bucket) + amount

    def free_token(self, token: str) -> Decimal:
        return self.get(FUNDING, token) + self.get(TRADING, token)

    def note_token_change(self) -> None:
        """After each journal entry that moved free tokens: the day's minimums."""
        for token in self.tokens:
            self.day_low[token] = min(self.day_low.get(token, ZERO), self.free_token(token))

    def expected_balances(self, acct: int) -> dict[str, tuple[Decimal, Decimal]]:
        """ccy -> (available, locked), zero rows left out."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for (a, ccy, _bucket) in self.bal:
            if a == acct:
                pair = (self.get(acct, ccy), self.get(acct, ccy, LOCKED))
                if pair != (ZERO, ZERO):
                    out[ccy] = pair
        return out


class Model:
    """What every user should hold, and the reward rows every day should have produced."""

    def __init__(self, start: dt.datetime, products: list[Product], staking: list[StakingProduct]) -> None:
        self.now = start
        self.products = {p.name: p for p in products}
        self.users: list[UserModel] = []
        self.rates: dict[str, dict[dt.date, Decimal]] = {p.name: {} for p in products}
        #: (product, group, T-day) -> fast redemptions drawn
        self.fast_used: dict[tuple[str, int, dt.date], Decimal] = {}
        self.queue: list[Redemption] = []
        self.parts: list[Part] = []
        # provider staking
        self.staking = {p.ccy: p for p in staking}
        self.staking_rates: dict[str, dict[dt.date, Decimal]] = {p.ccy: {} for p in staking}
        self._seq = itertools.count()
        #: (user, ccy) -> the free staking balance's moves: (time, order, change, is interest)
        self.moves: dict[tuple[int, str], list[tuple[dt.datetime, int, Decimal, bool]]] = {}
        self.unstakes: list[Unstake] = []
        self.unstake_parts: list[UnstakePart] = []
        # withdrawals and spot orders (set up by the simulation after the products)
        self.chains: dict[str, WithdrawalChain] = {}
        self.review = dt.timedelta(0)
        self.withdrawals: list[Withdrawal] = []
        self.markets: Markets | None = None
        #: the ND broker and its sub-accounts (they may withdraw and receive internal withdrawals)
        self.broker = 0
        self.nd_subs: set[int] = set()
        #: the ND rebate of every fill of the broker's sub-accounts: (when, sub-account, rebate)
        self.nd_fills: list[tuple[dt.datetime, int, Decimal]] = []
        #: fee levels other than Lv1, the monthly rebate caps of the capped levels, the sub-accounts in
        #: VIP fee-rate mode, and the rebates recorded so far per (user, HKT month): ND, and FD with the broker
        self.levels: dict[int, str] = {}
        self.caps: dict[str, Decimal] = {}
        self.vip_mode: set[int] = set()
        self.nd_month: dict[tuple[int, dt.date], Decimal] = {}
        self.fd_month: dict[tuple[int, dt.date], Decimal] = {}
        #: the FD broker, and every fill tagged with its code that counts for it: (when, broker type, user, its rebate)
        self.fd: FdBroker | None = None
        self.fd_fills: list[tuple[dt.datetime, str, int, Decimal]] = []
        #: the ND broker's fee changes in the order set, and the contract credits granted
        self.fee_changes: list[FeeChange] = []
        self.credits: list[Credit] = []
        self.dcd_orders: list[DcdOrder] = []
        #: product id -> notional sold
        self.dcd_sold: dict[str, Decimal] = {}

    # -- time ----------------------------------------------------------------------------------

    def today(self) -> dt.date:
        return t_day(self.now)

    def rate_for(self, product: str, day: dt.date) -> Decimal | None:
        rates = self.rates[product]
        earlier = [d for d in rates if d <= day]
        return rates[max(earlier)] if earlier else None

    def boundaries(self, until: dt.datetime) -> list[dt.date]:
        """The T-days whose end falls in (now, until]."""
        out = []
        day = self.today()
        while day_end(day) <= until:
            if day_end(day) > self.now:
                out.append(day)
            day += dt.timedelta(days=1)
        return out

    def advance_to(self, until: dt.datetime) -> None:
        """Move to ``until``: at each T-day's end, every product's reward run, then every
        product's settlement run (the jobs' registration order)."""
        assert until >= self.now
        for day in self.boundaries(until):
            for product in self.products.values():
                self._reward_run(product, day)
            for product in self.products.values():
                self._settlement_run(product, day)
        # Spot fills and withdrawals move other balances than the runs read (trading USDT, ETH and
        # SOL; locked funding), and provider staking's runs other ones than the liquid runs (they add
        # to funding only), so doing each kind in turn gives the same balances as time order.
        if self.markets is not None:
            self.markets.advance_to(until)
        end = dt.datetime.combine(self.now.date(), HKT_DAY_END, dt.UTC)
        end = end if end > self.now else end + dt.timedelta(days=1)
        while end <= until:  # the ND and FD rebate run of the Hong Kong day ending at ``end``
            self._rebate_run(end)
            end += dt.timedelta(days=1)
        for order in self.dcd_orders:
            if not order.paid and order.sett_time <= until:
                order.paid = True
                amount, ccy = order.payout(self._index_before(order.inst, order.exp_time))
                self.users[order.user].add(FUNDING, ccy, amount)
                scale = SCALES[order.product.notional_ccy]
                markup = Decimal(math.floor(Fraction(order.notional) * Fraction(order.markup_yield) * 10**scale)
                                 ).scaleb(-scale)
                if markup:
                    self.users[order.broker].add(FUNDING, order.product.notional_ccy, markup)
        for w in self.withdrawals:
            if not w.cancelled and not w.done:
                w.broadcast = w.broadcast or w.broadcast_at <= until
                if w.done_at <= until:
                    w.done = True
                    self.users[w.user].add(FUNDING, w.ccy, -w.total, LOCKED)
        end = accrual_end_after(self.now)
        while end <= until:
            self._interest_run(end)
            self._unstake_settlement(end)
            end += dt.timedelta(days=1)
        self.now = until

    def level(self, i: int) -> str:
        return self.levels.get(i, "Lv1")

    def cap(self, i: int) -> Decimal | None:
        level = self.level(i)
        return self.caps.get(level) if level in CAPPED_LEVELS else None

    def _rebate_run(self, end: dt.datetime) -> None:
        """The rebates of the Hong Kong day ending at ``end``, per user: a day's rebates summed; nothing
        for an ND sub-account in VIP fee-rate mode, an FD user above VIP5 or while the FD broker is
        expired; at most what is left of a capped level's monthly cap; the FD day handed out over its
        fills in time order and each fill's part split between the user and the broker."""
        start = end - dt.timedelta(days=1)
        month = (start + HKT_OFFSET).date().replace(day=1)
        nd: dict[int, Decimal] = {}
        for at, i, rebate in self.nd_fills:
            if start <= at < end:
                nd[i] = nd.get(i, ZERO) + rebate
        for i, raw in sorted(nd.items()):
            income = ZERO if i in self.vip_mode else max(raw, ZERO)
            income = capped(income, self.nd_month.get((i, month), ZERO), self.cap(i))
            self.nd_month[(i, month)] = self.nd_month.get((i, month), ZERO) + income
            self.users[self.broker].add(FUNDING, "USDT", income)
        if self.fd is None:
            return
        fd: dict[tuple[str, int], list[Decimal]] = {}
        for at, auth, i, rebate in self.fd_fills:
            if start <= at < end:
                fd.setdefault((auth, i), []).append(rebate)
        # a day record per (broker type, user); the records of a user take the cap in type order (api, oauth)
        for (_auth, i), raws in sorted(fd.items()):
            if self.fd.expired or self.level(i) in FD_TOP_LEVELS:
                target = ZERO
            else:
                target = capped(max(sum(raws, ZERO), ZERO), self.fd_month.get((i, month), ZERO), self.cap(i))
            self.fd_month[(i, month)] = self.fd_month.get((i, month), ZERO) + target
            for part in allocate(raws, target):
                to_user = round_down(part * self.fd.client_ratio, REBATE_DECIMALS)
                self.users[self.fd.user].add(FUNDING, "USDT", part - to_user)
                self.users[i].add(FUNDING, "USDT", to_user)

    def staking_rate_for(self, ccy: str, day: dt.date) -> Decimal | None:
        rates = self.staking_rates[ccy]
        earlier = [d for d in rates if d <= day]
        return rates[max(earlier)] if earlier else None

    def _interest_run(self, end: dt.datetime) -> None:
        start, day = end - dt.timedelta(days=1), end.date()
        for (_user, ccy), moves in self.moves.items():
            rate = self.staking_rate_for(ccy, day)
            if rate is None or rate <= 0:
                continue
            ordered = sorted(moves)
            # held at the start: everything before it, and the previous day's interest credited at it
            balance = sum((d for at, _, d, interest in ordered if at < start or (interest and at == start)), ZERO)
            low = balance
            for at, _, d, interest in ordered:
                if start <= at < end and not (interest and at == start):
                    balance += d
                    low = min(low, balance)
            exact = Fraction(max(low, ZERO)) * Fraction(rate) / 10_000 / DAYS_PER_YEAR
            precision = self.staking[ccy].precision
            paid = Decimal(math.floor(exact * 10**precision)).scaleb(-precision)
            if paid > 0:
                moves.append((end, next(self._seq), paid, True))

    def _unstake_settlement(self, end: dt.datetime) -> None:
        day = end.date()
        for ccy, product in self.staking.items():
            if not product.queued:
                continue
            queue = [r for r in self.unstakes if r.ccy == ccy and r.at < end and r.scheduled < r.amount]
            for r, take in zip(queue, fifo_takes([r.amount - r.scheduled for r in queue], product.cap), strict=False):
                self.unstake_parts.append(UnstakePart(r, day + dt.timedelta(days=product.unbonding_days), take))
                r.scheduled += take
            for part in self.unstake_parts:
                if part.unstake.ccy == ccy and not part.paid and part.deliver_day <= day:
                    part.paid = True
                    part.unstake.paid += part.amount
                    self.users[part.unstake.user].add(FUNDING, ccy, part.amount)

    def _reward_run(self, product: Product, day: dt.date) -> None:
        rate = self.rate_for(product.name, day)
        token = product.token
        for user in self.users:
            eligible = max(user.day_low.get(token, ZERO), ZERO)
            user.day_low[token] = user.free_token(token)  # the opening balance of the next day
            if rate is None or eligible <= 0:
                continue
            gross = round_down(eligible * rate / DAYS_PER_YEAR, PRECISION)
            if gross <= 0:
                continue
            net = round_down(gross * (1 - product.fee_rate), PRECISION)
            user.rewards.setdefault(product.name, {})[day] = RewardRow(eligible, gross, net, gross - net)
            user.add(FUNDING, token, net)  # a posting of the next day: only raises, no new low

    def _settlement_run(self, product: Product, day: dt.date) -> None:
        end = day_end(day)
        queue = [r for r in self.queue if r.product == product.name and not r.cancelled
                 and r.amt > r.scheduled and r.request_time < end]
        for red, take in zip(queue, fifo_takes([r.amt - r.scheduled for r in queue], product.cap), strict=False):
            red.scheduled += take
            self.parts.append(Part(red, take, day + dt.timedelta(days=product.unbonding_days)))
        for part in self.parts:
            red = part.redemption
            if red.product == product.name and not part.delivered and part.deliver_day <= day:
                part.delivered = True
                red.delivered += part.amount
                user = self.users[red.user]
                user.add(FUNDING, product.token, -part.amount, LOCKED)
                user.add(FUNDING, product.staked, part.amount)
        self.queue = [r for r in self.queue if r.pending]

    # -- operations: each returns whether the service must accept it, and applies it if so ------

    def create_user(self, master: int | None = None) -> int:
        """A master, or a sub-account of ``master`` (in its group)."""
        i = len(self.users)
        self.users.append(UserModel(tuple(p.token for p in self.products.values()), i if master is None else master))
        return i

    def deposit(self, i: int, ccy: str, amt: Decimal) -> bool:
        if amt <= 0 or not fits(amt, SCALES[ccy]):
            return False
        self.users[i].add(FUNDING, ccy, amt)
        return True

    def transfer(self, i: int, ccy: str, amt: Decimal, frm: int, to: int) -> bool:
        user = self.users[i]
        if amt <= 0 or frm == to or not fits(amt, SCALES[ccy]) or user.get(frm, ccy) < amt:
            return False
        user.add(frm, ccy, -amt)
        user.add(to, ccy, amt)
        user.note_token_change()  # a token transfer leaves the free total unchanged
        return True

    def purchase(self, i: int, product: str, amt: Decimal) -> bool:
        user, p = self.users[i], self.products[product]
        if amt <= 0 or not fits(amt, PRECISION) or amt < MIN_PURCHASE or user.get(FUNDING, p.staked) < amt:
            return False
        user.add(FUNDING, p.staked, -amt)
        user.add(FUNDING, p.token, amt)
        user.note_token_change()
        return True

    def redeem_kind(self, i: int, product: str, amt: Decimal) -> str | None:
        """``"fast"``, ``"standard"``, or ``None`` (refused)."""
        user, p = self.users[i], self.products[product]
        if amt <= 0 or not fits(amt, PRECISION) or amt < MIN_REDEEM or user.get(FUNDING, p.token) < amt:
            return None
        used = self.fast_used.get((product, user.group, self.today()), ZERO)
        return "fast" if amt <= max(p.fast_limit - used, ZERO) else "standard"

    def redeem(self, i: int, product: str, amt: Decimal, ord_id: str) -> str | None:
        kind = self.redeem_kind(i, product, amt)
        user, p = self.users[i], self.products[product]
        if kind == "fast":
            key = (product, user.group, self.today())
            self.fast_used[key] = self.fast_used.get(key, ZERO) + amt
            user.add(FUNDING, p.token, -amt)
            user.add(FUNDING, p.staked, amt)
        elif kind == "standard":
            user.add(FUNDING, p.token, -amt)
            user.add(FUNDING, p.token, amt, LOCKED)
            self.queue.append(Redemption(i, product, ord_id, amt, self.now))
        if kind is not None:
            user.note_token_change()
        return kind

    def cancellable(self, red: Redemption) -> bool:
        return red.pending and red.scheduled == 0

    def cancel(self, red: Redemption) -> bool:
        if not self.cancellable(red):
            return False
        red.cancelled = True
        user, token = self.users[red.user], self.products[red.product].token
        user.add(FUNDING, token, -red.amt, LOCKED)
        user.add(FUNDING, token, red.amt)
        user.note_token_change()
        self.queue = [r for r in self.queue if r.pending]
        return True

    def publish_rate(self, product: str, rate: Decimal) -> bool:
        if rate < 0 or rate > MAX_RATE or not fits(rate, RATE_DECIMALS):
            return False
        self.rates[product][self.today()] = rate
        return True

    # -- provider staking ------------------------------------------------------------------------

    def staking_available(self, i: int, ccy: str) -> Decimal:
        return sum((m[2] for m in self.moves.get((i, ccy), [])), ZERO)

    def staking_locked(self, i: int, ccy: str) -> Decimal:
        return sum((r.amount - r.paid for r in self.unstakes if r.user == i and r.ccy == ccy), ZERO)

    def staking_balances(self, i: int) -> dict[str, tuple[Decimal, Decimal]]:
        """ccy -> (free, being paid out) of every product the user has staked in."""
        return {ccy: (self.staking_available(i, ccy), self.staking_locked(i, ccy))
                for (u, ccy) in self.moves if u == i}

    def stake(self, i: int, ccy: str, amt: Decimal) -> bool:
        user, product = self.users[i], self.staking[ccy]
        if amt <= 0 or not fits(amt, product.precision) or amt < product.min_stake or user.get(FUNDING, ccy) < amt:
            return False
        user.add(FUNDING, ccy, -amt)
        self.moves.setdefault((i, ccy), []).append((self.now, next(self._seq), amt, False))
        return True

    def unstake(self, i: int, ccy: str, amt: Decimal) -> bool:
        if amt <= 0 or not fits(amt, UNSTAKE_DECIMALS) or self.staking_available(i, ccy) < amt:
            return False
        self.moves.setdefault((i, ccy), []).append((self.now, next(self._seq), -amt, False))
        if self.staking[ccy].queued:
            self.unstakes.append(Unstake(i, ccy, amt, self.now))
        else:
            self.users[i].add(FUNDING, ccy, amt)
        return True

    # -- transfers with sub-accounts, withdrawals ---------------------------------------------------

    def sub_transfer(self, src: int, dst: int, ccy: str, amt: Decimal, frm: int, to: int) -> bool:
        """From user ``src``'s account ``frm`` to user ``dst``'s account ``to`` (a master and one of its
        sub-accounts; the caller checked the pair)."""
        source, dest = self.users[src], self.users[dst]
        if amt <= 0 or not fits(amt, SCALES[ccy]) or source.get(frm, ccy) < amt:
            return False
        source.add(frm, ccy, -amt)
        dest.add(to, ccy, amt)
        source.note_token_change()
        dest.note_token_change()
        return True

    def plain_sub(self, i: int) -> bool:
        """A sub-account that is not an ND broker's: it neither withdraws nor receives withdrawals."""
        return self.users[i].group != i and i not in self.nd_subs

    def withdraw(self, i: int, chain: str, amt: Decimal) -> Withdrawal | None:
        c, user = self.chains[chain], self.users[i]
        if self.plain_sub(i) or amt <= 0 or not fits(amt, c.decimals) or not c.min_wd <= amt <= c.max_wd:
            return None
        total = amt + c.fee
        if user.get(FUNDING, c.ccy) < total:
            return None
        user.add(FUNDING, c.ccy, -total)
        user.add(FUNDING, c.ccy, total, LOCKED)
        broadcast_at = self.now + self.review
        w = Withdrawal(i, c.ccy, total, broadcast_at,
                       broadcast_at + dt.timedelta(seconds=c.confirmations * c.block_seconds))
        self.withdrawals.append(w)
        return w

    def withdraw_inside(self, i: int, to: int, chain: str, amt: Decimal) -> bool:
        """To another master, at once and free (dest 3)."""
        c, user = self.chains[chain], self.users[i]
        if (self.plain_sub(i) or self.plain_sub(to) or to == i or amt <= 0 or not fits(amt, c.decimals)
                or user.get(FUNDING, c.ccy) < amt):
            return False
        user.add(FUNDING, c.ccy, -amt)
        self.users[to].add(FUNDING, c.ccy, amt)
        return True

    def cancel_withdrawal(self, w: Withdrawal) -> bool:
        if w.cancelled or w.broadcast:
            return False
        w.cancelled = True
        user = self.users[w.user]
        user.add(FUNDING, w.ccy, -w.total, LOCKED)
        user.add(FUNDING, w.ccy, w.total)
        return True

    # -- dual-currency deposits ----------------------------------------------------------------------

    def _index_before(self, inst: str, at: dt.datetime) -> Decimal:
        assert self.markets is not None
        return [px for t, px in self.markets.history[inst] if t < at][-1]

    def dcd_quotable(self, product: DcdProduct, notional: Decimal) -> bool:
        left = product.quota - self.dcd_sold.get(product.product_id, ZERO)
        return (notional > 0 and fits(notional, SCALES[product.notional_ccy])
                and product.min_size <= notional <= product.max_size and multiple(notional, product.step)
                and notional <= left and self.now < product.stop_trading_time)

    def dcd_order(self, i: int, product: DcdProduct, notional: Decimal, abs_yield: Decimal, *, broker: int,
                  markup_yield: Decimal = ZERO) -> DcdOrder | None:
        """An order of ND sub-account #i (its broker #``broker`` is paid ``markup_yield`` of the notional at
        settlement), or None when it is refused."""
        user = self.users[i]
        if not self.dcd_quotable(product, notional) or user.get(FUNDING, product.notional_ccy) < notional:
            return None
        user.add(FUNDING, product.notional_ccy, -notional)
        self.dcd_sold[product.product_id] = self.dcd_sold.get(product.product_id, ZERO) + notional
        order = DcdOrder(i, product, notional, abs_yield, broker, markup_yield)
        self.dcd_orders.append(order)
        return order

    # -- the ND broker's fee changes and contract credits ---------------------------------------

    def set_fee_change(self, user: int | None, *, specificity: int, covers_spot: bool, kind: str,
                       taker: Decimal | None, maker: Decimal | None, eff_day: dt.date | None) -> FeeChange | None:
        """A change the broker sets (``user`` None: its default), or None when it is refused."""
        if user is not None and user not in self.nd_subs:
            return None
        if taker is None and maker is None:
            return None
        high, places = (Decimal(1000), 1) if kind == "absolute" else (Decimal(10000), 0)
        for value in (taker, maker):
            if value is not None and not (ZERO <= value <= high and fits(value, places)):
                return None
        hkt_today = (self.now + HKT_OFFSET).date()
        day = eff_day if eff_day is not None else hkt_today + dt.timedelta(days=1)
        effective = dt.datetime.combine(day, dt.time(0), dt.UTC) - HKT_OFFSET
        if effective <= self.now:
            return None
        change = FeeChange(len(self.fee_changes), user, specificity, covers_spot, kind, taker, maker, effective)
        self.fee_changes.append(change)
        return change

    def fee_rate(self, i: int, base: Decimal, liquidity: str, at: dt.datetime) -> Decimal:
        """The rate sub-account ``i`` pays on a spot USDT pair at ``at``: ``base`` changed by the
        broker's change that applies (no change for anyone else)."""
        if i not in self.nd_subs:
            return base
        best: tuple[tuple[bool, int, dt.datetime, int], FeeChange] | None = None
        for c in self.fee_changes:
            value = c.taker if liquidity == "taker" else c.maker
            if value is None or not c.covers_spot or c.effective_at > at or c.user not in (None, i):
                continue
            rank = (c.user is not None, c.specificity, c.effective_at, c.seq)
            if best is None or rank > best[0]:
                best = (rank, c)
        if best is None:
            return base
        c = best[1]
        value = c.taker if liquidity == "taker" else c.maker
        assert value is not None
        return base + value / 10_000 if c.kind == "absolute" else base * (1 + value / 100)

    def grant_credit(self, i: int, amt: Decimal, activate_by: dt.datetime, period_ms: int) -> Credit | None:
        if i not in self.nd_subs or not (ZERO < amt <= Decimal(10) ** 9 and fits(amt, 6)):
            return None
        if not 60_000 <= period_ms <= 366 * 86_400_000 or activate_by <= self.now:
            return None
        credit = Credit(i, amt, activate_by, dt.timedelta(milliseconds=period_ms))
        self.credits.append(credit)
        return credit

    def activate_credit(self, i: int, credit: Credit) -> bool:
        if i not in self.nd_subs or credit.user != i or credit.state(self.now) != "unactivated":
            return False
        credit.use_until = self.now + credit.period
        return True

    def invalidate_credit(self, credit: Credit) -> bool:
        if credit.state(self.now) in ("expired", "invalid"):
            return False
        credit.invalid = True
        return True

    def pay_with_credits(self, i: int, fee: Decimal, fee_px: Decimal, places: int, at: dt.datetime) -> Decimal:
        """What ``i``'s active credits pay of ``fee`` at ``at`` (soonest to expire first), spending them."""
        paid = ZERO
        active = sorted((c for c in self.credits if c.user == i and c.state(at) == "activated"),
                        key=lambda c: (c.use_until, c.credit_id))
        for c in active:
            owed, left = fee - paid, c.amt - c.used
            if owed <= 0:
                break
            if left <= 0:
                continue
            value = ceil_to(owed * fee_px, Decimal("0.000001"))
            if left >= value:
                c.used += value
                paid += owed
            else:
                part = min(floor_to(left / fee_px, Decimal(1).scaleb(-places)), owed)
                c.used = c.amt
                paid += part
        return paid

    def publish_staking_rate(self, ccy: str, bps: Decimal) -> bool:
        """For the current accrual day (whose end is after now: its run has not been planned)."""
        if bps < 0 or bps > MAX_RATE_BPS or not fits(bps, RATE_DECIMALS):
            return False
        self.staking_rates[ccy][accrual_end_after(self.now).date()] = bps
        return True


# -- transfers between a master and its sub-accounts, withdrawals, spot orders -----------------


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding="ROUND_CEILING") * step


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding="ROUND_FLOOR") * step


def multiple(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


@dataclasses.dataclass(frozen=True)
class WithdrawalChain:
    """A chain's withdrawal settings, as the simulation configured them."""

    chain: str
    ccy: str
    decimals: int
    fee: Decimal
    min_wd: Decimal
    max_wd: Decimal
    confirmations: int
    block_seconds: int


@dataclasses.dataclass
class Withdrawal:
    user: int
    ccy: str
    total: Decimal  # amt + fee, locked in funding
    broadcast_at: dt.datetime
    done_at: dt.datetime
    broadcast: bool = False
    done: bool = False
    cancelled: bool = False


@dataclasses.dataclass(frozen=True)
class Instrument:
    inst_id: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_sz: Decimal
    max_sz: Decimal


@dataclasses.dataclass
class SpotOrder:
    """A resting order: its own price, the amount it locked, and the minute it was placed in."""

    user: int
    inst: str
    side: str
    sz: Decimal
    px: Decimal
    locked: Decimal
    minute: dt.datetime
    ord_id: str = ""
    tag: str = ""
    #: how the order was authenticated: ``api`` (an API key) or ``oauth`` (a token of OAuth client ``client``)
    auth: str = "api"
    client: str = ""
    #: the end of the first minute whose index crossed it (when it fills), once known
    fills_at: dt.datetime | None = None
    state: str = "live"


#: Fee levels with a monthly rebate cap (when the operator sets one), and those whose FD rebates are nothing.
CAPPED_LEVELS = ("VIP4", "VIP5", "VIP6", "VIP7", "VIP8")
FD_TOP_LEVELS = ("VIP6", "VIP7", "VIP8")


def capped(income: Decimal, so_far: Decimal, cap: Decimal | None) -> Decimal:
    """A day's income under a monthly cap of which ``so_far`` is used: what is left of it, at least 0."""
    if cap is None or income <= 0:
        return income
    return max(min(income, cap - so_far), ZERO)


def allocate(raws: list[Decimal], target: Decimal) -> list[Decimal]:
    """``target`` handed out over the fills' own rebates in order, each at most its own."""
    out, left = [], target
    for raw in raws:
        given = max(ZERO, min(raw, left))
        out.append(given)
        left -= given
    return out


#: Hong Kong time, UTC+8 (no daylight saving).
HKT_OFFSET = dt.timedelta(hours=8)


@dataclasses.dataclass(frozen=True)
class FeeChange:
    """One fee change the ND broker set: for sub-account ``user``, or (None) its default."""

    seq: int
    user: int | None
    #: scope fields set (0-3), and whether the scope covers a spot USDT pair at all
    specificity: int
    covers_spot: bool
    kind: str
    taker: Decimal | None
    maker: Decimal | None
    effective_at: dt.datetime


@dataclasses.dataclass
class FdBroker:
    """The FD broker (a master): its code, types (``api``, ``oauth``), rebate ratio, the users' share of
    it, and the id of its OAuth client (when it is of type ``oauth``)."""

    user: int
    code: str
    types: tuple[str, ...]
    ratio: Decimal
    client_ratio: Decimal
    client: str = ""
    expired: bool = False

    def counts(self, auth: str, client: str) -> bool:
        """Whether an order authenticated so (``api``, or ``oauth`` with ``client``'s token) counts for
        the broker: as one of its types, and for ``oauth`` only with a token of its own client."""
        return auth in self.types and (auth == "api" or client == self.client)


@dataclasses.dataclass
class Credit:
    """A contract credit of ``amt`` USDT granted to sub-account ``user``."""

    user: int
    amt: Decimal
    activate_by: dt.datetime
    period: dt.timedelta
    credit_id: int = 0
    used: Decimal = ZERO
    use_until: dt.datetime | None = None
    invalid: bool = False

    def state(self, at: dt.datetime) -> str:
        if self.invalid:
            return "invalid"
        if self.use_until is None:
            return "unactivated" if at < self.activate_by else "expired"
        return "activated" if at < self.use_until else "expired"


#: The ND rebate ratio of every broker level (the default) and the rebates' decimals.
ND_RATIO = Decimal("0.4")
REBATE_DECIMALS = 8
#: ND rebate days end at 00:00 Hong Kong time (UTC+8).
HKT_DAY_END = dt.time(16, 0)


def minute_of(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


class Markets:
    """The spot side of the model: index prices, fee rates and resting orders."""

    def __init__(self, model: Model, instruments: list[Instrument], index: dict[str, Decimal],
                 taker: Decimal, maker: Decimal) -> None:
        self.model = model
        self.instruments = {i.inst_id: i for i in instruments}
        self.index = dict(index)
        #: the base (taker, maker) rates of every fee level in use
        self.rates = {"Lv1": (taker, maker)}
        self.resting: list[SpotOrder] = []
        #: every index price set: (when, price), in order
        self.history = {inst: [(model.now, px)] for inst, px in index.items()}

    @staticmethod
    def crosses(side: str, px: Decimal, index: Decimal) -> bool:
        return index <= px if side == "buy" else index >= px

    def _pay_and_get(self, inst: Instrument, side: str, sz: Decimal, in_quote: bool, fill_px: Decimal,
                     locked: Decimal) -> tuple[Decimal, Decimal, Decimal] | None:
        """(base traded, what is paid, what is received before the fee), or None below one lot or
        one unit of the quote."""
        q = Decimal(1).scaleb(-SCALES[inst.quote])
        if side == "buy":
            base = floor_to(sz / fill_px, inst.lot) if in_quote else sz
            if base <= 0:
                return None
            return base, min(ceil_to(base * fill_px, q), locked), base
        base = locked if in_quote else sz
        proceeds = floor_to(base * fill_px, q)
        if base <= 0 or proceeds <= 0:
            return None
        return base, base, proceeds

    def _fill(self, i: int, inst: Instrument, side: str, pay: Decimal, get: Decimal, liquidity: str, *,
              held: Decimal, px: Decimal, at: dt.datetime, tag: str, auth: str, client: str) -> None:
        user = self.model.users[i]
        pay_ccy, get_ccy = (inst.quote, inst.base) if side == "buy" else (inst.base, inst.quote)
        unit = Decimal(1).scaleb(-SCALES[get_ccy])
        taker, maker = self.rates[self.model.level(i)]
        base_rate = taker if liquidity == "taker" else maker
        fee = min(ceil_to(get * self.model.fee_rate(i, base_rate, liquidity, at), unit), get)
        base_fee = min(ceil_to(get * base_rate, unit), get)
        fee_px = px if get_ccy == inst.base else Decimal(1)  # one unit of the fee's currency in USDT
        nd = i in self.model.nd_subs  # only ND sub-accounts have markups and credits
        credit = self.model.pay_with_credits(i, fee, fee_px, SCALES[get_ccy], at) if nd else ZERO
        credit_base = min(credit, base_fee)  # credits pay the base fee first
        net_usdt = round_down((base_fee - credit_base) * fee_px, 18)
        if nd:
            markup_usdt = round_down((fee - base_fee - (credit - credit_base)) * fee_px, 18)
            self.model.nd_fills.append((at, i, round_down(ND_RATIO * net_usdt + markup_usdt, REBATE_DECIMALS)))
        fee -= credit  # what the user pays in money
        fd = self.model.fd
        if fd is not None and tag == fd.code and user.group != fd.user and fd.counts(auth, client):
            self.model.fd_fills.append((at, auth, i, round_down(fd.ratio * net_usdt, REBATE_DECIMALS)))
        if held:
            user.add(TRADING, pay_ccy, -held, LOCKED)
            user.add(TRADING, pay_ccy, held - pay)
        else:
            user.add(TRADING, pay_ccy, -pay)
        user.add(TRADING, get_ccy, get - fee)

    def place(self, i: int, inst_id: str, side: str, ord_type: str, sz: Decimal, px: Decimal | None,
              tgt: str, tag: str = "", auth: str = "api", client: str = "") -> tuple[str, SpotOrder | None] | None:
        """The order's state (``filled``, ``live``, ``canceled``) and, when it rests, its model; or
        None when it is refused (nothing placed)."""
        inst, index, user = self.instruments[inst_id], self.index[inst_id], self.model.users[i]
        in_quote = ord_type == "market" and tgt == "quote_ccy"
        if px is not None and not multiple(px, inst.tick):
            return None
        if in_quote:
            if not fits(sz, SCALES[inst.quote]):
                return None
        elif sz < inst.min_sz or not multiple(sz, inst.lot) or sz > inst.max_sz:
            return None
        if ord_type == "market":
            decision = "fill"
        else:
            assert px is not None
            crosses = self.crosses(side, px, index)
            if ord_type == "post_only":
                if crosses:
                    return None
                decision = "rest"
            else:
                decision = "fill" if crosses else ("rest" if ord_type == "limit" else "cancel")
        q = Decimal(1).scaleb(-SCALES[inst.quote])
        if side == "sell":
            lock_ccy, lock = inst.base, (ceil_to(sz / index, inst.lot) if in_quote else sz)
        else:
            lock_ccy = inst.quote
            lock = sz if in_quote else ceil_to(sz * (px if px is not None and ord_type != "market" else index), q)
        fill_px = index if decision != "rest" else px
        assert fill_px is not None
        traded = self._pay_and_get(inst, side, sz, in_quote, fill_px, lock)
        if traded is None:
            return None
        available = user.get(TRADING, lock_ccy)
        if decision == "cancel":
            return ("canceled", None) if available >= lock else None
        if decision == "rest":
            if available < lock:
                return None
            assert px is not None
            user.add(TRADING, lock_ccy, -lock)
            user.add(TRADING, lock_ccy, lock, LOCKED)
            order = SpotOrder(i, inst_id, side, sz, px, lock, minute_of(self.model.now), tag=tag, auth=auth,
                              client=client)
            self.resting.append(order)
            return "live", order
        _, pay, get = traded
        if available < pay:
            return None
        self._fill(i, inst, side, pay, get, "taker", held=ZERO, px=index, at=self.model.now, tag=tag, auth=auth,
                   client=client)
        return "filled", None

    def cancel(self, order: SpotOrder) -> bool:
        if order.state != "live":
            return False
        order.state = "canceled"
        user, inst = self.model.users[order.user], self.instruments[order.inst]
        ccy = inst.quote if order.side == "buy" else inst.base
        user.add(TRADING, ccy, -order.locked, LOCKED)
        user.add(TRADING, ccy, order.locked)
        self.resting = [o for o in self.resting if o.state == "live"]
        return True

    def set_price(self, inst_id: str, px: Decimal) -> None:
        """A price point now: it crosses the orders placed in an earlier minute at this minute's end
        (those placed in this minute are judged by its close, when it ends)."""
        self.index[inst_id] = px
        self.history[inst_id].append((self.model.now, px))
        end = minute_of(self.model.now) + dt.timedelta(minutes=1)
        for order in self.resting:
            if (order.inst == inst_id and order.fills_at is None and order.minute < minute_of(self.model.now)
                    and self.crosses(order.side, order.px, px)):
                order.fills_at = end

    def advance_to(self, until: dt.datetime) -> None:
        """The minutes that end by ``until``: the current one's close judges the orders placed in it,
        and every order crossed fills at its own price as maker."""
        end = minute_of(self.model.now) + dt.timedelta(minutes=1)
        if end > until:
            return
        for order in self.resting:
            if order.fills_at is None and self.crosses(order.side, order.px, self.index[order.inst]):
                order.fills_at = end
        due = [o for o in self.resting if o.fills_at is not None and o.fills_at <= until]
        for order in sorted(due, key=lambda o: o.fills_at or until):  # in time, then placement, order
            inst = self.instruments[order.inst]
            traded = self._pay_and_get(inst, order.side, order.sz, False, order.px, order.locked)
            assert traded is not None  # checked when it was placed
            _, pay, get = traded
            assert order.fills_at is not None
            self._fill(order.user, inst, order.side, pay, get, "maker", held=order.locked, px=order.px,
                       at=order.fills_at, tag=order.tag, auth=order.auth, client=order.client)
            order.state = "filled"
        self.resting = [o for o in self.resting if o.state == "live"]


@dataclasses.dataclass(frozen=True)
class DcdProduct:
    """A listed DCD product, as the service lists it."""

    product_id: str
    ccy: str
    alt_ccy: str
    opt_type: str
    stk: Decimal
    notional_ccy: str
    min_size: Decimal
    max_size: Decimal
    step: Decimal
    quota: Decimal
    exp_time: dt.datetime
    sett_time: dt.datetime
    stop_trading_time: dt.datetime


@dataclasses.dataclass
class DcdOrder:
    user: int
    product: DcdProduct
    notional: Decimal
    abs_yield: Decimal
    #: the user's ND broker, paid ``notional x markup_yield`` (rounded down) at settlement
    broker: int
    markup_yield: Decimal = ZERO
    paid: bool = False

    @property
    def inst(self) -> str:
        return f"{self.product.ccy}-{self.product.alt_ccy}"

    @property
    def exp_time(self) -> dt.datetime:
        return self.product.exp_time

    @property
    def sett_time(self) -> dt.datetime:
        return self.product.sett_time

    def payout(self, price: Decimal) -> tuple[Decimal, str]:
        """(amount, currency) the order pays when the settlement price is ``price``: exact fractions,
        rounded down once."""
        p = self.product
        grown = Fraction(self.notional) * (1 + Fraction(self.abs_yield))
        if p.opt_type == "C":
            amount, ccy = (grown * Fraction(p.stk), p.alt_ccy) if price >= p.stk else (grown, p.ccy)
        else:
            amount, ccy = (grown / Fraction(p.stk), p.ccy) if price <= p.stk else (grown, p.alt_ccy)
        return Decimal(math.floor(amount * 10**SCALES[ccy])).scaleb(-SCALES[ccy]), ccy


#: How far the float derivation of a yield may be from the exact value (far above a double's error on
#: yields below 1, far below the 1E-8 the yields are rounded to).
DCD_FLOAT_SLACK = 1e-12


def dcd_yield(opt_type: str, spot: Decimal, stk: Decimal, now: dt.datetime, exp_time: dt.datetime, vol: Decimal,
              margin: Decimal) -> float:
    """dcd.md §3 derived again, in floats: the premium of the option the user sells (Black-Scholes, zero
    rates; a call on the notional's units, a put on ``notional / stk`` units) over the notional's value,
    times ``1 - margin`` (no broker markup). Before the rounding down to 8 decimals."""
    s, k, years = float(spot), float(stk), (exp_time - now).total_seconds() / (365 * 86_400)
    if years <= 0:
        call = max(s - k, 0.0)
    else:
        sd = float(vol) * math.sqrt(years)
        d1 = (math.log(s / k) + sd * sd / 2) / sd
        cdf = NormalDist().cdf
        call = s * cdf(d1) - k * cdf(d1 - sd)
    put = call - s + k  # put-call parity at zero rates
    raw = call / s if opt_type == "C" else put / k
    return raw * (1 - float(margin))


def dcd_markup_units(priced: float, markup: Decimal) -> float:
    """The broker's part of a quote's yield ``priced`` (from :func:`dcd_yield`), in units of 1E-8 (the
    yields' step): rounded down, it is the ``markup_yield`` the broker is paid at settlement."""
    return priced * float(markup) * 1e8


def dcd_annual_yield(abs_yield: Decimal, now: dt.datetime, exp_time: dt.datetime) -> Decimal:
    """``absYield x 365 / days`` from the next whole hour after ``now`` (interest accrual) to expiry,
    rounded half up to 4 decimals, exactly; 0 when expiry is not after the accrual time."""
    accrual = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    days = Fraction(int((exp_time - accrual).total_seconds() * 1000), 86_400_000)
    if days <= 0:
        return ZERO
    return Decimal(math.floor(Fraction(abs_yield) * 365 / days * 10**4 + Fraction(1, 2))).scaleb(-4)
