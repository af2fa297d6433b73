"""Scoring a shift against its ground truth — pure, from what the run left in the
database (the alarm ledger, incidents and their sources, inbox rows).

* an incident **matches** a true event when one of its alarms (its sources, or the
  alarms of inbox rows linked to it) is a signal of that event;
* a true event is **surfaced** when an incident holds one of its alarms no later than
  ``SURFACE_WITHIN_S`` after the event's first signal (times are the alarms' own
  ``ts``: the replay compresses the hour, the decisions follow the messages' clocks);
* **operator items** are the incidents plus the inbox rows an operator has to look at:
  every row except those the system itself linked to (or promoted into) an incident,
  which the operator sees inside that incident.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulators.ground_truth import ShiftTruth

SURFACE_WITHIN_S = 60.0

#: The issue's targets.
TARGET_RECALL = 1.0
TARGET_MATCHING = 0.9
TARGET_ITEMS_PER_RAW = 1 / 5


@dataclass(frozen=True, slots=True)
class LedgerAlarm:
    """One alarm the command service took (table alarm_inbox)."""

    alarm_id: str
    ts: datetime
    triage_row_id: str | None
    triage_rule: str | None  # the rule that promoted it, when it went to an incident


@dataclass(frozen=True, slots=True)
class InboxRowSeen:
    row_id: str
    state: str
    acted_role: str | None
    incident_id: str | None


@dataclass(frozen=True)
class Observed:
    """What the run left behind (live scope only)."""

    alarms: Sequence[LedgerAlarm]
    incident_sources: Mapping[str, Sequence[str]]  # incident id → its source alarm ids
    rows: Sequence[InboxRowSeen]


@dataclass
class Score:
    raw_alarms: int
    alarms_generated: int
    true_events: int
    true_events_surfaced: int
    incidents: int
    incidents_matching_true_events: int
    calls: int
    calls_surfaced: int
    inbox_rows: int
    inbox_rows_for_operator: int
    operator_items: int
    operator_items_per_hour: float
    minutes: float
    duplicate_incidents: int  # incidents beyond one per matched true event
    missed: list[dict[str, Any]] = field(default_factory=list)
    false_incidents: list[dict[str, Any]] = field(default_factory=list)
    promoted_by: dict[str, int] = field(default_factory=dict)  # rule → alarms it promoted
    surfaced_after_s: list[float] = field(default_factory=list)

    @property
    def recall_true_events(self) -> float:
        return self.true_events_surfaced / self.true_events if self.true_events else 1.0

    @property
    def recall_calls(self) -> float:
        return self.calls_surfaced / self.calls if self.calls else 1.0

    @property
    def matching_ratio(self) -> float:
        return self.incidents_matching_true_events / self.incidents if self.incidents else 1.0

    @property
    def items_per_raw_alarm(self) -> float:
        return self.operator_items / self.raw_alarms if self.raw_alarms else 0.0

    @property
    def targets_met(self) -> dict[str, bool]:
        return {
            "recall_true_events": self.recall_true_events >= TARGET_RECALL,
            "recall_calls": self.recall_calls >= TARGET_RECALL,
            "incidents_matching_ratio": self.matching_ratio >= TARGET_MATCHING,
            "operator_items_per_raw_alarm": self.items_per_raw_alarm <= TARGET_ITEMS_PER_RAW,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "raw_alarms": self.raw_alarms,
            "alarms_generated": self.alarms_generated,
            "true_events": self.true_events,
            "true_events_surfaced": self.true_events_surfaced,
            "incidents": self.incidents,
            "incidents_matching_true_events": self.incidents_matching_true_events,
            "duplicate_incidents": self.duplicate_incidents,
            "calls_110": self.calls,
            "calls_110_surfaced": self.calls_surfaced,
            "inbox_rows": self.inbox_rows,
            "inbox_rows_for_operator": self.inbox_rows_for_operator,
            "operator_items": self.operator_items,
            "operator_items_per_hour": round(self.operator_items_per_hour, 1),
            "ratios": {
                "recall_true_events": round(self.recall_true_events, 4),
                "recall_110_calls": round(self.recall_calls, 4),
                "incidents_matching_true_events": round(self.matching_ratio, 4),
                "operator_items_per_raw_alarm": round(self.items_per_raw_alarm, 4),
            },
            "targets": {
                "recall_true_events": TARGET_RECALL,
                "recall_110_calls": TARGET_RECALL,
                "incidents_matching_true_events": TARGET_MATCHING,
                "operator_items_per_raw_alarm": TARGET_ITEMS_PER_RAW,
            },
            "targets_met": self.targets_met,
            "surfaced_after_s": sorted(round(s, 1) for s in self.surfaced_after_s),
            "promoted_by_rule": dict(sorted(self.promoted_by.items())),
            "missed": self.missed,
            "false_incidents": self.false_incidents,
        }


def score(truth: ShiftTruth, start: datetime, seen: Observed) -> Score:
    """Score what was seen against the truth. ``start``: the ``ts`` of the window's second 0."""
    signal = {s.alarm_id: s for s in truth.alarms}
    ts = {a.alarm_id: a.ts for a in seen.alarms}
    by_row: dict[str, list[str]] = {}
    for taken in seen.alarms:
        if taken.triage_row_id is not None:
            by_row.setdefault(taken.triage_row_id, []).append(taken.alarm_id)
    holds: dict[str, set[str]] = {inc: set(ids) for inc, ids in seen.incident_sources.items()}
    for row in seen.rows:
        if row.incident_id is not None and row.incident_id in holds:
            holds[row.incident_id].update(by_row.get(row.row_id, ()))

    def sim_s(alarm_id: str) -> float | None:
        t = ts.get(alarm_id)
        return (t - start).total_seconds() if t is not None else None

    # when each true event first showed as an incident (the later of the incident's own
    # opening and the event's alarm, both in the messages' time)
    surfaced_at: dict[str, float] = {}
    matching = 0
    matched_events: set[str] = set()
    false_incidents: list[dict[str, Any]] = []
    for inc, alarm_ids in sorted(holds.items()):
        opened = min(
            (s for a in seen.incident_sources.get(inc, ()) if (s := sim_s(a)) is not None), default=None
        )
        events = {signal[a].event_id for a in alarm_ids if a in signal and signal[a].event_id is not None}
        if events:
            matching += 1
            matched_events |= {e for e in events if e is not None}
        else:
            false_incidents.append(
                {
                    "incident": inc,
                    "alarms": sorted(
                        Counter(signal[a].label if a in signal else "unknown" for a in alarm_ids)
                    ),
                }
            )
        for a in alarm_ids:
            sig = signal.get(a)
            at = sim_s(a)
            if sig is None or sig.event_id is None or at is None:
                continue
            when = max(at, opened if opened is not None else at)
            surfaced_at[sig.event_id] = min(surfaced_at.get(sig.event_id, when), when)
    missed: list[dict[str, Any]] = []
    after: list[float] = []
    surfaced = 0
    for e in truth.events:
        at = surfaced_at.get(e.event_id)
        if at is not None and at - e.first_at_s <= SURFACE_WITHIN_S:
            surfaced += 1
            after.append(at - e.first_at_s)
            continue
        missed.append(
            {
                "event": e.event_id,
                "kind": e.kind,
                "first_at_s": round(e.first_at_s, 1),
                "why": "no incident"
                if at is None
                else f"incident only {at - e.first_at_s:.0f} s after its first signal",
            }
        )
    call_ids = [s.alarm_id for s in truth.alarms if s.kind == "call"]
    in_incident: set[str] = set().union(*holds.values()) if holds else set()
    calls_surfaced = sum(1 for a in call_ids if a in in_incident)
    for a in call_ids:
        if a not in in_incident:
            missed.append({"call": a, "why": "a 110 call in no incident"})
    system_done = {"promoted", "linked"}
    for_operator = [r for r in seen.rows if not (r.state in system_done and r.acted_role == "system")]
    incidents = len(holds)
    items = incidents + len(for_operator)
    promoted_by = Counter(x.triage_rule for x in seen.alarms if x.triage_rule)
    return Score(
        raw_alarms=len(seen.alarms),
        alarms_generated=len(truth.alarms),
        true_events=len(truth.events),
        true_events_surfaced=surfaced,
        incidents=incidents,
        incidents_matching_true_events=matching,
        calls=len(call_ids),
        calls_surfaced=calls_surfaced,
        inbox_rows=len(seen.rows),
        inbox_rows_for_operator=len(for_operator),
        operator_items=items,
        operator_items_per_hour=items * 60.0 / truth.minutes if truth.minutes else 0.0,
        minutes=truth.minutes,
        duplicate_incidents=matching - len(matched_events),
        missed=missed,
        false_incidents=false_incidents,
        promoted_by=dict(promoted_by),
        surfaced_after_s=after,
    )


def start_for(now: datetime, minutes: float, speed: float) -> datetime:
    """The ``ts`` of second 0 such that no message is stamped after the moment it is
    published (a clock ahead of the receiver would be clamped): the window ends now
    plus its replay time."""
    span = timedelta(minutes=minutes)
    return now - span + span / speed
