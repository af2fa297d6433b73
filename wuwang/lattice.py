"""The grid lattice (网格): square cells of ``grid_cell_deg`` degrees on WGS-84.

A cell's id is pure arithmetic on a position, so the ingest tags every message with
its cell without a lookup. This module is the lattice alone — no geometry library — so
the hot path does not load the demo city generator (``wuwang.city``, shapely), which
builds the city's cells from these same squares.
"""

from __future__ import annotations

import math


def default_deg() -> float:
    """The configured cell size (``GRID_CELL_DEG``)."""
    from wuwang.settings import get_settings  # late: settings validate the environment

    return get_settings().shared.grid_cell_deg


def cell_index(lat: float, lon: float, deg: float) -> tuple[int, int]:
    """The (row, col) of the lattice square holding a WGS-84 point."""
    return math.floor(lat / deg), math.floor(lon / deg)


def grid_cell_id(lat: float, lon: float, deg: float | None = None) -> str:
    """The lattice cell holding a WGS-84 point: "r{floor(lat/deg)}c{floor(lon/deg)}".

    Pure arithmetic, O(1), no lookup: the ingest calls it for every message. A point
    outside the city gets an id all the same; that id is simply not in the grid_cell
    registry (the city's cells are exactly the lattice cells that overlap a district).
    Cells on the lattice's lower/left edges are closed, upper/right edges open.
    ``lat``/``lon`` must be finite (the contract refuses NaN and infinities).
    """
    row, col = cell_index(lat, lon, default_deg() if deg is None else deg)
    return f"r{row}c{col}"
