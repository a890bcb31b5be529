"""Rebate detail files (``rebate-per-orders``, spec §6): the CSV a broker asks for, written by the
event source ``rebate_files``, kept in the files directory and downloaded through signed links
that expire.

A file covers the HKT days ``[begin, end)`` that the daily run had settled when it was written:
one row per fill (one fill per order here) of those days, its rebate the fill's share of the day's
record (:func:`rules.allocate`), so that the rows of a day add up to what was paid for it (the
audit checks it, spec §8 invariant 2). Rows are ordered by sub-account (or user), then time.

Exactly once: the file is written to a temporary name first; a transaction then claims the row
(``ongoing`` -> ``finished``) and moves the file into place. A second worker that lost the claim
deletes its copy; a crash before the commit leaves the row ``ongoing`` and the file is written
again (same name, same content). A file that cannot be written (a full disk) stays ``ongoing``, its
partial copy deleted, and is tried again at the next job tick; the other jobs go on meanwhile.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, func, select

from stakehouse.broker.access import broker_caller, broker_sub_accounts
from stakehouse.clock import Clock, to_ms
from stakehouse.db.engine import Database
from stakehouse.db.tables import fd_brokers, fd_rebate_records, fills, nd_rebate_records, rebate_files
from stakehouse.errors import Refused
from stakehouse.money import ZERO, to_plain
from stakehouse.rebates import rules
from stakehouse.rebates.fd import broker_type_of, fd_caller
from stakehouse.rebates.rules import RebateReason
from stakehouse.rebates.runs import fd_fills

log = structlog.get_logger(__name__)

#: When the earliest file still being made was asked for (read on every poll of the job runner; built
#: once: "Prebuilt statements" in docs/architecture.md).
_FIRST_ONGOING = (select(rebate_files.c.requested_at).where(rebate_files.c.state == "ongoing")
                  .order_by(rebate_files.c.requested_at).limit(1))


ND_COLUMNS = ("subAcct", "instId", "ordId", "tradeId", "amt", "fee", "execType", "rebate", "rebateCat", "netFee",
              "markupFee", "ts")
FD_COLUMNS = ("brokerCode", "level", "instId", "ordId", "spotTradeAmt", "derivativeTradeAmt", "fee", "netFee",
              "settlementFee", "brokerRebate", "suBrokerRebate", "userRebate", "affiliated", "ts")
#: How long a download link lives (the seed: ND 9 hours, FD 2 hours).
LINK_LIFETIME = {"nd": dt.timedelta(hours=9), "fd": dt.timedelta(hours=2)}
#: Fills are read this many at a time.
READ_BATCH = 5000


def day_start(day: dt.date) -> dt.datetime:
    """00:00 HKT of ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(), rules.HKT).astimezone(dt.UTC)


@dataclass(frozen=True)
class FileSpec:
    id: int
    broker_uid: str
    kind: str  # nd | fd
    broker_type: str  # "" for nd
    begin: dt.date
    end: dt.date  # exclusive

    @property
    def name(self) -> str:
        """The file's name: ``<kind>-<id>-RebateDetails<begin>-<last day>.csv`` (the seed's pattern)."""
        last = self.end - dt.timedelta(days=1)
        return f"{self.kind}-{self.id}-RebateDetails{self.begin:%Y%m%d}-{last:%Y%m%d}.csv"


def spec_of(row: Any) -> FileSpec:
    return FileSpec(row.id, row.broker_uid, row.kind, row.broker_type, rules.parse_day(row.begin_day, "begin"),
                    rules.parse_day(row.end_day, "end"))


class FileStore:
    """The files directory and the links to it: ``<base>/files/rebates/<name>?Expires=<unix
    seconds>&Signature=<HMAC-SHA256 of name and expiry>``; whoever has the link may download the file
    until it expires."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory = directory
        self._key = key

    def path(self, name: str) -> Path:
        return self.directory / name

    def signature(self, name: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{name}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def link(self, base_url: str, name: str, expires: dt.datetime) -> str:
        at = int(expires.timestamp())
        return f"{base_url.rstrip('/')}/files/rebates/{name}?Expires={at}&Signature={self.signature(name, at)}"

    def open(self, name: str, expires: str, signature: str, now: dt.datetime) -> Path | None:
        """The file a link names, if the link is genuine and unexpired and the file exists."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return None
        if not hmac.compare_digest(self.signature(name, int(expires)).encode(), signature.encode("utf-8", "replace")):
            return None
        if int(expires) <= now.timestamp():
            return None
        path = self.path(name)
        return path if path.is_file() else None


def _days(records: Any) -> dict[tuple[str, str], Any]:
    return {(r.uid, r.day): r for r in records}


def _by_user_day(rows: Any) -> Iterator[tuple[tuple[str, str], list[Any]]]:
    """Consecutive fills of one user and one HKT day (rows ordered by user, then time)."""
    for key, group in itertools.groupby(rows, lambda r: (r.uid, rules.hkt_day(r.ts).strftime("%Y%m%d"))):
        yield key, list(group)


def nd_rows(conn: Connection, spec: FileSpec, as_of: dt.datetime) -> Iterator[list[str]]:
    """The ND file's rows: the broker's sub-accounts' fills of the settled days in the range."""
    c = nd_rebate_records.c
    settled = _days(conn.execute(select(c.uid, c.day, c.income, c.ratio).where(
        c.broker_uid == spec.broker_uid, c.day >= f"{spec.begin:%Y%m%d}", c.day < f"{spec.end:%Y%m%d}",
        c.rebate_time <= as_of)))
    names = broker_sub_accounts(conn, spec.broker_uid)
    f = fills.c
    rows = conn.execution_options(yield_per=READ_BATCH).execute(
        select(f.uid, f.inst_id, f.ord_id, f.trade_id, f.amt_usdt, f.fee_usdt, f.exec_type, f.net_fee_usdt,
               f.markup_usdt, f.ts)
        .where(f.broker_uid == spec.broker_uid, f.ts >= day_start(spec.begin), f.ts < day_start(spec.end))
        .order_by(f.uid, f.ts, f.trade_id))
    for (uid, day), group in _by_user_day(rows):
        record = settled.get((uid, day))
        if record is None:
            continue
        raws = [rules.fill_rebate(record.ratio, g.net_fee_usdt, g.markup_usdt) for g in group]
        for g, rebate in zip(group, rules.allocate(raws, record.income), strict=True):
            yield [names.get(uid, ""), g.inst_id, str(g.ord_id), str(g.trade_id), to_plain(g.amt_usdt),
                   to_plain(g.fee_usdt), g.exec_type, to_plain(rebate), "spot", to_plain(g.net_fee_usdt),
                   to_plain(g.markup_usdt), str(to_ms(g.ts))]


def fd_rows(conn: Connection, spec: FileSpec, as_of: dt.datetime) -> Iterator[list[str]]:
    """The FD file's rows: the broker's tagged fills of its type, of the settled days in the range."""
    c = fd_rebate_records.c
    settled = _days(conn.execute(select(c.uid, c.day, c.level, c.affiliated, c.ratio, c.client_ratio,
                                        c.broker_rebate, c.user_rebate).where(
        c.broker_uid == spec.broker_uid, c.broker_type == spec.broker_type, c.day >= f"{spec.begin:%Y%m%d}",
        c.day < f"{spec.end:%Y%m%d}", c.rebate_time <= as_of)))
    code = conn.execute(select(fd_brokers.c.code).where(fd_brokers.c.uid == spec.broker_uid)).scalar_one()
    rows = conn.execution_options(yield_per=READ_BATCH).execute(
        fd_fills(conn, day_start(spec.begin), day_start(spec.end), spec.broker_uid))
    for (uid, day), group in _by_user_day(r for r in rows if r.broker_type == spec.broker_type):
        record = settled.get((uid, day))
        if record is None:
            continue
        raws = [rules.fd_fill_rebate(record.ratio, g.net_fee_usdt) for g in group]
        shares = rules.allocate(raws, record.broker_rebate + record.user_rebate)
        for g, share in zip(group, shares, strict=True):
            broker_rebate, user_rebate = rules.fd_split(share, record.client_ratio)
            yield [code, record.level, g.inst_id, str(g.ord_id), to_plain(g.amt_usdt), "0", to_plain(g.fee_usdt),
                   to_plain(g.net_fee_usdt), to_plain(g.fee_usdt), to_plain(broker_rebate), "0", to_plain(user_rebate),
                   "true" if record.affiliated else "false", str(to_ms(g.ts))]


def write_csv(conn: Connection, spec: FileSpec, as_of: dt.datetime, path: Path) -> int:
    """Write the file's CSV to ``path``; the number of rows."""
    rows = nd_rows(conn, spec, as_of) if spec.kind == "nd" else fd_rows(conn, spec, as_of)
    n = 0
    with path.open("w", newline="", encoding="ascii") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(ND_COLUMNS if spec.kind == "nd" else FD_COLUMNS)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def read_rebates(path: Path, kind: str) -> dict[tuple[str, str], Decimal]:
    """Per (sub-account name, HKT day) for ND, per ``("", HKT day)`` for FD, the sum of a written
    file's rebates (ND ``rebate``; FD ``brokerRebate + userRebate``): what the audit compares with
    the records."""
    sums: dict[tuple[str, str], Decimal] = {}
    with path.open(newline="", encoding="ascii") as f:
        for row in csv.DictReader(f):
            day = rules.hkt_day(dt.datetime.fromtimestamp(int(row["ts"]) / 1000, dt.UTC)).strftime("%Y%m%d")
            who = row["subAcct"] if kind == "nd" else ""
            amount = Decimal(row["rebate"]) if kind == "nd" else Decimal(row["brokerRebate"]) + Decimal(
                row["userRebate"])
            sums[(who, day)] = sums.get((who, day), ZERO) + amount
    return sums


class RebateFiles:
    """Event source ``rebate_files``: an ``ongoing`` file falls due ``delay`` after it was asked for
    (the sandbox: at once, the next job tick)."""

    name = "rebate_files"

    def __init__(self, db: Database, store: FileStore, delay: dt.timedelta) -> None:
        self.db = db
        self.store = store
        self.delay = delay

    def next_due(self) -> dt.datetime | None:
        with self.db.query() as conn:
            first = conn.execute(_FIRST_ONGOING).scalar_one_or_none()
        return None if first is None else first + self.delay

    def run_due(self, until: dt.datetime) -> int:
        c = rebate_files.c
        with self.db.query() as conn:
            due = [spec_of(r) for r in conn.execute(select(rebate_files).where(
                c.state == "ongoing", c.requested_at <= until - self.delay).order_by(c.requested_at, c.id))]
        return sum(self._write(spec, until) for spec in due)

    def _write(self, spec: FileSpec, until: dt.datetime) -> int:
        """Write one file as of ``until``; 1 if this process finished it."""
        self.store.directory.mkdir(parents=True, exist_ok=True)
        final = self.store.path(spec.name)
        temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            try:
                with self.db.read() as conn:
                    count = write_csv(conn, spec, until, temp)
            except OSError as exc:  # a full disk, the directory gone: the file stays ongoing and is tried again
                log.warning("rebate_file_not_written", file=spec.name, error=exc.strerror or type(exc).__name__)
                return 0
            with self.db.write() as conn:
                claimed = conn.execute(
                    rebate_files.update().where(rebate_files.c.id == spec.id, rebate_files.c.state == "ongoing")
                    .values(state="finished", finished_at=until, name=spec.name, rows=count)).rowcount
                if claimed:
                    os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        if claimed:
            log.info("rebate_file_written", file=spec.name, rows=count)
        return int(claimed)


@dataclass(frozen=True)
class FileInfo:
    begin: dt.date
    end: dt.date
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    state: str
    href: str

    @property
    def begin_time(self) -> dt.datetime:
        return day_start(self.begin)

    @property
    def end_time(self) -> dt.datetime:
        """The start of the last day covered (the seed's one-day file has ``beginTime == endTime``)."""
        return day_start(self.end - dt.timedelta(days=1))


#: A broker may ask for one new file per this long (per kind: ND, FD), by the platform's clock.
REQUEST_INTERVAL = dt.timedelta(minutes=60)


class RebateFileService:
    """Brokers ask for detail files and list them (ND: an ND broker's master key; FD: an FD
    broker's, per broker type)."""

    def __init__(self, db: Database, clock: Clock, store: FileStore) -> None:
        self.db = db
        self.clock = clock
        self.store = store

    @staticmethod
    def _caller(conn: Connection, caller_uid: str, kind: str, broker_type: str) -> tuple[str, str]:
        if kind == "nd":
            return broker_caller(conn, caller_uid).uid, ""
        broker = fd_caller(conn, caller_uid)
        return broker.uid, broker_type_of(broker, broker_type)

    def request(self, caller_uid: str, kind: str, begin: dt.date, end: dt.date, broker_type: str = ""
                ) -> tuple[bool, dt.datetime]:
        """Ask for the file of ``[begin, end)``: (whether it was asked for before, when it first was).
        A new range is refused within an hour of the broker's previous new one."""
        reason = rules.file_range(begin, end)
        if reason is not None:
            raise Refused(reason, "The time interval between the Begin Date and End Date cannot be greater than "
                                  "180 days." if reason is RebateReason.RANGE_TOO_LONG else
                                  "The Begin Date cannot be later than the End Date.")
        now = self.clock.now()
        c = rebate_files.c
        with self.db.write() as conn:
            broker_uid, broker_type = self._caller(conn, caller_uid, kind, broker_type)
            found = conn.execute(select(c.requested_at).where(
                c.broker_uid == broker_uid, c.kind == kind, c.broker_type == broker_type,
                c.begin_day == f"{begin:%Y%m%d}", c.end_day == f"{end:%Y%m%d}")).scalar_one_or_none()
            if found is not None:
                return True, found
            last = conn.execute(select(func.max(c.requested_at)).where(c.broker_uid == broker_uid, c.kind == kind)
                                ).scalar_one_or_none()
            if last is not None and now - last < REQUEST_INTERVAL:
                raise Refused(RebateReason.FILE_TOO_SOON, "Too Many Requests")
            conn.execute(rebate_files.insert().values(
                broker_uid=broker_uid, kind=kind, broker_type=broker_type, begin_day=f"{begin:%Y%m%d}",
                end_day=f"{end:%Y%m%d}", requested_at=now, state="ongoing"))
        return False, now

    def files(self, caller_uid: str, kind: str, base_url: str, *, begin: dt.date | None = None,
              end: dt.date | None = None, broker_type: str = "") -> list[FileInfo]:
        """The broker's files (those within ``[begin, end)`` when given), newest first, each finished
        one with a fresh link (ND: valid 9 hours, FD: 2 hours)."""
        now = self.clock.now()
        c = rebate_files.c
        with self.db.read() as conn:
            broker_uid, broker_type = self._caller(conn, caller_uid, kind, broker_type)
            q = select(rebate_files).where(c.broker_uid == broker_uid, c.kind == kind, c.broker_type == broker_type)
            if begin is not None and end is not None:
                q = q.where(c.begin_day >= f"{begin:%Y%m%d}", c.end_day <= f"{end:%Y%m%d}")
            rows = conn.execute(q.order_by(c.requested_at.desc(), c.id.desc())).all()
        expires = now + LINK_LIFETIME[kind]
        return [FileInfo(rules.parse_day(r.begin_day, "begin"), rules.parse_day(r.end_day, "end"), r.requested_at,
                         r.finished_at, r.state, self.store.link(base_url, r.name, expires) if r.name else "")
                for r in rows]

    def download(self, name: str, expires: str, signature: str) -> Path | None:
        """The file a download link names, if the link is genuine and unexpired."""
        return self.store.open(name, expires, signature, self.clock.now())
