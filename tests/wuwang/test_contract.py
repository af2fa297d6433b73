"""MQTT contract v1 (wuwang/contract.py) against DESIGN.md and docs/mqtt-contract.md.

Table-driven: topics, required and optional fields of every feed, types, ranges, ts,
extra fields, size limit, bytes that are not UTF-8 JSON, NaN, duplicate keys, nesting.
Tests marked ``xfail(strict=True)`` expose deviations whose fix is proposed to the
lead (they turn into failures the moment the fix lands: then drop the marker).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from wuwang.contract import (
    INGEST_SUBSCRIPTIONS,
    MAX_PAYLOAD_BYTES,
    PAYLOAD_MODELS,
    CallCategory,
    ContractError,
    EmergencyCall,
    Feed,
    FieldReport,
    Message,
    Network,
    SensorReading,
    TeamPosition,
    TeamStatus,
    TeamStatusUpdate,
    VideoAlert,
    encode,
    parse_message,
    parse_topic,
    payload_fields,
    required_fields,
    team_topic,
    to_builtins,
    topic_exercise_id,
    wuwang_topic,
)
from wuwang.exercises import exercise_topic

RECEIVED = datetime(2025, 3, 12, 2, 0, 0, tzinfo=UTC)


# One valid payload per (topic, model): the base every table below mutates.
CASES: dict[str, tuple[str, type[Any], dict[str, Any]]] = {
    "sensor": (
        "wuwang/v1/venue/sensor/GW-FC-0012",
        SensorReading,
        {
            "id": "s-1",
            "ts": "2025-03-12T09:41:27+08:00",
            "device_id": "SMK-0012-03",
            "kind": "smoke",
            "value": 12.6,
            "unit": "%/m",
            "lat": 32.04215,
            "lon": 112.14403,
        },
    ),
    "video": (
        "wuwang/v1/video/video/CAM-0001",
        VideoAlert,
        {
            "id": "v-1",
            "ts": "2025-03-12T01:52:08.350Z",
            "camera_id": "CAM-0001",
            "event": "fire_smoke",
            "confidence": 0.87,
            "lat": 32.00893,
            "lon": 112.12251,
            "snapshot_url": "https://va.example.cn/snap/1.jpg",
            "bbox": [412, 188, 96, 140],
        },
    ),
    "call": (
        "wuwang/v1/police/call/sys110",
        EmergencyCall,
        {
            "id": "c-1",
            "ts": "2025-03-12T10:05:44+08:00",
            "call_id": "110-20250312-000123",
            "category": "traffic",
            "lat": 32.05128,
            "lon": 112.16734,
            "address": "襄阳市樊城区长虹路与人民路交叉口",
            "description": "两车相撞",
            "caller": "13800001234",
            "priority": 2,
        },
    ),
    "report": (
        "wuwang/v1/community/report/GRID-XC-0417",
        FieldReport,
        {
            "id": "r-1",
            "ts": "2025-03-12T14:20:03+08:00",
            "reporter": "GW-XC-0417",
            "category": "fire_hazard",
            "description": "楼道堆放纸箱",
            "lat": 32.01127,
            "lon": 112.13388,
            "photo_url": "https://grid.example.cn/p/1.jpg",
        },
    ),
    "team-position": (
        "teams/v1/T-FIRE-01/position",
        TeamPosition,
        {
            "id": "p-1",
            "ts": "2025-03-12T02:06:30Z",
            "lat": 32.04877,
            "lon": 112.15902,
            "speed": 11.2,
            "heading": 74.5,
            "seq": 981,
        },
    ),
    "team-status": (
        "teams/v1/T-FIRE-01/status",
        TeamStatusUpdate,
        {
            "id": "st-1",
            "ts": "2025-03-12T10:09:12+08:00",
            "status": "on_scene",
            "incident_id": "INC-20250312-0042",
            "seq": 982,
        },
    ),
    "team-report": (
        "teams/v1/T-FIRE-01/report",
        FieldReport,
        {
            "id": "tr-1",
            "reporter": "T-FIRE-01-M03",
            "category": "on_scene",
            "description": "明火已扑灭",
            "lat": 32.05131,
            "lon": 112.16729,
        },
    ),
}

# DESIGN.md, "The MQTT contract, version 1": what each feed requires and allows.
REQUIRED = {
    "sensor": {"id", "device_id", "kind", "value", "unit"},
    "video": {"id", "camera_id", "event", "confidence", "lat", "lon"},
    "call": {"id", "call_id", "category", "lat", "lon", "address", "description", "caller"},
    "report": {"id", "reporter", "category", "description", "lat", "lon"},
    "team-position": {"id", "lat", "lon"},
    "team-status": {"id", "status"},
    "team-report": {"id", "reporter", "category", "description", "lat", "lon"},
}
OPTIONAL = {
    "sensor": {"ts", "lat", "lon"},
    "video": {"ts", "snapshot_url", "bbox"},
    "call": {"ts", "priority"},
    "report": {"ts", "photo_url"},
    "team-position": {"ts", "speed", "heading", "seq"},
    "team-status": {"ts", "incident_id", "seq"},
    "team-report": {"ts", "photo_url"},
}


def parse(topic: str, payload: bytes | dict[str, Any] | str) -> Message:
    if isinstance(payload, dict):
        payload = encode(payload)
    elif isinstance(payload, str):
        payload = payload.encode()
    return parse_message(topic, payload, RECEIVED)


def reason_of(topic: str, payload: bytes | dict[str, Any] | str) -> str:
    with pytest.raises(ContractError) as info:
        parse(topic, payload)
    assert info.value.reason == str(info.value)
    return info.value.reason


def case(name: str, **changes: Any) -> tuple[str, dict[str, Any]]:
    topic, _, base = CASES[name]
    payload = {**base, **changes}
    return topic, {k: v for k, v in payload.items() if v is not _DROP}


_DROP = object()


# --- topics -------------------------------------------------------------------------


@pytest.mark.parametrize("network", list(Network))
@pytest.mark.parametrize("feed", ["sensor", "video", "call", "report"])
def test_every_network_and_wuwang_feed(network: Network, feed: str) -> None:
    topic = parse_topic(f"wuwang/v1/{network}/{feed}/dev-01.A_b")
    assert (topic.network, topic.feed, topic.source_id) == (network, Feed(feed), "dev-01.A_b")
    assert not topic.is_team
    assert topic.source == f"{network}/dev-01.A_b"


@pytest.mark.parametrize("leaf", ["position", "status", "report"])
def test_team_topics(leaf: str) -> None:
    topic = parse_topic(f"teams/v1/T-FIRE-01/{leaf}")
    assert (topic.network, topic.feed, topic.source_id) == (None, Feed(leaf), "T-FIRE-01")
    assert topic.is_team
    assert topic.source == "team/T-FIRE-01"


def test_topic_builders_round_trip() -> None:
    assert parse_topic(wuwang_topic(Network.POLICE, Feed.CALL, "sys110")).source == "police/sys110"
    assert wuwang_topic("police", "call", "sys110") == "wuwang/v1/police/call/sys110"
    assert team_topic("T1", "status") == "teams/v1/T1/status"
    assert parse_topic(team_topic("T1", "status")).source == "team/T1"


def test_source_id_of_64_characters_is_accepted() -> None:
    assert parse_topic("wuwang/v1/police/call/" + "a" * 64).source_id == "a" * 64
    assert parse_topic("teams/v1/" + "T" * 64 + "/status").source_id == "T" * 64


def test_sources_differ_by_network() -> None:
    # ids are unique per source; the same device name on two networks is two sources
    assert (
        parse_topic("wuwang/v1/venue/sensor/D1").source != parse_topic("wuwang/v1/community/sensor/D1").source
    )


NOT_V1 = "topic is not part of MQTT contract v1"
BAD_SOURCE = "source_id in topic does not match [A-Za-z0-9_.-]{1,64}"
BAD_TEAM = "team id in topic does not match [A-Za-z0-9_.-]{1,64}"


# --- exercise topics (exercise/v1/<exercise_id>/<a contract v1 inbound topic>) --------


@pytest.mark.parametrize("network", list(Network))
@pytest.mark.parametrize("feed", ["sensor", "video", "call", "report"])
def test_exercise_copy_of_every_wuwang_topic(network: Network, feed: str) -> None:
    live = parse_topic(f"wuwang/v1/{network}/{feed}/dev-01")
    topic = parse_topic(f"exercise/v1/EX-1/wuwang/v1/{network}/{feed}/dev-01")
    assert (topic.network, topic.feed, topic.source_id) == (network, Feed(feed), "dev-01")
    assert topic.exercise_id == "EX-1"
    assert live.exercise_id is None
    assert topic.source == f"ex/EX-1/{network}/dev-01"


@pytest.mark.parametrize("leaf", ["position", "status", "report"])
def test_exercise_copy_of_every_team_topic(leaf: str) -> None:
    topic = parse_topic(exercise_topic("EX-20261123-1930-chem", team_topic("T-01", leaf)))
    assert (topic.network, topic.feed, topic.source_id) == (None, Feed(leaf), "T-01")
    assert topic.is_team
    assert topic.exercise_id == "EX-20261123-1930-chem"
    assert topic.source == "ex/EX-20261123-1930-chem/team/T-01"


def test_exercise_sources_never_meet_live_ones_nor_each_other() -> None:
    # A replay republishes recorded messages with their original ids: the ledger and
    # the alarm ids must see them as other sources than the live one, per exercise.
    sources = {
        parse_topic(t).source
        for t in ("wuwang/v1/police/call/sys110", "exercise/v1/A/wuwang/v1/police/call/sys110",
                  "exercise/v1/B/wuwang/v1/police/call/sys110", "teams/v1/T1/status",
                  "exercise/v1/A/teams/v1/T1/status")
    }
    assert len(sources) == 5


def test_exercise_message_parses_like_the_live_one() -> None:
    topic, _, payload = CASES["call"]
    live = parse(topic, payload)
    drill = parse(exercise_topic("EX-1", topic), payload)
    assert drill.payload == live.payload and drill.ts == live.ts and drill.extra == live.extra
    assert drill.topic.exercise_id == "EX-1" and drill.msg_id == live.msg_id
    assert drill.source == f"ex/EX-1/{live.source}"


BAD_EXERCISE = "exercise id in topic does not match [A-Za-z0-9_.-]{1,64}"


@pytest.mark.parametrize(
    ("topic", "reason", "exercise_id"),
    [
        ("exercise/v1/EX 1/wuwang/v1/police/call/sys110", BAD_EXERCISE, None),
        ("exercise/v1//wuwang/v1/police/call/sys110", BAD_EXERCISE, None),
        ("exercise/v1/" + "E" * 65 + "/wuwang/v1/police/call/sys110", BAD_EXERCISE, None),
        ("exercise/v1/演练/teams/v1/T1/status", BAD_EXERCISE, None),
        ("exercise/v1/EX-1\n/teams/v1/T1/status", BAD_EXERCISE, None),
        ("exercise/v1/+/teams/v1/T1/status", BAD_EXERCISE, None),
        ("exercise/v1/EX-1", NOT_V1, None),
        ("exercise/v1/", NOT_V1, None),
        ("exercise/v2/EX-1/wuwang/v1/police/call/sys110", NOT_V1, None),
        ("Exercise/v1/EX-1/wuwang/v1/police/call/sys110", NOT_V1, None),
        ("exercise/v1/EX-1/", NOT_V1, "EX-1"),
        ("exercise/v1/EX-1/wuwang/v2/police/call/sys110", NOT_V1, "EX-1"),
        ("exercise/v1/EX-1/exercise/v1/EX-2/wuwang/v1/police/call/sys110", NOT_V1, "EX-1"),
        ("exercise/v1/EX-1/wuwang/v1/fire/call/sys110", "unknown network 'fire'", "EX-1"),
        ("exercise/v1/EX-1/wuwang/v1/police/call/sys 110", BAD_SOURCE, "EX-1"),
        ("exercise/v1/EX-1/teams/v1/T1/dispatch", "not an inbound team topic: 'dispatch'", "EX-1"),
        ("exercise/v1/EX-1/teams/v1/+/status", BAD_TEAM, "EX-1"),
    ],
)
def test_bad_exercise_topics(topic: str, reason: str, exercise_id: str | None) -> None:
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == reason
    assert reason_of(topic, CASES["call"][2]) == reason
    # a dead letter keeps the exercise id when the prefix itself was readable
    assert topic_exercise_id(topic) == exercise_id


def test_topic_exercise_id_of_live_and_exercise_topics() -> None:
    assert topic_exercise_id("wuwang/v1/police/call/sys110") is None
    assert topic_exercise_id("exercise/v1/EX-1/wuwang/v1/police/call/sys110") == "EX-1"
    assert topic_exercise_id("") is None



BAD_TOPICS = [
    ("wuwang/v2/police/call/sys110", NOT_V1),
    ("wuwang/V1/police/call/sys110", NOT_V1),
    ("wuwang/police/call/sys110", NOT_V1),
    ("wuwang/v1/police/call", NOT_V1),
    ("wuwang/v1/police/call/sys110/extra", NOT_V1),
    ("wuwang/v1/police/call/sys110/", NOT_V1),
    ("/wuwang/v1/police/call/sys110", NOT_V1),
    ("WUWANG/v1/police/call/sys110", NOT_V1),
    ("", NOT_V1),
    ("#", NOT_V1),
    ("teams/v2/T1/status", NOT_V1),
    ("teams/v1/T1/status/x", NOT_V1),
    ("exercise/wuwang/v1/police/call/sys110", NOT_V1),
    ("wuwang/v1/fire/call/sys110", "unknown network 'fire'"),
    ("wuwang/v1/Police/call/sys110", "unknown network 'Police'"),
    ("wuwang/v1//call/sys110", "unknown network ''"),
    ("wuwang/v1/+/call/sys110", "unknown network '+'"),
    ("wuwang/v1/police/alarm/sys110", "unknown feed 'alarm'"),
    ("wuwang/v1/police/position/sys110", "unknown feed 'position'"),
    ("wuwang/v1/police/status/sys110", "unknown feed 'status'"),
    ("wuwang/v1/police/Call/sys110", "unknown feed 'Call'"),
    ("wuwang/v1/police/call/", BAD_SOURCE),
    ("wuwang/v1/police/call/" + "a" * 65, BAD_SOURCE),
    ("wuwang/v1/police/call/sys 110", BAD_SOURCE),
    ("wuwang/v1/police/call/sys+110", BAD_SOURCE),
    ("wuwang/v1/police/call/+", BAD_SOURCE),
    ("wuwang/v1/police/call/#", BAD_SOURCE),
    ("wuwang/v1/police/call/网格员", BAD_SOURCE),
    ("wuwang/v1/police/call/sys110\x00", BAD_SOURCE),
    ("wuwang/v1/police/call/ｓｙｓ110", BAD_SOURCE),  # full-width letters are not ASCII
    ("teams/v1/T1/dispatch", "not an inbound team topic: 'dispatch'"),
    ("teams/v1/T1/ack", "not an inbound team topic: 'ack'"),
    ("teams/v1/T1/sensor", "not an inbound team topic: 'sensor'"),
    ("teams/v1/T1/", "not an inbound team topic: ''"),
    ("teams/v1//status", BAD_TEAM),
    ("teams/v1/" + "T" * 65 + "/status", BAD_TEAM),
    ("teams/v1/+/status", BAD_TEAM),
    ("teams/v1/队伍1/position", BAD_TEAM),
]


@pytest.mark.parametrize(("topic", "reason"), BAD_TOPICS)
def test_bad_topics(topic: str, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == reason
    # and through parse_message, with a payload that is valid for any feed
    assert reason_of(topic, CASES["call"][2]) == reason


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("wuwang/v1/police/call/sys110\n", BAD_SOURCE),
        ("teams/v1/T1\n/status", BAD_TEAM),
    ],
)
def test_trailing_newline_in_source_id_is_refused(topic: str, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == reason


def test_long_topic_levels_are_capped_in_the_reason() -> None:
    reason = reason_of("wuwang/v1/" + "x" * 10_000 + "/call/sys110", CASES["call"][2])
    assert len(reason) < 100


def test_ingest_subscribes_to_inbound_topics_only() -> None:
    assert set(INGEST_SUBSCRIPTIONS) == {
        "wuwang/v1/+/+/+",
        "teams/v1/+/position",
        "teams/v1/+/status",
        "teams/v1/+/report",
        "exercise/v1/+/wuwang/v1/+/+/+",
        "exercise/v1/+/teams/v1/+/position",
        "exercise/v1/+/teams/v1/+/status",
        "exercise/v1/+/teams/v1/+/report",
    }
    assert not any(s.endswith(("/dispatch", "/ack", "/#")) for s in INGEST_SUBSCRIPTIONS)


# --- every feed: valid payloads, required and optional fields ---------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_valid_payload_parses(name: str) -> None:
    topic, model, payload = CASES[name]
    msg = parse(topic, payload)
    assert isinstance(msg.payload, model)
    assert msg.msg_id == payload["id"]
    assert msg.feed == parse_topic(topic).feed
    assert msg.source == parse_topic(topic).source
    assert msg.received_at == RECEIVED
    assert msg.extra == {}
    dumped = to_builtins(msg.payload)
    assert dumped == payload


@pytest.mark.parametrize("name", list(CASES))
def test_required_and_optional_fields_are_those_of_design(name: str) -> None:
    _, model, _ = CASES[name]
    required = set(required_fields(model))
    optional = set(payload_fields(model)) - required
    assert required == REQUIRED[name]
    assert optional == OPTIONAL[name]


def test_payload_models_cover_every_feed() -> None:
    assert set(PAYLOAD_MODELS) == set(Feed)
    assert PAYLOAD_MODELS[Feed.REPORT] is FieldReport  # the team report shares the report model


@pytest.mark.parametrize(("name", "field"), [(n, f) for n in CASES for f in sorted(REQUIRED[n])])
def test_missing_required_field_is_named(name: str, field: str) -> None:
    topic, payload = case(name, **{field: _DROP})
    assert f"missing required field {field}" in reason_of(topic, payload)


@pytest.mark.parametrize(("name", "field"), [(n, f) for n in CASES for f in sorted(REQUIRED[n])])
def test_required_field_must_not_be_null(name: str, field: str) -> None:
    topic, payload = case(name, **{field: None})
    assert reason_of(topic, payload).startswith(f"{field}: ")


@pytest.mark.parametrize(("name", "field"), [(n, f) for n in CASES for f in sorted(OPTIONAL[n])])
def test_optional_field_may_be_left_out_or_null(name: str, field: str) -> None:
    # a sensor's lat and lon go together (test_sensor_lat_lon_together): leave both out
    fields = ("lat", "lon") if name == "sensor" and field in ("lat", "lon") else (field,)
    for value in (_DROP, None):
        topic, payload = case(name, **dict.fromkeys(fields, value))
        msg = parse(topic, payload)
        assert getattr(msg.payload, field) is None
        assert field not in msg.extra


def test_empty_object_lists_three_reasons_and_counts_the_rest() -> None:
    assert reason_of("wuwang/v1/police/call/sys110", "{}") == (
        "missing required field id; missing required field call_id; missing required field category (+5 more)"
    )


@pytest.mark.parametrize(
    ("lat", "lon", "ok"),
    [
        (_DROP, _DROP, True),
        (None, None, True),
        (32.0, 112.0, True),
        (32.0, _DROP, False),
        (_DROP, 112.0, False),
        (None, 112.0, False),
        (32.0, None, False),
    ],
)
def test_sensor_lat_lon_together(lat: Any, lon: Any, ok: bool) -> None:
    topic, payload = case("sensor", lat=lat, lon=lon)
    if ok:
        parse(topic, payload)
    else:
        assert reason_of(topic, payload) == "lat and lon must be given together"


@pytest.mark.parametrize("category", list(CallCategory))
def test_every_call_category(category: CallCategory) -> None:
    topic, payload = case("call", category=str(category))
    assert parse(topic, payload).payload.category == category  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", list(TeamStatus))
def test_every_team_status(status: TeamStatus) -> None:
    topic, payload = case("team-status", status=str(status))
    assert parse(topic, payload).payload.status == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("call", "category", "Traffic"),
        ("call", "category", "traffic_accident"),
        ("call", "category", ""),
        ("team-status", "status", "ON_SCENE"),
        ("team-status", "status", "on scene"),
        ("team-status", "status", "busy"),
    ],
)
def test_enumerations_are_exact(name: str, field: str, value: str) -> None:
    topic, payload = case(name, **{field: value})
    assert reason_of(topic, payload).startswith(f"{field}: Input should be ")


def test_team_report_uses_the_report_model_and_team_source() -> None:
    topic, _, payload = CASES["team-report"]
    msg = parse(topic, payload)
    assert isinstance(msg.payload, FieldReport)
    assert msg.topic.network is None
    assert msg.source == "team/T-FIRE-01"


# --- wrong types --------------------------------------------------------------------

NOT_NUMBER = "Input should be a valid number"
NOT_INT = "Input should be a valid integer"
NOT_STR = "Input should be a valid string"

WRONG_TYPES = [
    ("team-position", "lat", "32.04", NOT_NUMBER),
    ("team-position", "lon", "112.1", NOT_NUMBER),
    ("team-position", "lat", True, NOT_NUMBER),
    ("team-position", "lon", False, NOT_NUMBER),
    ("team-position", "lat", [32.0], NOT_NUMBER),
    ("team-position", "lat", {"v": 32.0}, NOT_NUMBER),
    ("team-position", "speed", "11.2", NOT_NUMBER),
    ("team-position", "heading", True, NOT_NUMBER),
    ("team-position", "seq", "981", NOT_INT),
    ("team-position", "seq", 981.0, NOT_INT),
    ("team-position", "seq", 981.5, NOT_INT),
    ("team-position", "seq", True, NOT_INT),
    ("team-status", "seq", "1", NOT_INT),
    ("sensor", "value", "12.6", NOT_NUMBER),
    ("sensor", "value", True, NOT_NUMBER),
    ("sensor", "value", None, NOT_NUMBER),
    ("video", "confidence", "0.87", NOT_NUMBER),
    ("video", "confidence", False, NOT_NUMBER),
    ("video", "bbox", "412,188,96,140", "Input should be a valid array"),
    ("video", "bbox", [412, 188, 96, "140"], NOT_NUMBER),
    ("call", "priority", "2", NOT_INT),
    ("call", "priority", 2.0, NOT_INT),
    ("call", "priority", True, NOT_INT),
    ("call", "lat", "32.05", NOT_NUMBER),
    ("call", "id", 123, NOT_STR),
    ("call", "call_id", 110, NOT_STR),
    ("call", "caller", 13800001234, NOT_STR),
    ("call", "address", None, NOT_STR),
    ("call", "description", ["x"], NOT_STR),
    ("call", "category", 1, "Input should be 'criminal'"),
    ("sensor", "device_id", 7, NOT_STR),
    ("sensor", "kind", True, NOT_STR),
    ("sensor", "unit", 1.5, NOT_STR),
    ("video", "camera_id", 1, NOT_STR),
    ("video", "event", {"name": "fire"}, NOT_STR),
    ("video", "snapshot_url", 5, NOT_STR),
    ("report", "reporter", True, NOT_STR),
    ("report", "category", 3, NOT_STR),
    ("report", "photo_url", [], NOT_STR),
    ("team-status", "status", 1, "Input should be 'available'"),
    ("team-status", "incident_id", 42, NOT_STR),
    ("team-status", "ts", 1741743687, NOT_STR),
]


@pytest.mark.parametrize(("name", "field", "value", "message"), WRONG_TYPES)
def test_wrong_types_are_refused(name: str, field: str, value: Any, message: str) -> None:
    topic, payload = case(name, **{field: value})
    reason = reason_of(topic, payload)
    assert reason.startswith(f"{field}"), reason
    assert message in reason, reason


@pytest.mark.parametrize("value", [32, 0, -0, 90])
def test_an_integer_is_a_number(value: int) -> None:
    topic, payload = case("team-position", lat=value)
    assert parse(topic, payload).payload.lat == value  # type: ignore[attr-defined]


# --- ranges and lengths ---------------------------------------------------------------

RANGE_CASES = [
    ("team-position", "lat", 90.0001, "lat: Input should be less than or equal to 90"),
    ("team-position", "lat", -90.0001, "lat: Input should be greater than or equal to -90"),
    ("team-position", "lon", -180.1, "lon: Input should be greater than or equal to -180"),
    ("team-position", "lon", 180.0001, "lon: Input should be less than or equal to 180"),
    ("video", "lat", 1000, "lat: Input should be less than or equal to 90"),
    ("call", "lon", 540.0, "lon: Input should be less than or equal to 180"),
    ("report", "lat", -91, "lat: Input should be greater than or equal to -90"),
    ("sensor", "lat", 90.5, "lat: Input should be less than or equal to 90"),
    ("video", "confidence", 1.01, "confidence: Input should be less than or equal to 1"),
    ("video", "confidence", 87, "confidence: Input should be less than or equal to 1"),
    ("video", "confidence", -0.01, "confidence: Input should be greater than or equal to 0"),
    ("team-position", "speed", -1, "speed: Input should be greater than or equal to 0"),
    ("team-position", "speed", 150.5, "speed: Input should be less than or equal to 150"),
    ("team-position", "heading", 360.1, "heading: Input should be less than or equal to 360"),
    ("team-position", "heading", -0.1, "heading: Input should be greater than or equal to 0"),
    ("team-position", "seq", -1, "seq: Input should be greater than or equal to 0"),
    ("team-status", "seq", -1, "seq: Input should be greater than or equal to 0"),
    ("call", "priority", 0, "priority: Input should be greater than or equal to 1"),
    ("call", "priority", 5, "priority: Input should be less than or equal to 4"),
    ("call", "id", "x" * 65, "id: String should have at most 64 characters"),
    ("call", "id", "", "id: String should have at least 1 character"),
    ("call", "call_id", "x" * 65, "call_id: String should have at most 64 characters"),
    ("call", "address", "地" * 501, "address: String should have at most 500 characters"),
    ("call", "description", "x" * 4001, "description: String should have at most 4000 characters"),
    ("call", "caller", "1" * 65, "caller: String should have at most 64 characters"),
    ("sensor", "device_id", "", "device_id: String should have at least 1 character"),
    ("sensor", "unit", "", "unit: String should have at least 1 character"),
    ("sensor", "unit", "u" * 17, "unit: String should have at most 16 characters"),
    ("sensor", "kind", "Smoke", "kind: String should match pattern '^[a-z][a-z0-9_]{0,31}$'"),
    ("sensor", "kind", "water level", "kind: String should match pattern"),
    ("sensor", "kind", "smoke\n", "kind: String should match pattern"),
    ("sensor", "kind", "1smoke", "kind: String should match pattern"),
    ("sensor", "kind", "k" * 33, "kind: String should match pattern"),
    ("video", "event", "Fire-Smoke", "event: String should match pattern"),
    ("video", "bbox", [1, 2, 3], "bbox: List should have at least 4 items"),
    ("video", "bbox", [1, 2, 3, 4, 5], "bbox: List should have at most 4 items"),
    ("video", "snapshot_url", "h" * 2049, "snapshot_url: String should have at most 2048 characters"),
    ("report", "photo_url", "h" * 2049, "photo_url: String should have at most 2048 characters"),
    ("report", "category", "", "category: String should have at least 1 character"),
    ("report", "category", "c" * 65, "category: String should have at most 64 characters"),
    ("report", "reporter", "r" * 65, "reporter: String should have at most 64 characters"),
    ("report", "description", "x" * 4001, "description: String should have at most 4000 characters"),
    ("team-status", "incident_id", "i" * 65, "incident_id: String should have at most 64 characters"),
]


@pytest.mark.parametrize(("name", "field", "value", "reason"), RANGE_CASES)
def test_out_of_range(name: str, field: str, value: Any, reason: str) -> None:
    topic, payload = case(name, **{field: value})
    assert reason in reason_of(topic, payload)


BOUNDARY_CASES = [
    ("team-position", "lat", 90),
    ("team-position", "lat", -90),
    ("team-position", "lon", 180),
    ("team-position", "lon", -180),
    ("video", "confidence", 0),
    ("video", "confidence", 1),
    ("team-position", "speed", 0),
    ("team-position", "speed", 150),
    ("team-position", "heading", 0),
    ("team-position", "heading", 360),
    ("team-position", "seq", 0),
    ("call", "priority", 1),
    ("call", "priority", 4),
    ("call", "id", "x" * 64),
    ("call", "id", "中" * 64),
    ("call", "address", ""),
    ("call", "description", ""),
    ("call", "caller", ""),
    ("report", "description", ""),
    ("sensor", "kind", "k" * 32),
    ("sensor", "kind", "co2"),
    ("sensor", "unit", "°C"),
    ("sensor", "value", -1e300),
    ("video", "bbox", [-5, 0, 1.5, 2]),
    ("team-position", "seq", 2**63 - 1),
]


@pytest.mark.parametrize(("name", "field", "value"), BOUNDARY_CASES)
def test_boundaries_are_accepted(name: str, field: str, value: Any) -> None:
    topic, payload = case(name, **{field: value})
    assert getattr(parse(topic, payload).payload, field) == value


@pytest.mark.parametrize("name", ["team-position", "team-status"])
def test_seq_fits_a_bigint(name: str) -> None:
    topic, payload = case(name, seq=2**63)
    assert reason_of(topic, payload).startswith("seq: Input should be less than or equal to")


# --- ts ----------------------------------------------------------------------------

CST = timezone(timedelta(hours=8))


def test_missing_ts_means_receipt_time_marked() -> None:
    topic, payload = case("team-status", ts=_DROP)
    msg = parse(topic, payload)
    assert msg.ts == RECEIVED
    assert msg.ts is msg.received_at
    assert msg.ts_from_receipt is True
    assert msg.payload.ts is None


def test_null_ts_means_receipt_time_marked() -> None:
    topic, payload = case("sensor", ts=None)
    msg = parse(topic, payload)
    assert (msg.ts, msg.ts_from_receipt) == (RECEIVED, True)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2025-03-12T09:41:27+08:00", datetime(2025, 3, 12, 9, 41, 27, tzinfo=CST)),
        ("2025-03-12T01:41:27Z", datetime(2025, 3, 12, 1, 41, 27, tzinfo=UTC)),
        ("2025-03-12T01:41:27+00:00", datetime(2025, 3, 12, 1, 41, 27, tzinfo=UTC)),
        ("2025-03-12T01:41:27-00:00", datetime(2025, 3, 12, 1, 41, 27, tzinfo=UTC)),
        (
            "2025-03-11T20:41:27-05:00",
            datetime(2025, 3, 11, 20, 41, 27, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("2025-03-12T09:41:27.350+08:00", datetime(2025, 3, 12, 9, 41, 27, 350_000, tzinfo=CST)),
        ("2025-03-12T09:41:27.123456789+08:00", datetime(2025, 3, 12, 9, 41, 27, 123_456, tzinfo=CST)),
        ("2025-03-12 09:41:27+08:00", datetime(2025, 3, 12, 9, 41, 27, tzinfo=CST)),  # tolerated
        ("2024-02-29T23:59:59+08:00", datetime(2024, 2, 29, 23, 59, 59, tzinfo=CST)),
    ],
)
def test_ts_with_offset_is_the_message_time(ts: str, expected: datetime) -> None:
    topic, payload = case("team-status", ts=ts)
    msg = parse(topic, payload)
    assert msg.ts == expected
    assert msg.ts.utcoffset() == expected.utcoffset()
    assert msg.ts_from_receipt is False
    assert msg.payload.ts == ts  # kept as sent


NO_OFFSET = "ts: ts must carry a UTC offset (e.g. +08:00 or Z)"
NOT_RFC3339 = "ts: ts must be an RFC 3339 date-time"


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("2025-03-12T09:41:27", NO_OFFSET),
        ("2025-03-12T09:41:27.350", NO_OFFSET),
        ("2025-03-12 09:41:27", NO_OFFSET),
        ("2025-03-12", NOT_RFC3339),
        ("20250312", NOT_RFC3339),
        ("09:41:27+08:00", NOT_RFC3339),
        ("", NOT_RFC3339),
        ("yesterday", NOT_RFC3339),
        ("garbage T garbage", NOT_RFC3339),
        ("2025-13-01T00:00:00Z", NOT_RFC3339),
        ("2025-02-30T00:00:00Z", NOT_RFC3339),
        ("2025-03-12T24:00:00Z", NOT_RFC3339),
        ("2025-03-12T23:59:60Z", NOT_RFC3339),  # leap second: documented as refused
        ("2025-03-12T09:41:27+24:00", NOT_RFC3339),
        ("2025-03-12X09:41:27+08:00", NOT_RFC3339),
        ("２０２５-03-12T09:41:27+08:00", NOT_RFC3339),
        ("1741743687", NOT_RFC3339),
        ("2025-03-12T09:41:27+08:00 ", NOT_RFC3339),
    ],
)
def test_bad_ts(ts: str, reason: str) -> None:
    topic, payload = case("team-status", ts=ts)
    assert reason_of(topic, payload) == reason


@pytest.mark.parametrize("ts", [1741743687, 1741743687.5, True, ["2025-03-12T09:41:27Z"], {}])
def test_ts_must_be_a_string(ts: Any) -> None:
    topic, payload = case("team-status", ts=ts)
    assert reason_of(topic, payload) == "ts: Input should be a valid string"


@pytest.mark.parametrize(
    "ts",
    [
        "2025-03-12T09:41+08:00",  # no seconds
        "2025-03-12T09+08:00",  # hour only
        "20250312T094127+0800",  # ISO 8601 basic format
        "2025-W11-3T09:41:27+08:00",  # ISO week date
        "2025-03-12T09:41:27+08",  # offset without minutes
        "2025-03-12T09:41:27+08:00:30",  # offset with seconds
        "2025-03-12T09:41:27,350+08:00",  # decimal comma
    ],
)
def test_iso8601_forms_outside_rfc3339_are_refused(ts: str) -> None:
    topic, payload = case("team-status", ts=ts)
    assert reason_of(topic, payload) == NOT_RFC3339


def test_lower_case_t_and_z_are_rfc3339() -> None:
    # RFC 3339 section 5.6: "T" and "Z" may alternatively be lower case
    topic, payload = case("team-status", ts="2025-03-12t01:41:27z")
    assert parse(topic, payload).ts == datetime(2025, 3, 12, 1, 41, 27, tzinfo=UTC)


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])
def test_ts_without_utc_equivalent_is_refused(ts: str) -> None:
    topic, payload = case("team-status", ts=ts)
    assert reason_of(topic, payload) == NOT_RFC3339


# --- extra fields ----------------------------------------------------------------------


def test_unknown_fields_are_kept_in_extra() -> None:
    extra = {
        "model_version": "fs-3.2.1",
        "channel": 4,
        "nested": {"a": [1, 2.5, None, True, "文字"], "b": {}},
        "厂商字段": "保留",
        "_private": 1,
        "model_config": "not pydantic's",
        "": "empty key",
    }
    topic, payload = case("video", **extra)
    msg = parse(topic, payload)
    assert msg.extra == extra
    assert not set(extra) & set(payload_fields(VideoAlert))
    assert msg.payload.camera_id == "CAM-0001"  # type: ignore[attr-defined]


def test_declared_fields_never_land_in_extra() -> None:
    for name, (topic, _, payload) in CASES.items():
        assert parse(topic, payload).extra == {}, name


def test_message_and_payload_are_frozen() -> None:
    topic, _, payload = CASES["call"]
    msg = parse(topic, payload)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.ts = RECEIVED  # type: ignore[misc]
    with pytest.raises(AttributeError):
        msg.payload.id = "other"  # type: ignore[misc]


# --- size, bytes, JSON ---------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid team-status payload of exactly ``size`` bytes (an extra field pads it)."""
    head = b'{"id":"big","status":"available","pad":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_payload_of_exactly_the_limit_is_read() -> None:
    payload = _padded(MAX_PAYLOAD_BYTES)
    assert len(payload) == MAX_PAYLOAD_BYTES == 65536
    assert parse("teams/v1/T1/status", payload).extra["pad"].startswith("x")


def test_oversized_payload_is_refused_with_its_size() -> None:
    payload = _padded(MAX_PAYLOAD_BYTES + 1)
    orjson.loads(payload)  # valid JSON: refused for its size alone
    assert reason_of("teams/v1/T1/status", payload) == "payload of 65537 bytes exceeds 65536"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("teams/v1/T1/dispatch", b"\xff" * (MAX_PAYLOAD_BYTES + 1)),  # bad topic, bad bytes
        ("nonsense", b"[" * (10 * MAX_PAYLOAD_BYTES)),
    ],
)
def test_size_is_checked_before_anything_else(topic: str, payload: bytes) -> None:
    assert reason_of(topic, payload) == f"payload of {len(payload)} bytes exceeds 65536"


BAD_JSON = "not valid UTF-8 JSON"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id":"a\xff","status":"available"}',  # 0xFF is never UTF-8
        b'{"id":"a\x80","status":"available"}',  # lone continuation byte
        b'{"id":"\xc0\xaf","status":"available"}',  # overlong encoding of "/"
        b'{"id":"\xe4\xb8","status":"available"}',  # truncated 3-byte sequence
        b'{"id":"\xed\xa0\x80","status":"available"}',  # encoded surrogate
        b'{"id":"\\ud800","status":"available"}',  # lone surrogate escape
        b'\xef\xbb\xbf{"id":"a","status":"available"}',  # UTF-8 byte-order mark
        '{"id":"a","status":"available"}'.encode("utf-16"),
        '{"id":"队伍","status":"available"}'.encode("gbk"),
        b"",
        b"   ",
        b"{",
        b'{"id":"a","status":"available",}',
        b'{"id":"a","status":"available"} {}',
        b"{'id':'a','status':'available'}",
        b'{id:"a",status:"available"}',
        b'{"id":"a","status":"available"} // comment',
        b"\x00",
    ],
)
def test_unreadable_bytes(payload: bytes) -> None:
    assert reason_of("teams/v1/T1/status", payload).startswith(BAD_JSON)


def test_escaped_unicode_is_fine() -> None:
    msg = parse("teams/v1/T1/status", b'{"id":"\\u961f\\ud83d\\ude92","status":"available"}')
    assert msg.msg_id == "队🚒"


@pytest.mark.parametrize(
    "payload", ["[]", '[{"id":"a","status":"available"}]', '"a"', "null", "0", "1.5", "-1", "true", "false"]
)
def test_payload_must_be_an_object(payload: str) -> None:
    assert reason_of("teams/v1/T1/status", payload) == "payload is not a JSON object"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize("field", ["lat", "lon"])
def test_non_finite_numbers_in_fields_are_refused(token: str, field: str) -> None:
    payload = {"id": "p", "lat": 1.0, "lon": 1.0}
    text = encode(payload).decode().replace(f'"{field}":1.0', f'"{field}":{token}')
    assert reason_of("teams/v1/T1/position", text) == f"{field}: Input should be a finite number"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("sensor", '"value":NaN'),
        ("video", '"confidence":NaN'),
        ("video", '"bbox":[1,2,3,Infinity]'),
        ("team-position", '"speed":Infinity'),
        ("team-position", '"heading":NaN'),
    ],
)
def test_non_finite_numbers_in_any_numeric_field(name: str, text: str) -> None:
    topic, _, payload = CASES[name]
    raw = encode(payload)[:-1] + b"," + text.encode() + b"}"  # a repeated key: the last wins
    assert "Input should be a finite number" in reason_of(topic, raw)


def test_nan_in_a_string_field_is_a_wrong_type() -> None:
    assert (
        reason_of("teams/v1/T1/status", '{"id":NaN,"status":"available"}')
        == "id: Input should be a valid string"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"x":NaN', "NaN and Infinity are not JSON numbers"),
        ('"x":Infinity', "NaN and Infinity are not JSON numbers"),
        ('"x":{"y":[1,-Infinity]}', "NaN and Infinity are not JSON numbers"),
        ('"x":1e400', "NaN and Infinity are not JSON numbers"),
        ('"x":"a\\u0000b"', "text must not contain U+0000"),
        ('"x\\u0000":1', "text must not contain U+0000"),
        ('"x":100000000000000000000', "integer out of range (64 bits)"),
        ('"x":-9223372036854775809', "integer out of range (64 bits)"),
    ],
)
def test_unstorable_values_in_extra_fields_are_refused(text: str, reason: str) -> None:
    raw = '{"id":"a","status":"available",' + text + "}"
    assert reason_of("teams/v1/T1/status", raw) == reason


@pytest.mark.parametrize("field", ["id", "description", "caller", "address"])
def test_nul_in_declared_text_is_refused(field: str) -> None:
    topic, payload = case("call", **{field: "a\x00b"})
    assert reason_of(topic, payload) == "text must not contain U+0000"


def test_whatever_is_accepted_can_be_encoded_again() -> None:
    # extra values the ingest stores must survive encode() (orjson): 64-bit integers do
    raw = '{"id":"a","status":"available","big":18446744073709551615,"neg":-9223372036854775808}'
    msg = parse("teams/v1/T1/status", raw)
    assert orjson.loads(encode(msg.extra)) == {"big": 2**64 - 1, "neg": -(2**63)}


# --- duplicate keys (documented: the last occurrence wins, not refused) -----------------


def test_duplicate_declared_key_last_wins() -> None:
    msg = parse("teams/v1/T1/status", '{"id":"first","status":"available","id":"second"}')
    assert msg.msg_id == "second"


def test_duplicate_extra_key_last_wins() -> None:
    msg = parse("teams/v1/T1/status", '{"id":"a","status":"available","x":1,"x":2}')
    assert msg.extra == {"x": 2}


def test_duplicate_key_is_validated_on_its_last_value() -> None:
    raw = '{"id":"a","status":"available","ts":"2025-03-12T09:41:27+08:00","ts":"noon"}'
    assert reason_of("teams/v1/T1/status", raw) == NOT_RFC3339
    raw = '{"id":"a","status":"busy","status":"available"}'
    assert parse("teams/v1/T1/status", raw).payload.status == "available"  # type: ignore[attr-defined]


# --- nesting: never anything but a Message or a ContractError ------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "[" * 10_000,  # never closed
        '[{"a":' * 3_000 + "0" + "}]" * 3_000,
    ],
)
def test_deep_nesting_is_refused_cleanly(extra: str) -> None:
    raw = '{"id":"a","status":"available","deep":' + extra + "}"
    assert len(raw) <= MAX_PAYLOAD_BYTES
    assert reason_of("teams/v1/T1/status", raw).startswith(BAD_JSON)


def test_moderate_nesting_is_kept() -> None:
    raw = '{"id":"a","status":"available","deep":' + "[" * 150 + "]" * 150 + "}"
    msg = parse("teams/v1/T1/status", raw)
    depth, node = 0, msg.extra["deep"]
    while node:
        depth, node = depth + 1, node[0]
    assert depth == 149


# --- encode ----------------------------------------------------------------------------


def test_encode_writes_utf8_and_round_trips() -> None:
    topic, _, payload = CASES["call"]
    raw = encode(payload)
    assert "襄阳".encode() in raw  # UTF-8, not \\u escapes
    assert to_builtins(parse(topic, raw).payload) == payload
