"""Shelter counts (安置人数) of the demo's simulated teams: docs/mqtt-contract.md §12.

The feed stream (simulators/feeds.py) moves teams through call-outs but never counts
people in an emergency shelter, so without this the demo's shelter layer never moves.
:class:`ShelterCounts` watches that stream's team statuses and positions and now and
then has a team count the nearest open shelter within reach:

- a fire, hazmat, water-rescue or comprehensive team on scene is taken to be evacuating
  the neighbourhood (a fire, a chemical leak, a flood): its shelter fills slowly, 0.5–2 %
  of the capacity per 10 minutes, never above the capacity;
- any other team, or one not on scene, sees people going home: up to 0.1 % per 10 minutes.

A team counts at most every ``every_s`` (30 minutes), a shelter is counted at most every
``shelter_gap_s`` (10 minutes) by whoever is near: a few hundred counts a day.

Closed shelters are never counted (the console refuses people in a closed shelter).
Pure and deterministic for a seed and the stream it sees (no clock, no I/O); the
publisher (simulators/publish.py) sends what it returns on ``teams/v2/<team>/shelter``,
right after the team's position that prompted it (same source, so same shard and order).
The live city only: drills have no copy of this topic (virtual crews never count).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from wuwang.contract import TeamStatus, shelter_topic
from wuwang.demo_shelters import DEMO_SHELTERS
from wuwang.geo import haversine_m
from wuwang.risk import ShelterStatus

#: Team types whose call-out is taken to be an evacuation while on scene.
EVACUATING_TEAM_TYPES = frozenset({"fire", "hazmat", "water_rescue", "comprehensive"})
#: The time the filling and emptying rates are given for.
RATE_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class ShelterSite:
    """What a team needs to know of a shelter to count it."""

    shelter_id: str
    lat: float
    lon: float
    capacity: int
    is_open: bool
    occupancy: int


def demo_shelter_sites() -> list[ShelterSite]:
    """The demo city's shelters as loaded by ``python -m command.demo_risk``."""
    return [
        ShelterSite(hid, lat, lon, capacity, status == ShelterStatus.OPEN, occupancy)
        for hid, _name, _kind, lat, lon, _adcode, capacity, _facilities, status, occupancy in DEMO_SHELTERS
    ]


def next_occupancy(occupancy: int, capacity: int, elapsed_s: float, *, evacuating: bool, draw: float) -> int:
    """The count after ``elapsed_s`` seconds, ``draw`` a uniform number in [0, 1).

    An evacuation brings people in (at least one more while there is room); otherwise a
    few go home. Always within [0, capacity].
    """
    share = elapsed_s / RATE_WINDOW_S
    if evacuating:
        arrivals = max(1, math.ceil(capacity * (0.005 + 0.015 * draw) * share))
        return min(capacity, occupancy + arrivals)
    leavers = math.floor(capacity * 0.001 * draw * share)
    return max(0, min(capacity, occupancy - leavers))


@dataclass(slots=True)
class _Team:
    team_type: str
    status: str = TeamStatus.AVAILABLE.value
    last_count_at: float = -math.inf


@dataclass(slots=True)
class _Shelter:
    site: ShelterSite
    occupancy: int
    counted_at: float = -math.inf


@dataclass(frozen=True, slots=True)
class ShelterCount:
    """One count to publish: the team's topic and the payload (ShelterOccupancyReport)."""

    team_id: str
    topic: str
    payload: dict[str, Any]

    def body(self) -> bytes:
        return orjson.dumps(self.payload)


class ShelterCounts:
    """The counts the simulated teams send, from the team messages of the feed stream."""

    def __init__(
        self,
        sites: Iterable[ShelterSite],
        team_types: Mapping[str, str],
        *,
        run: str,
        seed: int | str = 0,
        every_s: float = 1800.0,
        shelter_gap_s: float = 600.0,
        reach_m: float = 5000.0,
    ) -> None:
        if every_s <= 0 or shelter_gap_s < 0 or reach_m <= 0:
            raise ValueError("every_s and reach_m must be positive, shelter_gap_s not negative")
        self._shelters = [_Shelter(s, min(max(s.occupancy, 0), s.capacity)) for s in sites if s.is_open]
        self._teams = {team_id: _Team(kind) for team_id, kind in team_types.items()}
        self._run = run
        self._rng = random.Random(f"shelter-counts:{seed}")
        self._every_s = every_s
        self._shelter_gap_s = shelter_gap_s
        self._reach_m = reach_m
        self._n = 0

    def occupancy(self, shelter_id: str) -> int | None:
        """The count last sent for an open shelter (its starting count before any)."""
        return next((s.occupancy for s in self._shelters if s.site.shelter_id == shelter_id), None)

    def observe(self, topic: str, payload: bytes, at: float) -> ShelterCount | None:
        """Take in one message of the stream (simulated seconds ``at``); a count when this
        team position makes one due, else None."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "teams" or parts[1] != "v1":
            return None
        team = self._teams.get(parts[2])
        if team is None or parts[3] not in ("status", "position"):
            return None
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None  # a deliberately bad message of the stream
        if not isinstance(body, dict):
            return None
        if parts[3] == "status":
            if isinstance(body.get("status"), str):
                team.status = body["status"]
            return None
        lat, lon = body.get("lat"), body.get("lon")
        if not isinstance(lat, float | int) or not isinstance(lon, float | int):
            return None
        if at - team.last_count_at < self._every_s or team.status == TeamStatus.OFF_DUTY:
            return None
        shelter = self._nearest(float(lat), float(lon))
        if shelter is None or at - shelter.counted_at < self._shelter_gap_s:
            return None
        team.last_count_at = at
        evacuating = team.status == TeamStatus.ON_SCENE and team.team_type in EVACUATING_TEAM_TYPES
        since = at - shelter.counted_at if math.isfinite(shelter.counted_at) else 0.0
        shelter.occupancy = next_occupancy(
            shelter.occupancy, shelter.site.capacity, max(since, 0.0),
            evacuating=evacuating, draw=self._rng.random(),
        )
        shelter.counted_at = at
        self._n += 1
        out: dict[str, Any] = {"id": f"{self._run}-sh{self._n}"}
        if isinstance(body.get("ts"), str):
            out["ts"] = body["ts"]  # counted where and when it reported its position
        out.update(shelter_id=shelter.site.shelter_id, occupancy=shelter.occupancy, sim=True)
        return ShelterCount(parts[2], shelter_topic(parts[2]), out)

    def _nearest(self, lat: float, lon: float) -> _Shelter | None:
        best: tuple[float, _Shelter] | None = None
        for shelter in self._shelters:
            d = haversine_m(lat, lon, shelter.site.lat, shelter.site.lon)
            if d <= self._reach_m and (best is None or d < best[0]):
                best = (d, shelter)
        return best[1] if best else None
