"""Which messages raise an alarm for the command centre. Pure rules, no I/O.

- every 110 call;
- every video alert at or above ``settings.ingest.video_alarm_confidence``;
- every field report (grid worker or team);
- a sensor reading that crosses its kind's raise level, with hysteresis: once raised,
  the (device, kind) pair stays raised until a reading falls below the lower clear
  level, so a noisy sensor oscillating around the threshold raises one alarm, not
  hundreds. Unknown kinds raise nothing.

A message published in an exercise (``exercise/v1/<id>/...``) raises its alarm like a
live one, marked with ``details["exercise_id"]``; its alarm id differs from a live
one's because its source key does (``ex/<id>/...``), and its sensor hysteresis is the
exercise's own (``sensor_alarm_state.scope``).

The sensor state itself lives in PostgreSQL (``sensor_alarm_state``), because a
shared subscription may hand one device's readings to different ingest workers; the
writer locks the rows and runs ``advance`` over each batch in time order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ingest.rows import Place
from wuwang.contract import (
    FEEDS,
    Alarm,
    AlarmKind,
    EmergencyCall,
    FeedSpecs,
    FieldReport,
    Message,
    SensorReading,
    VideoAlert,
    alarm_id_for,
)
from wuwang.thresholds import DEFAULT_THRESHOLDS, Threshold

SENSOR_KIND_ZH = {
    "smoke": "烟感", "gas": "可燃气体", "co": "一氧化碳", "water_level": "水位", "temperature": "温度",
}
CALL_CATEGORY_ZH = {
    "criminal": "刑事", "public_order": "治安", "traffic": "交通", "fire": "火灾", "medical": "医疗急救",
    "rescue": "救援", "dispute": "纠纷", "other": "其他",
}
VIDEO_EVENT_ZH = {
    "fire_smoke": "烟火", "crowd": "人群聚集", "intrusion": "区域入侵", "fight": "打架斗殴",
    "traffic_accident": "交通事故", "fall": "人员倒地", "loitering": "徘徊逗留",
}


def thresholds(overrides: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Threshold]:
    """The defaults, with ``settings.ingest.sensor_thresholds`` (kind → (raise, clear)) on top."""
    merged = dict(DEFAULT_THRESHOLDS)
    for kind, (raise_at, clear_below) in (overrides or {}).items():
        merged[kind] = Threshold(float(raise_at), float(clear_below))
    return merged


# --- hysteresis ------------------------------------------------------------------


def step(raised: bool, value: float, t: Threshold) -> tuple[bool, bool]:
    """One reading: (raised afterwards, whether this reading raises an alarm)."""
    if not raised and value >= t.raise_at:
        return True, True
    if raised and value < t.clear_below:
        return False, False
    return raised, False


def advance(raised: bool, values: Iterable[float], t: Threshold) -> tuple[bool, list[int]]:
    """Run ``step`` over readings in order: (final state, indexes that raised)."""
    fired = []
    for i, value in enumerate(values):
        raised, fires = step(raised, value, t)
        if fires:
            fired.append(i)
    return raised, fired


# --- alarms ---------------------------------------------------------------------


def mask_caller(caller: str) -> str:
    """Personal data leaves the database masked: 13812345678 → 138****5678, 张三丰 → 张*丰, 张三 → 张*."""
    n = len(caller)
    if n >= 11:
        return caller[:3] + "*" * (n - 7) + caller[-4:]
    if n >= 3:
        return caller[0] + "*" * (n - 2) + caller[-1]
    if n == 2:
        return caller[0] + "*"
    return "*" * n


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.6g}"


def _alarm(msg: Message, place: Place, kind: AlarmKind, category: str, summary: str,
           details: dict[str, Any]) -> Alarm:
    return Alarm(
        alarm_id=alarm_id_for(msg.source, msg.msg_id),
        kind=kind,
        source=msg.source,
        msg_id=msg.msg_id,
        network=msg.topic.network,
        ts=msg.ts,
        lat=place.lat,
        lon=place.lon,
        grid_cell_id=place.grid_cell_id,
        category=category,
        summary=summary,
        # command keeps an exercise's alarms in that exercise (correlation.alarm_exercise_id)
        details={k: v for k, v in {**details, "exercise_id": msg.topic.exercise_id}.items() if v is not None},
    )


def _call_alarm(msg: Message, place: Place, video_confidence: float) -> Alarm | None:
    p = msg.payload
    assert isinstance(p, EmergencyCall)
    category = str(p.category)
    where = _short(p.address, 60) or _short(p.description, 60)
    return _alarm(msg, place, "call", category,
                  f"110报警 {CALL_CATEGORY_ZH.get(category, category)}: {where}",
                  {"call_id": p.call_id, "priority": p.priority, "address": p.address,
                   "description": _short(p.description, 500), "caller_masked": mask_caller(p.caller)})


def _video_alarm(msg: Message, place: Place, video_confidence: float) -> Alarm | None:
    p = msg.payload
    assert isinstance(p, VideoAlert)
    if p.confidence < video_confidence:
        return None
    event = VIDEO_EVENT_ZH.get(p.event, p.event)
    summary = f"视频告警 {event} 置信度 {p.confidence:.2f} ({p.camera_id})"
    return _alarm(msg, place, "video", p.event, summary,
                  {"camera_id": p.camera_id, "event": p.event, "confidence": p.confidence,
                   "snapshot_url": p.snapshot_url, "bbox": p.bbox})


def _report_alarm(msg: Message, place: Place, video_confidence: float) -> Alarm | None:
    p = msg.payload
    assert isinstance(p, FieldReport)
    team = msg.topic.source_id if msg.topic.is_team else None
    who = f"队伍 {team} " if team else "网格员"
    return _alarm(msg, place, "report", p.category,
                  f"{who}上报 {p.category}: {_short(p.description, 60)}",
                  {"reporter": p.reporter, "team_id": team, "description": _short(p.description, 500),
                   "photo_url": p.photo_url, "new_event": new_event_of(msg)})


#: The rule of each alarm kind a message raises on its own, named by its feed's
#: ``FeedSpec.alarm``; "sensor" is the writer's (hysteresis over the stored state:
#: ``step``/``advance``, then ``sensor_alarm``).
MESSAGE_RULES: dict[AlarmKind, Callable[[Message, Place, float], Alarm | None]] = {
    "call": _call_alarm,
    "video": _video_alarm,
    "report": _report_alarm,
}
STATEFUL_KINDS: frozenset[AlarmKind] = frozenset({"sensor"})


def message_alarm(msg: Message, place: Place, *, video_confidence: float,
                  feeds: FeedSpecs = FEEDS) -> Alarm | None:
    """The alarm a message raises on its own: its feed's alarm kind names the rule
    (sensors: see sensor_alarm)."""
    kind = feeds[msg.feed].alarm
    rule = MESSAGE_RULES.get(kind) if kind is not None else None
    return rule(msg, place, video_confidence) if rule is not None else None


def new_event_of(report: Message) -> bool | None:
    """A team report's optional ``new_event`` (docs/mqtt-contract.md §4.7): an extra field
    of contract v1, so only a JSON boolean counts; anything else is as if left out."""
    value = report.extra.get("new_event")
    return value if isinstance(value, bool) else None


def sensor_alarm(msg: Message, place: Place, t: Threshold) -> Alarm:
    """The alarm for a reading that ``step`` said raises one."""
    p = msg.payload
    assert isinstance(p, SensorReading)
    name = SENSOR_KIND_ZH.get(p.kind, p.kind)
    return _alarm(msg, place, "sensor", p.kind, f"{name}超限 {_number(p.value)} {p.unit}",
                  {"device_id": p.device_id, "kind": p.kind, "value": p.value, "unit": p.unit,
                   "raise_at": t.raise_at, "clear_below": t.clear_below})


def may_alarm(msg: Message, sensor_thresholds: Mapping[str, Threshold], *, video_confidence: float,
              feeds: FeedSpecs = FEEDS) -> bool:
    """Whether a message may raise an alarm: the writer commits a batch holding one at once
    instead of waiting out ``INGEST_FLUSH_MS`` (an operator waits for it). A sensor
    reading at or above its raise level counts whatever its hysteresis state (the state is
    in the database; a reading that turns out not to raise only costs an early commit)."""
    kind = feeds[msg.feed].alarm
    if kind is None:
        return False
    p = msg.payload
    if isinstance(p, SensorReading):
        t = sensor_thresholds.get(p.kind)
        return t is not None and p.value >= t.raise_at
    if isinstance(p, VideoAlert):
        return p.confidence >= video_confidence
    return kind in MESSAGE_RULES
