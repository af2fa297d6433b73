"""Virtual crews (模拟队伍): the pure crew core, and a drill's order answered end to end.

The end-to-end test runs the real path: the command service (HTTP, its MQTT side and
outbox relay), the ingest, the drill runner with virtual crews, on the session's
Mosquitto with the project's ACL, PostgreSQL and Redis. A drill incident is dispatched
to a team; the crew acknowledges, drives (exercise team positions stored by ingest),
arrives (the incident records the team's arrival) and the after-action report has a
time to on scene and a track — while the live team row, live positions and the live
GEO set stay as they were.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.command.conftest as command_fixtures
from command.services.dispatch import OrderAck
from simulators.exercise_run import RunReport, TimedMessage, run_exercise
from simulators.streets import Route
from simulators.virtual_crews import (
    CrewAction,
    CrewConfig,
    CrewOrder,
    CrewTeam,
    StreetRouter,
    VirtualCrews,
    plan_crew,
)
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import isolated_settings
from tests.command.test_end_to_end import ingest_running
from tests.command.test_exercise_isolation import incident_of, push
from tests.command.test_incidents_api import wait_for
from tests.conftest import Broker
from wuwang.city import load_districts
from wuwang.contract import encode, parse_message, team_topic
from wuwang.exercises import control_stream
from wuwang.geo import haversine_m
from wuwang.settings import Settings
from wuwang.travel import DEFAULT_SPEEDS_KMH

BASE = (32.0500, 112.1400)  # 樊城区 (the test teams' base)
SCENE = (32.0420, 112.1440)
TEAM = CrewTeam("T-FIRE-02", "fire", *BASE, 420606)
ORDER = CrewOrder("ORD-20261123-0123456789", "T-FIRE-02", "INC-20261123-000001", *SCENE)
FAST = CrewConfig(ack_s=(2.0, 4.0), turnout_s=(10.0, 20.0), position_every_s=10.0, on_scene_s=60.0)


def _statuses(plan: list[CrewAction]) -> list[str]:
    return [a.payload["status"] for a in plan if a.leaf == "status"]


def _check_contract(plan: list[CrewAction]) -> None:
    """Every action, as the runner sends it (ts stamped), is a valid v1 message / ack."""
    for a in plan:
        payload = {**a.payload, "ts": "2026-11-23T19:30:00+08:00", "seq": 1}
        if a.leaf == "ack":
            ack = OrderAck.model_validate(a.payload)
            assert ack.status == "accepted" and ack.order_id == ORDER.order_id
        else:
            msg = parse_message(team_topic(a.team_id, a.leaf), encode(payload), datetime.now(UTC))
            assert msg.topic.source_id == a.team_id


# --- the pure core -------------------------------------------------------------------------


def test_a_crew_acks_rolls_drives_arrives_stays_and_returns_to_base() -> None:
    plan = plan_crew(ORDER, TEAM, BASE, 100.0, seed=7)
    offsets = [a.offset_s for a in plan]
    assert offsets == sorted(offsets) and offsets[0] > 100.0
    assert plan[0].leaf == "ack" and plan[0].payload["status"] == "accepted"
    assert _statuses(plan) == ["en_route", "on_scene", "returning", "available"]
    on_scene = next(a for a in plan if a.payload.get("status") == "on_scene")
    assert on_scene.payload["incident_id"] == ORDER.incident_id
    rolled = next(a for a in plan if a.payload.get("status") == "en_route")
    # At the fire engine's typical speed, straight line (the default route).
    drive_s = haversine_m(*BASE, *SCENE) / (DEFAULT_SPEEDS_KMH["fire"] / 3.6)
    assert on_scene.offset_s - rolled.offset_s == pytest.approx(drive_s, rel=1e-6)
    fixes = [a for a in plan if a.leaf == "position"]
    arrival_fix = max((a for a in fixes if a.offset_s <= on_scene.offset_s), key=lambda a: a.offset_s)
    assert (arrival_fix.payload["lat"], arrival_fix.payload["lon"]) == pytest.approx(SCENE, abs=1e-6)
    assert (fixes[-1].payload["lat"], fixes[-1].payload["lon"]) == pytest.approx(BASE, abs=1e-6)
    returning = next(a for a in plan if a.payload.get("status") == "returning")
    assert returning.offset_s - on_scene.offset_s == CrewConfig().on_scene_s
    assert len({a.payload["id"] for a in plan}) == len(plan)
    _check_contract(plan)
    assert plan_crew(ORDER, TEAM, BASE, 100.0, seed=7) == plan  # deterministic
    assert plan_crew(ORDER, TEAM, BASE, 100.0, seed=8) != plan


_lat = st.floats(31.4, 32.6)
_lon = st.floats(111.3, 113.1)


@settings(max_examples=60, deadline=None)
@given(
    start=st.tuples(_lat, _lon),
    scene=st.tuples(_lat, _lon),
    kind=st.sampled_from(sorted(k for k in DEFAULT_SPEEDS_KMH if k != "supply_truck")),
    now=st.floats(0, 10_000),
    seed=st.integers(0, 2**32),
    every=st.floats(1.0, 120.0),
)
def test_crew_plans_hold_their_invariants(
    start: tuple[float, float],
    scene: tuple[float, float],
    kind: str,
    now: float,
    seed: int,
    every: float,
) -> None:
    team = CrewTeam("T-X", kind, *BASE)
    order = CrewOrder("ORD-X", "T-X", "INC-X", *scene)
    config = CrewConfig(position_every_s=every)
    plan = plan_crew(order, team, start, now, seed=seed, config=config)
    assert plan == plan_crew(order, team, start, now, seed=seed, config=config)
    offsets = [a.offset_s for a in plan]
    assert offsets == sorted(offsets) and offsets[0] >= now + config.ack_s[0]
    assert _statuses(plan) == ["en_route", "on_scene", "returning", "available"]
    fixes = [a for a in plan if a.leaf == "position"]
    # consecutive fixes are never further apart than the team drives in one interval
    mps = DEFAULT_SPEEDS_KMH[kind] / 3.6
    for a, b in itertools.pairwise(fixes):
        if b.offset_s - a.offset_s <= every + 1e-6:
            assert haversine_m(a.payload["lat"], a.payload["lon"], b.payload["lat"], b.payload["lon"]) <= (
                mps * (b.offset_s - a.offset_s) * 1.01 + 1.0  # lat/lon interpolation
            )
    assert (fixes[-1].payload["lat"], fixes[-1].payload["lon"]) == pytest.approx(BASE, abs=1e-6)
    assert all(-90 <= f.payload["lat"] <= 90 and 0 <= f.payload.get("heading", 0) <= 360 for f in fixes)


def test_the_roster_of_crews_on_the_clock() -> None:
    crews = VirtualCrews(seed="EX-1", config=FAST)
    assert crews.order(ORDER, TEAM, 0.0) and not crews.order(ORDER, TEAM, 5.0)  # a resent order
    assert crews.orders == 1 and crews.pending() > 0
    first = crews.next_offset()
    assert first is not None and crews.due(first - 0.001) == []
    (ack,) = crews.due(first)
    assert ack.leaf == "ack" and "seq" not in ack.payload
    # A seek far ahead: every status comes out, of the positions only the last.
    rest = crews.due(10_000.0)
    assert crews.pending() == 0 and crews.next_offset() is None
    assert _statuses(rest) == ["en_route", "on_scene", "returning", "available"]
    assert [a.leaf for a in rest].count("position") == 1 and crews.superseded > 0
    seqs = [a.payload["seq"] for a in rest]
    assert seqs == list(range(1, len(rest) + 1))  # per team, in the order handed out
    assert crews.position_of(TEAM.team_id) == pytest.approx(BASE, abs=1e-6)

    # A new order while the crew is out replaces what it had left, from where it was.
    crews.order(ORDER, TEAM, 0.0)  # seen: ignored
    second = CrewOrder("ORD-2", TEAM.team_id, "INC-2", 32.06, 112.15)
    third = CrewOrder("ORD-3", TEAM.team_id, "INC-3", 32.03, 112.13)
    crews.order(second, TEAM, 20_000.0)
    early = crews.due(20_000.0 + 60.0)
    assert early and all(a.payload["id"].startswith("vc-ORD-2-") for a in early)
    crews.order(third, TEAM, 20_000.0 + 60.0)
    later = crews.due(100_000.0)
    assert later and all(a.payload["id"].startswith("vc-ORD-3-") for a in later)
    assert [a.payload["seq"] for a in early + later if a.leaf != "ack"] == list(
        range(seqs[-1] + 1, seqs[-1] + 1 + len(early + later) - 2)  # two acks
    )


def test_orders_that_are_not_for_a_crew() -> None:
    good = {
        "kind": "dispatch",
        "order_id": "O-1",
        "team_id": "T-1",
        "incident_id": "I-1",
        "lat": 32.0,
        "lon": 112.0,
    }
    assert CrewOrder.from_payload("T-1", good) == CrewOrder("O-1", "T-1", "I-1", 32.0, 112.0)
    assert CrewOrder.from_payload("T-2", good) is None  # another team's order
    assert CrewOrder.from_payload("T-1", {**good, "kind": "release"}) is None
    assert CrewOrder.from_payload("T-1", {**good, "lat": None}) is None
    assert CrewOrder.from_payload("T-1", {**good, "lat": 91}) is None
    with pytest.raises(ValueError):
        CrewConfig(ack_s=(5.0, 1.0))


def test_crews_drive_on_the_district_street_lattice_when_they_can() -> None:
    router = StreetRouter(load_districts())
    inside = router(TEAM, *BASE, *SCENE)
    assert len(inside.points) > 2  # along the lattice
    assert inside.length_m >= haversine_m(*BASE, *SCENE)
    far = router(TEAM, *BASE, 31.70, 111.40)  # out of the team's district: straight
    assert far == Route.through([BASE, (31.70, 111.40)])
    plan = plan_crew(ORDER, TEAM, BASE, 0.0, route=router)
    rolled, on_scene = (
        next(a for a in plan if a.payload.get("status") == s) for s in ("en_route", "on_scene")
    )
    assert on_scene.offset_s - rolled.offset_s == pytest.approx(inside.length_m / (40.0 / 3.6))


# --- end to end ----------------------------------------------------------------------------


EX = "EX-CREW-1"
# the command service's fixtures (tests/command/conftest.py) for this test outside tests/command
command_client = command_fixtures.command_client
login = command_fixtures.login


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings], mqtt_broker: Broker) -> Settings:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs, shared subscriptions)")
    return isolated_settings(make_settings, command_ack_timeout_s=600)


def _one(url: str, query: str, *params: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _live_team(url: str, rds: redis.Redis, team_id: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status, status_at, lat, lon, position_at FROM team WHERE id = %s", (team_id,)
        ).fetchone()
        live_positions = conn.execute(
            "SELECT count(*) FROM team_position WHERE team_id = %s AND exercise_id IS NULL", (team_id,)
        ).fetchone()
    return (
        row,
        live_positions,
        rds.geopos("wuwang:teams:geo", team_id),
        rds.hget("wuwang:teams:geo:at", team_id),
    )


@pytest.mark.mosquitto
@pytest.mark.slow
def test_a_drill_order_is_answered_by_a_virtual_crew_that_arrives(
    command_client: TestClient,
    command_settings: Settings,
    make_settings: Callable[..., Settings],
    login: Callable[[str], dict[str, str]],
) -> None:
    s = command_settings
    url = s.shared.database_url or ""
    planner, operator = login("planner1"), login("operator1")
    rds = redis.Redis.from_url(s.shared.redis_url or "")
    live_before = _live_team(url, rds, OTHER_TEAM)
    live_feed_before = _one(url, "SELECT count(*) FROM team_position WHERE exercise_id IS NULL")
    # Keeps the run going until the test stops it (a crew's run ends with the script's).
    keep_alive = [TimedMessage(3000.0, f"teams/v1/{FIELD_TEAM}/status", {"id": "end", "status": "available"})]
    result: list[RunReport] = []
    runner = threading.Thread(
        target=lambda: result.append(
            run_exercise(
                make_settings(account="simulator"),
                EX,
                keep_alive,
                speed=20,
                virtual_crews=True,
                crew_config=FAST,
                name="模拟队伍测试",
            )
        ),
        name="drill-runner",
    )
    with ingest_running(make_settings, s):
        runner.start()
        try:
            wait_for(lambda: _one(url, "SELECT status FROM exercise WHERE id = %s", EX) == "running")
            incident = incident_of(s, push(s, "crew-1", exercise_id=EX, place=SCENE))
            version = command_client.get(f"/incidents/{incident}", headers=planner).json()["incident"][
                "version"
            ]
            r = command_client.post(
                f"/incidents/{incident}/dispatch",
                headers=planner,
                json={"team_id": OTHER_TEAM, "expected_version": version},
            )
            assert r.status_code == 201, r.text
            order_id = r.json()["order"]["order_id"]
            assert _one(url, "SELECT topic FROM mqtt_outbox WHERE order_id = %s", order_id) == (
                f"exercise/v1/{EX}/teams/v1/{OTHER_TEAM}/dispatch"
            )

            # The crew acknowledges (the live ack path, for this exercise's order) …
            wait_for(
                lambda: (
                    _one(url, "SELECT status FROM dispatch_order WHERE order_id = %s", order_id) == "acked"
                )
            )
            assert _one(url, "SELECT ack_reason IS NULL FROM dispatch_order WHERE order_id = %s", order_id)
            # … drives (ingest stores its positions in the exercise) and arrives.
            wait_for(
                lambda: (
                    _one(
                        url,
                        "SELECT count(*) FROM incident_event"
                        " WHERE incident_id = %s AND kind = 'team_arrived'",
                        incident,
                    )
                    == 1
                ),
                timeout=60,
            )
            arrival = command_client.get(f"/incidents/{incident}", headers=planner).json()["incident"]
            assert arrival["state"] == "on_scene"
            actor = _one(
                url,
                "SELECT actor FROM incident_event WHERE incident_id = %s AND kind = 'team_arrived'",
                incident,
            )
            assert OTHER_TEAM in str(actor)
            # the drill crew's ack and rolling are on the drill incident's record too
            timeline = command_client.get(f"/incidents/{incident}", headers=planner).json()["timeline"]
            assert [e["kind"] for e in timeline if e["kind"].startswith("team_")] == [
                "team_dispatched",
                "team_acknowledged",
                "team_en_route",
                "team_arrived",
            ]
            wait_for(
                lambda: (
                    _one(
                        url,
                        "SELECT count(*) FROM team_position WHERE exercise_id = %s AND team_id = %s",
                        EX,
                        OTHER_TEAM,
                    )
                    >= 3
                )
            )
            assert _one(
                url,
                "SELECT status FROM exercise_team_state WHERE exercise_id = %s AND team_id = %s",
                EX,
                OTHER_TEAM,
            ) in ("on_scene", "returning", "available")

            # The after-action report: a time to on scene and the crew's track.
            report = command_client.get(f"/exercises/{EX}/report", headers=planner).json()
            assert report["kpis"]["time_to_on_scene"]["count"] == 1, report["kpis"]
            track = next(t for t in report["tracks"] if t["team_id"] == OTHER_TEAM)
            assert len(track["points"]) >= 2 and track["distance_m"] > 0

            # Live: the team row, its live positions and the live GEO set are untouched;
            # an operator sees no drill order and the live team is not on scene.
            assert _live_team(url, rds, OTHER_TEAM) == live_before
            assert (
                _one(url, "SELECT count(*) FROM team_position WHERE exercise_id IS NULL") == live_feed_before
            )
            team = command_client.get(f"/teams/{OTHER_TEAM}", headers=operator).json()
            assert team["status"] != "on_scene" and team.get("active_order") is None
        finally:
            rds.xadd(control_stream(EX), {"action": "stop", "value": ""})
            runner.join(30)
            rds.close()
    assert not runner.is_alive()
    assert result and result[0].crew_orders == 1 and result[0].crew_sent >= 5 and not result[0].refused
