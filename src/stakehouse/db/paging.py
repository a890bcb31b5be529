"""OKX cursor paging on a time column, shared by every history (staking orders, deposits,
withdrawals)."""

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
