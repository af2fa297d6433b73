"""Virtual crews (模拟队伍): teams that answer a drill's dispatch orders by themselves.

A drill run at speed has no real team behind its orders (a real team's device never
gets one: the command service sends an exercise's order to
``exercise/v1/<id>/teams/v1/<team>/dispatch`` only). The drill runner
(simulators/exercise_run.py) hands each such order to :class:`VirtualCrews`, which plans
what a crew would do, in exercise seconds:

1. ``ack`` ``accepted`` after a short reaction time;
2. status ``en_route`` after the turnout time (出车), then a position every
   ``position_every_s`` along the route, at the typical speed of its team type
   (``wuwang.travel.DEFAULT_SPEEDS_KMH``, the speeds the recommendation
   estimates with, so a crew arrives about when the console said it would);
3. status ``on_scene`` with the order's ``incident_id`` and a position at the scene;
4. after ``on_scene_s``: ``returning``, positions back to its base, ``available``.

Pure and deterministic for a seed (no clock, no I/O): the runner asks for what is due
at the exercise clock's position, so pause, seek and speed apply to crews as to every
scripted item. Payloads are contract v1 team position/status payloads and the ack of
docs/mqtt-contract.md §9 without ``ts`` (stamped at sending); ``seq`` is stamped per
team in the order actions are handed out, so a team's messages are ordered even across
orders.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely

from simulators.streets import Route, StreetNetwork, build_street_network
from wuwang.city import District
from wuwang.travel import DEFAULT_SPEEDS_KMH

Leaf = Literal["ack", "status", "position"]
#: (team, from lat, from lon, to lat, to lon) → the route driven; default a straight line.
Router = Callable[["CrewTeam", float, float, float, float], Route]


@dataclass(frozen=True, slots=True)
class CrewTeam:
    team_id: str
    team_type: str  # a TeamType value: picks the speed
    base_lat: float
    base_lon: float
    district_adcode: int | None = None  # whose street lattice it drives on


@dataclass(frozen=True, slots=True)
class CrewOrder:
    """What a crew needs of a dispatch order (docs/mqtt-contract.md §9)."""

    order_id: str
    team_id: str
    incident_id: str
    lat: float
    lon: float

    @classmethod
    def from_payload(cls, team_id: str, payload: Mapping[str, Any]) -> CrewOrder | None:
        """The order in a dispatch message for ``team_id``; None for anything else (a
        release notice, another team's order, a payload without a place)."""
        if payload.get("kind", "dispatch") != "dispatch" or payload.get("team_id", team_id) != team_id:
            return None
        try:
            order = cls(
                str(payload["order_id"]),
                team_id,
                str(payload["incident_id"]),
                float(payload["lat"]),
                float(payload["lon"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        ok = math.isfinite(order.lat) and math.isfinite(order.lon)
        return order if ok and -90 <= order.lat <= 90 and -180 <= order.lon <= 180 else None


@dataclass(frozen=True, slots=True)
class CrewConfig:
    ack_s: tuple[float, float] = (5.0, 20.0)  # order received → accepted (uniform)
    turnout_s: tuple[float, float] = (45.0, 90.0)  # order received → rolling (en_route)
    position_every_s: float = 10.0
    on_scene_s: float = 600.0  # on scene, then back to base
    speeds_kmh: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SPEEDS_KMH)

    def __post_init__(self) -> None:
        for lo, hi in (self.ack_s, self.turnout_s):
            if not 0 <= lo <= hi:
                raise ValueError("delays must be 0 <= low <= high")
        if self.position_every_s <= 0 or self.on_scene_s < 0:
            raise ValueError("position_every_s must be > 0 and on_scene_s >= 0")

    def speed_mps(self, team_type: str) -> float:
        return self.speeds_kmh.get(team_type, min(self.speeds_kmh.values())) / 3.6


@dataclass(frozen=True, slots=True)
class CrewAction:
    offset_s: float  # exercise seconds
    team_id: str
    leaf: Leaf  # the team topic it goes to: teams/v1/<team>/<leaf>
    payload: dict[str, Any]  # without ts (and seq: stamped when handed out)


def straight_line(team: CrewTeam, lat1: float, lon1: float, lat2: float, lon2: float) -> Route:
    return Route.through([(lat1, lon1), (lat2, lon2)])


class StreetRouter:
    """Drive on the synthetic street lattice of the team's district (simulators/streets.py)
    when both ends lie in that district, else in a straight line (the lattices stop at
    district borders and the Han river). Lattices are built on first use."""

    def __init__(self, districts: Sequence[District]) -> None:
        self._districts = {d.adcode: d for d in districts}
        self._networks: dict[int, StreetNetwork] = {}

    def __call__(self, team: CrewTeam, lat1: float, lon1: float, lat2: float, lon2: float) -> Route:
        district = self._districts.get(team.district_adcode) if team.district_adcode is not None else None
        if district is None or not all(
            shapely.contains_xy(district.geometry, lon, lat) for lat, lon in ((lat1, lon1), (lat2, lon2))
        ):
            return straight_line(team, lat1, lon1, lat2, lon2)
        network = self._networks.get(district.adcode)
        if network is None:
            network = self._networks[district.adcode] = build_street_network(district)
        return network.route(lat1, lon1, lat2, lon2)


def plan_crew(
    order: CrewOrder,
    team: CrewTeam,
    start: tuple[float, float],
    now_s: float,
    *,
    seed: int | str = 0,
    config: CrewConfig = CrewConfig(),
    route: Router = straight_line,
) -> list[CrewAction]:
    """Everything one crew does for one order, received at exercise time ``now_s`` with
    the crew at ``start``; in time order. Deterministic for (seed, order id)."""
    rng = random.Random(f"crew:{seed}:{order.order_id}")
    ack_at = now_s + rng.uniform(*config.ack_s)
    roll_at = max(ack_at, now_s + rng.uniform(*config.turnout_s))
    mps = config.speed_mps(team.team_type)
    n = itertools.count(1)

    def msg(at: float, leaf: Leaf, **fields: Any) -> CrewAction:
        return CrewAction(at, team.team_id, leaf, {"id": f"vc-{order.order_id}-{next(n)}", **fields})

    def drive(path: Route, t0: float) -> tuple[list[CrewAction], float]:
        """Positions every ``position_every_s`` from t0 (the first at t0), and the arrival time."""
        duration = path.length_m / mps
        out = []
        k = 0
        while (t := k * config.position_every_s) < duration:
            lat, lon, heading = path.at(t * mps)
            out.append(msg(t0 + t, "position", **_fix(lat, lon, mps, heading)))
            k += 1
        return out, t0 + duration

    actions = [msg(ack_at, "ack", order_id=order.order_id, status="accepted")]
    actions.append(msg(roll_at, "status", status="en_route", incident_id=order.incident_id))
    outward = route(team, start[0], start[1], order.lat, order.lon)
    moves, arrive_at = drive(outward, roll_at)
    actions += moves
    lat, lon, heading = outward.at(outward.length_m)
    actions.append(msg(arrive_at, "position", **_fix(lat, lon, 0.0, heading)))
    actions.append(msg(arrive_at, "status", status="on_scene", incident_id=order.incident_id))
    leave_at = arrive_at + config.on_scene_s
    actions.append(msg(leave_at, "status", status="returning", incident_id=order.incident_id))
    back = route(team, order.lat, order.lon, team.base_lat, team.base_lon)
    moves, home_at = drive(back, leave_at)
    actions += moves
    lat, lon, heading = back.at(back.length_m)
    actions.append(msg(home_at, "position", **_fix(lat, lon, 0.0, heading)))
    actions.append(msg(home_at, "status", status="available"))
    return actions


def _fix(lat: float, lon: float, speed: float, heading: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"lat": round(lat, 6), "lon": round(lon, 6), "speed": round(speed, 1)}
    if heading is not None:
        out["heading"] = round(heading % 360.0, 1)
    return out


class VirtualCrews:
    """The crews of one exercise: orders in, due actions out, on the exercise clock.

    A new order for a team that is still busy replaces what it had left to do (it
    drives on from where it last reported); an order seen before (at-least-once
    delivery) is ignored.
    """

    def __init__(
        self, *, seed: int | str = 0, config: CrewConfig | None = None, route: Router = straight_line
    ) -> None:
        self.seed, self.config, self.route = seed, config or CrewConfig(), route
        self._heap: list[tuple[float, int, int, CrewAction]] = []  # (offset, n, generation, action)
        self._n = itertools.count()
        self._generation: dict[str, int] = {}
        self._orders: set[str] = set()
        self._position: dict[str, tuple[float, float]] = {}
        self._seq: dict[str, int] = {}
        self.orders = 0
        self.superseded = 0  # positions overtaken by a later one in the same batch (seek)

    def position_of(self, team_id: str) -> tuple[float, float] | None:
        """Where the crew last reported (None before its first position)."""
        return self._position.get(team_id)

    def order(
        self, order: CrewOrder, team: CrewTeam, now_s: float, start: tuple[float, float] | None = None
    ) -> bool:
        """Plan the crew's answer; False for an order already seen. The crew starts from
        its last reported position, else ``start``, else its base."""
        if order.order_id in self._orders:
            return False
        self._orders.add(order.order_id)
        self.orders += 1
        gen = self._generation[team.team_id] = self._generation.get(team.team_id, 0) + 1
        origin = self._position.get(team.team_id) or start or (team.base_lat, team.base_lon)
        plan = plan_crew(order, team, origin, now_s, seed=self.seed, config=self.config, route=self.route)
        for action in plan:
            heapq.heappush(self._heap, (action.offset_s, next(self._n), gen, action))
        return True

    def _drop_stale(self) -> None:
        while self._heap and self._heap[0][2] != self._generation.get(self._heap[0][3].team_id):
            heapq.heappop(self._heap)

    def next_offset(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        self._drop_stale()
        return sum(1 for _, _, gen, a in self._heap if gen == self._generation.get(a.team_id))

    def due(self, position_s: float) -> list[CrewAction]:
        """The actions due at exercise time ``position_s``, in time order, with ``seq``.
        After a seek forward a crew jumps: of its overdue positions only the last is kept
        (statuses and acks are all kept)."""
        batch: list[CrewAction] = []
        while (nxt := self.next_offset()) is not None and nxt <= position_s:
            batch.append(heapq.heappop(self._heap)[3])
        last_fix = {a.team_id: i for i, a in enumerate(batch) if a.leaf == "position"}
        out = []
        for i, a in enumerate(batch):
            if a.leaf == "position" and last_fix[a.team_id] != i:
                self.superseded += 1
                continue
            payload = dict(a.payload)
            if a.leaf != "ack":
                payload["seq"] = self._seq[a.team_id] = self._seq.get(a.team_id, 0) + 1
            if a.leaf == "position":
                self._position[a.team_id] = (payload["lat"], payload["lon"])
            out.append(CrewAction(a.offset_s, a.team_id, a.leaf, payload))
        return out
