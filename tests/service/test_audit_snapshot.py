"""The audit reads one snapshot of the database: run while transfers commit around it, it still
finds the books in order (on PostgreSQL each statement of a READ COMMITTED transaction would see
a newer state, and a transfer committing between its two reads looked like a broken ledger; the
load test found that)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


def test_the_audit_is_clean_while_transfers_commit(make_db: Callable[[str], str], backend: str) -> None:
    s = Services(Settings(database_url=make_db(backend), sandbox=True, server_key=new_server_key()))
    try:
        uids = []
        for n in range(4):
            uid = s.accounts.create_user(kyc_level=2).uid
            s.chain.credit_deposit(uid, "USDT", Decimal(1000), idempotency_key=f"snap-{n}")
            uids.append(uid)
        stop = threading.Event()
        moved = [0]

        def churn(uid: str) -> None:
            while not stop.is_set():
                for a, b in ((6, 18), (18, 6)):
                    s.assets.transfer(uid, TransferRequest(ccy="USDT", amt=Decimal("0.01"), from_type=a, to_type=b))
                    moved[0] += 1

        threads = [threading.Thread(target=churn, args=(u,)) for u in uids]
        for t in threads:
            t.start()
        failures = []
        deadline = time.monotonic() + 4
        audits = 0
        while time.monotonic() < deadline:
            report = s.audit()
            audits += 1
            failures += [c.name for c in report.checks if not c.ok]
        stop.set()
        for t in threads:
            t.join()
        assert moved[0] > 50 and audits > 3, (moved, audits)  # the audit really ran among the writes
        assert failures == []
        assert s.audit().ok
    finally:
        s.close()
