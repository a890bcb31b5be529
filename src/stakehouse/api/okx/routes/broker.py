"""OKX routes: broker (seed 004)."""

from __future__ import annotations

from stakehouse.api.okx.app import Route

ROUTES: list[Route] = []
