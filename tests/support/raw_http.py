"""HTTP/1.1 requests written byte for byte over one TCP connection (h11 parses the replies).

For what ordinary clients cannot send or cannot show: an absolute-form request target, and whether
the server kept the connection open after a reply (several requests on one socket)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(base_url: str, *requests: bytes, timeout: float = 30) -> list[Reply]:
    """Send each raw request (a whole ``METHOD target HTTP/1.1`` message) on ONE connection, in
    turn, and return the replies. Raises ``ConnectionError`` when the server closes the connection
    before every request was answered."""
    url = urlsplit(base_url)
    replies: list[Reply] = []
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout) as sock:
        conn = h11.Connection(h11.CLIENT)
        for index, raw in enumerate(requests):
            if index:
                if (conn.our_state, conn.their_state) != (h11.DONE, h11.DONE):
                    raise ConnectionError("the server announced it closes the connection")
                conn.start_next_cycle()
            sock.sendall(raw)
            # h11 must see the request to read the reply: feed it our own bytes as sent
            _feed_request(conn, raw)
            replies.append(_read_reply(conn, sock))
    return replies


def _feed_request(conn: h11.Connection, raw: bytes) -> None:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    headers = [tuple(line.split(b": ", 1)) for line in lines[1:] if line]
    conn.send(h11.Request(method=method, target=target, headers=headers))
    if body:
        conn.send(h11.Data(data=body))
    conn.send(h11.EndOfMessage())


def _read_reply(conn: h11.Connection, sock: socket.socket) -> Reply:
    status, headers, body = 0, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return Reply(status, headers, body)
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionError("the server closed the connection")


def request(method: str, target: str, host: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """A raw request message (``Content-Length`` added for a body)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
