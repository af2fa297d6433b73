"""信息报送 in the domain: the shipped rules load, the clocks (from the first receipt,
restarted by a raise, the daily follow-ups in Asia/Shanghai, the final report), the
required elements, the versions and what changed since the last report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from command.domain import reporting as rp
from command.domain.incidents import IllegalTransition, InvalidCommand
from command.domain.vocabulary import IncidentType, ResponseLevel
from tests.command.domain.conftest import CST

RULES = rp.parse_rules(
    {p.name: p.read_text(encoding="utf-8") for p in Path("command/reporting_rules").glob("*.yaml")}
)
HUBEI, NATIONAL = RULES["hubei"], RULES["national"]
T0 = datetime(2026, 12, 7, 9, 50, tzinfo=CST)  # first receipt, 09:50 Beijing time


def facts(
    *steps: tuple[timedelta, ResponseLevel],
    ended: timedelta | None = None,
    kind: IncidentType = IncidentType.FIRE,
) -> rp.IncidentFacts:
    return rp.IncidentFacts(
        incident_type=kind,
        received_at=T0,
        levels=tuple(rp.LevelStep(T0 + d, lv) for d, lv in steps),
        ended_at=None if ended is None else T0 + ended,
    )


def sent(
    n: int, after: timedelta, level: ResponseLevel, kind: rp.ReportKind = rp.ReportKind.FIRST,
    channel: rp.Channel = rp.Channel.WRITTEN,
) -> rp.SentReport:  # fmt: skip
    return rp.SentReport(n, kind, channel, level, T0 + after)


def by_kind(clocks: list[rp.Clock], kind: rp.ClockKind) -> list[rp.Clock]:
    return [c for c in clocks if c.kind is kind]


def test_the_shipped_rules_load_and_hubei_is_stricter_than_the_nation() -> None:
    assert set(RULES) == {"national", "hubei"}
    for level in (ResponseLevel.I, ResponseLevel.II):
        h, n = HUBEI.clocks_for(level), NATIONAL.clocks_for(level)
        assert h is not None and n is not None
        assert (h.phone_minutes, h.written_minutes) == (15, 35)
        assert (n.phone_minutes, n.written_minutes) == (30, 60)
    assert not NATIONAL.covers(IncidentType.FIRE, ResponseLevel.IV)
    assert HUBEI.covers(IncidentType.FIRE, ResponseLevel.IV)
    assert not HUBEI.covers(IncidentType.DISPUTE, ResponseLevel.I)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("jurisdiction: x\n", "title"),
        ("jurisdiction: x\njurisdiction: y\n", "duplicate key"),
        (Path("command/reporting_rules/hubei.yaml").read_text(encoding="utf-8"), "must be the file's name"),
        (
            Path("command/reporting_rules/hubei.yaml")
            .read_text(encoding="utf-8")
            .replace("III: {written_minutes: 60}", "III: {written_minutes: 20}"),
            "cannot have a later written clock",
        ),
        (
            Path("command/reporting_rules/hubei.yaml")
            .read_text(encoding="utf-8")
            .replace('"17:00"', '"25:00"'),
            "follow_ups.daily_at",
        ),
        (
            Path("command/reporting_rules/hubei.yaml")
            .read_text(encoding="utf-8")
            .replace("trend, changes]", "trnd]"),
            "required.follow_up",
        ),
    ],
)
def test_a_bad_rule_file_is_refused_with_its_name_and_the_field(text: str, problem: str) -> None:
    with pytest.raises(rp.RuleError) as caught:
        rp.parse_rules({"x.yaml": text})
    assert any(p.startswith("x.yaml") and problem in p for p in caught.value.problems), caught.value.problems


def test_a_level_ii_incident_has_a_phone_and_a_written_clock_from_the_first_receipt() -> None:
    clocks = rp.clocks(HUBEI, facts((timedelta(0), ResponseLevel.II)), [], T0 + timedelta(minutes=10))
    phone, written = by_kind(clocks, rp.ClockKind.PHONE), by_kind(clocks, rp.ClockKind.WRITTEN)
    assert [c.due_at for c in phone] == [T0 + timedelta(minutes=15)]
    assert [c.due_at for c in written] == [T0 + timedelta(minutes=35)]
    assert phone[0].state(T0 + timedelta(minutes=10)) is rp.ClockState.RUNNING
    assert phone[0].remaining_s(T0 + timedelta(minutes=10)) == 300
    assert phone[0].state(T0 + timedelta(minutes=15)) is rp.ClockState.OVERDUE


def test_a_phone_report_meets_the_phone_clock_only_a_written_one_both() -> None:
    f = facts((timedelta(0), ResponseLevel.II))
    now = T0 + timedelta(minutes=40)
    phoned = rp.clocks(
        HUBEI, f, [sent(1, timedelta(minutes=12), ResponseLevel.II, channel=rp.Channel.PHONE)], now
    )
    assert by_kind(phoned, rp.ClockKind.PHONE)[0].state(now) is rp.ClockState.MET
    assert by_kind(phoned, rp.ClockKind.WRITTEN)[0].state(now) is rp.ClockState.OVERDUE
    written = rp.clocks(HUBEI, f, [sent(1, timedelta(minutes=20), ResponseLevel.II)], now)
    assert by_kind(written, rp.ClockKind.PHONE)[0].state(now) is rp.ClockState.MET_LATE
    assert by_kind(written, rp.ClockKind.WRITTEN)[0].met_by == 1
    assert [c.kind for c in rp.running(written, now)] == [rp.ClockKind.FOLLOW_UP]  # 17:00 today


def test_an_uncovered_incident_has_no_clocks() -> None:
    assert rp.clocks(NATIONAL, facts((timedelta(0), ResponseLevel.IV)), [], T0) == []
    assert rp.clocks(HUBEI, facts((timedelta(0), ResponseLevel.I), kind=IncidentType.DISPUTE), [], T0) == []


def test_a_raised_level_restarts_the_clocks_at_its_tighter_minutes() -> None:
    # 较大 (III) at receipt, met in 30 minutes; raised to 重大 (II) at +2 h: a new phone
    # clock of 15 and a written clock of 35 minutes from the raise
    f = facts((timedelta(0), ResponseLevel.III), (timedelta(hours=2), ResponseLevel.II))
    reports = [sent(1, timedelta(minutes=30), ResponseLevel.III)]
    now = T0 + timedelta(hours=2, minutes=20)
    clocks = rp.clocks(HUBEI, f, reports, now)
    first, *rest = by_kind(clocks, rp.ClockKind.WRITTEN)
    assert (first.level, first.state(now)) == (ResponseLevel.III, rp.ClockState.MET)
    assert [(c.level, c.due_at) for c in rest] == [(ResponseLevel.II, T0 + timedelta(hours=2, minutes=35))]
    phone = by_kind(clocks, rp.ClockKind.PHONE)
    assert [(c.started_at, c.state(now)) for c in phone] == [(T0 + timedelta(hours=2), rp.ClockState.OVERDUE)]
    # the earlier report at level III does not meet the level II clocks; a level II one does
    later = [*reports, sent(2, timedelta(hours=2, minutes=25), ResponseLevel.II, rp.ReportKind.FOLLOW_UP)]
    # (the follow-up also answers today's 17:00 slot: it was sent since the first was due)
    assert rp.running(rp.clocks(HUBEI, f, later, now), now) == []


def test_a_lowered_level_keeps_the_running_clocks() -> None:
    f = facts((timedelta(0), ResponseLevel.II), (timedelta(minutes=5), ResponseLevel.III))
    clocks = rp.clocks(HUBEI, f, [], T0 + timedelta(minutes=6))
    assert [(c.kind, c.level) for c in clocks][:2] == [
        (rp.ClockKind.PHONE, ResponseLevel.II),
        (rp.ClockKind.WRITTEN, ResponseLevel.II),
    ]


def test_daily_follow_ups_fall_at_08_00_and_17_00_beijing_time_while_open() -> None:
    f = facts((timedelta(0), ResponseLevel.III))
    now = datetime(2026, 12, 8, 12, 0, tzinfo=CST)  # next day, noon
    reports = [sent(1, timedelta(minutes=40), ResponseLevel.III)]
    slots = by_kind(rp.clocks(HUBEI, f, reports, now), rp.ClockKind.FOLLOW_UP)
    assert [c.due_at.astimezone(CST).strftime("%d %H:%M") for c in slots] == [
        "07 17:00",
        "08 08:00",
        "08 17:00",
    ]
    assert [c.due_at.tzinfo for c in slots] == [UTC] * 3  # 09:00 UTC = 17:00 Asia/Shanghai
    assert slots[0].due_at.hour == 9
    assert [c.state(now) for c in slots] == [
        rp.ClockState.OVERDUE,
        rp.ClockState.OVERDUE,
        rp.ClockState.RUNNING,
    ]
    # a follow-up at 16:30 meets 17:00; one at 08:20 the next morning meets 08:00 late
    more = [
        *reports,
        sent(2, datetime(2026, 12, 7, 16, 30, tzinfo=CST) - T0, ResponseLevel.III, rp.ReportKind.FOLLOW_UP),
        sent(3, datetime(2026, 12, 8, 8, 20, tzinfo=CST) - T0, ResponseLevel.III, rp.ReportKind.FOLLOW_UP),
    ]
    slots = by_kind(rp.clocks(HUBEI, f, more, now), rp.ClockKind.FOLLOW_UP)
    assert [c.state(now) for c in slots] == [rp.ClockState.MET, rp.ClockState.MET_LATE, rp.ClockState.MET]
    # the national rule has no daily times; a level IV incident in Hubei no follow-ups
    assert by_kind(rp.clocks(NATIONAL, f, reports, now), rp.ClockKind.FOLLOW_UP) == []
    assert (
        by_kind(rp.clocks(HUBEI, facts((timedelta(0), ResponseLevel.IV)), [], now), rp.ClockKind.FOLLOW_UP)
        == []
    )


def test_follow_ups_stop_at_the_end_and_the_final_report_is_due_after_it() -> None:
    f = facts((timedelta(0), ResponseLevel.II), ended=timedelta(hours=30))
    now = T0 + timedelta(days=3)
    clocks = rp.clocks(HUBEI, f, [], now)
    assert all(c.due_at <= T0 + timedelta(hours=30) for c in by_kind(clocks, rp.ClockKind.FOLLOW_UP))
    (final,) = by_kind(clocks, rp.ClockKind.FINAL)
    assert final.due_at == T0 + timedelta(hours=54)
    done = [
        sent(1, timedelta(minutes=10), ResponseLevel.II),
        sent(2, timedelta(hours=40), ResponseLevel.II, rp.ReportKind.FINAL),
    ]
    (final,) = by_kind(rp.clocks(HUBEI, f, done, now), rp.ClockKind.FINAL)
    assert (final.met_by, final.state(now)) == (2, rp.ClockState.MET)


def content(**changes: object) -> rp.Content:
    base: dict[str, object] = {
        "title": "樊城区人民路商场火灾",
        "occurred_at": T0 - timedelta(minutes=5),
        "place": "襄阳市樊城区人民路18号",
        "area_code": "420606",
        "lat": 32.05,
        "lon": 112.14,
        "incident_type": IncidentType.FIRE,
        "level": ResponseLevel.II,
        "figures": rp.Figures(deaths=0, missing=0, injured=3, trapped=12),
        "measures": "启动Ⅱ级响应，疏散周边群众",
        "teams": ("消防救援队 T-FIRE-01",),
    }
    base.update(changes)
    return rp.Content(**base)  # type: ignore[arg-type]


def test_required_elements_are_checked_before_approval() -> None:
    report = rp.draft(
        incident_id="INC-1", kind=rp.ReportKind.FIRST, channel=rp.Channel.WRITTEN,
        content=content(measures="", figures=rp.Figures(injured=3)), earlier=[], by="operator1", at=T0,
    )  # fmt: skip
    with pytest.raises(rp.MissingElements) as caught:
        rp.approve(report, HUBEI, earlier_sent=False, by="commander1", at=T0)
    assert set(caught.value.lacking) == {rp.Element.CASUALTIES, rp.Element.MEASURES}
    edited = rp.edit(report, content(), by="operator1", at=T0 + timedelta(minutes=3), note="补充伤亡")
    approved = rp.approve(edited, HUBEI, earlier_sent=False, by="commander1", at=T0 + timedelta(minutes=5))
    assert (approved.state, approved.approved_version, [v.n for v in approved.versions]) == (
        rp.ReportState.APPROVED,
        2,
        [1, 2],
    )
    assert approved.versions[0].content.measures == ""  # version 1 kept as it was
    with pytest.raises(IllegalTransition):
        rp.edit(approved, content(), by="operator1", at=T0)
    # a phone report needs only the quick first word
    phone = rp.draft(
        incident_id="INC-1", kind=rp.ReportKind.FIRST, channel=rp.Channel.PHONE,
        content=content(measures="", figures=rp.Figures()), earlier=[], by="operator1", at=T0,
    )  # fmt: skip
    assert (
        rp.approve(phone, HUBEI, earlier_sent=False, by="commander1", at=T0).state is rp.ReportState.APPROVED
    )


def test_a_report_goes_draft_approved_sent_acknowledged_and_kinds_come_in_order() -> None:
    first = rp.draft(
        incident_id="INC-1", kind=rp.ReportKind.FIRST, channel=rp.Channel.WRITTEN,
        content=content(), earlier=[], by="operator1", at=T0,
    )  # fmt: skip
    assert first.report_id == "INC-1-R01"
    with pytest.raises(IllegalTransition):
        rp.mark_sent(first, at=T0)
    sent_ = rp.mark_sent(rp.approve(first, HUBEI, earlier_sent=False, by="c", at=T0), at=T0)
    with pytest.raises(IllegalTransition):
        rp.mark_sent(sent_, at=T0)  # never twice
    acked = rp.acknowledge(sent_, by="省厅值班员", at=T0)
    assert rp.acknowledge(acked, by="again", at=T0) == acked
    with pytest.raises(IllegalTransition):
        rp.draft(
            incident_id="INC-1",
            kind=rp.ReportKind.FIRST,
            channel=rp.Channel.WRITTEN,
            content=content(),
            earlier=[acked],
            by="o",
            at=T0,
        )
    with pytest.raises(IllegalTransition):
        rp.draft(
            incident_id="INC-2",
            kind=rp.ReportKind.FOLLOW_UP,
            channel=rp.Channel.WRITTEN,
            content=content(),
            earlier=[],
            by="o",
            at=T0,
        )
    follow = rp.draft(
        incident_id="INC-1",
        kind=rp.ReportKind.FOLLOW_UP,
        channel=rp.Channel.WRITTEN,
        content=content(),
        earlier=[acked],
        by="o",
        at=T0,
    )
    assert follow.number == 2
    # a follow-up must state its changes: with nothing sent before, it cannot
    with pytest.raises(rp.MissingElements):
        rp.approve(follow, HUBEI, earlier_sent=False, by="c", at=T0)


def test_a_later_report_states_what_changed_since_the_last_one_sent() -> None:
    before = content()
    after = content(
        figures=rp.Figures(deaths=1, missing=0, injured=5, trapped=0),
        level=ResponseLevel.I,
        trend="火势已控制",
    )
    changes = {c.element: (c.before, c.after) for c in rp.changes_since(before, after)}
    assert changes == {
        "figures.deaths": (0, 1),
        "figures.injured": (3, 5),
        "figures.trapped": (12, 0),
        "level": ("II", "I"),
        "trend": ("", "火势已控制"),
    }
    assert rp.changes_since(None, after) == []


def test_figures_keep_their_history() -> None:
    history = [
        rp.FigureEntry(T0 + timedelta(hours=1), "operator1", rp.Figures(deaths=0, injured=5)),
        rp.FigureEntry(T0, "operator1", rp.Figures(deaths=0, injured=3)),
        rp.FigureEntry(
            T0 + timedelta(hours=2), "operator1", rp.Figures(deaths=1, injured=5, direct_loss_10k_yuan=120.5)
        ),
    ]
    assert rp.latest_figures(history).direct_loss_10k_yuan == 120.5
    assert [(c.name, c.before, c.after) for c in rp.figure_history_changes(history)] == [
        ("injured", 3, 5),
        ("deaths", 0, 1),
        ("direct_loss_10k_yuan", None, 120.5),
    ]
    with pytest.raises(InvalidCommand):
        rp.Figures(deaths=-1)


def test_every_incident_type_has_a_gbt_35561_code() -> None:
    assert set(rp.EVENT_CODES) == set(IncidentType)
    assert all(len(code) == 5 and code[0] in "1234" and code[2].isalpha() for code in rp.EVENT_CODES.values())
