"""Alarm triage (issue 9): the shipped rules, storms folding into one inbox row,
flapping, promotion by kind, corroboration and risk context, exercise isolation,
operator actions one by one and in bulk, expiry into the review list, and rules-file
errors that point at the line. Plain inputs only; no services."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from command.domain.correlation import IncidentView
from command.domain.incidents import Actor, Forbidden, IllegalTransition, IncidentState, InvalidCommand
from command.domain.reasons import LANGUAGES, placeholders
from command.domain.triage import (
    ALARM_KINDS,
    DEFAULT_RULES_FILE,
    AlreadyFolded,
    DismissReason,
    Folded,
    InboxRow,
    InboxState,
    PlannedEvent,
    Promotion,
    Severity,
    ToInbox,
    ToIncident,
    TriageContext,
    TriageRules,
    TriageRulesError,
    VenueRef,
    alarm_confidence,
    bulk_dismiss,
    bulk_link,
    bulk_promote,
    decide,
    dismiss,
    expire,
    expiry_reason,
    flapping_reason,
    fold,
    inbox_order,
    inbox_reason,
    link,
    mute_reason,
    parse_rules,
    promote,
    reason_for,
    review_list,
    row_id_for,
    source_identity,
    triage,
)
from command.domain.vocabulary import IncidentType, Role
from ingest.alarms import VIDEO_EVENT_ZH
from tests.command.domain.conftest import CST, HOME, grid_alarm
from wuwang import i18n
from wuwang.contract import Alarm, AlarmKind, CallCategory
from wuwang.geo import offset_by_metres
from wuwang.thresholds import DEFAULT_THRESHOLDS

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=CST)
RULES_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
RULES = parse_rules(RULES_TEXT, DEFAULT_RULES_FILE.name)

OP = Actor("operator1", Role.OPERATOR)
CMD = Actor("commander1", Role.COMMANDER)
PLANNER = Actor("planner1", Role.PLANNER)
FIELD = Actor("T-FIRE-01", Role.FIELD, team_id="T-FIRE-01")
SYSTEM = Actor("system:triage", Role.SYSTEM)

_counter = iter(range(1, 10**9))


def alarm(
    kind: AlarmKind = "video",
    category: str = "fire_smoke",
    *,
    source: str | None = None,
    north_m: float = 0.0,
    east_m: float = 0.0,
    seconds: float = 0.0,
    confidence: float | None = 0.85,
    exercise_id: str | None = None,
    caller: str | None = None,
    n: int | None = None,
    reading: tuple[float, float] | None = None,
) -> Alarm:
    n = n if n is not None else next(_counter)
    lat, lon = offset_by_metres(*HOME, north_m, east_m)
    src = source or {"call": "police/sys110", "video": "video/CAM-0001", "sensor": "venue/SMK-0001"}.get(
        kind, "community/GW-01"
    )
    if exercise_id:
        src = f"ex/{exercise_id}/{src}"
    details: dict[str, Any] = {}
    if kind == "video" and confidence is not None:
        details["confidence"] = confidence
    if kind == "call":
        details["caller_masked"] = caller or f"138****{n % 10000:04d}"
    if kind == "report":
        details["reporter"] = "GW-01"
    if reading is not None:  # (value, raise level), as the ingest records a sensor alarm
        details["value"], details["raise_at"] = reading
    if exercise_id:
        details["exercise_id"] = exercise_id
    return grid_alarm(
        n,
        kind,
        category,
        source=src,
        ts=T0 + timedelta(seconds=seconds),
        lat=lat,
        lon=lon,
        summary=f"{kind} {category} #{n}",
        details=details,
    )


def ctx(
    *,
    seconds: float = 0.0,
    recent: Sequence[Alarm] = (),
    rows: Sequence[InboxRow] = (),
    venues: Sequence[VenueRef] = (),
    events: Sequence[PlannedEvent] = (),
) -> TriageContext:
    return TriageContext(T0 + timedelta(seconds=seconds), recent, rows, venues, events)


def fold_all(alarms: Sequence[Alarm], rules: TriageRules = RULES) -> tuple[InboxRow, ...]:
    rows: tuple[InboxRow, ...] = ()
    for a in alarms:
        rows, _ = fold(rows, a, max(a.ts, T0), rules)
    return rows


def incident(
    incident_id: str = "INC-1", state: IncidentState = IncidentState.NEW, exercise_id: str | None = None
) -> IncidentView:
    return IncidentView(
        incident_id=incident_id,
        incident_type=IncidentType.FIRE,
        state=state,
        exercise_id=exercise_id,
        lat=HOME[0],
        lon=HOME[1],
        first_source_at=T0,
        last_source_at=T0,
        source_keys=frozenset(),
        alarm_ids=frozenset(),
    )


def rendered_ok(text: str) -> bool:
    return "{" not in text and "}" not in text and not text.startswith("triage.")


# --- the shipped rules -----------------------------------------------------------------------


def test_shipped_rules_load_versioned_with_texts_in_both_languages() -> None:
    assert RULES.version >= 1
    assert set(RULES.by_kind) == set(ALARM_KINDS)
    assert RULES.by_kind["call"].action == "promote"  # 110 calls open an incident, as today
    assert RULES.by_kind["video"].action == "inbox"
    assert RULES.by_kind["sensor"].action == "inbox"
    for rule_id, (zh, en) in RULES.texts.items():
        assert zh.strip() and en.strip(), rule_id
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{rule_id}: the zh text has no Chinese"


# Every category the ingest can raise: call categories (the contract's enum), the video
# events and sensor kinds it names, and field reports (free text: the kind's rule).
INGEST_CATEGORIES: list[tuple[AlarmKind, str]] = [
    *(("call", c.value) for c in CallCategory),
    *(("video", e) for e in VIDEO_EVENT_ZH),
    *(("sensor", k) for k in DEFAULT_THRESHOLDS),
    *(("report", c) for c in ("fire", "smoke", "hazmat_leak", "rescue", "medical", "evacuation", "other")),
    ("video", "some_new_event"),
    ("sensor", "radiation"),
]


@pytest.mark.parametrize(("kind", "category"), INGEST_CATEGORIES)
def test_every_category_the_ingest_emits_is_covered_by_a_rule(kind: AlarmKind, category: str) -> None:
    route = RULES.route(kind, category)
    assert route, f"{kind}/{category} is decided by no rule"
    assert route[0] == RULES.by_kind[kind].id  # the kind's rule: promote, or explicitly the inbox
    sev = RULES.severity(kind, category)
    assert isinstance(sev, Severity)


def test_rules_name_only_categories_the_ingest_can_emit() -> None:
    known = {
        "video": set(VIDEO_EVENT_ZH),
        "sensor": set(DEFAULT_THRESHOLDS),
        "call": {c.value for c in CallCategory},
    }
    for group in (RULES.always_promote, RULES.corroboration, RULES.risk):
        for rule in group:
            for kind, categories in rule.applies_to.items():
                for c in categories:
                    assert c == "*" or c in known.get(kind, {c}), f"{rule.id}: {kind}/{c} is never raised"
    for kind, table in RULES.severity_table.by_kind.items():
        for c in table:
            assert c == "*" or c in known.get(kind, {c}), f"severity: {kind}/{c} is never raised"


def test_every_reason_text_renders_in_both_languages() -> None:
    a = alarm("video", "fire_smoke", confidence=0.95)
    samples: dict[str, str | int | float] = {
        "kind": "video", "category": "fire_smoke", "source": a.source, "confidence": 0.95,
        "min_confidence": 0.9, "value": 20.0, "raise_at": 10.0, "reading_ratio": 2.0,
        "min_reading_ratio": 1.5, "sources": 2, "kinds": "call+video", "radius_m": 300,
        "window_s": 600.0, "distance_m": 120, "venue_id": "V-1", "venue_name": "某化工厂",
        "venue_kind": "chemical_plant", "event_id": "EV-1", "event_name": "音乐节",
        "count": 7, "raises": 6, "min_raises": 5, "ago_s": 300.0, "severity": "low",
        "after_s": 1800.0, "quiet_s": 1900.0,
    }  # fmt: skip
    for rule_id, (zh, en) in RULES.texts.items():
        names = placeholders(zh) | placeholders(en)
        reason = reason_for(rule_id, **{k: samples[k] for k in names})
        for lang in LANGUAGES:
            text = RULES.render(reason, lang)
            assert rendered_ok(text), (rule_id, lang, text)
    assert "10 分 00 秒" in RULES.render(
        reason_for("fold_storm", source="s", category="c", window_s=600, count=3)
    )
    # an unknown code is shown, never a crash
    assert RULES.render(reason_for("nope", x=1)) == "triage.nope x=1"


# --- storms fold ------------------------------------------------------------------------------


def test_a_storm_of_100_alarms_from_one_camera_is_one_row_of_count_100() -> None:
    storm = [alarm("video", "loitering", seconds=6 * i, confidence=0.82) for i in range(100)]
    rows = fold_all(storm)
    assert len(rows) == 1
    row = rows[0]
    assert row.count == 100
    assert row.first_seen == T0
    assert row.last_seen == T0 + timedelta(seconds=594)
    assert row.alarm_ids == tuple(a.alarm_id for a in storm[-RULES.fold.keep_alarm_ids :])
    assert row.first_alarm_id == storm[0].alarm_id
    assert row.alarm_ids_truncated
    assert row.row_id == row_id_for(storm[0].alarm_id)
    assert row.summary == storm[-1].summary
    assert row.state == InboxState.OPEN
    assert row.max_severity == Severity.LOW
    assert row.max_confidence == pytest.approx(0.82)
    # 100 alarms in 10 minutes: flapping, visible as such with its reason
    assert row.flapping
    reason = flapping_reason(row, RULES)
    assert reason is not None and reason.code == "triage.flapping"
    assert "频繁告警" in RULES.render(reason)


def test_a_camera_alerting_now_and_then_is_not_flapping() -> None:
    rows = fold_all([alarm("video", "loitering", seconds=300 * i) for i in range(4)])
    assert len(rows) == 1 and rows[0].count == 4
    assert not rows[0].flapping
    assert flapping_reason(rows[0], RULES) is None


def test_fold_keeps_sources_categories_windows_and_scopes_apart() -> None:
    a1 = alarm("video", "loitering", source="video/CAM-0001")
    a2 = alarm("video", "loitering", source="video/CAM-0002", seconds=10)  # another camera
    a3 = alarm("video", "intrusion", source="video/CAM-0001", seconds=20)  # another category
    a4 = alarm("video", "loitering", source="video/CAM-0001", seconds=30 + 601)  # after the window
    a5 = alarm("video", "loitering", source="video/CAM-0001", exercise_id="EX-1", seconds=40)
    rows = fold_all([a1, a2, a3, a4, a5])
    assert len(rows) == 5
    assert [r.count for r in rows] == [1, 1, 1, 1, 1]
    assert rows[4].exercise_id == "EX-1"


def test_fold_window_slides_but_a_row_never_spans_more_than_max_span() -> None:
    every_5_min = [alarm("sensor", "water_level", seconds=300 * i) for i in range(60)]  # 5 hours
    rows = fold_all(every_5_min)
    assert len(rows) == 2  # 4 h of max span, then a new row
    assert rows[0].count == 49 and rows[1].count == 11
    assert (rows[0].last_seen - rows[0].first_seen).total_seconds() <= RULES.fold.max_span_s


def test_the_same_alarm_delivered_twice_folds_once() -> None:
    a = alarm("video", "loitering")
    rows, first = fold((), a, T0, RULES)
    rows2, again = fold(rows, a, T0, RULES)
    assert isinstance(first, Folded) and first.opened and first.count == 1
    assert isinstance(again, AlreadyFolded) and again.row_id == first.row_id
    assert rows2 == rows


def test_fold_takes_late_alarms_and_keeps_the_latest_position_and_severity() -> None:
    late = alarm("video", "fight", seconds=-120, north_m=50, confidence=0.9)
    now_ = alarm("video", "fight", seconds=0, confidence=0.81)
    rows = fold_all([now_, late])
    assert len(rows) == 1
    row = rows[0]
    assert row.first_seen == late.ts and row.last_seen == now_.ts
    assert (row.lat, row.lon) == (now_.lat, now_.lon)  # the latest alarm's place
    assert row.max_confidence == pytest.approx(0.9)
    assert row.max_severity == Severity.MEDIUM


def test_a_device_clock_running_fast_is_taken_as_now() -> None:
    ahead = alarm("video", "loitering", seconds=3600)
    rows, _ = fold((), ahead, T0, RULES)
    assert rows[0].last_seen == T0


def test_fold_never_touches_rows_no_longer_open() -> None:
    a = alarm("video", "loitering")
    rows = fold_all([a])
    gone = dismiss(rows[0], reason="duplicate", actor=OP, at=T0 + timedelta(seconds=5)).after
    rows2, decision = fold(
        (gone,), alarm("video", "loitering", seconds=10), T0 + timedelta(seconds=10), RULES
    )
    assert isinstance(decision, Folded) and decision.opened
    assert rows2[0] == gone and rows2[1].count == 1


def test_fold_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fold((), alarm(), datetime(2026, 1, 1), RULES)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["CAM-1", "CAM-2", "SMK-1"]),
            st.sampled_from(["loitering", "crowd"]),
            st.integers(0, 7200),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_folding_counts_every_alarm_exactly_once(spec: list[tuple[str, str, int, bool]]) -> None:
    alarms = []
    for i, (src, category, second, exercise) in enumerate(spec):
        alarms.append(
            alarm(
                "video",
                category,
                source=f"video/{src}",
                seconds=second,
                n=i,
                exercise_id="EX-9" if exercise else None,
            )
        )
    rows = fold_all(alarms)
    assert sum(r.count for r in rows) == len(alarms)
    assert len({r.row_id for r in rows}) == len(rows)
    for r in rows:
        assert r.first_seen <= r.last_seen
        assert (r.last_seen - r.first_seen).total_seconds() <= RULES.fold.max_span_s
        assert len(r.alarm_ids) == min(r.count, RULES.fold.keep_alarm_ids)
    # alarms of one key only ever share rows with their own key
    for a in alarms:
        holders = [r for r in rows if a.alarm_id in r.alarm_ids or a.alarm_id == r.first_alarm_id]
        assert len(holders) == 1
        assert holders[0].key.source == a.source and holders[0].key.category == a.category


# --- promotion: by kind and always-promote -----------------------------------------------------


def test_110_calls_and_field_reports_always_open_an_incident() -> None:
    call = decide(alarm("call", "dispute"), ctx(), RULES)
    assert call is not None and call.rule_id == "call_110"
    assert call.reason.code == "triage.call_110" and call.rules_version == RULES.version
    report = decide(alarm("report", "hazmat_leak"), ctx(), RULES)
    assert report is not None and report.rule_id == "field_report"
    assert "hazmat_leak" in RULES.render(report.reason)


def test_a_confident_fire_camera_or_a_person_down_promotes_a_doubtful_one_does_not() -> None:
    sure = decide(alarm("video", "fire_smoke", confidence=0.95), ctx(), RULES)
    assert sure is not None and sure.rule_id == "video_fire_smoke"
    assert sure.reason.params["confidence"] == pytest.approx(0.95)
    assert "0.95 ≥ 0.90" in RULES.render(sure.reason)
    assert "0.95 ≥ 0.90" in RULES.render(sure.reason, "en")
    assert decide(alarm("video", "fire_smoke", confidence=0.85), ctx(), RULES) is None
    down = decide(alarm("video", "fall", confidence=0.93), ctx(), RULES)
    assert down is not None and down.rule_id == "video_person_down"
    assert decide(alarm("video", "loitering", confidence=0.99), ctx(), RULES) is None


@pytest.mark.parametrize(("kind", "raise_at"), [("smoke", 10.0), ("gas", 20.0), ("co", 50.0)])
def test_smoke_gas_and_co_sensors_far_over_their_level_always_promote(kind: str, raise_at: float) -> None:
    p = decide(alarm("sensor", kind, confidence=None, reading=(raise_at * 2, raise_at)), ctx(), RULES)
    assert p is not None and p.rule_id == "sensor_fire_gas"
    assert p.reason.params["reading_ratio"] == 2.0 and p.reason.params["min_reading_ratio"] == 1.5
    assert "2.0 倍（≥ 1.5 倍）" in RULES.render(p.reason)
    assert "2.0× its alarm level" in RULES.render(p.reason, "en")


def test_a_lone_marginal_detector_crossing_waits_in_the_inbox_until_corroborated() -> None:
    blip = alarm("sensor", "smoke", confidence=None, reading=(12.0, 10.0))  # 1.2× its level
    assert decide(blip, ctx(), RULES) is None
    assert decide(alarm("sensor", "smoke", confidence=None), ctx(), RULES) is None  # no reading: not strong
    call = alarm("call", "fire", north_m=80, seconds=-30)
    p = decide(blip, ctx(recent=[call]), RULES)
    assert p is not None and p.rule_id == "corroborated"
    assert RULES.severity("sensor", "smoke") == Severity.HIGH  # and it never expires unseen


def test_temperature_and_water_level_sensors_alone_go_to_the_inbox() -> None:
    assert decide(alarm("sensor", "temperature", confidence=None), ctx(), RULES) is None
    assert decide(alarm("sensor", "water_level", confidence=None), ctx(), RULES) is None


# --- corroboration ---------------------------------------------------------------------------------


def test_one_source_alone_does_not_promote() -> None:
    cam = alarm("video", "fire_smoke", confidence=0.85)
    assert decide(cam, ctx(), RULES) is None
    # nor does the same camera again and again: one witness
    again = [alarm("video", "fire_smoke", confidence=0.85, seconds=-30 * i) for i in range(1, 5)]
    assert decide(cam, ctx(recent=again, rows=fold_all(again)), RULES) is None


def test_a_call_and_a_camera_within_radius_and_window_promote_by_corroboration() -> None:
    call = alarm("call", "fire", north_m=120, seconds=-120)
    cam = alarm("video", "fire_smoke", confidence=0.85)
    same_camera_before = alarm("video", "fire_smoke", confidence=0.84, seconds=-30)
    p = decide(cam, ctx(recent=[call, same_camera_before]), RULES)
    assert isinstance(p, Promotion)
    assert p.rule_id == "corroborated"
    assert p.supporting_alarm_ids == (call.alarm_id,)  # the camera's own earlier alarm is no witness
    assert p.reason.params["sources"] == 2
    assert p.reason.params["kinds"] == "call+video"
    assert p.reason.params["distance_m"] == 120
    text = RULES.render(p.reason)
    assert "2 个独立来源（110报警、视频）" in text and "300 米" in text and "10 分 00 秒" in text


def test_two_cameras_are_independent_sources_one_camera_twice_is_not() -> None:
    other_cam = alarm("video", "fire_smoke", source="video/CAM-0002", east_m=80, seconds=-60, confidence=0.82)
    rows = fold_all([other_cam])
    p = decide(alarm("video", "fire_smoke", confidence=0.84), ctx(rows=rows), RULES)
    assert p is not None and p.rule_id == "corroborated"
    assert p.supporting_row_ids == (rows[0].row_id,)


def test_corroboration_needs_the_radius_the_window_and_compatible_categories() -> None:
    cam = alarm("video", "fire_smoke", confidence=0.85)
    far = alarm("call", "fire", north_m=400)
    old = alarm("call", "fire", seconds=-601)
    unrelated = alarm("call", "dispute", north_m=20)
    for witness in (far, old, unrelated):
        assert decide(cam, ctx(recent=[witness]), RULES) is None, witness.category
    # a temperature sensor and a smoke camera are about the same thing (fire)
    temp = alarm("sensor", "temperature", east_m=50, seconds=-200, confidence=None)
    p = decide(cam, ctx(recent=[temp]), RULES)
    assert p is not None and p.rule_id == "corroborated"


def test_the_same_caller_twice_is_one_witness() -> None:
    cam = alarm("video", "fight", confidence=0.85)
    c1 = alarm("call", "public_order", caller="138****0001", seconds=-100)
    c2 = alarm("call", "public_order", caller="138****0001", seconds=-50)
    assert source_identity(c1.kind, c1.source, c1.details) == source_identity(c2.kind, c2.source, c2.details)
    # the camera and one caller: two independent sources
    p = decide(cam, ctx(recent=[c1, c2]), RULES)
    assert p is not None and p.reason.params["sources"] == 2


def test_distinct_kinds_and_min_sources_are_honoured() -> None:
    strict = parse_rules(
        RULES_TEXT.replace(
            "min_sources: 2\n    distinct_kinds: false", "min_sources: 3\n    distinct_kinds: true"
        )
    )
    cam = alarm("video", "fire_smoke", confidence=0.85)
    cam2 = alarm("video", "fire_smoke", source="video/CAM-0002", seconds=-10, confidence=0.85)
    cam3 = alarm("video", "fire_smoke", source="video/CAM-0003", seconds=-20, confidence=0.85)
    assert decide(cam, ctx(recent=[cam2, cam3]), strict) is None  # three witnesses, one kind
    call = alarm("call", "fire", seconds=-30)
    smoke_temp = alarm("sensor", "temperature", seconds=-40, confidence=None)
    p = decide(cam, ctx(recent=[cam2, call, smoke_temp]), strict)
    assert (
        p is not None and p.reason.params["sources"] == 4 and p.reason.params["kinds"] == "call+sensor+video"
    )


def test_rows_dismissed_as_false_alarm_are_no_witness() -> None:
    other = fold_all([alarm("video", "fire_smoke", source="video/CAM-0002", seconds=-60, confidence=0.82)])
    discredited = dismiss(other[0], reason="false_alarm", actor=OP, at=T0 - timedelta(seconds=30)).after
    assert decide(alarm("video", "fire_smoke", confidence=0.84), ctx(rows=[discredited]), RULES) is None


# --- risk context ----------------------------------------------------------------------------------


def test_an_intrusion_near_a_chemical_plant_promotes_by_risk_context() -> None:
    plant = VenueRef("V-0042", "chemical_plant", *offset_by_metres(*HOME, 150, 0), name="襄阳某化工有限公司")
    school = VenueRef("V-0001", "school", *offset_by_metres(*HOME, 900, 0), name="某小学")
    assert decide(alarm("video", "intrusion", confidence=0.81), ctx(venues=[school, plant]), RULES) is None
    p = decide(alarm("video", "intrusion", confidence=0.86), ctx(venues=[school, plant]), RULES)
    assert p is not None and p.rule_id == "risk_hazard_site"
    assert p.reason.params["venue_id"] == "V-0042" and p.reason.params["distance_m"] == 150
    assert "襄阳某化工有限公司" in RULES.render(p.reason)
    assert "hazardous site" in RULES.render(p.reason, "en")


def test_a_venue_too_far_or_of_another_kind_does_not_promote() -> None:
    far_plant = VenueRef("V-0042", "chemical_plant", *offset_by_metres(*HOME, 400, 0))
    near_hotel = VenueRef("V-0007", "hotel", *offset_by_metres(*HOME, 20, 0))
    assert (
        decide(alarm("video", "intrusion", confidence=0.86), ctx(venues=[far_plant, near_hotel]), RULES)
        is None
    )


def test_loitering_and_marginal_heat_beside_a_hazardous_site_stay_in_the_inbox() -> None:
    station = VenueRef("V-0050", "gas_station", *offset_by_metres(*HOME, 100, 0), name="中石化加油站")
    assert decide(alarm("video", "loitering", confidence=0.89), ctx(venues=[station]), RULES) is None
    blip = alarm("sensor", "temperature", confidence=None, reading=(66.0, 60.0))  # 1.1× its level
    assert decide(blip, ctx(venues=[station]), RULES) is None
    heat = alarm("sensor", "temperature", confidence=None, reading=(120.0, 60.0))  # 2×
    p = decide(heat, ctx(venues=[station]), RULES)
    assert p is not None and p.rule_id == "risk_hazard_site_heat"
    assert "中石化加油站" in RULES.render(p.reason) and "well over" in RULES.render(p.reason, "en")
    school = VenueRef("V-0001", "school", *offset_by_metres(*HOME, 50, 0), name="某小学")
    assert decide(alarm("video", "fight", confidence=0.82), ctx(venues=[school]), RULES) is None
    p = decide(alarm("video", "fight", confidence=0.87), ctx(venues=[school]), RULES)
    assert p is not None and p.rule_id == "risk_vulnerable_site"


def test_a_crowd_at_a_planned_event_promotes_while_it_runs() -> None:
    fest = PlannedEvent(
        "EV-1", "汉江音乐节", *offset_by_metres(*HOME, 300, 0), radius_m=500,
        starts_at=T0 + timedelta(minutes=30), ends_at=T0 + timedelta(hours=4),
    )  # fmt: skip
    crowd = alarm("video", "crowd", confidence=0.81)
    p = decide(crowd, ctx(events=[fest]), RULES)  # 30 min before the start: within the hour before
    assert p is not None and p.rule_id == "risk_planned_event"
    assert "汉江音乐节" in RULES.render(p.reason)
    outside = alarm("video", "crowd", north_m=300 + 500 + 200 + 50, confidence=0.81)  # radius + margin + 50 m
    assert decide(outside, ctx(events=[fest]), RULES) is None
    at_the_edge = alarm("video", "crowd", north_m=300 + 500 + 150, confidence=0.81)
    assert decide(at_the_edge, ctx(events=[fest]), RULES) is not None
    long_before = alarm("video", "crowd", seconds=-2 * 3600, confidence=0.81)
    assert decide(long_before, ctx(seconds=-2 * 3600, events=[fest]), RULES) is None
    # an event of an exercise never promotes a live alarm
    drill_fest = replace(fest, exercise_id="EX-1")
    assert decide(crowd, ctx(events=[drill_fest]), RULES) is None
    assert decide(
        alarm("video", "crowd", confidence=0.81, exercise_id="EX-1"), ctx(events=[drill_fest]), RULES
    )


def test_risk_rules_honour_their_min_confidence() -> None:
    stadium = VenueRef("V-0100", "stadium", *offset_by_metres(*HOME, 100, 0), name="襄阳市体育中心")
    assert decide(alarm("video", "crowd", confidence=0.82), ctx(venues=[stadium]), RULES) is None
    p = decide(alarm("video", "crowd", confidence=0.88), ctx(venues=[stadium]), RULES)
    assert p is not None and p.rule_id == "risk_crowded_place"


# --- exercise isolation and the mute after a false alarm ------------------------------------------


def test_exercise_alarms_only_fold_and_corroborate_within_their_exercise() -> None:
    live_call = alarm("call", "fire", seconds=-60)
    drill_cam = alarm("video", "fire_smoke", confidence=0.85, exercise_id="EX-1")
    assert decide(drill_cam, ctx(recent=[live_call]), RULES) is None
    other_drill_call = alarm("call", "fire", seconds=-60, exercise_id="EX-2")
    assert decide(drill_cam, ctx(recent=[other_drill_call]), RULES) is None
    same_drill_call = alarm("call", "fire", seconds=-60, exercise_id="EX-1")
    p = decide(drill_cam, ctx(recent=[same_drill_call]), RULES)
    assert p is not None and p.rule_id == "corroborated"
    # and a live camera is not corroborated by the drill's call
    assert decide(alarm("video", "fire_smoke", confidence=0.85), ctx(recent=[same_drill_call]), RULES) is None
    # rows: same source key, different scopes never fold together
    live = alarm("video", "loitering", source="video/CAM-7")
    drill = alarm("video", "loitering", source="video/CAM-7", seconds=5).replace(
        details={"exercise_id": "EX-1", "confidence": 0.9}, alarm_id="x#1"
    )
    rows = fold_all([live, drill])
    assert len(rows) == 2 and {r.exercise_id for r in rows} == {None, "EX-1"}


_OTHER_SCOPE = st.sampled_from(["EX-1", "EX-2", None])
_FIRE_LIKE: list[tuple[AlarmKind, str]] = [
    ("call", "fire"),
    ("video", "fire_smoke"),
    ("sensor", "temperature"),
    ("video", "fall"),
]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from([None, "EX-1"]),
    st.lists(
        st.tuples(
            _OTHER_SCOPE,
            st.sampled_from(_FIRE_LIKE),
            st.integers(-300, 300),
            st.integers(-900, 0),
        ),
        max_size=12,
    ),
)
def test_decisions_never_depend_on_alarms_or_rows_of_another_scope(
    scope: str | None, others: list[tuple[str | None, tuple[AlarmKind, str], int, int]]
) -> None:
    me = alarm("video", "fire_smoke", confidence=0.85, exercise_id=scope)
    foreign = [
        alarm(
            kind,
            cat,
            north_m=north,
            seconds=sec,
            exercise_id=s,
            source=f"video/CAM-{i}" if kind == "video" else None,
        )
        for i, (s, (kind, cat), north, sec) in enumerate(others)
        if s != scope
    ]
    foreign_rows = fold_all([a for a in foreign if a.kind != "call"])
    alone = decide(me, ctx(), RULES)
    assert alone is None
    assert decide(me, ctx(recent=foreign, rows=foreign_rows), RULES) is None
    rows, outcome = triage(foreign_rows, me, ctx(recent=foreign, rows=foreign_rows), RULES)
    assert isinstance(outcome, ToInbox) and isinstance(outcome.fold, Folded) and outcome.fold.opened
    assert next(r for r in rows if r.row_id == outcome.fold.row_id).exercise_id == scope


def test_a_source_dismissed_as_false_alarm_is_muted_for_a_while() -> None:
    first = fold_all([alarm("video", "fire_smoke", confidence=0.86)])
    dismissed = dismiss(first[0], reason="false_alarm", actor=OP, at=T0 + timedelta(seconds=60)).after
    again = alarm("video", "fire_smoke", confidence=0.95, seconds=600)
    c = ctx(seconds=600, rows=[dismissed])
    assert decide(again, c, RULES) is None
    muted = mute_reason(again, c, RULES)
    assert muted is not None and muted.code == "triage.muted_after_false_alarm"
    assert "9 分 00 秒" in RULES.render(muted)
    _, outcome = triage([dismissed], again, c, RULES)
    assert isinstance(outcome, ToInbox) and outcome.muted == muted
    # corroboration still promotes a muted source
    call = alarm("call", "fire", seconds=590)
    p = decide(again, ctx(seconds=600, rows=[dismissed], recent=[call]), RULES)
    assert p is not None and p.rule_id == "corroborated"
    # only a false alarm mutes: a row dismissed as a duplicate does not
    dup = dismiss(first[0], reason="duplicate", actor=OP, at=T0 + timedelta(seconds=60)).after
    assert decide(again, ctx(seconds=600, rows=[dup]), RULES) is not None
    # after the mute: promoted again
    later = alarm("video", "fire_smoke", confidence=0.95, seconds=60 + 1801)
    assert decide(later, ctx(seconds=60 + 1801, rows=[dismissed]), RULES) is not None


# --- one alarm end to end --------------------------------------------------------------------------


def test_triage_promotes_and_takes_the_sources_open_rows_along() -> None:
    earlier = [alarm("video", "fire_smoke", confidence=0.82, seconds=-200 + 10 * i) for i in range(3)]
    other = alarm("sensor", "temperature", east_m=60, seconds=-100, confidence=None)
    rows = fold_all([*earlier, other])
    assert len(rows) == 2
    call = alarm("call", "fire", north_m=30)
    rows2, outcome = triage(rows, call, ctx(rows=rows), RULES)
    assert isinstance(outcome, ToIncident) and outcome.promotion.rule_id == "call_110"
    assert rows2 == rows  # the call itself never enters the inbox
    # the confident camera alarm: promoted, and its own open row goes with it
    sure = alarm("video", "fire_smoke", confidence=0.97)
    _, outcome2 = triage(rows, sure, ctx(rows=rows), RULES)
    assert isinstance(outcome2, ToIncident) and outcome2.promotion.rule_id == "video_fire_smoke"
    assert rows[0].row_id in outcome2.link_row_ids
    # the edge links those rows to the incident the alarm ended in, as the system
    changes = [link(r, incident("INC-9"), actor=SYSTEM, at=T0, rule_id=outcome2.promotion.rule_id)
               for r in rows if r.row_id in outcome2.link_row_ids]  # fmt: skip
    assert all(c.after.state == InboxState.LINKED and c.after.rule_id == "video_fire_smoke" for c in changes)


def test_a_110_call_takes_the_nearby_open_rows_of_its_story_along() -> None:
    cam_row = fold_all([alarm("video", "fire_smoke", source="video/CAM-0009", confidence=0.83, seconds=-90)])[
        0
    ]
    far_row = fold_all([alarm("video", "fire_smoke", source="video/CAM-0010", north_m=900, seconds=-90)])[0]
    unrelated = fold_all([alarm("video", "loitering", source="video/CAM-0011", seconds=-90)])[0]
    rows = (cam_row, far_row, unrelated)
    _, outcome = triage(rows, alarm("call", "fire", east_m=40), ctx(rows=rows), RULES)
    assert isinstance(outcome, ToIncident) and outcome.promotion.rule_id == "call_110"
    assert outcome.link_row_ids == (cam_row.row_id,)
    # rows no longer open stay where they are
    gone = dismiss(cam_row, reason="duplicate", actor=OP, at=T0).after
    _, outcome = triage((gone,), alarm("call", "fire", east_m=40), ctx(rows=(gone,)), RULES)
    assert isinstance(outcome, ToIncident) and outcome.link_row_ids == ()


def test_an_inbox_row_says_which_rule_put_it_there() -> None:
    row = one_row()
    reason = inbox_reason(row, RULES)
    assert reason is not None and reason.code == "triage.video_inbox"
    # the category in the operator's words, never its code (TRIAGE_WORDS)
    assert RULES.render(reason) == "视频 徘徊逗留 告警，进入告警收件箱待研判"
    assert RULES.render(reason, "en") == "video loitering alert: to the alarm inbox"


def test_triage_folds_what_no_rule_promotes() -> None:
    rows: tuple[InboxRow, ...] = ()
    for i in range(10):
        a = alarm("video", "loitering", seconds=i * 30)
        rows, outcome = triage(rows, a, ctx(seconds=i * 30, rows=rows), RULES)
        assert isinstance(outcome, ToInbox) and isinstance(outcome.fold, Folded)
    assert len(rows) == 1 and rows[0].count == 10


# --- operator actions --------------------------------------------------------------------------


def one_row(exercise_id: str | None = None, category: str = "loitering") -> InboxRow:
    return fold_all([alarm("video", category, exercise_id=exercise_id, n=next(_counter))])[0]


def test_promote_link_and_dismiss_record_who_when_and_why() -> None:
    row = one_row()
    at = T0 + timedelta(minutes=3)
    p = promote(row, incident_id="INC-20261207-000001", actor=OP, at=at, note="看监控确认")
    assert p.after.state == InboxState.PROMOTED and p.after.incident_id == "INC-20261207-000001"
    assert (p.after.acted_by, p.after.acted_role, p.after.acted_at) == ("operator1", Role.OPERATOR, at)
    assert p.audit_action == "inbox.promote"
    assert p.audit_detail()["from_state"] == "open" and p.audit_detail()["to_state"] == "promoted"
    lk = link(row, incident("INC-7"), actor=CMD, at=at)
    assert lk.after.state == InboxState.LINKED and lk.after.incident_id == "INC-7"
    d = dismiss(row, reason=DismissReason.DUPLICATE, actor=OP, at=at)
    assert d.after.state == InboxState.DISMISSED and d.after.dismiss_reason == DismissReason.DUPLICATE
    assert d.audit_detail()["dismiss_reason"] == "duplicate"
    assert i18n.text("zh_CN", f"inbox.reason.{DismissReason.FALSE_ALARM}") == "误报"
    assert i18n.text("zh_CN", f"inbox.reason.{DismissReason.TEST}") == "测试"


def test_dismiss_needs_a_known_reason_and_other_needs_words() -> None:
    row = one_row()
    with pytest.raises(InvalidCommand, match="unknown dismiss reason"):
        dismiss(row, reason="boring", actor=OP, at=T0)
    with pytest.raises(InvalidCommand, match="needs a note"):
        dismiss(row, reason="other", actor=OP, at=T0, note="  ")
    ok = dismiss(row, reason="other", actor=OP, at=T0, note="施工单位报备的动火作业")
    assert ok.after.note == "施工单位报备的动火作业"


def test_acting_on_a_row_twice_is_refused_with_the_state() -> None:
    done = dismiss(one_row(), reason="test", actor=OP, at=T0).after
    with pytest.raises(IllegalTransition, match="dismissed by operator1 already"):
        promote(done, incident_id="INC-1", actor=OP, at=T0)


def test_link_needs_an_open_incident_of_the_same_scope() -> None:
    row = one_row()
    with pytest.raises(IllegalTransition, match="closed"):
        link(row, incident(state=IncidentState.CLOSED), actor=OP, at=T0)
    with pytest.raises(IllegalTransition, match="never mix"):
        link(row, incident(exercise_id="EX-1"), actor=OP, at=T0)
    drill_row = one_row("EX-1")
    assert (
        link(drill_row, incident(exercise_id="EX-1"), actor=PLANNER, at=T0).after.state == InboxState.LINKED
    )


def test_who_may_act_operators_commanders_planners_on_exercises_never_field() -> None:
    live, drill = one_row(), one_row("EX-1")
    for actor in (OP, CMD):
        assert dismiss(live, reason="test", actor=actor, at=T0).after.acted_by == actor.user_id
        assert dismiss(drill, reason="test", actor=actor, at=T0).after.acted_by == actor.user_id
    with pytest.raises(Forbidden, match="only on exercise rows"):
        dismiss(live, reason="test", actor=PLANNER, at=T0)
    assert dismiss(drill, reason="test", actor=PLANNER, at=T0).after.acted_role == Role.PLANNER
    for row in (live, drill):
        with pytest.raises(Forbidden):
            promote(row, incident_id="INC-1", actor=FIELD, at=T0)
    with pytest.raises(Forbidden, match="an operator must"):
        dismiss(live, reason="false_alarm", actor=SYSTEM, at=T0)


def test_actions_need_an_aware_time() -> None:
    with pytest.raises(InvalidCommand, match="timezone-aware"):
        dismiss(one_row(), reason="test", actor=OP, at=datetime(2026, 1, 1))


# --- bulk --------------------------------------------------------------------------------------


def test_bulk_dismiss_acts_on_open_rows_and_refuses_the_others_one_by_one() -> None:
    rows = [one_row(category=c) for c in ("loitering", "crowd", "intrusion")]
    rows[1] = promote(rows[1], incident_id="INC-3", actor=OP, at=T0).after
    ids = [rows[0].row_id, rows[1].row_id, "IB-missing", rows[2].row_id, rows[0].row_id]
    result = bulk_dismiss(rows, ids, reason="test", actor=OP, at=T0 + timedelta(minutes=1))
    assert [r.row_id for r in result.results] == ids[:4]  # each id once, in the order given
    assert [r.ok for r in result.results] == [True, False, False, True]
    assert "promoted" in (result.results[1].refused or "")
    assert result.results[2].refused == "no inbox row IB-missing"
    assert len(result.changes) == 2 and all(c.after.state == InboxState.DISMISSED for c in result.changes)


def test_bulk_link_and_promote_refuse_rows_of_another_scope() -> None:
    live1, live2, drill = one_row(), one_row(category="crowd"), one_row("EX-1")
    ids = [live1.row_id, drill.row_id, live2.row_id]
    linked = bulk_link([live1, live2, drill], ids, incident("INC-5"), actor=OP, at=T0)
    assert [r.ok for r in linked.results] == [True, False, True]
    promoted = bulk_promote([live1, live2, drill], ids, incident_id="INC-6", actor=OP, at=T0)
    assert [r.ok for r in promoted.results] == [True, False, True]
    assert "never mix" in (promoted.results[1].refused or "")
    assert {c.after.incident_id for c in promoted.changes} == {"INC-6"}
    # a planner's bulk action on a mixed selection: only the exercise row goes through
    mixed = bulk_dismiss([live1, drill], [live1.row_id, drill.row_id], reason="test", actor=PLANNER, at=T0)
    assert [r.ok for r in mixed.results] == [False, True]


# --- expiry ------------------------------------------------------------------------------------


def test_expiry_moves_only_quiet_unacted_low_severity_rows_to_the_review_list() -> None:
    low = one_row(category="loitering")  # low
    medium = one_row(category="fight")  # medium
    high = fold_all([alarm("video", "fall", confidence=0.85)])[0]  # high
    acted = dismiss(one_row(category="loitering"), reason="test", actor=OP, at=T0).after
    rows = [low, medium, high, acted]
    assert [r.max_severity for r in rows[:3]] == [Severity.LOW, Severity.MEDIUM, Severity.HIGH]

    same, none = expire(rows, T0 + timedelta(seconds=1799), RULES)
    assert none == () and same == tuple(rows)

    after_30_min, changes = expire(rows, T0 + timedelta(seconds=1800), RULES)
    assert [c.before.row_id for c in changes] == [low.row_id]
    expired = after_30_min[0]
    assert expired.state == InboxState.EXPIRED and expired.rule_id == "expire_low"
    assert expired.acted_by == "system:triage" and expired.acted_role == Role.SYSTEM
    assert changes[0].audit_action == "inbox.expire" and changes[0].audit_detail()["rule_id"] == "expire_low"
    assert after_30_min[1:] == tuple(rows[1:])
    reason = expiry_reason(expired, RULES)
    assert reason is not None and "转入待复核" in RULES.render(reason)

    after_day, changes = expire(after_30_min, T0 + timedelta(days=1), RULES)
    assert [c.before.row_id for c in changes] == [medium.row_id]
    assert after_day[1].rule_id == "expire_medium"
    assert after_day[2].state == InboxState.OPEN  # high never expires
    assert after_day[3] == acted
    assert [r.row_id for r in review_list(after_day)] == [medium.row_id, low.row_id]


def test_a_row_that_keeps_alarming_does_not_expire() -> None:
    rows = fold_all([alarm("video", "loitering", seconds=500 * i) for i in range(5)])
    assert len(rows) == 1
    _, changes = expire(rows, T0 + timedelta(seconds=4 * 500 + 1000), RULES)
    assert changes == ()  # quiet for 1000 s only


def test_expired_rows_can_still_be_reviewed_and_acted_on() -> None:
    rows, _ = expire([one_row()], T0 + timedelta(hours=1), RULES)
    assert rows[0].state == InboxState.EXPIRED
    d = dismiss(rows[0], reason="false_alarm", actor=OP, at=T0 + timedelta(hours=2))
    assert d.before.state == InboxState.EXPIRED and d.after.state == InboxState.DISMISSED


def test_inbox_order_is_gravest_then_latest() -> None:
    a = fold_all([alarm("video", "loitering", seconds=100)])[0]
    b = fold_all([alarm("video", "fall", confidence=0.8, seconds=0)])[0]
    c = fold_all([alarm("video", "fight", seconds=200)])[0]
    assert [r.row_id for r in inbox_order([a, b, c])] == [b.row_id, c.row_id, a.row_id]


def test_alarm_confidence_reads_only_numbers() -> None:
    assert alarm_confidence(alarm("video", confidence=0.9)) == pytest.approx(0.9)
    assert alarm_confidence(alarm("sensor", "smoke", confidence=None)) is None


# --- the rules file: errors name the file, the line and the field --------------------------------


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def problems(text: str) -> list[str]:
    with pytest.raises(TriageRulesError) as info:
        parse_rules(text, "rules.yaml")
    return info.value.problems


def test_a_bad_value_points_at_its_line() -> None:
    bad = RULES_TEXT.replace("    radius_m: 300\n    window_s: 600", "    radius_m: -5\n    window_s: 600")
    (p,) = problems(bad)
    assert (
        p == f"rules.yaml:{line_of(bad, 'radius_m: -5')}: corroboration[0].radius_m: "
        "Input should be greater than 0"
    )


def test_an_unknown_field_and_a_missing_one_point_at_their_lines() -> None:
    bad = RULES_TEXT.replace("  window_s: 600\n  max_span_s", "  window_s: 600\n  widnow_s: 5\n  max_span_s")
    (p,) = problems(bad)
    assert p.startswith(f"rules.yaml:{line_of(bad, 'widnow_s')}: fold.widnow_s: Extra inputs")
    missing = RULES_TEXT.replace("  min_raises: 5\n", "")
    (p,) = problems(missing)
    assert p.startswith(f"rules.yaml:{line_of(missing, 'flapping:')}: flapping.min_raises: Field required")


def test_a_duplicate_key_and_broken_yaml_point_at_their_lines() -> None:
    dup = RULES_TEXT.replace("version: 3\n", "version: 3\nversion: 4\n")
    (p,) = problems(dup)
    assert p == f"rules.yaml:{line_of(dup, 'version: 4')}: not valid YAML: duplicate key 'version'"
    (p,) = problems("version: 1\nby_kind: [\n")
    assert p.startswith("rules.yaml:3: not valid YAML")
    (p,) = problems("- just a list\n")
    assert p.startswith("rules.yaml:1: the rules are a mapping")


def test_unknown_placeholders_and_repeated_ids_point_at_their_lines() -> None:
    bad = RULES_TEXT.replace("en: every 110 call opens an incident", "en: every 110 call from {caller}")
    (p,) = problems(bad)
    assert p.startswith(
        f"rules.yaml:{line_of(bad, '{caller}')}: by_kind[0].en: unknown placeholder(s) caller"
    )
    twice = RULES_TEXT.replace("- id: video_person_down", "- id: video_fire_smoke")
    (p,) = problems(twice)
    line = [i for i, s in enumerate(twice.splitlines(), 1) if "- id: video_fire_smoke" in s][1]
    assert (
        p == f"rules.yaml:{line}: always_promote[1].id: "
        "rule id 'video_fire_smoke' is already used by always_promote[0]"
    )


def test_every_alarm_kind_needs_exactly_one_kind_rule() -> None:
    without_video = re.sub(r"  - id: video_inbox\n(    .*\n)+", "", RULES_TEXT)
    (p,) = problems(without_video)
    assert p.startswith(
        f"rules.yaml:{line_of(without_video, 'by_kind:')}: by_kind: no rule for alarm kind(s) video"
    )
    twice = RULES_TEXT.replace("    kind: report\n", "    kind: call\n")
    found = problems(twice)
    assert any(": by_kind[1].kind: alarm kind 'call' has a rule already" in p for p in found)


def test_min_confidence_is_for_video_only_and_a_risk_rule_needs_one_context() -> None:
    bad = RULES_TEXT.replace(
        "applies_to: {sensor: [smoke, gas, co]}",
        "applies_to: {sensor: [smoke, gas, co]}\n    min_confidence: 0.5",
    )
    (p,) = problems(bad)
    assert "always_promote[2]: min_confidence applies to video alerts only" in p
    assert p.startswith(f"rules.yaml:{line_of(bad, '- id: sensor_fire_gas')}:")
    both = RULES_TEXT.replace(
        "    during_event: {before_s: 3600",
        "    near_venue: {kinds: [school], radius_m: 10}\n    during_event: {before_s: 3600",
    )
    (p,) = problems(both)
    assert "risk[3]: a risk rule needs exactly one of near_venue and during_event" in p
    on_video = RULES_TEXT.replace(
        "    min_confidence: 0.9\n    zh: 视频烟火",
        "    min_confidence: 0.9\n    min_reading_ratio: 1.5\n    zh: 视频烟火",
    )
    (p,) = problems(on_video)
    assert "always_promote[0]: min_reading_ratio applies to sensors only" in p


def test_every_problem_is_reported_not_just_the_first() -> None:
    bad = RULES_TEXT.replace("window_s: 900", "window_s: 0").replace("after_s: 7200", "after_s: -1")
    found = problems(bad)
    assert len(found) == 2
    assert any("flapping.window_s" in p for p in found) and any("expiry[1].after_s" in p for p in found)


# --- docs/triage.md cannot drift from the shipped rules -------------------------------------------


def test_docs_table_names_every_shipped_rule() -> None:
    docs = (DEFAULT_RULES_FILE.parents[2] / "docs" / "triage.md").read_text(encoding="utf-8")
    table = docs.split("### The shipped rules", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)` \| (\w+) \|", table, flags=re.MULTILINE)
    assert {rule_id for rule_id, _ in documented} == set(RULES.rule_ids)
    assert f"(version {RULES.version})" in docs


# --- a change to the rules bumps their version --------------------------------------------------

# The rules' content (everything but `version`, comments and layout ignored) for each shipped
# version. A promotion records the version it ran under, so two different rule sets must never
# share one: change rules.yaml, bump `version`, and add the new digest here.
SHIPPED_RULE_DIGESTS = {
    2: "5b6bfcde073190ac",
    3: "75f796b1cd2b2651",
}


def rules_digest(text: str) -> str:
    data = yaml.safe_load(text)
    data.pop("version", None)
    encoded = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def test_a_change_to_the_shipped_rules_bumps_their_version() -> None:
    digest = rules_digest(RULES_TEXT)
    assert SHIPPED_RULE_DIGESTS.get(RULES.version) == digest, (
        f"rules.yaml's content changed (digest {digest}) but its version is still {RULES.version}: "
        "bump `version` and add the digest to SHIPPED_RULE_DIGESTS"
    )
    assert RULES.version == max(SHIPPED_RULE_DIGESTS)
