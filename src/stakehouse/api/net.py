"""Client address: the socket peer, or ``X-Forwarded-For`` when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request


def _trusted(peer: str, trusted: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(entry, strict=False) for entry in trusted)


def client_ip(request: Request, trusted: list[str]) -> str:
    client = request.scope.get("client")
    peer = client[0] if client else ""
    if trusted and _trusted(peer, trusted):
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return peer
