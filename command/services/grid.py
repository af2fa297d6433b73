"""The grid closed loop (网格化管理) at the edge: reports in, the loop's steps, queries.

A case is the fold of its steps (``command.domain.grid``): ``grid_case_step`` is the
append-only record, ``grid_case`` the projection lists, maps and KPIs read. Every write
is one PostgreSQL transaction: lock the projection row, check the caller may act and
the version they decided on, let the domain ``advance`` the case, append the step (its
primary key (case_id, seq) turns a lost race into 409), rewrite the projection and
write the audit record. The change goes to live clients after commit.

Who may do what (docs/command-api-grid.md):

* operators, commanders and admin run the loop on live cases; planners on exercise
  cases only (admin on both);
* field users (grid workers, teams) report cases and handle the live cases dispatched
  to them — to their user id or their team id — and nothing else;
* the command centre may record a handling on an assignee's behalf (代录, e.g. a
  department that phoned in); the recorder is then a handler and may not verify.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from command import audit
from command.domain import policy
from command.domain.correlation import alarm_exercise_id
from command.domain.grid import (
    DEFAULT_GRID_CONFIG,
    FINAL,
    GridAction,
    GridCase,
    GridConfig,
    GridKpis,
    GridStage,
    GridStep,
    GridTransitionError,
    Overdue,
    advance,
    allowed_actions,
    discover,
    grid_kpis,
    overdue,
    replay,
)
from command.domain.policy import Action
from command.security import Principal
from command.services.live import Change, publish
from command.state import CommandState
from wuwang import i18n
from wuwang.contract import Alarm
from wuwang.lattice import grid_cell_id
from wuwang.scope import LIVE, Scope

log = logging.getLogger(__name__)

#: The SLA table and filing limit in force (command.domain.grid's defaults).
CONFIG: GridConfig = DEFAULT_GRID_CONFIG

#: Months and days are counted in China Standard Time (no DST since 1991: a fixed
#: offset is exact and needs no tz database in the image).
CONSOLE_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

#: Audit actor of cases opened from ingest's alarm stream.
INTAKE_ACTOR = "system:grid_intake"

#: Advisory-lock namespace ("GR") held by the intake's transaction until it ends, so the
#: post-commit publisher knows when the case is committed (or was rolled back).
_INTAKE_LOCK_NS = 0x4752

#: A time no case will reach: probing the domain's ``overdue`` with it gives the moment
#: a case becomes overdue if nothing happens (its ``due_at``).
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)



class NotFound(LookupError):
    pass


class Refused(Exception):
    """The caller may not do this to this case; ``reason`` says why (→ 403, audited)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StaleVersion(Exception):
    """The caller decided on an older version (→ 409: reload and decide again)."""

    def __init__(self, case_id: str, expected: int, current: int) -> None:
        self.reason = f"case {case_id} is at version {current}, not {expected}: reload and decide again"
        super().__init__(self.reason)


def now() -> datetime:
    return datetime.now(UTC)


def is_grid_category(category: str) -> bool:
    """A category the grid loop takes (it has an SLA in the domain's table)."""
    return category in CONFIG.sla


def takes(alarm: Alarm) -> bool:
    """A report alarm in a grid category: a grid case, not an incident."""
    return alarm.kind == "report" and is_grid_category(alarm.category)


# --- the stored case ---------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What discovery fixed: never changes with later steps."""

    id: str
    category: str
    description: str
    lat: float | None
    lon: float | None
    grid_cell_id: str | None
    district_adcode: int | None
    district_name: str | None
    grid_worker: str | None
    reporter: str
    source: str
    source_alarm_id: str | None
    exercise_id: str | None
    sla: timedelta
    photo_url: str | None


@dataclass(frozen=True)
class Stored:
    facts: Facts
    case: GridCase
    roles: tuple[str | None, ...]  # the console role behind each step (None: a device report)

    @property
    def version(self) -> int:
        return len(self.case.steps)


def _last_at(case: GridCase, action: GridAction) -> datetime | None:
    for s in reversed(case.steps):
        if s.action is action:
            return s.at
    return None


def due_at(case: GridCase) -> datetime | None:
    """When the case becomes overdue if nothing happens (None: it cannot be now),
    by the domain's own rule."""
    late = overdue([case], _FAR_FUTURE, CONFIG)
    return late[0].deadline if late else None


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def category_zh(category: str) -> str:
    """A category's Chinese name (the API's ``category_zh``), its code when it has none."""
    return i18n.name_of("zh_CN", "grid.category", category)


def case_body(s: Stored) -> dict[str, Any]:
    """The case as the API and the console see it (JSON-able, time-independent)."""
    c, f = s.case, s.facts
    ttc = c.time_to_close
    return {
        "id": c.id,
        "category": c.category,
        "category_zh": category_zh(c.category),
        "stage": str(c.stage),
        "stage_zh": i18n.text("zh_CN", f"grid.stage.{c.stage}"),
        "is_open": c.stage not in FINAL,
        "description": c.description,
        "lat": c.lat,
        "lon": c.lon,
        "grid_cell_id": c.grid_cell_id,
        "district_adcode": f.district_adcode,
        "district_name": f.district_name,
        "grid_worker": f.grid_worker,
        "reporter": c.reporter,
        "source": f.source,
        "source_alarm_id": f.source_alarm_id,
        "photo_url": f.photo_url,
        "exercise_id": f.exercise_id,
        "assignee": c.assignee,
        "handled_by": sorted(c.handlers),
        "reworks": c.reworks,
        "sla_s": int(c.sla.total_seconds()),
        "discovered_at": _iso(c.discovered_at),
        "filed_at": _iso(c.filed_at),
        "dispatched_at": _iso(_last_at(c, GridAction.DISPATCH)),
        "handled_at": _iso(c.handled_at),
        "verified_at": _iso(_last_at(c, GridAction.VERIFY)),
        "closed_at": _iso(c.closed_at),
        "dismissed_at": _iso(_last_at(c, GridAction.DISMISS)),
        "deadline": _iso(c.deadline),
        "due_at": _iso(due_at(c)),
        "on_time": c.on_time,
        "time_to_close_s": ttc.total_seconds() if ttc is not None else None,
        "allowed_actions": [str(a) for a in allowed_actions(c)],
        "version": s.version,
    }


def with_overdue(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Add the time-dependent ``overdue`` flag (as of ``at``) to a stored body."""
    due = body.get("due_at")
    return {**body, "overdue": due is not None and at > datetime.fromisoformat(due)}


def step_body(s: Stored) -> list[dict[str, Any]]:
    return [
        {
            "seq": i,
            "action": str(step.action),
            "action_zh": i18n.text("zh_CN", f"grid.action.{step.action.value}"),
            "by": step.by,
            "by_role": role,
            "at": step.at.isoformat(),
            "note": step.note,
            "assignee": step.assignee,
        }
        for i, (step, role) in enumerate(zip(s.case.steps, s.roles, strict=True), start=1)
    ]


def change_for(s: Stored) -> Change:
    """Field users see the changes of cases dispatched to their team (``team_id``)."""
    return Change(
        "grid_event",
        s.case.id,
        with_overdue(case_body(s), now()),
        version=s.version,
        exercise_id=s.facts.exercise_id,
        team_id=s.case.assignee,
    )


# --- store --------------------------------------------------------------------------

_CASE_COLUMNS = (
    "id, category, description, lat, lon, grid_cell_id, district_adcode, reporter, source,"
    " source_alarm_id, exercise_id, sla_s, body"
)


def _facts_of(row: dict[str, Any]) -> Facts:
    body = row["body"]
    return Facts(
        id=row["id"],
        category=row["category"],
        description=row["description"],
        lat=row["lat"],
        lon=row["lon"],
        grid_cell_id=row["grid_cell_id"],
        district_adcode=row["district_adcode"],
        district_name=body.get("district_name"),
        grid_worker=body.get("grid_worker"),
        reporter=row["reporter"],
        source=row["source"],
        source_alarm_id=row["source_alarm_id"],
        exercise_id=row["exercise_id"],
        sla=timedelta(seconds=row["sla_s"]),
        photo_url=body.get("photo_url"),
    )


def _rebuild(facts: Facts, steps: Sequence[dict[str, Any]]) -> Stored:
    """Replay the record (the domain re-checks every step)."""
    first = steps[0]
    opened = GridCase(
        facts.id,
        facts.category,
        facts.sla,
        GridStage.DISCOVERED,
        (GridStep(GridAction.DISCOVER, first["by"], first["at"], first["note"]),),
        facts.description,
        facts.lat,
        facts.lon,
        facts.grid_cell_id,
    )
    case = replay(
        opened,
        [GridStep(GridAction(s["action"]), s["by"], s["at"], s["note"], s["assignee"]) for s in steps[1:]],
    )
    return Stored(facts, case, tuple(s["by_role"] for s in steps))


async def load(conn: AsyncConnection[Any], case_id: str, *, for_update: bool = False) -> Stored:
    """The case, replayed from its steps. ``for_update`` locks the projection row, so
    two commands on one case queue up instead of racing to the same seq."""
    lock = " FOR UPDATE" if for_update else ""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_CASE_COLUMNS} FROM grid_case WHERE id = %s{lock}", (case_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no grid case {case_id}")
        await cur.execute(
            "SELECT seq, action, by, by_role, at, note, assignee FROM grid_case_step"
            " WHERE case_id = %s ORDER BY seq",
            (case_id,),
        )
        steps = await cur.fetchall()
    return _rebuild(_facts_of(row), steps)


async def load_where(
    conn: AsyncConnection[Any], where: str | sql.Composable, params: dict[str, Any]
) -> list[Stored]:
    """Every case matching ``where`` (SQL over grid_case), replayed; two queries."""
    async with conn.cursor(row_factory=dict_row) as cur:
        if isinstance(where, str):
            where = sql.SQL(where)
        await cur.execute(
            sql.SQL("SELECT {} FROM grid_case WHERE {}").format(sql.SQL(_CASE_COLUMNS), where), params
        )
        rows = await cur.fetchall()
        if not rows:
            return []
        await cur.execute(
            "SELECT case_id, seq, action, by, by_role, at, note, assignee FROM grid_case_step"
            " WHERE case_id = ANY(%s) ORDER BY case_id, seq",
            ([r["id"] for r in rows],),
        )
        steps: dict[str, list[dict[str, Any]]] = {}
        for s in await cur.fetchall():
            steps.setdefault(s["case_id"], []).append(s)
    return [_rebuild(_facts_of(r), steps[r["id"]]) for r in rows]


async def new_case_id(conn: AsyncConnection[Any], at: datetime) -> str:
    cur = await conn.execute("SELECT nextval('grid_case_number_seq')")
    row = await cur.fetchone()
    assert row is not None
    return f"GC-{at:%Y%m%d}-{int(row[0]):06d}"


async def _cell_facts(
    conn: AsyncConnection[Any], cell: str | None
) -> tuple[int | None, str | None, str | None]:
    """(district adcode, district name, grid worker) of a registered grid cell."""
    if cell is None:
        return None, None, None
    cur = await conn.execute(
        "SELECT g.district_adcode, d.name, g.grid_worker FROM grid_cell g"
        " LEFT JOIN district d ON d.adcode = g.district_adcode WHERE g.id = %s",
        (cell,),
    )
    row = await cur.fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


def _projection(s: Stored) -> dict[str, Any]:
    c = s.case
    return {
        "id": c.id,
        "stage": str(c.stage),
        "assignee": c.assignee,
        "handled_by": sorted(c.handlers),
        "reworks": c.reworks,
        "filed_at": c.filed_at,
        "dispatched_at": _last_at(c, GridAction.DISPATCH),
        "handled_at": c.handled_at,
        "verified_at": _last_at(c, GridAction.VERIFY),
        "closed_at": c.closed_at,
        "dismissed_at": _last_at(c, GridAction.DISMISS),
        "deadline": c.deadline,
        "due_at": due_at(c),
        "version": s.version,
        "body": Jsonb(case_body(s)),
    }


async def _insert_steps(conn: AsyncConnection[Any], s: Stored, first_seq: int) -> None:
    rows = [
        (
            s.case.id,
            seq,
            str(step.action),
            step.by,
            s.roles[seq - 1],
            step.at,
            step.note,
            step.assignee,
            s.facts.exercise_id,
        )
        for seq, step in enumerate(s.case.steps[first_seq - 1 :], start=first_seq)
    ]
    try:
        # A savepoint: a lost race leaves the outer transaction usable.
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO grid_case_step (case_id, seq, action, by, by_role, at, note, assignee,"
                " exercise_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    except psycopg.errors.UniqueViolation:
        raise StaleVersion(s.case.id, first_seq - 1, first_seq) from None


async def store_case(
    conn: AsyncConnection[Any],
    case: GridCase,
    *,
    roles: Sequence[str | None],
    source: str,
    actor: Principal | str,
    source_alarm_id: str | None = None,
    exercise_id: str | None = None,
    photo_url: str | None = None,
) -> Stored:
    """Store a case the domain built (discovered, and possibly later steps, each with
    the role behind it), with its projection and one audit record, in the caller's
    transaction. A second case for one ``source_alarm_id`` is refused by the database."""
    adcode, district, worker = await _cell_facts(conn, case.grid_cell_id)
    facts = Facts(
        id=case.id,
        category=case.category,
        description=case.description,
        lat=case.lat,
        lon=case.lon,
        grid_cell_id=case.grid_cell_id,
        district_adcode=adcode,
        district_name=district,
        grid_worker=worker,
        reporter=case.reporter,
        source=source,
        source_alarm_id=source_alarm_id,
        exercise_id=exercise_id,
        sla=case.sla,
        photo_url=photo_url,
    )
    stored = Stored(facts, case, tuple(roles))
    if len(stored.roles) != len(case.steps):
        raise ValueError("one role per step")
    p = _projection(stored)
    await conn.execute(
        """
        INSERT INTO grid_case (id, category, description, lat, lon, grid_cell_id, district_adcode, reporter,
            source, source_alarm_id, exercise_id, sla_s, stage, assignee, handled_by, reworks, discovered_at,
            filed_at, dispatched_at, handled_at, verified_at, closed_at, dismissed_at, deadline, due_at,
            version, body)
        VALUES (%(id)s, %(category)s, %(description)s, %(lat)s, %(lon)s, %(cell)s, %(adcode)s, %(reporter)s,
            %(source)s, %(alarm)s, %(ex)s, %(sla)s, %(stage)s, %(assignee)s, %(handled_by)s, %(reworks)s,
            %(discovered)s, %(filed_at)s, %(dispatched_at)s, %(handled_at)s, %(verified_at)s, %(closed_at)s,
            %(dismissed_at)s, %(deadline)s, %(due_at)s, %(version)s, %(body)s)
        """,
        {
            **p,
            "category": case.category,
            "description": case.description,
            "lat": case.lat,
            "lon": case.lon,
            "cell": case.grid_cell_id,
            "adcode": adcode,
            "reporter": case.reporter,
            "source": source,
            "alarm": source_alarm_id,
            "ex": exercise_id,
            "sla": int(case.sla.total_seconds()),
            "discovered": case.discovered_at,
        },
    )
    await _insert_steps(conn, stored, 1)
    await audit.record(
        conn,
        actor,
        "grid.discover",
        object_type="grid_case",
        object_id=case.id,
        detail={
            "category": case.category,
            "reporter": case.reporter,
            "source": source,
            "alarm_id": source_alarm_id,
            "exercise_id": exercise_id,
            "steps": len(case.steps),
        },
    )
    return stored


async def append_step(
    conn: AsyncConnection[Any],
    old: Stored,
    case: GridCase,
    *,
    role: str | None,
    actor: Principal | str,
    detail: dict[str, Any] | None = None,
) -> Stored:
    """Store the step(s) ``case`` has beyond ``old``, rewrite the projection, audit."""
    new = Stored(old.facts, case, old.roles + (role,) * (len(case.steps) - old.version))
    await _insert_steps(conn, new, old.version + 1)
    await conn.execute(
        "UPDATE grid_case SET stage = %(stage)s, assignee = %(assignee)s, handled_by = %(handled_by)s,"
        " reworks = %(reworks)s, filed_at = %(filed_at)s, dispatched_at = %(dispatched_at)s,"
        " handled_at = %(handled_at)s, verified_at = %(verified_at)s, closed_at = %(closed_at)s,"
        " dismissed_at = %(dismissed_at)s, deadline = %(deadline)s, due_at = %(due_at)s,"
        " version = %(version)s, body = %(body)s, updated_at = now() WHERE id = %(id)s",
        _projection(new),
    )
    last = case.steps[-1]
    await audit.record(
        conn,
        actor,
        f"grid.{last.action}",
        object_type="grid_case",
        object_id=case.id,
        detail={
            "stage": str(case.stage),
            "version": new.version,
            "note": last.note or None,
            "assignee": last.assignee,
            **(detail or {}),
        },
    )
    return new


# --- alarms in ------------------------------------------------------------------------

_pending_publishes: set[asyncio.Task[None]] = set()


async def discover_from_alarm(
    state: CommandState, conn: AsyncConnection[Any], alarm: Alarm, *, at: datetime
) -> None:
    """A grid report from ingest's stream becomes a case (发现). Called by the alarm
    intake inside its transaction, right after the alarm_inbox insert that makes the
    intake idempotent; ``grid_case.source_alarm_id`` is unique besides. The live change
    is published once that transaction has committed."""
    cur = await conn.execute("SELECT 1 FROM grid_case WHERE source_alarm_id = %s", (alarm.alarm_id,))
    if await cur.fetchone() is not None:
        return
    case_id = await new_case_id(conn, at)
    details = alarm.details
    reporter = str(details.get("reporter") or alarm.source)
    cell = alarm.grid_cell_id
    if cell is None and alarm.lat is not None and alarm.lon is not None:
        cell = _cell_of(state, alarm.lat, alarm.lon)
    description = str(details.get("description") or alarm.summary)
    photo = details.get("photo_url")
    case = discover(
        case_id,
        alarm.category,
        reporter,
        min(alarm.ts, at),  # a device clock ahead must not reorder steps
        description=description,
        lat=alarm.lat,
        lon=alarm.lon,
        grid_cell_id=cell,
        config=CONFIG,
    )
    stored = await store_case(
        conn,
        case,
        roles=(None,),
        source=alarm.source,
        actor=INTAKE_ACTOR,
        source_alarm_id=alarm.alarm_id,
        exercise_id=alarm_exercise_id(alarm),
        photo_url=photo if isinstance(photo, str) else None,
    )
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_INTAKE_LOCK_NS, case_id))
    changes = [
        Change("alarm", alarm.alarm_id, alarm.to_json(), exercise_id=stored.facts.exercise_id),
        change_for(stored),
    ]
    task = asyncio.create_task(
        _publish_when_committed(state, case_id, changes), name=f"grid-publish-{case_id}"
    )
    _pending_publishes.add(task)
    task.add_done_callback(_pending_publishes.discard)


async def _publish_when_committed(state: CommandState, case_id: str, changes: list[Change]) -> None:
    """Wait for the intake's transaction to end (its advisory lock), then publish if the
    case is there — i.e. only after a commit, never for a rolled-back one."""
    try:
        async with state.pool.connection() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '30s'")
            await conn.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", (_INTAKE_LOCK_NS, case_id)
            )
            cur = await conn.execute("SELECT 1 FROM grid_case WHERE id = %s", (case_id,))
            committed = await cur.fetchone() is not None
    except Exception:
        log.warning("could not learn whether grid case %s committed; not published", case_id, exc_info=True)
        return
    if committed:
        for change in changes:
            await publish(state.redis, change)


def _cell_of(state: CommandState, lat: float, lon: float) -> str:
    return grid_cell_id(lat, lon, state.settings.shared.grid_cell_deg)


# --- who may -----------------------------------------------------------------------------


def _scope_allows(who: Principal, scope: Scope) -> str | None:
    """None when ``who`` may work on a case of this scope, else the reason not."""
    if policy.allowed(who.role, Action.GRID_READ, drill=scope.is_drill):
        return None
    if scope.is_drill:
        return f"{who.role} may not touch exercise {scope.exercise_id} (planners and admin only)"
    return "planners work on exercise cases only"


def _is_assigned(who: Principal, case: GridCase) -> bool:
    return case.assignee is not None and case.assignee in {who.user_id, who.team_id}


def can_see(who: Principal, s: Stored) -> bool:
    """Field users see live cases they reported or that are dispatched to them (user
    id or team id); planners exercise cases; others live cases (admin all)."""
    if _scope_allows(who, Scope.of(s.facts.exercise_id)) is not None:
        return False
    if policy.bound_to_own_team(who.role):
        return _is_assigned(who, s.case) or s.case.reporter == who.user_id
    return True


def _may_act(who: Principal, s: Stored, action: GridAction) -> str | None:
    if (reason := _scope_allows(who, Scope.of(s.facts.exercise_id))) is not None:
        return reason
    if not policy.allowed(who.role, Action(f"grid.{action}"), drill=s.facts.exercise_id is not None):
        return f"{who.role} may not {action} a grid case (the command centre does)"
    if policy.bound_to_own_team(who.role) and not _is_assigned(who, s.case):
        return f"case {s.case.id} is dispatched to {s.case.assignee or 'nobody'}, not to {who.user_id}"
    return None


def _list_scope(who: Principal, scope: Scope | None) -> tuple[sql.Composable, dict[str, Any]]:
    """SQL over grid_case for what ``who`` may list (or refuse): one scope's cases when
    asked for, else what the role sees, as the policy says."""
    if scope is not None:
        if not policy.allowed(who.role, Action.GRID_READ, drill=True):
            raise Refused(f"{who.role} may not see exercise {scope.exercise_id} (planners and admin only)")
        return scope.where(name="ex"), scope.named("ex")
    if not policy.allowed(who.role, Action.GRID_READ, drill=False):
        return sql.SQL("exercise_id IS NOT NULL"), {}
    if policy.bound_to_own_team(who.role):
        return (
            sql.SQL("{} AND (assignee = ANY(%(me)s) OR reporter = %(user)s)").format(LIVE.where()),
            {"me": [x for x in (who.user_id, who.team_id) if x], "user": who.user_id},
        )
    return LIVE.where(), {}


# --- use-cases -----------------------------------------------------------------------------


async def create_case(
    state: CommandState,
    who: Principal,
    *,
    category: str,
    description: str,
    lat: float,
    lon: float,
    grid_cell_id: str | None = None,
    exercise_id: str | None = None,
    report_id: str | None = None,
    photo_url: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """A report made by hand (发现) by an operator or a field user. ``report_id`` (the
    client's own id) makes a retry return the first case; returns (body, created)."""
    if (reason := _scope_allows(who, Scope.of(exercise_id))) is not None:
        raise Refused(reason)
    source = f"console/{who.user_id}"
    key = f"{source}#{report_id}" if report_id else None
    at = now()
    cell = grid_cell_id or _cell_of(state, lat, lon)
    try:
        async with state.pool.connection() as conn, conn.transaction():
            if key is not None and (found := await _by_alarm(conn, key)) is not None:
                return with_overdue(case_body(found), at), False
            case_id = await new_case_id(conn, at)
            case = discover(
                case_id,
                category,
                who.user_id,
                at,
                description=description,
                lat=lat,
                lon=lon,
                grid_cell_id=cell,
                config=CONFIG,
            )
            stored = await store_case(
                conn,
                case,
                roles=(str(who.role),),
                source=source,
                actor=who,
                source_alarm_id=key,
                exercise_id=exercise_id,
                photo_url=photo_url,
            )
    except psycopg.errors.UniqueViolation:  # the same report_id, sent twice at once
        async with state.pool.connection() as conn:
            found = await _by_alarm(conn, key or "")
        if found is None:
            raise
        return with_overdue(case_body(found), at), False
    await publish(state.redis, change_for(stored))
    return with_overdue(case_body(stored), at), True


async def _by_alarm(conn: AsyncConnection[Any], key: str) -> Stored | None:
    found = await load_where(conn, "source_alarm_id = %(key)s", {"key": key})
    return found[0] if found else None


async def act(
    state: CommandState,
    who: Principal,
    case_id: str,
    action: GridAction,
    *,
    expected_version: int,
    note: str = "",
    assignee: str | None = None,
) -> dict[str, Any]:
    """One step of the loop. Refused → :class:`Refused`; stale → :class:`StaleVersion`;
    not allowed by the loop → ``GridTransitionError`` (a refused self-verification is
    audited as denied, since it is a separation-of-duties refusal)."""
    stored: Stored | None = None
    try:
        async with state.pool.connection() as conn, conn.transaction():
            stored = await load(conn, case_id, for_update=True)
            if (reason := _may_act(who, stored, action)) is not None:
                raise Refused(reason)
            if expected_version != stored.version:
                raise StaleVersion(case_id, expected_version, stored.version)
            # Never before the previous step, whatever the clocks of several processes say.
            at = max(now(), stored.case.steps[-1].at)
            case = advance(stored.case, action, who.user_id, at, note=note, assignee=assignee)
            detail: dict[str, Any] = {}
            if action is GridAction.HANDLE and not policy.bound_to_own_team(who.role):
                detail["on_behalf_of"] = stored.case.assignee  # 代录 by the command centre
            new = await append_step(conn, stored, case, role=str(who.role), actor=who, detail=detail)
    except GridTransitionError as exc:
        if (
            stored is not None
            and action in (GridAction.VERIFY, GridAction.REJECT)
            and who.user_id in stored.case.handlers
        ):
            await audit.record_denied(
                state.pool, who, f"grid.{action}", str(exc), object_type="grid_case", object_id=case_id
            )
        raise
    await publish(state.redis, change_for(new))
    return with_overdue(case_body(new), now())


async def case_detail(state: CommandState, who: Principal, case_id: str) -> dict[str, Any]:
    async with state.pool.connection() as conn:
        stored = await load(conn, case_id)
    if not can_see(who, stored):
        raise Refused(f"{who.role} {who.user_id} may not see grid case {case_id}")
    return {"case": with_overdue(case_body(stored), now()), "steps": step_body(stored)}


async def list_cases(
    state: CommandState,
    who: Principal,
    *,
    stage: GridStage | None = None,
    open_only: bool = True,
    is_overdue: bool | None = None,
    grid_cell_id: str | None = None,
    scope: Scope | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The case list: overdue first (most overdue first), then open, newest first."""
    where, params = _list_scope(who, scope)
    clauses: list[sql.Composable] = [sql.SQL("({})").format(where)]
    if stage is not None:
        clauses.append(sql.SQL("stage = %(stage)s"))
        params["stage"] = str(stage)
    elif open_only:
        clauses.append(sql.SQL("stage NOT IN ('closed', 'dismissed')"))
    if is_overdue is True:
        clauses.append(sql.SQL("due_at < %(now)s"))
    elif is_overdue is False:
        clauses.append(sql.SQL("(due_at IS NULL OR due_at >= %(now)s)"))
    if grid_cell_id is not None:
        clauses.append(sql.SQL("grid_cell_id = %(cell)s"))
        params["cell"] = grid_cell_id
    at = now()
    params |= {"now": at, "limit": limit}
    async with state.pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(
            sql.SQL(
                "SELECT body FROM grid_case WHERE {}"
                " ORDER BY (due_at < %(now)s) IS TRUE DESC, due_at ASC NULLS LAST, discovered_at DESC"
                " LIMIT %(limit)s"
            ).format(sql.SQL(" AND ").join(clauses)),
            params,
        )
        rows = await cur.fetchall()
    return [with_overdue(r[0], at) for r in rows]


def _overdue_body(o: Overdue, s: Stored) -> dict[str, Any]:
    return {
        "case_id": o.case_id,
        "category": o.category,
        "category_zh": category_zh(o.category),
        "stage": str(o.stage),
        "stage_zh": i18n.text("zh_CN", f"grid.stage.{o.stage}"),
        "deadline": o.deadline.isoformat(),
        "overdue_by_s": o.overdue_by.total_seconds(),
        "assignee": o.assignee,
        "grid_cell_id": s.case.grid_cell_id,
        "district_adcode": s.facts.district_adcode,
        "lat": s.case.lat,
        "lon": s.case.lon,
        "description": o.describe(),
        "version": s.version,
    }


async def overdue_cases(
    state: CommandState, who: Principal, *, scope: Scope | None = None
) -> list[dict[str, Any]]:
    """The domain's overdue list at now, most overdue first."""
    where, params = _list_scope(who, scope)
    at = now()
    async with state.pool.connection() as conn:
        cases = await load_where(
            conn, sql.SQL("({}) AND due_at < %(now)s").format(where), {**params, "now": at}
        )
    by_id = {s.case.id: s for s in cases}
    return [_overdue_body(o, by_id[o.case_id]) for o in overdue([s.case for s in cases], at, CONFIG)]


async def kpis(
    state: CommandState, who: Principal, *, days: int, scope: Scope | None = None
) -> dict[str, Any]:
    """The domain's KPIs over the cases filed in the last ``days`` days, as of now."""
    where, params = _list_scope(who, scope)
    end = now()
    start = end - timedelta(days=days)
    async with state.pool.connection() as conn:
        cases = await load_where(
            conn,
            sql.SQL(
                "({}) AND ((filed_at >= %(start)s AND filed_at < %(end)s)"
                " OR (stage = 'dismissed' AND discovered_at >= %(start)s AND discovered_at < %(end)s)"
                " OR due_at IS NOT NULL)"
            ).format(where),
            {**params, "start": start, "end": end},
        )
    k = grid_kpis([s.case for s in cases], start, end, end, CONSOLE_TZ, CONFIG)
    by_id = {s.case.id: s for s in cases}
    return kpi_body(k, days, [by_id[o.case_id] for o in k.overdue])


def kpi_body(k: GridKpis, days: int, overdue_cases: list[Stored]) -> dict[str, Any]:
    def hours(seconds: float | None) -> float | None:
        return round(seconds / 3600, 2) if seconds is not None else None

    return {
        "period_start": k.period_start.isoformat(),
        "period_end": k.period_end.isoformat(),
        "days": days,
        "filed": k.filed,
        "closed": k.closed,
        "dismissed": k.dismissed,
        "closure_rate": k.closure_rate,
        "mean_time_to_close_s": k.mean_time_to_close_s,
        "mean_time_to_close_h": hours(k.mean_time_to_close_s),
        "p90_time_to_close_s": k.p90_time_to_close_s,
        "p90_time_to_close_h": hours(k.p90_time_to_close_s),
        "on_time_rate": k.on_time_rate,
        "filed_per_30_days": k.filed * 30 / days,
        "per_month": dict(k.per_month),
        "by_category": {c: {"filed": n.filed, "closed": n.closed} for c, n in k.by_category.items()},
        "overdue_count": len(k.overdue),
        "overdue": [_overdue_body(o, s) for o, s in zip(k.overdue, overdue_cases, strict=True)],
    }


async def snapshot(state: CommandState, who: Principal) -> list[dict[str, Any]]:
    """Open cases for a (re)connecting live client."""
    return await list_cases(state, who, open_only=True, limit=500)
