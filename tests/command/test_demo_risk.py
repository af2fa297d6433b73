"""The demo risk sources and shelters: each inside the real district it names, loaded
into the registries, again without duplicates, and the first sweep finds overdue ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from shapely.geometry import Point

from command.demo_risk import DEMO_RISK_SOURCES, load_demo_risk
from command.domain.risk import RiskKind, RiskLevel, ShelterKind, ShelterStatus
from wuwang.city import load_districts
from wuwang.demo_shelters import DEMO_SHELTERS
from wuwang.settings import Settings


def test_every_demo_place_lies_in_the_district_it_names() -> None:
    districts = {d.adcode: d for d in load_districts()}
    places = [(r[0], r[3], r[4], r[5]) for r in DEMO_RISK_SOURCES] + [
        (s[0], s[3], s[4], s[5]) for s in DEMO_SHELTERS
    ]
    for key, lat, lon, adcode in places:
        assert districts[adcode].geometry.contains(Point(lon, lat)), (
            f"{key} is not in {districts[adcode].name}"
        )
    # every kind and level of the registry shows in the demo
    assert {RiskKind(r[2]) for r in DEMO_RISK_SOURCES} == set(RiskKind)
    assert {RiskLevel(r[6]) for r in DEMO_RISK_SOURCES} == set(RiskLevel)
    assert {ShelterKind(s[2]) for s in DEMO_SHELTERS} <= set(ShelterKind)
    assert {ShelterStatus(s[8]) for s in DEMO_SHELTERS} == {ShelterStatus.OPEN, ShelterStatus.CLOSED}
    assert all(0 <= s[9] <= s[6] for s in DEMO_SHELTERS)


def test_the_demo_loads_twice_into_the_same_rows(make_settings: object) -> None:
    settings: Settings = make_settings(account="command")  # type: ignore[operator]
    now = datetime.now(UTC)
    with psycopg.connect(settings.shared.database_url or "") as conn:
        assert load_demo_risk(conn, settings.shared.grid_cell_deg, now) == (
            len(DEMO_RISK_SOURCES),
            len(DEMO_SHELTERS),
        )
        assert load_demo_risk(conn, settings.shared.grid_cell_deg, now) == (
            len(DEMO_RISK_SOURCES),
            len(DEMO_SHELTERS),
        )
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM risk_source), (SELECT count(*) FROM shelter)"
        ).fetchone()
        overdue = conn.execute(
            "SELECT count(*) FROM risk_source"
            " WHERE last_inspected_at + make_interval(days => inspection_interval_days) <= %s",
            (now + timedelta(seconds=1),),
        ).fetchone()
    assert counts == (len(DEMO_RISK_SOURCES), len(DEMO_SHELTERS))
    assert overdue is not None and 2 <= overdue[0] < len(DEMO_RISK_SOURCES)
