"""Incident use-cases at the edge: alarms in (correlation), operator commands, queries.

Each use-case is one PostgreSQL transaction around a pure decision from
``command.domain``; the change is published to live clients after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command.domain import policy
from command.domain.correlation import (
    AlreadyLinked,
    CorrelationRules,
    IncidentView,
    JoinIncident,
    ToOrderIncident,
    alarm_exercise_id,
    correlate,
    default_rules,
    report_team,
    route_team_report,
)
from command.domain.incidents import (
    Actor,
    Event,
    Incident,
    IncidentState,
    SourceRef,
    decide_link_source,
    decide_open,
)
from command.domain.incidents import actor_of as actor_of  # the routes' way in, as run_command
from command.domain.incidents import visible_incident as visible_incident
from command.domain.reasons import Said
from command.domain.triage import InboxRow, ToIncident
from command.domain.vocabulary import IncidentType, Role
from command.security import Principal
from command.services import grid as grid_service
from command.services import inbox, places
from command.services import incident_store as store
from command.services.incident_store import run_command as run_command  # the routes' way in
from command.services.incident_store import run_pair
from command.services.live import Change, publish
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import Alarm
from wuwang.scope import Scope

log = logging.getLogger(__name__)

SYSTEM = Actor("system:correlator", Role.SYSTEM)

#: Serialises correlation across command processes: two duplicate 110 calls taken at
#: the same instant by two processes must not open two incidents.
_CORRELATION_LOCK = 0x434F_5252  # "CORR"

#: What ``alarm_inbox.triage_rule`` says of a team's report linked to its order's incident.
TEAM_ORDER_RULE = "team_order"

#: How far back an open incident can still attract alarms (the widest window + margin).
_VIEW_HORIZON = "12 hours"


def now() -> datetime:
    return datetime.now(UTC)


async def new_incident_id(conn: AsyncConnection[Any], at: datetime) -> str:
    cur = await conn.execute("SELECT nextval('incident_number_seq')")
    row = await cur.fetchone()
    assert row is not None
    return f"INC-{at:%Y%m%d}-{int(row[0]):06d}"


async def open_views(conn: AsyncConnection[Any], scope: Scope) -> list[IncidentView]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT id, incident_type, state, exercise_id, lat, lon, first_alarm_at, latest_alarm_at,"
                " body->'sources' AS sources FROM incident WHERE is_open AND {}"
                " AND latest_alarm_at > now() - {}::interval"
            ).format(scope.where(), sql.Literal(_VIEW_HORIZON)),
            scope.params,
        )
        rows = await cur.fetchall()
    return [
        IncidentView(
            incident_id=r["id"],
            incident_type=IncidentType(r["incident_type"]),
            state=IncidentState(r["state"]),
            exercise_id=r["exercise_id"],
            lat=r["lat"],
            lon=r["lon"],
            first_source_at=r["first_alarm_at"],
            last_source_at=r["latest_alarm_at"],
            source_keys=frozenset(s["source"] for s in r["sources"] or []),
            alarm_ids=frozenset(s["alarm_id"] for s in r["sources"] or []),
        )
        for r in rows
    ]


async def _takes_alarms(conn: AsyncConnection[Any], scope: Scope) -> bool:
    """Live operations always do; a drill while it exists and is not purged."""
    if scope.exercise_id is None:
        return True
    cur = await conn.execute("SELECT status FROM exercise WHERE id = %s", (scope.exercise_id,))
    row = await cur.fetchone()
    return row is not None and row[0] != "purged"


@dataclass
class AlarmIntake:
    """The handler the alarm feed calls: triage, then correlate (open or join) what is
    promoted and fold the rest into the alarm inbox — exactly once per alarm."""

    rules: CorrelationRules

    @classmethod
    def default(cls) -> AlarmIntake:
        return cls(default_rules())

    async def __call__(self, state: CommandState, alarm: Alarm) -> None:
        at = now()
        scope = Scope.of(alarm_exercise_id(alarm))
        exercise_id = scope.exercise_id
        changed: Incident | None = None
        rows: list[InboxRow] = []
        triage_rules = state.triage_rules
        async with state.pool.connection() as conn, conn.transaction():
            if not await _takes_alarms(conn, scope):
                # A late message of a purged drill (or one nobody registered) must not
                # bring the purged exercise back to life as new incidents.
                log.warning(
                    "alarm %s of exercise %s dropped: no such exercise, or purged",
                    alarm.alarm_id,
                    exercise_id,
                )
                return
            cur = await conn.execute(
                "INSERT INTO alarm_inbox (alarm_id, exercise_id, payload) VALUES (%s, %s, %s)"
                " ON CONFLICT (alarm_id) DO NOTHING",
                (alarm.alarm_id, exercise_id, Jsonb(alarm.to_json())),
            )
            if cur.rowcount == 0:
                return  # seen before: at-least-once delivery
            if grid_service.takes(alarm):  # a report in a grid category: 网格化管理, not an incident
                return await grid_service.discover_from_alarm(state, conn, alarm, at=at)
            # A team's report belongs to its order's incident unless it says "new event".
            team = report_team(alarm)
            order = None if team is None else await store.team_order(conn, team, scope)
            route = None if team is None else route_team_report(alarm, order)
            if isinstance(route, ToOrderIncident):
                changed = await _link_to_order_incident(conn, alarm, route, at)
            if route is not None:
                log.info("report %s of team %s: %s", alarm.alarm_id, team, route.reason)
            else:
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CORRELATION_LOCK,))
                changed, rows = await self._triage_and_correlate(conn, alarm, at, scope, triage_rules)
        await publish(
            state.redis,
            Change("alarm", alarm.alarm_id, alarm.to_json(), exercise_id=exercise_id),
        )
        if changed is not None:
            await publish(state.redis, store.change_for(changed))
        await inbox.publish_rows(state, rows)

    async def _triage_and_correlate(
        self,
        conn: AsyncConnection[Any],
        alarm: Alarm,
        at: datetime,
        scope: Scope,
        triage_rules: Any,
    ) -> tuple[Incident | None, list[InboxRow]]:
        changed: Incident | None = None
        # Triage (docs/triage.md): what no rule promotes folds into the alarm inbox.
        triaged = await inbox.triage_alarm(conn, alarm, at, triage_rules)
        rows = triaged.changed  # a ToInbox: the row it folded into (and one it superseded)
        if isinstance(triaged.outcome, ToIncident):
            promotion = triaged.outcome.promotion
            place = places.alarm_place(alarm.lat, alarm.lon)  # a new incident's title says where in words
            decision = correlate(alarm, await open_views(conn, scope), self.rules, at, place=place)
            if isinstance(decision, AlreadyLinked):
                return None, rows  # delivered again: nothing to do
            source = inbox.promoted_source(alarm, promotion, triage_rules)
            # the record's text: the promotion, then the correlator's reason (said by its code)
            why = inbox.promotion_text(promotion, triage_rules, "zh_CN") + i18n.text("zh_CN", "record.then")
            if isinstance(decision, JoinIncident):
                incident, _ = await store.load(conn, decision.incident_id, for_update=True)
                events = decide_link_source(
                    incident, source, actor=SYSTEM, at=at, reason=Said(why + decision.reason, decision.why)
                )
                changed = await store.append(conn, incident, events, audit_action="incident.link_alarm")
            else:
                incident_id = await new_incident_id(conn, at)
                events = decide_open(
                    incident_id,
                    incident_type=decision.incident_type,
                    level=decision.level_suggestion,
                    title=decision.title_zh,
                    actor=SYSTEM,
                    at=at,
                    source=source,
                    exercise_id=scope.exercise_id,
                    reason=Said(why + decision.reason, decision.why),
                )
                changed = await store.append(conn, None, events, audit_action="incident.open")
            if changed is not None:
                await conn.execute(
                    "UPDATE alarm_inbox SET incident_id = %s, triage_rule = %s WHERE alarm_id = %s",
                    (changed.incident_id, promotion.rule_id, alarm.alarm_id),
                )
                rows = await inbox.link_story(conn, triaged, changed, at, triage_rules)
        return changed, rows


async def _link_to_order_incident(
    conn: AsyncConnection[Any], alarm: Alarm, route: ToOrderIncident, at: datetime
) -> Incident | None:
    incident, _ = await store.load(conn, route.incident_id, for_update=True)
    events = decide_link_source(
        incident, SourceRef.from_alarm(alarm), actor=SYSTEM, at=at, reason=Said.of(route.why)
    )
    changed = await store.append(conn, incident, events, audit_action="incident.link_alarm")
    await conn.execute(
        "UPDATE alarm_inbox SET incident_id = %s, triage_rule = %s WHERE alarm_id = %s",
        (route.incident_id, TEAM_ORDER_RULE, alarm.alarm_id),
    )
    return changed


async def split(
    state: CommandState,
    who: Principal,
    incident_id: str,
    alarm_id: str,
    reason: str | None,
    expected_version: int | None,
) -> tuple[Incident, Incident]:
    from command.domain.incidents import decide_split

    at = now()
    async with state.pool.connection() as conn:
        new_id = await new_incident_id(conn, at)

    def decide(inc: Incident, _same: Incident) -> tuple[Sequence[Event], Sequence[Event]]:
        result = decide_split(
            inc,
            alarm_id=alarm_id,
            new_incident_id=new_id,
            actor=actor_of(who),
            at=at,
            expected_version=expected_version,
            reason=reason,
        )
        return result.from_events, result.new_events

    return await run_pair(state, who, incident_id, incident_id, decide, "incident.split")


async def merge(
    state: CommandState,
    who: Principal,
    merged_id: str,
    survivor_id: str,
    reason: str | None,
    expected_merged_version: int | None,
    expected_survivor_version: int | None,
) -> tuple[Incident, Incident]:
    from command.domain.incidents import decide_merge

    at = now()

    def decide(merged: Incident, survivor: Incident) -> tuple[Sequence[Event], Sequence[Event]]:
        result = decide_merge(
            merged,
            survivor,
            actor=actor_of(who),
            at=at,
            expected_merged_version=expected_merged_version,
            expected_survivor_version=expected_survivor_version,
            reason=reason,
        )
        return result.merged_events, result.survivor_events

    merged, survivor = await run_pair(state, who, merged_id, survivor_id, decide, "incident.merge")
    # Orders in force follow their team to the surviving incident.
    async with state.pool.connection() as conn:
        await conn.execute(
            "UPDATE dispatch_order SET incident_id = %s WHERE incident_id = %s"
            " AND status IN ('pending','sent','acked')",
            (survivor_id, merged_id),
        )
    return merged, survivor


# --- queries -------------------------------------------------------------------------


async def list_incidents(
    state: CommandState, who: Principal, *, open_only: bool, limit: int, scope: Scope | None = None
) -> list[dict[str, Any]]:
    """The incidents the role sees (as the policy says: planners every drill's, admins
    all), or one ``scope``'s when given."""
    live, drill = policy.sees(who.role, drill=False), policy.sees(who.role, drill=True)
    exercise_filter: sql.Composable = sql.SQL(
        "TRUE" if live and drill else "exercise_id IS NOT NULL" if drill else "exercise_id IS NULL"
    )
    if scope is not None:
        exercise_filter = scope.where(name="ex")
    async with state.pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(
            sql.SQL(
                "SELECT body FROM incident WHERE ({}) AND (is_open OR NOT %(open)s)"
                " ORDER BY is_open DESC, level ASC, opened_at DESC LIMIT %(limit)s"
            ).format(exercise_filter),
            {"open": open_only, "limit": limit, **(scope.named("ex") if scope else {})},
        )
        rows = await cur.fetchall()
    return [store.with_next_acts(r[0]) for r in rows if visible_incident(who, r[0])]


async def incident_detail(state: CommandState, incident_id: str) -> tuple[Incident, list[Event]]:
    async with state.pool.connection() as conn:
        return await store.load(conn, incident_id)


async def snapshot(state: CommandState, who: Principal) -> list[dict[str, Any]]:
    """Open incidents for a (re)connecting live client."""
    return await list_incidents(state, who, open_only=True, limit=500)
