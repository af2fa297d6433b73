"""Attacks on tokens, sessions and logins (docs/security.md, section "auth"): a revoked
or disabled user's token, a /ws that outlives its session, the real user locked out by
someone guessing, one audit row per refused login, logins while Redis is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from command.app import create_app
from command.domain.vocabulary import Role
from command.security import CONSOLE_SECRET_HEADER, FORWARDED_FOR_HEADER, Principal
from command.services.live import CLOSE_UNAUTHORISED, Change, LiveHub, channel_of
from command.users import DEMO_PASSWORD, demo_users
from testkit.users import seed_users as seed_accounts
from wuwang.endpoints import free_port
from wuwang.settings import DEMO_CONSOLE_SECRET, Settings


def seed_users(database_url: str) -> None:
    """A team and the demo users (operator1, operator2, commander1, planner1, admin1, T-A)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO district (adcode, name, center_lat, center_lon, boundary) VALUES"
            " (420606, '樊城区', 32.045, 112.135, '{}') ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO team (id, name, team_type, district_adcode, base_lat, base_lon, size)"
            " VALUES ('T-A', 'T-A', 'fire', 420606, 32.05, 112.14, 20) ON CONFLICT DO NOTHING"
        )
        seed_accounts(conn, demo_users(["T-A"]))


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(account="command")
    assert settings.shared.database_url
    seed_users(settings.shared.database_url)
    return settings


@pytest.fixture
def command_client(command_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(command_settings)) as client:
        yield client


def _login(client: TestClient, user: str, password: str = DEMO_PASSWORD, **headers: str) -> dict[str, str]:
    r = client.post("/auth/login", json={"username": user, "password": password}, headers=headers)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _sql(settings: Settings, statement: str, *args: object) -> None:
    with psycopg.connect(settings.shared.database_url or "", autocommit=True) as conn:
        conn.execute(statement, args)


def test_logout_revokes_the_token_and_its_refreshes(command_client: TestClient) -> None:
    token = _login(command_client, "operator1")
    other_desk = _login(command_client, "operator1")
    renewed = command_client.post("/auth/refresh", headers=token)
    assert renewed.status_code == 200
    renewed_token = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert command_client.post("/auth/logout", headers=token).status_code == 204
    for used in (token, renewed_token):
        r = command_client.get("/auth/me", headers=used)
        assert r.status_code == 401 and "log in again" in r.json()["detail"]
        assert command_client.post("/auth/refresh", headers=used).status_code == 401
    # another login of the same user (another desk) is another session: it goes on
    assert command_client.get("/auth/me", headers=other_desk).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE app_user SET disabled = true WHERE id = 'operator2'",
        "UPDATE app_user SET role = 'planner' WHERE id = 'operator2'",
    ],
    ids=["disabled", "demoted"],
)
def test_disabled_or_demoted_users_token_stops_at_once(
    command_client: TestClient, command_settings: Settings, change: str
) -> None:
    token = _login(command_client, "operator2")
    assert command_client.get("/incidents", headers=token).status_code == 200
    _sql(command_settings, change)
    r = command_client.get("/incidents", headers=token)
    assert r.status_code == 401 and r.json()["detail"] == "the account changed: log in again"


def test_a_token_without_a_session_is_refused(command_client: TestClient) -> None:
    from command.security import issue_token
    from wuwang.settings import DEMO_TOKEN_SECRET

    forged_by_insider, _ = issue_token(Principal("admin1", Role.ADMIN), secret=DEMO_TOKEN_SECRET, ttl_s=600)
    r = command_client.get("/auth/me", headers={"Authorization": f"Bearer {forged_by_insider}"})
    assert r.status_code == 401


@pytest.fixture
def rechecking_client(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(account="command", command_ws_recheck_s=0.2)
    assert settings.shared.database_url
    seed_users(settings.shared.database_url)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def _close_after_publishing(ws: object, settings: Settings) -> WebSocketDisconnect | None:
    """Publish changes until the socket is closed; None when it kept streaming."""
    bus = redis.Redis.from_url(settings.shared.redis_url or "")
    try:
        for i in range(60):
            bus.publish(channel_of(bus), Change("incident", f"INC-{i}", {"state": "new"}, version=1).encode())
            try:
                message = ws.receive()  # type: ignore[attr-defined]
            except WebSocketDisconnect as exc:
                return exc
            if message["type"] == "websocket.close":
                return WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
            time.sleep(0.1)
    finally:
        bus.close()
    return None


@pytest.mark.parametrize(
    "revoke",
    ["disable", "logout"],
)
def test_an_open_ws_is_closed_when_its_session_ends(
    rechecking_client: tuple[TestClient, Settings], revoke: str
) -> None:
    client, settings = rechecking_client
    token = _login(client, "commander1")
    with client.websocket_connect("/ws", headers=token) as ws:
        assert orjson.loads(ws.receive_text())["type"] == "snapshot"
        if revoke == "disable":
            _sql(settings, "UPDATE app_user SET disabled = true WHERE id = 'commander1'")
        else:
            assert client.post("/auth/logout", headers=token).status_code == 204
        closed = _close_after_publishing(ws, settings)
    assert closed is not None, "the socket kept streaming after its session ended"
    assert closed.code == CLOSE_UNAUTHORISED and "log in again" in (closed.reason or "")


def test_a_ws_whose_token_expired_is_ended() -> None:
    async def scenario() -> None:
        hub = LiveHub(queue_size=10)
        soon = datetime.now(UTC) + timedelta(seconds=60)
        feed = hub.register(Principal("operator1", Role.OPERATOR, expires_at=soon))
        await hub.check_sessions(state=None, now=soon - timedelta(seconds=1))  # type: ignore[arg-type]
        assert not feed.ended.is_set()
        await hub.check_sessions(state=None, now=soon)  # type: ignore[arg-type]
        assert feed.ended.is_set() and feed.close_code == CLOSE_UNAUTHORISED
        assert feed.close_reason == "token expired"

    asyncio.run(scenario())


def _console(address: str) -> dict[str, str]:
    """What the map console sends with a login it makes for a browser at ``address``."""
    return {FORWARDED_FOR_HEADER: address, CONSOLE_SECRET_HEADER: DEMO_CONSOLE_SECRET}


def test_someone_guessing_never_locks_the_real_user_out(command_client: TestClient) -> None:
    guesser, desk = _console("10.0.0.66"), _console("10.0.0.12")
    codes = [
        command_client.post(
            "/auth/login", json={"username": "operator2", "password": "wrong"}, headers=guesser
        ).status_code
        for _ in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2
    # the guesser stays limited, even with the right password
    r = command_client.post(
        "/auth/login", json={"username": "operator2", "password": DEMO_PASSWORD}, headers=guesser
    )
    assert r.status_code == 429
    # the real user at their own desk is let in
    _login(command_client, "operator2", **desk)


def test_a_browser_cannot_choose_the_address_it_is_throttled_by(command_client: TestClient) -> None:
    """Without the console's secret the forwarded address is ignored: a guesser who
    varies it is still throttled by the address it really comes from."""
    codes = [
        command_client.post(
            "/auth/login",
            json={"username": "operator1", "password": "wrong"},
            headers={FORWARDED_FOR_HEADER: f"10.1.0.{i}", CONSOLE_SECRET_HEADER: "a guess"},
        ).status_code
        for i in range(7)
    ]
    assert codes == [401] * 5 + [429] * 2


def test_refused_logins_are_audited_in_aggregate(command_settings: Settings) -> None:
    refused = 60
    # one flush, when the service stops (a slow machine must not see a timed one too)
    settings = command_settings.updated(command_login_audit_flush_s=3600.0)
    with TestClient(create_app(settings)) as client:
        for i in range(refused):
            client.post(
                "/auth/login",
                json={"username": "operator1", "password": f"wrong-{i}"},
                headers=_console("10.0.0.66"),
            )
    # the service stopped: what it counted is written
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'auth.login' AND outcome = 'denied'"
            " AND actor = 'operator1'"
        ).fetchall()
    assert len(rows) == 2  # one row per (user, address, reason): wrong password, rate limited
    assert sum(int(r[0]["count"]) for r in rows) == refused
    assert {r[0]["address"] for r in rows} == {"10.0.0.66"}
    assert {r[0]["reason"] for r in rows} == {"wrong user name or password", "rate limited"}


def test_login_works_and_is_still_throttled_while_redis_is_down(
    make_settings: Callable[..., Settings],
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(account="command", redis_url=dead_redis)
    assert settings.shared.database_url
    seed_users(settings.shared.database_url)
    with TestClient(create_app(settings, workers=[])) as client:
        _login(client, "operator1", **_console("10.0.0.12"))
        codes = [
            client.post(
                "/auth/login",
                json={"username": "operator2", "password": "wrong"},
                headers=_console("10.0.0.66"),
            ).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]
