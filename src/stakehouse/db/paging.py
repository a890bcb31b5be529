"""OKX cursor paging, shared by every history: on a time column (staking orders, deposits,
withdrawals) or on an id (orders by ``ordId``, fills by ``billId``). Both follow the conventions'
decision (§9.9): newest first, and with ``before`` the newest ``limit`` rows past the cursor."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select

_MS = dt.timedelta(milliseconds=1)


def newest_first(q: Select[Any], at: ColumnElement[Any], ident: ColumnElement[Any], *, after: dt.datetime | None,
                 before: dt.datetime | None, limit: int) -> Select[Any]:
    """``q`` newest first, at most ``limit`` rows: ``after`` keeps rows strictly older than the
    cursor, ``before`` rows strictly newer. Cursors are the wire's whole milliseconds, so "newer"
    starts at the next millisecond: a row stored 0.4 ms after the cursor shows the cursor's own
    ``ts`` and is not newer."""
    if after is not None:
        q = q.where(at < after)
    if before is not None:
        q = q.where(at >= before + _MS)
    return q.order_by(at.desc(), ident.desc()).limit(limit)


def newest_first_by_id(q: Select[Any], ident: ColumnElement[Any], *, after: int | None, before: int | None,
                       limit: int) -> Select[Any]:
    """``q`` newest (highest id) first, at most ``limit`` rows: ``after`` keeps rows with a smaller id
    than the cursor, ``before`` rows with a larger one."""
    if after is not None:
        q = q.where(ident < after)
    if before is not None:
        q = q.where(ident > before)
    return q.order_by(ident.desc()).limit(limit)
