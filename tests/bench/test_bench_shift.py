"""bench/shift: the ground truth is consistent, the score is computed from the truth
(a tiny hand-built hour with known answers), and the whole bench runs on a scratch
stack at high speed for a few minutes. No wall-clock time is asserted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.shift import run as shift
from bench.shift.score import InboxRowSeen, LedgerAlarm, Observed, score, start_for
from simulators.ground_truth import Signal, TrueEvent, hand_built, peak_hour
from wuwang.city import CitySize, build_city

START = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
SMALL = CitySize(venues=40, devices=400, cameras=200, patrol_units=12, teams=24)


def sig(at_s: float, source: str, n: int, kind: str, event_id: str | None, label: str) -> Signal:
    return Signal(at_s, "t", {}, source, f"m{n}", kind, event_id, label)  # type: ignore[arg-type]


# A hand-built quarter of an hour:
#   TE-1 fire: smoke detector at 0 s, a caller at 30 s        → one incident at 0 s: surfaced
#   TE-2 accident: camera at 100 s, a caller at 190 s         → incident at 190 s: 90 s late
#   TE-3 a call at 200 s that never reached an incident        → missed, and a call missed
#   noise: three loitering alerts of one camera (one open row), a lone fall alert that
#   opened an incident of its own (a false incident)
SIGNALS = [
    sig(0, "venue/SMK-1", 1, "sensor", "TE-1", "fire: smoke detector"),
    sig(30, "police/sys110", 2, "call", "TE-1", "fire: 110"),
    sig(100, "video/CAM-2", 3, "video", "TE-2", "accident: camera"),
    sig(190, "police/sys110", 4, "call", "TE-2", "accident: 110"),
    sig(200, "police/sys110", 5, "call", "TE-3", "110 dispute"),
    sig(10, "video/CAM-9", 6, "video", None, "loitering storm"),
    sig(20, "video/CAM-9", 7, "video", None, "loitering storm"),
    sig(30, "video/CAM-9", 8, "video", None, "loitering storm"),
    sig(50, "video/CAM-5", 9, "video", None, "single fall alert"),
]
EVENTS = [
    TrueEvent("TE-1", "fire", 32.0, 112.1, 0, 1),
    TrueEvent("TE-2", "traffic_accident", 32.0, 112.1, 100, 1),
    TrueEvent("TE-3", "call", 32.0, 112.1, 200, 1),
]


def ledger(alarm_id: str, at_s: float, row: str | None = None, rule: str | None = None) -> LedgerAlarm:
    return LedgerAlarm(alarm_id, START + timedelta(seconds=at_s), row, rule)


def test_the_score_of_a_hand_built_hour() -> None:
    truth = hand_built(SIGNALS, EVENTS, minutes=15)
    seen = Observed(
        alarms=[
            ledger("venue/SMK-1#m1", 0, rule="sensor_fire_gas"),
            ledger("police/sys110#m2", 30, rule="call_110"),
            ledger("video/CAM-2#m3", 100, row="IB-2"),
            ledger("police/sys110#m4", 190, rule="call_110"),
            ledger("police/sys110#m5", 200, rule="call_110"),
            ledger("video/CAM-9#m6", 10, row="IB-9"),
            ledger("video/CAM-9#m7", 20, row="IB-9"),
            ledger("video/CAM-9#m8", 30, row="IB-9"),
            ledger("video/CAM-5#m9", 50, rule="risk_vulnerable_site"),
        ],
        incident_sources={
            "INC-1": ["venue/SMK-1#m1", "police/sys110#m2"],
            "INC-2": ["police/sys110#m4"],
            "INC-3": ["video/CAM-5#m9"],
        },
        rows=[
            InboxRowSeen("IB-2", "linked", "system", "INC-2"),  # the camera's row, linked by the call
            InboxRowSeen("IB-9", "open", None, None),
        ],
    )
    s = score(truth, START, seen)
    assert (s.raw_alarms, s.alarms_generated, s.true_events) == (9, 9, 3)
    assert s.true_events_surfaced == 1  # TE-1 only: TE-2 90 s late, TE-3 never
    assert [m.get("event") for m in s.missed if "event" in m] == ["TE-2", "TE-3"]
    assert "90 s after" in s.missed[0]["why"] and s.missed[1]["why"] == "no incident"
    assert (s.calls, s.calls_surfaced) == (3, 2)
    assert (s.incidents, s.incidents_matching_true_events, s.duplicate_incidents) == (3, 2, 0)
    assert s.false_incidents == [{"incident": "INC-3", "alarms": ["single fall alert"]}]
    assert (s.inbox_rows, s.inbox_rows_for_operator) == (2, 1)  # the system-linked row is in INC-2
    assert s.operator_items == 4 and s.operator_items_per_hour == 16.0
    assert s.promoted_by == {"call_110": 3, "sensor_fire_gas": 1, "risk_vulnerable_site": 1}
    out = s.as_json()
    assert out["ratios"] == {
        "recall_true_events": round(1 / 3, 4),
        "recall_110_calls": round(2 / 3, 4),
        "incidents_matching_true_events": round(2 / 3, 4),
        "operator_items_per_raw_alarm": round(4 / 9, 4),
    }
    assert out["targets_met"] == {
        "recall_true_events": False,
        "recall_calls": False,
        "incidents_matching_ratio": False,
        "operator_items_per_raw_alarm": False,
    }


def test_an_event_joining_an_older_incident_surfaces_when_it_joins() -> None:
    """A true event's alarm that joins an incident opened earlier by noise surfaces at
    the alarm's time, not the incident's."""
    truth = hand_built(SIGNALS[:2], EVENTS[:1], minutes=15)
    seen = Observed(
        alarms=[ledger("venue/SMK-1#m1", 0, row="IB-1"), ledger("police/sys110#m2", 30, rule="call_110")],
        incident_sources={"INC-1": ["police/sys110#m2"]},
        rows=[InboxRowSeen("IB-1", "linked", "system", "INC-1")],
    )
    s = score(truth, START, seen)
    assert s.true_events_surfaced == 1 and s.surfaced_after_s == [30.0]
    assert s.items_per_raw_alarm == 0.5 and s.targets_met["operator_items_per_raw_alarm"] is False


def test_no_message_is_stamped_after_it_is_published() -> None:
    now = START
    for minutes, speed in ((60, 30), (10, 1), (5, 600)):
        start = start_for(now, minutes, speed)
        for at_s in (0.0, minutes * 30.0, minutes * 60.0):
            published = now + timedelta(seconds=at_s / speed)
            assert start + timedelta(seconds=at_s) <= published


def test_the_peak_hour_truth_is_consistent_and_repeatable() -> None:
    city = build_city(size=SMALL)
    truth = peak_hour(city, seed=3, minutes=30)
    assert truth == peak_hour(city, seed=3, minutes=30)
    alarms = truth.alarms
    assert all(0 <= s.at_s <= 30 * 60 for s in truth.signals)
    assert len({s.alarm_id for s in truth.signals}) == len(truth.signals)
    events = {e.event_id: e for e in truth.events}
    for e in truth.events:
        mine = [s for s in alarms if s.event_id == e.event_id]
        assert mine and e.first_at_s == min(s.at_s for s in mine)
        assert e.calls == sum(1 for s in mine if s.kind == "call")
    assert all(s.event_id in events for s in alarms if s.event_id is not None)
    # every 110 call is of a true event; noise is video and sensor only
    assert all(s.event_id is not None for s in alarms if s.kind == "call")
    labels = {s.label for s in alarms if s.event_id is None}
    assert "loitering storm" in labels and "flapping camera" in labels
    # a sensor's clearing reading raises nothing; every crossing has one
    crossings = [s for s in truth.signals if s.kind == "sensor"]
    raising, clearing = sum(1 for s in crossings if s.raises), sum(1 for s in crossings if not s.raises)
    assert clearing >= 1 and raising >= clearing  # a clear past the window's end is not sent
    assert truth.planned and truth.planned[0].radius_m > 0


def test_the_bench_runs_on_a_scratch_stack() -> None:
    cfg = shift.Config(minutes=4, speed=60, seed=4, city=SMALL)
    r = shift.run(cfg)
    s = r.score
    assert s.alarms_generated == len(r.truth.alarms) and s.raw_alarms == len(r.truth.alarms)  # all taken
    assert s.true_events == len(r.truth.events)
    assert s.calls == sum(1 for a in r.truth.alarms if a.kind == "call")
    assert s.calls_surfaced == s.calls  # every 110 call opens or joins an incident
    assert s.incidents >= 1 and s.inbox_rows >= 1
    out = shift.as_json(r)
    for key in (
        "raw_alarms",
        "true_events",
        "true_events_surfaced",
        "incidents",
        "incidents_matching_true_events",
        "operator_items_per_hour",
        "ratios",
    ):
        assert key in out
    assert shift.render(r, "python -m bench.shift").startswith("## Shift")


def test_help_says_what_the_bench_does_in_a_whole_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        shift.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    said = "through the real ingest → command triage → inbox / incidents, scored against the truth."
    assert said in help_text
