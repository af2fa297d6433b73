"""Risk sources and shelters, pure: when an inspection is overdue, what a finding does to
the level, which major sources are near an incident and what that does to the plan's
level, and which open shelters with room are nearest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from command.domain.risk import (
    RiskError,
    RiskKind,
    RiskLevel,
    RiskSource,
    Shelter,
    ShelterKind,
    ShelterStatus,
    apply_finding,
    evacuation_needed,
    inspection_due,
    major_sources_near,
    nearest_shelters,
    overdue_inspections,
    plan_level_with_risk,
    report_occupancy,
)

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
FANCHENG = (32.045, 112.135)  # 樊城区


def source(
    sid: str, level: RiskLevel, *, last: datetime | None, days: int = 30, at: tuple[float, float] = FANCHENG
) -> RiskSource:
    return RiskSource(sid, f"源 {sid}", RiskKind.GAS_STATION, at[0], at[1], level, timedelta(days=days), last)


def test_an_inspection_is_due_an_interval_after_the_last_and_at_once_if_never() -> None:
    s = source("RS-1", RiskLevel.GENERAL, last=T0, days=30)
    assert inspection_due(s) == T0 + timedelta(days=30)
    assert inspection_due(source("RS-2", RiskLevel.LOW, last=None)) is None
    sources = [
        s,
        source("RS-2", RiskLevel.LOW, last=None),
        source("RS-3", RiskLevel.MAJOR, last=T0 - timedelta(days=10), days=7),
    ]
    registered = T0 - timedelta(days=1)
    found = overdue_inspections(sources, T0 + timedelta(days=1), never_due=registered)
    # the major one first, then by due date; RS-1 is not due yet
    assert [(o.source.id, o.due_at) for o in found] == [
        ("RS-3", T0 - timedelta(days=3)),
        ("RS-2", registered),
    ]
    # the due date is the case's key: a later sweep finds the same one
    later = overdue_inspections(sources, T0 + timedelta(days=2), never_due=registered)
    assert [o.due_at for o in later] == [o.due_at for o in found]
    with pytest.raises(RiskError, match="time zone"):
        overdue_inspections(sources, datetime(2026, 6, 1), never_due=registered)


def test_a_finding_raises_the_level_never_lowers_it_and_a_major_one_raises_an_alarm() -> None:
    s = source("RS-1", RiskLevel.GENERAL, last=T0)
    at = T0 + timedelta(days=40)
    same = apply_finding(s, at, level=None, alarm=False)
    assert same.source.level is RiskLevel.GENERAL and same.source.last_inspected_at == at
    assert not same.raised and not same.raise_alarm
    up = apply_finding(s, at, level=RiskLevel.LARGE, alarm=False)
    assert up.raised and up.source.level is RiskLevel.LARGE and not up.raise_alarm
    major = apply_finding(s, at, level=RiskLevel.MAJOR, alarm=False)
    assert major.raised and major.raise_alarm  # becoming major always alarms
    asked = apply_finding(s, at, level=None, alarm=True)
    assert asked.raise_alarm and not asked.raised
    with pytest.raises(RiskError, match="not lower it"):
        apply_finding(s, at, level=RiskLevel.LOW, alarm=False)


def test_major_sources_near_an_incident_and_the_plan_level_they_raise() -> None:
    near = source("RS-N", RiskLevel.MAJOR, last=T0, at=(32.0500, 112.1350))  # ~550 m north
    far = source("RS-F", RiskLevel.MAJOR, last=T0, at=(32.0700, 112.1350))  # ~2.8 km
    minor = source("RS-M", RiskLevel.LARGE, last=T0, at=(32.0451, 112.1351))
    found = major_sources_near(*FANCHENG, [far, minor, near])
    assert [n.id for n in found] == ["RS-N"]
    assert 500 < found[0].distance_m < 600
    assert plan_level_with_risk(3, True) == 2  # Ⅲ → Ⅱ
    assert plan_level_with_risk(1, True) == 1  # never above Ⅰ
    assert plan_level_with_risk(4, False) == 4
    with pytest.raises(RiskError):
        plan_level_with_risk(0, True)


def shelter(sid: str, at: tuple[float, float], cap: int, occ: int, st: ShelterStatus) -> Shelter:
    return Shelter(sid, f"避难场所 {sid}", ShelterKind.PARK, at[0], at[1], cap, st, occ)


def test_nearest_open_shelters_with_room_and_their_distance() -> None:
    shelters = [
        shelter("SH-CLOSED", (32.0451, 112.1351), 1000, 0, ShelterStatus.CLOSED),
        shelter("SH-FULL", (32.0452, 112.1352), 1000, 1000, ShelterStatus.FULL),
        shelter("SH-NEAR", (32.0500, 112.1350), 500, 450, ShelterStatus.OPEN),
        shelter("SH-FAR", (32.0600, 112.1350), 3000, 100, ShelterStatus.OPEN),
    ]
    got = nearest_shelters(*FANCHENG, shelters)
    assert [(c.id, c.free) for c in got] == [("SH-NEAR", 50), ("SH-FAR", 2900)]
    assert got[0].distance_m < got[1].distance_m
    assert [c.id for c in nearest_shelters(*FANCHENG, shelters, need=100)] == ["SH-FAR"]
    assert nearest_shelters(*FANCHENG, shelters, limit=1)[0].id == "SH-NEAR"


def test_occupancy_fills_and_frees_a_shelter() -> None:
    s = shelter("SH-1", FANCHENG, 100, 0, ShelterStatus.OPEN)
    full = report_occupancy(s, 100)
    assert full.status is ShelterStatus.FULL and full.free == 0
    again = report_occupancy(full, 80)
    assert again.status is ShelterStatus.OPEN and again.free == 20
    assert report_occupancy(again, 0, status=ShelterStatus.CLOSED).status is ShelterStatus.CLOSED
    with pytest.raises(RiskError, match="closed"):
        report_occupancy(shelter("SH-2", FANCHENG, 100, 0, ShelterStatus.CLOSED), 5)
    with pytest.raises(RiskError):
        report_occupancy(s, -1)


def test_which_incidents_evacuate() -> None:
    assert evacuation_needed("hazmat_leak")
    assert not evacuation_needed("traffic_accident")
    assert evacuation_needed("other", ("evacuate_building",))
    assert not evacuation_needed("other", ("cordon",))
