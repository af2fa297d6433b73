"""Property tests of the MQTT contract (hypothesis).

- Whatever arrives (any bytes, any topic), parse_message returns a Message or raises
  ContractError: never anything else, so a bad message can only end in the
  dead-letter store, never stop the ingest.
- Valid payloads, generated from each feed's fields and ranges, parse, round-trip
  through encode, keep their extra fields and validate against the exported schema.
- Valid payloads with a required key dropped or a value of the wrong type are refused.
- Exercise topics (exercise/v1/<exercise_id>/<v1 topic>) read as their live topic,
  marked with the exercise, under a source key no live topic and no other exercise has;
  a bad exercise id is refused.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wuwang.contract import (
    MAX_PAYLOAD_BYTES,
    CallCategory,
    ContractError,
    Feed,
    Message,
    Network,
    TeamStatus,
    Topic,
    encode,
    parse_message,
    parse_topic,
    to_builtins,
    topic_exercise_id,
)
from wuwang.exercises import EXERCISE_ID_RE, exercise_topic

RECEIVED = datetime(2025, 3, 12, 2, 0, 0, tzinfo=UTC)
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


VALIDATORS = {
    name: _validator(name) for name in ("sensor", "video", "call", "report", "team-position", "team-status")
}


def parse_or_refuse(topic: str, payload: bytes) -> Message | None:
    """The property every input must have: a Message, or a ContractError with a reason."""
    try:
        return parse_message(topic, payload, RECEIVED)
    except ContractError as exc:
        refused = exc
    assert isinstance(refused.reason, str)
    assert refused.reason
    assert len(refused.reason) < 1000  # stored in the dead-letter row; never the whole payload
    return None


# --- building blocks -----------------------------------------------------------------

SOURCE_CHARS = string.ascii_letters + string.digits + "_.-"
source_ids = st.text(SOURCE_CHARS, min_size=1, max_size=64)
exercise_ids = st.text(SOURCE_CHARS, min_size=1, max_size=64)
# what JSON text can carry: UTF-8 encodable (no lone surrogates), and no U+0000
chars = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.text(chars, max_size=40)
identifiers = st.text(chars, min_size=1, max_size=64)
snake = st.from_regex(r"\A[a-z][a-z0-9_]{0,31}\Z")
latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)
finite = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
    offset = draw(st.integers(-14 * 60, 14 * 60))
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    value = aware.isoformat(timespec=spec)
    if offset == 0 and draw(st.booleans()):
        value = value.removesuffix("+00:00") + "Z"
    return value


json_scalars = st.one_of(st.none(), st.booleans(), int64, finite, text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def payloads(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    base = {"id": identifiers, **required}
    return st.fixed_dictionaries(base, optional={"ts": rfc3339(), **optional})


SENSOR_FIELDS = {
    "device_id": identifiers,
    "kind": snake,
    "value": finite,
    "unit": st.text(chars, min_size=1, max_size=16),
}


@st.composite
def sensor_payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload = draw(payloads(SENSOR_FIELDS, {}))
    if draw(st.booleans()):  # lat and lon together, or neither
        payload["lat"], payload["lon"] = draw(latitudes), draw(longitudes)
    return payload


def _video() -> st.SearchStrategy[dict[str, Any]]:
    return payloads(
        {
            "camera_id": identifiers,
            "event": snake,
            "confidence": st.floats(0, 1),
            "lat": latitudes,
            "lon": longitudes,
        },
        {
            "snapshot_url": st.text(chars, max_size=100).map(lambda s: "https://x.cn/" + s),
            "bbox": st.lists(finite, min_size=4, max_size=4),
        },
    )


def _call() -> st.SearchStrategy[dict[str, Any]]:
    return payloads(
        {
            "call_id": identifiers,
            "category": st.sampled_from([str(c) for c in CallCategory]),
            "lat": latitudes,
            "lon": longitudes,
            "address": text,
            "description": text,
            "caller": st.text(chars, max_size=64),
        },
        {"priority": st.integers(1, 4)},
    )


def _report() -> st.SearchStrategy[dict[str, Any]]:
    return payloads(
        {
            "reporter": identifiers,
            "category": identifiers,
            "description": text,
            "lat": latitudes,
            "lon": longitudes,
        },
        {"photo_url": st.just("https://grid.example.cn/p.jpg")},
    )


def _position() -> st.SearchStrategy[dict[str, Any]]:
    return payloads(
        {"lat": latitudes, "lon": longitudes},
        {"speed": st.floats(0, 150), "heading": st.floats(0, 360), "seq": st.integers(0, 2**63 - 1)},
    )


def _status() -> st.SearchStrategy[dict[str, Any]]:
    return payloads(
        {"status": st.sampled_from([str(s) for s in TeamStatus])},
        {"incident_id": identifiers, "seq": st.integers(0, 2**63 - 1)},
    )


# (topic strategy, payload strategy, schema name, required keys)
FEEDS: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[dict[str, Any]], str]] = {
    "sensor": (
        st.builds("wuwang/v1/{}/sensor/{}".format, st.sampled_from(list(Network)), source_ids),
        sensor_payloads(),
        "sensor",
    ),
    "video": (
        st.builds("wuwang/v1/{}/video/{}".format, st.sampled_from(list(Network)), source_ids),
        _video(),
        "video",
    ),
    "call": (
        st.builds("wuwang/v1/{}/call/{}".format, st.sampled_from(list(Network)), source_ids),
        _call(),
        "call",
    ),
    "report": (
        st.builds("wuwang/v1/{}/report/{}".format, st.sampled_from(list(Network)), source_ids),
        _report(),
        "report",
    ),
    "team-report": (st.builds("teams/v1/{}/report".format, source_ids), _report(), "report"),
    "team-position": (st.builds("teams/v1/{}/position".format, source_ids), _position(), "team-position"),
    "team-status": (st.builds("teams/v1/{}/status".format, source_ids), _status(), "team-status"),
}
REQUIRED = {
    "sensor": ["id", "device_id", "kind", "value", "unit"],
    "video": ["id", "camera_id", "event", "confidence", "lat", "lon"],
    "call": ["id", "call_id", "category", "lat", "lon", "address", "description", "caller"],
    "report": ["id", "reporter", "category", "description", "lat", "lon"],
    "team-report": ["id", "reporter", "category", "description", "lat", "lon"],
    "team-position": ["id", "lat", "lon"],
    "team-status": ["id", "status"],
}
NUMBER_FIELDS = {"value", "confidence", "lat", "lon", "speed", "heading"}
INTEGER_FIELDS = {"priority", "seq"}


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(FEEDS)))
    topics, bodies, _ = FEEDS[name]
    topic = draw(topics)
    if draw(st.booleans()):  # the payload rules are the same behind an exercise's prefix
        topic = exercise_topic(draw(exercise_ids), topic)
    return name, topic, draw(bodies)


extra_fields = st.dictionaries(st.text(chars, max_size=12), json_values, max_size=4)


# --- 1. nothing but a Message or a ContractError ---------------------------------------------

any_topics = st.one_of(
    st.text(max_size=80),  # surrogates too: a topic is a str from the MQTT client
    st.builds(
        "/".join,
        st.lists(
            st.sampled_from(
                [
                    "wuwang",
                    "teams",
                    "exercise",
                    "EX-1",
                    "v1",
                    "v2",
                    "police",
                    "video",
                    "sensor",
                    "call",
                    "report",
                    "position",
                    "status",
                    "dispatch",
                    "ack",
                    "T-1",
                    "",
                    "+",
                    "#",
                    "网格",
                ]
            ),
            max_size=9,
        ),
    ),
    *(topics for topics, _, _ in FEEDS.values()),
    *(st.builds(exercise_topic, exercise_ids, topics) for topics, _, _ in FEEDS.values()),
)


@FAST
@given(topic=any_topics, payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape(topic: str, payload: bytes) -> None:
    parse_or_refuse(topic, payload)


@FAST
@given(topic=any_topics, value=json_values)
def test_arbitrary_json_never_escapes(topic: str, value: Any) -> None:
    parse_or_refuse(topic, orjson.dumps(value))


@FAST
@given(message=valid_messages(), data=st.data())
def test_arbitrary_json_near_valid_payloads_never_escapes(
    message: tuple[str, str, dict[str, Any]], data: st.DataObject
) -> None:
    """Valid keys with arbitrary JSON values: reaches the field validators, not just the parser."""
    _, topic, payload = message
    keys = sorted(payload)
    replaced = data.draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=3))
    parse_or_refuse(topic, orjson.dumps({**payload, **replaced}))


@FAST
@given(
    message=valid_messages(),
    cut=st.integers(0, 400),
    junk=st.binary(max_size=8),
    tokens=st.sampled_from(
        [
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1e999",
            b'"\\ud800"',
            b"[" * 300,
            b"99999999999999999999999",
            b'"\\u0000"',
            b"\xff",
            b"{}",
            b"null",
        ]
    ),
)
def test_corrupted_payloads_never_escape(
    message: tuple[str, str, dict[str, Any]], cut: int, junk: bytes, tokens: bytes
) -> None:
    _, topic, payload = message
    raw = encode(payload)
    parse_or_refuse(topic, raw[:cut] + junk + raw[cut:])  # spliced bytes
    parse_or_refuse(topic, raw[:cut])  # truncated
    parse_or_refuse(topic, raw[:-1] + b',"x":' + tokens + b"}")  # odd values in an extra field


@settings(max_examples=20, deadline=None)
@given(filler=st.sampled_from([b" ", b"[", b"x", b"\xff", b'{"a":']), extra=st.integers(1, 5000))
def test_oversized_payloads_are_refused_by_size(filler: bytes, extra: int) -> None:
    payload = (filler * (MAX_PAYLOAD_BYTES + extra))[: MAX_PAYLOAD_BYTES + extra]
    with pytest.raises(ContractError) as info:
        parse_message("teams/v1/T1/status", payload, RECEIVED)
    assert info.value.reason == f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"


# --- 2. valid payloads parse, round-trip and validate against the schema -------------------


@FAST
@given(message=valid_messages(), extra=extra_fields)
def test_valid_payloads_parse_and_round_trip(
    message: tuple[str, str, dict[str, Any]], extra: dict[str, Any]
) -> None:
    name, topic, payload = message
    extra = {k: v for k, v in extra.items() if k not in payload and k not in _model_fields(name)}
    sent = {**payload, **extra}
    raw = encode(sent)
    assume(len(raw) <= MAX_PAYLOAD_BYTES)

    msg = parse_message(topic, raw, RECEIVED)
    assert msg.msg_id == payload["id"]
    assert msg.extra == extra
    for key, value in payload.items():
        assert getattr(msg.payload, key) == value, key
    if "ts" in payload:
        assert msg.ts_from_receipt is False
        assert msg.ts == datetime.fromisoformat(payload["ts"])
    else:
        assert (msg.ts, msg.ts_from_receipt) == (RECEIVED, True)

    # encode → parse again: the same fields, the same extra, the same time. (The payload
    # written out leaves its unset optional fields out; an extra field whose value is null stays.)
    again = parse_message(topic, encode({**to_builtins(msg.payload), **msg.extra}), RECEIVED)
    assert again.payload == msg.payload
    assert again.extra == msg.extra
    assert (again.ts, again.ts_from_receipt) == (msg.ts, msg.ts_from_receipt)

    VALIDATORS[FEEDS[name][2]].validate(orjson.loads(raw))


def _model_fields(name: str) -> set[str]:
    from wuwang.contract import PAYLOAD_MODELS, payload_fields

    feed = {"team-position": Feed.POSITION, "team-status": Feed.STATUS, "team-report": Feed.REPORT}.get(
        name, Feed(name) if name in {f.value for f in Feed} else Feed.REPORT
    )
    return set(payload_fields(PAYLOAD_MODELS[feed]))


# --- 3. mutated valid payloads are refused ------------------------------------------------


@FAST
@given(message=valid_messages(), data=st.data())
def test_dropping_a_required_key_is_refused(
    message: tuple[str, str, dict[str, Any]], data: st.DataObject
) -> None:
    name, topic, payload = message
    key = data.draw(st.sampled_from(REQUIRED[name]))
    del payload[key]
    with pytest.raises(ContractError) as info:
        parse_message(topic, encode(payload), RECEIVED)
    assert f"missing required field {key}" in info.value.reason, name


def _wrong_values(key: str) -> st.SearchStrategy[Any]:
    containers = st.one_of(st.lists(int64, max_size=2), st.dictionaries(text, int64, max_size=2))
    if key in NUMBER_FIELDS:
        return st.one_of(st.booleans(), text, containers)
    if key in INTEGER_FIELDS:
        return st.one_of(st.booleans(), text, containers, finite)  # 2.0 is not an integer here
    if key == "bbox":
        return st.one_of(st.booleans(), text, finite, st.dictionaries(text, int64, max_size=2))
    # strings (ids, enums, text, ts)
    return st.one_of(st.booleans(), int64, finite, containers)


@FAST
@given(message=valid_messages(), data=st.data())
def test_a_value_of_the_wrong_type_is_refused(
    message: tuple[str, str, dict[str, Any]], data: st.DataObject
) -> None:
    name, topic, payload = message
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = data.draw(_wrong_values(key))
    with pytest.raises(ContractError) as info:
        parse_message(topic, encode(payload), RECEIVED)
    reason = info.value.reason
    assert reason.startswith(f"{key}:") or f"; {key}:" in reason, (name, reason)


@FAST
@given(message=valid_messages(), data=st.data())
def test_whatever_parses_also_satisfies_the_schema(
    message: tuple[str, str, dict[str, Any]], data: st.DataObject
) -> None:
    """The exported schema is never stricter than the ingest (senders may trust it)."""
    name, topic, payload = message
    replaced = data.draw(st.dictionaries(st.sampled_from(sorted(payload)), json_values, max_size=2))
    mutated = {**payload, **replaced}
    if parse_or_refuse(topic, orjson.dumps(mutated)) is not None:
        VALIDATORS[FEEDS[name][2]].validate(mutated)


# --- 4. exercise topics ---------------------------------------------------------------------

live_topics = st.one_of(*(topics for topics, _, _ in FEEDS.values()))


@FAST
@given(exercise_id=exercise_ids, topic=live_topics)
def test_an_exercise_topic_reads_as_its_live_topic_marked(exercise_id: str, topic: str) -> None:
    live = parse_topic(topic)
    drill = parse_topic(exercise_topic(exercise_id, topic))
    assert live.exercise_id is None
    assert drill == Topic(live.feed, live.network, live.source_id, exercise_id)
    assert drill.source == f"ex/{exercise_id}/{live.source}"
    assert topic_exercise_id(exercise_topic(exercise_id, topic)) == exercise_id
    assert topic_exercise_id(topic) is None


# Small pools as well, so that equal pairs come up often.
scoped_topics = st.tuples(
    st.sampled_from([None, "EX-1", "EX-2", "team", "police"]) | exercise_ids,
    st.sampled_from(["wuwang/v1/police/call/T1", "wuwang/v1/patrol/call/T1", "teams/v1/T1/status",
                     "teams/v1/T1/report", "wuwang/v1/police/report/T1"]) | live_topics,
)


@FAST
@given(first=scoped_topics, second=scoped_topics)
def test_source_keys_identify_exercise_and_live_source(
    first: tuple[str | None, str], second: tuple[str | None, str]
) -> None:
    """Message ids are unique per source key: two keys are equal only for the same live
    source in the same exercise (or both live), so a replay's original ids never collide."""

    def key(exercise_id: str | None, topic: str) -> tuple[str, str | None, str]:
        parsed = parse_topic(topic if exercise_id is None else exercise_topic(exercise_id, topic))
        return parsed.source, exercise_id, parse_topic(topic).source

    source_a, *who_a = key(*first)
    source_b, *who_b = key(*second)
    assert (source_a == source_b) == (who_a == who_b)


@FAST
@given(exercise_id=st.text(max_size=70).filter(lambda e: "/" not in e), topic=live_topics)
def test_a_bad_exercise_id_is_refused(exercise_id: str, topic: str) -> None:
    assume(EXERCISE_ID_RE.fullmatch(exercise_id) is None)
    full = f"exercise/v1/{exercise_id}/{topic}"
    with pytest.raises(ContractError) as info:
        parse_topic(full)
    assert info.value.reason == "exercise id in topic does not match [A-Za-z0-9_.-]{1,64}"
    assert topic_exercise_id(full) is None


@FAST
@given(topic=any_topics)
def test_the_exercise_id_a_dead_letter_keeps_is_the_parsed_one(topic: str) -> None:
    try:
        parsed = parse_topic(topic)
    except ContractError:
        if topic_exercise_id(topic) is not None:  # readable prefix, unreadable rest
            assert topic.startswith(f"exercise/v1/{topic_exercise_id(topic)}/")
        return
    assert topic_exercise_id(topic) == parsed.exercise_id


# --- 5. the fast path's storable check answers as the full walk ----------------------------
#
# parse_message's fast path (msgspec) decides storability by scanning the bytes and leaves
# any doubt to the slow path, which walks every value (``_unstorable``). Same accept/reject,
# same reason, on values the JSON parser lets through and the database could not keep.

awkward_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**66),
    st.integers(min_value=-(2**66), max_value=-(2**62)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, "1e400", "-1e400", "NaN", "Infinity", "-Infinity"]),  # raw tokens
    st.text(st.characters(codec="utf-8"), max_size=8),  # U+0000 included
)
awkward_values = st.recursive(
    awkward_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_RAW_TOKENS = {"1e400", "-1e400", "NaN", "Infinity", "-Infinity"}


def _json_text(value: Any) -> str:
    """JSON text as a device might send it: NaN, Infinity and 1e400 as bare tokens."""
    if isinstance(value, str) and value in _RAW_TOKENS:
        return value
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, allow_nan=True)


@FAST
@given(
    message=valid_messages(),
    extra=st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), awkward_values, max_size=4),
    data=st.data(),
)
def test_what_the_fast_path_lets_through_the_full_walk_would_store(
    message: tuple[str, str, dict[str, Any]], extra: dict[str, Any], data: st.DataObject
) -> None:
    from wuwang.contract import PAYLOAD_MODELS, _all_values, _fast_read, _Reader, _slow_read, _unstorable

    _name, topic, body = message
    fields = dict(body)
    text_keys = [k for k, v in fields.items() if isinstance(v, str)]
    if len(text_keys) > 0 and data.draw(st.booleans()):  # a NUL (or other text) in a field of the contract
        key = data.draw(st.sampled_from(text_keys))
        fields[key] = data.draw(st.text(st.characters(codec="utf-8"), max_size=8))
    fields.update({k: v for k, v in extra.items() if k not in fields})
    raw = _json_text(fields).encode()
    model = PAYLOAD_MODELS[parse_topic(topic).feed]
    reader = _Reader.of(model)
    try:  # the reading that also takes NaN and Infinity (the fast one refuses them as JSON)
        parsed, extra, _ts = _slow_read(reader, raw)
    except ContractError:  # refused before the check (type, range, ...): nothing to compare
        assume(False)
        return
    problem = _unstorable(_all_values(parsed, extra))
    # the fast path decides storability from the bytes and the integers: what it reads,
    # the walk would store
    fast = _fast_read(reader, raw)
    if fast is not None:
        assert fast[0] == parsed and fast[1] == extra
        assert problem is None
    # and parse_message agrees with the walk on accept/reject and reason
    got = parse_or_refuse(topic, raw)
    if problem is not None:
        assert got is None
        with pytest.raises(ContractError) as refused:
            parse_message(topic, raw, RECEIVED)
        assert refused.value.reason in (problem, "lat and lon must be given together")


def test_the_topic_cache_gives_what_parsing_gives() -> None:
    topic = "wuwang/v1/police/call/sys110"
    # An lru_cache wrapper, which the package types as the plain callable it stands for.
    uncached: Callable[[str], Topic] = parse_topic.__wrapped__  # type: ignore[attr-defined]
    assert parse_topic(topic) == uncached(topic)
    assert parse_topic(topic) is parse_topic(topic)  # cached (Topic is frozen)
    for bad in ("wuwang/v1/nope/call/x", "teams/v1/T1/dispatch", "exercise/v1/EX 1/teams/v1/T1/status"):
        with pytest.raises(ContractError) as cached:
            parse_topic(bad)
        with pytest.raises(ContractError) as fresh:
            uncached(bad)
        assert cached.value.reason == fresh.value.reason
