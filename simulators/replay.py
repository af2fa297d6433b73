"""Replay (复盘回放): a recorded window of the time-series store, or an imported dataset of
historical 110 calls, as the timed messages the exercise runner publishes.

What to replay is a ``ReplaySource`` — the JSON kept in ``exercise.source`` for an
exercise of kind ``replay`` (docs/exercises.md, "Replay"):

- ``{"window": {"start": "<RFC 3339>", "end": "<RFC 3339>"}}`` — every LIVE row (``exercise_id IS
  NULL``) of the six feed tables with ``start <= ts < end``, rebuilt into contract v1
  messages on their original topics with their original message ids (ingest keys ids
  per exercise, so that is allowed) and their unknown fields (``extra``);
- ``{"dataset_id": "<id>", "start"?: ..., "end"?: ... (null: open), "system_id"?: "sys110",
  "relocate_to"?: {"lat": .., "lon": ..}}`` — the ``imported_call`` rows of a dataset
  (optionally a window of it) as 110 calls on ``wuwang/v1/police/call/<system_id>``.

Each message's offset is its recorded time minus the start of what is replayed; the
runner (simulators/exercise_run.py) paces them at ×1–×100, stamps ``ts`` at send, and
measures the drift. Turning rows into messages is pure (``message_for_row``,
``message_for_imported``); the queries are the thin edge (``window_items``,
``dataset_items``, ``build_items``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.exercise_run import TimedMessage
from simulators.feeds import SYS110
from wuwang.contract import FEEDS, SOURCE_ID_PATTERN, Feed, Network, wuwang_topic
from wuwang.geo import MEAN_EARTH_RADIUS_M
from wuwang.scope import LIVE

# --- what to replay ------------------------------------------------------------------


class ReplaySourceError(ValueError):
    """An ``exercise.source`` that does not say what to replay."""


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class ReplaySource(BaseModel):
    """What a replay exercise plays: a recorded window, or an imported dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    dataset_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    system_id: str = Field(default=SYS110, pattern=f"^{SOURCE_ID_PATTERN}$",
                           description="the 110 system's source id on the call topic (datasets)")
    relocate_to: Point | None = Field(
        default=None,
        description="datasets: move the calls, keeping their distances and bearings, so that "
        "their centre lies here (e.g. a San Francisco day onto the demo city)",
    )

    @model_validator(mode="before")
    @classmethod
    def _flatten_window(cls, data: Any) -> Any:
        # The canonical form of a recorded window is {"window": {"start", "end"}}; a flat
        # {"start", "end"} is read too.
        if isinstance(data, dict) and isinstance(data.get("window"), dict):
            if "start" in data or "end" in data or "dataset_id" in data:
                raise ValueError("window: give the window alone, without start/end/dataset_id beside it")
            return {**{k: v for k, v in data.items() if k != "window"}, **data["window"]}
        return data

    @model_validator(mode="after")
    def _what(self) -> ReplaySource:
        if self.dataset_id is None:
            if self.start is None or self.end is None:
                raise ValueError("a recorded window needs start and end (or give dataset_id)")
            if self.relocate_to is not None:
                raise ValueError("relocate_to applies to imported datasets only")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def is_dataset(self) -> bool:
        return self.dataset_id is not None

    def to_source(self) -> str:
        """The JSON string to store in ``exercise.source`` (the canonical form)."""
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if self.dataset_id is None:
            window = {"start": data.pop("start"), "end": data.pop("end")}
            return json.dumps({"window": window, **data}, separators=(",", ":"))
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def parse_replay_source(text: str) -> ReplaySource:
    """Read ``exercise.source`` of a replay exercise. Raises ReplaySourceError."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ReplaySourceError(f"source is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise ReplaySourceError("source must be a JSON object")
    try:
        return ReplaySource.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "source"
        raise ReplaySourceError(f"{key}: {first['msg'].removeprefix('Value error, ')}") from None


# --- rows → messages (pure) ------------------------------------------------------------

#: What every feed's rows are read with, beside the feed's own columns (``FeedSpec.columns``).
_COMMON = ("ts", "received_at", "extra")


def message_for_row(table: str, row: Mapping[str, Any], start: datetime) -> TimedMessage:
    """A stored live row as the message that would have produced it, ``row.ts - start``
    seconds into the replay. Unknown fields (``extra``) travel again; the contract's
    fields win over an extra of the same name. ``ts`` is left to the runner."""
    try:
        spec = FEEDS.of_table(table)
    except KeyError:
        raise ValueError(f"not a feed table: {table}") from None
    topic, label, fields = spec.message(row)
    extra = row["extra"] if isinstance(row["extra"], dict) else {}
    payload = {k: v for k, v in extra.items() if k not in ("id", "ts")}
    payload.update(fields)
    payload["id"] = row["msg_id"]
    return TimedMessage((row["ts"] - start).total_seconds(), topic, payload, label)


@dataclass(frozen=True, slots=True)
class _Shift:
    """Moves points so that ``origin`` lands on ``target``, keeping east/north distances
    in metres (local equirectangular: faithful over a city's extent)."""

    origin: Point
    target: Point

    def apply(self, lat: float, lon: float) -> tuple[float, float]:
        rad = math.pi / 180
        north_m = (lat - self.origin.lat) * rad * MEAN_EARTH_RADIUS_M
        east_m = (lon - self.origin.lon) * rad * MEAN_EARTH_RADIUS_M * math.cos(self.origin.lat * rad)
        new_lat = self.target.lat + north_m / (rad * MEAN_EARTH_RADIUS_M)
        new_lon = self.target.lon + east_m / (rad * MEAN_EARTH_RADIUS_M * math.cos(new_lat * rad))
        return round(max(-90.0, min(90.0, new_lat)), 7), round(((new_lon + 180) % 360) - 180, 7)


def _centre(rows: Sequence[Mapping[str, Any]]) -> Point:
    """The middle of the calls: the median of each coordinate, robust to a stray far point."""
    lats = sorted(r["lat"] for r in rows)
    lons = sorted(r["lon"] for r in rows)
    return Point(lat=lats[len(lats) // 2], lon=lons[len(lons) // 2])


def message_for_imported(
    row: Mapping[str, Any], start: datetime, dataset_id: str, system_id: str = SYS110,
    shift: _Shift | None = None,
) -> TimedMessage:
    """One imported call record as a 110 call message. The message id is the record's
    line (unique in the dataset); ``call_id`` is the source's own number when it has one
    that fits. Where it came from travels along as the extra field ``imported``."""
    line = int(row["line_no"])
    external = row["external_id"]
    call_id = external if external and len(external) <= 64 else f"L{line}"
    lat, lon = float(row["lat"]), float(row["lon"])
    imported: dict[str, Any] = {"dataset_id": dataset_id, "line_no": line}
    if shift is not None:
        imported["recorded_at"] = [lat, lon]
        lat, lon = shift.apply(lat, lon)
    if row["extra"]:
        imported["columns"] = row["extra"]
    payload: dict[str, Any] = {
        "id": f"L{line}",
        "call_id": call_id,
        "category": row["category"],
        "lat": lat,
        "lon": lon,
        "address": row["address"][:500],
        "description": row["description"][:4000],
        "caller": "",  # imported records carry no caller (personal data is not imported)
        "imported": imported,
    }
    topic = wuwang_topic(Network.POLICE, Feed.CALL, system_id)
    return TimedMessage((row["ts"] - start).total_seconds(), topic, payload, f"line {line} {row['category']}")


# --- the database edge ---------------------------------------------------------------


def window_items(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> list[TimedMessage]:
    """Every live row of the six feeds with ``start <= ts < end``, as messages in time
    order (ties: received order, then the tables' order)."""
    keyed: list[tuple[datetime, datetime, int, TimedMessage]] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for k, spec in enumerate(FEEDS):  # in the specification's order: the tie-break
            table = spec.table
            query = sql.SQL(
                "SELECT {cols} FROM {table} WHERE {live} AND ts >= %s AND ts < %s ORDER BY ts, received_at"
            ).format(
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in (*_COMMON, *spec.columns)),
                table=sql.Identifier(table),
                live=LIVE.where(),
            )
            for row in cur.execute(query, (start, end)):
                keyed.append((row["ts"], row["received_at"], k, message_for_row(table, row, start)))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in keyed]


def dataset_items(
    conn: psycopg.Connection[Any],
    dataset_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    system_id: str = SYS110,
    relocate_to: Point | None = None,
) -> tuple[list[TimedMessage], datetime | None, datetime | None]:
    """An imported dataset (optionally ``start <= ts < end``) as 110 calls in time order
    (ties: file order). Returns (messages, replay start, replay end); the start is
    ``start`` or the first call, so the first call comes at offset 0 of an open window."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT line_no, ts, lat, lon, category, description, address, external_id, extra "
            "FROM imported_call WHERE dataset_id = %s "
            "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts < %s) "
            "ORDER BY ts, line_no",
            (dataset_id, start, start, end, end),
        ).fetchall()
    if not rows:
        return [], start, end
    origin = start or rows[0]["ts"]
    finish = end or rows[-1]["ts"]
    shift = _Shift(_centre(rows), relocate_to) if relocate_to is not None else None
    return [message_for_imported(r, origin, dataset_id, system_id, shift) for r in rows], origin, finish


class ReplayError(ValueError):
    """Nothing to replay (an unknown dataset), said plainly."""


@dataclass(frozen=True)
class ReplayPlan:
    items: list[TimedMessage]
    sim_start: datetime | None  # the replayed span, for the exercise row
    sim_end: datetime | None


def build_items(conn: psycopg.Connection[Any], source: ReplaySource) -> ReplayPlan:
    """The messages a replay exercise sends. Raises ReplayError for an unknown dataset."""
    if source.dataset_id is not None:
        found = conn.execute(
            "SELECT 1 FROM exercise WHERE id = %s AND kind = 'import'", (source.dataset_id,)
        ).fetchone()
        if found is None:
            raise ReplayError(f"no imported dataset {source.dataset_id!r}")
        items, first, last = dataset_items(
            conn, source.dataset_id, source.start, source.end,
            system_id=source.system_id, relocate_to=source.relocate_to,
        )
        return ReplayPlan(items, first, last)
    assert source.start is not None and source.end is not None  # validated
    return ReplayPlan(window_items(conn, source.start, source.end), source.start, source.end)
