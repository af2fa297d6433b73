"""Pure conversion of a parsed ``Message`` into a row of its feed table. No I/O.

A message that parsed but cannot be stored as it is (a NUL character, which
PostgreSQL text and jsonb refuse; an integer beyond bigint; an extra field orjson
cannot encode) raises ``Unstorable``: the writer dead-letters it instead of letting
one message fail its whole batch again and again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from wuwang.contract import (
    ContractError,
    EmergencyCall,
    Feed,
    FieldReport,
    Message,
    SensorReading,
    TeamPosition,
    TeamStatusUpdate,
    VideoAlert,
)
from wuwang.lattice import grid_cell_id

BIGINT_MAX = 2**63 - 1

#: Column order of each feed table as the writer COPYs it (migrations 0001 and 0007:
#: ``exercise_id`` last, NULL for live messages).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sensor_reading": (
        "ts", "received_at", "ts_from_receipt", "network", "source_id", "msg_id",
        "device_id", "kind", "value", "unit", "lat", "lon", "grid_cell_id", "extra", "exercise_id",
    ),
    "video_alert": (
        "ts", "received_at", "ts_from_receipt", "network", "source_id", "msg_id",
        "camera_id", "event", "confidence", "lat", "lon", "snapshot_url", "bbox", "grid_cell_id", "extra",
        "exercise_id",
    ),
    "emergency_call": (
        "ts", "received_at", "ts_from_receipt", "network", "source_id", "msg_id",
        "call_id", "category", "lat", "lon", "address", "description", "caller", "priority",
        "grid_cell_id", "extra", "exercise_id",
    ),
    "field_report": (
        "ts", "received_at", "ts_from_receipt", "network", "source_id", "msg_id", "team_id",
        "reporter", "category", "description", "lat", "lon", "photo_url", "grid_cell_id", "extra",
        "exercise_id",
    ),
    "team_position": (
        "ts", "received_at", "ts_from_receipt", "team_id", "msg_id",
        "lat", "lon", "speed", "heading", "seq", "grid_cell_id", "extra", "exercise_id",
    ),
    "team_status": (
        "ts", "received_at", "ts_from_receipt", "team_id", "msg_id", "status", "incident_id", "seq", "extra",
        "exercise_id",
    ),
}

FEED_TABLES: dict[Feed, str] = {
    Feed.SENSOR: "sensor_reading",
    Feed.VIDEO: "video_alert",
    Feed.CALL: "emergency_call",
    Feed.REPORT: "field_report",
    Feed.POSITION: "team_position",
    Feed.STATUS: "team_status",
}


class Unstorable(ContractError):
    """Parsed, but the database would refuse it (reason says why)."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message is: its own coordinates, or its registered device's."""

    lat: float | None
    lon: float | None
    grid_cell_id: str | None


NOWHERE = Place(None, None, None)

#: device id → (lat, lon) from the ``device`` registry.
DevicePositions = Mapping[str, tuple[float, float]]


def place_of(msg: Message, grid_deg: float, devices: DevicePositions) -> Place:
    p = msg.payload
    lat: float | None = getattr(p, "lat", None)
    lon: float | None = getattr(p, "lon", None)
    if lat is None or lon is None:
        if isinstance(p, SensorReading) and p.device_id in devices:
            lat, lon = devices[p.device_id]
        else:
            return NOWHERE
    return Place(lat, lon, grid_cell_id(lat, lon, grid_deg))


#: device id → the source id that speaks for it (``device.gateway_id``, else the device's own id).
DevicePublishers = Mapping[str, str]


def foreign_device(msg: Message, publishers: DevicePublishers) -> str | None:
    """Why a live sensor reading may not be taken from its publisher, or None.

    The topic's ``source_id`` is the account that sent it (the broker's ACL binds the
    two); a gateway speaks only for the devices registered behind it, and a device
    registered without a gateway only for itself. An unregistered device is accepted
    from anyone (contract v1: registration is optional), harmlessly: its alarm state is
    kept per publisher. A drill's copy is the drill runner's and has a state of its own."""
    p = msg.payload
    if not isinstance(p, SensorReading) or msg.topic.exercise_id is not None:
        return None
    registered = publishers.get(p.device_id)
    if registered is None or registered == msg.topic.source_id:
        return None
    return (f"device_id {p.device_id!r} is not registered behind source {msg.topic.source_id!r}"
            f" (registered: {registered!r})")


def table_for(msg: Message) -> str:
    return FEED_TABLES[msg.feed]


def _check_text(value: Any, where: str) -> None:
    """Reject what PostgreSQL refuses in text/jsonb: NUL, and unencodable surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise Unstorable(f"{where}: text contains NUL (U+0000), which PostgreSQL cannot store")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unstorable(f"{where}: text is not valid Unicode (lone surrogate)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, where)
            _check_text(v, where)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_text(v, where)


def _all_plain(values: Iterable[Any]) -> bool:
    """True when every value is certainly storable as it is: None, a bool or number, or
    a str (or StrEnum member) without NUL that encodes as UTF-8. False means "ask
    ``_check_text``" (which names the problem, if there is one), never "refused"."""
    for value in values:
        kind = type(value)
        if kind is float or kind is int or kind is bool or value is None:
            continue
        if kind is not str and not isinstance(value, str):
            return False  # nested, or another type: the full check decides
        if "\x00" in value:
            return False
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


#: Field names of each payload model (``model_fields`` is a slow descriptor on the class).
_FIELDS: dict[type, tuple[str, ...]] = {}


def _check_payload(p: Any) -> None:
    """``_check_text`` on every field of the payload, in field order: one quick pass
    over the values (``_all_plain``); the field-by-field check only when a value needs
    it (nested, or possibly refused), so the reason is always ``_check_text``'s."""
    model = type(p)
    fields = _FIELDS.get(model)
    if fields is None:
        fields = _FIELDS[model] = tuple(model.model_fields)
    values = p.__dict__
    if len(values) == len(fields) and _all_plain(values.values()):
        return
    for name in fields:
        _check_text(getattr(p, name), name)


def _json(value: Any, where: str) -> str:
    if type(value) is not dict or not (_all_plain(value) and _all_plain(value.values())):
        _check_text(value, where)  # else flat and clean: no or a few scalar extra fields
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise Unstorable(f"{where}: cannot be stored as JSON ({exc})") from None


def _bigint(value: int | None, where: str) -> int | None:
    if value is not None and value > BIGINT_MAX:
        raise Unstorable(f"{where}: {value} exceeds the 64-bit range")
    return value


def row_for(msg: Message, place: Place) -> tuple[str, tuple[Any, ...]]:
    """(table, values in TABLE_COLUMNS order). Raises Unstorable."""
    table, values = _values(msg, place)
    # The exercise the message was published in (exercise/v1/<id>/...); NULL when live.
    return table, (*values, msg.topic.exercise_id)


def _values(msg: Message, place: Place) -> tuple[str, tuple[Any, ...]]:
    p = msg.payload
    _check_payload(p)
    extra = _json(msg.extra, "extra fields")
    common = (msg.ts, msg.received_at, msg.ts_from_receipt)
    topic = msg.topic
    network = str(topic.network) if topic.network is not None else None
    cell = place.grid_cell_id
    if isinstance(p, SensorReading):
        return "sensor_reading", (
            *common, network, topic.source_id, p.id,
            p.device_id, p.kind, p.value, p.unit, place.lat, place.lon, cell, extra,
        )
    if isinstance(p, VideoAlert):
        bbox = _json(p.bbox, "bbox") if p.bbox is not None else None
        return "video_alert", (
            *common, network, topic.source_id, p.id,
            p.camera_id, p.event, p.confidence, p.lat, p.lon, p.snapshot_url, bbox, cell, extra,
        )
    if isinstance(p, EmergencyCall):
        return "emergency_call", (
            *common, network, topic.source_id, p.id,
            p.call_id, str(p.category), p.lat, p.lon, p.address, p.description, p.caller, p.priority,
            cell, extra,
        )
    if isinstance(p, FieldReport):
        # A team's report (teams/v1/<id>/report) has no network; team_id says who sent it.
        team_id = topic.source_id if topic.is_team else None
        return "field_report", (
            *common, network, topic.source_id, p.id, team_id,
            p.reporter, p.category, p.description, p.lat, p.lon, p.photo_url, cell, extra,
        )
    if isinstance(p, TeamPosition):
        return "team_position", (
            *common, topic.source_id, p.id,
            p.lat, p.lon, p.speed, p.heading, _bigint(p.seq, "seq"), cell, extra,
        )
    if isinstance(p, TeamStatusUpdate):
        return "team_status", (
            *common, topic.source_id, p.id, str(p.status), p.incident_id, _bigint(p.seq, "seq"), extra,
        )
    raise Unstorable(f"no table for feed {msg.feed}")  # pragma: no cover - contract and table list agree
