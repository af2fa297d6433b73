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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta, Struct, structs

from wuwang import strict_json
from wuwang.exercises import EXERCISE_ID_RE, EXERCISE_PREFIX
from wuwang.risk import ShelterStatus
from wuwang.scope import Scope
from wuwang.strict_json import Problem, Refinement

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
    """What a message is. Which topics carry each, and everything else about it, is its
    ``FeedSpec`` in ``FEEDS`` (below)."""

    SENSOR = "sensor"
    VIDEO = "video"
    CALL = "call"
    REPORT = "report"
    POSITION = "position"
    STATUS = "status"


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
    #: The key under which message ids are unique (derived; kept: the writer asks it of
    #: every message, and a Topic is built once per distinct topic).
    source: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Ids are unique per source; a source is one device of one network, or one team.
        # A drill (a replay above all) republishes recorded messages with their original
        # ids, so each exercise has sources of its own: "ex/<exercise_id>/police/sys110".
        # No network is called "ex", so these never meet a live source.
        live = f"team/{self.source_id}" if self.network is None else f"{self.network}/{self.source_id}"
        source = live if self.exercise_id is None else f"{exercise_source_prefix(self.exercise_id)}{live}"
        object.__setattr__(self, "source", source)

    @property
    def is_team(self) -> bool:
        return self.network is None

    @property
    def scope(self) -> Scope:
        """Live, or the exercise whose prefix the topic carried."""
        return Scope.of(self.exercise_id)


def exercise_source_prefix(exercise_id: str) -> str:
    """What every source key of one exercise starts with (message ledger, alarm ids).

    Match it with ``starts_with(source, %s)`` in SQL, not LIKE: ``_`` is a wildcard there."""
    return f"ex/{exercise_id}/"


def wuwang_topic(network: Network | str, feed: Feed | str, source_id: str) -> str:
    return f"wuwang/{CONTRACT_VERSION}/{network}/{feed}/{source_id}"


def team_topic(team_id: str, leaf: str) -> str:
    return f"teams/{CONTRACT_VERSION}/{team_id}/{leaf}"


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

# str → member lookup (the same as ``Network(value)``, cheaper).
_NETWORK_OF: dict[str, Network] = {n.value: n for n in Network}


# --- payloads ---------------------------------------------------------------
#
# msgspec Structs are the only definition of a valid payload: the types, bounds,
# lengths and patterns below are what the decoder enforces, what a refusal's reason
# names (wuwang/strict_json.py reads them back) and what docs/schemas/ publishes.

Latitude = Annotated[float, Meta(ge=-90, le=90, description="WGS-84 latitude")]
Longitude = Annotated[float, Meta(ge=-180, le=180, description="WGS-84 longitude")]
ShortText = Annotated[str, Meta(min_length=1, max_length=64)]
Identifier = Annotated[str, Meta(min_length=1, max_length=64)]
SequenceNumber = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # stored as bigint
#: A lower-case word: a sensor kind, a video analytics event.
Kind = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Url = Annotated[str, Meta(max_length=2048)]

#: RFC 3339 section 5.6 date-time, ASCII digits only ("\d" would take any Unicode digit);
#: a space for "T" is tolerated (section 5.6, NOTE). Second 60 (leap second) is refused.
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
NOT_RFC3339 = "ts must be an RFC 3339 date-time"
NO_OFFSET = "ts must carry a UTC offset (e.g. +08:00 or Z)"


def _read_ts(value: str) -> datetime | str:
    """``ts`` as a time, or (a str) why it is not an RFC 3339 date-time with an offset."""
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        return NOT_RFC3339
    if match["offset"] is None:
        return NO_OFFSET
    try:
        ts = datetime.fromisoformat(value.upper())  # out-of-range fields: month 13, offset +24:00
        if ts.year in (1, 9999):  # no UTC equivalent in 0001..9999: every consumer would crash
            ts.astimezone(UTC)
    except (ValueError, OverflowError):
        return NOT_RFC3339
    return ts


def _ts_problem(value: str) -> str | None:
    read = _read_ts(value)
    return read if isinstance(read, str) else None


#: Rules beyond a field's type, checked on both paths of ``parse_message``.
_REFINEMENTS: Mapping[str, Refinement] = MappingProxyType({"ts": _ts_problem})


# Strict by construction: msgspec never coerces ("12" is not a number, 1 is not a string,
# 2.0 is not an integer). Unknown fields are skipped by the struct and kept by
# ``parse_message`` (``Message.extra``), never rejected. ``omit_defaults``: a payload
# written out (``to_json``) leaves out the optional fields it did not carry.
class _Payload(Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: Annotated[str, Meta(
        min_length=1, max_length=64, description="unique per source; the same id twice is stored once"
    )]
    ts: Annotated[str | None, Meta(
        description="RFC 3339 time with offset; leave out if the device has no clock "
        "(the receipt time is used and marked as such)",
        extra_json_schema={"format": "date-time"},
    )] = None

    def cross_check(self) -> str | None:
        """Why the fields, each valid alone, do not go together; None when they do."""
        return None


class SensorReading(_Payload, frozen=True, kw_only=True):
    device_id: Identifier
    kind: Annotated[str, Meta(
        pattern=r"^[a-z][a-z0-9_]{0,31}$", description="smoke, gas, co, water_level, temperature, ..."
    )]
    value: float
    unit: Annotated[str, Meta(min_length=1, max_length=16)]
    lat: Annotated[Latitude | None, Meta(description="may be left out for a registered device")] = None
    lon: Longitude | None = None

    def cross_check(self) -> str | None:
        return "lat and lon must be given together" if (self.lat is None) != (self.lon is None) else None


class VideoAlert(_Payload, frozen=True, kw_only=True):
    camera_id: Identifier
    event: Annotated[str, Meta(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="fire_smoke, crowd, intrusion, fight, traffic_accident, fall, loitering, ...",
    )]
    confidence: Annotated[float, Meta(ge=0, le=1)]
    lat: Latitude
    lon: Longitude
    snapshot_url: Url | None = None
    bbox: Annotated[
        Annotated[list[float], Meta(min_length=4, max_length=4)] | None,
        Meta(description="[x, y, width, height] in the snapshot's pixels"),
    ] = None


class EmergencyCall(_Payload, frozen=True, kw_only=True):
    """A 110 call record. ``caller`` is personal data: shown masked."""

    call_id: Identifier
    category: CallCategory
    lat: Latitude
    lon: Longitude
    address: Annotated[str, Meta(max_length=500)]
    description: Annotated[str, Meta(max_length=4000)]
    caller: Annotated[str, Meta(max_length=64)]
    priority: Annotated[
        Annotated[int, Meta(ge=1, le=4)] | None, Meta(description="1 (most urgent) to 4")
    ] = None


class FieldReport(_Payload, frozen=True, kw_only=True):
    reporter: Identifier
    category: ShortText
    description: Annotated[str, Meta(max_length=4000)]
    lat: Latitude
    lon: Longitude
    photo_url: Url | None = None


class TeamPosition(_Payload, frozen=True, kw_only=True):
    lat: Latitude
    lon: Longitude
    speed: Annotated[Annotated[float, Meta(ge=0, le=150)] | None, Meta(description="m/s")] = None
    heading: Annotated[Annotated[float, Meta(ge=0, le=360)] | None, Meta(description="degrees")] = None
    seq: Annotated[
        SequenceNumber | None,
        Meta(description="per-team sequence number; order is not kept across reconnects"),
    ] = None


class TeamStatusUpdate(_Payload, frozen=True, kw_only=True):
    status: TeamStatus
    incident_id: Identifier | None = None
    seq: SequenceNumber | None = None


def payload_fields(model: type[_Payload]) -> tuple[str, ...]:
    """The fields a payload declares, in order (the rest of a message is ``extra``)."""
    return model.__struct_fields__


def required_fields(model: type[_Payload]) -> tuple[str, ...]:
    """The fields a message must carry, in the model's order."""
    return tuple(f.name for f in structs.fields(model) if f.required)


def to_builtins(payload: _Payload) -> dict[str, Any]:
    """The payload's declared fields as JSON values, without the optional ones it left out."""
    out: dict[str, Any] = msgspec.to_builtins(payload)
    return out


@dataclass(frozen=True, slots=True)
class Message:
    """One readable message, as the ingest stores it."""

    topic: Topic
    payload: _Payload
    ts: datetime
    received_at: datetime
    ts_from_receipt: bool  # True when the device sent no ts and the receipt time stands in
    extra: dict[str, Any] = field(default_factory=dict)
    #: Every text in the payload and its extra fields is known to be storable (no U+0000,
    #: no lone surrogate): the fast path of ``parse_message`` proves it. False (a message
    #: built otherwise): ``ingest.rows.row_for`` checks every field.
    clean_text: bool = False

    @property
    def msg_id(self) -> str:
        return self.payload.id

    @property
    def feed(self) -> Feed:
        return self.topic.feed

    @property
    def source(self) -> str:
        return self.topic.source


BAD_JSON = "not valid UTF-8 JSON"
NOT_AN_OBJECT = "payload is not a JSON object"


def _describe(problems: list[Problem]) -> str:
    """The reason of a refusal: its first three problems, and how many more."""
    parts = [f"missing required field {at}" if what is None else f"{at}: {what}" for at, what in problems[:3]]
    more = len(problems) - 3
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


def _all_values(body: _Payload, extra: dict[str, Any]) -> dict[str, Any]:
    """The payload's fields and its extra fields, in one dict (for ``_unstorable``)."""
    return {**structs.asdict(body), **extra}


@dataclass(frozen=True, slots=True)
class TsWindow:
    """Which ``ts`` the ingest accepts, relative to the receipt time: from ``max_age``
    before it (the retention window: an older row would be deleted within the hour, its id
    left in the ledger so that a corrected resend counted as a duplicate) to ``max_ahead``
    after it (device clocks run a little fast; a time further ahead is wrong, and would
    hold a sensor's alarm state). Outside it a message is refused, with the bound named."""

    max_age: timedelta
    max_ahead: timedelta

    @classmethod
    def of(cls, retention_days: int, clock_skew_s: float) -> TsWindow:
        """The door of ``RETENTION_DAYS`` and ``INGEST_CLOCK_SKEW_S``: the ingest's, and
        every path that hands a message on to it (the field page's reports)."""
        return cls(max_age=timedelta(days=retention_days), max_ahead=timedelta(seconds=clock_skew_s))

    def check(self, ts: datetime, received_at: datetime) -> None:
        """Raises ContractError when ``ts`` is outside the window around ``received_at``."""
        # One subtraction settles almost every message: ``ts - received_at`` never overflows,
        # nor does its negation, and it is below ``-max_age`` exactly when ``ts`` is before a
        # lower bound that exists. The bounds are computed only to name them in a refusal.
        ahead = ts - received_at
        if -ahead <= self.max_age and ahead <= self.max_ahead:
            return
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


#: The two refusals of ``TsWindow.check``, as their reasons begin (contract §6's table).
_CLOCK_REFUSAL_RE = re.compile(
    r"^ts \S+ is (?:older than the .+? retention window|more than .+? ahead of the receipt time)"
)


def is_clock_refusal(reason: str) -> bool:
    """Whether a refusal's reason is the time window's: the sender's clock is wrong (what
    the field page says in the team's words, ``field.clock_wrong``)."""
    return _CLOCK_REFUSAL_RE.match(reason) is not None


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _span(d: timedelta) -> str:
    if d and d % timedelta(days=1) == timedelta(0):
        return f"{d.days}-day"
    return f"{d.total_seconds():g} s"


def encode(payload: dict[str, Any]) -> bytes:
    """The one way messages are serialised (simulators, tests, command's orders)."""
    return orjson.dumps(payload)


# --- alarms (ingest → command, over a Redis stream) ---------------------------

AlarmKind = Literal["call", "video", "sensor", "report"]


class Alarm(Struct, frozen=True, kw_only=True):
    """What ingest raises for the command service. ``alarm_id`` is stable: a consumer
    that sees the same alarm twice (at-least-once relay) keeps one.

    A msgspec Struct like the payloads: the one definition both sides use, written by the
    ingest (``to_json``, ``encode``) and read by the command service (``from_json``,
    ``from_builtins``: strict types, a refusal is a ``ContractError``). Building one
    checks nothing (its makers are this repository's code); reading one checks all."""

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
    details: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON values (the outbox's jsonb, a console's change): every field, times in RFC 3339."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def encode(self) -> bytes:
        """The JSON document (the Redis stream's ``payload``)."""
        return _ALARM_ENCODER.encode(self)

    def replace(self, **changes: Any) -> Alarm:
        """A copy with ``changes``."""
        return structs.replace(self, **changes)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alarm:
        """Read an alarm's JSON document; ContractError when it is not one."""
        try:
            return _ALARM_DECODER.decode(raw)
        except msgspec.DecodeError as exc:  # ValidationError included
            raise ContractError(f"not an alarm: {exc}") from None

    @classmethod
    def from_builtins(cls, value: Any) -> Alarm:
        """Read an alarm from JSON values (a jsonb column); ContractError when it is not one."""
        try:
            return msgspec.convert(value, cls)
        except msgspec.ValidationError as exc:
            raise ContractError(f"not an alarm: {exc}") from None


_ALARM_ENCODER = msgspec.json.Encoder()
_ALARM_DECODER = msgspec.json.Decoder(Alarm)


def alarm_id_for(source: str, msg_id: str) -> str:
    return f"{source}#{msg_id}"


# --- the feeds: one specification --------------------------------------------
#
# Everything the services need to know about a feed, in one place: which topics carry
# it, its payload model, its table and columns, how a parsed message becomes a row,
# which alarm it raises, how the console charts it and the catalogue key that names it.
# Routing (parse_topic), the ingest's subscriptions and rows, the JSON Schemas, the
# database's maintenance, the launcher's status line and the charts iterate over FEEDS.

BIGINT_MAX = 2**63 - 1


class Unstorable(ContractError):
    """Parsed, but the database would refuse it (reason says why)."""


class Place(Struct, frozen=True, gc=False):
    """Where a message is: its own coordinates, or its registered device's (a Struct:
    one is built for every message the ingest stores; numbers and text, never a cycle)."""

    lat: float | None
    lon: float | None
    grid_cell_id: str | None


#: The columns every feed table starts with, and ends with (migrations 0001 and 0007:
#: ``exercise_id`` last, NULL for live messages).
HEAD_COLUMNS = ("ts", "received_at", "ts_from_receipt")
TAIL_COLUMNS = ("extra", "exercise_id")


def json_column(value: Any, where: str) -> str:
    """A value for a jsonb column, as text; Unstorable when it cannot be written as JSON."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise Unstorable(f"{where}: cannot be stored as JSON ({exc})") from None


def bigint_column(value: int | None, where: str) -> int | None:
    if value is not None and value > BIGINT_MAX:
        raise Unstorable(f"{where}: {value} exceeds the 64-bit range")
    return value


#: Builds a feed's own columns (``FeedSpec.columns``, in that order) from a parsed
#: message and its place. Raises Unstorable. The head, ``extra`` and ``exercise_id``
#: are the ingest's (``ingest.rows.row_for``).
RowBuilder = Callable[["Message", Place], tuple[Any, ...]]


def _network(msg: Message) -> str | None:
    return str(msg.topic.network) if msg.topic.network is not None else None


def _sensor_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, SensorReading)
    return (
        _network(msg),
        msg.topic.source_id,
        p.id,
        p.device_id,
        p.kind,
        p.value,
        p.unit,
        place.lat,
        place.lon,
        place.grid_cell_id,
    )


def _video_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, VideoAlert)
    bbox = json_column(p.bbox, "bbox") if p.bbox is not None else None
    return (
        _network(msg),
        msg.topic.source_id,
        p.id,
        p.camera_id,
        p.event,
        p.confidence,
        p.lat,
        p.lon,
        p.snapshot_url,
        bbox,
        place.grid_cell_id,
    )


def _call_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, EmergencyCall)
    return (
        _network(msg),
        msg.topic.source_id,
        p.id,
        p.call_id,
        str(p.category),
        p.lat,
        p.lon,
        p.address,
        p.description,
        p.caller,
        p.priority,
        place.grid_cell_id,
    )


def _report_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, FieldReport)
    # A team's report (teams/v1/<id>/report) has no network; team_id says who sent it.
    team_id = msg.topic.source_id if msg.topic.is_team else None
    return (
        _network(msg),
        msg.topic.source_id,
        p.id,
        team_id,
        p.reporter,
        p.category,
        p.description,
        p.lat,
        p.lon,
        p.photo_url,
        place.grid_cell_id,
    )


def _position_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, TeamPosition)
    return (
        msg.topic.source_id,
        p.id,
        p.lat,
        p.lon,
        p.speed,
        p.heading,
        bigint_column(p.seq, "seq"),
        place.grid_cell_id,
    )


def _status_row(msg: Message, place: Place) -> tuple[Any, ...]:
    p = msg.payload
    assert isinstance(p, TeamStatusUpdate)
    return (msg.topic.source_id, p.id, str(p.status), p.incident_id, bigint_column(p.seq, "seq"))


#: The message a stored live row came from, for a replay: (topic, a label for the log,
#: payload fields other than ``id``) from the row's ``columns`` by name. The inverse of
#: a ``RowBuilder``; ``ts``, ``received_at``, ``msg_id`` and ``extra`` are the replay's.
RowReader = Callable[[Mapping[str, Any]], tuple[str, str, dict[str, Any]]]


def _given(row: Mapping[str, Any], names: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """The row's ``names``, and those of ``optional`` that are not NULL (left out of the message)."""
    out = {n: row[n] for n in names}
    out.update({n: row[n] for n in optional if row[n] is not None})
    return out


def _sensor_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    # lat/lon are stored from the registry when the device sent none: sending them is
    # still a valid message, at the same place.
    located = ("lat", "lon") if row["lat"] is not None and row["lon"] is not None else ()
    fields = _given(row, ("device_id", "kind", "value", "unit"), located)
    return wuwang_topic(row["network"], Feed.SENSOR, row["source_id"]), f"sensor {row['device_id']}", fields


def _video_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = _given(row, ("camera_id", "event", "confidence", "lat", "lon"), ("snapshot_url", "bbox"))
    topic = wuwang_topic(row["network"], Feed.VIDEO, row["source_id"])
    return topic, f"video {row['camera_id']} {row['event']}", fields


def _call_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = _given(
        row, ("call_id", "category", "lat", "lon", "address", "description", "caller"), ("priority",)
    )
    topic = wuwang_topic(row["network"], Feed.CALL, row["source_id"])
    return topic, f"call {row['call_id']} {row['category']}", fields


def _report_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = _given(row, ("reporter", "category", "description", "lat", "lon"), ("photo_url",))
    # A team's report came on teams/v1/<team>/report (no network); a grid worker's on wuwang/v1.
    topic = (
        team_topic(row["team_id"], "report")
        if row["team_id"] is not None
        else wuwang_topic(row["network"], Feed.REPORT, row["source_id"])
    )
    return topic, f"report {row['reporter']}", fields


def _position_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = _given(row, ("lat", "lon"), ("speed", "heading", "seq"))
    return team_topic(row["team_id"], "position"), f"position {row['team_id']}", fields


def _status_message(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    fields = _given(row, ("status",), ("incident_id", "seq"))
    return team_topic(row["team_id"], "status"), f"status {row['team_id']} {row['status']}", fields


class Chart(StrEnum):
    """How the console charts a feed."""

    #: Counted per minute in ``feed_counts_1m`` (on TimescaleDB one continuous aggregate
    #: ``feed_counts_1m_<feed>`` each, migrations 0002/0008): a stacked bar of the
    #: incident's activity chart, and part of the heat layer.
    PER_MINUTE = "per_minute"


_WUWANG_PATTERN = re.compile(rf"wuwang/{CONTRACT_VERSION}/\+/(?P<leaf>[a-z_]+)/\+")
_TEAM_PATTERN = re.compile(rf"teams/{CONTRACT_VERSION}/\+/(?P<leaf>[a-z_]+)")


#: Team topics that are not inbound feeds: orders and their acks (docs/mqtt-contract.md §9).
_COMMAND_TOPICS = frozenset({("teams", "dispatch"), ("teams", "ack")})


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed of contract v1, everything about it (see the section's comment)."""

    feed: Feed
    #: MQTT topic filters that carry it: ``wuwang/v1/+/<feed>/+`` (network, source id)
    #: and/or ``teams/v1/+/<leaf>`` (team id). The leaf routes a topic to this feed.
    topics: tuple[str, ...]
    model: type[_Payload]  # the payload: a msgspec Struct, the one definition of its fields
    table: str
    columns: tuple[str, ...]  # the feed's own columns, between HEAD_COLUMNS and TAIL_COLUMNS
    row: RowBuilder
    message: RowReader  # the inverse of ``row`` (replays of recorded windows)
    alarm: AlarmKind | None  # the alarm its messages raise (rules: ingest/alarms.py); None: none
    chart: Chart | None  # None: not charted (no per-minute counts)
    colour: str  # its colour on charts
    label_key: str  # dashboard/i18n catalogue key of its name

    def __post_init__(self) -> None:
        for pattern in self.topics:
            if self._family(pattern) is None:
                raise ValueError(
                    f"{self.feed}: topic pattern {pattern!r} is neither"
                    f" wuwang/{CONTRACT_VERSION}/+/<feed>/+ nor teams/{CONTRACT_VERSION}/+/<leaf>"
                )

    @staticmethod
    def _family(pattern: str) -> tuple[str, str] | None:
        for family, regex in (("wuwang", _WUWANG_PATTERN), ("teams", _TEAM_PATTERN)):
            match = regex.fullmatch(pattern)
            if match is not None:
                return family, match["leaf"]
        return None

    def leaves(self, family: Literal["wuwang", "teams"]) -> tuple[str, ...]:
        """The topic levels that name this feed in one topic family."""
        found = (self._family(p) for p in self.topics)
        return tuple(leaf for f, leaf in (x for x in found if x is not None) if f == family)

    @property
    def table_columns(self) -> tuple[str, ...]:
        """Every column of its table in the order the writer COPYs them."""
        return (*HEAD_COLUMNS, *self.columns, *TAIL_COLUMNS)

    @property
    def required_fields(self) -> tuple[str, ...]:
        """The payload fields a message must carry, in the model's order."""
        return required_fields(self.model)

    @property
    def schema_name(self) -> str:
        """Its JSON Schema's name (docs/schemas/<name>.schema.json): a feed only teams send
        is ``team-<feed>``."""
        return f"team-{self.feed}" if not self.leaves("wuwang") else str(self.feed)


class FeedSpecs:
    """A set of feeds, and what follows from it: topic routing, message parsing, the
    ingest's subscriptions, the JSON Schemas. ``FEEDS`` is contract v1's; a test may build
    another (a feed of its own) and get all of it without touching the services."""

    def __init__(self, specs: Iterable[FeedSpec]) -> None:
        self.specs = tuple(specs)
        self._by_feed: dict[Feed, FeedSpec] = {}
        self._readers: dict[Feed, _Reader] = {}
        self._by_leaf: dict[tuple[str, str], FeedSpec] = {}
        tables: set[str] = set()
        for spec in self.specs:
            if spec.feed in self._by_feed:
                raise ValueError(f"feed {spec.feed} specified twice")
            if spec.table in tables:
                raise ValueError(f"table {spec.table} holds two feeds")
            self._by_feed[spec.feed] = spec
            self._readers[spec.feed] = _Reader.of(spec.model)
            tables.add(spec.table)
            for pattern in spec.topics:
                family = FeedSpec._family(pattern)
                assert family is not None  # FeedSpec checked it
                if family in self._by_leaf:
                    raise ValueError(f"topic pattern {pattern!r} carries two feeds")
                if family in _COMMAND_TOPICS:
                    raise ValueError(f"topic pattern {pattern!r} is the command service's")
                self._by_leaf[family] = spec
        self._wuwang = {leaf: s.feed for (family, leaf), s in self._by_leaf.items() if family == "wuwang"}
        self._team = {leaf: s.feed for (family, leaf), s in self._by_leaf.items() if family == "teams"}
        # Cached: a feed's topics repeat (one per device, camera, team), and Topic is frozen.
        self.parse_topic: Callable[[str], Topic] = functools.lru_cache(maxsize=TOPIC_CACHE_SIZE)(
            self._parse_topic
        )

    def __iter__(self) -> Iterator[FeedSpec]:
        return iter(self.specs)

    def __getitem__(self, feed: Feed) -> FeedSpec:
        return self._by_feed[feed]

    def of_table(self, table: str) -> FeedSpec:
        """The feed stored in ``table``; KeyError for any other table."""
        for spec in self.specs:
            if spec.table == table:
                return spec
        raise KeyError(table)

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return tuple(self._by_feed)

    def on(self, family: Literal["wuwang", "teams"]) -> tuple[Feed, ...]:
        """The feeds one topic family carries, in specification order."""
        return tuple(s.feed for s in self.specs if s.leaves(family))

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """What the ingest subscribes to (inbound feeds only; dispatch/ack belong to
        command): the live feeds, and the same behind every exercise's prefix. Every
        ``wuwang/v1`` topic, so that an unknown network or feed is dead-lettered with
        its reason; on ``teams/v1`` only the feeds' leaves (the rest is command's)."""
        live = [f"wuwang/{CONTRACT_VERSION}/+/+/+"] if self._wuwang else []
        live += [p for s in self.specs for p in s.topics if _TEAM_PATTERN.fullmatch(p)]
        return (*live, *(f"{EXERCISE_PREFIX}/+/{t}" for t in live))

    def _parse_topic(self, topic: str) -> Topic:
        """A contract v1 inbound topic, or its copy behind ``exercise/v1/<exercise_id>/``."""
        split = _split_exercise(topic)
        if split is None:
            return self._parse_live_topic(topic)
        exercise_id, rest = split
        if not EXERCISE_ID_RE.fullmatch(exercise_id):
            raise ContractError(BAD_EXERCISE_ID)
        # Only a live topic may follow: an exercise inside an exercise is not v1.
        live = self._parse_live_topic(rest)
        return Topic(feed=live.feed, network=live.network, source_id=live.source_id, exercise_id=exercise_id)

    def _parse_live_topic(self, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) == 5 and parts[0] == "wuwang" and parts[1] == CONTRACT_VERSION:
            _, _, network, feed, source_id = parts
            net = _NETWORK_OF.get(network)
            if net is None:
                raise ContractError(f"unknown network {network[:32]!r}")
            wuwang_feed = self._wuwang.get(feed)
            if wuwang_feed is None:
                raise ContractError(f"unknown feed {feed[:32]!r}")
            if not _SOURCE_ID_RE.fullmatch(source_id):
                raise ContractError("source_id in topic does not match [A-Za-z0-9_.-]{1,64}")
            return Topic(feed=wuwang_feed, network=net, source_id=source_id)
        if len(parts) == 4 and parts[0] == "teams" and parts[1] == CONTRACT_VERSION:
            _, _, team_id, leaf = parts
            team_feed = self._team.get(leaf)
            if team_feed is None:
                raise ContractError(f"not an inbound team topic: {leaf[:32]!r}")
            if not _SOURCE_ID_RE.fullmatch(team_id):
                raise ContractError("team id in topic does not match [A-Za-z0-9_.-]{1,64}")
            return Topic(feed=team_feed, network=None, source_id=team_id)
        raise ContractError(NOT_V1)

    def parse_message(
        self, topic: str, payload: bytes, received_at: datetime, window: TsWindow | None = None
    ) -> Message:
        """Read one message. Raises ContractError with the reason when it cannot be read, or
        when ``window`` is given and ``ts`` lies outside it (the ingest's door; without a
        window only the contract's shape is checked, as for the documentation's examples)."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        parsed_topic = self.parse_topic(topic)
        reader = self._readers[parsed_topic.feed]
        # The fast path: msgspec decodes the struct, and the document once more as plain
        # values (the extra fields, which the struct skips). Whatever it does not settle —
        # a refusal, or a case where msgspec reads differently from the contract — goes to
        # the slow path, which gives the reason (or, rarely, the very same message).
        body, extra, sent, clean = _read_body(reader, payload)
        if sent is None:
            ts, from_receipt = received_at, True
        else:
            ts, from_receipt = sent, False
            if window is not None:
                window.check(ts, received_at)
        return Message(parsed_topic, body, ts, received_at, from_receipt, extra, clean)

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """One JSON Schema per feed, as exported to docs/schemas/: generated by msgspec
        from the payload struct, with the enumerations it uses under ``$defs``."""
        return {
            spec.schema_name: _struct_schema(
                spec.model, f"wuwang/{CONTRACT_VERSION}/{spec.schema_name}.schema.json"
            )
            for spec in self.specs
        }


@dataclass(frozen=True, slots=True)
class _Reader:
    """What ``parse_message`` needs of one payload struct, built once per feed."""

    model: type[_Payload]
    decoder: msgspec.json.Decoder[_Payload]  # msgspec compiles one per type
    patterned: tuple[str, ...]  # its string fields with a pattern
    declared: frozenset[str]  # the field names it declares (the rest of a message is extra)
    unbounded: tuple[str, ...]  # its integer fields whose bounds do not keep them within 64 bits

    @classmethod
    def of(cls, model: type[_Payload]) -> _Reader:
        patterned = strict_json.patterned_fields(model)
        declared = frozenset(model.__struct_fields__)
        unbounded = strict_json.int_fields(model, within=(-(2**63), 2**64 - 1))
        return cls(model, msgspec.json.Decoder(model), patterned, declared, unbounded)


#: (the struct, the extra fields, its ts read; None when it sent none)
_Read = tuple[_Payload, dict[str, Any], datetime | None]


def _fast_read(reader: _Reader, payload: bytes) -> _Read | None:
    """What ``_slow_read`` would return, when msgspec reads the payload as the contract
    does; None when the slow path must decide (a refusal, or a case msgspec reads otherwise)."""
    try:
        body = reader.decoder.decode(payload)
        document = _DOCUMENT.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    sent = None if body.ts is None else _read_ts(body.ts)
    if isinstance(sent, str):
        return None
    # Python's "$", which msgspec's pattern check uses, also matches before a final
    # newline; ECMA's (the contract's) does not: "smoke\n" (strict_json.ecma_pattern). A
    # decoded newline needs the escape \n or \u000a in the bytes: without either, no field
    # ends with one.
    if b"\\n" in payload or b"\\u000" in payload:
        for name in reader.patterned:
            value = getattr(body, name)
            if value is not None and value.endswith("\n"):
                return None
    # What could not be stored (``_unstorable``): msgspec refuses NaN, Infinity, numbers
    # beyond a double and lone surrogates; U+0000 is the escape \u0000 in the bytes; what
    # is left is an integer beyond 64 bits, in an integer field or an extra one. Too deep
    # for the contract takes more than MAX_DEPTH brackets. Any doubt (rare) has the slow
    # path decide.
    if b"\\u0000" in payload:
        return None
    extra = _extra_fields(document, reader.declared)
    if (extra and _doubtful(extra.values())) or (
        reader.unbounded and _doubtful(getattr(body, name) for name in reader.unbounded)
    ):
        return None
    # 201 levels take 201 opening and 201 closing brackets
    if len(payload) > 2 * strict_json.MAX_DEPTH and (
        payload.count(b"[") + payload.count(b"{") > strict_json.MAX_DEPTH
        and strict_json.nesting_problem(document) is not None
    ):
        return None
    return body, extra, sent


def _extra_fields(document: dict[str, Any], declared: frozenset[str]) -> dict[str, Any]:
    """The document's fields the struct does not declare, in the document's order (one set
    difference settles the usual none or one)."""
    undeclared = document.keys() - declared
    if len(undeclared) < 2:
        return {k: document[k] for k in undeclared}
    return {k: v for k, v in document.items() if k in undeclared}


def _doubtful(values: Iterable[Any]) -> bool:
    """Whether one of these decoded values may not be storable: an integer beyond 64 bits,
    or a nested value ``_unstorable`` refuses."""
    for value in values:
        kind = type(value)
        if kind is int:
            if not -(2**63) <= value < 2**64:
                return True
        elif (kind is dict or kind is list) and _unstorable(value) is not None:
            return True
    return False


def _slow_read(reader: _Reader, payload: bytes) -> _Read:
    """Read the payload with Python's json, and either refuse it with every problem named
    (``ContractError``) or return what the fast path would have returned."""
    try:
        document = strict_json.load(payload)
    except strict_json.Unreadable as exc:
        raise ContractError(f"{BAD_JSON} ({exc.detail[:100]})") from None
    if not isinstance(document, dict):
        raise ContractError(NOT_AN_OBJECT)
    problems = strict_json.explain(reader.model, document, _REFINEMENTS)
    if problems:
        raise ContractError(_describe(problems))
    declared = {k: v for k, v in document.items() if k in reader.declared}
    try:
        body = msgspec.convert(declared, reader.model)
    except msgspec.ValidationError as exc:  # explain() and msgspec disagree: still a refusal
        raise ContractError(f"payload: {exc}") from None
    sent = None if body.ts is None else _read_ts(body.ts)
    assert not isinstance(sent, str)  # explain() checked it
    return body, _extra_fields(document, reader.declared), sent


def _read_body(reader: _Reader, payload: bytes) -> tuple[_Payload, dict[str, Any], datetime | None, bool]:
    """The struct, its extra fields, its ts and whether its text is known to be storable
    (read on the fast path), or ContractError with every reason.

    The fast path: msgspec decodes the struct, and the document once more as plain values
    (the extra fields, which the struct skips). Whatever it does not settle — a refusal,
    or a case where msgspec reads differently from the contract — goes to the slow path,
    which gives the reason (or, rarely, the very same message)."""
    read = _fast_read(reader, payload)
    body, extra, sent = read if read is not None else _slow_read(reader, payload)
    problem = body.cross_check()
    if problem is None and read is None:  # what the fast path lets through is storable
        problem = _unstorable(_all_values(body, extra))
    if problem is not None:
        raise ContractError(problem)
    return body, extra, sent, read is not None


def _struct_schema(model: type[_Payload], schema_id: str) -> dict[str, Any]:
    """A payload struct's JSON Schema as docs/schemas/ carries it (msgspec's, with the
    contract's enum order and the titles the schemas always had)."""
    generated = msgspec.json.schema(model)
    defs: dict[str, Any] = generated["$defs"]
    schema: dict[str, Any] = dict(defs.pop(model.__name__))
    for name, cls in strict_json.enum_types(model).items():
        # msgspec sorts the values and leaves out their type: the contract's order
        # (as docs/mqtt-contract.md lists them), and strings
        defs[name].update(enum=[str(m.value) for m in cls], type="string")
    if defs:
        schema["$defs"] = defs
    for name, prop in schema["properties"].items():  # the titles the schemas always had
        prop.setdefault("title", name.replace("_", " ").title())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = schema_id
    schema["additionalProperties"] = True
    return schema


#: Decodes any JSON into plain values (the document beside the struct).
_DOCUMENT = msgspec.json.Decoder()


_NETWORK_COLUMNS = ("network", "source_id", "msg_id")

#: Contract v1's feeds, in the contract's order (docs/mqtt-contract.md).
FEEDS = FeedSpecs(
    (
        FeedSpec(
            feed=Feed.SENSOR,
            topics=(f"wuwang/{CONTRACT_VERSION}/+/sensor/+",),
            model=SensorReading,
            table="sensor_reading",
            columns=(*_NETWORK_COLUMNS, "device_id", "kind", "value", "unit", "lat", "lon", "grid_cell_id"),
            row=_sensor_row,
            message=_sensor_message,
            alarm="sensor",
            chart=Chart.PER_MINUTE,
            colour="#4fc3f7",
            label_key="feed.sensor",
        ),
        FeedSpec(
            feed=Feed.VIDEO,
            topics=(f"wuwang/{CONTRACT_VERSION}/+/video/+",),
            model=VideoAlert,
            table="video_alert",
            columns=(
                *_NETWORK_COLUMNS,
                "camera_id",
                "event",
                "confidence",
                "lat",
                "lon",
                "snapshot_url",
                "bbox",
                "grid_cell_id",
            ),
            row=_video_row,
            message=_video_message,
            alarm="video",
            chart=Chart.PER_MINUTE,
            colour="#ec407a",
            label_key="feed.video",
        ),
        FeedSpec(
            feed=Feed.CALL,
            topics=(f"wuwang/{CONTRACT_VERSION}/+/call/+",),
            model=EmergencyCall,
            table="emergency_call",
            columns=(
                *_NETWORK_COLUMNS,
                "call_id",
                "category",
                "lat",
                "lon",
                "address",
                "description",
                "caller",
                "priority",
                "grid_cell_id",
            ),
            row=_call_row,
            message=_call_message,
            alarm="call",
            chart=Chart.PER_MINUTE,
            colour="#ffb300",
            label_key="feed.call",
        ),
        FeedSpec(
            feed=Feed.REPORT,
            topics=(f"wuwang/{CONTRACT_VERSION}/+/report/+", f"teams/{CONTRACT_VERSION}/+/report"),
            model=FieldReport,
            table="field_report",
            columns=(
                *_NETWORK_COLUMNS,
                "team_id",
                "reporter",
                "category",
                "description",
                "lat",
                "lon",
                "photo_url",
                "grid_cell_id",
            ),
            row=_report_row,
            message=_report_message,
            alarm="report",
            chart=Chart.PER_MINUTE,
            colour="#9ccc65",
            label_key="feed.report",
        ),
        FeedSpec(
            feed=Feed.POSITION,
            topics=(f"teams/{CONTRACT_VERSION}/+/position",),
            model=TeamPosition,
            table="team_position",
            columns=("team_id", "msg_id", "lat", "lon", "speed", "heading", "seq", "grid_cell_id"),
            row=_position_row,
            message=_position_message,
            alarm=None,
            chart=None,
            colour="#b0bec5",
            label_key="feed.position",
        ),
        FeedSpec(
            feed=Feed.STATUS,
            topics=(f"teams/{CONTRACT_VERSION}/+/status",),
            model=TeamStatusUpdate,
            table="team_status",
            columns=("team_id", "msg_id", "status", "incident_id", "seq"),
            row=_status_row,
            message=_status_message,
            alarm=None,
            chart=None,
            colour="#b0bec5",
            label_key="feed.status",
        ),
    )
)

#: Each feed's payload model (derived: the specification holds it).
PAYLOAD_MODELS: Mapping[Feed, type[_Payload]] = MappingProxyType({spec.feed: spec.model for spec in FEEDS})
WUWANG_FEEDS = FEEDS.on("wuwang")  # on wuwang/v1/<network>/<feed>/<source_id>
TEAM_FEEDS = FEEDS.on("teams")  # on teams/v1/<team_id>/<feed>

#: What the ingest subscribes to (``FeedSpecs.subscriptions``).
INGEST_SUBSCRIPTIONS = FEEDS.subscriptions

#: A contract v1 inbound topic, or its copy behind ``exercise/v1/<exercise_id>/``.
parse_topic = FEEDS.parse_topic
parse_message = FEEDS.parse_message
json_schemas = FEEDS.json_schemas


# --- version 2 beside version 1: shelter occupancy (docs/mqtt-contract.md §12) ---------
#
# v1 is frozen (§1), so a team's count of the people in an emergency shelter is a v2
# leaf: ``teams/v2/<team_id>/shelter``. It is not a stored feed of FEEDS (the ingest's
# time-series tables): like a status or an ack, the command service applies it to its
# shelter registry with the registry's rules, once per (team, id).

SHELTER_CONTRACT_VERSION = "v2"

#: The largest count a message may carry at all: more people than the largest
#: shelters hold (a stadium's tens of thousands) is a broken sender, refused at the door;
#: the registry's own rule (at most twice the shelter's capacity) comes after it.
MAX_SHELTER_OCCUPANCY = 200_000

SHELTER_ID_PATTERN = r"^SH-[0-9A-Za-z-]{2,40}$"


class ShelterOccupancyReport(_Payload, frozen=True, kw_only=True):
    """A field team's count of the people in a shelter (应急避难场所 安置人数)."""

    shelter_id: Annotated[str, Meta(pattern=SHELTER_ID_PATTERN, description="the shelter, SH-…")]
    occupancy: Annotated[int, Meta(ge=0, le=MAX_SHELTER_OCCUPANCY, description="people in it now")]
    status: Annotated[ShelterStatus | None, Meta(
        description="open or close it with the count; a count at capacity makes it full"
    )] = None


_SHELTER_READER = _Reader.of(ShelterOccupancyReport)


def shelter_topic(team_id: str) -> str:
    return f"teams/{SHELTER_CONTRACT_VERSION}/{team_id}/shelter"


#: What the command service subscribes to for the counts (shared among its processes).
SHELTER_SUBSCRIPTION = shelter_topic("+")


@dataclass(frozen=True, slots=True)
class ShelterMessage:
    """One readable shelter count: who sent it, what it says, and when it was counted."""

    team_id: str
    report: ShelterOccupancyReport
    ts: datetime
    ts_from_receipt: bool


def shelter_team_of(topic: str) -> str | None:
    """The team of a ``teams/v2/<team_id>/shelter`` topic; None for any other topic."""
    parts = topic.split("/")
    if (
        len(parts) == 4
        and parts[0] == "teams"
        and parts[1] == SHELTER_CONTRACT_VERSION
        and parts[3] == "shelter"
        and _SOURCE_ID_RE.fullmatch(parts[2])
    ):
        return parts[2]
    return None


def parse_shelter_report(
    topic: str, payload: bytes, received_at: datetime, window: TsWindow | None = None
) -> ShelterMessage:
    """Read one shelter count; ContractError with the reason when it cannot be read."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    team_id = shelter_team_of(topic)
    if team_id is None:
        raise ContractError(f"not a shelter topic teams/{SHELTER_CONTRACT_VERSION}/<team_id>/shelter")
    body, _extra, sent, _clean = _read_body(_SHELTER_READER, payload)
    assert isinstance(body, ShelterOccupancyReport)  # the reader's struct
    if sent is None:
        return ShelterMessage(team_id, body, received_at, True)
    if window is not None:
        window.check(sent, received_at)
    return ShelterMessage(team_id, body, sent, False)


def shelter_json_schema() -> dict[str, Any]:
    """The v2 shelter count's JSON Schema, as exported to docs/schemas/v2/."""
    return _struct_schema(
        ShelterOccupancyReport, f"wuwang/{SHELTER_CONTRACT_VERSION}/team-shelter.schema.json"
    )
