"""Currencies, chains and spot instruments: operator reference data, seeded on first start."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.engine import Database
from stakehouse.db.tables import chains, currencies, instruments
from stakehouse.errors import InvalidParameter
from stakehouse.ledger.journal import dialect_insert


@dataclass(frozen=True)
class Currency:
    ccy: str
    name: str
    scale: int


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


def seed_reference_data(conn: Connection, now: dt.datetime) -> None:
    """Insert the default currencies, chains and instruments that are not there yet."""
    insert = dialect_insert(conn)
    for ccy, name, scale, chain_rows in DEFAULT_CURRENCIES:
        conn.execute(insert(currencies).values(ccy=ccy, name=name, scale=scale).on_conflict_do_nothing())
        for index, (suffix, confirmations, unlock, fee, min_dep, min_wd, max_wd, need_tag, block_seconds,
                    address_format) in enumerate(chain_rows):
            conn.execute(insert(chains).values(
                ccy=ccy, chain=f"{ccy}-{suffix}", main_net=index == 0, can_dep=True, can_wd=True,
                can_internal=True, need_tag=need_tag, min_dep=min_dep, min_wd=min_wd, max_wd=max_wd,
                wd_tick_sz=min(scale, 8), fee=fee, confirmations=confirmations, unlock_confirmations=unlock,
                block_seconds=block_seconds, address_format=address_format).on_conflict_do_nothing())
    for inst_id, base, quote, tick, lot, min_sz, max_sz in DEFAULT_INSTRUMENTS:
        conn.execute(insert(instruments).values(
            inst_id=inst_id, base_ccy=base, quote_ccy=quote, tick_sz=tick, lot_sz=lot, min_sz=min_sz,
            max_sz=max_sz, list_time=now, state="live").on_conflict_do_nothing())


def currency(conn: Connection, ccy: str, field: str = "ccy") -> Currency:
    row = conn.execute(select(currencies).where(currencies.c.ccy == ccy)).first()
    if row is None:
        raise InvalidParameter(field, f"unknown currency {ccy[:16]}")
    return Currency(row.ccy, row.name, row.scale)


def all_currencies(conn: Connection) -> dict[str, Currency]:
    return {r.ccy: Currency(r.ccy, r.name, r.scale) for r in conn.execute(select(currencies))}


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


class ReferenceData:
    """Read access to the operator's currencies, chains and instruments."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def require_currencies(self, ccys: list[str], field: str = "ccy") -> None:
        """Raise :class:`InvalidParameter` naming ``field`` unless every currency is listed."""
        with self.db.query() as conn:
            known = set(conn.execute(select(currencies.c.ccy).where(currencies.c.ccy.in_(ccys))).scalars())
        unknown = [c for c in ccys if c not in known]
        if unknown:
            raise InvalidParameter(field, f"unknown currency {unknown[0]}")

    def chains(self, ccys: list[str]) -> list[Chain]:
        """Every chain of the currencies (all when empty), main chain first."""
        q = (select(chains, currencies.c.name).join(currencies, currencies.c.ccy == chains.c.ccy)
             .order_by(chains.c.ccy, chains.c.main_net.desc(), chains.c.chain))
        if ccys:
            q = q.where(chains.c.ccy.in_(ccys))
        with self.db.query() as conn:
            return [Chain(**{f: getattr(r, f) for f in Chain.__dataclass_fields__}) for r in conn.execute(q)]

    def instruments(self, inst_id: str = "") -> list[Instrument]:
        q = select(instruments).order_by(instruments.c.inst_id)
        if inst_id:
            q = q.where(instruments.c.inst_id == inst_id)
        with self.db.query() as conn:
            return [Instrument(**{f: getattr(r, f) for f in Instrument.__dataclass_fields__})
                    for r in conn.execute(q)]


def _chain_from_row(r: object) -> Chain:
    return Chain(**{f: getattr(r, f) for f in Chain.__dataclass_fields__})


def chain_row(conn: Connection, ccy: str, chain: str = "", *, field: str = "chain") -> Chain:
    """The chain ``chain`` of ``ccy`` (its main chain when ``chain`` is empty). Raises
    :class:`InvalidParameter` naming ``ccy`` for an unknown currency or one without chains, and
    ``field`` for an unknown chain or a chain of another currency."""
    currency(conn, ccy)
    q = select(chains, currencies.c.name).join(currencies, currencies.c.ccy == chains.c.ccy).where(chains.c.ccy == ccy)
    q = q.where(chains.c.chain == chain) if chain else q.where(chains.c.main_net.is_(True))
    row = conn.execute(q).first()
    if row is None:
        if chain:
            raise InvalidParameter(field, f"unknown chain {chain[:48]} for {ccy}")
        raise InvalidParameter("ccy", f"{ccy} has no chain")
    return _chain_from_row(row)


def chain_by_name(conn: Connection, chain: str) -> Chain | None:
    """A chain by its name (e.g. ``USDT-TRC20``), or ``None``."""
    row = conn.execute(select(chains, currencies.c.name).join(currencies, currencies.c.ccy == chains.c.ccy)
                       .where(chains.c.chain == chain)).first()
    return _chain_from_row(row) if row else None


#: Chain settings the operator may change (``Chain`` field names).
CHAIN_SETTINGS = ("confirmations", "unlock_confirmations", "fee", "min_dep", "min_wd", "max_wd", "block_seconds",
                  "can_dep", "can_wd")


def update_chain(conn: Connection, chain: str, values: dict[str, object]) -> Chain:
    """Store new settings of a chain (validated by the caller) and return it."""
    unknown = set(values) - set(CHAIN_SETTINGS)
    if unknown:
        raise ValueError(f"not chain settings: {sorted(unknown)}")
    if values:
        conn.execute(chains.update().where(chains.c.chain == chain).values(**values))
    found = chain_by_name(conn, chain)
    assert found is not None
    return found
