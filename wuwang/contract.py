"""MQTT contract v1 — the one module that says what a message on the wire is.

Outside systems (field devices, camera analytics, the 110 system) are written by
other teams and depend on this, so the rules are: strict about what is required,
tolerant of extra fields (they are kept, not rejected), and never a new meaning
for an old field. A change of meaning gets a new version beside this one.

Everything here is pure: ``parse_message`` takes a topic, raw bytes and the
receipt time and returns a frozen ``Message`` or raises ``ContractError`` with a
reason an operator can read. No I/O.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wuwang.exercises import EXERCISE_ID_RE, EXERCISE_PREFIX

CONTRACT_VERSION = "v1"

#: Payloads larger than this are refused before any parsing (a device sending
#: megabytes is broken or hostile; a photo goes by URL, not inline).
MAX_PAYLOAD_BYTES = 64 * 1024

SOURCE_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
# Used with fullmatch: with re.match, "^...$" also accepts a trailing newline.
_SOURCE_ID_RE = re.compile(SOURCE_ID_PATTERN)


class Network(StrEnum):
    """五网同构: the five prevention networks built as one."""

    PATROL = "patrol"  # 街面巡逻防控网
    COMMUNITY = "community"  # 城乡社区防控网
    VENUE = "venue"  # 单位和行业场所防控网
    POLICE = "police"  # 警务协作网
    VIDEO = "video"  # 视频防控网


class Feed(StrEnum):
    """What a message is. The first four come on ``wuwang/v1``, the rest on ``teams/v1``."""

    SENSOR = "sensor"
    VIDEO = "video"
    CALL = "call"
    REPORT = "report"
    POSITION = "position"
    STATUS = "status"


WUWANG_FEEDS = (Feed.SENSOR, Feed.VIDEO, Feed.CALL, Feed.REPORT)
TEAM_FEEDS = (Feed.POSITION, Feed.STATUS, Feed.REPORT)


class CallCategory(StrEnum):
    """Categories of a 110 call."""

    CRIMINAL = "criminal"
    PUBLIC_ORDER = "public_order"
    TRAFFIC = "traffic"
    FIRE = "fire"
    MEDICAL = "medical"
    RESCUE = "rescue"
    DISPUTE = "dispute"
    OTHER = "other"


class TeamStatus(StrEnum):
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RETURNING = "returning"
    OFF_DUTY = "off_duty"


class ContractError(ValueError):
    """A message that cannot be read. ``reason`` is short, stable and human-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- topics -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic. ``source`` is the key under which message ids are unique."""

    feed: Feed
    network: Network | None  # None for team topics
    source_id: str  # device/camera/system id on wuwang topics, team id on team topics
    exercise_id: str | None = None  # set for exercise/v1/<exercise_id>/... (a drill's copy)

    @property
    def is_team(self) -> bool:
        return self.network is None

    @property
    def source(self) -> str:
        # Ids are unique per source; a source is one device of one network, or one team.
        # A drill (a replay above all) republishes recorded messages with their original
        # ids, so each exercise has sources of its own: "ex/<exercise_id>/police/sys110".
        # No network is called "ex", so these never meet a live source.
        live = f"team/{self.source_id}" if self.network is None else f"{self.network}/{self.source_id}"
        return live if self.exercise_id is None else f"{exercise_source_prefix(self.exercise_id)}{live}"


def exercise_source_prefix(exercise_id: str) -> str:
    """What every source key of one exercise starts with (message ledger, alarm ids).

    Match it with ``starts_with(source, %s)`` in SQL, not LIKE: ``_`` is a wildcard there."""
    return f"ex/{exercise_id}/"


def wuwang_topic(network: Network | str, feed: Feed | str, source_id: str) -> str:
    return f"wuwang/{CONTRACT_VERSION}/{network}/{feed}/{source_id}"


def team_topic(team_id: str, leaf: str) -> str:
    return f"teams/{CONTRACT_VERSION}/{team_id}/{leaf}"


_LIVE_SUBSCRIPTIONS = (
    f"wuwang/{CONTRACT_VERSION}/+/+/+",
    f"teams/{CONTRACT_VERSION}/+/position",
    f"teams/{CONTRACT_VERSION}/+/status",
    f"teams/{CONTRACT_VERSION}/+/report",
)

#: What the ingest subscribes to (inbound feeds only; dispatch/ack belong to command):
#: the live feeds, and the same feeds behind every exercise's prefix.
INGEST_SUBSCRIPTIONS = (
    *_LIVE_SUBSCRIPTIONS,
    *(f"{EXERCISE_PREFIX}/+/{t}" for t in _LIVE_SUBSCRIPTIONS),
)

NOT_V1 = "topic is not part of MQTT contract v1"
BAD_EXERCISE_ID = f"exercise id in topic does not match {EXERCISE_ID_RE.pattern}"
_EXERCISE_HEAD = f"{EXERCISE_PREFIX}/"


def _split_exercise(topic: str) -> tuple[str, str] | None:
    """(exercise id, the rest) of an ``exercise/v1/...`` topic; None for any other topic."""
    if not topic.startswith(_EXERCISE_HEAD):
        return None
    exercise_id, slash, rest = topic[len(_EXERCISE_HEAD):].partition("/")
    if not slash:
        raise ContractError(NOT_V1)
    return exercise_id, rest


def topic_exercise_id(topic: str) -> str | None:
    """The exercise id of an ``exercise/v1/<id>/...`` topic, when that much is readable
    (the rest may still be wrong: a dead letter keeps the id of its exercise)."""
    try:
        split = _split_exercise(topic)
    except ContractError:
        return None
    return split[0] if split is not None and EXERCISE_ID_RE.fullmatch(split[0]) else None


#: How many distinct readable topics ``parse_topic`` remembers. A valid topic is short
#: (ids of at most 64 characters), so the cache stays small; an unreadable topic raises
#: and is never cached.
TOPIC_CACHE_SIZE = 16_384


@functools.lru_cache(maxsize=TOPIC_CACHE_SIZE)
def parse_topic(topic: str) -> Topic:
    """A contract v1 inbound topic, or its copy behind ``exercise/v1/<exercise_id>/``.

    Cached: a feed's topics repeat (one per device, camera, team), and ``Topic`` is frozen."""
    split = _split_exercise(topic)
    if split is None:
        return _parse_live_topic(topic)
    exercise_id, rest = split
    if not EXERCISE_ID_RE.fullmatch(exercise_id):
        raise ContractError(BAD_EXERCISE_ID)
    # Only a live topic may follow: an exercise inside an exercise is not v1.
    live = _parse_live_topic(rest)
    return Topic(feed=live.feed, network=live.network, source_id=live.source_id, exercise_id=exercise_id)


# str → member lookups (the same as ``Network(value)`` / ``value in WUWANG_FEEDS``, cheaper).
_NETWORK_OF: dict[str, Network] = {n.value: n for n in Network}
_WUWANG_FEED_OF: dict[str, Feed] = {f.value: f for f in WUWANG_FEEDS}
_TEAM_FEED_OF: dict[str, Feed] = {f.value: f for f in TEAM_FEEDS}


def _parse_live_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "wuwang" and parts[1] == CONTRACT_VERSION:
        _, _, network, feed, source_id = parts
        net = _NETWORK_OF.get(network)
        if net is None:
            raise ContractError(f"unknown network {network[:32]!r}")
        wuwang_feed = _WUWANG_FEED_OF.get(feed)
        if wuwang_feed is None:
            raise ContractError(f"unknown feed {feed[:32]!r}")
        if not _SOURCE_ID_RE.fullmatch(source_id):
            raise ContractError("source_id in topic does not match [A-Za-z0-9_.-]{1,64}")
        return Topic(feed=wuwang_feed, network=net, source_id=source_id)
    if len(parts) == 4 and parts[0] == "teams" and parts[1] == CONTRACT_VERSION:
        _, _, team_id, leaf = parts
        team_feed = _TEAM_FEED_OF.get(leaf)
        if team_feed is None:
            raise ContractError(f"not an inbound team topic: {leaf[:32]!r}")
        if not _SOURCE_ID_RE.fullmatch(team_id):
            raise ContractError("team id in topic does not match [A-Za-z0-9_.-]{1,64}")
        return Topic(feed=team_feed, network=None, source_id=team_id)
    raise ContractError(NOT_V1)


# --- payloads ---------------------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90, description="WGS-84 latitude")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="WGS-84 longitude")]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=64)]
Identifier = Annotated[str, Field(min_length=1, max_length=64)]
SequenceNumber = Annotated[int, Field(ge=0, le=2**63 - 1)]  # stored as bigint

#: RFC 3339 section 5.6 date-time, ASCII digits only ("\d" would take any Unicode digit);
#: a space for "T" is tolerated (section 5.6, NOTE). Second 60 (leap second) is refused.
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class _Payload(BaseModel):
    # strict: "12" is not a number and 1 is not a string. extra="allow": unknown
    # fields travel on (kept in the row's ``extra`` column), never rejected.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, allow_inf_nan=False)

    id: Identifier = Field(description="unique per source; the same id twice is stored once")
    ts: str | None = Field(
        default=None,
        description="RFC 3339 time with offset; leave out if the device has no clock "
        "(the receipt time is used and marked as such)",
        json_schema_extra={"format": "date-time"},
    )

    @field_validator("ts")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _RFC3339_RE.fullmatch(value)
        if match is None:
            raise ValueError("ts must be an RFC 3339 date-time")
        if match["offset"] is None:
            raise ValueError("ts must carry a UTC offset (e.g. +08:00 or Z)")
        try:
            # out-of-range fields (month 13, offset +24:00), or a time that has no UTC
            # equivalent in 0001..9999 (every consumer converting to UTC would crash)
            datetime.fromisoformat(value.upper()).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError("ts must be an RFC 3339 date-time") from None
        return value


class SensorReading(_Payload):
    device_id: Identifier
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        description="smoke, gas, co, water_level, temperature, ..."
    )
    value: float
    unit: Annotated[str, Field(min_length=1, max_length=16)]
    lat: Latitude | None = Field(default=None, description="may be left out for a registered device")
    lon: Longitude | None = None


class VideoAlert(_Payload):
    camera_id: Identifier
    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        description="fire_smoke, crowd, intrusion, fight, traffic_accident, fall, loitering, ..."
    )
    confidence: Annotated[float, Field(ge=0, le=1)]
    lat: Latitude
    lon: Longitude
    snapshot_url: Annotated[str, Field(max_length=2048)] | None = None
    bbox: Annotated[list[float], Field(min_length=4, max_length=4)] | None = Field(
        default=None, description="[x, y, width, height] in the snapshot's pixels"
    )


class EmergencyCall(_Payload):
    """A 110 call record. ``caller`` is personal data: shown masked."""

    call_id: Identifier
    category: CallCategory
    lat: Latitude
    lon: Longitude
    address: Annotated[str, Field(max_length=500)]
    description: Annotated[str, Field(max_length=4000)]
    caller: Annotated[str, Field(max_length=64)]
    priority: Annotated[int, Field(ge=1, le=4)] | None = Field(
        default=None, description="1 (most urgent) to 4"
    )


class FieldReport(_Payload):
    reporter: Identifier
    category: ShortText
    description: Annotated[str, Field(max_length=4000)]
    lat: Latitude
    lon: Longitude
    photo_url: Annotated[str, Field(max_length=2048)] | None = None


class TeamPosition(_Payload):
    lat: Latitude
    lon: Longitude
    speed: Annotated[float, Field(ge=0, le=150)] | None = Field(default=None, description="m/s")
    heading: Annotated[float, Field(ge=0, le=360)] | None = Field(default=None, description="degrees")
    seq: SequenceNumber | None = Field(
        default=None, description="per-team sequence number; order is not kept across reconnects"
    )


class TeamStatusUpdate(_Payload):
    status: TeamStatus
    incident_id: Identifier | None = None
    seq: SequenceNumber | None = None


PAYLOAD_MODELS: dict[Feed, type[_Payload]] = {
    Feed.SENSOR: SensorReading,
    Feed.VIDEO: VideoAlert,
    Feed.CALL: EmergencyCall,
    Feed.REPORT: FieldReport,
    Feed.POSITION: TeamPosition,
    Feed.STATUS: TeamStatusUpdate,
}


@dataclass(frozen=True, slots=True)
class Message:
    """One readable message, as the ingest stores it."""

    topic: Topic
    payload: _Payload
    ts: datetime
    received_at: datetime
    ts_from_receipt: bool  # True when the device sent no ts and the receipt time stands in
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def msg_id(self) -> str:
        return self.payload.id

    @property
    def feed(self) -> Feed:
        return self.topic.feed

    @property
    def source(self) -> str:
        return self.topic.source


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"]) or "payload"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            parts.append(f"missing required field {loc}")
        elif e["type"] == "json_invalid":
            parts.append(f"not valid UTF-8 JSON ({msg.removeprefix('Invalid JSON: ')[:100]})")
        elif e["type"] == "model_type":
            parts.append("payload is not a JSON object")
        else:
            parts.append(f"{loc}: {msg}")
    more = len(err.errors()) - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _unstorable(values: Any) -> str | None:
    """Why a value that the JSON parser let through cannot be kept, or None.

    The parser lets NaN/Infinity (and numbers too large for a double) through into
    extra fields; PostgreSQL text and jsonb cannot hold U+0000; ``encode`` (orjson)
    cannot write integers beyond 64 bits. Iterative: nesting is already capped by the
    parser, and the payload by MAX_PAYLOAD_BYTES.
    """
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text must not contain U+0000"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "NaN and Infinity are not JSON numbers"
        elif isinstance(item, int):
            if not -(2**63) <= item < 2**64:
                return "integer out of range (64 bits)"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _unstorable_body(body: BaseModel) -> str | None:
    """``_unstorable(dict(body))``, without building the dict when nothing is wrong.

    A flat payload (the common case: strings, numbers, booleans, nulls, no nesting) is
    checked in one pass with the very tests of ``_unstorable``; anything else — a nested
    value, a value of another type, or a problem found — goes to ``_unstorable`` itself,
    so that the answer (and which problem is named first) is always its answer.
    tests/wuwang/test_contract_properties.py checks the two agree.
    """
    extra = body.__pydantic_extra__
    for values in (body.__dict__.values(), extra.values() if extra else ()):
        for value in values:
            kind = type(value)
            if kind is str:
                if "\x00" in value:
                    break
            elif kind is float:
                if not math.isfinite(value):
                    break
            elif kind is int:
                if not -(2**63) <= value < 2**64:
                    break
            elif value is None or kind is bool:
                continue
            elif isinstance(value, str):  # a field of an enum type (a StrEnum member)
                if "\x00" in value:
                    break
            else:  # nested (or unexpected): the full walk decides
                break
        else:
            continue
        return _unstorable(dict(body))
    if extra and any("\x00" in key for key in extra):
        return _unstorable(dict(body))
    return None


@dataclass(frozen=True, slots=True)
class TsWindow:
    """Which ``ts`` the ingest accepts, relative to the receipt time: from ``max_age``
    before it (the retention window: an older row would be deleted within the hour, its id
    left in the ledger so that a corrected resend counted as a duplicate) to ``max_ahead``
    after it (device clocks run a little fast; a time further ahead is wrong, and would
    hold a sensor's alarm state). Outside it a message is refused, with the bound named."""

    max_age: timedelta
    max_ahead: timedelta

    def check(self, ts: datetime, received_at: datetime) -> None:
        """Raises ContractError when ``ts`` is outside the window around ``received_at``."""
        try:
            earliest = received_at - self.max_age
        except OverflowError:  # a window reaching before year 1 has no lower bound
            earliest = None
        if earliest is not None and ts < earliest:
            raise ContractError(f"ts {_utc(ts)} is older than the {_span(self.max_age)} retention window"
                                f" (accepted from {_utc(earliest)})")
        try:
            latest = received_at + self.max_ahead
        except OverflowError:
            latest = None
        if latest is not None and ts > latest:
            raise ContractError(f"ts {_utc(ts)} is more than {_span(self.max_ahead)} ahead of the receipt"
                                f" time (accepted until {_utc(latest)})")


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _span(d: timedelta) -> str:
    if d and d % timedelta(days=1) == timedelta(0):
        return f"{d.days}-day"
    return f"{d.total_seconds():g} s"


def parse_message(topic: str, payload: bytes, received_at: datetime,
                  window: TsWindow | None = None) -> Message:
    """Read one message. Raises ContractError with the reason when it cannot be read, or
    when ``window`` is given and ``ts`` lies outside it (the ingest's door; without a
    window only the contract's shape is checked, as for the documentation's examples)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    parsed_topic = parse_topic(topic)
    model = PAYLOAD_MODELS[parsed_topic.feed]
    try:
        # Pydantic reads the JSON itself: strict types, enums from strings, one pass.
        body = model.model_validate_json(payload)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None
    if isinstance(body, SensorReading) and (body.lat is None) != (body.lon is None):
        raise ContractError("lat and lon must be given together")
    problem = _unstorable_body(body)
    if problem is not None:
        raise ContractError(problem)
    extra = dict(body.model_extra or {})
    if body.ts is None:
        ts, from_receipt = received_at, True
    else:
        ts, from_receipt = datetime.fromisoformat(body.ts.upper()), False
        if window is not None:
            window.check(ts, received_at)
    return Message(
        topic=parsed_topic,
        payload=body,
        ts=ts,
        received_at=received_at,
        ts_from_receipt=from_receipt,
        extra=extra,
    )


def encode(payload: dict[str, Any]) -> bytes:
    """The one way messages are serialised (simulators, tests, command's orders)."""
    return orjson.dumps(payload)


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per feed, as exported to docs/schemas/."""
    out: dict[str, dict[str, Any]] = {}
    for feed, model in PAYLOAD_MODELS.items():
        name = f"team-{feed}" if feed in (Feed.POSITION, Feed.STATUS) else str(feed)
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"wuwang/{CONTRACT_VERSION}/{name}.schema.json"
        schema["additionalProperties"] = True
        out[name] = schema
    return out


# --- alarms (ingest → command, over a Redis stream) ---------------------------

AlarmKind = Literal["call", "video", "sensor", "report"]


class Alarm(BaseModel):
    """What ingest raises for the command service. ``alarm_id`` is stable: a consumer
    that sees the same alarm twice (at-least-once relay) keeps one."""

    model_config = ConfigDict(frozen=True)

    alarm_id: str
    kind: AlarmKind
    source: str  # the message's source key, e.g. "police/sys110" or "team/T-001"
    msg_id: str
    network: Network | None
    ts: datetime
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    category: str  # call category, video event, sensor kind, report category
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


def alarm_id_for(source: str, msg_id: str) -> str:
    return f"{source}#{msg_id}"
