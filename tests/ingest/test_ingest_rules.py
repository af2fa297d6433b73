"""Pure parts of the ingest: Message → row, alarm rules, hysteresis, rate-limited log."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import alarms
from ingest.alarms import advance, step
from ingest.ratelog import RateLimitedLog, truncated
from ingest.rows import NOWHERE, TABLE_COLUMNS, Place, Unstorable, place_of, row_for
from testkit.feeds import samples
from wuwang.contract import Message, encode, parse_message, team_topic, to_builtins, wuwang_topic
from wuwang.exercises import exercise_topic
from wuwang.lattice import grid_cell_id
from wuwang.thresholds import DEFAULT_THRESHOLDS, Threshold

NOW = datetime(2025, 5, 1, 0, 0, tzinfo=UTC)
DEG = 0.025


def msg(topic: str, body: dict[str, object]) -> Message:
    return parse_message(topic, encode(body), NOW)


# --- rows ---------------------------------------------------------------------------


def test_sensor_row_with_own_position() -> None:
    m = msg(wuwang_topic("venue", "sensor", "SEN-1"), {
        "id": "a1", "ts": "2025-05-01T08:00:00+08:00", "device_id": "SEN-1", "kind": "smoke", "value": 12.5,
        "unit": "%/m", "lat": 32.04, "lon": 112.14, "battery": 0.9})
    place = place_of(m, DEG, {})
    table, row = row_for(m, place)
    assert table == "sensor_reading"
    values = dict(zip(TABLE_COLUMNS[table], row, strict=True))
    assert values["ts"] == datetime(2025, 5, 1, 0, 0, tzinfo=UTC)
    assert values["received_at"] == NOW and values["ts_from_receipt"] is False
    assert (values["network"], values["source_id"], values["msg_id"]) == ("venue", "SEN-1", "a1")
    assert values["grid_cell_id"] == grid_cell_id(32.04, 112.14, DEG) == "r1281c4485"
    assert values["extra"] == '{"battery":0.9}'


def test_sensor_without_position_uses_the_registry_or_nothing() -> None:
    m = msg(wuwang_topic("venue", "sensor", "SEN-1"), {
        "id": "a1", "device_id": "SEN-1", "kind": "gas", "value": 1.0, "unit": "%LEL"})
    assert place_of(m, DEG, {}) == NOWHERE
    place = place_of(m, DEG, {"SEN-1": (32.0, 112.0)})
    assert place == Place(32.0, 112.0, "r1280c4480")
    values = dict(zip(TABLE_COLUMNS["sensor_reading"], row_for(m, place)[1], strict=True))
    assert values["ts"] == NOW and values["ts_from_receipt"] is True
    assert (values["lat"], values["lon"]) == (32.0, 112.0)


@pytest.mark.parametrize(("topic", "body", "table", "checks"), [
    (wuwang_topic("video", "video", "CAM-1"),
     {"id": "v", "camera_id": "CAM-1", "event": "crowd", "confidence": 0.5, "lat": 1.0, "lon": 2.0,
      "bbox": [1, 2, 3, 4]},
     "video_alert", {"bbox": "[1.0,2.0,3.0,4.0]", "snapshot_url": None, "network": "video"}),
    (wuwang_topic("police", "call", "sys110"),
     {"id": "c", "call_id": "110-9", "category": "fire", "lat": 1.0, "lon": 2.0, "address": "a",
      "description": "d", "caller": "x", "priority": 2},
     "emergency_call", {"category": "fire", "priority": 2, "caller": "x"}),
    (wuwang_topic("community", "report", "GW-1"),
     {"id": "r", "reporter": "GW-1", "category": "c", "description": "d", "lat": 1.0, "lon": 2.0},
     "field_report", {"network": "community", "team_id": None, "source_id": "GW-1"}),
    (team_topic("T-1", "report"),
     {"id": "r", "reporter": "张三", "category": "c", "description": "d", "lat": 1.0, "lon": 2.0},
     "field_report", {"network": None, "team_id": "T-1", "source_id": "T-1"}),
    (team_topic("T-1", "position"), {"id": "p", "lat": 1.0, "lon": 2.0, "seq": 7},
     "team_position", {"team_id": "T-1", "seq": 7, "speed": None}),
    (team_topic("T-1", "status"), {"id": "s", "status": "en_route", "incident_id": "INC-1"},
     "team_status", {"team_id": "T-1", "status": "en_route", "incident_id": "INC-1"}),
])
def test_rows_of_every_feed(topic: str, body: dict[str, object], table: str,
                            checks: dict[str, object]) -> None:
    m = msg(topic, body)
    got_table, row = row_for(m, place_of(m, DEG, {}))
    assert got_table == table
    assert len(row) == len(TABLE_COLUMNS[table])
    values = dict(zip(TABLE_COLUMNS[table], row, strict=True))
    for column, want in checks.items():
        assert values[column] == want, column
    assert all(type(v) is str for k, v in values.items() if k in ("category", "status", "network") and v)


def test_unstorable_extra_is_refused() -> None:
    # Lone surrogate in an extra field: orjson (and PostgreSQL) cannot take it.
    m = parse_message(team_topic("T-1", "status"), b'{"id": "s", "status": "available"}', NOW)
    bad = Message(m.topic, m.payload, m.ts, m.received_at, m.ts_from_receipt, {"x": "\ud800"})
    with pytest.raises(Unstorable):
        row_for(bad, NOWHERE)


def test_exercise_rows_are_the_live_rows_with_their_exercise_id() -> None:
    for sample in samples(len(TABLE_COLUMNS) * 2, seed=3):
        live = parse_message(sample.topic, sample.payload, NOW)
        drill = parse_message(exercise_topic("EX-1", sample.topic), sample.payload, NOW)
        live_table, live_row = row_for(live, place_of(live, DEG, {}))
        drill_table, drill_row = row_for(drill, place_of(drill, DEG, {}))
        assert TABLE_COLUMNS[live_table][-1] == "exercise_id"
        assert drill_table == live_table and live_row[-1] is None and drill_row[-1] == "EX-1"
        assert drill_row[:-1] == live_row[:-1]  # source_id and team_id stay the device's and team's


# --- alarm rules --------------------------------------------------------------------


@pytest.mark.parametrize(("topic", "body", "urgent"), [
    (wuwang_topic("police", "call", "sys110"),
     {"id": "c", "call_id": "110-9", "category": "fire", "lat": 1.0, "lon": 2.0, "address": "a",
      "description": "d", "caller": "x"}, True),
    (team_topic("T-1", "report"),
     {"id": "r", "reporter": "张三", "category": "c", "description": "d", "lat": 1.0, "lon": 2.0}, True),
    (wuwang_topic("video", "video", "CAM-1"),
     {"id": "v", "camera_id": "CAM-1", "event": "fight", "confidence": 0.8, "lat": 1.0, "lon": 2.0}, True),
    (wuwang_topic("video", "video", "CAM-1"),
     {"id": "v", "camera_id": "CAM-1", "event": "fight", "confidence": 0.79, "lat": 1.0, "lon": 2.0}, False),
    (wuwang_topic("venue", "sensor", "SEN-1"),
     {"id": "s", "device_id": "SEN-1", "kind": "smoke", "value": DEFAULT_THRESHOLDS["smoke"].raise_at,
      "unit": "%/m"}, True),
    (wuwang_topic("venue", "sensor", "SEN-1"),
     {"id": "s", "device_id": "SEN-1", "kind": "smoke", "value": DEFAULT_THRESHOLDS["smoke"].clear_below,
      "unit": "%/m"}, False),
    (wuwang_topic("venue", "sensor", "SEN-1"),
     {"id": "s", "device_id": "SEN-1", "kind": "humidity", "value": 1e9, "unit": "%"}, False),
    (team_topic("T-1", "position"), {"id": "p", "lat": 1.0, "lon": 2.0}, False),
    (team_topic("T-1", "status"), {"id": "s", "status": "en_route"}, False),
])
def test_may_alarm_names_what_skips_the_batch_wait(topic: str, body: dict[str, object], urgent: bool) -> None:
    assert alarms.may_alarm(msg(topic, body), DEFAULT_THRESHOLDS, video_confidence=0.8) is urgent


def test_message_alarms() -> None:
    call = msg(wuwang_topic("police", "call", "sys110"), {
        "id": "c1", "call_id": "110-1", "category": "fire", "lat": 32.0, "lon": 112.0,
        "address": "樊城区人民路12号", "description": "三楼冒烟", "caller": "13812345678"})
    a = alarms.message_alarm(call, place_of(call, DEG, {}), video_confidence=0.8)
    assert a is not None
    assert a.alarm_id == "police/sys110#c1" and a.kind == "call" and a.category == "fire"
    assert a.summary == "110报警 火灾: 樊城区人民路12号"
    assert a.details["caller_masked"] == "138****5678"
    assert "caller" not in a.details
    assert a.grid_cell_id == "r1280c4480"

    def video(conf: float) -> Message:
        return msg(wuwang_topic("video", "video", "CAM-1"), {
            "id": "v", "camera_id": "CAM-1", "event": "fire_smoke", "confidence": conf, "lat": 1.0,
            "lon": 2.0})

    assert alarms.message_alarm(video(0.79), NOWHERE, video_confidence=0.8) is None
    hit = alarms.message_alarm(video(0.8), NOWHERE, video_confidence=0.8)
    assert hit is not None and hit.summary.startswith("视频告警 烟火 置信度 0.80")

    report = msg(team_topic("T-1", "report"), {
        "id": "r", "reporter": "张三", "category": "on_scene", "description": "已到达", "lat": 1.0,
        "lon": 2.0})
    r = alarms.message_alarm(report, NOWHERE, video_confidence=0.8)
    assert r is not None and r.kind == "report" and r.network is None and r.details["team_id"] == "T-1"
    assert "new_event" not in r.details  # left out: the command side decides by the team's order
    assert r.summary == "队伍 T-1 上报 on_scene: 已到达"

    status = msg(team_topic("T-1", "status"), {"id": "s", "status": "available"})
    assert alarms.message_alarm(status, NOWHERE, video_confidence=0.8) is None

    # The same call in an exercise: the same alarm, marked, under an id of its own.
    body = encode(to_builtins(call.payload))
    drill = parse_message(exercise_topic("EX-1", wuwang_topic("police", "call", "sys110")), body, NOW)
    d = alarms.message_alarm(drill, place_of(drill, DEG, {}), video_confidence=0.8)
    assert d is not None and d.alarm_id == "ex/EX-1/police/sys110#c1" and d.source == "ex/EX-1/police/sys110"
    assert d.details == {**a.details, "exercise_id": "EX-1"} and "exercise_id" not in a.details
    assert (d.summary, d.kind, d.category, d.ts) == (a.summary, a.kind, a.category, a.ts)


def test_sensor_alarm_summary_and_json() -> None:
    m = msg(wuwang_topic("venue", "sensor", "SEN-1"), {
        "id": "a", "device_id": "SEN-1", "kind": "smoke", "value": 12.3, "unit": "%/m"})
    a = alarms.sensor_alarm(m, NOWHERE, DEFAULT_THRESHOLDS["smoke"])
    assert a.summary == "烟感超限 12.3 %/m"
    dumped = a.to_json()
    assert dumped["ts"] == "2025-05-01T00:00:00Z" and dumped["network"] == "venue"


@pytest.mark.parametrize(("caller", "masked"), [
    ("13812345678", "138****5678"), ("张三", "张*"), ("张三丰", "张*丰"), ("x", "*"), ("", ""),
    ("1234567", "1*****7"), ("+8613812345678", "+86*******5678"),
])
def test_mask_caller(caller: str, masked: str) -> None:
    assert alarms.mask_caller(caller) == masked


def test_thresholds_table_and_overrides() -> None:
    t = alarms.thresholds({"smoke": (8, 4), "pm25": (150, 100)})
    assert t["smoke"] == Threshold(8, 4) and t["pm25"] == Threshold(150, 100)
    assert t["gas"] == Threshold(20, 10) and t["co"] == Threshold(50, 30)
    assert t["water_level"] == Threshold(3.0, 2.7) and t["temperature"] == Threshold(60, 50)
    with pytest.raises(ValueError):
        Threshold(5, 10)


def test_hysteresis_examples() -> None:
    smoke = DEFAULT_THRESHOLDS["smoke"]
    # oscillating around 10: one alarm; clearing needs < 5; then a new crossing raises again
    values = [9.9, 10.0, 9.9, 10.1, 9.0, 11.0, 5.0, 10.2, 4.99, 9.99, 10.0]
    raised, fired = advance(False, values, smoke)
    assert fired == [1, 10] and raised is True
    assert step(True, 4.99, smoke) == (False, False)
    assert step(False, 100.0, smoke) == (True, True)
    assert step(True, 100.0, smoke) == (True, False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(DEFAULT_THRESHOLDS)),
       st.lists(st.floats(min_value=-10, max_value=200, allow_nan=False), max_size=200))
def test_hysteresis_property(kind: str, values: list[float]) -> None:
    t = DEFAULT_THRESHOLDS[kind]
    raised, fired = advance(False, values, t)
    # Upward crossings of the raise level that come after a clear (or the start).
    armed, crossings = True, 0
    for v in values:
        if armed and v >= t.raise_at:
            crossings, armed = crossings + 1, False
        elif v < t.clear_below:
            armed = True
    assert len(fired) <= crossings
    # Never two raises without a clear between them.
    for a, b in itertools.pairwise(fired):
        assert any(v < t.clear_below for v in values[a + 1:b])
    # Every raise is at or above the raise level.
    assert all(values[i] >= t.raise_at for i in fired)
    # The final state says whether the last raise is still standing.
    if fired:
        assert raised == all(v >= t.clear_below for v in values[fired[-1] + 1:])
    else:
        assert raised is False


# --- logging ------------------------------------------------------------------------


def test_bad_payload_log_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.ratelog"), burst=3, window=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelog"):
        logged = [limited.log(logging.WARNING, "bad %d", i) for i in range(100)]
        assert logged.count(True) == 3
        now[0] = 10.0
        assert limited.log(logging.WARNING, "bad again")
    assert len(caplog.records) == 4
    assert caplog.records[-1].getMessage() == "bad again (97 similar messages suppressed)"


def test_truncated_payload() -> None:
    assert truncated(b"abc") == "b'abc'"
    long = truncated(b"\x00" * 1000)
    assert long.endswith("(1000 bytes)") and long.startswith("b'\\x00")
    assert len(long) < 1000


# The row's quick storable check (one pass over flat values) answers as the field-by-field
# ``_check_text`` it stands in for: same accept/reject, same reason.
_row_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),  # NUL, surrogates
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _reason(fn: object, *args: object) -> str | None:
    try:
        fn(*args)  # type: ignore[operator]
    except Unstorable as exc:
        return exc.reason
    return None


@settings(max_examples=200, deadline=None)
@given(unit=_row_values, kind=_row_values,
       extra=st.dictionaries(st.text(max_size=4), _row_values, max_size=3))
def test_quick_row_checks_answer_as_the_field_by_field_check(unit: object, kind: object,
                                                              extra: dict[str, object]) -> None:
    from ingest.rows import _check_payload, _check_text, _json
    from wuwang.contract import SensorReading

    # Any value where text goes (a struct built in code is not validated): the row checks must refuse it.
    p = SensorReading(id="r1", device_id="D1", kind=kind, value=1.0, unit=unit)  # type: ignore[arg-type]

    def by_field(payload: SensorReading) -> None:
        for name in type(payload).__struct_fields__:
            _check_text(getattr(payload, name), name)

    assert _reason(_check_payload, p) == _reason(by_field, p)

    def full_json(value: object, where: str) -> str:
        _check_text(value, where)
        import orjson
        try:
            return orjson.dumps(value).decode()
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise Unstorable(f"{where}: cannot be stored as JSON ({exc})") from None

    assert _reason(_json, extra, "extra fields") == _reason(full_json, extra, "extra fields")
    if _reason(full_json, extra, "extra fields") is None:
        assert _json(extra, "extra fields") == full_json(extra, "extra fields")


@pytest.mark.parametrize(("sent", "kept"), [(True, True), (False, False), ("yes", None), (1, None)])
def test_a_team_reports_new_event_is_a_json_boolean_or_nothing(sent: object, kept: bool | None) -> None:
    report = msg(team_topic("T-1", "report"), {
        "id": "r", "reporter": "张三", "category": "fire", "description": "另一处起火", "lat": 1.0,
        "lon": 2.0, "new_event": sent})
    r = alarms.message_alarm(report, NOWHERE, video_confidence=0.8)
    assert r is not None and r.details.get("new_event") is kept
