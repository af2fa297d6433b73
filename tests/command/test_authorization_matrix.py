"""Every role × every endpoint, including someone else's object.

One seeded world: a live incident (the field user's team is not on it), an exercise
incident, a grid case, two teams and a stock lot. Acts are sent with a stale
``expected_version`` (999) wherever the route takes one, so an allowed role is
stopped by the version check (409) after the role check, and nothing changes; a role
that may not act gets 403 and an audit row. The table below is written by hand, on
purpose apart from command/domain/policy.py (which decides): the two must agree, and a
route added without a row here fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain.incidents import Actor, decide_open
from command.domain.vocabulary import IncidentType, ResponseLevel, Role
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM

Login = Callable[[str], dict[str, str]]

USERS = {
    "operator": "operator1",
    "commander": "commander1",
    "planner": "planner1",
    "field": FIELD_TEAM,
    "admin": "admin1",
}
ALL = frozenset(USERS)
STAFF = frozenset({"operator", "commander", "admin"})
READERS = frozenset({"operator", "commander", "planner", "admin"})
MANAGERS = frozenset({"planner", "commander", "admin"})  # exercises (演练)

STALE = 999
INBOX_ROW = "IB-00000000000000aa"
ACT = {"expected_version": STALE, "reason": "authorisation matrix"}

WARNING: dict[str, Any] = {
    "event_type": "meteorological",
    "level": "yellow",
    "area": {"polygon": [[32.0, 112.1], [32.0, 112.2], [32.1, 112.2]]},
    "onset": "2098-12-31T00:00:00+08:00",
    "expires": "2099-01-01T00:00:00+08:00",
    "headline": "矩阵预警",
}
WARNING_ID = "42060000000000_20200101000000_1"
# risk sources and shelters (风险源, 应急避难场所): everyone reads; the centre edits and
# sweeps; field users report findings and occupancy; incident context as incidents
RISK_SOURCE = {
    "name": "矩阵加油站",
    "kind": "gas_station",
    "lat": 32.04,
    "lon": 112.14,
    "level": "general",
    "inspection_interval_days": 30,
}
SHELTER = {"name": "矩阵避难场所", "kind": "park", "lat": 32.04, "lon": 112.14, "capacity": 100}
FIELD_AND_STAFF = STAFF | {"field"}
RISK_POLICY: dict[tuple[str, str], tuple[frozenset[str], dict[str, Any] | None]] = {
    ("GET", "/risk-sources"): (ALL, None),
    ("GET", "/risk-sources/{risk_source}"): (ALL, None),
    ("PUT", "/risk-sources/{risk_source}"): (STAFF, RISK_SOURCE),
    ("POST", "/risk-sources/sweep"): (STAFF, None),
    ("POST", "/risk-sources/{risk_source}/findings"): (FIELD_AND_STAFF, {"note": "矩阵"}),
    ("GET", "/shelters"): (ALL, None),
    ("GET", "/shelters/nearest"): (ALL, {"lat": 32.04, "lon": 112.14}),
    ("PUT", "/shelters/{shelter}"): (STAFF, {**SHELTER, "status": "open"}),
    ("POST", "/shelters/{shelter}/occupancy"): (FIELD_AND_STAFF, {"occupancy": 10}),
    ("GET", "/incidents/{live}/risk"): (STAFF, None),
}

# the duty desk (值班值守): the centre reads and writes, the commander (and admin) sets the
# roster, the shifts' own members sign. The world's shifts are in 2020 (nobody is on duty
# now: an allowed handover gets 404), its instruction is open (an allowed "done" gets
# 409), its handover is sealed (an allowed signature gets 409); the bodies below are
# refused with 422 or 409 after the role check
COMMANDERS = frozenset({"commander", "admin"})
DUTY_SHIFT = {"leader": "commander1", "officers": ["operator1"]}
DUTY_POLICY: dict[tuple[str, str], tuple[frozenset[str], dict[str, Any] | None]] = {
    ("GET", "/duty/now"): (STAFF, None),
    ("GET", "/duty/shifts"): (STAFF, None),
    ("POST", "/duty/shifts"): (
        COMMANDERS,
        {**DUTY_SHIFT, "starts_at": "2020-01-01T09:00:00+08:00", "ends_at": "2020-01-01T10:00:00+08:00"},
    ),
    ("PUT", "/duty/shifts/{duty_shift}"): (
        COMMANDERS,
        {**DUTY_SHIFT, "starts_at": "2020-01-01T10:00:00+08:00", "ends_at": "2020-01-01T09:00:00+08:00"},
    ),
    ("GET", "/duty/log"): (STAFF, None),
    ("GET", "/duty/log.csv"): (STAFF, None),
    ("GET", "/duty/log.html"): (STAFF, None),
    ("POST", "/duty/log"): (STAFF, {"text": "   "}),
    ("GET", "/duty/instructions"): (STAFF, None),
    ("POST", "/duty/instructions"): (STAFF, {"issued_by": "矩阵", "text": "   "}),
    ("POST", "/duty/instructions/{duty_instruction}/advance"): (STAFF, {"to": "done"}),
    ("GET", "/duty/handovers"): (STAFF, None),
    ("GET", "/duty/handovers/{duty_handover}"): (STAFF, None),
    ("POST", "/duty/handovers"): (STAFF, {}),
    ("POST", "/duty/handovers/{duty_handover}/sign"): (frozenset({"operator", "commander"}), None),
}

# (method, path) -> (roles allowed, request body or query). Paths use {live}, {exercise},
# {case}, {team}, {other_team}, {lot}, {plan}, {item}.
POLICY: dict[tuple[str, str], tuple[frozenset[str], dict[str, Any] | None]] = {
    ("GET", "/auth/me"): (ALL, None),
    ("POST", "/auth/refresh"): (ALL, None),
    ("GET", "/incidents"): (ALL, None),  # each sees its own view (filtered)
    ("POST", "/incidents"): (
        STAFF,
        {"type": "fire", "level": 4, "title": "矩阵", "lat": 32.04, "lon": 112.14},
    ),
    ("GET", "/incidents/{live}"): (STAFF, None),
    ("POST", "/incidents/{live}/verify"): (STAFF, ACT),
    ("POST", "/incidents/{live}/resolve"): (STAFF, ACT),
    ("POST", "/incidents/{live}/reopen"): (STAFF, ACT),
    ("POST", "/incidents/{live}/close"): (STAFF, ACT),
    ("GET", "/incidents/{live}/closing"): (STAFF, None),
    ("GET", "/incidents/{live}/photos"): (STAFF, None),
    ("GET", "/incidents/{live}/photos/{photo}"): (STAFF, None),
    ("POST", "/incidents/{live}/cancel"): (STAFF, ACT),
    ("POST", "/incidents/{live}/false-alarm"): (STAFF, ACT),
    ("POST", "/incidents/{live}/hold"): (STAFF, ACT),
    ("POST", "/incidents/{live}/resume"): (STAFF, {"expected_version": STALE}),
    ("POST", "/incidents/{live}/level"): (frozenset({"commander", "admin"}), {**ACT, "level": 2}),
    ("POST", "/incidents/{live}/type"): (STAFF, {**ACT, "type": "flood"}),
    ("POST", "/incidents/{live}/notes"): (STAFF, {**ACT, "text": "note"}),
    ("POST", "/incidents/{live}/arrived"): (STAFF, {"team_id": OTHER_TEAM, "expected_version": STALE}),
    ("POST", "/incidents/{live}/split"): (STAFF, {**ACT, "alarm_id": "x"}),
    ("POST", "/incidents/{live}/merge"): (STAFF, {**ACT, "into": "{live2}", "into_expected_version": STALE}),
    ("GET", "/incidents/{live}/plan"): (STAFF, None),
    ("POST", "/incidents/{live}/plan"): (STAFF, {"plan_id": "{plan}", "expected_version": STALE}),
    ("POST", "/incidents/{live}/checklist/{item}"): (STAFF, {"expected_version": STALE, "done": True}),
    ("GET", "/incidents/{live}/reserve"): (STAFF, None),
    ("POST", "/incidents/{live}/reserve"): (STAFF, {"item_code": "{item_code}", "quantity": 10**6}),
    ("POST", "/incidents/{live}/reserve/{lot}/issue"): (STAFF, {"quantity": 10**6}),
    ("POST", "/incidents/{live}/reserve/{lot}/return"): (STAFF, {"quantity": 10**6}),
    ("POST", "/incidents/{live}/reserve/{lot}/consume"): (STAFF, {"quantity": 10**6}),
    ("POST", "/incidents/{live}/reserve/{lot}/release"): (STAFF, {"quantity": 10**6}),
    ("GET", "/incidents/{live}/recommendations"): (STAFF, None),
    ("POST", "/incidents/{live}/dispatch"): (STAFF, {"team_id": FIELD_TEAM, "expected_version": STALE}),
    ("POST", "/incidents/{live}/release"): (STAFF, {"team_id": FIELD_TEAM, **ACT}),
    ("GET", "/incidents/{live}/orders"): (STAFF, None),
    ("GET", "/plans"): (READERS, None),
    ("GET", "/plans/{plan}"): (READERS, None),
    ("GET", "/reserve/warehouses"): (READERS, None),
    ("GET", "/reserve/items"): (READERS, None),
    ("GET", "/reserve/stock"): (READERS, None),
    ("GET", "/reserve/alerts"): (READERS, None),
    ("GET", "/kpis"): (STAFF, None),  # planners must name an exercise (see below)
    ("GET", "/teams"): (ALL, None),
    ("GET", "/teams/near"): (READERS, {"lat": 32.04, "lon": 112.14, "radius_m": 5000}),
    ("GET", "/teams/{team}"): (ALL, None),  # a field user reads its own team
    ("GET", "/teams/{other_team}"): (READERS, None),
    ("POST", "/teams/{team}/status"): (
        frozenset({"operator", "commander", "admin", "field"}),
        {"status": "available"},
    ),
    ("POST", "/teams/{other_team}/status"): (STAFF, {"status": "available"}),
    ("GET", "/grid/cases"): (ALL, None),
    ("POST", "/grid/cases"): (
        ALL - {"planner"},
        {"category": "illegal_parking", "lat": 32.04, "lon": 112.14, "description": "矩阵"},
    ),
    ("GET", "/grid/cases/{case}"): (STAFF, None),
    ("POST", "/grid/cases/{case}/file"): (STAFF, {"expected_version": STALE}),
    ("POST", "/grid/cases/{case}/dismiss"): (STAFF, {"expected_version": STALE, "note": "x"}),
    ("POST", "/grid/cases/{case}/dispatch"): (STAFF, {"expected_version": STALE, "assignee": "w1"}),
    ("POST", "/grid/cases/{case}/handle"): (STAFF, {"expected_version": STALE}),
    ("POST", "/grid/cases/{case}/verify"): (STAFF, {"expected_version": STALE}),
    ("POST", "/grid/cases/{case}/reject"): (STAFF, {"expected_version": STALE, "note": "x"}),
    ("POST", "/grid/cases/{case}/close"): (STAFF, {"expected_version": STALE}),
    ("GET", "/grid/overdue"): (READERS | {"admin"}, None),
    ("POST", "/field/orders/{order}/ack"): (frozenset({"field"}), {"id": "ack-1"}),
    ("POST", "/field/reports"): (
        frozenset({"field"}),
        {"id": "r-1", "category": "illegal_parking", "description": "x", "lat": 32.04, "lon": 112.14},
    ),
    ("POST", "/field/photos"): (
        frozenset({"field"}),
        {"content_type": "image/png", "data_base64": "iVBORw=="},
    ),
    ("GET", "/field/photos/{photo}"): (ALL, None),
    ("GET", "/grid/kpis"): (READERS, None),
    # after-action reports (复盘报告): planners read exercises, not live incidents
    ("GET", "/exercises/{report_ex}/report"): (READERS, None),
    ("GET", "/exercises/{report_ex}/report.html"): (READERS, None),
    ("GET", "/exercises/{report_ex}/report.csv"): (READERS, None),
    ("GET", "/incidents/{live}/report"): (STAFF, None),
    ("GET", "/incidents/{live}/report.html"): (STAFF, None),
    ("GET", "/incidents/{live}/report.csv"): (STAFF, None),
    # exercises (演练): planners, commanders and admins manage; operators read. The world's
    # exercise is running, so an allowed purge gets 409; the bodies below are refused with
    # 422 after the role check (no scenario file, speed out of range, no warehouse).
    ("GET", "/exercises"): (READERS, None),
    ("POST", "/exercises"): (MANAGERS, {"kind": "scenario", "scenario": "no_such_scenario.yaml"}),
    ("GET", "/exercises/{exercise}"): (READERS, None),
    ("POST", "/exercises/{exercise}/control"): (MANAGERS, {"action": "speed", "value": 1000}),
    ("POST", "/exercises/{exercise}/injects"): (
        MANAGERS,
        {"kind": "warehouse_short", "warehouse_id": "W-NONE", "item_code": "sandbag", "quantity": 1},
    ),
    ("DELETE", "/exercises/{exercise}"): (MANAGERS, None),
    # the alarm inbox (告警收件箱): the world's row is dismissed already, so an allowed act
    # gets 409 after the role check; planners may act on exercise rows only (403 here);
    # a planner's bulk on a live row is refused row by row (200); field users never.
    ("GET", "/inbox"): (READERS, None),
    ("POST", "/inbox/{inbox_row}/promote"): (STAFF, {}),
    ("POST", "/inbox/{inbox_row}/link"): (STAFF, {"incident_id": "{live}"}),
    ("POST", "/inbox/{inbox_row}/dismiss"): (STAFF, {"reason": "test"}),
    ("POST", "/inbox/bulk"): (READERS, {"action": "dismiss", "row_ids": [INBOX_ROW], "reason": "test"}),
    # planned events (大型活动): staff register and cancel, planners drill events only; the
    # body's event is over already (an allowed create gets 422 after the role check) and
    # the world's event is cancelled already (an allowed cancel gets 409)
    ("GET", "/planned-events"): (READERS, None),
    ("POST", "/planned-events"): (
        STAFF,
        {
            "name": "矩阵",
            "lat": 32.04,
            "lon": 112.14,
            "radius_m": 300,
            "starts_at": "2020-01-01T08:00:00+08:00",
            "ends_at": "2020-01-01T10:00:00+08:00",
        },
    ),
    ("POST", "/planned-events/{planned_event}/cancel"): (STAFF, {"reason": "矩阵"}),
    # warnings (预警): the desk drafts, the commander issues, a crew reads what targets it
    # (another's is 404, not 403); planners drill warnings only. The body's warning is
    # over already (an allowed draft gets 422) and the world's is cancelled (an allowed
    # approve, update or cancel gets 409)
    ("GET", "/warnings/vocabulary"): (ALL, None),
    ("GET", "/warnings"): (STAFF | {"field"}, None),
    ("POST", "/warnings"): (STAFF, {**WARNING, "expires": "2020-01-01T10:00:00+08:00"}),
    ("POST", "/warnings/inside"): (STAFF, {"polygon": WARNING["area"]["polygon"]}),
    ("GET", "/warnings/{warning}"): (STAFF | {"field"}, None),
    ("GET", "/warnings/{warning}.cap"): (STAFF | {"field"}, None),
    ("GET", "/warnings/feed.atom"): (frozenset({"operator", "commander", "admin"}), None),
    ("POST", "/warnings/{warning}/approve"): (frozenset({"commander", "admin"}), None),
    ("POST", "/warnings/{warning}/update"): (frozenset({"commander", "admin"}), WARNING),
    ("POST", "/warnings/{warning}/cancel"): (STAFF, {"reason": "矩阵"}),
    **RISK_POLICY,
    **DUTY_POLICY,
    # CAP in: the body is no CAP file, so an admitted role gets 422 (planners: drills only,
    # decided once the file is read)
    ("POST", "/warnings/cap"): (READERS, {}),
    ("GET", "/warnings/inbound"): (READERS, None),
    # upward reporting (信息报送): the desk drafts and sends, the leader on duty (commander)
    # approves, the centre reads the clocks; planners drills only, field users never. The
    # world's incident has no report yet: an allowed draft of a follow-up gets 409 (no 首报),
    # an allowed act on report 1 gets 404; a figures entry and an instruction's follow-up
    # are recorded
    ("GET", "/incidents/{live}/reports"): (STAFF, None),
    ("POST", "/incidents/{live}/reports"): (STAFF, {"kind": "follow_up"}),
    ("POST", "/incidents/{live}/figures"): (STAFF, {"source": "矩阵"}),
    ("GET", "/incidents/{live}/reports/1"): (STAFF, None),
    ("GET", "/incidents/{live}/reports/1.json"): (STAFF, None),
    ("GET", "/incidents/{live}/reports/1.eido.json"): (STAFF, None),
    ("PATCH", "/incidents/{live}/reports/1"): (STAFF, {"note": "矩阵"}),
    ("POST", "/incidents/{live}/reports/1/approve"): (frozenset({"commander", "admin"}), None),
    ("POST", "/incidents/{live}/reports/1/send"): (STAFF, None),
    ("POST", "/incidents/{live}/reports/1/receipt"): (STAFF, {"signed_by": "矩阵"}),
    ("GET", "/reports/clocks"): (STAFF, None),
    ("GET", "/reports/instructions"): (STAFF, None),
    ("POST", "/reports/instructions/{instruction}/follow-up"): (STAFF, {"passed_to": "矩阵"}),
    # last: it ends the session of the token it is called with
    ("POST", "/auth/logout"): (ALL, None),
}

#: Routes that need no token at all.
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/auth/login")}


def _world(database_url: str, client: TestClient, login: Login) -> dict[str, str]:
    op = login("operator1")
    live = client.post(
        "/incidents",
        headers=op,
        json={"type": "high_rise_fire", "level": 3, "title": "高层火灾", "lat": 32.04, "lon": 112.14},
    ).json()["id"]
    live2 = client.post(
        "/incidents",
        headers=op,
        json={"type": "fire", "level": 4, "title": "另一起", "lat": 32.05, "lon": 112.15},
    ).json()["id"]
    case = client.post(
        "/grid/cases",
        headers=op,
        json={"category": "illegal_parking", "lat": 32.04, "lon": 112.14, "description": "占道"},
    ).json()["id"]
    plan = client.get("/plans", headers=op).json()[0]["id"]
    item = client.get(f"/plans/{plan}", headers=op).json()["checklist"][0]["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO warehouse (id, name, kind, lat, lon) VALUES"
            " ('W1', '襄阳市应急物资储备库', 'government_stock', 32.0, 112.1)"
        )
        conn.execute(
            "INSERT INTO reserve_item (code, name_zh, name_en, category, unit, unit_zh)"
            " VALUES ('sandbag', '沙袋', 'sandbag', 'rescue_equipment', 'bag', '袋')"
        )
        conn.execute(
            "INSERT INTO stock_lot (id, warehouse_id, item_code, quantity)"
            " VALUES ('L1', 'W1', 'sandbag', 100)"
        )
    return {
        "live": live,
        "live2": live2,
        "case": case,
        "team": FIELD_TEAM,
        "other_team": OTHER_TEAM,
        "lot": "L1",
        "plan": plan,
        "item": item,
        "item_code": "sandbag",
        "order": "ORD-NONE",
        "photo": "0" * 64 + ".png",
    }


def _fill(value: Any, world: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**world) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


@pytest.fixture
def world(command_client: TestClient, command_settings: Any, login: Login) -> dict[str, str]:
    return {
        **_world(command_settings.shared.database_url, command_client, login),
        **_report_world(command_settings),
        **_exercise_world(command_settings),
        **_inbox_world(command_settings),
        **_planned_event_world(command_settings),
        **_warning_world(command_settings),
        **_risk_world(command_settings),
        **_duty_world(command_settings),
        **_upward_world(command_settings),
    }


def _duty_world(settings: Any) -> dict[str, str]:
    """Two past shifts, an open instruction and a handover both shifts have signed."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        for n, start, officer in (
            (1, "2020-01-01T08:00:00+08:00", "operator1"),
            (2, "2020-01-01T20:00:00+08:00", "operator2"),
        ):
            conn.execute(
                "INSERT INTO duty_shift (shift_id, starts_at, ends_at, leader, officers, set_by)"
                " VALUES (%s, %s::timestamptz, %s::timestamptz + interval '12 hours', 'commander1',"
                " ARRAY[%s], 'commander1')",
                (f"DS-MATRIX-{n}", start, start, officer),
            )
        conn.execute(
            "INSERT INTO duty_instruction (instruction_id, received_at, issued_by, text, recorded_by,"
            " updated_by, updated_at)"
            " VALUES ('DI-MATRIX-1', now(), '矩阵', '矩阵批示', 'operator1', 'operator1', now())"
        )
        conn.execute(
            "INSERT INTO duty_handover (handover_id, outgoing_shift_id, incoming_shift_id, drawn_up_by,"
            " drawn_up_at, snapshot, outgoing_signed_by, outgoing_signed_at, incoming_signed_by,"
            " incoming_signed_at) VALUES ('DH-MATRIX-1', 'DS-MATRIX-1', 'DS-MATRIX-2', 'operator1', now(),"
            " '{}', 'operator1', now(), 'operator2', now())"
        )
    return {"duty_shift": "DS-MATRIX-1", "duty_instruction": "DI-MATRIX-1", "duty_handover": "DH-MATRIX-1"}


def _upward_world(settings: Any) -> dict[str, str]:
    """A live instruction from the upper level (上级批示) to pass on."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO upward_instruction (instruction_id, from_unit, text, issued_at, received_at)"
            " VALUES ('INS-MATRIX', '湖北省应急管理厅', '矩阵批示', now(), now())"
        )
    return {"instruction": "INS-MATRIX"}


def _risk_world(settings: Any) -> dict[str, str]:
    """A registered risk source and an open shelter (findings and counts on them succeed)."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO risk_source (id, name, kind, lat, lon, grid_cell_id, level,"
            " inspection_interval_days)"
            " VALUES ('RS-MATRIX', '矩阵加油站', 'gas_station', 32.04, 112.14, 'c', 'general', 30)"
        )
        conn.execute(
            "INSERT INTO shelter (id, name, kind, lat, lon, grid_cell_id, capacity, status)"
            " VALUES ('SH-MATRIX', '矩阵避难场所', 'park', 32.04, 112.14, 'c', 100, 'open')"
        )
    return {"risk_source": "RS-MATRIX", "shelter": "SH-MATRIX"}


def _inbox_world(settings: Any) -> dict[str, str]:
    """A live inbox row, dismissed already (acts on it are refused with 409, nothing changes)."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO triage_row (row_id, source, category, alarm_kind, first_seen, last_seen, count,"
            " max_severity, severity_rank, summary, first_alarm_id, alarm_ids, recent, identity, state,"
            " acted_by, acted_role, acted_at, dismiss_reason, rules_version) VALUES"
            " (%s, 'video/CAM-M', 'loitering', 'video', now(), now(), 1, 'low', 1, '矩阵', 'a1', '{a1}',"
            " ARRAY[now()], 'video:video/CAM-M', 'dismissed', 'operator1', 'operator', now(), 'test', 1)",
            (INBOX_ROW,),
        )
    return {"inbox_row": INBOX_ROW}


def _planned_event_world(settings: Any) -> dict[str, str]:
    """A live planned event, cancelled already (a cancel is refused with 409)."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO planned_event (event_id, name, lat, lon, radius_m, starts_at, ends_at, created_by,"
            " state, cancelled_by, cancelled_at, cancel_reason) VALUES ('PE-MATRIX-1', '矩阵活动', 32.04,"
            " 112.14, 300, now(), now() + interval '2 hours', 'operator1', 'cancelled', 'operator1', now(),"
            " '矩阵')"
        )
    return {"planned_event": "PE-MATRIX-1"}


def _warning_world(settings: Any) -> dict[str, str]:
    """A live warning, cancelled already (approve, update and cancel are refused with 409)."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO warning (identifier, sender, event_type, level, area_polygon, onset, expires,"
            " headline, drafted_by, drafted_at, state, cancelled_by, cancelled_at, cancel_reason) VALUES"
            " (%s, '矩阵', 'meteorological', 'yellow', '[[32.0, 112.1], [32.0, 112.2], [32.1, 112.2]]',"
            " now(), now() + interval '2 hours', '矩阵预警', 'operator1', now(), 'cancelled', 'operator1',"
            " now(), '矩阵')",
            (WARNING_ID,),
        )
    return {"warning": WARNING_ID}


def _exercise_world(settings: Any) -> dict[str, str]:
    """A running exercise to manage (running: a purge is refused, nothing is lost)."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by) VALUES"
            " ('EX-MATRIX-RUN', '矩阵演练', 'scenario', 'matrix.yaml', 'running', 'planner1')"
        )
    return {"exercise": "EX-MATRIX-RUN"}


def _report_world(settings: Any) -> dict[str, str]:
    """An exercise to read the after-action report of."""
    with psycopg.connect(settings.shared.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, created_by) VALUES"
            " ('EX-MATRIX-R', '矩阵演练', 'scenario', 'matrix.yaml', 'planner1')"
        )
    return {"report_ex": "EX-MATRIX-R"}


def _call(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> int:
    if method == "GET":
        return client.get(path, params=body, headers=headers).status_code
    if method == "DELETE":
        return client.delete(path, headers=headers).status_code
    if method == "PUT":
        return client.put(path, json=body or {}, headers=headers).status_code
    if method == "PATCH":
        return client.patch(path, json=body or {}, headers=headers).status_code
    return client.post(path, json=body or {}, headers=headers).status_code


def test_every_route_has_a_policy(command_client: TestClient) -> None:
    routes = {(m.upper(), p) for p, ops in command_client.app.openapi()["paths"].items() for m in ops}  # type: ignore[attr-defined]
    templated = {(m, p.split("?")[0]) for m, p in POLICY}
    placeholders = {
        "{live}": "{incident_id}",
        "{case}": "{case_id}",
        "{team}": "{team_id}",
        "{other_team}": "{team_id}",
        "{lot}": "{lot_id}",
        "{plan}": "{plan_id}",
        "{item}": "{item_id}",
        "{order}": "{order_id}",
        "{photo}": "{name}",
        "{report_ex}": "{exercise_id}",
        "{exercise}": "{exercise_id}",
        "{inbox_row}": "{row_id}",
        "{planned_event}": "{event_id}",
        "{warning}": "{identifier}",
        "{risk_source}": "{source_id}",
        "{shelter}": "{shelter_id}",
        "{duty_shift}": "{shift_id}",
        "{duty_instruction}": "{instruction_id}",
        "{duty_handover}": "{handover_id}",
        "{instruction}": "{instruction_id}",
        "/reports/1": "/reports/{number}",
    }
    covered = set()
    for method, path in templated:
        for ours, theirs in placeholders.items():
            path = path.replace(ours, theirs)
        covered.add((method, path))
    missing = routes - covered - PUBLIC
    assert not missing, f"routes without a row in POLICY: {sorted(missing)}"


def test_no_token_means_401(command_client: TestClient, world: dict[str, str]) -> None:
    for (method, path), (_, body) in POLICY.items():
        status = _call(command_client, method, path.format(**world), _fill(body, world), {})
        assert status == 401, f"{method} {path} without a token gave {status}"


def test_roles_on_every_route(
    command_client: TestClient, command_settings: Any, login: Login, world: dict[str, str]
) -> None:
    wrong: list[str] = []
    for (method, path), (allowed, body) in POLICY.items():
        url = path.format(**world)
        for role, user in USERS.items():
            status = _call(command_client, method, url, _fill(body, world), login(user))
            refused = status == 403
            if refused == (role in allowed) or status >= 500:
                wrong.append(f"{role:9} {method} {path}: {status}")
    assert not wrong, "\n".join(wrong)
    with psycopg.connect(command_settings.shared.database_url) as conn:
        denied = conn.execute("SELECT count(*) FROM audit_log WHERE outcome = 'denied'").fetchone()
    assert denied is not None and denied[0] > 50  # every 403 above left an audit row


def test_someone_elses_objects(command_client: TestClient, login: Login, world: dict[str, str]) -> None:
    field = login(FIELD_TEAM)
    # a field user cannot record another team's arrival, nor change its status
    assert (
        command_client.post(
            f"/incidents/{world['live']}/arrived", headers=field, json={"team_id": OTHER_TEAM}
        ).status_code
        == 403
    )
    assert (
        command_client.post(
            f"/teams/{OTHER_TEAM}/status", headers=field, json={"status": "off_duty"}
        ).status_code
        == 403
    )
    # a planner cannot touch a live incident, nor see live KPIs without naming an exercise
    planner = login("planner1")
    assert (
        command_client.post(
            f"/incidents/{world['live']}/notes", headers=planner, json={"expected_version": 1, "text": "x"}
        ).status_code
        == 403
    )
    assert command_client.get("/kpis", headers=planner).status_code == 403


def test_planner_may_work_an_exercise_incident(
    command_client: TestClient, command_settings: Any, login: Login
) -> None:
    """The other side of the planner rule: exercise incidents are theirs."""
    from command.services import incident_store

    async def open_exercise() -> str:
        from psycopg import AsyncConnection

        at = datetime.now(UTC)
        events = decide_open(
            "EX-MATRIX-1",
            incident_type=IncidentType.FIRE,
            level=ResponseLevel.IV,
            title="演练火情",
            actor=Actor("planner1", Role.PLANNER),
            at=at,
            lat=32.0,
            lon=112.1,
            exercise_id="EX-1",
        )
        async with (
            await AsyncConnection.connect(command_settings.shared.database_url) as conn,
            conn.transaction(),
        ):
            await incident_store.append(conn, None, events, audit_action="incident.open")
        return "EX-MATRIX-1"

    import asyncio

    incident_id = asyncio.run(open_exercise())
    planner, operator = login("planner1"), login("operator1")
    r = command_client.post(
        f"/incidents/{incident_id}/notes", headers=planner, json={"expected_version": 1, "text": "演练记录"}
    )
    assert r.status_code == 200, r.text
    assert command_client.get(f"/incidents/{incident_id}", headers=operator).status_code == 403
