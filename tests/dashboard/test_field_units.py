"""The field page's API as the page's navigation needs it: the team's tracked position
and the order's address in ``/field/api/current``, and a report ticked "new event"
passed on as such (and only then)."""

from __future__ import annotations

from dashboard.field_api import current_order, last_position
from tests.dashboard.test_console_units import FIELD, FakeCommand, field_client

REPORT = {
    "id": "web-report-7",
    "category": "gas",
    "description": "另一处燃气泄漏",
    "lat": 32.05,
    "lon": 112.14,
}


def test_a_report_ticked_new_event_says_so_and_an_ordinary_one_does_not() -> None:
    fake = FakeCommand(reports=True)
    client = field_client(fake)
    headers = {"Authorization": "Bearer team"}
    assert (
        client.post("/field/api/report", headers=headers, json={**REPORT, "new_event": True}).status_code
        == 200
    )
    assert client.post("/field/api/report", headers=headers, json=REPORT).status_code == 200
    sent = [s[2] for s in fake.seen if s[1] == "/field/reports"]
    assert [r.get("new_event") for r in sent] == [True, None]
    refused = client.post("/field/api/report", headers=headers, json={**REPORT, "new_event": "yes"})
    assert refused.status_code == 422  # strict: a text is not a yes


def test_the_teams_tracked_position_is_passed_on_when_it_has_one() -> None:
    team = {
        "id": "T-FIRE-01",
        "position": {"lat": 32.01, "lon": 112.2, "at": "2026-12-07T11:00:00Z", "stale": True},
    }
    assert last_position(team) == {"lat": 32.01, "lon": 112.2, "at": "2026-12-07T11:00:00Z", "stale": True}
    assert last_position({"id": "T-FIRE-01", "position": None}) is None
    assert last_position({"position": {"lat": None, "lon": 112.2}}) is None
    assert last_position({"position": {"lat": True, "lon": 112.2}}) is None  # a bool is no latitude


def test_the_order_carries_the_incidents_address_when_there_is_one() -> None:
    incident = {
        "id": "INC-9",
        "is_open": True,
        "title": "交通事故",
        "level": 3,
        "lat": 32.04,
        "lon": 112.14,
        "address": "樊城区长虹路18号",
        "teams": [{"team_id": "T-FIRE-01", "order_id": "O-9", "dispatched_at": "2026-12-07T11:00:00Z"}],
    }
    order = current_order(FIELD, [incident])
    assert order is not None and order["address"] == "樊城区长虹路18号"
    order = current_order(FIELD, [{**incident, "address": None}])
    assert order is not None and order["address"] is None  # the page shows the coordinates then


def test_the_shelters_offered_for_a_count_are_the_nearest_within_reach() -> None:
    from dashboard.field_api import SHELTER_RADIUS_M, shelters_near
    from wuwang.geo import offset_by_metres

    here = (32.05, 112.14)

    def shelter(n: str, north_m: float, **more: object) -> dict[str, object]:
        lat, lon = offset_by_metres(*here, north_m, 0)
        return {"id": n, "name": n, "lat": lat, "lon": lon, "status": "open", "occupancy": 0,
                "capacity": 100, "free": 100, "kind": "park", **more}

    rows = [shelter("SH-FAR", SHELTER_RADIUS_M + 200), shelter("SH-B", 900), shelter("SH-A", 300),
            {"id": "SH-BAD", "lat": True, "lon": 1}]
    near = shelters_near(rows, {"lat": here[0], "lon": here[1]})
    assert [(s["id"], s["distance_m"]) for s in near] == [("SH-A", 300), ("SH-B", 900)]
    assert set(near[0]) == {"id", "name", "status", "occupancy", "capacity", "free", "distance_m"}
    assert shelters_near(rows, None) == []  # no place known: nothing to offer
    many = [shelter(f"SH-{i}", 10 * i) for i in range(9)]
    assert len(shelters_near(many, {"lat": here[0], "lon": here[1]})) == 5
