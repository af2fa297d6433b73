"""After-action reports through the API on real PostgreSQL, Redis and the broker.

A live incident comes from a 110 alarm on ingest's Redis stream; exercise incidents are
opened with the domain's ``decide_open`` through the service's own store (as the
exercise runner's alarms would open them) and then worked by the planner through the
API: plan, checklist, dispatch, arrival, resolve, close. Every number the report gives
is checked against one computed here from the events of each incident's timeline.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from command.domain.vocabulary import IncidentType
from command.services.plans import load_library
from tests.command.conftest import FIELD_TEAM, OTHER_TEAM
from tests.command.test_dispatch_api import add_team, isolated_settings
from tests.command.test_incidents_api import push_alarm, wait_for
from tests.command.test_kpis_api import open_by_domain
from wuwang.settings import Settings
from wuwang.stats import percentile

Login = Callable[[str], dict[str, str]]
EX = "EX-RPT-1"
S_VERIFIED = "verified"
BOUNDARY = (
    '{"type": "Polygon", "coordinates": [[[112.0, 31.95], [112.2, 31.95], [112.2, 32.06], [112.0, 31.95]]]}'
)


@pytest.fixture
def command_settings(make_settings: Callable[..., Settings]) -> Settings:
    return isolated_settings(make_settings)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _detail(client: TestClient, incident_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = client.get(f"/incidents/{incident_id}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _act(client: TestClient, headers: dict[str, str], incident_id: str, path: str, **body: Any) -> Any:
    version = _detail(client, incident_id, body.pop("admin"))["incident"]["version"]  # admins see both worlds
    r = client.post(
        f"/incidents/{incident_id}/{path}", headers=headers, json={"expected_version": version, **body}
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def _expected(timeline: list[dict[str, Any]]) -> dict[str, float | None]:
    """The durations implied by an incident's events (docs/exercises.md definitions)."""
    opened = timeline[0]
    source = opened["data"].get("source")
    first_alarm = _ts(source["ts"]) if source else _ts(opened["at"])
    for e in timeline:
        if e["kind"] == "source_linked":
            first_alarm = min(first_alarm, _ts(e["data"]["source"]["ts"]))
    verified = next(
        (
            _ts(e["at"])
            for e in timeline
            if e["kind"] == "state_changed" and e["data"]["to_state"] == S_VERIFIED
        ),
        None,
    )
    dispatched = next((_ts(e["at"]) for e in timeline if e["kind"] == "team_dispatched"), None)
    arrived = next((_ts(e["at"]) for e in timeline if e["kind"] == "team_arrived"), None)

    def span(a: datetime | None, b: datetime | None) -> float | None:
        return None if a is None or b is None else max(0.0, (b - a).total_seconds())

    return {
        "call_processing_s": span(first_alarm, dispatched),
        "time_to_dispatch_s": span(verified, dispatched),
        "time_to_on_scene_s": span(dispatched, arrived),
        "response_s": span(first_alarm, arrived),
    }


def _insert_positions(
    url: str, team_id: str, exercise_id: str | None, points: list[tuple[datetime, float, float]]
) -> None:
    with psycopg.connect(url) as conn:
        for i, (ts, lat, lon) in enumerate(points):
            conn.execute(
                "INSERT INTO team_position (ts, received_at, ts_from_receipt, team_id, msg_id, lat, lon,"
                " exercise_id) VALUES (%s, %s, false, %s, %s, %s, %s, %s)",
                (ts, ts, team_id, f"p-{exercise_id}-{team_id}-{i}", lat, lon, exercise_id),
            )


def _seed_exercise(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO district (adcode, name, center_lat, center_lon, boundary) VALUES"
            " (420602, '襄城区', 32.01, 112.13, %s) ON CONFLICT DO NOTHING",
            (BOUNDARY,),
        )
        conn.execute(
            "INSERT INTO exercise (id, name, kind, source, status, created_by, started_at, finished_at,"
            " stats) VALUES (%s, '危化品泄漏桌面推演 <script>x</script>', 'scenario', 'hazmat.yaml',"
            " 'finished',"
            " 'planner1', now() - interval '20 minutes', now() + interval '1 hour',"
            " '{\"timing_drift_ms_p99\": 42}')",
            (EX,),
        )


@pytest.fixture
def scenario(command_client: TestClient, command_settings: Settings, login: Login) -> dict[str, Any]:
    """One live incident worked to closure, two exercise incidents (one worked with a
    plan, one never dispatched), and tracks in both worlds."""
    url = command_settings.shared.database_url or ""
    op, planner = login("operator1"), login("planner1")
    admin = login("admin1")
    add_team(url, FIELD_TEAM)  # on shift
    add_team(url, OTHER_TEAM)
    _seed_exercise(url)

    # Live: a 110 call two minutes old opens an incident; the operator works it.
    push_alarm(command_settings, "police/sys110#rpt-1", minutes_ago=2)
    live = wait_for(lambda: command_client.get("/incidents", headers=op).json())[0]["id"]
    _act(command_client, op, live, "dispatch", team_id=FIELD_TEAM, admin=admin)
    _act(command_client, op, live, "arrived", team_id=FIELD_TEAM, admin=admin)
    # The team is still on scene: the closing guard wants a commander's (or admin's) override.
    _act(command_client, admin, live, "resolve", override_reason="现场处置完毕，队伍稍后归队", admin=admin)
    _act(command_client, admin, live, "close", override_reason="队伍随结案释放", admin=admin)

    # Exercise: opened ten minutes ago (the runner's alarm), worked by the planner now.
    now = datetime.now().astimezone()
    open_by_domain(
        command_settings,
        "EX-RPT-A",
        now - timedelta(minutes=10),
        exercise_id=EX,
        incident_type=IncidentType.HAZMAT_LEAK,
        lat=32.01,
        lon=112.12,
    )
    open_by_domain(
        command_settings,
        "EX-RPT-B",
        now - timedelta(minutes=5),
        exercise_id=EX,
        incident_type=IncidentType.HAZMAT_LEAK,
        lat=32.02,
        lon=112.13,
    )
    _act(command_client, planner, "EX-RPT-A", "verify", admin=admin)
    _act(command_client, planner, "EX-RPT-A", "plan", plan_id="hazmat_leak", admin=admin)
    plan = command_client.get("/incidents/EX-RPT-A/plan", headers=planner).json()
    item = plan["activation"]["checklist"][0]["id"]
    _act(command_client, planner, "EX-RPT-A", f"checklist/{item}", done=True, admin=admin)
    _act(command_client, planner, "EX-RPT-A", "dispatch", team_id=OTHER_TEAM, admin=admin)
    plan_while_on_scene = command_client.get("/incidents/EX-RPT-A/plan", headers=planner).json()
    _act(command_client, planner, "EX-RPT-A", "arrived", team_id=OTHER_TEAM, admin=admin)
    _act(command_client, admin, "EX-RPT-A", "resolve", override_reason="演练：处置完毕", admin=admin)
    _act(command_client, admin, "EX-RPT-A", "close", override_reason="演练：结案", admin=admin)

    timelines = {i: _detail(command_client, i, admin)["timeline"] for i in (live, "EX-RPT-A", "EX-RPT-B")}

    def window(timeline: list[dict[str, Any]]) -> tuple[datetime, datetime]:
        start = next(_ts(e["at"]) for e in timeline if e["kind"] == "team_dispatched")
        end = next(_ts(e["at"]) for e in timeline if e["kind"] == "team_released")
        return start, end

    ls, le = window(timelines[live])
    es, ee = window(timelines["EX-RPT-A"])

    def inside(s: datetime, e: datetime, k: float) -> datetime:
        return s + (e - s) * k

    # live track: 3 points inside the dispatch window, one before it (left out)
    live_points = [(inside(ls, le, k), 32.03 + k / 100, 112.14) for k in (0.1, 0.5, 0.9)]
    _insert_positions(url, FIELD_TEAM, None, live_points)
    _insert_positions(url, FIELD_TEAM, None, [(ls - timedelta(minutes=5), 32.5, 112.5)])
    # exercise track for the exercise's team; a live point of that team must not appear
    ex_points = [(inside(es, ee, k), 32.0 + k / 100, 112.12) for k in (0.2, 0.4, 0.6, 0.8)]
    _insert_positions(url, OTHER_TEAM, EX, ex_points)
    _insert_positions(url, OTHER_TEAM, None, [(inside(es, ee, 0.5), 31.0, 111.0)])
    return {"live": live, "timelines": timelines, "plan_on_scene": plan_while_on_scene, "item": item}


def test_exercise_report_numbers_follow_from_the_events(
    command_client: TestClient, login: Login, scenario: dict[str, Any]
) -> None:
    planner = login("planner1")
    r = command_client.get(f"/exercises/{EX}/report", headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"]["kind"] == "exercise" and body["scope"]["exercise_id"] == EX
    assert body["exercise"]["stats"] == {"timing_drift_ms_p99": 42}
    rows = {row["id"]: row for row in body["incidents"]}
    assert set(rows) == {"EX-RPT-A", "EX-RPT-B"}  # the live incident is not in the exercise

    for incident_id, row in rows.items():
        expected = _expected(scenario["timelines"][incident_id])
        for key, value in expected.items():
            assert row[key] == (pytest.approx(value) if value is not None else None), (incident_id, key)
    assert rows["EX-RPT-B"]["first_dispatch_at"] is None

    k = body["kpis"]
    assert (k["incidents"], k["dispatched"], k["reached"], k["closed"]) == (2, 1, 1, 1)
    cp = _expected(scenario["timelines"]["EX-RPT-A"])["call_processing_s"]
    assert cp is not None
    assert k["call_processing"]["count"] == 1 and k["call_processing"]["missing_ids"] == ["EX-RPT-B"]
    assert k["call_processing"]["p90_s"] == pytest.approx(percentile([cp], 90))
    assert k["nfpa_1225"]["target_s"] == 60 and k["nfpa_1225"]["target_share"] == 0.9
    assert k["nfpa_1225"]["within_target"] == (1 if cp <= 60 else 0)
    assert k["nfpa_1225"]["met"] is (cp <= 60)  # opened 10 min before dispatch: missed
    assert k["time_to_on_scene"]["missing"] == 1

    # checklist: one of the plan's items at the final level was ticked
    total = len([e for e in scenario["plan_on_scene"]["activation"]["checklist"] if e["applies"]])
    assert k["checklist"] == {"done": 1, "total": total, "share": pytest.approx(1 / total)}
    assert rows["EX-RPT-A"]["plan_id"] == "hazmat_leak"
    # shortfall: what the console showed while the team was on the incident (no supplies held)
    shown = {(s["kind"], s["key"], s["required"], s["have"]) for s in scenario["plan_on_scene"]["shortfall"]}
    got = {(s["kind"], s["key"], s["required"], s["have"]) for s in k["shortfalls"]}
    assert got == shown and got

    # tracks: the exercise's own points of the dispatched team, in the dispatch window
    tracks = {t["team_id"]: t for t in body["tracks"]}
    assert set(tracks) == {OTHER_TEAM}
    assert len(tracks[OTHER_TEAM]["points"]) == 4 and tracks[OTHER_TEAM]["distance_m"] > 0
    assert all(p[1] >= 32.0 for p in tracks[OTHER_TEAM]["points"])  # the live point is not there

    events = sum(len(scenario["timelines"][i]) for i in rows)
    assert len(body["events"]) == events
    times = [_ts(e["at"]) for e in body["events"]]
    assert times == sorted(times)


def test_incident_report_of_a_live_incident(
    command_client: TestClient, login: Login, scenario: dict[str, Any]
) -> None:
    op = login("operator1")
    live = scenario["live"]
    body = command_client.get(f"/incidents/{live}/report?lang=en", headers=op).json()
    assert body["scope"] == {**body["scope"], "kind": "incident", "id": live, "exercise_id": None}
    (row,) = body["incidents"]
    expected = _expected(scenario["timelines"][live])
    call_processing = expected["call_processing_s"]
    assert call_processing is not None and call_processing >= 100  # a 2-minute-old call
    for key, value in expected.items():
        assert row[key] == pytest.approx(value), key
    assert row["state"] == "closed" and row["teams"] == [FIELD_TEAM]
    (track,) = body["tracks"]
    assert track["team_id"] == FIELD_TEAM and len(track["points"]) == 3  # the point before dispatch is not
    assert len(body["events"]) == len(scenario["timelines"][live])
    assert any(e["summary"].startswith(f"team {FIELD_TEAM} dispatched") for e in body["events"])


def test_html_is_self_contained_and_escaped(
    command_client: TestClient, login: Login, scenario: dict[str, Any]
) -> None:
    planner = login("planner1")
    r = command_client.get(f"/exercises/{EX}/report.html", headers=planner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in r.headers
    page = r.text
    for section in ("summary", "kpis", "timeline", "map", "plots", "events"):
        assert f'<section id="{section}">' in page, section
    assert "复盘报告" in page and 'lang="zh-CN"' in page and "NFPA 1225" in page
    assert 'id="nfpa-result"' in page and "missed" in page  # 10 minutes: missed, coloured
    # air-gapped: no script, stylesheet, image or frame from the network
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert "Plotly.newPlot" in page
    # user text is escaped (the exercise's name carries a script tag)
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "EX-RPT-A" in page and FIELD_TEAM not in page.split('<section id="events">')[1]

    en = command_client.get(f"/exercises/{EX}/report.html?lang=en&download=1", headers=planner)
    assert en.status_code == 200 and "After-action report" in en.text and 'lang="en"' in en.text
    assert en.headers["content-disposition"] == f'attachment; filename="after-action-{EX}.html"'
    assert len(en.content) < 8_000_000  # plotly.js inline (~4.8 MB) and the report


def test_csv_has_one_row_per_event(
    command_client: TestClient, login: Login, scenario: dict[str, Any]
) -> None:
    op = login("operator1")
    r = command_client.get(f"/exercises/{EX}/report.csv", headers=op)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM, for Excel
    assert r.headers["content-disposition"] == f'attachment; filename="after-action-{EX}-events.csv"'
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    timelines = scenario["timelines"]
    assert len(rows) == len(timelines["EX-RPT-A"]) + len(timelines["EX-RPT-B"])
    assert {row["incident_id"] for row in rows} == {"EX-RPT-A", "EX-RPT-B"}
    ticked = [row for row in rows if row["kind"] == "checklist_item_ticked"]
    assert len(ticked) == 1 and ticked[0]["role"] == "planner"
    # the step in words (zh by default), not its id
    plan = load_library(Settings().command.plans_dir).get("hazmat_leak")
    step = next(a for a in plan.checklist if a.id == scenario["item"])
    assert step.zh in ticked[0]["summary"] and scenario["item"] not in ticked[0]["summary"]

    live = command_client.get(f"/incidents/{scenario['live']}/report.csv", headers=op)
    assert len(list(csv.reader(io.StringIO(live.content.decode("utf-8-sig"))))) == 1 + len(
        timelines[scenario["live"]]
    )


def test_who_may_read_which_report(
    command_client: TestClient, command_settings: Settings, login: Login, scenario: dict[str, Any]
) -> None:
    live = scenario["live"]
    planner, field, commander = login("planner1"), login(FIELD_TEAM), login("commander1")
    for suffix in ("", ".html", ".csv"):
        assert command_client.get(f"/incidents/{live}/report{suffix}", headers=planner).status_code == 403
        assert command_client.get(f"/incidents/EX-RPT-A/report{suffix}", headers=planner).status_code == 200
        assert command_client.get(f"/exercises/{EX}/report{suffix}", headers=field).status_code == 403
        assert command_client.get(f"/incidents/{live}/report{suffix}", headers=field).status_code == 403
        assert command_client.get(f"/incidents/{live}/report{suffix}", headers=commander).status_code == 200
        assert command_client.get(f"/exercises/{EX}/report{suffix}").status_code == 401
        assert command_client.get(f"/exercises/EX-NOPE/report{suffix}", headers=planner).status_code == 404
        assert command_client.get(f"/incidents/INC-NOPE/report{suffix}", headers=commander).status_code == 404
    with psycopg.connect(command_settings.shared.database_url or "") as conn:
        denied = conn.execute(
            "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action = 'report.read'"
        ).fetchone()
    assert denied is not None and denied[0] == 9  # 3 planner-on-live + 6 field refusals
