"""Currencies, chains and spot instruments: operator reference data, seeded on first start."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select

from stakehouse.assets.rules import DEFAULT_CURRENCIES, DEFAULT_INSTRUMENTS, Chain, Currency, Instrument
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import chains, currencies, instruments
from stakehouse.errors import InvalidParameter


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
