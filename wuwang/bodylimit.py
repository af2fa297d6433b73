"""A limit on request bodies, enforced as they arrive — before any route, any parser,
any authentication sees them.

A request whose ``Content-Length`` is over the limit is answered 413 without reading a
byte of its body; a chunked (or lying) one is cut off as soon as what arrived passes the
limit: at most the limit plus one read of the server (uvicorn hands bodies over in
reads of up to 64 KiB) is ever held, whatever the client sends. Pure ASGI, so the
command service (FastAPI) and the map console (Dash on FastAPI) share it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its limit; the middleware answers 413."""


def limit_for(path: str, default: int, by_prefix: Mapping[str, int]) -> int:
    """The limit of a path: the longest matching prefix's, else ``default`` (pure)."""
    best, limit = -1, default
    for prefix, value in by_prefix.items():
        if path.startswith(prefix) and len(prefix) > best:
            best, limit = len(prefix), value
    return limit


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``default`` bytes (or the limit of
    the longest matching path prefix in ``by_prefix``, e.g. uploads)."""

    def __init__(self, app: ASGIApp, default: int, by_prefix: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.by_prefix = dict(by_prefix or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""), self.default, self.by_prefix)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        seen = 0
        tripped = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, tripped
            if tripped:  # never read on once refused: the rest stays in the socket
                raise BodyTooLarge
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    tripped = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:  # whatever the app made of the exception, the answer is 413
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not tripped:
                raise
        if tripped and not started:
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
