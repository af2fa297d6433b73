"""A running command service (real PostgreSQL and Redis) and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from command.app import create_app
from command.users import DEMO_PASSWORD, NewUser, demo_users
from testkit.users import seed_users
from wuwang.contract import Alarm
from wuwang.settings import Settings

FIELD_TEAM = "T-FIRE-01"
OTHER_TEAM = "T-FIRE-02"


def _seed_minimal_city(database_url: str) -> None:
    """Two teams in one district: enough for users bound to teams."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO district (adcode, name, center_lat, center_lon, boundary) VALUES"
            " (420606, '樊城区', 32.045, 112.135, '{}') ON CONFLICT DO NOTHING"
        )
        for team in (FIELD_TEAM, OTHER_TEAM):
            conn.execute(
                "INSERT INTO team (id, name, team_type, district_adcode, base_lat, base_lon, size)"
                " VALUES (%s, %s, 'fire', 420606, 32.05, 112.14, 20) ON CONFLICT DO NOTHING",
                (team, f"消防救援队 {team}"),
            )
        seed_users(conn, demo_users([FIELD_TEAM, OTHER_TEAM]))


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(account="command")


@pytest.fixture
def command_client(command_settings: Settings) -> Iterator[TestClient]:
    assert command_settings.shared.database_url
    _seed_minimal_city(command_settings.shared.database_url)
    app = create_app(command_settings)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def login(command_client: TestClient) -> Callable[[str], dict[str, str]]:
    """Log in once per user; returns the Authorization header."""
    cache: dict[str, dict[str, str]] = {}

    def headers(user: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
        if user not in cache:
            r = command_client.post("/auth/login", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            cache[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return cache[user]

    return headers


def add_user(database_url: str, user: NewUser) -> None:
    with psycopg.connect(database_url) as conn:
        seed_users(conn, [user])


def relay_alarm(
    settings: Settings,
    *,
    alarm_id: str,
    kind: str,
    source: str,
    msg_id: str,
    network: str,
    ts: datetime,
    place: tuple[float, float],
    category: str,
    details: dict[str, Any],
) -> str:
    """One alarm on the command service's stream, as ingest relays it (summarised as
    at 樊城区人民路); returns its id."""
    # read as the command service reads what ingest relays (the kind and network checked)
    alarm = Alarm.from_builtins(
        {
            "alarm_id": alarm_id,
            "kind": kind,
            "source": source,
            "msg_id": msg_id,
            "network": network,
            "ts": ts,
            "lat": place[0],
            "lon": place[1],
            "grid_cell_id": None,
            "category": category,
            "summary": f"樊城区人民路 {category}",
            "details": details,
        }
    )
    client = redis.Redis.from_url(settings.shared.redis_url or "")
    client.xadd(settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()})
    client.close()
    return alarm.alarm_id
