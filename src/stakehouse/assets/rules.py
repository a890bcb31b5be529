"""Reference data as values (pure): currencies, chains and spot instruments, and the defaults a
first start seeds. The database rows are read into these by ``reference.py``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Currency:
    ccy: str
    name: str
    scale: int


@dataclass(frozen=True)
class Chain:
    ccy: str
    name: str
    chain: str
    main_net: bool
    can_dep: bool
    can_wd: bool
    can_internal: bool
    need_tag: bool
    min_dep: Decimal
    min_wd: Decimal
    max_wd: Decimal
    wd_tick_sz: int
    fee: Decimal
    confirmations: int
    unlock_confirmations: int
    block_seconds: int
    address_format: str


@dataclass(frozen=True)
class Instrument:
    inst_id: str
    base_ccy: str
    quote_ccy: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    max_sz: Decimal
    list_time: dt.datetime
    state: str


D = Decimal
#: ccy, name, scale, [(chain suffix, confirmations to credit, confirmations to unlock, fee, min_dep, min_wd,
#: max_wd, need_tag, seconds per block, address format)]. The first chain is the main one.
ChainRow = tuple[str, int, int, Decimal, Decimal, Decimal, Decimal, bool, int, str]
DEFAULT_CURRENCIES: list[tuple[str, str, int, list[ChainRow]]] = [
    ("BTC", "Bitcoin", 8, [("Bitcoin", 1, 2, D("0.0002"), D("0.00005"), D("0.001"), D("500"), False, 600, "btc")]),
    ("ETH", "Ethereum", 18, [("ERC20", 12, 64, D("0.0016"), D("0.00000001"), D("0.005"), D("10000"), False, 12,
                              "evm")]),
    ("SOL", "Solana", 9, [("Solana", 32, 32, D("0.008"), D("0.01"), D("0.1"), D("100000"), False, 1, "sol")]),
    ("USDT", "Tether", 6, [("TRC20", 20, 20, D("1"), D("0.1"), D("10"), D("10000000"), False, 3, "tron"),
                           ("ERC20", 12, 64, D("3"), D("1"), D("10"), D("10000000"), False, 12, "evm")]),
    ("USDC", "USD Coin", 6, [("ERC20", 12, 64, D("3"), D("1"), D("10"), D("10000000"), False, 12, "evm")]),
    ("XRP", "Ripple", 6, [("Ripple", 1, 1, D("0.2"), D("0.01"), D("20"), D("1000000"), True, 4, "xrp")]),
    ("BETH", "Beacon ETH", 8, []),
    ("OKSOL", "OKX staked SOL", 8, []),
]

#: instId, base, quote, tick, lot, min size, max size
DEFAULT_INSTRUMENTS = [
    ("BTC-USDT", "BTC", "USDT", D("0.1"), D("0.00000001"), D("0.00001"), D("9999999999")),
    ("ETH-USDT", "ETH", "USDT", D("0.01"), D("0.000001"), D("0.0001"), D("9999999999")),
    ("SOL-USDT", "SOL", "USDT", D("0.01"), D("0.000001"), D("0.001"), D("9999999999")),
    ("ETH-BTC", "ETH", "BTC", D("0.00001"), D("0.000001"), D("0.0001"), D("9999999999")),
]
