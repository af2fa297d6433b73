"""A drill beside live operations never touches them, and its purge leaves nothing.

The drill's alarms take the real path — the Redis stream the command service consumes,
marked as ingest marks them (source ``ex/<id>/...``, ``details.exercise_id``) — next to
live alarms at the same place. Live views (incident queue, KPIs, teams board, /ws for
an operator, live recommendations, live stock) are the same before and after the drill,
while the exercise's own views see it. Purge then removes every row of the exercise, in
every table, and not one live row. Team statuses inside a drill arrive over MQTT on
``exercise/v1/<id>/teams/v1/<team>/status`` and change only the drill's roster.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from command.services import exercises as exercise_service
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM, relay_alarm
from tests.command.test_dispatch_api import isolated_settings
from tests.command.test_end_to_end import publisher
from tests.command.test_incidents_api import wait_for
from tests.command.test_reserve_api import seed_stock
from tests.conftest import Broker
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

EX = "EX-ISO-1"
PREFIX = f"ex/{EX}/"
PLACE = (32.0420, 112.1440)  # 樊城区 人民路: a live fire and the drill's fire, side by side
_n = itertools.count()


@pytest.fixture(autouse=True)
def scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "iso.yaml").write_text("injects: []\n", encoding="utf-8")
    monkeypatch.setattr(exercise_service, "SCENARIOS_DIR", directory)


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return isolated_settings(make_settings)  # an MQTT session and share group of its own


def push(
    settings: Settings,
    msg_id: str,
    *,
    exercise_id: str | None,
    kind: str = "call",
    category: str = "fire",
    place: tuple[float, float] = PLACE,
) -> str:
    """An alarm on the command service's stream, as ingest relays it; returns its id."""
    network = {"call": "police", "video": "video"}.get(kind, "community")
    live_source = f"{network}/{ {'call': 'sys110', 'video': 'CAM-ISO'}.get(kind, 'GW-r1c1') }"
    source = f"ex/{exercise_id}/{live_source}" if exercise_id else live_source
    details: dict[str, Any] = {"exercise_id": exercise_id} if exercise_id else {}
    if kind == "video":
        details |= {"confidence": 0.5}  # not sure enough to promote: the alarm inbox
    if kind == "report":
        details |= {"reporter": "网格员张三", "description": "人行道违停"}
    return relay_alarm(
        settings,
        alarm_id=f"{source}#{msg_id}",
        kind=kind,
        source=source,
        msg_id=msg_id,
        network=network,
        ts=datetime.now(UTC),
        place=place,
        category=category,
        details=details,
    )


def one(settings: Settings, query: str, *params: Any) -> Any:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def incident_of(settings: Settings, alarm_id: str) -> str:
    found: str = wait_for(
        lambda: one(settings, "SELECT incident_id FROM incident_source WHERE alarm_id = %s", alarm_id)
    )
    return found


def case_of(settings: Settings, alarm_id: str) -> str:
    found: str = wait_for(
        lambda: one(settings, "SELECT id FROM grid_case WHERE source_alarm_id = %s", alarm_id)
    )
    return found


def inbox_row_of(settings: Settings, alarm_id: str) -> str:
    found: str = wait_for(
        lambda: one(settings, "SELECT triage_row_id FROM alarm_inbox WHERE alarm_id = %s", alarm_id)
    )
    return found


def store_feed_rows(settings: Settings, exercise_id: str | None) -> None:
    """What ingest stores for one message of each feed (live, or behind the exercise's
    prefix): feed rows, a dead letter, ledger entries and the alarm outbox."""
    now = datetime.now(UTC)
    n = next(_n)
    src = f"ex/{exercise_id}/" if exercise_id else ""
    with psycopg.connect(settings.shared.database_url or "") as conn:
        common = (now, now, False)
        conn.execute(
            "INSERT INTO sensor_reading (ts, received_at, ts_from_receipt, network, source_id, msg_id,"
            " device_id, kind, value, unit, exercise_id)"
            " VALUES (%s, %s, %s, 'venue', 'D-1', %s, 'D-1', 'smoke', 0.3, 'obs', %s)",
            (*common, f"s-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO video_alert (ts, received_at, ts_from_receipt, network, source_id, msg_id,"
            " camera_id, event, confidence, lat, lon, exercise_id)"
            " VALUES (%s, %s, %s, 'video', 'C-1', %s, 'C-1', 'fire_smoke', 0.9, 32.04, 112.14, %s)",
            (*common, f"v-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO emergency_call (ts, received_at, ts_from_receipt, network, source_id, msg_id,"
            " call_id, category, lat, lon, address, description, caller, exercise_id) VALUES (%s, %s, %s,"
            " 'police', 'sys110', %s, %s, 'fire', 32.04, 112.14, '人民路', '冒烟', '13800138000', %s)",
            (*common, f"c-{n}", f"c-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO field_report (ts, received_at, ts_from_receipt, network, source_id, msg_id,"
            " reporter, category, description, lat, lon, exercise_id) VALUES (%s, %s, %s, 'community',"
            " 'GW-r1c1', %s, '张三', 'illegal_parking', '违停', 32.04, 112.14, %s)",
            (*common, f"r-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO team_position (ts, received_at, ts_from_receipt, team_id, msg_id, lat, lon,"
            " exercise_id) VALUES (%s, %s, %s, %s, %s, 32.05, 112.14, %s)",
            (*common, FIELD_TEAM, f"p-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO team_status (ts, received_at, ts_from_receipt, team_id, msg_id, status, exercise_id)"
            " VALUES (%s, %s, %s, %s, %s, 'off_duty', %s)",
            (*common, FIELD_TEAM, f"t-{n}", exercise_id),
        )
        conn.execute(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, exercise_id)"
            " VALUES (%s, %s, 'not json', 8, 'bad JSON', %s)",
            (
                now,
                f"{'exercise/v1/' + exercise_id + '/' if exercise_id else ''}wuwang/v1/police/call/sys110",
                exercise_id,
            ),
        )
        for feed, msg in (("sensor", f"s-{n}"), ("call", f"c-{n}")):
            conn.execute(
                "INSERT INTO message_ledger (source, msg_id, feed) VALUES (%s, %s, %s)",
                (f"{src}{'venue/D-1' if feed == 'sensor' else 'police/sys110'}", msg, feed),
            )
        conn.execute(
            "INSERT INTO alarm_outbox (alarm_id, payload, published_at) VALUES (%s, %s, now())",
            (
                f"{src}police/sys110#c-{n}",
                orjson.dumps({"details": {"exercise_id": exercise_id} if exercise_id else {}}).decode(),
            ),
        )


# Every table an exercise leaves rows in, and how to find its rows there.
def exercise_rows(settings: Settings, incidents: list[str]) -> dict[str, int]:
    by_id = "exercise_id = %(ex)s"
    where = {
        **{
            t: by_id
            for t in (
                "sensor_reading",
                "video_alert",
                "emergency_call",
                "field_report",
                "team_position",
                "team_status",
                "dead_letter",
                "alarm_inbox",
                "triage_row",
                "incident",
                "incident_event",
                "dispatch_order",
                "grid_case",
                "grid_case_step",
                "exercise_team_state",
                "exercise_stock_cut",
            )
        },
        "message_ledger": "starts_with(source, %(prefix)s)",
        "mqtt_outbox": "starts_with(topic, %(topic_prefix)s)",
        "alarm_outbox": "starts_with(alarm_id, %(prefix)s)",
        "incident_source": "starts_with(alarm_id, %(prefix)s)",
        "stock_allocation": "incident_id = ANY(%(incidents)s)",
        "stock_movement": "incident_id = ANY(%(incidents)s)",
    }
    params = {"ex": EX, "prefix": PREFIX, "topic_prefix": f"exercise/v1/{EX}/", "incidents": incidents}
    with psycopg.connect(settings.shared.database_url or "") as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table} WHERE {cond}", params).fetchone()[0])  # type: ignore[index]
            for table, cond in where.items()
        }


def all_rows(settings: Settings, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


def live_views(client: TestClient, operator: dict[str, str], commander: dict[str, str]) -> dict[str, Any]:
    kpis = client.get("/kpis", headers=commander).json()
    for moving in ("window_start", "window_end"):
        kpis.pop(moving)
    return {
        "incidents": client.get("/incidents?open=false", headers=operator).json(),
        "kpis": kpis,
        "teams": [
            (t["id"], t["status"], t["status_at"], t["active_order"])
            for t in client.get("/teams", headers=operator).json()
        ],
        "grid": client.get("/grid/cases", headers=operator).json(),
        "inbox": client.get("/inbox", headers=operator).json(),
        "stock": client.get("/reserve/stock", headers=operator).json(),
    }


def skipped(recommendations: dict[str, Any], team_id: str) -> str | None:
    for need in recommendations["teams"]:
        for s in need["skipped"]:
            if s["team_id"] == team_id:
                return str(s["reason"])
    return None


def test_a_drill_beside_live_operations_changes_nothing_live_and_its_purge_leaves_nothing(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    s = command_settings
    operator, commander, planner = login("operator1"), login("commander1"), login("planner1")
    now = datetime.now(UTC)
    with psycopg.connect(s.shared.database_url or "") as conn:  # both fire teams on shift
        for team in (FIELD_TEAM, OTHER_TEAM):
            conn.execute(
                "INSERT INTO team_shift (team_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (team, now - timedelta(hours=2), now + timedelta(hours=10)),
            )
    seed_stock(s, [("L-ISO", "W-ISO", "first_aid_kit", 100, date.today() + timedelta(days=200))])

    # Live operations: a fire at the place, a traffic accident, a grid report; live feeds.
    live_fire = incident_of(s, push(s, "live-1", exercise_id=None))
    incident_of(s, push(s, "live-2", exercise_id=None, category="traffic", place=(32.30, 112.30)))
    case_of(s, push(s, "live-3", exercise_id=None, kind="report", category="illegal_parking"))
    far = (32.20, 112.25)  # a loitering camera alert: the live alarm inbox
    live_row = inbox_row_of(
        s, push(s, "live-4", exercise_id=None, kind="video", category="loitering", place=far)
    )
    store_feed_rows(s, None)
    before = live_views(command_client, operator, commander)
    live_recommendations = command_client.get(
        f"/incidents/{live_fire}/recommendations", headers=operator
    ).json()

    token = operator["Authorization"].removeprefix("Bearer ")
    with command_client.websocket_connect(f"/ws?token={token}") as ws:
        assert ws.receive_json()["type"] == "snapshot"

        # The drill: registered, running (the runner's part), its alarms on the same stream.
        r = command_client.post(
            "/exercises", headers=planner, json={"kind": "scenario", "scenario": "iso.yaml", "id": EX}
        )
        assert r.status_code == 201, r.text
        with psycopg.connect(s.shared.database_url or "") as conn:
            conn.execute("UPDATE exercise SET status = 'running', started_at = now() WHERE id = %s", (EX,))
        drill_fire = incident_of(s, push(s, "ex-1", exercise_id=EX))  # at the live fire's very place
        assert incident_of(s, push(s, "ex-2", exercise_id=EX)) == drill_fire  # joins the drill's fire
        drill_other = incident_of(s, push(s, "ex-3", exercise_id=EX, place=(32.10, 112.20)))
        drill_case = case_of(s, push(s, "ex-4", exercise_id=EX, kind="report", category="illegal_parking"))
        assert drill_fire != live_fire and drill_other != live_fire
        # the drill's camera alert at the same place folds into a row of the drill's own
        drill_row = inbox_row_of(
            s, push(s, "ex-5", exercise_id=EX, kind="video", category="loitering", place=far)
        )
        assert drill_row != live_row
        assert [r["row_id"] for r in command_client.get("/inbox", headers=planner).json()] == [drill_row]
        store_feed_rows(s, EX)

        # The planner works the drill: a team off duty in the drill, an order, a hold, injects.
        with psycopg.connect(s.shared.database_url or "") as conn:
            conn.execute(
                "INSERT INTO exercise_team_state (exercise_id, team_id, status, changed_at)"
                " VALUES (%s, %s, 'off_duty', now())",
                (EX, FIELD_TEAM),
            )
        version = command_client.get(f"/incidents/{drill_fire}", headers=planner).json()["incident"][
            "version"
        ]
        r = command_client.post(
            f"/incidents/{drill_fire}/dispatch",
            headers=planner,
            json={"team_id": OTHER_TEAM, "expected_version": version},
        )
        assert r.status_code == 201, r.text
        r = command_client.post(
            f"/incidents/{drill_fire}/reserve",
            headers=planner,
            json={"item_code": "first_aid_kit", "quantity": 30},
        )
        assert r.status_code == 201 and r.json()["virtual"], r.text
        for inject in (
            {
                "kind": "warehouse_short",
                "warehouse_id": "W-ISO",
                "item_code": "first_aid_kit",
                "quantity": 60,
            },
            {"kind": "escalate", "msg_id": "ex-3", "level": 2, "reason": "现场报告有人员被困"},
        ):
            r = command_client.post(f"/exercises/{EX}/injects", headers=planner, json=inject)
            assert r.status_code == 200, r.text
        r = command_client.post(
            f"/grid/cases/{drill_case}/file", headers=planner, json={"expected_version": 1}
        )
        assert r.status_code == 200, r.text

        # The drill's roster: FIELD_TEAM off duty (the drill says so), OTHER_TEAM on the
        # drill's order; live, both are what they were.
        drill_recommendations = command_client.get(
            f"/incidents/{drill_other}/recommendations", headers=planner
        ).json()
        assert skipped(drill_recommendations, FIELD_TEAM) == "off_duty"
        assert skipped(drill_recommendations, OTHER_TEAM) == "busy"
        again = command_client.get(f"/incidents/{live_fire}/recommendations", headers=operator).json()
        assert all(skipped(again, t) == skipped(live_recommendations, t) for t in (FIELD_TEAM, OTHER_TEAM))
        assert skipped(again, FIELD_TEAM) not in ("off_duty", "busy")
        # The drill's stock: 100 on hand, 30 held by the drill, 60 cut by the inject → 10.
        short = command_client.post(
            f"/incidents/{drill_other}/reserve",
            headers=planner,
            json={"item_code": "first_aid_kit", "quantity": 11},
        )
        assert short.status_code == 409 and short.json()["detail"]["available"] == 10, short.text

        # Live views are exactly what they were.
        after = live_views(command_client, operator, commander)
        assert after == before
        # The exercise's own views see the drill.
        mine = command_client.get("/incidents", headers=planner).json()
        assert {i["id"] for i in mine} == {drill_fire, drill_other}
        assert all(i["exercise_id"] == EX for i in mine)
        drill_kpis = command_client.get(f"/kpis?exercise_id={EX}", headers=planner).json()
        assert drill_kpis["incidents"] == 2
        open_by_level = {b["level"]: b["open"] for b in drill_kpis["open_by_level"]}
        assert sum(open_by_level.values()) == 2 and open_by_level[2] >= 1  # the escalate inject
        assert before["kpis"]["incidents"] == 2
        drill_cases = command_client.get(f"/grid/cases?exercise_id={EX}", headers=planner).json()
        assert [c["id"] for c in drill_cases] == [drill_case]
        detail = command_client.get(f"/exercises/{EX}", headers=planner).json()
        assert detail["counts"] == {
            "incidents": 2,
            "open_incidents": 2,
            "alarms": 5,  # ex-1 … ex-5: the camera alert in the drill's inbox counts as an alarm
            "orders": 1,
            "grid_cases": 1,
        }
        # A drill's order never goes to a real team's device: only to the drill's copy of
        # the team's topic (the drill runner's virtual crews).
        assert one(
            s,
            "SELECT array_agg(o.topic) FROM mqtt_outbox o JOIN dispatch_order d ON d.order_id = o.order_id"
            " WHERE d.exercise_id = %s",
            EX,
        ) == [f"exercise/v1/{EX}/teams/v1/{OTHER_TEAM}/dispatch"]

        # /ws for an operator: a live sentinel, and nothing of the drill before it.
        version = command_client.get(f"/incidents/{live_fire}", headers=operator).json()["incident"][
            "version"
        ]
        r = command_client.post(
            f"/incidents/{live_fire}/notes",
            headers=operator,
            json={"expected_version": version, "text": "哨兵"},
        )
        assert r.status_code == 200, r.text
        seen = []
        for _ in range(200):
            change = ws.receive_json()
            seen.append(change)
            if (
                change["type"] == "incident"
                and change["id"] == live_fire
                and change["version"] == version + 1
            ):
                break
        else:
            raise AssertionError("the live sentinel never arrived")
        assert all(c.get("exercise_id") is None for c in seen), [c for c in seen if c.get("exercise_id")]
        drill_ids = {drill_fire, drill_other, drill_case, EX, drill_row}
        assert not [c for c in seen if c["id"] in drill_ids or PREFIX in str(c["id"])]

    # The drill is over; purge it.
    with psycopg.connect(s.shared.database_url or "") as conn:
        conn.execute("UPDATE exercise SET status = 'finished', finished_at = now() WHERE id = %s", (EX,))
    incidents = [drill_fire, drill_other]
    drill_before = exercise_rows(s, incidents)
    empty = sorted(t for t, n in drill_before.items() if n == 0)
    assert not empty, f"the drill left no rows in {empty}: the test does not exercise the purge there"
    tables = sorted(drill_before)
    totals_before = all_rows(s, tables)
    live_before = live_views(command_client, operator, commander)

    r = command_client.delete(f"/exercises/{EX}", headers=planner)
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]

    assert exercise_rows(s, incidents) == dict.fromkeys(tables, 0)
    totals_after = all_rows(s, tables)
    assert totals_after == {t: totals_before[t] - drill_before[t] for t in tables}  # live rows all stay
    assert {t: deleted[t] for t in tables} == drill_before
    assert live_views(command_client, operator, commander) == live_before
    assert command_client.get("/incidents", headers=planner).json() == []
    # The exercise stays on the record, and so does the audit log (append-only, never purged).
    assert command_client.get(f"/exercises/{EX}", headers=planner).json()["status"] == "purged"
    assert (
        one(s, "SELECT count(*) FROM audit_log WHERE action = 'exercise.purge' AND object_id = %s", EX) == 1
    )
    assert (
        one(s, "SELECT count(*) FROM audit_log WHERE object_type = 'incident' AND object_id = %s", drill_fire)
        > 0
    )
    # The append-only rule is back outside the purge's transaction.
    with psycopg.connect(s.shared.database_url or "") as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM incident_event WHERE incident_id = %s", (live_fire,))


def test_purging_an_imported_dataset_removes_its_calls_only(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        for dataset in ("DS-A", "DS-B"):
            conn.execute(
                "INSERT INTO exercise (id, name, kind, source, status, created_by)"
                " VALUES (%s, %s, 'import', 'calls.csv', 'finished', 'planner1')",
                (dataset, dataset),
            )
            for n in (1, 2, 3):
                conn.execute(
                    "INSERT INTO imported_call (dataset_id, line_no, ts, lat, lon, category, description)"
                    " VALUES (%s, %s, now() - interval '400 days', 32.04, 112.14, 'fire', '冒烟')",
                    (dataset, n),
                )
    r = command_client.delete("/exercises/DS-A", headers=login("planner1"))
    assert r.status_code == 200 and r.json()["deleted"]["imported_call"] == 3, r.text
    assert one(command_settings, "SELECT count(*) FROM imported_call WHERE dataset_id = 'DS-A'") == 0
    assert one(command_settings, "SELECT count(*) FROM imported_call WHERE dataset_id = 'DS-B'") == 3


@pytest.mark.mosquitto
def test_team_statuses_inside_a_drill_change_the_drills_roster_only(
    command_client: TestClient, command_settings: Settings, mqtt_broker: Broker, login: Login
) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("needs Mosquitto (ACLs, shared subscriptions)")
    s = command_settings
    planner, operator = login("planner1"), login("operator1")
    r = command_client.post(
        "/exercises", headers=planner, json={"kind": "scenario", "scenario": "iso.yaml", "id": EX}
    )
    assert r.status_code == 201, r.text
    live_before = command_client.get(f"/teams/{FIELD_TEAM}", headers=operator).json()
    sent_at = datetime.now(UTC)
    with publisher(mqtt_broker, "simulator") as runner:  # the drill runner's account
        for n, status in enumerate(("en_route", "off_duty"), start=1):
            at = sent_at - timedelta(seconds=10 - n)
            body = {"id": f"st-{n}", "ts": at.isoformat(), "status": status, "seq": n}
            runner.publish(
                f"exercise/v1/{EX}/teams/v1/{FIELD_TEAM}/status", orjson.dumps(body), qos=1
            ).result(timeout=10)
        # And one for an exercise that does not exist: ignored.
        runner.publish(
            f"exercise/v1/EX-NOWHERE/teams/v1/{FIELD_TEAM}/status",
            orjson.dumps({"id": "st-x", "status": "off_duty"}),
            qos=1,
        ).result(timeout=10)

    def drill_status() -> str | None:
        teams = command_client.get(f"/exercises/{EX}", headers=planner).json()["teams"]
        return teams[0]["status"] if teams and teams[0]["status"] == "off_duty" else None

    assert wait_for(drill_status) == "off_duty"
    assert command_client.get(f"/teams/{FIELD_TEAM}", headers=operator).json() == live_before
    assert one(s, "SELECT status FROM team WHERE id = %s", FIELD_TEAM) == "available"
    assert one(s, "SELECT count(*) FROM exercise_team_state WHERE exercise_id = 'EX-NOWHERE'") == 0
    assert one(s, "SELECT count(*) FROM audit_log WHERE action = 'exercise.team_status'") == 2
