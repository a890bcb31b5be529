"""Operator controls: chain (seed 004)."""

from __future__ import annotations

from fastapi import APIRouter

from stakehouse.services import Services


def build_chain_admin(r: APIRouter, services: Services) -> None:
    """Add the chain routes to the admin router ``r``."""
