"""/duty through the API (值班值守): the commander sets the roster, the desk and the wall
read who is on duty, the duty log fills from what happens and from free entries and is
exported per shift and per day, instructions are followed up step by step, and a
handover is signed by both shifts and then immutable. Refusals are 403 and audited."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.services import duty
from tests.command.conftest import FIELD_TEAM
from wuwang.scope import Scope
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]


def db(settings: Settings, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        return conn.execute(query, params).fetchall()


def roster(
    client: TestClient, login: Login, now: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A day shift on duty now (commander1 with operator1) and the night shift after it
    (commander1 with operator2)."""
    now = now or datetime.now(UTC)
    cmd = login("commander1")
    start = now - timedelta(hours=1)
    day = client.post(
        "/duty/shifts",
        headers=cmd,
        json={
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=12)).isoformat(),
            "leader": "commander1",
            "officers": ["operator1"],
        },
    )
    assert day.status_code == 201, day.text
    night = client.post(
        "/duty/shifts",
        headers=cmd,
        json={
            "starts_at": (start + timedelta(hours=12)).isoformat(),
            "ends_at": (start + timedelta(hours=24)).isoformat(),
            "leader": "commander1",
            "officers": ["operator2"],
        },
    )
    assert night.status_code == 201, night.text
    return day.json(), night.json()


def test_the_commander_sets_the_roster_and_everyone_at_the_centre_reads_who_is_on_duty(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    day, night = roster(command_client, login)
    assert day["leader"] == {"user_id": "commander1", "name": "王强"} and day["on_duty"]
    for user in ("operator1", "commander1", "admin1"):
        now = command_client.get("/duty/now", headers=login(user)).json()
        assert now["current"]["shift_id"] == day["shift_id"] and now["next"]["shift_id"] == night["shift_id"]
        assert [o["name"] for o in now["current"]["officers"]] == ["张伟"]
    listed = command_client.get("/duty/shifts", headers=login("operator1")).json()
    assert [s["shift_id"] for s in listed] == [day["shift_id"], night["shift_id"]]
    # duty officers do not set the roster; field users see nothing of the desk
    later = datetime.fromisoformat(night["ends_at"])
    shift = {"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=8)).isoformat()}
    assert command_client.post("/duty/shifts", headers=login("operator1"), json=shift).status_code == 403
    assert command_client.get("/duty/now", headers=login(FIELD_TEAM)).status_code == 403
    # planners: a drill's desk only
    assert command_client.get("/duty/now", headers=login("planner1")).status_code == 403
    drill = command_client.get("/duty/now", headers=login("planner1"), params={"exercise_id": "EX-DUTY"})
    assert drill.status_code == 200 and drill.json()["current"] is None
    refused = db(
        command_settings,
        "SELECT action, actor FROM audit_log WHERE outcome = 'denied' AND action LIKE 'duty.%%' ORDER BY id",
    )
    assert refused == [
        ("duty.roster_set", "operator1"),
        ("duty.read", FIELD_TEAM),
        ("duty.read", "planner1"),
    ]
    cmd = login("commander1")
    bad = [
        ({"leader": "operator1", "officers": ["operator2"]}, 422, "must be a commander"),
        ({"leader": "commander1", "officers": ["commander1"]}, 422, "once"),
        ({"leader": "commander1", "officers": ["operator1", "operator2", "admin1"]}, 422, ""),
        (
            {"leader": "commander1", "officers": ["operator1"], "starts_at": night["starts_at"]},
            409,
            "overlaps",
        ),
    ]
    for change, code, reason in bad:
        body = {**shift, **change}
        r = command_client.post("/duty/shifts", headers=cmd, json=body)
        assert r.status_code == code and reason in r.text, (change, r.text)
    # a change of people: the night's officer is swapped
    r = command_client.put(
        f"/duty/shifts/{night['shift_id']}",
        headers=cmd,
        json={
            "starts_at": night["starts_at"],
            "ends_at": night["ends_at"],
            "leader": "commander1",
            "officers": ["operator2", "operator1"],
        },
    )
    assert r.status_code == 200 and [o["user_id"] for o in r.json()["officers"]] == ["operator2", "operator1"]
    set_ok = db(
        command_settings, "SELECT count(*) FROM audit_log WHERE action = 'duty.roster_set' AND outcome = 'ok'"
    )
    assert set_ok == [(3,)]


async def _sweep(url: str, since: datetime) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        added = await duty.sweep(conn, since)
        await duty.record_duty_event(
            conn, Scope.live(), "report_sent", "RPT-DUTY/1", "首报已报送市应急管理局"
        )
        await conn.commit()
        return added


def test_the_duty_log_fills_from_what_happens_and_exports_per_shift_and_per_day(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    day, _ = roster(command_client, login)
    op = login("operator1")
    since = datetime.now(UTC) - timedelta(minutes=1)
    opened = command_client.post(
        "/incidents",
        headers=op,
        json={"type": "fire", "level": 3, "title": "樊城区人民路火灾", "lat": 32.04, "lon": 112.14},
    ).json()
    r = command_client.post(
        f"/incidents/{opened['id']}/cancel",
        headers=op,
        json={"expected_version": opened["version"], "reason": "重复报警"},
    )
    assert r.status_code == 200, r.text
    db(
        command_settings,
        "INSERT INTO emergency_call (ts, received_at, ts_from_receipt, network, source_id, msg_id, call_id,"
        " category, lat, lon, address, description, caller) VALUES (now(), now(), false, 'police', 'pbx-1',"
        " 'm-1', 'CALL-DUTY-1', 'fire', 32.04, 112.14, '人民路 12 号', '楼道冒烟', '138****0000')"
        " RETURNING call_id",
    )
    url = command_settings.shared.database_url or ""
    assert asyncio.run(_sweep(url, since)) == 3
    assert asyncio.run(_sweep(url, since)) == 0  # swept twice: nothing doubled
    free = command_client.post("/duty/log", headers=op, json={"text": "=接市应急局电话，要求加强夜间值守"})
    assert free.status_code == 201 and free.json()["kind"] == "free" and free.json()["actor"] == "operator1"
    assert command_client.post("/duty/log", headers=login(FIELD_TEAM), json={"text": "x"}).status_code == 403
    assert (
        command_client.post("/duty/log", headers=op, json={"text": "x", "exercise_id": "EX-1"}).status_code
        == 201
    )
    assert command_client.post("/duty/log", headers=login("planner1"), json={"text": "x"}).status_code == 403

    log = command_client.get("/duty/log", headers=login("commander1")).json()
    assert log["shifts"][0]["shift_id"] == day["shift_id"]
    kinds = [(e["kind"], e["ref"]) for e in log["entries"]]
    assert ("incident_opened", opened["id"]) in kinds and ("call_received", "CALL-DUTY-1") in kinds
    assert ("report_sent", "RPT-DUTY/1") in kinds and kinds[-1] == ("free", None)
    assert [k for k, _ in kinds].count("incident_closed") == 1
    assert all(e["exercise_id"] is None for e in log["entries"])  # the drill's entry stays in the drill
    # the "by" column: each person who wrote an entry, by name and role (not the account id alone)
    assert log["actors"]["operator1"] == {"name": "张伟", "role": "operator"}

    today = datetime.now(ZoneInfo(command_settings.command.timezone)).date().isoformat()  # the centre's day
    for lang, closed_word, kind_word, writer in (
        ("zh", "已撤销", "值班记录", "张伟（值班员）"),
        ("en", "cancelled", "Free entry", "张伟 (Operator)"),
    ):
        r = command_client.get(
            "/duty/log.csv", headers=op, params={"shift_id": day["shift_id"], "lang": lang}
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert len(rows) == 1 + len(log["entries"])
        text = r.content.decode("utf-8-sig")
        assert closed_word.lower() in text.lower() and kind_word in text
        assert "'=接市应急局电话" in text  # a formula is never run by a spreadsheet
        # the writer by name and role, as on the console, never the bare account id
        assert rows[-1][3] == writer and "operator1" not in text
        page = command_client.get("/duty/log.html", headers=op, params={"day": today, "lang": lang})
        assert page.status_code == 200 and "王强" in page.text and "=接市应急局电话" in page.text
        assert writer in page.text and "operator1" not in page.text
    assert (
        command_client.get("/duty/log.csv", headers=op, params={"shift_id": "DS-NONE-1"}).status_code == 404
    )


def test_an_instruction_is_passed_on_and_followed_up_in_the_log(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    roster(command_client, login)
    op = login("operator1")
    r = command_client.post(
        "/duty/instructions",
        headers=op,
        json={"issued_by": "市应急管理局 王局长", "text": "加强樊城区夜间巡查"},
    )
    assert r.status_code == 201, r.text
    i = r.json()
    assert i["state"] == "open" and i["next_state"] == "passed_on"
    url = f"/duty/instructions/{i['instruction_id']}/advance"
    assert command_client.post(url, headers=op, json={"to": "done"}).status_code == 409
    assert command_client.post(url, headers=op, json={"to": "passed_on"}).status_code == 422
    assert command_client.post(url, headers=login(FIELD_TEAM), json={"to": "passed_on"}).status_code == 403
    steps = [
        ("operator1", {"to": "passed_on", "passed_to": ["樊城区应急管理局", "巡特警支队"]}),
        ("operator2", {"to": "followed_up", "follow_up": "已增派两组夜巡"}),
        ("commander1", {"to": "done"}),
    ]
    for user, step in steps:
        r = command_client.post(url, headers=login(user), json=step)
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "done" and r.json()["passed_to"] == ["樊城区应急管理局", "巡特警支队"]
    assert command_client.get("/duty/instructions", headers=op, params={"pending": True}).json() == []
    log = command_client.get("/duty/log", headers=op).json()["entries"]
    assert [e["kind"] for e in log] == ["instruction_received"] + ["instruction_followed"] * 3
    audited = db(
        command_settings,
        "SELECT action, actor FROM audit_log WHERE object_type = 'duty_instruction' AND outcome = 'ok'"
        " ORDER BY id",
    )
    assert audited == [
        ("duty.instruction_record", "operator1"),
        ("duty.instruction_step", "operator1"),
        ("duty.instruction_step", "operator2"),
        ("duty.instruction_step", "commander1"),
    ]


def test_a_handover_is_signed_by_both_shifts_and_then_immutable(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    day, night = roster(command_client, login)
    op1, op2 = login("operator1"), login("operator2")
    command_client.post(
        "/duty/instructions", headers=op1, json={"issued_by": "带班领导", "text": "盯紧内涝点"}
    )
    command_client.post(
        "/incidents",
        headers=op1,
        json={"type": "flood", "level": 3, "title": "人民路内涝", "lat": 32.04, "lon": 112.14},
    )
    assert command_client.post("/duty/handovers", headers=login(FIELD_TEAM), json={}).status_code == 403
    r = command_client.post(
        "/duty/handovers", headers=op1, json={"follow_items": ["人民路排水进度"], "notes": "夜间有雨"}
    )
    assert r.status_code == 201, r.text
    h = r.json()
    assert (h["outgoing"]["shift_id"], h["incoming"]["shift_id"]) == (day["shift_id"], night["shift_id"])
    assert [i["title"] for i in h["snapshot"]["open"]["incidents"]] == ["人民路内涝"]
    assert h["snapshot"]["follow"]["items"] == ["人民路排水进度"]
    assert [i["text"] for i in h["snapshot"]["follow"]["instructions"]] == ["盯紧内涝点"]
    sign = f"/duty/handovers/{h['handover_id']}/sign"
    assert command_client.post(sign, headers=login("admin1")).status_code == 403  # no signature of its own
    first = command_client.post(sign, headers=op1)
    assert first.status_code == 200 and first.json()["outgoing_signed_by"] == "operator1"
    assert not first.json()["sealed"]
    assert command_client.post(sign, headers=op1).status_code == 403  # operator1 is not on the night shift
    second = command_client.post(sign, headers=op2)
    assert second.status_code == 200 and second.json()["sealed"]
    assert second.json()["incoming_signed_by"] == "operator2"
    assert command_client.post(sign, headers=login("commander1")).status_code == 409
    listed = command_client.get("/duty/handovers", headers=login("commander1")).json()
    assert [x["sealed"] for x in listed] == [True]
    log = command_client.get("/duty/log", headers=op1).json()["entries"]
    assert ("handover", h["handover_id"]) in [(e["kind"], e["ref"]) for e in log]
    audited = db(
        command_settings,
        "SELECT action, actor, outcome FROM audit_log WHERE object_type = 'duty_handover' ORDER BY id",
    )
    assert [a for a in audited if a[2] == "ok"] == [
        ("duty.handover_draw", "operator1", "ok"),
        ("duty.handover_sign", "operator1", "ok"),
        ("duty.handover_sign", "operator2", "ok"),
    ]
    with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
        db(command_settings, "UPDATE duty_handover SET notes = 'changed afterwards'")


def test_a_drill_keeps_a_duty_desk_of_its_own(command_client: TestClient, login: Login) -> None:
    """Planners set and write a drill's desk; live operations see none of it."""
    planner, op = login("planner1"), login("operator1")
    now = datetime.now(UTC)
    shift = {
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=7)).isoformat(),
        "leader": "commander1",
        "officers": ["operator1", "operator2"],
    }
    assert command_client.post("/duty/shifts", headers=planner, json=shift).status_code == 403  # live
    r = command_client.post("/duty/shifts", headers=planner, json={**shift, "exercise_id": "EX-DUTY-1"})
    assert r.status_code == 201, r.text
    drill = {"exercise_id": "EX-DUTY-1"}
    assert (
        command_client.post(
            "/duty/log", headers=planner, json={"text": "演练：模拟接报", **drill}
        ).status_code
        == 201
    )
    now_drill = command_client.get("/duty/now", headers=planner, params=drill).json()
    assert now_drill["current"]["shift_id"] == r.json()["shift_id"]
    assert command_client.get("/duty/now", headers=op).json()["current"] is None
    assert command_client.get("/duty/log", headers=op).json()["entries"] == []
    entries = command_client.get("/duty/log", headers=planner, params=drill).json()["entries"]
    assert [(e["kind"], e["exercise_id"]) for e in entries] == [("free", "EX-DUTY-1")]
