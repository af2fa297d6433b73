"""Charts and the heat layer from the per-minute aggregate ``feed_counts_1m``
(bucket, network, grid_cell_id, feed, n) — never from the raw feed tables.

With TimescaleDB it is a union of continuous aggregates; on plain PostgreSQL a
materialised view the ingest refreshes every ``AGGREGATE_REFRESH_S`` (60 s), so the
newest minute may be missing here for up to a minute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from dashboard import geo
from dashboard.data.db import ReadOnlyDatabase

_CELL = re.compile(r"^r(-?\d+)c(-?\d+)$")


@dataclass(frozen=True)
class Series:
    """One line of a chart: x (times) and y (counts)."""

    name: str
    x: list[str]
    y: list[int]


def neighbourhood(cell_id: str | None, radius: int = 1) -> list[str]:
    """A grid cell and its neighbours within ``radius`` cells (ids are lattice
    arithmetic, "r<row>c<col>", see wuwang.lattice.grid_cell_id)."""
    if not cell_id:
        return []
    m = _CELL.match(cell_id)
    if m is None:
        return [cell_id]
    r, c = int(m.group(1)), int(m.group(2))
    return [f"r{r + dr}c{c + dc}" for dr in range(-radius, radius + 1) for dc in range(-radius, radius + 1)]


async def calls_per_hour(db: ReadOnlyDatabase, now: datetime, tz: tzinfo, hours: int = 24) -> list[Series]:
    """110 calls per hour and network over the last ``hours`` hours."""
    rows = await db.fetch(
        "SELECT date_trunc('hour', bucket) AS hour, network, sum(n)::bigint FROM feed_counts_1m"
        " WHERE feed = 'call' AND bucket >= %(start)s AND bucket < %(end)s GROUP BY 1, 2 ORDER BY 1, 2",
        {"start": now - timedelta(hours=hours), "end": now + timedelta(minutes=1)},
    )
    return _series(rows, tz)


async def activity_around(
    db: ReadOnlyDatabase,
    tz: tzinfo,
    cell_id: str | None,
    at: datetime,
    before: timedelta = timedelta(hours=2),
    after: timedelta = timedelta(hours=1),
) -> list[Series]:
    """Messages per minute and feed (sensor readings, video alerts, calls, reports) in
    an incident's grid cell and its eight neighbours around its time."""
    cells = neighbourhood(cell_id)
    if not cells:
        return []
    rows = await db.fetch(
        "SELECT bucket, feed, sum(n)::bigint FROM feed_counts_1m WHERE grid_cell_id = ANY(%(cells)s)"
        " AND bucket >= %(start)s AND bucket < %(end)s GROUP BY 1, 2 ORDER BY 1, 2",
        {"cells": cells, "start": at - before, "end": at + after},
    )
    return _series(rows, tz)


def _series(rows: list[tuple[Any, ...]], tz: tzinfo) -> list[Series]:
    """Rows (time, name, n) as one series per name; times on the command centre's
    wall clock (Plotly draws a time as written, whatever its offset)."""
    by_name: dict[str, tuple[list[str], list[int]]] = {}
    for when, name, n in rows:
        xs, ys = by_name.setdefault(str(name), ([], []))
        xs.append(when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"))
        ys.append(int(n))
    return [Series(name, xs, ys) for name, (xs, ys) in sorted(by_name.items())]


async def call_heat(db: ReadOnlyDatabase, now: datetime, hours: int, datum: geo.Datum) -> dict[str, Any]:
    """110 calls of the last ``hours`` hours per grid cell, as weighted points at the
    cells' centres (the heat layer)."""
    rows = await db.fetch(
        "SELECT f.grid_cell_id, c.center_lat, c.center_lon, sum(f.n)::bigint AS n"
        " FROM feed_counts_1m f JOIN grid_cell c ON c.id = f.grid_cell_id"
        " WHERE f.feed = 'call' AND f.bucket >= %(start)s GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 5000",
        {"start": now - timedelta(hours=hours)},
    )
    top = max((int(r[3]) for r in rows), default=0)
    return geo.collection(
        [
            geo.feature(lat, lon, datum, {"i": cell, "w": int(n), "r": round(int(n) / top, 3) if top else 0})
            for cell, lat, lon, n in rows
        ]
    )
