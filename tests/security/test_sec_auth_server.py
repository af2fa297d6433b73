"""Attacks that need the real server (uvicorn, real sockets): a 200 MB anonymous POST,
tokens in the access log, a /ws client that never reads."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import orjson
import psycopg
import pytest
import redis
import uvicorn
import websockets

from command.app import create_app
from command.services.live import Change, channel_of
from command.users import DEMO_PASSWORD, demo_users
from testkit.users import seed_users
from wuwang.endpoints import free_port
from wuwang.settings import Settings

#: uvicorn hands a body over as it reads it from the socket: one read is at most this.
ONE_READ = 256 * 1024
MiB = 1024 * 1024


@dataclass
class Counting:
    """Wraps the app: how many body bytes the app took from the server, per path."""

    app: Any
    taken: dict[str, int] = field(default_factory=dict)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def counted() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            self.taken[path] = self.taken.get(path, 0) + len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@dataclass
class Running:
    url: str
    port: int
    counting: Counting
    settings: Settings
    log_lines: list[str]


class _Capture(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _seed(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        seed_users(conn, [u for u in demo_users([]) if u.team_id is None])


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Running]]:
    """Starts the command service under uvicorn in a thread (settings overridable)."""
    started: list[tuple[uvicorn.Server, threading.Thread, logging.Handler]] = []

    def start(**overrides: Any) -> Running:
        settings = make_settings(account="command", **overrides)
        assert settings.shared.database_url
        _seed(settings.shared.database_url)
        counting = Counting(create_app(settings))
        lines: list[str] = []
        capture = _Capture(lines)
        for name in ("uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).addHandler(capture)
            logging.getLogger(name).setLevel(logging.INFO)
        port = free_port()
        config = uvicorn.Config(counting, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        for _ in range(300):
            if srv.started:
                break
            time.sleep(0.05)
        assert srv.started, "uvicorn did not start"
        started.append((srv, thread, capture))
        return Running(f"http://127.0.0.1:{port}", port, counting, settings, lines)

    yield start
    for srv, thread, capture in started:
        srv.should_exit = True
        thread.join(timeout=30)
        for name in ("uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).removeHandler(capture)


def _login(url: str, user: str = "operator1") -> str:
    r = httpx.post(f"{url}/auth/login", json={"username": user, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _status_of(sock: socket.socket) -> int:
    sock.settimeout(10)
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_a_200_mb_anonymous_post_is_refused_without_being_read(server: Callable[..., Running]) -> None:
    run = server()
    limit = MiB  # the default COMMAND_BODY_LIMIT_BYTES
    chunk = b"x" * (64 * 1024)
    with socket.create_connection(("127.0.0.1", run.port)) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            while sent < 200 * MiB:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if sent > 4 * limit:  # long past the limit: the answer must be waiting
                    sock.setblocking(False)
                    try:
                        if sock.recv(1, socket.MSG_PEEK):
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: what it answered is below
        assert _status_of(sock) == 413
    assert run.counting.taken.get("/auth/login", 0) <= limit + ONE_READ


def test_a_declared_huge_body_is_refused_before_reading(server: Callable[..., Running]) -> None:
    run = server()
    with socket.create_connection(("127.0.0.1", run.port)) as sock:
        sock.sendall(
            b"POST /incidents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (200 * MiB)
        )
        sock.sendall(b"{" * 65536)
        assert _status_of(sock) == 413
    assert run.counting.taken.get("/incidents", 0) == 0
    # an ordinary body still goes through, and uploads have their own, larger limit
    token = _login(run.url)
    r = httpx.post(
        f"{run.url}/field/photos",
        json={"data_base64": "A" * (2 * MiB)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code != 413


def test_no_token_reaches_the_log(server: Callable[..., Running]) -> None:
    run = server()
    token = _login(run.url)
    ws_url = run.url.replace("http://", "ws://") + "/ws"

    async def console_way() -> str:  # what the map console does: the token as first message
        async with websockets.connect(ws_url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            return str(orjson.loads(await ws.recv())["type"])

    async def old_way() -> str:  # an old client: the token in the URL
        async with websockets.connect(f"{ws_url}?token={token}") as ws:
            return str(orjson.loads(await ws.recv())["type"])

    assert asyncio.run(console_way()) == "snapshot"
    assert asyncio.run(old_way()) == "snapshot"
    httpx.get(f"{run.url}/auth/me?token={token}", headers={"Authorization": f"Bearer {token}"})
    time.sleep(0.2)  # let the log lines of the handshakes land
    handshakes = [line for line in run.log_lines if "/ws" in line]
    assert len(handshakes) >= 2, run.log_lines
    signature = token.rsplit(".", 1)[1]
    assert not [line for line in run.log_lines if signature in line]


def _handshake(port: int, token: str) -> socket.socket:
    """A raw WebSocket client that takes (almost) nothing from its socket."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    return sock


def _dropped(url: str, reason: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("wuwang_ws_dropped_total{") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_ws_client_that_never_reads_is_dropped(server: Callable[..., Running]) -> None:
    run = server(command_ws_send_timeout_s=1.0, command_ws_queue=100_000)
    sock = _handshake(run.port, _login(run.url))
    bus = redis.Redis.from_url(run.settings.shared.redis_url or "")
    big = {"blob": "x" * 60_000}
    try:
        for i in range(2000):  # ~120 MB offered, far more than any socket buffer
            bus.publish(channel_of(bus), Change("incident", f"INC-{i}", big, version=1).encode())
            if i % 50 == 49 and _dropped(run.url, "send_timeout") >= 1:
                break
            time.sleep(0.01)
        assert _dropped(run.url, "send_timeout") >= 1
        # and the connection is really gone: reading on finds its end
        sock.settimeout(10)
        try:
            while sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass  # aborted: a reset is an end too (a socket still open would time out)
    finally:
        bus.close()
        sock.close()
    assert "wuwang_ws_clients 0.0" in httpx.get(f"{run.url}/metrics").text
