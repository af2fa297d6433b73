"""A field team's report and its order: where it goes before triage (plain inputs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from command.domain.correlation import (
    KeepReport,
    TeamOrder,
    ToOrderIncident,
    report_team,
    route_team_report,
)
from wuwang.contract import Alarm, AlarmKind

ORDER = TeamOrder("ORD-1", "INC-7", incident_open=True)


def report(kind: AlarmKind = "report", **details: Any) -> Alarm:
    return Alarm(
        alarm_id=f"team/T-FIRE-01#{kind}-1",
        kind=kind,
        source="team/T-FIRE-01",
        msg_id="r1",
        network=None,
        ts=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        lat=32.2,  # 18 km from the scene: distance does not matter
        lon=112.3,
        grid_cell_id=None,
        category="on_scene",
        summary="队伍 T-FIRE-01 上报",
        details=details,
    )


def test_a_report_of_a_team_with_an_order_goes_to_its_incident_whatever_its_place_or_category() -> None:
    route = route_team_report(report(team_id="T-FIRE-01"), ORDER)
    assert isinstance(route, ToOrderIncident)
    assert route.incident_id == "INC-7"
    assert route.why.code == "report.to_order"
    assert dict(route.why.params) == {"team": "T-FIRE-01", "order_id": "ORD-1", "incident_id": "INC-7"}
    assert "ORD-1" in route.reason and "INC-7" in route.reason


def test_new_event_true_goes_through_triage_as_before() -> None:
    assert route_team_report(report(team_id="T-FIRE-01", new_event=True), ORDER) is None


def test_new_event_false_without_an_order_opens_nothing() -> None:
    route = route_team_report(report(team_id="T-FIRE-01", new_event=False), None)
    assert isinstance(route, KeepReport)
    closed = TeamOrder("ORD-1", "INC-7", incident_open=False)
    assert isinstance(route_team_report(report(team_id="T-FIRE-01", new_event=False), closed), KeepReport)


@pytest.mark.parametrize(
    "order", [None, TeamOrder("ORD-1", "INC-7", incident_open=False)], ids=["no order", "closed incident"]
)
def test_without_an_order_on_an_open_incident_a_report_is_an_on_the_ground_report(
    order: TeamOrder | None,
) -> None:
    assert route_team_report(report(team_id="T-FIRE-01"), order) is None


def test_only_team_reports_are_routed() -> None:
    assert report_team(report()) is None  # a grid worker's report: no team
    assert report_team(report("call", team_id="T-FIRE-01")) is None
    assert route_team_report(report(), ORDER) is None
