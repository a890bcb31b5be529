"""Operator controls: withdrawals (seed 004)."""

from __future__ import annotations

from fastapi import APIRouter

from stakehouse.services import Services


def build_withdrawals_admin(r: APIRouter, services: Services) -> None:
    """Add the withdrawals routes to the admin router ``r``."""
