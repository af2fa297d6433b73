"""Rosters: shifts (crossing midnight), on-duty, certificates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.rosters import (
    Certificate,
    DutyRoster,
    Member,
    Position,
    Shift,
    Team,
    TeamStatus,
    daily_shifts,
    expired_certificates,
    on_duty,
    team_skills,
)
from command.domain.vocabulary import TeamType

CST = timezone(timedelta(hours=8))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 7, day, hour, minute, tzinfo=CST)


def team(status: TeamStatus = TeamStatus.AVAILABLE, team_id: str = "T1") -> Team:
    return Team(team_id, "樊城消防站", TeamType.FIRE, 32.05, 112.14, 20, status)


def test_statuses_are_the_contract_ones() -> None:
    assert {s.value for s in TeamStatus} == {
        "available",
        "dispatched",
        "en_route",
        "on_scene",
        "returning",
        "off_duty",
    }


def test_night_shift_crosses_midnight() -> None:
    shifts = daily_shifts("T1", time(20), time(8), date(2025, 7, 1), 2, CST)
    assert shifts[0].starts_at == at(1, 20)
    assert shifts[0].ends_at == at(2, 8)
    assert on_duty(team(), shifts, at(1, 23, 59))
    assert on_duty(team(), shifts, at(2, 7, 59))
    assert not on_duty(team(), shifts, at(2, 8))  # end exclusive
    assert not on_duty(team(), shifts, at(2, 12))
    assert on_duty(team(), shifts, at(2, 20))  # start inclusive
    # the same answers from the indexed roster
    roster = DutyRoster(shifts)
    for moment in (at(1, 23, 59), at(2, 7, 59), at(2, 8), at(2, 12), at(2, 20), at(1, 19)):
        assert on_duty(team(), roster, moment) == on_duty(team(), shifts, moment)
    assert roster.duty_until("T1", at(1, 22)) == at(2, 8)
    assert roster.duty_until("nobody", at(1, 22)) is None


def test_24_hour_shift_and_timezones() -> None:
    shifts = daily_shifts("T1", time(8), time(8), date(2025, 7, 1), 1, CST)
    assert shifts[0].ends_at - shifts[0].starts_at == timedelta(hours=24)
    # "now" in UTC compares correctly with shifts in China Standard Time
    assert on_duty(team(), shifts, datetime(2025, 7, 1, 23, 0, tzinfo=UTC))  # 07:00 CST on the 2nd


def test_off_duty_status_wins_over_shift_and_busy_teams_are_on_duty() -> None:
    shifts = daily_shifts("T1", time(0), time(0), date(2025, 7, 1), 3, CST)
    assert not on_duty(team(TeamStatus.OFF_DUTY), shifts, at(2, 12))
    assert on_duty(team(TeamStatus.ON_SCENE), shifts, at(2, 12))
    assert not on_duty(team(team_id="T2"), shifts, at(2, 12))  # another team's shifts


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Shift("T1", datetime(2025, 7, 1, 8), at(1, 20))
    with pytest.raises(ValueError, match="timezone-aware"):
        on_duty(team(), [], datetime(2025, 7, 1, 8))
    with pytest.raises(ValueError, match="before it starts"):
        Shift("T1", at(1, 20), at(1, 8))
    with pytest.raises(ValueError, match="out of range"):
        Position(91, 0, at(1, 8))
    with pytest.raises(ValueError, match="size"):
        Team("T9", "x", TeamType.POLICE, 0, 0, 0)


@settings(max_examples=200)
@given(
    spans=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 30)), max_size=10),
    probe=st.integers(-5, 240),
)
def test_roster_index_agrees_with_plain_scan(spans: list[tuple[int, int]], probe: int) -> None:
    """Overlapping and adjacent shifts are merged; the binary search gives the same
    answer as checking every shift."""
    base = at(1, 0)
    shifts = [Shift("T1", base + timedelta(hours=s), base + timedelta(hours=s + d)) for s, d in spans]
    now = base + timedelta(hours=probe, minutes=30)
    roster = DutyRoster(shifts)
    assert roster.on_shift("T1", now) == any(s.covers(now) for s in shifts)
    until = roster.duty_until("T1", now)
    if until is not None:
        assert until > now
        assert any(s.ends_at == until for s in shifts)


def test_expired_certificates() -> None:
    today = date(2025, 7, 1)
    members = [
        Member(
            "M1",
            "张伟",
            "T1",
            frozenset({"破拆"}),
            (Certificate("危险化学品救援", today - timedelta(days=1)),),
        ),
        Member("M2", "李娜", "T1", frozenset(), (Certificate("急救员", today), Certificate("潜水员", None))),
        Member("M3", "王芳", "T2", frozenset(), (Certificate("特种车辆驾驶", today + timedelta(days=20)),)),
    ]
    expired = expired_certificates(members, today)
    assert [(a.member_id, a.certificate, a.expired) for a in expired] == [("M1", "危险化学品救援", True)]
    soon = expired_certificates(members, today, warn_within_days=30)
    assert [(a.member_id, a.expired) for a in soon] == [("M1", True), ("M2", False), ("M3", False)]
    assert "expired on 2025-06-30" in expired[0].describe()
    skills = team_skills(members, today)
    assert skills["T1"] == {"破拆": 1, "急救员": 1, "潜水员": 1}  # the expired certificate does not count
