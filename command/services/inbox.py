"""The alarm inbox (告警收件箱) at the edge: triage of incoming alarms, the inbox rows in
PostgreSQL (``triage_row``, migration 0014), the operators' actions and expiry.

* :func:`triage_alarm` runs inside :class:`~command.services.incidents.AlarmIntake`'s
  transaction, under its correlation lock: it loads what is near and recent (inbox rows,
  alarms that went to incidents, venues), calls the pure :func:`~command.domain.triage.triage`
  and either folds the alarm into its row or tells the intake to correlate it.
* :func:`act` carries out promote / link / dismiss on one row or many, each change
  audited (``inbox.*`` in ``audit_log``) in the same transaction.
* :func:`expire_due` moves quiet rows to the review list; :class:`InboxExpiry` runs it
  periodically.

Rows are published on the live channel as ``Change("inbox", row_id, …)`` after commit.
See docs/incidents.md (the inbox and its API) and docs/triage.md (the rules).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from command import audit
from command.domain import policy
from command.domain import triage as tri
from command.domain.correlation import (
    CorrelationRules,
    IncidentView,
    OpenIncident,
    alarm_exercise_id,
    correlate,
)
from command.domain.incidents import (
    Forbidden,
    IllegalTransition,
    Incident,
    InvalidCommand,
    SourceRef,
    decide_link_source,
    decide_open,
)
from command.domain.incidents import actor_of as actor_of  # routes.planned_events reaches it here
from command.domain.reasons import Param, Reason, Said
from command.domain.risk import MAJOR_RISK_VENUE
from command.domain.triage import (
    DismissReason,
    InboxRow,
    InboxState,
    RowChange,
    RowKey,
    Severity,
    TriageContext,
    TriageRules,
    TriageRulesError,
)
from command.domain.vocabulary import Role
from command.security import Principal
from command.services import incident_store as store
from command.services import places, planned_events
from command.services.incident_store import NotFound
from command.services.live import Change, publish
from command.services.tasks import Periodic
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import Alarm, ContractError
from wuwang.scope import LIVE, Scope

log = logging.getLogger(__name__)

#: The rules file the service reads at start-up (tests may point it elsewhere).
RULES_FILE: Path = tri.DEFAULT_RULES_FILE

#: Serialises inbox writes with the alarm intake (the intake's correlation lock).
CORRELATION_LOCK = 0x434F_5252  # "CORR", as command.services.incidents

#: How many rows a bulk action takes at most.
BULK_MAX = 200

Action = Literal["promote", "link", "dismiss"]


def now() -> datetime:
    return datetime.now(UTC)


# --- the rules -----------------------------------------------------------------------------------


def load_rules(path: Path | None = None) -> TriageRules:
    """Read and validate the triage rules. Raises :class:`TriageRulesError` naming the
    file, the line and the field of every problem: the lifespan calls this, so bad rules
    stop start-up."""
    chosen = path or RULES_FILE
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise TriageRulesError([f"{chosen}: cannot read the triage rules: {exc.strerror or exc}"]) from None
    rules = tri.parse_rules(text, str(chosen))
    log.info("triage rules %s: version %d, %d rules", chosen, rules.version, len(rules.rule_ids))
    return rules


# --- rows in PostgreSQL --------------------------------------------------------------------------

_COLUMNS = (
    "row_id, source, category, exercise_id, alarm_kind, first_seen, last_seen, count, max_severity,"
    " max_confidence, lat, lon, grid_cell_id, summary, first_alarm_id, alarm_ids, recent, identity,"
    " flapping, flapping_since, state, acted_by, acted_role, acted_at, rule_id, dismiss_reason, note,"
    " incident_id"
)


def _row(r: dict[str, Any]) -> InboxRow:
    return InboxRow(
        row_id=r["row_id"],
        key=RowKey(r["source"], r["category"], r["exercise_id"]),
        alarm_kind=r["alarm_kind"],
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        count=r["count"],
        max_severity=Severity(r["max_severity"]),
        max_confidence=r["max_confidence"],
        lat=r["lat"],
        lon=r["lon"],
        grid_cell_id=r["grid_cell_id"],
        summary=r["summary"],
        first_alarm_id=r["first_alarm_id"],
        alarm_ids=tuple(r["alarm_ids"]),
        recent=tuple(r["recent"]),
        identity=r["identity"],
        flapping=r["flapping"],
        flapping_since=r["flapping_since"],
        state=InboxState(r["state"]),
        acted_by=r["acted_by"],
        acted_role=Role(r["acted_role"]) if r["acted_role"] else None,
        acted_at=r["acted_at"],
        rule_id=r["rule_id"],
        dismiss_reason=DismissReason(r["dismiss_reason"]) if r["dismiss_reason"] else None,
        note=r["note"],
        incident_id=r["incident_id"],
    )


async def _select(
    conn: AsyncConnection[Any], where: str | sql.Composable, params: Any, suffix: str = ""
) -> list[InboxRow]:
    async with conn.cursor(row_factory=dict_row) as cur:
        query = sql.SQL("SELECT {} FROM triage_row WHERE {} {}").format(
            sql.SQL(_COLUMNS), sql.SQL(where) if isinstance(where, str) else where, sql.SQL(suffix)
        )
        await cur.execute(query, params)
        return [_row(r) for r in await cur.fetchall()]


def _alarm_fields(row: InboxRow) -> dict[str, Any]:
    """What a row's alarms say, as both the table and the API carry it."""
    return {
        "max_confidence": row.max_confidence,
        "lat": row.lat,
        "lon": row.lon,
        "grid_cell_id": row.grid_cell_id,
        "summary": row.summary,
        "first_alarm_id": row.first_alarm_id,
        "alarm_ids": list(row.alarm_ids),
    }


def _outcome_fields(row: InboxRow) -> dict[str, Any]:
    """What became of a row (its rule, reason, note and incident), as both the table and
    the API carry it."""
    return {
        "rule_id": row.rule_id,
        "dismiss_reason": str(row.dismiss_reason) if row.dismiss_reason else None,
        "note": row.note,
        "incident_id": row.incident_id,
    }


async def _save(conn: AsyncConnection[Any], row: InboxRow, rules_version: int) -> None:
    """Insert or rewrite one row (by its id)."""
    await conn.execute(
        f"INSERT INTO triage_row ({_COLUMNS}, severity_rank, rules_version) VALUES"
        " (%(row_id)s, %(source)s, %(category)s, %(exercise_id)s, %(alarm_kind)s, %(first_seen)s,"
        " %(last_seen)s, %(count)s, %(max_severity)s, %(max_confidence)s, %(lat)s, %(lon)s,"
        " %(grid_cell_id)s, %(summary)s, %(first_alarm_id)s, %(alarm_ids)s, %(recent)s, %(identity)s,"
        " %(flapping)s, %(flapping_since)s, %(state)s, %(acted_by)s, %(acted_role)s, %(acted_at)s,"
        " %(rule_id)s, %(dismiss_reason)s, %(note)s, %(incident_id)s, %(severity_rank)s,"
        " %(rules_version)s)"
        " ON CONFLICT (row_id) DO UPDATE SET first_seen = EXCLUDED.first_seen,"
        " last_seen = EXCLUDED.last_seen, count = EXCLUDED.count, max_severity = EXCLUDED.max_severity,"
        " severity_rank = EXCLUDED.severity_rank, max_confidence = EXCLUDED.max_confidence,"
        " lat = EXCLUDED.lat, lon = EXCLUDED.lon, grid_cell_id = EXCLUDED.grid_cell_id,"
        " summary = EXCLUDED.summary, alarm_ids = EXCLUDED.alarm_ids, recent = EXCLUDED.recent,"
        " flapping = EXCLUDED.flapping, flapping_since = EXCLUDED.flapping_since, state = EXCLUDED.state,"
        " acted_by = EXCLUDED.acted_by, acted_role = EXCLUDED.acted_role, acted_at = EXCLUDED.acted_at,"
        " rule_id = EXCLUDED.rule_id, dismiss_reason = EXCLUDED.dismiss_reason, note = EXCLUDED.note,"
        " incident_id = EXCLUDED.incident_id, updated_at = now()",
        {
            "row_id": row.row_id,
            "source": row.key.source,
            "category": row.key.category,
            "exercise_id": row.exercise_id,
            "alarm_kind": row.alarm_kind,
            "first_seen": row.first_seen,
            "last_seen": row.last_seen,
            "count": row.count,
            "max_severity": str(row.max_severity),
            "severity_rank": row.max_severity.rank,
            **_alarm_fields(row),
            "recent": list(row.recent),
            "identity": row.identity,
            "flapping": row.flapping,
            "flapping_since": row.flapping_since,
            "state": str(row.state),
            "acted_by": row.acted_by,
            "acted_role": str(row.acted_role) if row.acted_role else None,
            "acted_at": row.acted_at,
            **_outcome_fields(row),
            "rules_version": rules_version,
        },
    )


async def _record(
    conn: AsyncConnection[Any], change: RowChange, who: Principal | str, extra: dict[str, Any] | None = None
) -> None:
    """The row's new state and its audit record (one transaction)."""
    detail = change.audit_detail()
    if extra:
        detail.update(extra)
    await audit.record(
        conn, who, change.audit_action, object_type="inbox_row", object_id=change.after.row_id, detail=detail
    )


# --- rows as the API and the console see them -------------------------------------------------------


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def reason_out(reason: Reason | None, rules: TriageRules) -> dict[str, Any] | None:
    """A reason with its code, parameters and both texts (zh-CN, English)."""
    if reason is None:
        return None
    return {
        "code": reason.code,
        "params": dict(reason.params),
        "zh": rules.render(reason, "zh_CN"),
        "en": rules.render(reason, "en"),
    }


def review_reason(row: InboxRow, rules: TriageRules) -> Reason | None:
    """Why an expired row is in the review list: its expiry rule, or (rule ``fold``) a
    new row of the same source took over its storm (see :func:`_supersede`)."""
    if row.state != InboxState.EXPIRED:
        return None
    if row.rule_id == rules.fold.id:
        return tri.reason_for(
            rules.fold.id,
            source=row.key.source,
            category=row.key.category,
            window_s=rules.fold.window_s,
            count=row.count,
        )
    return tri.expiry_reason(row, rules)


def row_body(row: InboxRow, rules: TriageRules) -> dict[str, Any]:
    return {
        "row_id": row.row_id,
        "state": str(row.state),
        "source": row.key.source,
        "category": row.key.category,
        "alarm_kind": row.alarm_kind,
        "exercise_id": row.exercise_id,
        "first_seen": _iso(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "count": row.count,
        "severity": str(row.max_severity),
        **_alarm_fields(row),
        "alarm_ids_truncated": row.alarm_ids_truncated,
        "flapping": row.flapping,
        "flapping_since": _iso(row.flapping_since),
        "acted_by": row.acted_by,
        "acted_role": str(row.acted_role) if row.acted_role else None,
        "acted_at": _iso(row.acted_at),
        **_outcome_fields(row),
        "reasons": {
            "inbox": reason_out(tri.inbox_reason(row, rules), rules),
            "flapping": reason_out(tri.flapping_reason(row, rules), rules),
            "review": reason_out(review_reason(row, rules), rules),
        },
    }


def change_for(row: InboxRow, rules: TriageRules) -> Change:
    return Change("inbox", row.row_id, row_body(row, rules), exercise_id=row.exercise_id)


async def publish_rows(state: CommandState, rows: Sequence[InboxRow]) -> None:
    rules = state.triage_rules
    for row in rows:
        await publish(state.redis, change_for(row, rules))


# --- triage at intake ------------------------------------------------------------------------------

_M_PER_DEG = 111_320.0


def _box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    dlat = radius_m / _M_PER_DEG
    dlon = radius_m / (_M_PER_DEG * max(math.cos(math.radians(lat)), 0.01))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _horizon_s(rules: TriageRules) -> float:
    """How far back rows and alarms may still matter to a decision: the widest
    corroboration window and the mute after a false alarm (the key's own open rows, to
    fold into, are loaded whatever their age)."""
    windows = [rules.fold.window_s, *(c.window_s for c in rules.corroboration)]
    if rules.mute is not None:
        windows.append(rules.mute.after_false_alarm_s)
    return max(windows) + 60.0


def _reach_m(rules: TriageRules) -> float:
    """How far away rows, alarms and venues may still matter to a decision."""
    radii = [300.0, *(c.radius_m for c in rules.corroboration)]
    radii += [r.near_venue.radius_m for r in rules.risk if r.near_venue is not None]
    return max(radii) + 50.0


@dataclass
class Triaged:
    """What triage did with one alarm at intake."""

    outcome: tri.TriageOutcome
    rows: dict[str, InboxRow] = field(default_factory=dict)  # every row it may touch, by id
    changed: list[InboxRow] = field(default_factory=list)  # rows written (publish after commit)


async def load_context(
    conn: AsyncConnection[Any], alarm: Alarm, at: datetime, rules: TriageRules
) -> tuple[list[InboxRow], TriageContext]:
    """The open rows of the alarm's own key (to fold into) and what is near and recent
    in its scope: inbox rows, alarms that went to incidents, venues, planned events."""
    scope = Scope.of(alarm_exercise_id(alarm))
    t = min(alarm.ts, at)
    since = t - timedelta(seconds=_horizon_s(rules))
    own = await _select(
        conn,
        sql.SQL("source = %s AND category = %s AND {} AND state = 'open'").format(scope.where()),
        (alarm.source, alarm.category, *scope.params),
        "ORDER BY last_seen FOR UPDATE",
    )
    nearby: list[InboxRow] = []
    recent: list[Alarm] = []
    venues: list[tri.VenueRef] = []
    box = (
        _box(alarm.lat, alarm.lon, _reach_m(rules))
        if alarm.lat is not None and alarm.lon is not None
        else None
    )
    nearby = await _select(
        conn,
        sql.SQL(
            "{} AND (last_seen >= %(since)s OR acted_at >= %(since)s)"
            " AND ((source = %(source)s AND category = %(category)s)"
            + (" OR (lat BETWEEN %(s)s AND %(n)s AND lon BETWEEN %(w)s AND %(e)s)" if box else "")
            + ")"
        ).format(scope.where(name="scope")),
        {
            **scope.named("scope"),
            "since": since,
            "source": alarm.source,
            "category": alarm.category,
            **(dict(zip(("s", "n", "w", "e"), box, strict=True)) if box else {}),
        },
        "ORDER BY last_seen DESC LIMIT 500",
    )
    if box is not None:
        s, n, w, e = box
        cur = await conn.execute(
            sql.SQL(
                "SELECT payload FROM alarm_inbox WHERE {}"
                " AND incident_id IS NOT NULL AND received_at >= %s AND alarm_id <> %s"
                " AND (payload->>'lat')::float8 BETWEEN %s AND %s"
                " AND (payload->>'lon')::float8 BETWEEN %s AND %s"
                " ORDER BY received_at DESC LIMIT 500"
            ).format(scope.where()),
            (*scope.params, since, alarm.alarm_id, s, n, w, e),
        )
        for (payload,) in await cur.fetchall():
            try:
                recent.append(Alarm.from_builtins(payload))
            except ContractError:
                continue
        cur = await conn.execute(
            "SELECT id, kind, lat, lon, name FROM venue WHERE lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s"
            " ORDER BY id LIMIT 500",
            (s, n, w, e),
        )
        venues = [tri.VenueRef(i, k, la, lo, nm) for i, k, la, lo, nm in await cur.fetchall()]
        # Major risk sources (风险源, docs/risk-and-shelters.md) are venues to the risk rules.
        cur = await conn.execute(
            "SELECT id, lat, lon, name FROM risk_source WHERE level = 'major'"
            " AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s ORDER BY id LIMIT 200",
            (s, n, w, e),
        )
        venues += [tri.VenueRef(i, MAJOR_RISK_VENUE, la, lo, nm) for i, la, lo, nm in await cur.fetchall()]
    events = await planned_events.risk_context(conn, t, scope, rules)
    return own, TriageContext(now=at, recent_alarms=recent, rows=nearby, venues=venues, events=events)


def _supersede(old: InboxRow, by: InboxRow, at: datetime, rules: TriageRules) -> RowChange:
    """An open row whose storm a new row of the same key takes over (the alarm lay
    outside its fold window, or past its longest span): to the review list, by the fold
    rule — one open row per key (the partial unique index), and never dropped silently."""
    after = replace(
        old,
        state=InboxState.EXPIRED,
        acted_by=tri.SYSTEM_ACTOR.user_id,
        acted_role=Role.SYSTEM,
        acted_at=at,
        rule_id=rules.fold.id,
    )
    return RowChange(old, after, "expire", tri.SYSTEM_ACTOR.user_id, Role.SYSTEM, at)


async def triage_alarm(conn: AsyncConnection[Any], alarm: Alarm, at: datetime, rules: TriageRules) -> Triaged:
    """Decide, and for an alarm that stays in the inbox fold it into its row (written
    here). A promoted alarm is left to the caller (correlate, then :func:`link_story`).
    Call under the correlation lock, in the intake's transaction."""
    own, context = await load_context(conn, alarm, at, rules)
    rows_after, outcome = tri.triage(own, alarm, context, rules)
    result = Triaged(outcome, {r.row_id: r for r in (*context.rows, *own)})
    if isinstance(outcome, tri.ToIncident):
        return result
    decision = outcome.fold
    if isinstance(decision, tri.AlreadyFolded):
        return result
    row = next(r for r in rows_after if r.row_id == decision.row_id)
    if decision.opened:
        for old in own:
            if old.is_open and old.row_id != row.row_id:
                change = _supersede(old, row, at, rules)
                await _save(conn, change.after, rules.version)
                await _record(conn, change, tri.SYSTEM_ACTOR.user_id, {"superseded_by": row.row_id})
                result.changed.append(change.after)
    await _save(conn, row, rules.version)
    await conn.execute(
        "UPDATE alarm_inbox SET triage_row_id = %s WHERE alarm_id = %s", (row.row_id, alarm.alarm_id)
    )
    if decision.opened:
        detail: dict[str, Any] = {
            "alarm_id": alarm.alarm_id,
            "key": {"source": row.key.source, "category": row.key.category, "exercise_id": row.exercise_id},
            "severity": str(row.max_severity),
            "rules_version": rules.version,
        }
        if outcome.muted is not None:
            detail["muted"] = {"code": outcome.muted.code, "params": dict(outcome.muted.params)}
        await audit.record(
            conn,
            tri.SYSTEM_ACTOR.user_id,
            "inbox.open",
            object_type="inbox_row",
            object_id=row.row_id,
            detail=detail,
        )
    result.changed.append(row)
    return result


def promotion_text(promotion: tri.Promotion, rules: TriageRules, lang: i18n.Lang) -> str:
    """Why a rule promoted an alarm, in ``lang``: the rule's own text and its name."""
    return i18n.text(
        lang,
        "triage.promoted_rule",
        reason=rules.render(promotion.reason, lang),
        rule=promotion.rule_id,
        version=promotion.rules_version,
    )


def promoted_source(alarm: Alarm, promotion: tri.Promotion, rules: TriageRules) -> SourceRef:
    """The alarm as an incident's source, naming the rule that promoted it and why."""
    return SourceRef.from_alarm(alarm).model_copy(
        update={
            "triage_rule": promotion.rule_id,
            "triage_reason": promotion_text(promotion, rules, "zh_CN"),
            "triage_reason_en": promotion_text(promotion, rules, "en"),
        }
    )


async def link_story(
    conn: AsyncConnection[Any],
    triaged: Triaged,
    incident: Incident,
    at: datetime,
    rules: TriageRules,
) -> list[InboxRow]:
    """Link the open rows of a promoted alarm's story to its incident (as the system,
    on the promotion rule's behalf)."""
    outcome = triaged.outcome
    assert isinstance(outcome, tri.ToIncident)
    view = IncidentView.of(incident)
    linked: list[InboxRow] = []
    for row_id in outcome.link_row_ids:
        row = triaged.rows.get(row_id)
        if row is None:
            continue
        try:
            change = tri.link(row, view, actor=tri.SYSTEM_ACTOR, at=at, rule_id=outcome.promotion.rule_id)
        except (Forbidden, IllegalTransition, InvalidCommand) as exc:
            log.info("inbox row %s not linked to %s: %s", row_id, incident.incident_id, exc.reason)
            continue
        await _save(conn, change.after, rules.version)
        await _record(conn, change, tri.SYSTEM_ACTOR.user_id)
        linked.append(change.after)
    return linked


# --- operators' actions ---------------------------------------------------------------------------


class RowNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ActResult:
    results: tuple[tri.RowResult, ...]
    incident: Incident | None = None  # the incident promoted into, or linked to


async def _last_alarm(conn: AsyncConnection[Any], row: InboxRow) -> Alarm:
    cur = await conn.execute("SELECT payload FROM alarm_inbox WHERE alarm_id = %s", (row.last_alarm_id,))
    found = await cur.fetchone()
    if found is None:
        raise IllegalTransition(f"the latest alarm of inbox row {row.row_id} is no longer stored")
    return Alarm.from_builtins(found[0])


async def _new_incident_id(conn: AsyncConnection[Any], at: datetime) -> str:
    cur = await conn.execute("SELECT nextval('incident_number_seq')")
    found = await cur.fetchone()
    assert found is not None
    return f"INC-{at:%Y%m%d}-{int(found[0]):06d}"


def _manual_source(alarm: Alarm, row: InboxRow, who: Principal) -> SourceRef:
    return SourceRef.from_alarm(alarm).model_copy(
        update={
            "triage_rule": None,
            "triage_reason": i18n.text(
                "zh_CN", "triage.promoted_by_hand", row_id=row.row_id, user=who.user_id
            ),
            "triage_reason_en": i18n.text(
                "en", "triage.promoted_by_hand", row_id=row.row_id, user=who.user_id
            ),
        }
    )


async def _promote_into(
    conn: AsyncConnection[Any],
    who: Principal,
    changes: Sequence[RowChange],
    incident_id: str,
    at: datetime,
    correlation: CorrelationRules,
    note: str | None,
) -> Incident:
    """Open the incident from the first promoted row's latest alarm; the other rows'
    latest alarms become its sources too."""
    first = changes[0].before
    alarm = await _last_alarm(conn, first)
    decision = correlate(alarm, [], correlation, at, place=places.alarm_place(alarm.lat, alarm.lon))
    assert isinstance(decision, OpenIncident)
    opened: dict[str, Param] = {"row_id": first.row_id, "count": first.count}
    why = Reason("inbox.opened_note", {**opened, "note": note}) if note else Reason("inbox.opened", opened)
    events = decide_open(
        incident_id,
        incident_type=decision.incident_type,
        level=decision.level_suggestion,
        title=decision.title_zh,
        actor=actor_of(who),
        at=at,
        source=_manual_source(alarm, first, who),
        exercise_id=first.exercise_id,
        reason=Said.of(why),
    )
    incident = await store.append(conn, None, events, audit_action="incident.open")
    assert incident is not None
    linked = [alarm.alarm_id]
    for change in changes[1:]:
        other = await _last_alarm(conn, change.before)
        events = decide_link_source(
            incident,
            _manual_source(other, change.before, who),
            actor=actor_of(who),
            at=at,
            reason=Said.of(
                Reason("inbox.joined", {"row_id": change.before.row_id, "count": change.before.count})
            ),
        )
        new = await store.append(conn, incident, events, audit_action="incident.link_alarm")
        assert new is not None
        incident = new
        linked.append(other.alarm_id)
    await conn.execute(
        "UPDATE alarm_inbox SET incident_id = %s WHERE alarm_id = ANY(%s)", (incident.incident_id, linked)
    )
    return incident


async def act(
    state: CommandState,
    who: Principal,
    action: Action,
    row_ids: Sequence[str],
    *,
    incident_id: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    correlation: CorrelationRules,
    single: bool = False,
) -> ActResult:
    """Promote, link or dismiss rows, in one transaction, each change audited. With
    ``single``, a refusal raises the domain's error (the route maps it to 403/409/422)
    and an unknown row raises :class:`RowNotFound`; in bulk each row gets its result."""
    rules = state.triage_rules
    actor = actor_of(who)
    at = now()
    incident: Incident | None = None
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (CORRELATION_LOCK,))
        rows = await _select(conn, "row_id = ANY(%s)", (list(row_ids),), "FOR UPDATE")
        if single and not rows:
            raise RowNotFound(f"no inbox row {row_ids[0]}")
        if action == "dismiss":
            why = reason or ""
            if single:
                change = tri.dismiss(rows[0], reason=why, actor=actor, at=at, note=note)
                result = tri.BulkResult((tri.RowResult(rows[0].row_id, change=change),))
            else:
                result = tri.bulk_dismiss(rows, row_ids, reason=why, actor=actor, at=at, note=note)
        elif action == "link":
            assert incident_id is not None
            incident, _ = await store.load(conn, incident_id, for_update=True)
            view = IncidentView.of(incident)
            if single:
                change = tri.link(rows[0], view, actor=actor, at=at, note=note)
                result = tri.BulkResult((tri.RowResult(rows[0].row_id, change=change),))
            else:
                result = tri.bulk_link(rows, row_ids, view, actor=actor, at=at, note=note)
        else:
            new_id = await _new_incident_id(conn, at)
            if single:
                change = tri.promote(rows[0], incident_id=new_id, actor=actor, at=at, note=note)
                result = tri.BulkResult((tri.RowResult(rows[0].row_id, change=change),))
            else:
                result = tri.bulk_promote(rows, row_ids, incident_id=new_id, actor=actor, at=at, note=note)
            if result.changes:
                incident = await _promote_into(conn, who, result.changes, new_id, at, correlation, note)
        for change in result.changes:
            await _save(conn, change.after, rules.version)
            await _record(conn, change, who)
        for refused in result.refused:
            await audit.record(
                conn,
                who,
                f"inbox.{action}",
                object_type="inbox_row",
                object_id=refused.row_id,
                outcome="denied",
                detail={"reason": refused.refused},
            )
    await publish_rows(state, [c.after for c in result.changes])
    if incident is not None and action == "promote":
        await publish(state.redis, store.change_for(incident))
    return ActResult(result.results, incident)


async def refuse(state: CommandState, who: Principal, action: str, row_id: str, reason: str) -> None:
    """Audit a refused single action (its own transaction: the action's rolled back)."""
    await audit.record_denied(
        state.pool, who, f"inbox.{action}", reason, object_type="inbox_row", object_id=row_id
    )


# --- queries ------------------------------------------------------------------------------------------

ListState = Literal["open", "expired", "promoted", "linked", "dismissed"]


def scope_filter(who: Principal, scope: Scope | None) -> tuple[sql.Composable, dict[str, Any]]:
    """One scope's rows when asked for; else what the role sees, as the policy says: live
    rows for operators and commanders, exercise rows for planners, admin both."""
    if scope is not None:
        return scope.where(name="ex"), scope.named("ex")
    live = policy.allowed(who.role, policy.Action.INBOX_READ, drill=False)
    drill = policy.allowed(who.role, policy.Action.INBOX_READ, drill=True)
    if drill:
        return (sql.SQL("TRUE") if live else sql.SQL("exercise_id IS NOT NULL")), {}
    return LIVE.where(), {}


async def list_rows(
    state: CommandState,
    who: Principal,
    *,
    row_state: ListState = "open",
    scope: Scope | None = None,
    incident_id: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Open rows gravest first, then the latest alarm first (``inbox_order``); other
    states (the review list: ``expired``) the latest action first (``review_list``)."""
    rules = state.triage_rules
    in_scope, params = scope_filter(who, scope)
    params |= {"state": row_state, "incident": incident_id, "limit": limit}
    order = (
        "ORDER BY severity_rank DESC, last_seen DESC, row_id"
        if row_state == "open"
        else "ORDER BY acted_at DESC, row_id DESC"
    )
    async with state.pool.connection() as conn:
        rows = await _select(
            conn,
            sql.SQL(
                "({}) AND state = %(state)s AND (%(incident)s::text IS NULL OR incident_id = %(incident)s)"
            ).format(in_scope),
            params,
            f"{order} LIMIT %(limit)s",
        )
    return [row_body(r, rules) for r in rows]


async def snapshot(state: CommandState, who: Principal) -> list[dict[str, Any]]:
    """Open inbox rows for a (re)connecting live client (none for field users)."""
    if not policy.allowed_anywhere(who.role, policy.Action.INBOX_READ):
        return []
    return await list_rows(state, who, row_state="open", limit=500)


# --- expiry ------------------------------------------------------------------------------------------


async def expire_due(state: CommandState, at: datetime | None = None) -> list[InboxRow]:
    """Move open rows nobody acted on into the review list (the domain's ``expire``),
    each audited as ``inbox.expire`` by ``system:triage``; published after commit."""
    rules = state.triage_rules
    if not rules.expiry:
        return []
    when = at or now()
    quiet = timedelta(seconds=min(e.after_s for e in rules.expiry))
    async with state.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (CORRELATION_LOCK,))
        rows = await _select(
            conn,
            "state = 'open' AND last_seen <= %s",
            (when - quiet,),
            "ORDER BY last_seen LIMIT 1000 FOR UPDATE",
        )
        _, changes = tri.expire(rows, when, rules)
        for change in changes:
            await _save(conn, change.after, rules.version)
            await _record(conn, change, tri.SYSTEM_ACTOR.user_id)
    expired = [c.after for c in changes]
    await publish_rows(state, expired)
    return expired


class InboxExpiry(Periodic):
    """The periodic expiry of quiet inbox rows (a worker of the command service)."""

    name = "inbox-expiry"

    async def round(self, state: CommandState) -> int:
        return len(await expire_due(state))


__all__ = [
    "ActResult",
    "InboxExpiry",
    "NotFound",
    "RowNotFound",
    "Triaged",
    "act",
    "expire_due",
    "link_story",
    "list_rows",
    "load_rules",
    "promoted_source",
    "row_body",
    "snapshot",
    "triage_alarm",
]
