import asyncio
from collections.abc import Callable

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from command.domain.vocabulary import Role
from command.security import Principal, issue_token
from command.services.live import Change, LiveHub, channel_of, visible_to
from wuwang.settings import DEMO_TOKEN_SECRET, Settings


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_ws_refuses_missing_expired_and_foreign_origin(
    command_client: TestClient, login: Callable[[str], dict[str, str]]
) -> None:
    with command_client.websocket_connect("/ws") as ws:  # the token must be the first message
        ws.send_text('{"type": "hello"}')
        with pytest.raises(WebSocketDisconnect) as missing:
            ws.receive_text()
    assert missing.value.code == 4401 and "auth" in (missing.value.reason or "")
    expired, _ = issue_token(Principal("operator1", Role.OPERATOR), secret=DEMO_TOKEN_SECRET, ttl_s=-5)
    with pytest.raises(WebSocketDisconnect) as old, command_client.websocket_connect(f"/ws?token={expired}"):
        pass
    assert old.value.code == 4401
    token = _token(login("operator1"))
    with (
        pytest.raises(WebSocketDisconnect) as foreign,
        command_client.websocket_connect(f"/ws?token={token}", headers={"Origin": "https://evil.example"}),
    ):
        pass
    assert foreign.value.code == 4403


def test_ws_token_as_first_message_and_renewed_on_the_open_socket(
    command_client: TestClient, command_settings: Settings, login: Callable[[str], dict[str, str]]
) -> None:
    first = command_client.post("/auth/login", json={"username": "operator1", "password": "demo"}).json()
    with command_client.websocket_connect("/ws", headers={"Origin": "http://127.0.0.1:8050"}) as ws:
        ws.send_text(orjson.dumps({"type": "auth", "token": first["access_token"]}).decode())
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        renewed = command_client.post("/auth/refresh", headers=_bearer(first["access_token"])).json()
        ws.send_text(orjson.dumps({"type": "auth", "token": renewed["access_token"]}).decode())
        # the renewal keeps the stream going
        bus = redis.Redis.from_url(command_settings.shared.redis_url or "")
        bus.publish(channel_of(bus), Change("incident", "INC-R", {"state": "new"}, version=1).encode())
        bus.close()
        assert orjson.loads(ws.receive_text())["id"] == "INC-R"
        # a token of another session on this socket ends it
        other = _token(login("operator2"))
        ws.send_text(orjson.dumps({"type": "auth", "token": other}).decode())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 4401


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_ws_sends_snapshot_then_changes_by_role(
    command_client: TestClient, command_settings: Settings, login: Callable[[str], dict[str, str]]
) -> None:
    op = _token(login("operator1"))
    planner = _token(login("planner1"))
    with (
        command_client.websocket_connect(f"/ws?token={op}", headers={"Origin": "http://127.0.0.1:8050"}) as a,
        command_client.websocket_connect(f"/ws?token={planner}") as b,
    ):
        snap_a, snap_b = orjson.loads(a.receive_text()), orjson.loads(b.receive_text())
        assert snap_a["type"] == "snapshot" and snap_a["user"]["role"] == "operator"
        assert snap_b["user"]["role"] == "planner"
        bus = redis.Redis.from_url(command_settings.shared.redis_url or "")
        bus.publish(channel_of(bus), Change("incident", "INC-1", {"state": "new"}, version=1).encode())
        drill = Change("incident", "EX-1", {"state": "new"}, version=1, exercise_id="EX")
        bus.publish(channel_of(bus), drill.encode())
        team = Change("team", "T-FIRE-01", {"status": "available"}, team_id="T-FIRE-01")
        bus.publish(channel_of(bus), team.encode())
        bus.close()
        got_a = [orjson.loads(a.receive_text())["id"] for _ in range(2)]
        got_b = [orjson.loads(b.receive_text())["id"] for _ in range(2)]
        assert got_a == ["INC-1", "T-FIRE-01"]  # the operator sees live data only
        # the planner sees the exercise, and the live roster a drill works on top of
        assert got_b == ["EX-1", "T-FIRE-01"]


def test_slow_client_is_dropped_others_keep_receiving() -> None:
    async def scenario() -> None:
        hub = LiveHub(queue_size=3)
        slow = hub.register(Principal("operator1", Role.OPERATOR))
        fast = hub.register(Principal("operator2", Role.OPERATOR))
        for i in range(10):
            hub.offer(Change("team", f"T{i}", {}).encode())
            fast.queue.get_nowait()  # the fast client keeps up
        assert slow.overflowed.is_set() and slow.queue.qsize() == 3
        assert not fast.overflowed.is_set()
        assert hub.dropped_clients == 1

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("role", "team", "envelope", "seen"),
    [
        (Role.OPERATOR, None, {"exercise_id": None}, True),
        (Role.OPERATOR, None, {"exercise_id": "EX"}, False),
        (Role.PLANNER, None, {"exercise_id": None}, False),
        (Role.PLANNER, None, {"exercise_id": "EX"}, True),
        (Role.FIELD, "T1", {"exercise_id": None, "team_id": "T1"}, True),
        (Role.FIELD, "T1", {"exercise_id": None, "team_id": "T2"}, False),
        (Role.FIELD, "T1", {"exercise_id": None, "team_id": None}, False),
        # a crew sees its own incident's changes, while it is assigned to it
        (Role.FIELD, "T1", {"type": "incident", "data": {"teams": [{"team_id": "T1"}]}}, True),
        (Role.FIELD, "T1", {"type": "incident", "data": {"teams": [{"team_id": "T2"}]}}, False),
        (
            Role.FIELD,
            "T1",
            {
                "type": "incident",
                "data": {"teams": [{"team_id": "T1", "released_at": "2026-12-07T09:00:00Z"}]},
            },
            False,
        ),
        (Role.FIELD, "T1", {"type": "alarm", "data": {"teams": [{"team_id": "T1"}]}}, False),
        (
            Role.FIELD,
            "T1",
            {"type": "incident", "exercise_id": "EX", "data": {"teams": [{"team_id": "T1"}]}},
            False,
        ),
    ],
)
def test_visibility(role: Role, team: str | None, envelope: dict[str, object], seen: bool) -> None:
    assert visible_to(Principal("u", role, team), envelope) is seen
