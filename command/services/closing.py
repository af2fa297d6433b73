"""Closing guards at the edge: gather an incident's open work and resolve or close it
through the pure guard (``command.domain.closing``), in one transaction.

The open work is read under the incident's row lock, in the same transaction as the
appended events, so nothing can be reserved or dispatched between the check and the act
that it would have blocked (dispatch and reservation lock the incident row too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

from command import audit
from command.domain.closing import (
    OpenChecklistItem,
    OpenSupply,
    OpenWork,
    Overridden,
    check_closing,
    open_work,
)
from command.domain.incidents import Event, Incident, actor_of
from command.domain.plans import current_activation
from command.security import Principal
from command.services import incident_store as store
from command.services.incident_store import locked_incident
from command.services.live import publish
from command.state import CommandState
from wuwang import i18n


def pending_checklist(state: CommandState, incident: Incident) -> list[OpenChecklistItem]:
    """The active plan's items that apply at the incident's level and are not done. A
    plan no longer in the library has nothing to check against (its ticks stay on the
    record)."""
    ap = incident.active_plan
    if ap is None:
        return []
    plan = state.plans.plans.get(ap.plan_id)
    if plan is None:
        return []
    activation, _ = current_activation(plan, incident)
    return [OpenChecklistItem(plan.id, e.id, e.text_zh, e.text_en) for e in activation.pending]


async def reserved_supplies(conn: AsyncConnection[Any], incident_id: str) -> list[OpenSupply]:
    cur = await conn.execute(
        "SELECT l.item_code, sum(a.reserved), i.name_zh, i.unit FROM stock_allocation a"
        " JOIN stock_lot l ON l.id = a.lot_id JOIN reserve_item i ON i.code = l.item_code"
        " WHERE a.incident_id = %s GROUP BY l.item_code, i.name_zh, i.unit HAVING sum(a.reserved) > 0"
        " ORDER BY l.item_code",
        (incident_id,),
    )
    return [OpenSupply(code, int(n), name, unit) for code, n, name, unit in await cur.fetchall()]


async def team_names(conn: AsyncConnection[Any], team_ids: tuple[str, ...]) -> dict[str, str]:
    if not team_ids:
        return {}
    cur = await conn.execute("SELECT id, name FROM team WHERE id = ANY(%s)", (list(team_ids),))
    return {team_id: name for team_id, name in await cur.fetchall()}


async def gather(state: CommandState, conn: AsyncConnection[Any], incident: Incident) -> OpenWork:
    return open_work(
        incident,
        pending_checklist=pending_checklist(state, incident),
        reserved_supplies=await reserved_supplies(conn, incident.incident_id),
        team_names=await team_names(conn, incident.active_team_ids),
    )


async def current_open_work(state: CommandState, incident_id: str) -> tuple[Incident, OpenWork]:
    """What is open now, for the desk to show before the act (``GET …/closing``)."""
    async with state.pool.connection() as conn:
        incident, _ = await store.load(conn, incident_id)
        return incident, await gather(state, conn, incident)


async def resolve_or_close(
    state: CommandState,
    who: Principal,
    incident_id: str,
    what: str,
    decide: Callable[[Incident], list[Event]],
    action: str,
    override_reason: str | None,
) -> Incident:
    """``decide`` (the plain resolve/close decision: role, version, state) and then the
    guard; an override puts the commander's reason on the state change and writes an
    ``incident.closing_override`` audit record with what was open."""
    async with locked_incident(state, who, incident_id, action) as (conn, incident):
        events = decide(incident)
        work = await gather(state, conn, incident)
        overridden = check_closing(incident, what, work, actor=actor_of(who), override_reason=override_reason)
        if overridden is not None:
            events = _with_override(events, overridden)
        new = await store.append(conn, incident, events, audit_action=action)
        if overridden is not None:
            await audit.record(
                conn,
                who,
                "incident.closing_override",
                object_type="incident",
                object_id=incident_id,
                detail={"act": what, "reason": overridden.reason, "open": overridden.work.as_body()},
            )
    assert new is not None
    if events:
        await publish(state.redis, store.change_for(new))
    return new


def _with_override(events: list[Event], overridden: Overridden) -> list[Event]:
    """The state change carries the override (before the operator's own reason, if any)."""
    out = []
    for e in events:
        if e.kind == "state_changed":
            text = overridden.record_text() + (
                i18n.text("zh_CN", "closing.separator") + e.reason if e.reason else ""
            )
            e = e.model_copy(update={"reason": text})
        out.append(e)
    return out
