"""Who may do what: the one role × action table of the command service (pure).

Every check of a role asks this module: the routes (``command.deps.requires``), the
services (grid, reserve, rosters, the live stream's filter) and the domain's deciders.
Two rules sit beside the table, as functions:

- **planners act only on drills** — the table has a live and a drill column; a
  planner's grants are in the drill column (演练 never touches live operations);
- **field teams act only on their own team and order** — :func:`may_act_on_team`; a
  field grant is always bound to the caller's own team (or its own case, its own order).

The route's gate asks :func:`allowed_anywhere` (could this role ever do this?); the
object's scope is checked where the object is known, with :func:`allowed`. The HTTP
status codes stay the routes' business; nothing here does I/O.

The table below is rendered into docs/security.md ("Who may do what") by
:func:`markdown_table`; tests/command/domain/test_domain_policy.py keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from command.domain.vocabulary import Role

#: The roles a person logs in with (``app_user.role``; the CHECK in migration 0003
#: lists exactly these). ``system`` is the service itself and never logs in.
CONSOLE_ROLES: tuple[Role, ...] = (Role.OPERATOR, Role.COMMANDER, Role.PLANNER, Role.FIELD, Role.ADMIN)


class Action(StrEnum):
    """What someone does, in the field's words. The code is also the audit action of a
    refusal at the route's gate."""

    SESSION_USE = "session.use"  # who am I, renew, log out

    INCIDENT_LIST = "incident.list"
    INCIDENT_READ = "incident.read"
    INCIDENT_OPEN = "incident.open"
    INCIDENT_VERIFY = "incident.verify"  # 立案
    INCIDENT_LINK_ALARM = "incident.link_alarm"
    INCIDENT_DISPATCH = "incident.dispatch"  # 派遣
    INCIDENT_EN_ROUTE = "incident.team_en_route"
    INCIDENT_ACKNOWLEDGE = "incident.team_acknowledged"  # 接令
    INCIDENT_ARRIVE = "incident.team_arrived"
    INCIDENT_RELEASE_TEAM = "incident.release_team"
    INCIDENT_RESOLVE = "incident.resolve"
    INCIDENT_REOPEN = "incident.reopen"
    INCIDENT_CLOSE = "incident.close"  # 结案
    INCIDENT_CLOSE_OVERRIDE = "incident.closing_override"  # 指挥长: close over open work
    INCIDENT_CANCEL = "incident.cancel"
    INCIDENT_FALSE_ALARM = "incident.false_alarm"
    INCIDENT_HOLD = "incident.hold"  # 挂起
    INCIDENT_RESUME = "incident.resume"
    INCIDENT_LEVEL = "incident.level_change"  # 响应级别: the commander's decision
    INCIDENT_RECLASSIFY = "incident.reclassify"
    INCIDENT_NOTE = "incident.note"
    INCIDENT_SPLIT = "incident.split"
    INCIDENT_MERGE = "incident.merge"
    DISPATCH_RECOMMEND = "dispatch.recommend"

    PLAN_READ = "plan.read"
    PLAN_ACTIVATE = "plan.activate"  # 启动预案
    PLAN_CHECKLIST_TICK = "plan.checklist_tick"

    RESERVE_READ = "reserve.read"
    RESERVE_RESERVE = "reserve.reserve"  # 应急物资: hold stock for an incident
    RESERVE_RELEASE = "reserve.release"
    RESERVE_ISSUE = "reserve.issue"
    RESERVE_RETURN = "reserve.return"
    RESERVE_CONSUME = "reserve.consume"

    KPI_READ = "kpi.read"
    REPORT_READ = "report.read"  # 复盘报告

    TEAM_LIST = "team.list"
    TEAM_READ = "team.read"
    TEAM_NEAR = "teams.near"
    TEAM_STATUS = "team.status"

    GRID_LIST = "grid.list"
    GRID_READ = "grid.read"
    GRID_DISCOVER = "grid.discover"  # 发现
    GRID_FILE = "grid.file"  # 立案
    GRID_DISMISS = "grid.dismiss"
    GRID_DISPATCH = "grid.dispatch"  # 派遣
    GRID_HANDLE = "grid.handle"  # 处置: the grid worker's
    GRID_VERIFY = "grid.verify"  # 核查
    GRID_REJECT = "grid.reject"
    GRID_CLOSE = "grid.close"  # 结案
    GRID_OVERDUE = "grid.overdue"
    GRID_KPIS = "grid.kpis"

    FIELD_ACK = "dispatch.ack"  # a crew accepts its order
    FIELD_REPORT = "field.report"
    FIELD_PHOTO = "field.photo"
    FIELD_PHOTO_READ = "field.photo_read"

    INBOX_READ = "inbox.read"  # 告警收件箱
    INBOX_PROMOTE = "inbox.promote"
    INBOX_LINK = "inbox.link"
    INBOX_DISMISS = "inbox.dismiss"
    INBOX_EXPIRE = "inbox.expire"
    INBOX_BULK = "inbox.bulk"

    PLANNED_EVENT_READ = "planned_event.read"  # 大型活动
    PLANNED_EVENT_CREATE = "planned_event.create"
    PLANNED_EVENT_CANCEL = "planned_event.cancel"

    WARNING_READ = "warning.read"  # 预警: a field team reads only those sent to it
    WARNING_DRAFT = "warning.draft"  # 起草 (and discard a draft)
    WARNING_APPROVE = "warning.approve"  # 批准并发布: the commander's (依法处置)
    WARNING_UPDATE = "warning.update"
    WARNING_CANCEL = "warning.cancel"  # 解除 an issued warning
    RISK_READ = "risk.read"  # 风险源
    RISK_EDIT = "risk.edit"
    RISK_SWEEP = "risk.sweep"  # open grid cases for overdue inspections
    RISK_FINDING = "risk.finding"  # a grid worker's finding: may raise the level or an alarm
    RISK_INCIDENT = "risk.incident_context"  # major sources near an incident, shelters
    SHELTER_READ = "shelter.read"  # 应急避难场所
    SHELTER_EDIT = "shelter.edit"
    SHELTER_REPORT_OCCUPANCY = "shelter.report_occupancy"
    INBOUND_WARNING_IMPORT = "inbound_warning.import"  # 外部预警: CAP 1.2 from other agencies
    INBOUND_WARNING_READ = "inbound_warning.read"
    UPWARD_READ = "upward_report.read"  # 信息报送: an incident's reports, figures, clocks
    UPWARD_DRAFT = "upward_report.draft"  # 起草 / 修改 (the duty officer), and the figures
    UPWARD_APPROVE = "upward_report.approve"  # 签发: the leader on duty's
    UPWARD_SEND = "upward_report.send"
    UPWARD_RECEIPT = "upward_report.receipt"  # 回执 taken by phone, entered by hand
    UPWARD_CLOCKS = "upward_report.clocks"  # every running clock: the desk and the wall
    UPWARD_INSTRUCTIONS = "upward_report.instructions"  # 上级批示 received

    DUTY_READ = "duty.read"  # 值班值守: the roster, the duty log, instructions, handovers, exports
    DUTY_ROSTER_SET = "duty.roster_set"  # who leads and who is on duty per shift
    DUTY_LOG_WRITE = "duty.log_write"  # a duty officer's free entry in the duty log
    DUTY_INSTRUCTION = "duty.instruction"  # 领导批示: record one, pass it on, follow it up
    DUTY_HANDOVER_DRAW = "duty.handover_draw"  # 交接班: draw up what is handed over
    DUTY_HANDOVER_SIGN = "duty.handover_sign"  # sign for one's own shift (a member of it)

    EXERCISE_READ = "exercise.read"  # 演练
    EXERCISE_WATCH = "exercise.watch"  # see a drill's incidents and changes as they happen
    EXERCISE_CREATE = "exercise.create"
    EXERCISE_CONTROL = "exercise.control"
    EXERCISE_INJECT = "exercise.inject"
    EXERCISE_PURGE = "exercise.purge"


@dataclass(frozen=True)
class Grant:
    """Who may, on live objects and on a drill's (exercise) objects."""

    live: frozenset[Role]
    drill: frozenset[Role]


_O, _C, _P, _F, _A, _S = Role.OPERATOR, Role.COMMANDER, Role.PLANNER, Role.FIELD, Role.ADMIN, Role.SYSTEM


def _grant(live: Iterable[Role], drill: Iterable[Role] | None = None) -> Grant:
    """``drill`` defaults to ``live``: a grant that does not depend on the scope."""
    live_set = frozenset(live)
    return Grant(live_set, live_set if drill is None else frozenset(drill))


_EVERYONE = _grant(CONSOLE_ROLES)
_CENTRE = (_O, _C, _A)  # 指挥中心: the duty desk, the commander, the administrator
#: The desk's work on an incident: live for the centre; in a drill, the planner too.
_DESK = _grant(_CENTRE, (*_CENTRE, _P))
_COMMAND = _grant((_C, _A))  # the commander's decisions, in a drill too
_READERS = _grant((*_CENTRE, _P))  # reference data: plans, the reserve, the roster
#: Each scope its own: live for the centre, drills for planners (admin both).
_SCOPED_READ = _grant(_CENTRE, (_P, _A))
#: Drills are run by planners and commanders (admin too); nothing live about them.
_RUN_DRILLS = _grant((), (_P, _C, _A))
_FIELD_ONLY = _grant((_F,))

POLICY: Mapping[Action, Grant] = {
    Action.SESSION_USE: _EVERYONE,
    # incidents (事件): field users see and record only what concerns their own team
    Action.INCIDENT_LIST: _EVERYONE,  # each sees its own view (filtered)
    Action.INCIDENT_READ: _grant((*_CENTRE, _F), (_P, _A)),
    Action.INCIDENT_OPEN: _grant((*_CENTRE, _S), (*_CENTRE, _P, _S)),
    Action.INCIDENT_VERIFY: _DESK,
    Action.INCIDENT_LINK_ALARM: _grant((*_CENTRE, _S), (*_CENTRE, _P, _S)),
    Action.INCIDENT_DISPATCH: _DESK,
    Action.INCIDENT_EN_ROUTE: _grant((*_CENTRE, _F, _S), (*_CENTRE, _P, _F, _S)),
    Action.INCIDENT_ACKNOWLEDGE: _grant((*_CENTRE, _F, _S), (*_CENTRE, _P, _F, _S)),
    Action.INCIDENT_ARRIVE: _grant((*_CENTRE, _F), (*_CENTRE, _P, _F)),
    Action.INCIDENT_RELEASE_TEAM: _DESK,
    Action.INCIDENT_RESOLVE: _DESK,
    Action.INCIDENT_REOPEN: _DESK,
    Action.INCIDENT_CLOSE: _DESK,
    Action.INCIDENT_CLOSE_OVERRIDE: _COMMAND,
    Action.INCIDENT_CANCEL: _DESK,
    Action.INCIDENT_FALSE_ALARM: _DESK,
    Action.INCIDENT_HOLD: _DESK,
    Action.INCIDENT_RESUME: _DESK,
    Action.INCIDENT_LEVEL: _COMMAND,
    Action.INCIDENT_RECLASSIFY: _DESK,
    Action.INCIDENT_NOTE: _DESK,
    Action.INCIDENT_SPLIT: _DESK,
    Action.INCIDENT_MERGE: _DESK,
    Action.DISPATCH_RECOMMEND: _DESK,
    # plans (预案) and the reserve (应急物资储备)
    Action.PLAN_READ: _READERS,
    Action.PLAN_ACTIVATE: _DESK,
    Action.PLAN_CHECKLIST_TICK: _DESK,
    Action.RESERVE_READ: _READERS,
    Action.RESERVE_RESERVE: _DESK,
    Action.RESERVE_RELEASE: _DESK,
    Action.RESERVE_ISSUE: _DESK,
    Action.RESERVE_RETURN: _DESK,
    Action.RESERVE_CONSUME: _DESK,
    Action.KPI_READ: _SCOPED_READ,
    # after-action reports: the centre reads a drill's too
    Action.REPORT_READ: _grant(_CENTRE, (*_CENTRE, _P)),
    # teams (救援队伍): the roster is live; a field user reads and sets its own team only
    Action.TEAM_LIST: _EVERYONE,
    Action.TEAM_READ: _EVERYONE,
    Action.TEAM_NEAR: _READERS,
    Action.TEAM_STATUS: _grant((*_CENTRE, _F)),
    # grid cases (网格事件): the centre's loop; the grid worker discovers and handles its own
    Action.GRID_LIST: _EVERYONE,
    Action.GRID_READ: _grant((*_CENTRE, _F), (_P, _A)),
    Action.GRID_DISCOVER: _grant((*_CENTRE, _F), (_P, _A)),
    Action.GRID_FILE: _SCOPED_READ,
    Action.GRID_DISMISS: _SCOPED_READ,
    Action.GRID_DISPATCH: _SCOPED_READ,
    Action.GRID_HANDLE: _grant((*_CENTRE, _F), (_P, _A)),
    Action.GRID_VERIFY: _SCOPED_READ,
    Action.GRID_REJECT: _SCOPED_READ,
    Action.GRID_CLOSE: _SCOPED_READ,
    Action.GRID_OVERDUE: _SCOPED_READ,
    Action.GRID_KPIS: _SCOPED_READ,
    # the field page: a crew's own account only (not even an administrator)
    Action.FIELD_ACK: _FIELD_ONLY,
    Action.FIELD_REPORT: _FIELD_ONLY,
    Action.FIELD_PHOTO: _FIELD_ONLY,
    Action.FIELD_PHOTO_READ: _EVERYONE,
    # the alarm inbox (研判): the service itself promotes, links and expires
    Action.INBOX_READ: _SCOPED_READ,
    Action.INBOX_PROMOTE: _grant((*_CENTRE, _S), (*_CENTRE, _P, _S)),
    Action.INBOX_LINK: _grant((*_CENTRE, _S), (*_CENTRE, _P, _S)),
    Action.INBOX_DISMISS: _DESK,
    Action.INBOX_EXPIRE: _grant((_S,)),
    Action.INBOX_BULK: _DESK,
    # planned events (大型活动)
    Action.PLANNED_EVENT_READ: _READERS,
    Action.PLANNED_EVENT_CREATE: _DESK,
    Action.PLANNED_EVENT_CANCEL: _DESK,
    # warnings (预警): the desk drafts, the commander issues; a crew reads what targets it
    Action.WARNING_READ: _grant((*_CENTRE, _F), (*_CENTRE, _P)),
    Action.WARNING_DRAFT: _DESK,
    Action.WARNING_APPROVE: _grant((_C, _A), (_C, _A, _P)),
    Action.WARNING_UPDATE: _grant((_C, _A), (_C, _A, _P)),
    Action.WARNING_CANCEL: _grant((_C, _A), (_C, _A, _P)),
    # risk sources (风险源) and shelters (应急避难场所): registries of the live city, which
    # drills read too; the centre keeps them, grid workers and crews report from the field
    Action.RISK_READ: _EVERYONE,
    Action.RISK_EDIT: _grant(_CENTRE),
    Action.RISK_SWEEP: _grant(_CENTRE),
    Action.RISK_FINDING: _grant((*_CENTRE, _F)),
    Action.RISK_INCIDENT: _SCOPED_READ,
    Action.SHELTER_READ: _EVERYONE,
    Action.SHELTER_EDIT: _grant(_CENTRE),
    Action.SHELTER_REPORT_OCCUPANCY: _grant((*_CENTRE, _F)),
    # inbound warnings (外部预警): a drill's are CAP files with status Exercise
    Action.INBOUND_WARNING_IMPORT: _DESK,
    Action.INBOUND_WARNING_READ: _READERS,
    # the duty desk (值班值守): the duty officers write, the leader on duty (a commander) sets
    # the roster; signatures are personal (the shift's members only, which the domain
    # checks), so the administrator, on no shift, does not sign; planners a drill's desk
    Action.DUTY_READ: _grant(_CENTRE, (*_CENTRE, _P)),
    Action.DUTY_ROSTER_SET: _grant((_C, _A), (_C, _A, _P)),
    Action.DUTY_LOG_WRITE: _DESK,
    Action.DUTY_INSTRUCTION: _DESK,
    Action.DUTY_HANDOVER_DRAW: _DESK,
    Action.DUTY_HANDOVER_SIGN: _grant((_O, _C)),
    # upward reporting (信息报送): the duty officer drafts, the leader on duty (指挥长)
    # approves, the centre sends and reads; planners in drills only; never the field
    Action.UPWARD_READ: _grant(_CENTRE, (*_CENTRE, _P)),
    Action.UPWARD_DRAFT: _DESK,
    Action.UPWARD_APPROVE: _grant((_C, _A), (_C, _A, _P)),
    Action.UPWARD_SEND: _DESK,
    Action.UPWARD_RECEIPT: _DESK,
    Action.UPWARD_CLOCKS: _grant(_CENTRE, (*_CENTRE, _P)),
    Action.UPWARD_INSTRUCTIONS: _grant(_CENTRE, (*_CENTRE, _P)),
    # exercises (演练)
    Action.EXERCISE_READ: _grant((), (*_CENTRE, _P)),
    Action.EXERCISE_WATCH: _grant((), (_P, _A)),
    Action.EXERCISE_CREATE: _RUN_DRILLS,
    Action.EXERCISE_CONTROL: _RUN_DRILLS,
    Action.EXERCISE_INJECT: _RUN_DRILLS,
    Action.EXERCISE_PURGE: _RUN_DRILLS,
}


def allowed(role: Role | str, action: Action | str, *, drill: bool) -> bool:
    """May ``role`` do ``action`` on a live object (``drill=False``) or on a drill's?
    The team rule (:func:`may_act_on_team`) comes on top for field users."""
    grant = POLICY[Action(action)]
    return Role(role) in (grant.drill if drill else grant.live)


def allowed_anywhere(role: Role | str, action: Action | str) -> bool:
    """Could ``role`` ever do ``action`` (live or in a drill)? The route's gate."""
    return allowed(role, action, drill=False) or allowed(role, action, drill=True)


def sees(role: Role | str, *, drill: bool) -> bool:
    """Does ``role`` see incidents of this scope at all (lists, the live stream)?
    Planners see drills only; operators and commanders live only; admin both."""
    return allowed(role, Action.INCIDENT_READ, drill=drill)


def bound_to_own_team(role: Role | str) -> bool:
    """Field users act only on their own team, their own order and their own cases."""
    return Role(role) is Role.FIELD


def may_act_on_team(role: Role | str, own_team: str | None, team_id: str | None) -> bool:
    """The team rule: a field user only on its own team (none if it has no team); every
    other role is not bound to a team (the table decides)."""
    if not bound_to_own_team(role):
        return True
    return own_team is not None and own_team == team_id


def actions_of(role: Role | str, *, drill: bool) -> list[str]:
    """Every action code ``role`` may do in this scope, in table order (``/auth/me``)."""
    return [str(action) for action in POLICY if allowed(role, action, drill=drill)]


def markdown_table() -> str:
    """The table as docs/security.md quotes it: one row per action, one column per
    console role; ✓ live and drill, "live" or "drill" one of them only."""
    head = "| action | " + " | ".join(str(r) for r in CONSOLE_ROLES) + " |"
    rule = "|---|" + "---|" * len(CONSOLE_ROLES)
    rows = [head, rule]
    for action in POLICY:
        cells = []
        for role in CONSOLE_ROLES:
            live, drill = allowed(role, action, drill=False), allowed(role, action, drill=True)
            cells.append("✓" if live and drill else "live" if live else "drill" if drill else "")
        rows.append(f"| `{action}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)
