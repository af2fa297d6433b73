"""The address an order gives its team: the 110 caller's address when the incident has
a call with one, else the place described from the demo city (``wuwang.places``: the
nearest crossing of named main roads and the nearest registered venue as landmark)."""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection

from command.domain.incidents import Incident
from wuwang.city import load_districts
from wuwang.geo import metres_per_degree
from wuwang.places import LANDMARK_WITHIN_M, Landmark, crossing_place, describe_place

AddressSource = Literal["call", "nearest"]


async def call_address(conn: AsyncConnection[Any], incident: Incident) -> str | None:
    """The address of the incident's earliest 110 call that has one (from the alarm ledger)."""
    calls = [s.alarm_id for s in incident.sources if s.kind == "call"]
    if not calls:
        return None
    cur = await conn.execute(
        "SELECT payload->'details'->>'address' FROM alarm_inbox WHERE alarm_id = ANY(%s)"
        " AND coalesce(payload->'details'->>'address', '') <> '' ORDER BY payload->>'ts' LIMIT 1",
        (calls,),
    )
    row = await cur.fetchone()
    if row is None or not str(row[0]).strip():
        return None
    return str(row[0]).strip()


async def landmarks_near(conn: AsyncConnection[Any], lat: float, lon: float) -> list[Landmark]:
    """Registered venues within the landmark radius's bounding box, nearest first."""
    m_lat, m_lon = metres_per_degree(lat)
    d_lat, d_lon = LANDMARK_WITHIN_M / m_lat, LANDMARK_WITHIN_M / m_lon
    cur = await conn.execute(
        "SELECT name, lat, lon FROM venue WHERE lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s"
        " ORDER BY (lat - %s) ^ 2 + ((lon - %s) * %s) ^ 2 LIMIT 5",
        (lat - d_lat, lat + d_lat, lon - d_lon, lon + d_lon, lat, lon, m_lon / m_lat),
    )
    return [Landmark(name, float(la), float(lo)) for name, la, lo in await cur.fetchall()]


async def order_address(
    conn: AsyncConnection[Any], incident: Incident
) -> tuple[str | None, AddressSource | None]:
    """(address, where it comes from) for the incident's scene; (None, None) without a place."""
    called = await call_address(conn, incident)
    if called is not None:
        return called, "call"
    if incident.lat is None or incident.lon is None:
        return None, None
    landmarks = await landmarks_near(conn, incident.lat, incident.lon)
    return describe_place(incident.lat, incident.lon, load_districts(), landmarks), "nearest"


def alarm_place(lat: float | None, lon: float | None) -> str | None:
    """An alarm's point in words for a new incident's title: the nearest crossing of
    named main roads in its district (``樊城区人民路与邓城大道交叉口附近``); None
    without a point or outside the city (the title then gives the coordinates). No
    landmark: the title stays short, the team's order gives the whole address. The
    inbox panel says an inbox row's place by the same rule (:func:`crossing_place`)."""
    if lat is None or lon is None:
        return None
    return crossing_place(lat, lon, load_districts())
