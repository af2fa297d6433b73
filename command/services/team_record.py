"""A team's acknowledgement (接令) and its rolling (出动) on the incident's record.

The orders table and the team row stay the truth of an order's and a team's status;
these events put the same moments on the incident's timeline, beside dispatch and
arrival, so the record (and the after-action report) reads 派遣 → 接令 → 出动 → 到场.
They are written after the ack or status is stored, in a transaction of their own (the
ack locks the order row first; taking the incident row after it in the same
transaction would invert the lock order of a release). A refusal (the team was released
meanwhile, the incident closed) is logged, never raised: the ack or status stands.
"""

from __future__ import annotations

import logging
from datetime import datetime

from command.domain.incidents import (
    DomainError,
    Event,
    Incident,
    actor_of,
    decide_team_acknowledged,
    decide_team_en_route,
)
from command.domain.vocabulary import Role
from command.security import Principal
from command.services import incident_store as store
from command.state import CommandState
from wuwang.scope import LIVE, Scope

log = logging.getLogger(__name__)


def _crew(team_id: str) -> Principal:
    """The team itself: what it reports is recorded as its own act."""
    return Principal(team_id, Role.FIELD, team_id)


async def record_acknowledged(
    state: CommandState, team_id: str, order_id: str, incident_id: str, at: datetime
) -> None:
    crew = _crew(team_id)

    def decide(incident: Incident) -> list[Event]:
        return decide_team_acknowledged(
            incident, team_id=team_id, order_id=order_id, actor=actor_of(crew), at=at
        )

    try:
        await store.run_command(state, crew, incident_id, decide, "incident.team_acknowledged")
    except (DomainError, store.NotFound) as exc:
        log.info("ack of %s for %s not on the record of %s: %s", team_id, order_id, incident_id, exc)


async def record_en_route(state: CommandState, team_id: str, at: datetime, scope: Scope = LIVE) -> None:
    """On the incident of the team's order in force (in its world), if it has one."""
    async with state.pool.connection() as conn:
        order = await store.team_order(conn, team_id, scope)
    if order is None or not order.incident_open:
        return
    crew = _crew(team_id)

    def decide(incident: Incident) -> list[Event]:
        return decide_team_en_route(incident, team_id=team_id, actor=actor_of(crew), at=at)

    try:
        await store.run_command(state, crew, order.incident_id, decide, "incident.team_en_route")
    except (DomainError, store.NotFound) as exc:
        log.info("%s en route not on the record of %s: %s", team_id, order.incident_id, exc)
