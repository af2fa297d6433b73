"""The alarm inbox (告警收件箱) through the API, with alarms arriving on the real Redis
stream: storms fold into one row, rules promote, operators act on rows (one or in bulk)
with role checks, quiet rows expire into the review list, redelivery counts once."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.app import create_app
from command.domain.triage import DEFAULT_RULES_FILE, TriageRulesError
from command.services import inbox as inbox_service
from tests.command.conftest import FIELD_TEAM, relay_alarm
from tests.command.test_incidents_api import open_incidents, wait_for
from wuwang.city import load_districts
from wuwang.places import crossing_place
from wuwang.settings import Settings

Login = Callable[[str], dict[str, str]]
PLACE = (32.0420, 112.1440)  # 樊城区 人民路
_n = itertools.count()


def push(
    settings: Settings,
    *,
    kind: str = "video",
    source: str = "video/CAM-1",
    category: str = "loitering",
    confidence: float | None = 0.6,
    place: tuple[float, float] = PLACE,
    seconds_ago: float = 0,
    alarm_id: str | None = None,
) -> str:
    """One alarm on the command service's stream, as ingest relays it; returns its id."""
    msg_id = f"m{next(_n)}"
    details: dict[str, Any] = {"confidence": confidence} if confidence is not None else {}
    return relay_alarm(
        settings,
        alarm_id=alarm_id or f"{source}#{msg_id}",
        kind=kind,
        source=source,
        msg_id=msg_id,
        network="video" if kind == "video" else "venue",
        ts=datetime.now(UTC) - timedelta(seconds=seconds_ago),
        place=place,
        category=category,
        details=details,
    )


def rows(client: TestClient, headers: dict[str, str], state: str = "open") -> list[dict[str, Any]]:
    r = client.get("/inbox", headers=headers, params={"state": state})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def taken(settings: Settings, *alarm_ids: str) -> bool:
    """Whether the command service has taken (and committed) every alarm."""
    with psycopg.connect(settings.shared.database_url or "") as conn:
        row = conn.execute("SELECT count(*) FROM alarm_inbox WHERE alarm_id = ANY(%s)", (list(alarm_ids),))
        found = row.fetchone()
    return found is not None and found[0] == len(set(alarm_ids))


def db(settings: Settings, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.shared.database_url or "") as conn:
        return conn.execute(query, params).fetchall()


def row_of(client: TestClient, headers: dict[str, str], source: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: next((r for r in rows(client, headers) if r["source"] == source), None)
    )
    return found


def opens_an_incident(
    client: TestClient,
    settings: Settings,
    headers: dict[str, str],
    kind: str,
    source: str,
    category: str,
    *,
    north: float,
) -> tuple[str, dict[str, Any]]:
    """An alarm without a confidence ``north`` degrees north of PLACE, and the (first)
    open incident once there is one: the alarm's id and the incident."""
    place = (PLACE[0] + north, PLACE[1])
    alarm_id = push(settings, kind=kind, source=source, category=category, confidence=None, place=place)
    incident: dict[str, Any] = wait_for(lambda: open_incidents(client, headers))[0]
    return alarm_id, incident


def test_a_storm_of_50_loitering_alerts_is_one_row_and_no_incident(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    ids = [push(command_settings, seconds_ago=(50 - i) * 6) for i in range(50)]
    wait_for(lambda: taken(command_settings, *ids), timeout=60)
    inbox = rows(command_client, op)
    assert len(inbox) == 1
    row = inbox[0]
    assert row["count"] == 50 and row["source"] == "video/CAM-1" and row["category"] == "loitering"
    assert row["severity"] == "low" and row["state"] == "open"
    assert row["flapping"] is True and row["reasons"]["flapping"]["code"] == "triage.flapping"
    assert row["reasons"]["inbox"]["code"] == "triage.video_inbox"
    assert row["first_alarm_id"] == ids[0] and row["alarm_ids"][-1] == ids[-1]
    assert len(row["alarm_ids"]) == 50 and not row["alarm_ids_truncated"]
    assert open_incidents(command_client, op) == []
    # every alarm is in the ledger, each pointing at the one row; the row opened once
    assert db(command_settings, "SELECT count(*), count(DISTINCT triage_row_id) FROM alarm_inbox") == [
        (50, 1)
    ]
    assert db(command_settings, "SELECT count(*) FROM audit_log WHERE action = 'inbox.open'") == [(1,)]


def test_a_high_confidence_fire_alert_opens_an_incident_naming_its_rule(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    alarm_id = push(command_settings, category="fire_smoke", confidence=0.95, source="video/CAM-F")
    incident = wait_for(lambda: open_incidents(command_client, op))[0]
    assert incident["type"] == "fire"
    # what, then where in words (the nearest crossing), not the camera's coordinates
    assert incident["title"].startswith("火灾 · 樊城区") and incident["title"].endswith("交叉口附近")
    assert "32.04" not in incident["title"], incident["title"]
    source = incident["sources"][0]
    assert source["alarm_id"] == alarm_id
    assert source["triage_rule"] == "video_fire_smoke"
    assert "0.95" in source["triage_reason"] and "0.90" in source["triage_reason"]
    timeline = command_client.get(f"/incidents/{incident['id']}", headers=op).json()["timeline"]
    assert "video_fire_smoke" in timeline[0]["reason"]
    assert timeline[0]["data"]["reason_code"] == "correlation.opened"  # the correlation's, coded
    assert timeline[0]["data"]["reason_args"]["incident_type"] == "fire"
    assert rows(command_client, op) == []
    assert db(command_settings, "SELECT triage_rule FROM alarm_inbox WHERE alarm_id = %s", alarm_id) == [
        ("video_fire_smoke",)
    ]


def test_two_independent_sources_nearby_are_promoted_by_corroboration(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    # A camera not sure enough of smoke (0.6 < 0.9): the inbox
    camera = push(
        command_settings, category="fire_smoke", confidence=0.6, source="video/CAM-S", seconds_ago=60
    )
    camera_row = row_of(command_client, op, "video/CAM-S")
    assert open_incidents(command_client, op) == []
    # A temperature sensor ~100 m away (its own identity, a compatible category): both agree
    sensor, incident = opens_an_incident(
        command_client, command_settings, op, "sensor", "venue/T-7", "temperature", north=0.0009
    )
    assert [s["alarm_id"] for s in incident["sources"]] == [sensor]
    assert incident["sources"][0]["triage_rule"] == "corroborated"
    assert "2" in incident["sources"][0]["triage_reason"]
    # the camera's row goes along with the story: linked by the system, by the same rule
    linked = wait_for(lambda: rows(command_client, op, "linked"))
    assert [r["row_id"] for r in linked] == [camera_row["row_id"]]
    assert linked[0]["incident_id"] == incident["id"] and linked[0]["rule_id"] == "corroborated"
    assert linked[0]["acted_by"] == "system:triage"
    assert rows(command_client, op) == []
    assert camera in linked[0]["alarm_ids"]


def test_operators_promote_link_and_dismiss_rows_with_role_checks(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op, cmd, planner, field = login("operator1"), login("commander1"), login("planner1"), login(FIELD_TEAM)
    # seven cameras ~1.1 km apart: no two corroborate each other
    for i, cam in enumerate(("A", "B", "C", "D", "E", "F", "G")):
        push(
            command_settings,
            source=f"video/CAM-{cam}",
            category="intrusion",
            place=(PLACE[0] + 0.01 * i, PLACE[1]),
        )
    wait_for(lambda: len(rows(command_client, op)) == 7)
    row = {r["source"].removeprefix("video/CAM-"): r["row_id"] for r in rows(command_client, op)}

    # field users neither see nor act on the inbox; planners never on live rows
    assert command_client.get("/inbox", headers=field).status_code == 403
    assert command_client.post(f"/inbox/{row['A']}/promote", headers=field, json={}).status_code == 403
    denied = command_client.post(f"/inbox/{row['A']}/promote", headers=planner, json={})
    assert denied.status_code == 403 and "live" in denied.json()["detail"]
    assert (
        command_client.post(
            "/inbox/bulk", headers=field, json={"action": "dismiss", "row_ids": [row["A"]], "reason": "test"}
        ).status_code
        == 403
    )

    # dismiss: a reason of the vocabulary; other needs a note; no NUL; once only
    assert (
        command_client.post(f"/inbox/{row['A']}/dismiss", headers=op, json={"reason": "other"}).status_code
        == 422
    )
    assert (
        command_client.post(
            f"/inbox/{row['A']}/dismiss", headers=op, json={"reason": "other", "note": "a\x00b"}
        ).status_code
        == 422
    )
    assert (
        command_client.post(f"/inbox/{row['A']}/dismiss", headers=op, json={"reason": "steam"}).status_code
        == 422
    )
    r = command_client.post(f"/inbox/{row['A']}/dismiss", headers=op, json={"reason": "false_alarm"})
    assert r.status_code == 200, r.text
    assert r.json()["row"]["state"] == "dismissed" and r.json()["row"]["acted_by"] == "operator1"
    again = command_client.post(f"/inbox/{row['A']}/dismiss", headers=cmd, json={"reason": "duplicate"})
    assert again.status_code == 409 and "operator1" in again.json()["detail"]
    assert (
        command_client.post(
            "/inbox/IB-0000000000000000/dismiss", headers=op, json={"reason": "test"}
        ).status_code
        == 404
    )

    # promote: a commander opens an incident from the row's latest alarm
    r = command_client.post(f"/inbox/{row['B']}/promote", headers=cmd, json={"note": "围墙有人翻入"})
    assert r.status_code == 200, r.text
    promoted, incident = r.json()["row"], r.json()["incident"]
    assert promoted["state"] == "promoted" and promoted["incident_id"] == incident["id"]
    assert incident["state"] == "new" and row["B"] in incident["sources"][0]["triage_reason"]
    # the title says where as the inbox row does (one rule: the nearest crossing, its district)
    where = crossing_place(promoted["lat"], promoted["lon"], load_districts())
    assert where is not None and where.endswith("交叉口附近"), where
    assert incident["title"].endswith(f" · {where}"), incident["title"]

    # link: an operator attaches another row to that incident
    r = command_client.post(f"/inbox/{row['C']}/link", headers=op, json={"incident_id": incident["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["row"]["state"] == "linked" and r.json()["row"]["incident_id"] == incident["id"]
    assert (
        command_client.post(
            f"/inbox/{row['D']}/link", headers=op, json={"incident_id": "INC-NOPE"}
        ).status_code
        == 404
    )

    # bulk: per-row results, in the order given, each id once
    r = command_client.post(
        "/inbox/bulk",
        headers=op,
        json={
            "action": "dismiss",
            "row_ids": [row["D"], row["A"], "IB-0000000000000000", row["D"], row["E"]],
            "reason": "duplicate",
        },
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["row_id"] for x in results] == [row["D"], row["A"], "IB-0000000000000000", row["E"]]
    assert [x["ok"] for x in results] == [True, False, False, True]
    assert "dismissed" in results[1]["refused"] and "no inbox row" in results[2]["refused"]
    # a planner's bulk on live rows: every row refused, nothing changes
    r = command_client.post("/inbox/bulk", headers=planner, json={"action": "promote", "row_ids": [row["F"]]})
    assert r.status_code == 200 and r.json()["results"][0]["ok"] is False and r.json()["incident"] is None
    # a bulk promote: one incident with both rows' alarms
    r = command_client.post(
        "/inbox/bulk", headers=cmd, json={"action": "promote", "row_ids": [row["F"], row["G"]]}
    )
    assert r.status_code == 200, r.text
    assert all(x["ok"] for x in r.json()["results"])
    bulk_incident = r.json()["incident"]
    assert len(bulk_incident["sources"]) == 2
    assert {x["row"]["incident_id"] for x in r.json()["results"]} == {bulk_incident["id"]}
    assert rows(command_client, op) == []

    # every act and every refusal is audited
    audited = set(
        db(command_settings, "SELECT action, outcome FROM audit_log WHERE object_type = 'inbox_row'")
    )
    for expected in [
        ("inbox.dismiss", "ok"),
        ("inbox.dismiss", "denied"),
        ("inbox.promote", "ok"),
        ("inbox.promote", "denied"),
        ("inbox.link", "ok"),
    ]:
        assert expected in audited, expected
    detail = db(
        command_settings,
        "SELECT actor, detail FROM audit_log"
        " WHERE action = 'inbox.dismiss' AND object_id = %s AND outcome = 'ok'",
        row["A"],
    )
    assert detail[0][0] == "operator1" and detail[0][1]["dismiss_reason"] == "false_alarm"


def test_quiet_rows_expire_into_the_review_list_and_can_still_be_acted_on(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    push(command_settings, source="video/CAM-Q", category="loitering")  # low: expires after 30 min
    push(command_settings, source="video/CAM-H", category="fire_smoke", confidence=0.5)  # high: never
    wait_for(lambda: len(rows(command_client, op)) == 2)
    state = command_client.app_state["command"]
    later = datetime.now(UTC) + timedelta(minutes=31)
    expired = command_client.portal.call(inbox_service.expire_due, state, later)  # type: ignore[union-attr]
    assert [r.key.source for r in expired] == ["video/CAM-Q"]
    assert [r["source"] for r in rows(command_client, op)] == ["video/CAM-H"]
    review = rows(command_client, op, "expired")
    assert len(review) == 1 and review[0]["rule_id"] == "expire_low"
    assert review[0]["reasons"]["review"]["code"] == "triage.expire_low"
    assert review[0]["acted_by"] == "system:triage"
    assert db(command_settings, "SELECT actor FROM audit_log WHERE action = 'inbox.expire'") == [
        ("system:triage",)
    ]
    # nothing expires twice; the review list is acted on like the inbox
    assert command_client.portal.call(inbox_service.expire_due, state, later) == []  # type: ignore[union-attr]
    r = command_client.post(f"/inbox/{review[0]['row_id']}/dismiss", headers=op, json={"reason": "test"})
    assert r.status_code == 200 and r.json()["row"]["state"] == "dismissed"
    assert rows(command_client, op, "expired") == []


def test_a_redelivered_alarm_counts_once_and_changes_are_pushed_live(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    token = op["Authorization"].removeprefix("Bearer ")
    with command_client.websocket_connect(f"/ws?token={token}") as ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        first = push(command_settings, source="video/CAM-R")
        for _ in range(20):
            change = ws.receive_json()
            if change["type"] == "inbox":
                break
        assert change["type"] == "inbox" and change["data"]["count"] == 1 and change["exercise_id"] is None
    push(command_settings, source="video/CAM-R", alarm_id=first)  # at-least-once: delivered again
    second = push(command_settings, source="video/CAM-R")
    wait_for(lambda: taken(command_settings, first, second))
    wait_for(lambda: row_of(command_client, op, "video/CAM-R")["count"] == 2)
    row = row_of(command_client, op, "video/CAM-R")
    assert row["alarm_ids"] == [first, second]
    # and a redelivered promoted alarm is one source of one incident
    fire = push(command_settings, category="fire_smoke", confidence=0.97, source="video/CAM-X")
    push(command_settings, category="fire_smoke", confidence=0.97, source="video/CAM-X", alarm_id=fire)
    incident = wait_for(lambda: open_incidents(command_client, op))[0]
    wait_for(lambda: taken(command_settings, fire))
    assert db(command_settings, "SELECT count(*) FROM incident_source") == [(1,)]
    assert incident["sources"][0]["alarm_id"] == fire


def test_broken_triage_rules_stop_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text(
        DEFAULT_RULES_FILE.read_text(encoding="utf-8").replace("window_s: 600", "window_s: -1", 1),
        encoding="utf-8",
    )
    monkeypatch.setattr(inbox_service, "RULES_FILE", broken)
    app = create_app(make_settings(account="command"))
    with pytest.raises(TriageRulesError) as caught, TestClient(app):
        pass
    assert "rules.yaml:" in str(caught.value) and "window_s" in str(caught.value)


def test_one_open_row_per_source_a_later_storm_supersedes_the_old_row(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    old = push(command_settings, source="video/CAM-O", category="intrusion", seconds_ago=25 * 60)
    wait_for(lambda: taken(command_settings, old))
    first = row_of(command_client, op, "video/CAM-O")
    # 25 minutes later (past the 10-minute fold window): a new row takes the storm over,
    # the old one goes to the review list by the fold rule — never two open rows of a key
    new = push(command_settings, source="video/CAM-O", category="intrusion")
    wait_for(lambda: taken(command_settings, new))
    inbox = [r for r in rows(command_client, op) if r["source"] == "video/CAM-O"]
    assert len(inbox) == 1 and inbox[0]["row_id"] != first["row_id"] and inbox[0]["alarm_ids"] == [new]
    review = rows(command_client, op, "expired")
    assert [r["row_id"] for r in review] == [first["row_id"]]
    assert (
        review[0]["rule_id"] == "fold_storm" and review[0]["reasons"]["review"]["code"] == "triage.fold_storm"
    )
    audited = db(
        command_settings,
        "SELECT detail->>'superseded_by' FROM audit_log WHERE action = 'inbox.expire' AND object_id = %s",
        first["row_id"],
    )
    assert audited == [(inbox[0]["row_id"],)]
    # the database refuses a second open row of the key outright
    with (
        pytest.raises(psycopg.errors.UniqueViolation),
        psycopg.connect(command_settings.shared.database_url or "") as conn,
    ):
        conn.execute(
            "UPDATE triage_row SET state = 'open', acted_by = NULL, acted_role = NULL, acted_at = NULL,"
            " rule_id = NULL WHERE row_id = %s",
            (first["row_id"],),
        )


def test_a_false_alarm_mutes_always_promote_and_a_110_call_takes_the_camera_row_along(
    command_client: TestClient, command_settings: Settings, login: Login
) -> None:
    op = login("operator1")
    # a smoke camera below the always-promote confidence: the inbox; an operator says 误报
    push(command_settings, source="video/CAM-M", category="fire_smoke", confidence=0.7, place=(32.10, 112.20))
    muted_row = row_of(command_client, op, "video/CAM-M")
    r = command_client.post(
        f"/inbox/{muted_row['row_id']}/dismiss", headers=op, json={"reason": "false_alarm"}
    )
    assert r.status_code == 200, r.text
    # the same camera at 0.95 within 30 minutes: held in the inbox, not a new incident
    again = push(
        command_settings, source="video/CAM-M", category="fire_smoke", confidence=0.95, place=(32.10, 112.20)
    )
    wait_for(lambda: taken(command_settings, again))
    assert open_incidents(command_client, op) == []
    assert row_of(command_client, op, "video/CAM-M")["alarm_ids"] == [again]

    # elsewhere: a smoke camera row, then a 110 fire call 50 m away — the call opens the
    # incident (call_110) and takes the camera's row along (the same story)
    push(command_settings, source="video/CAM-K", category="fire_smoke", confidence=0.6)
    camera_row = row_of(command_client, op, "video/CAM-K")
    call, incident = opens_an_incident(
        command_client, command_settings, op, "call", "police/sys110", "fire", north=0.0004
    )
    assert incident["sources"][0]["alarm_id"] == call and incident["sources"][0]["triage_rule"] == "call_110"
    linked = wait_for(lambda: rows(command_client, op, "linked"))
    assert [(r["row_id"], r["incident_id"], r["rule_id"]) for r in linked] == [
        (camera_row["row_id"], incident["id"], "call_110")
    ]
    by_incident = command_client.get(
        "/inbox", headers=op, params={"state": "linked", "incident_id": incident["id"]}
    )
    assert [r["row_id"] for r in by_incident.json()] == [camera_row["row_id"]]
