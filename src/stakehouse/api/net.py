"""What the API adapters share about HTTP: the client address (the socket peer, or
``X-Forwarded-For`` when the peer is a trusted proxy) and their one routing-table endpoint."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class AnyMethod:
    """An ASGI endpoint answering every HTTP method through ``handler(request) -> Response``.

    Starlette limits a plain function endpoint to the methods it lists and answers the others itself
    (405 ``{"detail": ...}``); an adapter answers every method in its own envelope instead (TRACE
    included). Being an ASGI app, it also skips Starlette's per-request wrapper of function
    endpoints."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


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
