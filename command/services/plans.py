"""应急预案 at the edge: the plan library, activation and ticks on an incident, and the
activation as it stands now with its shortfall.

* The library is read and validated once, at start-up (``load_library`` from the
  lifespan puts it in ``state.plans``, the one way to reach it); a library with a mistake stops the
  service with the library's own message (every problem, file and field path).
* Activating a plan and ticking a checklist item are incident events
  (``plan_activated``, ``checklist_item_ticked``) decided by the pure incident domain
  and stored through ``run_command`` — one transaction, the incident row locked, the
  audit record beside the events.
* What the console shows (:func:`plan_view`) is recomputed from the event record each
  time: the activation at the incident's *current* level, the ticks from the incident's
  checklist, and the shortfall against the teams on the incident and the supplies
  held for it. A level change therefore re-evaluates the plan without any extra event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from command.domain.incidents import (
    DomainError,
    Event,
    IllegalTransition,
    Incident,
    InvalidCommand,
    actor_of,
    decide_activate_plan,
    decide_tick_checklist,
)
from command.domain.plans import (
    ChecklistEntry,
    Plan,
    PlanLibrary,
    PlanLibraryError,
    current_activation,
    load_plans,
    shortfall,
    tick,
)
from command.domain.reserve import local_day
from command.security import Principal
from command.services import incident_store as store
from command.services.incident_store import NotFound, run_command
from command.state import CommandState

log = logging.getLogger(__name__)


class Conflict(DomainError):
    """The request contradicts the current state (already ticked, not ticked, already
    active): HTTP 409 with the reason."""


# --- the library --------------------------------------------------------------------


def load_library(directory: Path | str) -> PlanLibrary:
    """Read and validate the plan library; raises :class:`PlanLibraryError` naming every
    problem. Called by the lifespan, so a bad library stops start-up."""
    path = Path(directory)
    if not path.is_dir():
        raise PlanLibraryError([f"{path}: not a directory (COMMAND_PLANS_DIR)"])
    library = load_plans(path)
    log.info("plan library %s: %d plans, %d catalogue items", path, len(library), len(library.items))
    return library


def get_plan(state: CommandState, plan_id: str) -> Plan:
    try:
        return state.plans.get(plan_id)
    except KeyError:
        raise NotFound(f"no plan {plan_id!r} in the plan library") from None


def plan_summary(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "version": plan.version,
        "title_zh": plan.title_zh,
        "title_en": plan.title_en,
        "covers": [str(t) for t in plan.covers],
        "basis": list(plan.basis),
        "arrival_target_min": plan.arrival_target_min,
    }


def with_plan_title(state: CommandState, event: dict[str, Any]) -> dict[str, Any]:
    """A ``plan_activated`` event's body with the plan's title (``title_zh``/``title_en``,
    from the library) beside its id, so a reader who may not read the library — a field
    crew — still learns WHICH plan its incident runs; other events, and a plan no longer
    in the library, as recorded."""
    data = event.get("data")
    if event.get("kind") != "plan_activated" or not isinstance(data, dict):
        return event
    try:
        plan = state.plans.get(str(data.get("plan_id")))
    except KeyError:
        return event
    return {**event, "data": {**data, "title_zh": plan.title_zh, "title_en": plan.title_en}}


def plan_detail(plan: Plan) -> dict[str, Any]:
    """The whole plan as written in its file (levels keyed I … IV)."""
    detail: dict[str, Any] = plan.model_dump(mode="json", by_alias=True)
    return detail


# --- the activation as it stands ------------------------------------------------------


async def _teams_by_type(conn: AsyncConnection[Any], team_ids: Sequence[str]) -> dict[str, list[str]]:
    if not team_ids:
        return {}
    cur = await conn.execute(
        "SELECT id, team_type FROM team WHERE id = ANY(%s) ORDER BY id", (list(team_ids),)
    )
    out: dict[str, list[str]] = {}
    found: set[str] = set()
    for team_id, team_type in await cur.fetchall():
        out.setdefault(team_type, []).append(team_id)
        found.add(team_id)
    for team_id in team_ids:
        if team_id not in found:  # not in the roster: shown, never counted towards a type
            out.setdefault("unknown", []).append(team_id)
    return out


async def _available_teams(conn: AsyncConnection[Any], exclude: Sequence[str]) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT team_type, count(*) FROM team WHERE status = 'available' AND NOT (id = ANY(%s))"
        " GROUP BY team_type",
        (list(exclude),),
    )
    return {t: int(n) for t, n in await cur.fetchall()}


@dataclass(frozen=True)
class Held:
    reserved: int = 0
    issued: int = 0
    returned: int = 0
    consumed: int = 0

    @property
    def counts(self) -> int:
        """What meets a requirement: held in the warehouse for the incident, or issued to
        it (consumed goods were used for it); returned goods no longer count."""
        return self.reserved + self.issued - self.returned


async def supplies_held(conn: AsyncConnection[Any], incident_id: str) -> dict[str, Held]:
    cur = await conn.execute(
        "SELECT l.item_code, sum(a.reserved), sum(a.issued), sum(a.returned), sum(a.consumed)"
        " FROM stock_allocation a JOIN stock_lot l ON l.id = a.lot_id WHERE a.incident_id = %s"
        " GROUP BY l.item_code",
        (incident_id,),
    )
    return {code: Held(int(r), int(i), int(t), int(c)) for code, r, i, t, c in await cur.fetchall()}


async def _usable_stock(conn: AsyncConnection[Any], item_codes: Sequence[str], today: Any) -> dict[str, int]:
    if not item_codes:
        return {}
    cur = await conn.execute(
        "SELECT item_code, sum(quantity - reserved) FROM stock_lot WHERE item_code = ANY(%s)"
        " AND (expires_on IS NULL OR expires_on >= %s) GROUP BY item_code",
        (list(item_codes), today),
    )
    return {code: int(n) for code, n in await cur.fetchall()}


def _entry(e: ChecklistEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "text_zh": e.text_zh,
        "text_en": e.text_en,
        "role": e.role,
        "at_level": int(e.at_level),
        "done": e.done,
        "done_by": e.done_by,
        "done_at": e.done_at.isoformat() if e.done_at else None,
        "applies": e.applies,
    }


async def plan_view(state: CommandState, incident: Incident) -> dict[str, Any]:
    """The incident's plan as the console shows it: the activation at the current level
    (roles, checklist, requirements) and each shortfall explained. Without an active
    plan, the plans covering the incident's type are offered."""
    lib = state.plans
    base: dict[str, Any] = {
        "incident_id": incident.incident_id,
        "incident_version": incident.version,
        "incident_type": str(incident.incident_type),
        "level": int(incident.level),
        "covering_plans": [p.id for p in lib.for_type(incident.incident_type)],
    }
    ap = incident.active_plan
    if ap is None:
        return {**base, "active": False, "activation": None, "shortfall": []}
    plan = lib.plans.get(ap.plan_id)
    if plan is None:
        return {
            **base,
            "active": True,
            "activation": None,
            "shortfall": [],
            "problem": f"plan {ap.plan_id!r} is no longer in the plan library",
        }
    act, orphans = current_activation(plan, incident)
    today = local_day(datetime.now(UTC), ZoneInfo(state.settings.command.timezone))
    async with state.pool.connection() as conn:
        teams = await _teams_by_type(conn, incident.active_team_ids)
        free_teams = await _available_teams(conn, incident.active_team_ids)
        held = await supplies_held(conn, incident.incident_id)
        usable = await _usable_stock(conn, [s.item for s in act.requirements.supplies], today)
    gaps = shortfall(
        act.requirements,
        {t: len(ids) for t, ids in teams.items()},
        {code: h.counts for code, h in held.items()},
    )
    lines: list[dict[str, Any]] = []
    for gap in gaps:
        if gap.kind == "team":
            assigned = teams.get(gap.key, [])
            why = (
                f"{gap.describe()}; on the incident: {', '.join(assigned) if assigned else 'none'}; "
                f"{free_teams.get(gap.key, 0)} {gap.key} team(s) available in the city"
            )
            name = name_en = gap.key
            unit_zh = None
        else:
            item = lib.items.get(gap.key)
            h = held.get(gap.key, Held())
            why = (
                f"{gap.describe()}; held for the incident: {h.reserved} reserved, {h.issued} issued"
                f" ({h.returned} returned); {usable.get(gap.key, 0)} {gap.unit} usable in the reserve"
            )
            name = item.name_zh if item else gap.key
            name_en = item.name_en if item else gap.key
            unit_zh = item.unit_zh if item else None
        lines.append(
            {
                "kind": gap.kind,
                "key": gap.key,
                "name": name,
                "name_en": name_en,
                "unit_zh": unit_zh,
                "required": gap.required,
                "have": gap.have,
                "missing": gap.missing,
                "unit": gap.unit,
                "explanation": why,
            }
        )
    revised = plan.version != ap.plan_version
    return {
        **base,
        "active": True,
        "activation": {
            "plan_id": plan.id,
            "plan_version": plan.version,
            "title_zh": plan.title_zh,
            "title_en": plan.title_en,
            "activated_version": ap.plan_version,
            "plan_revised_since_activation": revised,
            "activated_level": int(ap.level),
            "activated_at": ap.at.isoformat(),
            "activated_by": ap.by,
            "level": int(act.level),
            "roles": [
                {
                    "id": r.id,
                    "role_zh": r.role_zh,
                    "role_en": r.role_en,
                    "held_by": r.held_by,
                    "held_by_en": r.held_by_en,
                }
                for r in act.roles
            ],
            "checklist": [_entry(e) for e in act.checklist],
            "pending": len(act.pending),
            "orphan_ticks": orphans,
            "requirements": {
                "teams": [{"type": str(t.type), "count": t.count} for t in act.requirements.teams],
                "supplies": [
                    {"item": s.item, "quantity": s.quantity, "unit": s.unit}
                    for s in act.requirements.supplies
                ],
            },
            "teams_on_incident": teams,
            "supplies_held": {
                code: {
                    "reserved": h.reserved,
                    "issued": h.issued,
                    "returned": h.returned,
                    "consumed": h.consumed,
                    "counts": h.counts,
                }
                for code, h in sorted(held.items())
            },
        },
        "shortfall": lines,
    }


# --- commands -------------------------------------------------------------------------


def _recordable_version(plan: Plan) -> int:
    if isinstance(plan.version, int):
        return plan.version
    # PlanActivated records an integer version; a "major.minor" plan cannot be recorded.
    raise InvalidCommand(
        f"plan {plan.id} has version {plan.version!r}; the incident record takes integer plan versions"
    )


async def activate_plan(
    state: CommandState,
    who: Principal,
    incident_id: str,
    plan_id: str,
    expected_version: int,
    *,
    force: bool = False,
    reason: str | None = None,
) -> Incident:
    """Activate ``plan_id`` at the incident's current level. The plan must cover the
    incident's type, unless ``force`` with a reason (recorded in the timeline)."""
    plan = get_plan(state, plan_id)
    version = _recordable_version(plan)

    def decide(inc: Incident) -> list[Event]:
        covers = inc.incident_type in plan.covers
        why = reason.strip() if reason and reason.strip() else None
        if not covers and force:
            why = f"plan {plan.id} does not cover {inc.incident_type}; activated anyway: {why}"
        # The domain checks role, version and state first (403 before 422/409).
        events = decide_activate_plan(
            inc,
            plan_id=plan.id,
            plan_version=version,
            level=inc.level,
            actor=actor_of(who),
            at=datetime.now(UTC),
            expected_version=expected_version,
            reason=why,
            arrival_target_s=plan.arrival_target_s,
        )
        if not covers:
            if not force:
                raise IllegalTransition(
                    f"plan {plan.id} covers {', '.join(str(t) for t in plan.covers)}, not "
                    f"{inc.incident_type}; reclassify the incident, or pass force with a reason"
                )
            if reason is None or not reason.strip():
                raise InvalidCommand(
                    "a reason is required to activate a plan that does not cover the incident type"
                )
        ap = inc.active_plan
        if ap is not None and (ap.plan_id, ap.plan_version, ap.level) == (plan.id, version, inc.level):
            raise Conflict(
                f"plan {plan.id} v{version} is already active on {inc.incident_id} at level {inc.level.name}"
            )
        return events

    return await run_command(state, who, incident_id, decide, "plan.activate")


async def tick_item(
    state: CommandState,
    who: Principal,
    incident_id: str,
    item_id: str,
    expected_version: int,
    *,
    done: bool,
    reason: str | None = None,
) -> Incident:
    """Tick (``done``) or untick a checklist item of the active plan at the current level."""
    lib = state.plans
    at = datetime.now(UTC)

    def decide(inc: Incident) -> list[Event]:
        ap = inc.active_plan
        try:
            events = decide_tick_checklist(
                inc,
                plan_id=ap.plan_id if ap else "",
                item_id=item_id,
                actor=actor_of(who),
                at=at,
                expected_version=expected_version,
                done=done,
                reason=reason,
            )
        except IllegalTransition:
            if ap is None and inc.is_open:
                raise IllegalTransition(
                    f"no contingency plan is active on incident {inc.incident_id}: activate one first"
                ) from None
            raise
        assert ap is not None
        plan = lib.plans.get(ap.plan_id)
        if plan is None:
            raise IllegalTransition(f"plan {ap.plan_id!r} is no longer in the plan library")
        act, _ = current_activation(plan, inc)
        try:
            entry = act.entry(item_id)
        except KeyError:
            raise NotFound(
                f"plan {plan.id} has no checklist item {item_id!r} at level {inc.level.name}"
            ) from None
        if done:
            if entry.done:
                raise Conflict(f"checklist item {item_id!r} was already done by {entry.done_by}")
            try:
                tick(act, item_id, who.user_id, at)
            except ValueError as exc:
                raise InvalidCommand(str(exc)) from None
        elif not entry.done:
            raise Conflict(f"checklist item {item_id!r} is not done")
        return events

    return await run_command(
        state, who, incident_id, decide, "plan.checklist_tick" if done else "plan.checklist_untick"
    )


async def load_incident(state: CommandState, incident_id: str) -> Incident:
    async with state.pool.connection() as conn:
        incident, _ = await store.load(conn, incident_id)
    return incident
