"""Operator controls: broker (seed 004)."""

from __future__ import annotations

from fastapi import APIRouter

from stakehouse.services import Services


def build_broker_admin(r: APIRouter, services: Services) -> None:
    """Add the broker routes to the admin router ``r``."""
