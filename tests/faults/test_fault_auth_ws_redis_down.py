"""Redis goes down under the live stream and the login (docs/security.md, "auth"):
/ws clients are told "server unavailable" (1013), not "too slow" (4408) once a second;
logins go on, still throttled; when Redis is back the stream is served again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from command.app import create_app
from command.services.live import CLOSE_UNAVAILABLE, LiveHub
from command.users import DEMO_PASSWORD, demo_users
from testkit.users import seed_users
from wuwang.endpoints import ManagedProcess, embedded_redis, free_port
from wuwang.settings import Settings


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[ManagedProcess, Callable[[], ManagedProcess]]]:
    port = free_port()
    made: list[ManagedProcess] = []

    def start() -> ManagedProcess:
        proc = embedded_redis(tmp_path / "redis", port)
        proc.start()
        made.append(proc)
        return proc

    yield start(), start
    for proc in made:
        proc.stop()


def _token(client: TestClient, user: str) -> str:
    r = client.post("/auth/login", json={"username": user, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _close_of(client: TestClient, token: str) -> tuple[int, str] | None:
    """Connect the console's way; the close code and reason, or None for a snapshot."""
    with client.websocket_connect("/ws") as ws:
        ws.send_text(orjson.dumps({"type": "auth", "token": token}).decode())
        try:
            first = orjson.loads(ws.receive_text())
        except WebSocketDisconnect as exc:
            return exc.code, exc.reason or ""
    assert first["type"] == "snapshot"
    return None


def test_ws_says_unavailable_while_redis_is_down_and_login_goes_on(
    make_settings: Callable[..., Settings],
    own_redis: tuple[ManagedProcess, Callable[[], ManagedProcess]],
) -> None:
    redis_proc, restart = own_redis
    settings = make_settings(account="command", redis_url=f"redis://127.0.0.1:{redis_proc.port}/0")
    assert settings.shared.database_url
    with psycopg.connect(settings.shared.database_url) as conn:
        seed_users(conn, [u for u in demo_users([]) if u.team_id is None])
    app = create_app(settings, workers=[lambda state: LiveHub(state.settings.command.ws_queue)])
    with TestClient(app) as client:
        token = _token(client, "operator1")
        with client.websocket_connect("/ws") as ws:
            ws.send_text(orjson.dumps({"type": "auth", "token": token}).decode())
            assert orjson.loads(ws.receive_text())["type"] == "snapshot"
            redis_proc.stop()
            with pytest.raises(WebSocketDisconnect) as gone:
                ws.receive_text()
        assert gone.value.code == CLOSE_UNAVAILABLE and "unavailable" in (gone.value.reason or "")
        # a client that comes back while Redis is down hears the same, not "too slow"
        assert _close_of(client, token) == (CLOSE_UNAVAILABLE, gone.value.reason)
        # logins are read from PostgreSQL and throttled in this process meanwhile
        _token(client, "operator2")
        codes = [
            client.post("/auth/login", json={"username": "admin1", "password": "x"}).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]
        restart()
        for _ in range(100):  # the pump retries with back-off (at most 5 s apart)
            if _close_of(client, token) is None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the live stream did not come back with Redis")
