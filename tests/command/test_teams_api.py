"""/teams: the roster from the demo loader, status changes by role, GEOSEARCH."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from command.demo_rosters import load_demo_rosters
from command.services.rosters import store_position
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM, _seed_minimal_city
from tests.command.test_dispatch_api import add_team, db_rows, isolated_settings
from wuwang.settings import REPO_ROOT, Settings

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return isolated_settings(make_settings)


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_demo_rosters_members_certificates_shifts_and_duty(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    url = command_settings.shared.database_url or ""
    for i, team_type in enumerate(("medical", "police", "hazmat", "water_rescue", "comprehensive")):
        add_team(
            url, f"T-DEMO-{i}", team_type, on_shift=False, size=60 if team_type == "comprehensive" else 8
        )
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        stats = load_demo_rosters(conn, 7, now, users=False)
    with psycopg.connect(url) as conn:
        again = load_demo_rosters(conn, 7, now, users=False)  # idempotent
    assert again == stats
    counts = db_rows(
        url,
        "SELECT (SELECT count(*) FROM team_member), (SELECT count(*) FROM member_certificate),"
        " (SELECT count(*) FROM team_shift)",
    )
    assert counts == [(stats.members, stats.certificates, stats.shifts)]
    assert stats.teams == 7 and stats.expired_certificates > 0 and len(stats.off_duty_now) == 1
    assert db_rows(url, "SELECT count(*) FROM team_member WHERE team_id = 'T-DEMO-4'") == [(60,)]
    # shifts cover now ± 2 days for everyone on duty
    for day in (-2, -1, 0, 1, 2):
        at = now + timedelta(days=day)
        covered = {
            r[0]
            for r in db_rows(
                url, "SELECT DISTINCT team_id FROM team_shift WHERE starts_at <= %s AND ends_at > %s", at, at
            )
        }
        assert covered >= {FIELD_TEAM, OTHER_TEAM, "T-DEMO-0"} - set(stats.off_duty_now)

    op = login("operator1")
    teams = {t["id"]: t for t in command_client.get("/teams", headers=op).json()}
    resting = stats.off_duty_now[0]
    assert not teams[resting]["on_duty"] and teams[resting]["duty_until"] is None
    assert all(t["on_duty"] for tid, t in teams.items() if tid != resting)
    fire = command_client.get(f"/teams/{FIELD_TEAM}", headers=op).json()
    assert fire["member_count"] == 20 and fire["district"] == "樊城区"
    assert all(m["name"] and m["skills"] for m in fire["members"])
    # fire stations work 24-hour shifts
    shift = fire["shifts_today"][0]
    assert datetime.fromisoformat(shift["ends_at"]) - datetime.fromisoformat(shift["starts_at"]) == timedelta(
        hours=24
    )
    expired = [
        (m["id"], c)
        for t in teams
        for m in command_client.get(f"/teams/{t}", headers=op).json()["members"]
        for c in m["certificates"]
        if c["expired"]
    ]
    assert len(expired) == stats.expired_certificates
    flagged = command_client.get(f"/teams/{expired[0][0].rsplit('-M', 1)[0]}", headers=op).json()
    assert any(a["expired"] for a in flagged["certificate_alerts"])
    only_med = command_client.get("/teams", headers=op, params={"type": "medical"}).json()
    assert [t["id"] for t in only_med] == ["T-DEMO-0"]


def test_demo_rosters_command_line(command_settings: Settings) -> None:
    _seed_minimal_city(command_settings.shared.database_url or "")
    env = {**os.environ, "DEMO_MODE": "1", "DATABASE_URL": command_settings.shared.database_url or ""}
    done = subprocess.run(
        [sys.executable, "-m", "command.demo_rosters", "--seed", "3"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "demo rosters: 2 teams" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "command.demo_rosters"],
        cwd=REPO_ROOT,
        env={**env, "DEMO_MODE": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2


def test_status_changes_by_role_are_audited_and_published(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    url = command_settings.shared.database_url or ""
    field, op, planner = login(FIELD_TEAM), login("operator1"), login("planner1")
    with command_client.websocket_connect(f"/ws?token={_token(field)}") as ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot" and [t["id"] for t in snapshot["teams"]] == [FIELD_TEAM]
        r = command_client.post(
            f"/teams/{FIELD_TEAM}/status", headers=field, json={"status": "en_route", "reason": "出车"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "en_route"
        change = ws.receive_json()
        assert (
            change["type"] == "team" and change["id"] == FIELD_TEAM and change["data"]["status"] == "en_route"
        )
    assert (
        command_client.post(
            f"/teams/{OTHER_TEAM}/status", headers=field, json={"status": "off_duty"}
        ).status_code
        == 403
    )
    assert (
        command_client.post(
            f"/teams/{OTHER_TEAM}/status", headers=planner, json={"status": "off_duty"}
        ).status_code
        == 403
    )
    assert (
        command_client.post(f"/teams/{OTHER_TEAM}/status", headers=op, json={"status": "returning"}).json()[
            "status"
        ]
        == "returning"
    )
    assert (
        command_client.post("/teams/T-NOBODY/status", headers=op, json={"status": "available"}).status_code
        == 404
    )
    assert (
        command_client.post(f"/teams/{OTHER_TEAM}/status", headers=op, json={"status": "busy"}).status_code
        == 422
    )
    audited = db_rows(
        url, "SELECT actor, outcome, object_id FROM audit_log WHERE action = 'team.status' ORDER BY id"
    )
    assert audited == [
        (FIELD_TEAM, "ok", FIELD_TEAM),
        (FIELD_TEAM, "denied", OTHER_TEAM),
        ("planner1", "denied", OTHER_TEAM),
        ("operator1", "ok", OTHER_TEAM),
    ]
    # a field user sees only its own team
    assert [t["id"] for t in command_client.get("/teams", headers=field).json()] == [FIELD_TEAM]
    assert command_client.get(f"/teams/{OTHER_TEAM}", headers=field).status_code == 403


def test_a_field_page_status_is_ordered_by_seq_and_stored_once(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    """The field page's outbox may resend a change whose answer was lost, or deliver an
    older one late: with the terminal's seq, neither is applied twice or over a newer."""
    url = command_settings.shared.database_url or ""
    field = login(FIELD_TEAM)

    def post(msg_id: str, seq: int, status: str) -> dict[str, Any]:
        r = command_client.post(
            f"/teams/{FIELD_TEAM}/status", headers=field, json={"id": msg_id, "seq": seq, "status": status}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    assert post("web-1", 7, "en_route")["status"] == "en_route"
    assert post("web-1", 7, "en_route")["status"] == "en_route"  # resent: stored once
    assert post("web-2", 8, "on_scene")["status"] == "on_scene"
    assert post("web-0", 6, "available")["status"] == "on_scene"  # overtaken: not applied
    audited = db_rows(
        url,
        "SELECT detail->>'msg_id', (detail->>'seq')::int, detail->>'to' FROM audit_log"
        " WHERE action = 'team.status' AND outcome = 'ok' ORDER BY id",
    )
    assert audited == [("web-1", 7, "en_route"), ("web-2", 8, "on_scene")]
    # a console change (no seq) always applies, and the terminal's order goes on from its seq
    op = login("operator1")
    r = command_client.post(f"/teams/{FIELD_TEAM}/status", headers=op, json={"status": "returning"})
    assert r.status_code == 200 and r.json()["status"] == "returning"
    assert post("web-3", 9, "available")["status"] == "available"


def test_near_uses_the_live_positions(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    async def place(positions: dict[str, tuple[float, float, float]]) -> list[bool]:
        r = aioredis.Redis.from_url(command_settings.shared.redis_url or "")
        try:
            now = datetime.now(UTC)
            return [
                await store_position(r, tid, lat, lon, now - timedelta(seconds=age))
                for tid, (lat, lon, age) in positions.items()
            ]
        finally:
            await r.aclose()

    stored = asyncio.run(place({FIELD_TEAM: (32.0450, 112.1460, 5), OTHER_TEAM: (32.1500, 112.3000, 900)}))
    assert stored == [True, True]
    # an older fix never moves a team back
    assert asyncio.run(place({FIELD_TEAM: (31.0, 111.0, 60)})) == [False]
    op = login("operator1")
    near: list[dict[str, Any]] = command_client.get(
        "/teams/near", headers=op, params={"lat": 32.0420, "lon": 112.1440, "radius_m": 1000}
    ).json()
    assert [t["id"] for t in near] == [FIELD_TEAM]
    assert near[0]["distance_m"] < 500 and not near[0]["stale"]
    wide = command_client.get(
        "/teams/near", headers=op, params={"lat": 32.0420, "lon": 112.1440, "radius_m": 50_000}
    ).json()
    assert [t["id"] for t in wide] == [FIELD_TEAM, OTHER_TEAM] and wide[1]["stale"]
    listed = {t["id"]: t for t in command_client.get("/teams", headers=op).json()}
    assert listed[FIELD_TEAM]["position"]["source"] == "live"
    assert (
        command_client.get(
            "/teams/near", headers=login(FIELD_TEAM), params={"lat": 32.04, "lon": 112.14}
        ).status_code
        == 403
    )
