"""/ws: the live stream the map console drives on.

Authentication: the access token as the first message, ``{"type": "auth", "token":
"…"}``, sent within ``COMMAND_WS_AUTH_TIMEOUT_S`` of the connection opening — never in
the URL, where access logs and proxies would keep it. Tools may instead send an
``Authorization: Bearer`` header with the handshake. ``?token=`` is still accepted from
old clients but is deprecated; the service's logs redact it
(``command.security.RedactTokens``). A browser's Origin must be one of
``COMMAND_ALLOWED_ORIGINS`` (cross-site WebSocket hijacking); clients that send no
Origin (server-side consoles, tools) are not browsers and rely on the token alone.

Protocol: after authenticating, the server subscribes the client to changes, then
sends ``{"type": "snapshot", ...}``, then one JSON change per message. A client renews
its token on the open socket by sending another ``auth`` message (same user and
session). Close codes (``command.services.live``): 4401 no, a bad, an expired or a
revoked token (log in again; the reason says which), 4403 Origin not allowed, 4408 fell
behind (reconnect at once: a fresh snapshot), 4409 took no data for
``COMMAND_WS_SEND_TIMEOUT_S`` (dropped), 1013 the server cannot stream now (Redis is
unreachable: retry later, with back-off).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from command import audit
from command.deps import authenticate
from command.security import InvalidToken, Principal
from command.services.live import (
    CLOSE_SEND_TIMEOUT,
    CLOSE_UNAUTHORISED,
    CLOSE_UNAVAILABLE,
    UNAVAILABLE_REASON,
    ClientFeed,
    LiveHub,
    snapshot_providers,
)
from command.state import CommandState

router = APIRouter()

CLOSE_FORBIDDEN_ORIGIN = 4403
#: The scope extension through which a socket that takes no data is aborted
#: (``command.app``'s ``expose_transport_abort``).
ABORT_EXTENSION = "wuwang.abort"
#: The largest first message (an auth message is a few hundred bytes).
MAX_AUTH_MESSAGE = 8192
FIRST_MESSAGE = 'send {"type": "auth", "token": "…"} first'


def _handshake_token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:]
    return websocket.query_params.get("token") or None  # deprecated: kept out of logs


def _auth_message(message: MutableMapping[str, Any]) -> str | None:
    """The token of an ``auth`` message, or None when the message is not one."""
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_AUTH_MESSAGE:
        return None
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and body.get("type") == "auth" and isinstance(body.get("token"), str):
        return str(body["token"])
    return None


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)


@router.websocket("/ws")
async def live_stream(websocket: WebSocket) -> None:
    state: CommandState = websocket.state.command
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in state.settings.command.allowed_origins:
        await audit.record_denied(state.pool, "anonymous", "ws.connect", f"origin {origin[:100]} not allowed")
        await websocket.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="origin not allowed")
        return
    hub = state.live
    token = _handshake_token(websocket)
    if token is not None:  # refused before the handshake completes, as before
        try:
            who = await authenticate(state, token)
        except InvalidToken as exc:
            await websocket.close(code=CLOSE_UNAUTHORISED, reason=exc.reason)
            return
        await websocket.accept()
    else:
        await websocket.accept()
        try:
            who = await _first_message(websocket, state)
        except InvalidToken as exc:
            await _close(websocket, CLOSE_UNAUTHORISED, exc.reason)
            return
        except WebSocketDisconnect:
            return
    if hub is None or not hub.available:  # no hub: an app started without its live worker
        await _close(websocket, CLOSE_UNAVAILABLE, UNAVAILABLE_REASON)
        if hub is not None:
            hub.count_drop("unavailable")
        return
    feed = hub.register(who)  # before the snapshot, so nothing falls between the two
    try:
        await _stream(websocket, state, hub, feed)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(feed)


async def _first_message(websocket: WebSocket, state: CommandState) -> Principal:
    try:
        message = await asyncio.wait_for(
            websocket.receive(), timeout=state.settings.command.ws_auth_timeout_s
        )
    except TimeoutError:
        raise InvalidToken(f"not authenticated: {FIRST_MESSAGE}") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    token = _auth_message(message)
    if token is None:
        raise InvalidToken(f"not authenticated: {FIRST_MESSAGE}")
    return await authenticate(state, token)


async def _stream(websocket: WebSocket, state: CommandState, hub: LiveHub, feed: ClientFeed) -> None:
    timeout = state.settings.command.ws_send_timeout_s
    try:
        await asyncio.wait_for(websocket.send_text((await _snapshot(state, feed.who)).decode()), timeout)
    except TimeoutError:
        await _drop_unread(websocket, hub)
        return
    sender = asyncio.create_task(_forward(websocket, feed.queue, timeout))
    ended = asyncio.create_task(feed.ended.wait())
    receiver = asyncio.create_task(_incoming(websocket, state, hub, feed))
    done, pending = await asyncio.wait({sender, ended, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, TimeoutError):
            await task
    if sender in done and isinstance(sender.exception(), TimeoutError):
        await _drop_unread(websocket, hub)
        return
    if feed.ended.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_close(websocket, feed.close_code, feed.close_reason), timeout)


async def _drop_unread(websocket: WebSocket, hub: LiveHub) -> None:
    """The client takes no data: its close frame would wait behind the same full buffer,
    so the connection is aborted (which frees the kernel's buffers at once)."""
    hub.count_drop("send_timeout")
    abort: Callable[[], None] | None = websocket.scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is not None:
        abort()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_close(websocket, CLOSE_SEND_TIMEOUT, "took no data: dropped"), 1.0)


async def _snapshot(state: CommandState, who: Principal) -> bytes:
    parts = {name: await provide(state, who) for name, provide in snapshot_providers(state).items()}
    return orjson.dumps(
        {"type": "snapshot", "user": {"id": who.user_id, "role": who.role, "team_id": who.team_id}, **parts}
    )


async def _forward(websocket: WebSocket, queue: asyncio.Queue[bytes], timeout: float) -> None:
    while True:
        raw = await queue.get()
        await asyncio.wait_for(websocket.send_text(raw.decode()), timeout)


async def _incoming(websocket: WebSocket, state: CommandState, hub: LiveHub, feed: ClientFeed) -> None:
    """The stream is server → client; reading detects the client leaving, and takes a
    renewed token (an ``auth`` message) of the same user and session."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        token = _auth_message(message)
        if token is None:
            continue
        try:
            renewed = await authenticate(state, token)
        except InvalidToken as exc:
            hub.drop(feed, CLOSE_UNAUTHORISED, exc.reason, "revoked")
            return
        if renewed.user_id != feed.who.user_id or renewed.session_id != feed.who.session_id:
            hub.drop(feed, CLOSE_UNAUTHORISED, "a token of another session: reconnect", "revoked")
            return
        feed.who = renewed


class ExposeTransportAbort:
    """ASGI middleware (outermost): hands /ws handlers the server's ``abort`` of the
    connection as the scope extension :data:`ABORT_EXTENSION`. ASGI can only close a
    socket politely, and a close frame waits behind a buffer the peer never drains;
    uvicorn's ``send`` is a method of its protocol, whose transport can abort. Where that
    is not so (another server), handlers fall back to a bounded close."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            abort = getattr(transport, "abort", None)
            if callable(abort):
                scope = {**scope, "extensions": {**(scope.get("extensions") or {}), ABORT_EXTENSION: abort}}
        await self.app(scope, receive, send)
