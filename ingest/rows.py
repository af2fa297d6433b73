"""Pure conversion of a parsed ``Message`` into a row of its feed table, straight from
the decoded payload struct (``FeedSpec.row`` reads its attributes). No I/O.

A message that parsed but cannot be stored as it is (a NUL character, which
PostgreSQL text and jsonb refuse; an integer beyond bigint; an extra field orjson
cannot encode) raises ``Unstorable``: the writer dead-letters it instead of letting
one message fail its whole batch again and again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from msgspec import structs

from wuwang.contract import FEEDS, FeedSpecs, Message, SensorReading, VideoAlert, json_column

# Both belong to the feed specification; the ingest's modules know them from here.
from wuwang.contract import Place as Place
from wuwang.contract import Unstorable as Unstorable
from wuwang.lattice import grid_cell_id

#: Column order of each feed table as the writer COPYs it (``FeedSpec.table_columns``).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {spec.table: spec.table_columns for spec in FEEDS}


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


#: What a payload speaks for, as registered: (its id field, the id). A sensor reading names a
#: ``device``, a video alert a ``camera``: two registries, so the field keeps their ids apart.
Subject = tuple[str, str]

#: subject → the source id that speaks for it (its ``gateway_id``, else its own id).
Publishers = Mapping[Subject, str]


def subject_of(payload: object) -> Subject | None:
    """The registered thing a payload speaks for, or None for feeds that name none."""
    if isinstance(payload, SensorReading):
        return ("device_id", payload.device_id)
    if isinstance(payload, VideoAlert):
        return ("camera_id", payload.camera_id)
    return None


def foreign_subject(msg: Message, publishers: Publishers) -> str | None:
    """Why a live sensor reading or video alert may not be taken from its publisher, or None.

    The topic's ``source_id`` is the account that sent it (the broker's ACL binds the
    two); a gateway (a sensor gateway, a video platform) speaks only for the devices and
    cameras registered behind it, and one registered without a gateway only for itself.
    An unregistered id is accepted from anyone (contract v1: registration is optional),
    harmlessly: a sensor's alarm state is kept per publisher, and an alert's source is its
    publisher. A drill's copy is the drill runner's and has a state of its own."""
    if msg.topic.exercise_id:  # a drill's (``Topic.scope``), without building its Scope
        return None
    subject = subject_of(msg.payload)
    if subject is None:
        return None
    registered = publishers.get(subject)
    if registered is None or registered == msg.topic.source_id:
        return None
    field, ident = subject
    return (f"{field} {ident!r} is not registered behind source {msg.topic.source_id!r}"
            f" (registered: {registered!r})")


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


def _check_payload(p: Any) -> None:
    """``_check_text`` on every field of the payload, in field order: one quick pass
    over the struct's values (``_all_plain``); the field-by-field check only when a value
    needs it (nested, or possibly refused), so the reason is always ``_check_text``'s."""
    if _all_plain(structs.astuple(p)):
        return
    for name in p.__struct_fields__:
        _check_text(getattr(p, name), name)


def _json(value: Any, where: str) -> str:
    if type(value) is not dict or not (_all_plain(value) and _all_plain(value.values())):
        _check_text(value, where)  # else flat and clean: no or a few scalar extra fields
    return json_column(value, where)


def row_for(msg: Message, place: Place, feeds: FeedSpecs = FEEDS) -> tuple[str, tuple[Any, ...]]:
    """(table, values in TABLE_COLUMNS order): the head, the feed's own columns
    (``FeedSpec.row``), the extra fields and the exercise the message was published in
    (exercise/v1/<id>/...; NULL when live). Raises Unstorable."""
    spec = feeds[msg.topic.feed]
    if msg.clean_text:  # read on the contract's fast path: its text is storable as it is
        extra = json_column(msg.extra, "extra fields")
    else:
        _check_payload(msg.payload)
        extra = _json(msg.extra, "extra fields")
    return spec.table, (
        msg.ts, msg.received_at, msg.ts_from_receipt, *spec.row(msg, place), extra, msg.topic.exercise_id
    )
