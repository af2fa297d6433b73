"""风险源 and 应急避难场所 — risk sources and emergency shelters (issue 12, part 1).

Pure: the decisions the edge (command/services/risk.py) takes with rows it loaded and
the time it was handed.

* An inspection is due ``interval`` after the last one (a source never inspected is due
  at once); past that it is overdue and opens one grid case per source and due date.
* A finding may raise the source's level (never lower it: lowering is a registry edit
  after review) and, when it says so, raise an alarm into the triage inbox.
* An incident within :data:`MAJOR_RADIUS_M` of a major (重大) source is near it: its
  detail and triage reasons say so, and :func:`plan_level_with_risk` raises the plan's
  level by one step (no higher than Ⅰ).
* An evacuation lists the nearest open shelters with free places, with the distance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wuwang.geo import haversine_m

# The shared vocabulary (the CSV import writes the same codes), re-exported.
from wuwang.risk import RiskKind as RiskKind
from wuwang.risk import RiskLevel as RiskLevel
from wuwang.risk import ShelterKind as ShelterKind
from wuwang.risk import ShelterStatus as ShelterStatus


class RiskError(ValueError):
    """A registry change or report the rules refuse; the message says why (→ 422)."""


#: An incident this close to a major source is "near" it (docs/risk-and-shelters.md).
MAJOR_RADIUS_M = 1000.0

#: The venue kind a major source has in the triage context: rules.yaml's
#: ``risk_major_source`` rules name it, so triage's reasons say an alarm is near one.
MAJOR_RISK_VENUE = "major_risk_source"

#: The grid category an inspection case is opened in (command.domain.grid's table).
INSPECTION_CATEGORY = "risk_inspection"

#: The category of the alarm a finding raises: a report no grid category takes, so it
#: goes to the triage inbox like any other report.
FINDING_CATEGORY = "risk_hazard"

#: Incident types whose plans evacuate people (their steps say 疏散 or 安置).
EVACUATION_TYPES = frozenset({"hazmat_leak", "high_rise_fire", "flood", "earthquake", "crowd_crush", "fire"})


@dataclass(frozen=True, slots=True)
class RiskSource:
    id: str
    name: str
    kind: RiskKind
    lat: float
    lon: float
    level: RiskLevel
    inspection_interval: timedelta
    last_inspected_at: datetime | None = None
    responsible_unit: str = ""
    contact: str = ""
    grid_cell_id: str | None = None


@dataclass(frozen=True, slots=True)
class Shelter:
    id: str
    name: str
    kind: ShelterKind
    lat: float
    lon: float
    capacity: int
    status: ShelterStatus = ShelterStatus.CLOSED
    occupancy: int = 0
    facilities: tuple[str, ...] = ()

    @property
    def free(self) -> int:
        return max(self.capacity - self.occupancy, 0)


def _aware(t: datetime) -> None:
    if t.tzinfo is None:
        raise RiskError("times must carry their time zone")


def inspection_due(source: RiskSource) -> datetime | None:
    """When the next inspection is due; None: never inspected (due at once)."""
    if source.last_inspected_at is None:
        return None
    return source.last_inspected_at + source.inspection_interval


@dataclass(frozen=True, slots=True)
class OverdueInspection:
    source: RiskSource
    due_at: datetime  # the key of the one grid case it opens


def overdue_inspections(
    sources: Iterable[RiskSource], now: datetime, *, never_due: datetime
) -> list[OverdueInspection]:
    """The sources whose inspection is past due at ``now``, most dangerous first. A
    source never inspected is due from ``never_due`` (its registration), so one case
    opens for it, not one per sweep."""
    _aware(now)
    out = []
    for s in sources:
        due = inspection_due(s) or never_due
        if due <= now:
            out.append(OverdueInspection(s, due))
    out.sort(key=lambda o: (-o.source.level.rank, o.due_at, o.source.id))
    return out


@dataclass(frozen=True, slots=True)
class FindingOutcome:
    source: RiskSource  # after the finding
    raised: bool  # the level went up
    raise_alarm: bool  # an alarm goes to the triage inbox


def apply_finding(
    source: RiskSource, at: datetime, *, level: RiskLevel | None, alarm: bool, inspected: bool = True
) -> FindingOutcome:
    """A grid worker's finding: the inspection is done at ``at`` (when ``inspected``); a
    ``level`` above the current one raises it, one below is refused (lowering is a
    registry edit after review). An alarm is raised when asked, and always when the
    finding makes the source major."""
    _aware(at)
    new_level = source.level
    if level is not None:
        if level.rank < source.level.rank:
            raise RiskError(
                f"a finding may raise {source.id}'s level ({source.level}), not lower it to {level}:"
                " lowering is a registry edit"
            )
        new_level = level
    raised = new_level.rank > source.level.rank
    after = RiskSource(
        source.id,
        source.name,
        source.kind,
        source.lat,
        source.lon,
        new_level,
        source.inspection_interval,
        at if inspected else source.last_inspected_at,
        source.responsible_unit,
        source.contact,
        source.grid_cell_id,
    )
    return FindingOutcome(after, raised, alarm or (raised and new_level is RiskLevel.MAJOR))


@dataclass(frozen=True, slots=True)
class Near:
    id: str
    name: str
    kind: str
    distance_m: float


def major_sources_near(
    lat: float, lon: float, sources: Iterable[RiskSource], radius_m: float = MAJOR_RADIUS_M
) -> list[Near]:
    """The major sources within ``radius_m`` of a place, nearest first."""
    out = [
        Near(s.id, s.name, str(s.kind), d)
        for s in sources
        if s.level is RiskLevel.MAJOR and (d := haversine_m(lat, lon, s.lat, s.lon)) <= radius_m
    ]
    out.sort(key=lambda n: (n.distance_m, n.id))
    return out


def plan_level_with_risk(level: int, near_major: bool) -> int:
    """The plan's response level (1 = Ⅰ, the highest … 4 = Ⅳ) one step higher when the
    incident is near a major risk source; never above Ⅰ."""
    if level < 1:
        raise RiskError(f"a response level is 1 (Ⅰ) to 4 (Ⅳ), not {level}")
    return max(level - 1, 1) if near_major else level


@dataclass(frozen=True, slots=True)
class ShelterChoice:
    id: str
    name: str
    kind: str
    free: int
    capacity: int
    distance_m: float


def nearest_shelters(
    lat: float, lon: float, shelters: Iterable[Shelter], *, limit: int = 5, need: int = 1
) -> list[ShelterChoice]:
    """Open shelters with at least ``need`` free places, nearest first."""
    out = [
        ShelterChoice(s.id, s.name, str(s.kind), s.free, s.capacity, haversine_m(lat, lon, s.lat, s.lon))
        for s in shelters
        if s.status is ShelterStatus.OPEN and s.free >= need
    ]
    out.sort(key=lambda c: (c.distance_m, c.id))
    return out[:limit]


def report_occupancy(shelter: Shelter, occupancy: int, *, status: ShelterStatus | None = None) -> Shelter:
    """A field team's count. A shelter at capacity is full, one below it that was full
    opens again; an explicit ``status`` (opening or closing it) wins. A closed shelter
    keeps no one: a count above zero for it is refused."""
    if occupancy < 0:
        raise RiskError("occupancy is a count of people, 0 or more")
    if occupancy > shelter.capacity * 2:
        raise RiskError(f"occupancy {occupancy} is over twice {shelter.id}'s capacity {shelter.capacity}")
    new_status = status or shelter.status
    if status is None:
        if occupancy >= shelter.capacity and shelter.status is ShelterStatus.OPEN:
            new_status = ShelterStatus.FULL
        elif occupancy < shelter.capacity and shelter.status is ShelterStatus.FULL:
            new_status = ShelterStatus.OPEN
    if new_status is ShelterStatus.CLOSED and occupancy > 0:
        raise RiskError(f"{shelter.id} is closed: it cannot hold {occupancy} people")
    if new_status is ShelterStatus.OPEN and occupancy >= shelter.capacity:
        new_status = ShelterStatus.FULL
    return Shelter(
        shelter.id,
        shelter.name,
        shelter.kind,
        shelter.lat,
        shelter.lon,
        shelter.capacity,
        new_status,
        occupancy,
        shelter.facilities,
    )


def evacuation_needed(incident_type: str, plan_steps: Sequence[str] = ()) -> bool:
    """An incident whose type evacuates (:data:`EVACUATION_TYPES`) or whose active plan
    has an evacuation step (its id says so: ``evacuate_building``, ``evacuation_group``,
    ``shelter_residents``): the console then lists shelters."""
    return incident_type in EVACUATION_TYPES or any(
        w in s for s in plan_steps for w in ("evacuat", "shelter")
    )
