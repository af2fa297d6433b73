"""信息报送 through the API: a level II fire under the Hubei rule shows its clocks; the duty
officer drafts the first report from the incident's record, the leader on duty cannot
approve it before the casualties are stated, approves the edited version, the desk sends
it (into the outbox, the exchange form valid against the shipped schema, an EIDO export),
the receipt is recorded; the clocks are met; every step audited; the database refuses a
changed approved version and a second sending."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import jsonschema
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from command.services import upward_reports
from command.state import CommandState
from tests.command.conftest import FIELD_TEAM
from tests.command.test_inbox_api import Login, db
from wuwang.settings import Settings

SCHEMA = json.loads(Path("docs/schemas/exchange/event-report.schema.json").read_text(encoding="utf-8"))
LEVEL_II_FIRE = {"type": "fire", "level": 2, "title": "人民路商场火灾", "lat": 32.05, "lon": 112.14}


def open_level_ii(client: TestClient, headers: dict[str, str]) -> str:
    r = client.post("/incidents", json=LEVEL_II_FIRE, headers=headers)
    assert r.status_code == 201, r.text
    incident_id: str = r.json()["id"]
    return incident_id


def clocks_by_kind(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in body["clocks"]:
        out.setdefault(c["kind"], []).append(c)
    return out


def test_first_report_drafted_approved_sent_and_acknowledged_within_its_clock(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd = login("operator1"), login("commander1")
    incident = open_level_ii(command_client, op)
    url = f"/incidents/{incident}/reports"

    overview = command_client.get(url, headers=op).json()
    assert overview["rule"]["jurisdiction"] == "hubei" and overview["covered"]
    clocks = clocks_by_kind(overview)
    assert [c["state"] for c in clocks["phone"] + clocks["written"]] == ["running", "running"]
    assert 14 * 60 < clocks["phone"][0]["remaining_s"] <= 15 * 60
    assert 34 * 60 < clocks["written"][0]["remaining_s"] <= 35 * 60
    assert command_client.get(url, headers=login("planner1")).status_code == 403  # live: not a planner's

    # 起草: filled from the record; a follow-up before the first is refused
    assert command_client.post(url, json={"kind": "follow_up"}, headers=op).status_code == 409
    drafted = command_client.post(url, json={"kind": "first"}, headers=op)
    assert drafted.status_code == 201, drafted.text
    report = drafted.json()
    assert (report["number"], report["state"], report["report_id"]) == (1, "draft", f"{incident}-R01")
    first = report["versions"][0]["content"]
    assert (first["level"], first["incident_type"], first["title"]) == (2, "fire", "人民路商场火灾")
    assert first["area_code"] == "420606"  # the nearest district's GB/T 2260 code

    # 签发 needs every required element: the casualties are not stated yet
    assert command_client.post(f"{url}/1/approve", headers=op).status_code == 403  # the leader's
    refused = command_client.post(f"{url}/1/approve", headers=cmd)
    assert refused.status_code == 422
    assert set(refused.json()["detail"]["missing"]) >= {"casualties"}

    figures = command_client.post(
        f"/incidents/{incident}/figures",
        json={"deaths": 0, "missing": 0, "injured": 3, "source": "现场"},
        headers=op,
    )
    assert figures.status_code == 201 and figures.json()["current"]["injured"] == 3
    edited = command_client.patch(
        f"{url}/1",
        json={
            "figures": {"deaths": 0, "missing": 0, "injured": 3, "trapped": 12},
            "measures": "启动Ⅱ级响应，疏散周边群众",
            "teams": ["消防救援队 T-FIRE-01"],
            "note": "补充伤亡",
        },
        headers=op,
    )
    assert edited.status_code == 200, edited.text
    assert [v["n"] for v in edited.json()["versions"]] == [1, 2]
    approved = command_client.post(f"{url}/1/approve", headers=cmd)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["approved_version"]) == ("approved", 2)
    assert command_client.patch(f"{url}/1", json={"trend": "x"}, headers=op).status_code == 409

    # sent: into the outbox with the exchange form, once
    sent = command_client.post(f"{url}/1/send", headers=op)
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "sent" and sent.json()["delivery"]["delivered_at"] is None
    assert command_client.post(f"{url}/1/send", headers=op).status_code == 409
    form = command_client.get(f"{url}/1.json", headers=op).json()
    jsonschema.validate(form, SCHEMA)
    assert (form["reportKindName"], form["event"]["severityName"], form["event"]["eventTypeCode"]) == (
        "首报",
        "重大",
        "21B00",
    )
    assert form["event"]["casualties"]["injured"] == 3 and form["receiver"]["areaCode"] == "420000"
    (payload,) = db(
        command_settings, "SELECT payload FROM upward_outbox WHERE report_id = %s", f"{incident}-R01"
    )
    assert payload[0]["reportId"] == form["reportId"]
    eido = command_client.get(f"{url}/1.eido.json", headers=op).json()
    assert eido["incidentComponent"][0]["incidentTrackingIdentifier"].endswith(incident)
    assert eido["locationComponent"][0]["locationByValue"]["geo"]["coordinates"] == [112.14, 32.05]

    # 回执 (here by hand); the phone and written clocks are met, within their minutes
    receipt = command_client.post(f"{url}/1/receipt", json={"signed_by": "省厅值班员 王"}, headers=op)
    assert receipt.status_code == 200 and receipt.json()["state"] == "acknowledged"
    clocks = clocks_by_kind(command_client.get(url, headers=cmd).json())
    assert [c["state"] for c in clocks["phone"] + clocks["written"]] == ["met", "met"]
    board = command_client.get("/reports/clocks", headers=cmd).json()
    assert {c["kind"] for c in board if c["incident_id"] == incident} <= {"follow_up"}

    # a follow-up states what changed since the first
    follow = command_client.post(url, json={"kind": "follow_up"}, headers=op).json()
    changed = command_client.patch(
        f"{url}/2", json={"figures": {"deaths": 1, "missing": 0, "injured": 3, "trapped": 0}}, headers=op
    ).json()
    elements = {c["element"] for c in changed["versions"][-1]["changes"]}
    assert {"figures.deaths", "figures.trapped"} <= elements and follow["number"] == 2

    audit = {
        r[0]
        for r in db(command_settings, "SELECT action FROM audit_log WHERE object_id LIKE %s", f"{incident}%")
    }
    assert {
        "upward_report.draft",
        "upward_report.edit",
        "upward_report.approve",
        "upward_report.send",
    } <= audit
    assert "upward_report.receipt" in audit

    # the database keeps approved versions and sendings as they were
    refusals = [
        ("UPDATE upward_report_version SET note = 'x' WHERE incident_id = %s AND number = 1", incident),
        ("UPDATE upward_report SET sent_at = now() WHERE report_id = %s", f"{incident}-R01"),
        (
            "INSERT INTO upward_outbox (report_id, payload, queued_at, next_attempt_at)"
            " VALUES (%s, '{}', now(), now())",
            f"{incident}-R01",
        ),
    ]
    for statement, param in refusals:
        with (
            psycopg.connect(command_settings.shared.database_url or "") as conn,
            pytest.raises(psycopg.Error),
        ):
            conn.execute(statement, (param,))


def test_field_users_get_403_and_an_uncovered_incident_has_no_clocks(
    command_client: TestClient, login: Login
) -> None:
    op = login("operator1")
    r = command_client.post(
        "/incidents", json={**LEVEL_II_FIRE, "type": "dispute", "level": 4, "title": "邻里纠纷"}, headers=op
    )
    incident = r.json()["id"]
    assert command_client.get(f"/incidents/{incident}/reports", headers=op).json()["clocks"] == []
    field = login(FIELD_TEAM)
    assert command_client.get(f"/incidents/{incident}/reports", headers=field).status_code == 403
    assert command_client.get("/reports/clocks", headers=field).status_code == 403


def test_an_overdue_clock_is_escalated_to_the_leader_on_duty_once_and_logged(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    incident = open_level_ii(command_client, login("operator1"))
    later = datetime.now(UTC) + timedelta(hours=1)  # both first-report clocks have run out

    async def sweep() -> int:
        async with AsyncConnectionPool(command_settings.shared.database_url or "", open=False) as pool:
            state = cast(CommandState, SimpleNamespace(settings=command_settings, pool=pool))
            return await upward_reports.escalate(state, later)

    assert asyncio.run(sweep()) >= 2
    escalated = db(
        command_settings,
        "SELECT clock_kind, escalated_to FROM upward_clock_escalation WHERE incident_id = %s ORDER BY due_at",
        incident,
    )
    # the first reports' clocks; a daily 续报 slot (08:00 / 17:00 in Hubei's rule) falls into
    # the hour too when the test runs just before one, and is escalated like them
    assert escalated[:2] == [("phone", "commander"), ("written", "commander")]
    assert all(row == ("follow_up", "commander") for row in escalated[2:])
    logged = db(
        command_settings,
        "SELECT text FROM duty_log_entry WHERE kind = 'clock_overdue' AND detail->>'incident_id' = %s",
        incident,
    )
    assert len(logged) == len(escalated) and all("带班领导" in row[0] for row in logged)
    asyncio.run(sweep())  # a second sweep doubles nothing
    assert len(
        db(command_settings, "SELECT 1 FROM upward_clock_escalation WHERE incident_id = %s", incident)
    ) == len(escalated)
