"""Dispatch through the API on real PostgreSQL, Redis and Mosquitto: the double-dispatch
guard under 50 concurrent requests, the atomic write, release, the trigger that makes
orders follow the incident, and the recommendation."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain.incidents import Actor, decide_activate_plan
from command.domain.vocabulary import ResponseLevel, Role
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.conftest import Broker
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

_ids = itertools.count()


def isolated_settings(
    make_settings: Callable[..., Settings], broker: Broker | None = None, **overrides: Any
) -> Settings:
    """Command settings with an MQTT session and share group of this test's own (the
    session's broker is shared by the whole run), ended when the app stops."""
    n = f"{os.getpid()}-{next(_ids)}"
    values: dict[str, Any] = {
        "command_mqtt_client_id": f"command-test-{n}",
        "command_shared_group": f"cmdtest-{n}",
        "command_mqtt_forget_session_on_stop": True,
        **overrides,
    }
    return make_settings(account="command", broker=broker, **values)


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return isolated_settings(make_settings)


def open_incident(
    client: TestClient,
    headers: dict[str, str],
    *,
    type: str = "fire",
    level: int = 4,
    lat: float = 32.0420,
    lon: float = 112.1440,
    title: str = "樊城区人民路 居民楼起火",
) -> dict[str, Any]:
    r = client.post(
        "/incidents",
        headers=headers,
        json={"type": type, "level": level, "title": title, "lat": lat, "lon": lon},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def add_team(
    database_url: str,
    team_id: str,
    team_type: str = "fire",
    *,
    base: tuple[float, float] = (32.05, 112.14),
    position: tuple[float, float] | None = None,
    position_age_s: float = 10.0,
    status: str = "available",
    on_shift: bool = True,
    size: int = 20,
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO team (id, name, team_type, district_adcode, base_lat, base_lon, size, status)"
            " VALUES (%s, %s, %s, 420606, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status",
            (team_id, f"队伍 {team_id}", team_type, base[0], base[1], size, status),
        )
        if position is not None:
            conn.execute(
                "UPDATE team SET lat = %s, lon = %s, position_at = %s WHERE id = %s",
                (position[0], position[1], now - timedelta(seconds=position_age_s), team_id),
            )
        if on_shift:
            conn.execute(
                "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (team_id, now - timedelta(hours=2), now + timedelta(hours=10)),
            )


def db_rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def dispatch(
    client: TestClient,
    headers: dict[str, str],
    incident: dict[str, Any],
    team_id: str,
    version: int | None = None,
) -> Any:
    return client.post(
        f"/incidents/{incident['id']}/dispatch",
        headers=headers,
        json={"team_id": team_id, "expected_version": version or incident["version"]},
    )


def test_fifty_concurrent_dispatches_of_one_team_give_exactly_one_order(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd = login("operator1"), login("commander1")
    incidents = [open_incident(command_client, op, lat=32.04 + i * 0.001) for i in range(5)]
    start = threading.Barrier(50)

    def attempt(i: int) -> int:
        incident = incidents[i % len(incidents)]  # same incident and different incidents race
        start.wait()
        return int(dispatch(command_client, op if i % 2 else cmd, incident, FIELD_TEAM).status_code)

    with ThreadPoolExecutor(50) as pool:
        codes = Counter(pool.map(attempt, range(50)))
    assert codes == {201: 1, 409: 49}, codes
    url = command_settings.shared.database_url or ""
    assert db_rows(url, "SELECT count(*) FROM dispatch_order WHERE team_id = %s", FIELD_TEAM) == [(1,)]
    assert db_rows(url, "SELECT count(*) FROM mqtt_outbox") == [(1,)]
    assert db_rows(url, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == [("dispatched",)]
    on_it = [
        i
        for i in incidents
        if any(
            t["team_id"] == FIELD_TEAM
            for t in command_client.get(f"/incidents/{i['id']}", headers=op).json()["incident"]["teams"]
        )
    ]
    assert len(on_it) == 1
    # the loser of a race is told why, whichever incident it was for
    late = dispatch(
        command_client,
        op,
        incidents[4],
        FIELD_TEAM,
        command_client.get(f"/incidents/{incidents[4]['id']}", headers=op).json()["incident"]["version"],
    )
    assert late.status_code == 409 and "team already dispatched" in late.json()["detail"]


def test_dispatch_is_one_transaction_and_release_gives_the_team_back(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, planner, field = login("operator1"), login("planner1"), login(FIELD_TEAM)
    url = command_settings.shared.database_url or ""
    inc = open_incident(command_client, op)
    # field users and planners (live incident) may not dispatch; refusals are audited
    assert dispatch(command_client, field, inc, FIELD_TEAM).status_code == 403
    assert dispatch(command_client, planner, inc, FIELD_TEAM).status_code == 403
    assert db_rows(
        url, "SELECT count(*) FROM audit_log WHERE action = 'incident.dispatch' AND outcome = 'denied'"
    ) == [(2,)]
    assert dispatch(command_client, op, inc, "T-NOBODY").status_code == 404
    assert dispatch(command_client, op, inc, FIELD_TEAM, version=inc["version"] + 5).status_code == 409

    r = dispatch(command_client, op, inc, FIELD_TEAM)
    assert r.status_code == 201, r.text
    order, incident = r.json()["order"], r.json()["incident"]
    assert incident["state"] == "dispatched" and incident["version"] == inc["version"] + 3
    assert order["status"] == "pending" and order["in_force"] and order["team_id"] == FIELD_TEAM
    assert order["message"]["order_id"] == order["order_id"] == order["message"]["id"]
    assert order["message"]["ack_topic"] == f"teams/v1/{FIELD_TEAM}/ack"
    timeline = [
        e["kind"] for e in command_client.get(f"/incidents/{inc['id']}", headers=op).json()["timeline"]
    ]
    assert timeline == ["opened", "state_changed", "team_dispatched", "state_changed"]
    ((topic, payload),) = db_rows(url, "SELECT topic, payload FROM mqtt_outbox")
    assert topic == f"teams/v1/{FIELD_TEAM}/dispatch"
    assert orjson.loads(payload) == order["message"]
    assert ("dispatch.order", "ok") in db_rows(url, "SELECT action, outcome FROM audit_log")
    listed = command_client.get(f"/incidents/{inc['id']}/orders", headers=op).json()
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    # the team's own view: the field user now sees the incident and its order
    assert command_client.get(f"/incidents/{inc['id']}/orders", headers=field).status_code == 200

    # an off-duty team is not sent
    add_team(url, "T-FIRE-09", status="off_duty")
    busy = dispatch(command_client, op, inc, "T-FIRE-09", incident["version"])
    assert busy.status_code == 409 and "off duty" in busy.json()["detail"]

    no_reason = command_client.post(
        f"/incidents/{inc['id']}/release",
        headers=op,
        json={"team_id": FIELD_TEAM, "expected_version": incident["version"]},
    )
    assert no_reason.status_code == 422
    rel = command_client.post(
        f"/incidents/{inc['id']}/release",
        headers=op,
        json={"team_id": FIELD_TEAM, "expected_version": incident["version"], "reason": "误派，改派就近队伍"},
    )
    assert rel.status_code == 200, rel.text
    assert rel.json()["order"]["status"] == "released" and rel.json()["incident"]["state"] == "verified"
    assert db_rows(url, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == [("available",)]
    notices = [orjson.loads(p) for (p,) in db_rows(url, "SELECT payload FROM mqtt_outbox ORDER BY id")]
    assert [n["kind"] for n in notices] == ["dispatch", "release"]
    assert notices[1]["order_id"] == order["order_id"] and notices[1]["reason"] == "误派，改派就近队伍"
    # released: the team may be sent again (here or elsewhere)
    again = dispatch(command_client, op, inc, FIELD_TEAM, rel.json()["incident"]["version"])
    assert again.status_code == 201, again.text


def test_closing_an_incident_releases_its_orders_and_teams(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    """The orders follow the incident record whichever route appended the event."""
    op, field, cmd = login("operator1"), login(OTHER_TEAM), login("commander1")
    url = command_settings.shared.database_url or ""
    inc = open_incident(command_client, op)
    r = dispatch(command_client, op, inc, OTHER_TEAM)
    assert r.status_code == 201
    order_id = r.json()["order"]["order_id"]
    arrived = command_client.post(
        f"/incidents/{inc['id']}/arrived", headers=field, json={"team_id": OTHER_TEAM}
    )
    assert arrived.status_code == 200, arrived.text
    assert db_rows(url, "SELECT status FROM team WHERE id = %s", OTHER_TEAM) == [("on_scene",)]
    assert db_rows(url, "SELECT status FROM dispatch_order WHERE order_id = %s", order_id) == [("acked",)]
    v = arrived.json()["version"]
    # the team still out: a commander's override of the closing guard (else 409)
    override = {"override_reason": "队伍随结案释放"}
    assert (
        command_client.post(
            f"/incidents/{inc['id']}/resolve", headers=cmd, json={"expected_version": v, **override}
        ).status_code
        == 200
    )
    closed = command_client.post(
        f"/incidents/{inc['id']}/close", headers=cmd, json={"expected_version": v + 1, **override}
    )
    assert closed.status_code == 200, closed.text
    assert db_rows(
        url, "SELECT status, released_at IS NOT NULL FROM dispatch_order WHERE order_id = %s", order_id
    ) == [("released", True)]
    assert db_rows(url, "SELECT status FROM team WHERE id = %s", OTHER_TEAM) == [("available",)]
    kinds = [orjson.loads(p)["kind"] for (p,) in db_rows(url, "SELECT payload FROM mqtt_outbox ORDER BY id")]
    assert kinds == ["dispatch", "release"]
    # and the team can take the next incident
    nxt = open_incident(command_client, op, lat=32.06)
    assert dispatch(command_client, op, nxt, OTHER_TEAM).status_code == 201


def _seed_fire_teams(url: str) -> None:
    """Around an incident at (32.0420, 112.1440): one near, one far, and one of each
    reason to be skipped."""
    add_team(url, "F-NEAR", position=(32.0450, 112.1460))  # ~0.4 km
    add_team(url, "F-FAR", position=(32.0900, 112.2000))  # ~7 km
    add_team(url, "F-REST", position=(32.0430, 112.1450), on_shift=False)
    add_team(url, "F-BUSY", position=(32.0425, 112.1445), status="en_route")
    add_team(url, "F-STALE", position=(32.0421, 112.1441), position_age_s=3600)
    add_team(url, "F-OFF", position=(32.0422, 112.1442), status="off_duty")
    add_team(url, "H-1", "hazmat", position=(32.0600, 112.1600))


def test_recommendation_ranks_by_eta_and_explains_skipped_teams(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    url = command_settings.shared.database_url or ""
    _seed_fire_teams(url)
    inc = open_incident(command_client, op)
    rec = command_client.get(f"/incidents/{inc['id']}/recommendations", headers=op)
    assert rec.status_code == 200, rec.text
    body = rec.json()
    assert body["basis"]["source"] == "default" and [t["type"] for t in body["teams"]] == ["fire"]
    fire = body["teams"][0]
    assert [c["team_id"] for c in fire["candidates"]] == ["F-NEAR", "F-FAR"]
    assert fire["suggested"] == ["F-NEAR"] and fire["needed"] == 1
    near = fire["candidates"][0]
    assert near["eta_s"] < fire["candidates"][1]["eta_s"]
    # every reason as a code with parameters, and its text in Chinese for API clients
    codes = [r["code"] for r in near["reason_codes"]]
    assert codes == ["travel.great_circle", "eta", "team.position_age", "team.on_shift_until"]
    assert near["reasons"] == [r["text"] for r in near["reason_codes"]]
    assert near["reason_codes"][0]["params"]["road_factor"] == 1.3
    assert near["reason_codes"][1]["params"]["eta_s"] == pytest.approx(near["eta_s"], abs=0.05)
    assert "道路系数 1.3" in near["reasons"][0] and near["reasons"][1].startswith("预计")
    assert near["eta"].endswith("秒")
    skipped = {s["team_id"]: s["reason"] for s in fire["skipped"]}
    assert skipped == {
        "F-REST": "not_on_shift",
        "F-BUSY": "busy",
        "F-STALE": "stale_position",
        "F-OFF": "off_duty",
        FIELD_TEAM: "not_on_shift",
        OTHER_TEAM: "not_on_shift",
    }
    by_team = {s["team_id"]: s for s in fire["skipped"]}
    for s in fire["skipped"]:
        assert s["code"] == f"team.skipped.{s['reason']}"
    stale = by_team["F-STALE"]
    assert stale["params"]["age_s"] == pytest.approx(3600, abs=60)
    assert stale["detail"].startswith("位置已过时（最后上报于 1 小时")
    assert (by_team["F-BUSY"]["params"], by_team["F-BUSY"]["detail"]) == (
        {"status": "en_route"},
        "状态：在途",
    )
    assert (by_team["F-OFF"]["params"], by_team["F-OFF"]["detail"]) == ({}, "不在岗")
    assert by_team["F-REST"]["detail"] == "不在班（此刻无排班）"

    # dispatching the first recommendation takes it out of the next ranking
    assert dispatch(command_client, op, inc, "F-NEAR").status_code == 201
    again = command_client.get(f"/incidents/{inc['id']}/recommendations", headers=op).json()["teams"][0]
    assert again["assigned"] == 1 and again["needed"] == 0 and again["suggested"] == []
    assert {"team_id": "F-NEAR", "reason": "excluded"}.items() <= next(
        s for s in again["skipped"] if s["team_id"] == "F-NEAR"
    ).items()

    hazmat = open_incident(command_client, op, type="hazmat_leak", title="化工园区 氨气泄漏")
    types = [
        t["type"]
        for t in command_client.get(f"/incidents/{hazmat['id']}/recommendations", headers=op).json()["teams"]
    ]
    assert types == ["hazmat", "fire"]
    assert (
        command_client.get(f"/incidents/{inc['id']}/recommendations", headers=login(FIELD_TEAM)).status_code
        == 403
    )


def test_recommendation_follows_the_active_plan_at_the_current_level(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    from command.services import incident_store

    op = login("operator1")
    url = command_settings.shared.database_url or ""
    add_team(url, "W-1", "water_rescue", position=(32.0450, 112.1460))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO warehouse (id, name, kind, lat, lon) VALUES"
            " ('W-CITY', '襄阳市应急物资储备库', 'government_stock', 32.03, 112.13)"
        )
        conn.execute(
            "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh)"
            " VALUES ('sandbag', '沙袋', 'sandbag', 'rescue_equipment', 'bag', '袋')"
        )
        conn.execute(
            "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity) VALUES"
            " ('LOT-1', 'W-CITY', 'sandbag', 5000)"
        )
    inc = open_incident(command_client, op, type="flood", title="下穿通道积水 车辆被困")

    async def activate() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
            incident, _ = await incident_store.load(conn, inc["id"], for_update=True)
            events = decide_activate_plan(
                incident,
                plan_id="flood",
                plan_version=1,
                level=ResponseLevel.IV,
                actor=Actor("operator1", Role.OPERATOR),
                at=datetime.now(UTC),
                expected_version=incident.version,
            )
            await incident_store.append(conn, incident, events, audit_action="incident.plan_activate")

    asyncio.run(activate())
    body = command_client.get(f"/incidents/{inc['id']}/recommendations", headers=op).json()
    assert body["basis"]["source"] == "plan" and body["basis"]["plan_id"] == "flood"
    needs = {t["type"]: t["count"] for t in body["teams"]}
    assert needs == {"water_rescue": 1, "comprehensive": 2, "police": 1}
    water = next(t for t in body["teams"] if t["type"] == "water_rescue")
    assert water["suggested"] == ["W-1"]
    comprehensive = next(t for t in body["teams"] if t["type"] == "comprehensive")
    assert comprehensive["eligible"] == 0 and comprehensive["short"] == 2
    sandbags = next(s for s in body["supplies"] if s["item"] == "sandbag")
    assert sandbags["candidates"][0]["warehouse_id"] == "W-CITY" and sandbags["candidates"][0]["covers"]
    city = sandbags["candidates"][0]
    assert [r["code"] for r in city["reason_codes"]] == [
        "travel.great_circle",
        "warehouse.stock.covers",
        "eta",
    ]
    assert city["reason_codes"][1]["params"] == {"kind": "government_stock", "available": 5000}
    assert city["reasons"][1] == "政府实物储备：可用 5000，足以满足"
    assert city["reasons"] == [r["text"] for r in city["reason_codes"]]
    assert sandbags["plan"] == [
        {
            "warehouse_id": "W-CITY",
            "quantity": sandbags["quantity"],
            "eta_s": sandbags["candidates"][0]["eta_s"],
        }
    ]
