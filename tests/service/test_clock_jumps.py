"""Production clock jumps (issue 19, faults): two production processes on one database, a job
worker and an API worker, each with its own host clock (``Services(wall=...)``).

- The API host's clock is 3 s behind the job worker's. The job worker runs day D's reward run at
  its 00:00:01; a redemption the API host then takes, at its 23:59:58 of day D, must not be
  stamped inside D (D's rewards were computed without it): it is stamped at D's end, in D+1, and
  D+1's run sees it. D's reward row, the journal and the audit agree.
- The API host's clock is then stepped back two hours: nothing it writes is stamped before what
  it wrote already.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from stakehouse.config import Settings
from stakehouse.db.tables import journal_entries
from stakehouse.security import new_server_key
from stakehouse.wiring import Services

#: 10:00 in the business time zone (Europe/Istanbul, UTC+3) of day D0.
T0 = dt.datetime(2031, 3, 10, 7, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


class Host:
    """A host's clock that the test sets."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


@pytest.fixture
def hosts(backend: str, make_db: Callable[[str], str]) -> Iterator[tuple[Services, Host, Services, Host]]:
    url, key = make_db(backend), new_server_key()
    job_host, api_host = Host(T0), Host(T0)

    def production(host: Host) -> Services:
        return Services(Settings(database_url=url, sandbox=False, server_key=key, admin_token="t",
                                 log_level="WARNING", key_expiry_enabled=False), wall=host)

    api = production(api_host)
    job = production(job_host)
    yield job, job_host, api, api_host
    api.close()
    job.close()


def entry_at(svc: Services, ord_id: str) -> dt.datetime:
    with svc.db.read() as conn:
        at: dt.datetime = conn.execute(select(journal_entries.c.created_at).where(
            journal_entries.c.type == "staking_redeem", journal_entries.c.ref == ord_id)).scalar_one()
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def test_a_host_behind_never_stamps_into_a_period_already_run(
        hosts: tuple[Services, Host, Services, Host]) -> None:
    job, job_host, api, api_host = hosts
    d0 = api.staking.today()
    d1, d2 = d0 + dt.timedelta(days=1), d0 + dt.timedelta(days=2)
    user = api.accounts.create_user(kyc_level=2, accept_terms=("ETH",)).uid
    api.chain.credit_deposit(user, "ETH", Decimal(10))
    api.staking.purchase(user, "ETH", Decimal(4))
    api.staking.publish_rate("ETH", d0, Decimal("0.0365"))  # carried forward to D1 and D2

    # the job worker's host reaches D1's end (plus a second): D0's and D1's runs
    job_host.moment = api.staking.day_end(d1) + SECOND
    ran = {(r.job, r.period) for r in job.runner.run_due()}
    assert ("staking_rewards:ETH", d1.isoformat()) in ran
    day1 = {r["day"]: r for r in api.staking.rewards_of(user, "ETH")}[d1.isoformat()]
    assert day1["eligible"] == 4  # held all of D1

    # the API host is 3 s behind: its redemption is taken after D1's run, so it belongs to D2
    api_host.moment = api.staking.day_end(d1) - 3 * SECOND
    order = api.staking.redeem(user, "ETH", Decimal(3))
    assert order.fast and order.request_time == api.staking.day_end(d1)
    assert entry_at(api, order.ord_id) == api.staking.day_end(d1)
    assert api.clock.now() == api.staking.day_end(d1)  # held at the floor until its wall gets there
    assert api.clock.wall() == api_host.moment  # requests are still signed against the host's clock

    # the host is stepped back two hours: its stamps do not go back
    api_host.moment -= dt.timedelta(hours=2)
    second = api.staking.redeem(user, "ETH", Decimal("0.5"))
    assert second.request_time == api.staking.day_end(d1)
    api_host.moment = api.staking.day_end(d1) + 5 * SECOND  # the wall catches up: time moves again
    assert api.clock.now() == api_host.moment

    job_host.moment = api.staking.day_end(d2) + SECOND
    job.runner.run_due()
    rows = {r["day"]: r["eligible"] for r in api.staking.rewards_of(user, "ETH")}
    # the redemptions count in D2: what is left of the 4 bought, and D1's reward paid at D1's end
    assert (rows[d1.isoformat()], rows[d2.isoformat()]) == (4, Decimal("0.5") + day1["net"])
    for svc in (api, job):
        report = svc.audit()
        assert report.ok, report.as_dict()
