"""派遣 at the edge: dispatch orders, their acknowledgements, and the recommendation.

**Dispatch is one transaction** (:func:`dispatch`): lock the incident row, decide with
the pure domain (``decide_dispatch``), insert the ``dispatch_order`` — the partial
unique index ``dispatch_order_one_in_force_per_team`` refuses a second order in force
for the same team, whichever incident it is for, so two operators (or two command
processes) racing for one team get exactly one order and one 409 — append the incident
events, mark the team dispatched, queue the order for the team in ``mqtt_outbox`` and
write the audit record. Only after the commit are the changes published and the outbox
relay woken; the relay (``command.services.mqtt_side``) publishes the order at QoS 1
and marks it sent only on the broker's PUBACK.

Releasing a team is an incident event (``team_released``); a trigger in the database
(migration 0005, ``dispatch_follows_incident``) releases the order, makes the team
available and queues a release notice, in the same transaction — also when the team is
released by closing, cancelling or marking the incident a false alarm.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from command import audit
from command.domain import policy
from command.domain.exercises import apply_stock_cuts, overlay_team_statuses
from command.domain.incidents import (
    DomainError,
    Forbidden,
    IllegalTransition,
    Incident,
    InvalidCommand,
    actor_of,
    decide_dispatch,
    decide_release_team,
    visible_incident,
)
from command.domain.plans import Requirements, TeamRequirement, activate
from command.domain.policy import Action
from command.domain.reasons import Reason, duration, render
from command.domain.recommend import (
    RecommendConfig,
    recommend_for_requirements,
    recommend_supplies,
)
from command.domain.reserve import ProductionCapacity, StockLot, Warehouse, WarehouseKind
from command.domain.vocabulary import IncidentType, TeamType
from command.security import Principal
from command.services import exercise_store, places, rosters, team_record
from command.services import incident_store as store
from command.services.incident_store import NotFound, locked_incident
from command.services.live import Change, publish
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import encode, team_topic
from wuwang.nul import refuse_nul_within
from wuwang.scope import LIVE, Scope
from wuwang.travel import DEFAULT_SPEEDS_KMH

log = logging.getLogger(__name__)

IN_FORCE = ("pending", "sent", "acked")
_IN_FORCE_INDEXES = frozenset(
    {"dispatch_order_one_in_force_per_team", "dispatch_order_one_in_force_per_team_exercise"}
)


class TeamBusy(DomainError):
    """The team already has an order in force (HTTP 409 "team already dispatched")."""


class TeamUnavailable(DomainError):
    """The team cannot take an order now (off duty): HTTP 409."""


# --- the order as the team receives it ------------------------------------------------


def new_order_id(at: datetime) -> str:
    return f"ORD-{at:%Y%m%d}-{secrets.token_hex(5)}"


def order_topic(team_id: str, scope: Scope, leaf: str = "dispatch") -> str:
    """Where an order goes (and its ack comes back): a drill's order to the drill's copy
    of the team's topic, which only the drill runner's virtual crews read — a real
    team's device never gets a drill order."""
    return scope.topic(team_topic(team_id, leaf))


def order_message(
    order_id: str,
    incident: Incident,
    team_id: str,
    who: Principal,
    at: datetime,
    reason: str | None,
    address: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """The payload published on ``teams/v1/<team_id>/dispatch`` (an exercise's:
    ``exercise/v1/<id>/teams/v1/<team_id>/dispatch``; docs/mqtt-contract.md, "Dispatch
    orders and acks"). ``id`` is the order id: a team that receives the same order twice
    (at-least-once delivery) keeps one."""
    return {
        "id": order_id,
        "ts": at.isoformat(),
        "kind": "dispatch",
        "order_id": order_id,
        "team_id": team_id,
        "incident_id": incident.incident_id,
        "incident_type": str(incident.incident_type),
        "level": int(incident.level),
        "level_zh": i18n.text("zh_CN", f"level.{incident.level.value}"),
        "title": incident.title,
        "lat": incident.lat,
        "lon": incident.lon,
        # the 110 caller's address, else the nearest named crossing and landmark
        "address": address[0],
        "address_source": address[1],
        "grid_cell_id": incident.grid_cell_id,
        "issued_by": who.user_id,
        "reason": reason,
        "ack_topic": order_topic(team_id, incident.scope, "ack"),
    }


#: An id in an ack, as contract v1 bounds every id (1 to 64 characters). Its own pydantic
#: annotation: the contract's payloads are msgspec structs, whose bounds pydantic ignores.
AckId = Annotated[str, Field(min_length=1, max_length=64)]


class OrderAck(BaseModel):
    """What a team answers on ``teams/v1/<team_id>/ack``. Extra fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: AckId
    ts: AwareDatetime | None = None
    order_id: AckId
    status: Literal["accepted", "refused"]
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _no_nul(self) -> OrderAck:
        # A NUL would reach PostgreSQL and fail there, losing the ack with a traceback;
        # refused here it is an unreadable ack (a dead letter) like any other.
        refuse_nul_within([self.id, self.order_id, self.reason, self.model_extra or {}])
        return self


# --- orders in the database ----------------------------------------------------------------


_ORDER_SQL = """
SELECT o.order_id, o.incident_id, o.team_id, t.name AS team_name, t.team_type, o.exercise_id, o.status,
       o.created_at, o.created_by, o.sent_at, o.acked_at, o.released_at, o.ack_overdue_at, o.ack_reason,
       o.body
  FROM dispatch_order o JOIN team t ON t.id = o.team_id
"""


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def order_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "incident_id": row["incident_id"],
        "team_id": row["team_id"],
        "team_name": row["team_name"],
        "team_type": row["team_type"],
        "exercise_id": row["exercise_id"],
        "status": row["status"],
        "in_force": row["status"] in IN_FORCE,
        "created_at": _iso(row["created_at"]),
        "created_by": row["created_by"],
        "sent_at": _iso(row["sent_at"]),
        "acked_at": _iso(row["acked_at"]),
        "released_at": _iso(row["released_at"]),
        "ack_overdue_at": _iso(row["ack_overdue_at"]),
        "ack_reason": row["ack_reason"],
        "message": row["body"],
    }


async def load_order(conn: AsyncConnection[Any], order_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ORDER_SQL + " WHERE o.order_id = %s", (order_id,))
        row = await cur.fetchone()
    return order_body(row) if row is not None else None


async def publish_order(state: CommandState, order_id: str) -> dict[str, Any] | None:
    async with state.pool.connection() as conn:
        order = await load_order(conn, order_id)
    if order is not None:
        await publish(
            state.redis,
            Change("order", order_id, order, exercise_id=order["exercise_id"], team_id=order["team_id"]),
        )
    return order


async def list_orders(state: CommandState, who: Principal, incident_id: str) -> list[dict[str, Any]]:
    incident = await _visible(state, who, incident_id, "dispatch.orders_read")
    async with state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _ORDER_SQL + " WHERE o.incident_id = %s ORDER BY o.created_at, o.order_id",
            (incident.incident_id,),
        )
        rows = await cur.fetchall()
    return [order_body(r) for r in rows]


async def _visible(state: CommandState, who: Principal, incident_id: str, action: str) -> Incident:
    async with state.pool.connection() as conn:
        incident, _ = await store.load(conn, incident_id)
    if not visible_incident(who, store.incident_body(incident)):
        reason = f"{who.role} may not see incident {incident_id}"
        await audit.record_denied(
            state.pool, who, action, reason, object_type="incident", object_id=incident_id
        )
        raise Forbidden(reason)
    return incident


def wake_relay(state: CommandState) -> None:
    if state.outbox is not None:
        state.outbox.wake()


# --- dispatch and release ---------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchResult:
    incident: Incident
    order: dict[str, Any]


async def _in_force_order(conn: AsyncConnection[Any], team_id: str, scope: Scope) -> tuple[str, str] | None:
    cur = await conn.execute(
        sql.SQL(
            "SELECT order_id, incident_id FROM dispatch_order WHERE team_id = %s"
            " AND status IN ('pending','sent','acked') AND {}"
        ).format(scope.where()),
        (team_id, *scope.params),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row is not None else None


async def dispatch(
    state: CommandState,
    who: Principal,
    incident_id: str,
    team_id: str,
    expected_version: int | None,
    reason: str | None,
) -> DispatchResult:
    """Send ``team_id`` to the incident: one transaction (see the module docstring)."""
    at = datetime.now(UTC)
    order_id = new_order_id(at)
    async with locked_incident(state, who, incident_id, "incident.dispatch") as (conn, incident):
        cur = await conn.execute("SELECT status FROM team WHERE id = %s", (team_id,))
        team = await cur.fetchone()
        try:
            events = decide_dispatch(
                incident,
                team_id=team_id,
                order_id=order_id,
                actor=actor_of(who),
                at=at,
                expected_version=expected_version,
                reason=reason,
            )
        except IllegalTransition:
            current = incident.active_assignment(team_id)
            if current is not None:
                raise TeamBusy(
                    f"team already dispatched: {team_id} is on incident {incident_id}"
                    f" (order {current.order_id})"
                ) from None
            raise
        if team is None:
            raise NotFound(f"no team {team_id}")
        live = incident.scope.is_live
        if live and team[0] == "off_duty":
            raise TeamUnavailable(f"team {team_id} is off duty; set its status first if it must go")
        address = await places.order_address(conn, incident)
        message = order_message(order_id, incident, team_id, who, at, reason, address)
        try:
            async with conn.transaction():  # a savepoint: the loser of a race gets a clean 409
                await conn.execute(
                    "INSERT INTO dispatch_order (order_id, incident_id, team_id, exercise_id, status,"
                    " created_at, created_by, body) VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s)",
                    (
                        order_id,
                        incident_id,
                        team_id,
                        incident.exercise_id,
                        at,
                        who.user_id,
                        Jsonb(message),
                    ),
                )
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name not in _IN_FORCE_INDEXES:
                raise
            other = await _in_force_order(conn, team_id, incident.scope)
            where = f" (order {other[0]} on incident {other[1]})" if other else ""
            raise TeamBusy(f"team already dispatched: {team_id}{where}") from None
        new = await store.append(conn, incident, events, audit_action="incident.dispatch")
        if live:
            await conn.execute(
                "UPDATE team SET status = 'dispatched', status_at = %s WHERE id = %s", (at, team_id)
            )
        await conn.execute(
            "INSERT INTO mqtt_outbox (topic, payload, order_id) VALUES (%s, %s, %s)",
            (order_topic(team_id, incident.scope), encode(message), order_id),
        )
        await conn.execute("SELECT pg_notify('wuwang_outbox', '')")
        await audit.record(
            conn,
            who,
            "dispatch.order",
            object_type="dispatch_order",
            object_id=order_id,
            detail={
                "incident_id": incident_id,
                "team_id": team_id,
                "exercise_id": incident.exercise_id,
                "reason": reason,
            },
        )
        order = await load_order(conn, order_id)
    assert new is not None and order is not None
    return await _announce(state, new, team_id, order)


async def release(
    state: CommandState,
    who: Principal,
    incident_id: str,
    team_id: str,
    expected_version: int | None,
    reason: str | None,
) -> DispatchResult:
    """Recall or release a team; the database trigger releases its order and the team."""
    at = datetime.now(UTC)
    async with locked_incident(state, who, incident_id, "incident.release_team") as (conn, incident):
        events = decide_release_team(
            incident,
            team_id=team_id,
            actor=actor_of(who),
            at=at,
            expected_version=expected_version,
            reason=reason,
        )
        new = await store.append(conn, incident, events, audit_action="incident.release_team")
        cur = await conn.execute(
            "SELECT order_id FROM dispatch_order WHERE incident_id = %s AND team_id = %s"
            " ORDER BY created_at DESC LIMIT 1",
            (incident_id, team_id),
        )
        row = await cur.fetchone()
        order = await load_order(conn, row[0]) if row else None
        await audit.record(
            conn,
            who,
            "dispatch.release",
            object_type="dispatch_order",
            object_id=row[0] if row else None,
            detail={"incident_id": incident_id, "team_id": team_id, "reason": reason},
        )
    assert new is not None
    return await _announce(state, new, team_id, order)


async def _announce(
    state: CommandState, new: Incident, team_id: str, order: dict[str, Any] | None
) -> DispatchResult:
    """After a dispatch or release committed: wake the outbox relay and push the incident,
    the team (live teams only: a drill's statuses are its own) and the order."""
    wake_relay(state)
    await publish(state.redis, store.change_for(new))
    if new.scope.is_live:  # a drill never changes the live team row
        await rosters.publish_team(state, team_id)
    if order is not None:
        await publish(
            state.redis,
            Change("order", order["order_id"], order, exercise_id=order["exercise_id"], team_id=team_id),
        )
    return DispatchResult(new, order or {})


# --- acknowledgements (from MQTT) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckOutcome:
    applied: bool
    why: str  # "acked", "refused", "duplicate", "unknown order", "not this team's order", "not in force"


async def apply_ack(
    state: CommandState,
    team_id: str,
    ack: OrderAck,
    received_at: datetime,
    *,
    via: str = "mqtt",
    scope: Scope = LIVE,
) -> AckOutcome:
    """A team's answer to an order: ``accepted`` → acked; ``refused`` → refused (no longer
    in force; the team is available again and the console gets an alert to send
    another). Idempotent; audited. ``scope``: the world the ack came from (a drill's
    ack topic, or live); it must be the order's."""
    exercise_id = scope.exercise_id
    at = min(ack.ts, received_at) if ack.ts is not None else received_at
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT team_id, status, exercise_id, incident_id FROM dispatch_order"
            " WHERE order_id = %s FOR UPDATE",
            (ack.order_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return AckOutcome(False, "unknown order")
        order_team, status, order_exercise, incident_id = row

        async def refused(why: str, detail: dict[str, Any]) -> AckOutcome:
            await audit.record(
                conn,
                team_id,
                "dispatch.ack",
                object_type="dispatch_order",
                object_id=ack.order_id,
                outcome="denied",
                detail=detail,
            )
            return AckOutcome(False, why)

        if Scope.of(order_exercise) != scope:
            # A real device never got a drill order, and a virtual crew must not answer a
            # live one (the same team ids live in both worlds).
            detail = {"reason": "ack from another world", "ack_exercise_id": exercise_id}
            return await refused("not this exercise's order", detail)
        if order_team != team_id:
            return await refused("not this team's order", {"reason": f"order is for team {order_team}"})
        wanted = "acked" if ack.status == "accepted" else "refused"
        if status == wanted:
            return AckOutcome(False, "duplicate")
        if status not in ("pending", "sent"):
            return AckOutcome(False, "not in force" if status != "acked" else "already acked")
        await conn.execute(
            "UPDATE dispatch_order SET status = %s, acked_at = %s, ack_reason = %s WHERE order_id = %s",
            (wanted, at, ack.reason, ack.order_id),
        )
        if wanted == "refused" and scope.is_live:
            await conn.execute(
                "UPDATE team SET status = 'available', status_at = %s"
                " WHERE id = %s AND status = 'dispatched'",
                (at, team_id),
            )
        await audit.record(
            conn,
            team_id,
            f"dispatch.{'ack' if wanted == 'acked' else 'refused'}",
            object_type="dispatch_order",
            object_id=ack.order_id,
            detail={"incident_id": incident_id, "msg_id": ack.id, "reason": ack.reason, "via": via},
        )
    order = await publish_order(state, ack.order_id)
    if wanted == "acked":
        await team_record.record_acknowledged(state, team_id, ack.order_id, incident_id, at)
    if wanted == "refused":
        await rosters.publish_team(state, team_id)
        await publish(
            state.redis,
            Change(
                "alert",
                f"order-refused:{ack.order_id}",
                {
                    "kind": "order_refused",
                    "order_id": ack.order_id,
                    "incident_id": incident_id,
                    "team_id": team_id,
                    "reason": ack.reason,
                    "at": at.isoformat(),
                    "order": order,
                    "text": i18n.text(
                        "zh_CN",
                        "alert.order_refused",
                        team=team_id,
                        order=ack.order_id,
                        because=i18n.text("zh_CN", "alert.order_refused_because", reason=ack.reason)
                        if ack.reason
                        else "",
                    ),
                },
                exercise_id=exercise_id,
                team_id=team_id,
            ),
        )
    return AckOutcome(True, wanted)


@dataclass(frozen=True, slots=True)
class Overdue:
    order_id: str
    incident_id: str
    team_id: str
    exercise_id: str | None
    sent_at: datetime


async def raise_overdue_acks(state: CommandState, timeout_s: float) -> list[Overdue]:
    """Orders sent more than ``timeout_s`` ago and still not acknowledged: flagged once
    (``ack_overdue_at``; the UPDATE is the guard, so several command processes raise
    each alert once), audited, and published as an ``alert`` change."""
    async with state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE dispatch_order SET ack_overdue_at = now() WHERE status = 'sent'"
            " AND ack_overdue_at IS NULL AND sent_at < now() - make_interval(secs => %s)"
            " RETURNING order_id, incident_id, team_id, exercise_id, sent_at",
            (timeout_s,),
        )
        found = [Overdue(*r) for r in await cur.fetchall()]
        for o in found:
            await audit.record(
                conn,
                "system:ack-watchdog",
                "dispatch.ack_overdue",
                object_type="dispatch_order",
                object_id=o.order_id,
                detail={"incident_id": o.incident_id, "team_id": o.team_id, "timeout_s": timeout_s},
            )
    for o in found:
        waited = (datetime.now(UTC) - o.sent_at).total_seconds()
        await publish(
            state.redis,
            Change(
                "alert",
                f"ack-overdue:{o.order_id}",
                {
                    "kind": "ack_overdue",
                    "order_id": o.order_id,
                    "incident_id": o.incident_id,
                    "team_id": o.team_id,
                    "sent_at": o.sent_at.isoformat(),
                    "waited_s": round(waited, 1),
                    "timeout_s": timeout_s,
                    "text": i18n.text(
                        "zh_CN",
                        "alert.ack_overdue",
                        team=o.team_id,
                        timeout=duration(timeout_s),
                        order=o.order_id,
                        incident=o.incident_id,
                    ),
                },
                exercise_id=o.exercise_id,
                team_id=o.team_id,
            ),
        )
        await publish_order(state, o.order_id)
    return found


# --- recommendation --------------------------------------------------------------------------


#: Team needs when no plan is active on the incident: the first response for the type
#: (docs/command-api-teams-dispatch.md has this table).
DEFAULT_TEAM_NEEDS: Mapping[IncidentType, tuple[tuple[TeamType, int], ...]] = {
    IncidentType.FIRE: ((TeamType.FIRE, 1),),
    IncidentType.HIGH_RISE_FIRE: ((TeamType.FIRE, 2), (TeamType.MEDICAL, 1)),
    IncidentType.HAZMAT_LEAK: ((TeamType.HAZMAT, 1), (TeamType.FIRE, 1)),
    IncidentType.FLOOD: ((TeamType.WATER_RESCUE, 1),),
    IncidentType.CROWD_CRUSH: ((TeamType.POLICE, 1), (TeamType.MEDICAL, 1)),
    IncidentType.TRAFFIC_ACCIDENT: ((TeamType.POLICE, 1), (TeamType.MEDICAL, 1), (TeamType.FIRE, 1)),
    IncidentType.EARTHQUAKE: ((TeamType.COMPREHENSIVE, 1), (TeamType.FIRE, 1), (TeamType.MEDICAL, 1)),
    IncidentType.PUBLIC_HEALTH: ((TeamType.MEDICAL, 1),),
    IncidentType.UTILITY_OUTAGE: ((TeamType.COMPREHENSIVE, 1),),
    IncidentType.MEDICAL: ((TeamType.MEDICAL, 1),),
    IncidentType.RESCUE: ((TeamType.FIRE, 1),),
    IncidentType.CRIMINAL: ((TeamType.POLICE, 1),),
    IncidentType.PUBLIC_ORDER: ((TeamType.POLICE, 1),),
    IncidentType.DISPUTE: ((TeamType.POLICE, 1),),
    IncidentType.OTHER: ((TeamType.COMPREHENSIVE, 1),),
}


def recommend_config(state: CommandState) -> RecommendConfig:
    s = state.settings
    return RecommendConfig(
        road_factor=s.command.road_factor,
        speeds_kmh=DEFAULT_SPEEDS_KMH,
        stale_after=timedelta(seconds=s.command.position_stale_s),
        stale_fallback_to_base=s.command.recommend_from_base,
    )


def requirements_for(state: CommandState, incident: Incident) -> tuple[Requirements, dict[str, Any]]:
    """The active plan's requirements at the incident's current level, or the default
    first response for its type; with where they came from."""
    if incident.active_plan is not None:
        try:
            plan = state.plans.get(incident.active_plan.plan_id)
        except KeyError:
            log.warning(
                "plan %s of incident %s is not in the library; using the default response",
                incident.active_plan.plan_id,
                incident.incident_id,
            )
        else:
            activation = activate(plan, incident.level)
            return activation.requirements, {
                "source": "plan",
                "plan_id": plan.id,
                "plan_version": plan.version,
                "plan_title_zh": plan.title_zh,
                "level": int(incident.level),
                "level_name": incident.level.name,
            }
    needs = DEFAULT_TEAM_NEEDS.get(incident.incident_type, ((TeamType.COMPREHENSIVE, 1),))
    return Requirements(teams=tuple(TeamRequirement(t, n) for t, n in needs)), {
        "source": "default",
        "incident_type": str(incident.incident_type),
        "level": int(incident.level),
        "level_name": incident.level.name,
    }


def _reason_out(reason: Reason) -> dict[str, Any]:
    """A reason as the API gives it: its code and parameters (for clients that say it in
    their own words, like the console) and its Chinese text."""
    return {"code": reason.code, "params": dict(reason.params), "text": render(reason)}


class _Reasons:
    """Reasons rendered once per object: most skipped teams share the few reasons made
    once per status, and a thousand skips must not cost a thousand renderings."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Reason, dict[str, Any]]] = {}

    def __call__(self, reason: Reason) -> dict[str, Any]:
        seen = self._seen.get(id(reason))
        if seen is None:  # the reason is kept with its id, so the id is never reused
            seen = self._seen[id(reason)] = (reason, _reason_out(reason))
        return seen[1]


async def recommendations(state: CommandState, who: Principal, incident_id: str) -> dict[str, Any]:
    """Ranked available on-duty teams for every team requirement, with reasons, and the
    teams skipped with why; warehouses for the plan's supplies. Every reason comes as
    Chinese text (``reasons``, ``detail``) and as a code with parameters
    (``reason_codes``, ``code`` + ``params``; command.domain.reasons)."""
    if not policy.allowed_anywhere(who.role, Action.DISPATCH_RECOMMEND):
        reason = f"{who.role} may not read dispatch recommendations"
        await audit.record_denied(
            state.pool, who, "dispatch.recommend", reason, object_type="incident", object_id=incident_id
        )
        raise Forbidden(reason)
    incident = await _visible(state, who, incident_id, "dispatch.recommend")
    if incident.lat is None or incident.lon is None:
        raise InvalidCommand(f"incident {incident_id} has no location: teams cannot be ranked by travel time")
    at = datetime.now(UTC)
    location = (incident.lat, incident.lon)
    requirements, basis = requirements_for(state, incident)
    config = recommend_config(state)
    async with state.pool.connection() as conn:
        teams = await rosters.teams_with_positions(conn, state.redis)
        # The drill's statuses over the live roster (live: none).
        drill_states, drill_orders = await exercise_store.team_overlay(conn, incident.scope)
        teams = overlay_team_statuses(teams, drill_states, drill_orders)
        roster = await rosters.kept_duty_roster(state, conn, at)  # shifts only; statuses are fresh
        supplies = await _supply_rankings(conn, incident, requirements, location, at, state, config)
    by_id = {t.id: t for t in teams}
    assigned = incident.active_team_ids
    rankings = recommend_for_requirements(requirements, teams, roster, at, location, config, exclude=assigned)
    said = _Reasons()
    out_teams = []
    for req in requirements.teams:
        ranking = rankings[req.type]
        have = sum(1 for t in assigned if t in by_id and by_id[t].type is req.type)
        candidates = []
        for c in ranking.candidates:
            coded = [_reason_out(r) for r in c.reasons]
            candidates.append(
                {
                    "team_id": c.team_id,
                    "name": by_id[c.team_id].name,
                    "rank": c.rank,
                    "eta_s": round(c.eta_s, 1),
                    "eta": duration(c.eta_s),
                    "distance_m": round(c.distance_m, 1),
                    "route_m": round(c.route_m, 1),
                    "from_base": c.from_base,
                    "position_age_s": round(c.position_age_s, 1) if c.position_age_s is not None else None,
                    "on_shift_until": _iso(c.on_shift_until),
                    "reasons": [r["text"] for r in coded],
                    "reason_codes": coded,
                }
            )
        skipped = []
        for s in ranking.skipped:
            why = said(s.detail)
            skipped.append(
                {
                    "team_id": s.team_id,
                    "name": by_id[s.team_id].name,
                    "reason": s.reason.value,
                    "detail": why["text"],
                    "code": why["code"],
                    "params": why["params"],
                }
            )
        out_teams.append(
            {
                "type": req.type.value,
                "count": req.count,
                "assigned": have,
                "needed": max(0, req.count - have),
                "eligible": ranking.eligible,
                "short": max(0, req.count - have - ranking.eligible),
                "suggested": [c.team_id for c in ranking.candidates[: max(0, req.count - have)]],
                "candidates": candidates,
                "skipped": skipped,
            }
        )
    return {
        "incident_id": incident.incident_id,
        "version": incident.version,
        "location": {"lat": incident.lat, "lon": incident.lon},
        "generated_at": at.isoformat(),
        "basis": basis,
        "config": {
            "road_factor": config.road_factor,
            "speeds_kmh": dict(config.speeds_kmh),
            "stale_after_s": config.stale_after.total_seconds(),
            "from_base": config.stale_fallback_to_base,
            "travel_model": "great_circle",
        },
        "assigned": list(assigned),
        "teams": out_teams,
        "supplies": supplies,
    }


async def _supply_rankings(
    conn: AsyncConnection[Any],
    incident: Incident,
    requirements: Requirements,
    location: tuple[float, float],
    at: datetime,
    state: CommandState,
    config: RecommendConfig,
) -> list[dict[str, Any]]:
    if not requirements.supplies:
        return []
    items = [s.item for s in requirements.supplies]
    today = at.astimezone(rosters.local_zone(state)).date()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, name, kind, lat, lon, district_adcode, lead_time_s FROM warehouse")
        warehouses = [
            Warehouse(
                r["id"],
                r["name"],
                WarehouseKind(r["kind"]),
                r["lat"],
                r["lon"],
                r["district_adcode"],
                r["lead_time_s"],
            )
            for r in await cur.fetchall()
        ]
        await cur.execute(
            "SELECT id, warehouse_id, item_code, quantity, reserved, expires_on FROM stock_lot"
            " WHERE item_code = ANY(%s)",
            (items,),
        )
        lots = [
            StockLot(
                r["id"], r["warehouse_id"], r["item_code"], r["quantity"], r["reserved"], r["expires_on"]
            )
            for r in await cur.fetchall()
        ]
        # Stock the drill cut is gone, for the drill (live: nothing cut).
        lots = apply_stock_cuts(lots, await exercise_store.stock_cuts(conn, incident.scope, items))
        await cur.execute(
            "SELECT warehouse_id, item_code, per_day, lead_time_s FROM production_capacity"
            " WHERE item_code = ANY(%s)",
            (items,),
        )
        caps = [
            ProductionCapacity(r["warehouse_id"], r["item_code"], r["per_day"], r["lead_time_s"])
            for r in await cur.fetchall()
        ]
        await cur.execute(
            "SELECT l.item_code, coalesce(sum(a.reserved + a.issued - a.returned), 0) AS held"
            " FROM stock_allocation a JOIN stock_lot l ON l.id = a.lot_id WHERE a.incident_id = %s"
            " GROUP BY l.item_code",
            (incident.incident_id,),
        )
        held = {r["item_code"]: int(r["held"]) for r in await cur.fetchall()}
    names = {w.id: w.name for w in warehouses}
    # every item ranked at once: lots grouped by item and each warehouse's drive computed once
    rankings = iter(
        recommend_supplies(
            [
                (n.item, n.quantity - held.get(n.item, 0))
                for n in requirements.supplies
                if n.quantity > held.get(n.item, 0)
            ],
            lots,
            warehouses,
            location,
            today,
            caps,
            config,
        )
    )
    out = []
    for need in requirements.supplies:
        have = held.get(need.item, 0)
        still = need.quantity - have
        entry: dict[str, Any] = {
            "item": need.item,
            "quantity": need.quantity,
            "unit": need.unit,
            "held": have,
            "needed": max(0, still),
            "candidates": [],
            "plan": [],
            "short": 0,
            "skipped": [],
        }
        if still > 0:
            r = next(rankings)  # the same needs in the same order as above
            candidates = []
            for c in r.candidates:
                coded = [_reason_out(why) for why in c.reasons]
                candidates.append(
                    {
                        "warehouse_id": c.warehouse_id,
                        "name": names.get(c.warehouse_id),
                        "kind": c.kind.value,
                        "rank": c.rank,
                        "available": c.available,
                        "covers": c.covers,
                        "eta_s": round(c.eta_s, 1),
                        "eta": duration(c.eta_s),
                        "distance_m": round(c.distance_m, 1),
                        "reasons": [why["text"] for why in coded],
                        "reason_codes": coded,
                    }
                )
            entry["candidates"] = candidates
            entry["plan"] = [
                {"warehouse_id": p.warehouse_id, "quantity": p.quantity, "eta_s": round(p.eta_s, 1)}
                for p in r.plan
            ]
            entry["short"] = r.short
            entry["skipped"] = [
                {"warehouse_id": w, "reason": render(why), "code": why.code, "params": dict(why.params)}
                for w, why in r.skipped
            ]
        out.append(entry)
    return out
