"""Incidents through the API, with alarms arriving on the real Redis stream."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis
from fastapi.testclient import TestClient

from wuwang.contract import Alarm, AlarmKind, Network
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


def push_alarm(settings: Settings, alarm_id: str, *, category: str = "fire", lat: float = 32.0420,
               lon: float = 112.1440, kind: AlarmKind = "call", minutes_ago: float = 0) -> None:
    alarm = Alarm(
        alarm_id=alarm_id, kind=kind, source="police/sys110", msg_id=alarm_id.split("#")[-1],
        network=Network.POLICE, ts=datetime.now(UTC) - timedelta(minutes=minutes_ago), lat=lat, lon=lon,
        grid_cell_id=None, category=category, summary=f"樊城区人民路 {category}", details={},
    )
    r = redis.Redis.from_url(settings.shared.redis_url or "")
    r.xadd(settings.shared.alarm_stream, {"alarm_id": alarm.alarm_id, "payload": alarm.encode()})
    r.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def open_incidents(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/incidents", headers=headers)
    assert r.status_code == 200, r.text
    incidents: list[dict[str, Any]] = r.json()
    return incidents


def test_duplicate_calls_become_one_incident_and_a_far_one_another(
        command_client: TestClient, command_settings: Settings, login: Login) -> None:
    op = login("operator1")
    push_alarm(command_settings, "police/sys110#c1")
    first = wait_for(lambda: open_incidents(command_client, op))
    assert len(first) == 1
    assert first[0]["state"] == "new"
    push_alarm(command_settings, "police/sys110#c2", lat=32.0425, lon=112.1445)  # ~70 m away
    push_alarm(command_settings, "police/sys110#c1")  # redelivered: stored once
    push_alarm(command_settings, "police/sys110#c3", lat=32.10, lon=112.20)  # ~8 km away
    incidents = wait_for(lambda: (lambda xs: xs if len(xs) == 2 and
                                  sum(len(x["sources"]) for x in xs) == 3 else None)(
        open_incidents(command_client, op)))
    joined = next(x for x in incidents if len(x["sources"]) == 2)
    assert {s["alarm_id"] for s in joined["sources"]} == {"police/sys110#c1", "police/sys110#c2"}
    assert {s["triage_rule"] for s in joined["sources"]} == {"call_110"}  # triage: every 110 call promotes
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        assert conn.execute("SELECT count(*) FROM incident_source").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM alarm_inbox").fetchone() == (3,)


def test_operator_and_commander_acts_with_versions(
        command_client: TestClient, command_settings: Settings, login: Login) -> None:
    op, cmd, planner = login("operator1"), login("commander1"), login("planner1")
    push_alarm(command_settings, "police/sys110#v1")
    inc = wait_for(lambda: open_incidents(command_client, op))[0]
    url = f"/incidents/{inc['id']}"
    r = command_client.post(f"{url}/verify", json={"expected_version": inc["version"]}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "verified"
    v = r.json()["version"]
    # the same act on a stale version: 409
    stale = command_client.post(f"{url}/verify", json={"expected_version": inc["version"]}, headers=op)
    assert stale.status_code == 409
    # an operator may not change the level; a commander may, with a reason
    denied = command_client.post(f"{url}/level", json={"expected_version": v, "level": 2, "reason": "x"},
                                 headers=op)
    assert denied.status_code == 403
    ok = command_client.post(f"{url}/level", json={"expected_version": v, "level": 2, "reason": "多人被困"},
                             headers=cmd)
    assert ok.status_code == 200, ok.text
    assert ok.json()["level"] == 2
    # a planner may not touch a live incident
    assert command_client.post(f"{url}/notes", json={"expected_version": ok.json()["version"], "text": "x"},
                               headers=planner).status_code in (403, 404)
    # illegal transition: close from verified is refused with a reason
    bad = command_client.post(f"{url}/resolve", json={"expected_version": ok.json()["version"]}, headers=op)
    assert bad.status_code == 422
    assert "verified" in bad.json()["detail"]
    detail = command_client.get(url, headers=op).json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds == ["opened", "state_changed", "level_changed"]
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        audited = conn.execute("SELECT action, outcome FROM audit_log WHERE object_id = %s ORDER BY id",
                               (inc["id"],)).fetchall()
    assert ("incident.level_change", "denied") in audited
    assert ("incident.level_change", "ok") in audited


def test_split_and_merge_keep_every_alarm_once(
        command_client: TestClient, command_settings: Settings, login: Login) -> None:
    op = login("operator1")
    push_alarm(command_settings, "police/sys110#s1")
    push_alarm(command_settings, "police/sys110#s2", lat=32.0421, lon=112.1441)
    inc = wait_for(lambda: (lambda xs: xs[0] if xs and len(xs[0]["sources"]) == 2 else None)(
        open_incidents(command_client, op)))
    r = command_client.post(f"/incidents/{inc['id']}/split",
                            json={"expected_version": inc["version"], "alarm_id": "police/sys110#s2",
                                  "reason": "不同楼栋"}, headers=op)
    assert r.status_code == 200, r.text
    a, b = r.json()["first"], r.json()["second"]
    assert b["id"] != a["id"]
    m = command_client.post(f"/incidents/{b['id']}/merge",
                            json={"expected_version": b["version"], "into": a["id"],
                                  "into_expected_version": a["version"], "reason": "同一起火灾"}, headers=op)
    assert m.status_code == 200, m.text
    assert m.json()["first"]["state"] == "merged"
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        rows = conn.execute("SELECT alarm_id, incident_id FROM incident_source ORDER BY alarm_id").fetchall()
    assert rows == [("police/sys110#s1", a["id"]), ("police/sys110#s2", a["id"])]
