"""/ws: the live stream the map console drives on.

Authentication: the access token as ``?token=`` (browsers cannot set headers on a
WebSocket) or an ``Authorization: Bearer`` header. A browser's Origin must be one of
``COMMAND_ALLOWED_ORIGINS`` (cross-site WebSocket hijacking); clients that send no
Origin (server-side consoles, tools) are not browsers and rely on the token alone.

Protocol: after accepting, the server subscribes the client to changes, then sends
``{"type": "snapshot", ...}``, then one JSON change per message. A client that falls
behind is closed with code 4408 and should reconnect (and get a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from command import audit
from command.security import InvalidToken, Principal, read_token
from command.services.live import LiveHub, snapshot_providers
from command.state import CommandState

router = APIRouter()

CLOSE_TOO_SLOW = 4408
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403


def _token(websocket: WebSocket) -> str | None:
    if token := websocket.query_params.get("token"):
        return token
    header = websocket.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


@router.websocket("/ws")
async def live_stream(websocket: WebSocket) -> None:
    state: CommandState = websocket.state.command
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in state.settings.command_allowed_origins:
        await audit.record_denied(state.pool, "anonymous", "ws.connect", f"origin {origin[:100]} not allowed")
        await websocket.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="origin not allowed")
        return
    token = _token(websocket)
    try:
        if token is None:
            raise InvalidToken("not authenticated")
        who = read_token(token, secret=state.token_secret)
    except InvalidToken as exc:
        await websocket.close(code=CLOSE_UNAUTHORISED, reason=exc.reason)
        return
    hub: LiveHub = state.parts["live"]
    await websocket.accept()
    feed = hub.register(who)  # before the snapshot, so nothing falls between the two
    try:
        await websocket.send_text((await _snapshot(state, who)).decode())
        sender = asyncio.create_task(_forward(websocket, feed.queue))
        overflow = asyncio.create_task(feed.overflowed.wait())
        receiver = asyncio.create_task(_drain_incoming(websocket))
        done, pending = await asyncio.wait({sender, overflow, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        if overflow in done:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=CLOSE_TOO_SLOW, reason="too slow: reconnect to resynchronise")
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(feed)


async def _snapshot(state: CommandState, who: Principal) -> bytes:
    parts = {name: await provide(state, who) for name, provide in snapshot_providers(state).items()}
    return orjson.dumps(
        {"type": "snapshot", "user": {"id": who.user_id, "role": who.role, "team_id": who.team_id}, **parts}
    )


async def _forward(websocket: WebSocket, queue: asyncio.Queue[bytes]) -> None:
    while True:
        raw = await queue.get()
        await websocket.send_text(raw.decode())


async def _drain_incoming(websocket: WebSocket) -> None:
    """The stream is server → client; reading detects the client leaving."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
