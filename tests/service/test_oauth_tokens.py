"""The token lifecycle in the service, where concurrent requests meet: a property test that no
sequence of refreshes, reuses and revocations leaves two live access tokens for one grant, and
two refreshes racing with one token (one wins, the grant is then revoked as reuse)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from stakehouse.config import Settings
from stakehouse.db.tables import oauth_tokens
from stakehouse.errors import DomainError
from stakehouse.oauth.service import OAuthService
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    path = tmp_path_factory.mktemp("oauth") / "tokens.db"
    s = Services(Settings(database_url=f"sqlite:///{path}", sandbox=True, server_key=new_server_key()))
    yield s
    s.close()


def new_grant(s: Services) -> tuple[str, str, str]:
    """(client_id, access, refresh) of a fresh grant made through the code path."""
    broker = s.accounts.create_user()
    s.fd_brokers.set_up(broker.uid, code=None, types=("oauth",), ratio=Decimal("0.3"), client_ratio=Decimal(0))
    client, _ = s.oauth.register_client(broker.uid, name="App", redirect_uris=["https://a.example/cb"],
                                        scopes=["read_only", "trade"])
    user = s.accounts.create_user()
    code = secrets.token_urlsafe(16)
    s.oauth.save_code(code, client_id=client.client_id, uid=user.uid, redirect_uri="https://a.example/cb",
                      scope="read_only trade", code_challenge=None, code_challenge_method=None, fast_api=False)
    found = s.oauth.code(code, client.client_id)
    assert found is not None
    access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    s.oauth.issue_for_code(found, access=access, refresh=refresh, term_id=None)
    return client.client_id, access, refresh


def live_pairs(s: Services, oauth: OAuthService, grant_id: int) -> int:
    now = s.clock.now()
    t = oauth_tokens.c
    with s.db.read() as conn:
        return int(conn.execute(select(func.count()).where(
            t.grant_id == grant_id, t.superseded_at.is_(None), t.revoked_at.is_(None),
            t.access_expires_at > now)).scalar_one())


def usable(oauth: OAuthService, access: str) -> bool:
    try:
        oauth.bearer(access)
        return True
    except DomainError:
        return False


STEPS = st.lists(st.tuples(st.sampled_from(["refresh_latest", "refresh_old", "revoke_latest", "revoke_old"]),
                           st.integers(min_value=0, max_value=10)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STEPS)
def test_no_sequence_leaves_two_live_access_tokens(services: Services, steps: list[tuple[str, int]]) -> None:
    s = services
    client_id, access, refresh = new_grant(s)
    grant_id = s.oauth.bearer(access).grant.id
    issued = [(access, refresh)]
    for action, pick in steps:
        old_access, old_refresh = issued[pick % len(issued)]
        latest_access, latest_refresh = issued[-1]
        target = latest_refresh if action.endswith("latest") else old_refresh
        if action.startswith("refresh"):
            pair = s.oauth.refresh_token(target, client_id)
            if pair is not None:
                new = (secrets.token_urlsafe(16), secrets.token_urlsafe(16))
                try:
                    s.oauth.rotate(pair, access=new[0], refresh=new[1])
                    issued.append(new)
                except DomainError:
                    pass
        else:
            pair = s.oauth.find_token(target if pick % 2 else (latest_access if action.endswith("latest")
                                                                 else old_access))
            if pair is not None:
                s.oauth.revoke_pair(pair)
        assert live_pairs(s, s.oauth, grant_id) <= 1
        assert sum(usable(s.oauth, a) for a, _ in issued) <= 1
        # only the newest pair can ever be the usable one
        assert all(not usable(s.oauth, a) for a, _ in issued[:-1])


def test_two_refreshes_racing_with_one_token(services: Services) -> None:
    s = services
    client_id, access, refresh = new_grant(s)
    pair = s.oauth.refresh_token(refresh, client_id)
    assert pair is not None
    results: list[str] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        new = (secrets.token_urlsafe(16), secrets.token_urlsafe(16))
        barrier.wait()
        try:
            s.oauth.rotate(pair, access=new[0], refresh=new[1])
            results.append("won:" + new[0])
        except DomainError:
            results.append("lost")

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.split(":")[0] for r in results) == ["lost", "won"]
    winner = next(r.split(":", 1)[1] for r in results if r.startswith("won"))
    # the loser presented a used token: reuse, so the whole grant (the winner's new pair too) is revoked
    assert not usable(s.oauth, winner) and not usable(s.oauth, access)
