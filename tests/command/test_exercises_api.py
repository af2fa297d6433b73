"""/exercises on real PostgreSQL and Redis: register (scenario, recorded window, imported
dataset), read, control (read back from the runner's Redis stream), injects (warehouse
short → the reserve's exercise picks; escalate → the incident a drill message joined),
purge, the role rules, 404s and 422s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from command.domain.exercises import (
    InvalidExercise,
    StockCut,
    apply_stock_cuts,
    check_control,
    decide_inject_level,
    default_relocation,
    overlay_team_statuses,
)
from command.domain.incidents import Actor, Forbidden, decide_open, replay
from command.domain.reserve import StockLot
from command.domain.rosters import Team, TeamStatus
from command.domain.vocabulary import IncidentType, ResponseLevel, Role, TeamType
from command.services import exercises as exercise_service
from simulators.replay import parse_replay_source
from tests.command.conftest import FIELD_TEAM
from tests.command.test_incidents_api import wait_for
from tests.command.test_reserve_api import seed_stock
from tests.helpers_replies import text_stream_entries
from wuwang.contract import Alarm, Network
from wuwang.exercises import ControlAction, control_stream
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]

SCENARIO = "chem_leak_drill.yaml"


@pytest.fixture(autouse=True)
def scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scenario directory of the test's own, with one scenario file in it."""
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / SCENARIO).write_text("name: 化工园区泄漏演练\ninjects: []\n", encoding="utf-8")
    monkeypatch.setattr(exercise_service, "SCENARIOS_DIR", directory)
    return directory


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/exercises", headers=headers, json={"kind": "scenario", "scenario": SCENARIO, **body})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def set_status(settings: Settings, exercise_id: str, status: str) -> None:
    """What the exercise runner does (engineer H4's side)."""
    with psycopg.connect(settings.shared.database_url or "") as conn:
        conn.execute("UPDATE exercise SET status = %s WHERE id = %s", (status, exercise_id))


def exercise_alarm(
    settings: Settings,
    exercise_id: str,
    msg_id: str,
    *,
    category: str = "fire",
    lat: float = 32.0420,
    lon: float = 112.1440,
) -> Alarm:
    """Put an alarm on the stream the command service consumes, as ingest raises it for
    a message published behind ``exercise/v1/<exercise_id>/`` (source ``ex/<id>/...``,
    ``details.exercise_id``). ``exercise_id=""`` makes a live one."""
    source = f"ex/{exercise_id}/police/sys110" if exercise_id else "police/sys110"
    alarm = Alarm(
        alarm_id=f"{source}#{msg_id}",
        kind="call",
        source=source,
        msg_id=msg_id,
        network=Network.POLICE,
        ts=datetime.now(UTC),
        lat=lat,
        lon=lon,
        grid_cell_id=None,
        category=category,
        summary=f"樊城区人民路 {category}",
        details={"exercise_id": exercise_id} if exercise_id else {},
    )
    r = redis.Redis.from_url(settings.shared.redis_url or "")
    r.xadd(settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()})
    r.close()
    return alarm


def incident_of(settings: Settings, alarm_id: str) -> str:
    def find() -> str | None:
        with psycopg.connect(settings.shared.database_url or "") as conn:
            row = conn.execute(
                "SELECT incident_id FROM incident_source WHERE alarm_id = %s", (alarm_id,)
            ).fetchone()
        return str(row[0]) if row else None

    found: str = wait_for(find)
    return found


def audit_actions(settings: Settings, exercise_id: str) -> list[str]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        rows = conn.execute(
            "SELECT action FROM audit_log WHERE object_type = 'exercise' AND object_id = %s"
            " AND outcome = 'ok' ORDER BY id",
            (exercise_id,),
        ).fetchall()
    return [r[0] for r in rows]


# --- registering and reading ----------------------------------------------------------------------


def test_register_a_scenario_list_and_read_it(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner, operator = login("planner1"), login("operator1")
    ex = create(command_client, planner, id="EX-API-1", name="化工园区泄漏演练", speed=10)
    assert ex["status"] == "planned" and ex["kind"] == "scenario"
    assert ex["source"] == SCENARIO and ex["scenario"] == SCENARIO and ex["replay"] is None
    assert ex["speed"] == 10 and ex["created_by"] == "planner1" and ex["stats"] == {}
    generated = create(command_client, login("commander1"))
    assert generated["id"].startswith("EX-") and "-scenario-" in generated["id"]
    assert generated["name"] == "化工园区泄漏演练"  # the scenario's own name

    listed = command_client.get("/exercises", headers=operator)  # operators read
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()] == [generated["id"], "EX-API-1"]  # newest first
    assert [e["id"] for e in command_client.get("/exercises?status=purged", headers=operator).json()] == []

    detail = command_client.get("/exercises/EX-API-1", headers=operator)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["teams"] == [] and body["stock_cuts"] == []
    assert body["counts"] == {"incidents": 0, "open_incidents": 0, "alarms": 0, "orders": 0, "grid_cases": 0}
    assert audit_actions(command_settings, "EX-API-1") == ["exercise.create"]


def test_a_dataset_from_another_city_is_replayed_onto_this_one(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    """Imported calls from San Francisco land on this city's map (distances kept) unless
    the planner says where; calls already here stay where they were."""
    planner = login("planner1")
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by)"
            " VALUES ('DS-SF', 'SF', 'import', 'sf.csv', 'finished', 'planner1')"
        )
        conn.execute(
            "INSERT INTO imported_call (dataset_id, line_no, ts, lat, lon, category, description)"
            " VALUES ('DS-SF', 1, '2020-04-07T23:53:08-07:00', 37.73, -122.43, 'medical', 'x')"
        )
        row = conn.execute("SELECT avg(center_lat), avg(center_lon) FROM district").fetchone()
    assert row is not None and row[0] is not None
    r = command_client.post("/exercises", headers=planner, json={"kind": "replay", "dataset_id": "DS-SF"})
    assert r.status_code == 201, r.text
    assert r.json()["replay"]["relocate_to"] == pytest.approx({"lat": row[0], "lon": row[1]})
    assert default_relocation((32.05, 112.14), (32.04, 112.13)) is None  # already here
    assert default_relocation(None, (32.04, 112.13)) is None  # an empty dataset


def test_register_replays_of_a_window_and_of_an_imported_dataset(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner = login("planner1")
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    end = start + timedelta(hours=2)
    r = command_client.post(
        "/exercises",
        headers=planner,
        json={"kind": "replay", "start": start.isoformat(), "end": end.isoformat(), "speed": 60},
    )
    assert r.status_code == 201, r.text
    window = r.json()
    assert window["replay"] == {"dataset_id": None, "start": start.isoformat(), "end": end.isoformat()}
    assert datetime.fromisoformat(window["sim_start"]) == start
    assert datetime.fromisoformat(window["sim_end"]) == end
    assert '"window"' in window["source"]

    # An imported dataset (registered by the import as an exercise of kind import).
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by)"
            " VALUES ('DS-2019', '2019年接警记录', 'import', 'calls-2019.csv', 'finished', 'planner1')"
        )
        for n, ts in enumerate((start - timedelta(days=400), start - timedelta(days=399)), start=1):
            conn.execute(
                "INSERT INTO imported_call (dataset_id, line_no, ts, lat, lon, category, description)"
                " VALUES ('DS-2019', %s, %s, 32.04, 112.14, 'fire', '冒烟')",
                (n, ts),
            )
    r = command_client.post("/exercises", headers=planner, json={"kind": "replay", "dataset_id": "DS-2019"})
    assert r.status_code == 201, r.text
    replay = r.json()
    assert replay["replay"] == {"dataset_id": "DS-2019", "start": None, "end": None}
    assert datetime.fromisoformat(replay["sim_start"]) == start - timedelta(days=400)
    assert datetime.fromisoformat(replay["sim_end"]) == start - timedelta(days=399)
    # With the dataset's options; the runner reads every source the API writes.
    r = command_client.post(
        "/exercises",
        headers=planner,
        json={
            "kind": "replay",
            "dataset_id": "DS-2019",
            "system_id": "sys110-sf",
            "relocate_to": {"lat": 32.01, "lon": 112.12},
            "start": (start - timedelta(days=400)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["replay"]["relocate_to"] == {"lat": 32.01, "lon": 112.12}
    for source in (window["source"], replay["source"], r.json()["source"]):
        parse_replay_source(source)
    relocated_window = {
        "kind": "replay",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "relocate_to": {"lat": 32.01, "lon": 112.12},
    }
    assert command_client.post("/exercises", headers=planner, json=relocated_window).status_code == 422
    # A dataset that is not one.
    for dataset in ("NOPE", "EX-NOT-AN-IMPORT"):
        if dataset == "EX-NOT-AN-IMPORT":
            create(command_client, planner, id=dataset)
        r = command_client.post("/exercises", headers=planner, json={"kind": "replay", "dataset_id": dataset})
        assert r.status_code == 422 and "dataset" in r.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "scenario", "scenario": "no_such_drill.yaml"},  # must exist
        {"kind": "scenario", "scenario": "../command/plans/flood.yaml"},  # a plain file name only
        {"kind": "scenario", "scenario": ".hidden"},
        {"kind": "scenario", "scenario": SCENARIO, "speed": 0},
        {"kind": "scenario", "scenario": SCENARIO, "speed": 101},
        {"kind": "scenario", "scenario": SCENARIO, "id": "EX/1"},
        {"kind": "import", "source": "x.csv"},
        {"kind": "replay", "start": "2026-01-05T08:00:00+08:00"},  # no end, no dataset
        {"kind": "replay", "start": "2026-01-05T10:00:00+08:00", "end": "2026-01-05T08:00:00+08:00"},
        {"kind": "replay", "start": "2026-01-05T08:00:00", "end": "2026-01-05T10:00:00"},  # no offset
        {"kind": "replay", "start": "2026-01-05T08:00:00+08:00", "end": "2999-01-01T00:00:00+08:00"},
    ],
)
def test_invalid_registrations_are_422(
    command_client: TestClient, login: Login, body: dict[str, Any]
) -> None:
    r = command_client.post("/exercises", headers=login("planner1"), json=body)
    assert r.status_code == 422, r.text


def test_an_exercise_id_is_registered_once(command_client: TestClient, login: Login) -> None:
    planner = login("planner1")
    create(command_client, planner, id="EX-ONCE")
    r = command_client.post(
        "/exercises", headers=planner, json={"kind": "scenario", "scenario": SCENARIO, "id": "EX-ONCE"}
    )
    assert r.status_code == 409 and "exists" in r.json()["detail"]


def test_unknown_exercises_are_404(command_client: TestClient, login: Login) -> None:
    planner = login("planner1")
    assert command_client.get("/exercises/EX-NONE", headers=planner).status_code == 404
    assert (
        command_client.post(
            "/exercises/EX-NONE/control", headers=planner, json={"action": "play"}
        ).status_code
        == 404
    )
    inject = {"kind": "escalate", "msg_id": "m1", "level": 2, "reason": "升级"}
    assert command_client.post("/exercises/EX-NONE/injects", headers=planner, json=inject).status_code == 404
    assert command_client.delete("/exercises/EX-NONE", headers=planner).status_code == 404


# --- control --------------------------------------------------------------------------------------


def test_control_commands_reach_the_runners_stream(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner = login("planner1")
    create(command_client, planner, id="EX-CTL")
    sent = []
    for body in (
        {"action": "play"},
        {"action": "speed", "value": 50},
        {"action": "seek", "value": 90.5},
        {"action": "pause"},
    ):
        r = command_client.post("/exercises/EX-CTL/control", headers=planner, json=body)
        assert r.status_code == 202, r.text
        sent.append(r.json())
    assert sent[0]["stream"] == control_stream("EX-CTL") == "wuwang:exercise:EX-CTL:control"

    rds = redis.Redis.from_url(command_settings.shared.redis_url or "", decode_responses=True)
    entries = text_stream_entries(rds, control_stream("EX-CTL"))
    rds.close()
    assert [e[0] for e in entries] == [s["entry_id"] for s in sent]
    fields = [e[1] for e in entries]
    assert [(f["action"], f["value"], f["by"]) for f in fields] == [
        ("play", "", "planner1"),
        ("speed", "50.0", "planner1"),
        ("seek", "90.5", "planner1"),
        ("pause", "", "planner1"),
    ]
    assert all(datetime.fromisoformat(f["at"]).tzinfo is not None for f in fields)
    assert audit_actions(command_settings, "EX-CTL").count("exercise.control") == 4


@pytest.mark.parametrize(
    "body",
    [
        {"action": "speed", "value": 0.5},
        {"action": "speed", "value": 101},
        {"action": "speed"},
        {"action": "seek", "value": -1},
        {"action": "seek"},
        {"action": "play", "value": 3},
        {"action": "rewind"},
        {},
    ],
)
def test_invalid_control_is_422_and_never_reaches_the_stream(
    command_client: TestClient, command_settings: Settings, login: Login, body: dict[str, Any]
) -> None:
    planner = login("planner1")
    create(command_client, planner, id="EX-CTL-BAD")
    r = command_client.post("/exercises/EX-CTL-BAD/control", headers=planner, json=body)
    assert r.status_code == 422, r.text
    client = redis.Redis.from_url(command_settings.shared.redis_url or "")
    assert client.xlen(control_stream("EX-CTL-BAD")) == 0
    client.close()


@pytest.mark.parametrize("status", ["finished", "failed", "purged"])
def test_an_exercise_that_is_over_takes_no_control_and_no_injects(
    command_client: TestClient, command_settings: Settings, login: Login, status: str
) -> None:
    planner = login("planner1")
    create(command_client, planner, id="EX-OVER")
    set_status(command_settings, "EX-OVER", status)
    r = command_client.post("/exercises/EX-OVER/control", headers=planner, json={"action": "play"})
    assert r.status_code == 409 and status in r.json()["detail"]
    inject = {"kind": "escalate", "msg_id": "m1", "level": 2, "reason": "升级"}
    assert command_client.post("/exercises/EX-OVER/injects", headers=planner, json=inject).status_code == 409


# --- injects --------------------------------------------------------------------------------------


def test_a_warehouse_short_inject_cuts_the_exercises_stock_only(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner, operator = login("planner1"), login("operator1")
    seed_stock(command_settings, [("L-W1", "W1", "first_aid_kit", 100, date.today() + timedelta(days=300))])
    create(command_client, planner, id="EX-SHORT")
    set_status(command_settings, "EX-SHORT", "running")
    cut = {"kind": "warehouse_short", "warehouse_id": "W1", "item_code": "first_aid_kit", "quantity": 50}
    r = command_client.post("/exercises/EX-SHORT/injects", headers=planner, json=cut)
    assert r.status_code == 200, r.text
    assert r.json()["quantity"] == 50 and r.json()["kind"] == "warehouse_short"
    # Sent again with another quantity: the cut is set, not added to (a resend is harmless).
    r = command_client.post("/exercises/EX-SHORT/injects", headers=planner, json={**cut, "quantity": 80})
    assert r.status_code == 200, r.text
    cuts = command_client.get("/exercises/EX-SHORT", headers=planner).json()["stock_cuts"]
    assert [(c["warehouse_id"], c["item_code"], c["quantity"]) for c in cuts] == [("W1", "first_aid_kit", 80)]

    # The exercise's incident sees 100 - 80 = 20; a live incident still sees 100.
    ex_incident = incident_of(
        command_settings, exercise_alarm(command_settings, "EX-SHORT", "short-1").alarm_id
    )
    short = command_client.post(
        f"/incidents/{ex_incident}/reserve",
        headers=planner,
        json={"item_code": "first_aid_kit", "quantity": 21},
    )
    assert short.status_code == 409 and short.json()["detail"]["available"] == 20, short.text
    held = command_client.post(
        f"/incidents/{ex_incident}/reserve",
        headers=planner,
        json={"item_code": "first_aid_kit", "quantity": 20},
    )
    assert held.status_code == 201 and held.json()["virtual"], held.text
    live = command_client.post(
        "/incidents",
        headers=operator,
        json={"type": "flood", "level": 4, "title": "积水", "lat": 32.3, "lon": 112.3},
    ).json()["id"]
    r = command_client.post(
        f"/incidents/{live}/reserve", headers=operator, json={"item_code": "first_aid_kit", "quantity": 100}
    )
    assert r.status_code == 201, r.text

    # Unknown warehouse or item, a quantity of nothing.
    for bad, code in (
        ({**cut, "warehouse_id": "W-NONE"}, 422),
        ({**cut, "item_code": "no_such"}, 422),
        ({**cut, "quantity": 0}, 422),
    ):
        assert (
            command_client.post("/exercises/EX-SHORT/injects", headers=planner, json=bad).status_code == code
        )


def test_an_escalate_inject_changes_the_level_of_the_incident_its_message_joined(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner, commander = login("planner1"), login("commander1")
    create(command_client, planner, id="EX-ESC")
    set_status(command_settings, "EX-ESC", "running")
    escalate = {"kind": "escalate", "msg_id": "drill-call-1", "level": 2, "reason": "火势蔓延至相邻厂房"}
    # Before the message's alarm has reached an incident: 404.
    assert command_client.post("/exercises/EX-ESC/injects", headers=planner, json=escalate).status_code == 404

    incident_id = incident_of(
        command_settings, exercise_alarm(command_settings, "EX-ESC", "drill-call-1").alarm_id
    )
    # The same message id in live operations and in another exercise: never theirs.
    live_id = incident_of(
        command_settings, exercise_alarm(command_settings, "", "drill-call-1", lat=32.3).alarm_id
    )
    before_live = command_client.get(f"/incidents/{live_id}", headers=commander).json()["incident"]

    r = command_client.post("/exercises/EX-ESC/injects", headers=planner, json=escalate)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["changed"] and out["incident_id"] == incident_id
    assert (out["from_level"], out["to_level"]) == (4, 2) and out["incident"]["level"] == 2
    timeline = command_client.get(f"/incidents/{incident_id}", headers=planner).json()["timeline"]
    last = timeline[-1]
    assert last["kind"] == "level_changed" and last["actor"] == "planner1" and last["actor_role"] == "planner"
    assert last["reason"] == "演练注入：火势蔓延至相邻厂房"
    # Sent again: nothing changes (the runner may resend).
    again = command_client.post("/exercises/EX-ESC/injects", headers=planner, json=escalate).json()
    assert not again["changed"] and again["incident"]["version"] == out["incident"]["version"]
    # The live incident with the same message id is untouched.
    after_live = command_client.get(f"/incidents/{live_id}", headers=commander).json()["incident"]
    assert after_live == before_live
    # The commander-only rule still holds on the incident routes for the planner.
    r = command_client.post(
        f"/incidents/{incident_id}/level",
        headers=planner,
        json={"expected_version": out["incident"]["version"], "level": 1, "reason": "x"},
    )
    assert r.status_code == 403
    assert (
        command_client.post(
            "/exercises/EX-ESC/injects", headers=planner, json={**escalate, "reason": "  "}
        ).status_code
        == 422
    )
    assert audit_actions(command_settings, "EX-ESC").count("exercise.inject") == 2


def test_an_escalate_of_an_alarm_that_waited_in_the_inbox_finds_the_incident_its_row_became(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    """A drill's video alerts no triage rule promotes fold into an inbox row: no incident
    joined them, so the escalate is 404 (the drill runner then promotes the row, as the
    planner, docs/exercises.md). After the promotion the FIRST alert of the row — the one
    a scenario's escalate names — finds the incident, though only the row's latest alarm
    became its source."""
    planner = login("planner1")
    create(command_client, planner, id="EX-INBOX")
    set_status(command_settings, "EX-INBOX", "running")
    source = "ex/EX-INBOX/video/CAM-1220"
    r = redis.Redis.from_url(command_settings.shared.redis_url or "")
    for n in (1, 2, 3):
        alarm = Alarm(
            alarm_id=f"{source}#drill-v-{n}", kind="video", source=source, msg_id=f"drill-v-{n}",
            network=Network.VIDEO, ts=datetime.now(UTC) - timedelta(seconds=30 - n), lat=32.0420,
            lon=112.1440, grid_cell_id=None, category="loitering", summary="视频告警 徘徊逗留",
            details={"exercise_id": "EX-INBOX", "confidence": 0.82},
        )  # fmt: skip
        payload = alarm.encode()
        r.xadd(command_settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": payload})
    r.close()

    def row() -> dict[str, Any] | None:
        got = command_client.get("/inbox", headers=planner, params={"exercise_id": "EX-INBOX"}).json()
        return got[0] if got and got[0]["count"] == 3 else None

    inbox_row = wait_for(row)
    escalate = {"kind": "escalate", "msg_id": "drill-v-1", "level": 3, "reason": "人员持续聚集"}
    before = command_client.post("/exercises/EX-INBOX/injects", headers=planner, json=escalate)
    assert before.status_code == 404
    promoted = command_client.post(
        f"/inbox/{inbox_row['row_id']}/promote", headers=planner, json={"note": "演练脚本：为升级立事件"}
    )
    assert promoted.status_code == 200, promoted.text
    incident_id = promoted.json()["incident"]["id"]
    out = command_client.post("/exercises/EX-INBOX/injects", headers=planner, json=escalate)
    assert out.status_code == 200, out.text
    assert out.json()["incident_id"] == incident_id and out.json()["incident"]["level"] == 3


# --- purge ----------------------------------------------------------------------------------------


def test_purge_marks_the_exercise_purged_and_is_refused_while_it_runs(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    planner = login("planner1")
    create(command_client, planner, id="EX-PURGE")
    command_client.post("/exercises/EX-PURGE/control", headers=planner, json={"action": "play"})
    set_status(command_settings, "EX-PURGE", "running")
    refused = command_client.delete("/exercises/EX-PURGE", headers=planner)
    assert refused.status_code == 409 and "stop it first" in refused.json()["detail"]
    set_status(command_settings, "EX-PURGE", "finished")
    r = command_client.delete("/exercises/EX-PURGE", headers=planner)
    assert r.status_code == 200, r.text
    assert r.json()["exercise"]["status"] == "purged"
    assert r.json()["exercise"]["stats"]["purge"]["by"] == "planner1"
    assert set(r.json()["deleted"]) >= {"incident", "incident_event", "emergency_call", "message_ledger"}
    client = redis.Redis.from_url(command_settings.shared.redis_url or "")
    assert client.exists(control_stream("EX-PURGE")) == 0  # the runner's queue goes too
    client.close()
    # Purging again is harmless; the exercise stays on the record as purged.
    assert command_client.delete("/exercises/EX-PURGE", headers=planner).status_code == 200
    assert command_client.get("/exercises/EX-PURGE", headers=planner).json()["status"] == "purged"
    assert audit_actions(command_settings, "EX-PURGE") == [
        "exercise.create",
        "exercise.control",
        "exercise.purge",
        "exercise.purge",
    ]


# --- roles ----------------------------------------------------------------------------------------


def test_roles(command_client: TestClient, command_settings: Settings, login: Login) -> None:
    planner, operator, field = login("planner1"), login("operator1"), login(FIELD_TEAM)
    create(command_client, planner, id="EX-ROLES")
    create(command_client, login("admin1"), id="EX-ROLES-ADMIN")
    create(command_client, login("commander1"), id="EX-ROLES-CMD")
    writes = [
        ("post", "/exercises", {"kind": "scenario", "scenario": SCENARIO}),
        ("post", "/exercises/EX-ROLES/control", {"action": "play"}),
        (
            "post",
            "/exercises/EX-ROLES/injects",
            {"kind": "escalate", "msg_id": "m", "level": 2, "reason": "x"},
        ),
        ("delete", "/exercises/EX-ROLES", None),
    ]
    for method, path, body in writes:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        for headers in (operator, field):
            r = getattr(command_client, method)(path, headers=headers, **kwargs)
            assert r.status_code == 403, f"{method} {path}: {r.status_code}"
        assert getattr(command_client, method)(path, **kwargs).status_code == 401
    for path in ("/exercises", "/exercises/EX-ROLES"):
        assert command_client.get(path, headers=operator).status_code == 200
        assert command_client.get(path, headers=field).status_code == 403
        assert command_client.get(path).status_code == 401
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        denied = conn.execute(
            "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action LIKE 'exercise.%'"
        ).fetchone()
    assert denied is not None and denied[0] == 10  # every 403 above
    # Nothing happened to the exercise.
    assert command_client.get("/exercises/EX-ROLES", headers=planner).json()["status"] == "planned"


# --- the pure rules (command.domain.exercises) --------------------------------------------------


def test_stock_cuts_bite_the_lots_picked_first_and_never_below_what_is_reserved() -> None:
    soon, later = date(2026, 3, 1), date(2027, 3, 1)
    lots = [
        StockLot("L-LATE", "W1", "sandbag", 100, 0, later),
        StockLot("L-SOON", "W1", "sandbag", 50, 40, soon),  # 10 available
        StockLot("L-W2", "W2", "sandbag", 100, 0, soon),
    ]
    cut = apply_stock_cuts(lots, [StockCut("W1", "sandbag", 30), StockCut("W1", "first_aid_kit", 5)])
    by_id = {lot.id: lot for lot in cut}
    assert [lot.id for lot in cut] == ["L-LATE", "L-SOON", "L-W2"]  # order kept
    assert by_id["L-SOON"].available == 0 and by_id["L-SOON"].reserved == 40  # first 10, holds kept
    assert by_id["L-LATE"].available == 80  # then the other 20
    assert by_id["L-W2"] == lots[2]  # another warehouse: untouched
    assert apply_stock_cuts(lots, []) == lots


def test_the_drills_roster_overlays_the_live_one() -> None:
    teams = [Team(t, t, TeamType.FIRE, 32.0, 112.0, 20) for t in ("T-A", "T-B", "T-C")]
    seen = overlay_team_statuses(
        teams, {"T-A": TeamStatus.OFF_DUTY, "T-C": TeamStatus.AVAILABLE}, {"T-B", "T-C"}
    )
    assert [t.status for t in seen] == [TeamStatus.OFF_DUTY, TeamStatus.DISPATCHED, TeamStatus.AVAILABLE]
    assert all(t.status is TeamStatus.AVAILABLE for t in teams)  # the live list is not changed


def test_control_values_and_the_inject_on_a_live_incident() -> None:
    assert check_control(ControlAction.SPEED, 100) == 100
    assert check_control(ControlAction.SEEK, 0) == 0
    assert check_control(ControlAction.STOP, None) is None
    for action, value in (
        (ControlAction.SPEED, 0.99),
        (ControlAction.SEEK, float("inf")),
        (ControlAction.PAUSE, 1),
    ):
        with pytest.raises(InvalidExercise):
            check_control(action, value)
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    planner = Actor("planner1", Role.PLANNER)
    live = replay(
        decide_open(
            "INC-L",
            incident_type=IncidentType.FIRE,
            level=ResponseLevel.IV,
            title="火情",
            actor=Actor("operator1", Role.OPERATOR),
            at=at,
            lat=32.0,
            lon=112.0,
            exercise_id=None,
        )
    )
    with pytest.raises(Forbidden):
        decide_inject_level(live, "EX-1", level=ResponseLevel.II, actor=planner, at=at, reason="升级")
    drill = replay(
        decide_open(
            "INC-X",
            incident_type=IncidentType.FIRE,
            level=ResponseLevel.IV,
            title="火情",
            actor=planner,
            at=at,
            lat=32.0,
            lon=112.0,
            exercise_id="EX-1",
        )
    )
    with pytest.raises(Forbidden):  # another exercise's incident
        decide_inject_level(drill, "EX-2", level=ResponseLevel.II, actor=planner, at=at, reason="升级")
    [event] = decide_inject_level(drill, "EX-1", level=ResponseLevel.II, actor=planner, at=at, reason="升级")
    assert event.reason == "演练注入：升级" and event.seq == 2
    assert decide_inject_level(drill, "EX-1", level=ResponseLevel.IV, actor=planner, at=at, reason="x") == []
