"""Every OKX route, in one table (method, path, permission, rate limit, handler)."""

from stakehouse.api.okx.app import Route
from stakehouse.api.okx.routes import (
    account,
    asset,
    broker,
    dcd,
    funding,
    market,
    oauth,
    public,
    rebates,
    staking,
    trade,
    withdrawal,
)

ALL: list[Route] = [*public.ROUTES, *asset.ROUTES, *account.ROUTES, *staking.ROUTES, *broker.ROUTES,
                    *funding.ROUTES, *withdrawal.ROUTES, *market.ROUTES, *trade.ROUTES,
                    *rebates.ROUTES, *dcd.ROUTES, *oauth.ROUTES]
