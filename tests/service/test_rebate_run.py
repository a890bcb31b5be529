"""The ND rebate run on a real database: exactly once with two workers racing for it (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.db.tables import fd_rebate_records, nd_rebate_records
from stakehouse.security import new_server_key
from stakehouse.trading.service import PlaceRequest
from stakehouse.wiring import Services
from tests.service.test_provider_staking import START, open_services
from tests.service.test_trading_concurrency import at_once

D = Decimal
HKT = dt.timezone(dt.timedelta(hours=8))


def day_of_fills(s: Services) -> tuple[str, list[str]]:
    """A broker with three sub-accounts that each buy BTC once; the broker's uid and theirs."""
    s.prices.set_price("BTC-USDT", D(60000))
    broker = s.accounts.create_user(kyc_level=2).uid
    s.broker.set_broker(broker, level=1)
    subs = []
    for i in range(3):
        sub = s.accounts.create_sub_account(parent_uid=broker, sub_name=f"run{i}{broker[-6:]}").uid
        s.chain.credit_deposit(sub, "USDT", D(1000))
        s.assets.transfer(sub, TransferRequest(ccy="USDT", amt=D(1000), from_type=6, to_type=18))
        s.trading.place(sub, PlaceRequest("BTC-USDT", "cash", "buy", "market", D("0.01"), None, "base_ccy"))
        subs.append(sub)
    return broker, subs


def next_hkt_midnight(t: dt.datetime) -> dt.datetime:
    local = t.astimezone(HKT)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), HKT).astimezone(dt.UTC)


def records(s: Services) -> int:
    with s.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(nd_rebate_records)).scalar_one())


def test_two_workers_run_the_day_once(make_db: Callable[[str], str]) -> None:
    url = make_db("postgres")
    s = open_services(url, START)
    other = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="t",
                              log_level="WARNING"))
    try:
        broker, _subs = day_of_fills(s)
        s.sandbox_clock.set_to(next_hkt_midnight(START) + dt.timedelta(minutes=1))  # type: ignore[union-attr]
        got = at_once([s.runner.run_due, other.runner.run_due, s.runner.run_due, other.runner.run_due])
        assert not [g for g in got if isinstance(g, Exception)], got
        ran = [r for batch in got for r in batch if r.job == "nd_rebates"]
        assert len(ran) == 1 and "3 sub-accounts" in ran[0].result
        assert records(s) == 3
        # 3 fills of 0.6 USDT of base fee, 40 % each: 0.72 USDT paid once
        assert {b.ccy: b.available for b in s.assets.balances(broker, 6)}["USDT"] == D("0.72")
        assert s.audit().ok, s.audit().as_dict()
    finally:
        other.close()
        s.close()


def test_two_workers_write_a_detail_file_once(make_db: Callable[[str], str], tmp_path: Path) -> None:
    url = make_db("postgres")
    files = tmp_path / "files"
    s = open_services(url, START, files_dir=str(files))
    other = Services(Settings(database_url=url, sandbox=True, server_key=s.settings.server_key, admin_token="t",
                              log_level="WARNING", files_dir=str(files)))
    try:
        broker, _subs = day_of_fills(s)
        day = START.astimezone(HKT).date()
        s.sandbox_clock.set_to(next_hkt_midnight(START) + dt.timedelta(minutes=1))  # type: ignore[union-attr]
        s.runner.run_due()
        assert other.rebate_files.request(broker, "nd", day, day + dt.timedelta(days=1)) == (False, s.clock.now())
        got = at_once([s.runner.run_due, other.runner.run_due, s.runner.run_due, other.runner.run_due])
        assert not [g for g in got if isinstance(g, Exception)], got
        written = [r for batch in got for r in batch if r.job == "rebate_files"]
        assert [r.result for r in written] == ["1 done"]
        [listed] = other.rebate_files.files(broker, "nd", "http://x")
        assert listed.state == "finished" and [p.name for p in files.iterdir()] == [listed.href.split("/")[-1]
                                                                                    .split("?")[0]]
        assert s.audit().ok, s.audit().as_dict()
    finally:
        other.close()
        s.close()


def test_an_fd_users_monthly_cap_covers_both_broker_types(backend: str, make_db: Callable[[str], str]) -> None:
    """A user at a capped level whose day has fills for an FD broker of both types (one with an API key,
    one with a token of the broker's OAuth client): its two day records share what is left of the cap
    (the api record takes it first), so the day pays the cap, not twice the cap."""
    s = open_services(make_db(backend), START)
    try:
        s.prices.set_price("BTC-USDT", D(60000))
        broker = s.accounts.create_user(kyc_level=2).uid
        code = s.fd_brokers.set_up(broker, code=None, types=("api", "oauth"), ratio=D("0.5"), client_ratio=D(0)).code
        client, _ = s.oauth.register_client(broker, name="App", redirect_uris=["https://a.example/cb"],
                                            scopes=["read_only", "trade"])
        user = s.accounts.create_user(kyc_level=2).uid
        s.trading.set_account_level(user, "VIP4")
        s.rebates.set_cap("VIP4", D("0.1"))
        s.chain.credit_deposit(user, "USDT", D(2000))
        s.assets.transfer(user, TransferRequest(ccy="USDT", amt=D(2000), from_type=6, to_type=18))
        for auth, key in (("api", ""), ("oauth", client.client_id)):  # each fill alone earns more than the cap
            s.trading.place(user, PlaceRequest("BTC-USDT", "cash", "buy", "market", D("0.01"), None, "base_ccy",
                                               tag=code, auth=auth, api_key=key))
        s.advance_clock(to=next_hkt_midnight(START) + dt.timedelta(minutes=1))
        with s.db.read() as conn:
            got = {r.broker_type: r.broker_rebate + r.user_rebate for r in conn.execute(
                select(fd_rebate_records).where(fd_rebate_records.c.uid == user))}
        assert got == {"api": D("0.1"), "oauth": D(0)}
        assert {b.ccy: b.available for b in s.assets.balances(broker, 6)}.get("USDT") == D("0.1")
        assert s.audit().ok, s.audit().as_dict()
    finally:
        s.close()
