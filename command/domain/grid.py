"""网格化管理 — the grid closed loop for non-emergency events.

Stages: 发现 discovered → 立案 filed → 派遣 dispatched → 处置 handled → 核查 verified →
结案 closed. Two side paths:

* 不予立案 dismissed — a report that is not a case (duplicate, out of scope); final.
* 核查不通过 (action ``reject``) — verification fails and the case goes back to
  dispatched for rework (返工), to the same assignee; it must be handled again.

Each step records who did it and when (a case is the fold of its steps, so the edge
stores the steps and can :func:`replay` them). 核查 — verify or reject — must be done by
someone who did not handle the case in any round; the refusal says so.

SLA (处置时限) per category: the deadline is ``filed_at + sla``; a case still waiting to
be handled (filed, or dispatched — including after a failed verification) past its
deadline is overdue. A report not filed or dismissed within ``file_within`` (1 h by
default) of its discovery is overdue too. A case is on time when the handling that
passed verification happened by the deadline.

KPIs are computed over the cases *filed* in a period: closure rate, mean and 90th
percentile time from discovery to close (p90 interpolated linearly, like numpy's
default), on-time rate, cases per month and by category.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from types import MappingProxyType

from wuwang.stats import percentile


class GridCategory(StrEnum):
    """Grid event categories: the ascii codes the simulator's field reports use
    (``simulators.feeds.REPORT_CATEGORIES``) and the report feed carries."""

    STREET_VENDING = "street_vending"  # 占道经营
    MATERIAL_PILING = "material_piling"  # 乱堆物料
    MISSING_MANHOLE_COVER = "missing_manhole_cover"  # 井盖缺失
    ILLEGAL_PARKING = "illegal_parking"  # 违章停车
    NOISE_NUISANCE = "noise_nuisance"  # 噪音扰民
    FIRE_LANE_BLOCKED = "fire_lane_blocked"  # 消防通道堵塞
    EBIKE_CHARGING = "ebike_charging"  # 电动车违规充电
    GARBAGE_OVERFLOW = "garbage_overflow"  # 垃圾满溢
    ILLEGAL_CONSTRUCTION = "illegal_construction"  # 违章搭建
    DAMAGED_FACILITY = "damaged_facility"  # 公共设施损坏
    RISK_INSPECTION = "risk_inspection"  # 风险源巡查 (opened by the console, command.domain.risk)


#: Default 处置时限 (filing → handled) per category. A missing manhole cover or a
#: blocked fire lane endangers people now; an illegal structure needs an enforcement
#: procedure. Configurable per city through GridConfig.
DEFAULT_SLA: Mapping[str, timedelta] = MappingProxyType(
    {
        GridCategory.STREET_VENDING.value: timedelta(hours=4),
        GridCategory.MATERIAL_PILING.value: timedelta(hours=24),
        GridCategory.MISSING_MANHOLE_COVER.value: timedelta(hours=2),
        GridCategory.ILLEGAL_PARKING.value: timedelta(hours=2),
        GridCategory.NOISE_NUISANCE.value: timedelta(hours=8),
        GridCategory.FIRE_LANE_BLOCKED.value: timedelta(hours=2),
        GridCategory.EBIKE_CHARGING.value: timedelta(hours=4),
        GridCategory.GARBAGE_OVERFLOW.value: timedelta(hours=4),
        GridCategory.ILLEGAL_CONSTRUCTION.value: timedelta(hours=72),
        GridCategory.DAMAGED_FACILITY.value: timedelta(hours=48),
        # An overdue inspection is already late: a day to get a grid worker there.
        GridCategory.RISK_INSPECTION.value: timedelta(hours=24),
    }
)


@dataclass(frozen=True, slots=True)
class GridConfig:
    """Per-category SLA (category code → time from filing to handling); add categories
    here to accept them. ``file_within``: time from discovery to filing or dismissal."""

    sla: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_SLA)
    file_within: timedelta = timedelta(hours=1)


DEFAULT_GRID_CONFIG = GridConfig()


class GridStage(StrEnum):
    DISCOVERED = "discovered"  # 发现
    FILED = "filed"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    HANDLED = "handled"  # 处置
    VERIFIED = "verified"  # 核查
    CLOSED = "closed"  # 结案
    DISMISSED = "dismissed"  # 不予立案


class GridAction(StrEnum):
    DISCOVER = "discover"
    FILE = "file"
    DISMISS = "dismiss"
    DISPATCH = "dispatch"  # also 改派: re-dispatch to another assignee before handling
    HANDLE = "handle"
    VERIFY = "verify"
    REJECT = "reject"  # 核查不通过 → back to dispatched
    CLOSE = "close"


#: (stage, action) → next stage.
TRANSITIONS: Mapping[tuple[GridStage, GridAction], GridStage] = MappingProxyType(
    {
        (GridStage.DISCOVERED, GridAction.FILE): GridStage.FILED,
        (GridStage.DISCOVERED, GridAction.DISMISS): GridStage.DISMISSED,
        (GridStage.FILED, GridAction.DISPATCH): GridStage.DISPATCHED,
        (GridStage.DISPATCHED, GridAction.DISPATCH): GridStage.DISPATCHED,
        (GridStage.DISPATCHED, GridAction.HANDLE): GridStage.HANDLED,
        (GridStage.HANDLED, GridAction.VERIFY): GridStage.VERIFIED,
        (GridStage.HANDLED, GridAction.REJECT): GridStage.DISPATCHED,
        (GridStage.VERIFIED, GridAction.CLOSE): GridStage.CLOSED,
    }
)

#: Stages in which the case waits to be handled (the SLA clock matters).
AWAITING_HANDLING = frozenset({GridStage.FILED, GridStage.DISPATCHED})
FINAL = frozenset({GridStage.CLOSED, GridStage.DISMISSED})


class GridTransitionError(ValueError):
    """A step the closed loop does not allow; the message says why."""


@dataclass(frozen=True, slots=True)
class GridStep:
    action: GridAction
    by: str
    at: datetime
    note: str = ""
    assignee: str | None = None  # dispatch only: the department or person sent


@dataclass(frozen=True, slots=True)
class GridCase:
    id: str
    category: str
    sla: timedelta
    stage: GridStage
    steps: tuple[GridStep, ...]
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    grid_cell_id: str | None = None
    assignee: str | None = None

    def _last(self, action: GridAction) -> GridStep | None:
        for s in reversed(self.steps):
            if s.action is action:
                return s
        return None

    @property
    def discovered_at(self) -> datetime:
        return self.steps[0].at

    @property
    def reporter(self) -> str:
        return self.steps[0].by

    @property
    def filed_at(self) -> datetime | None:
        s = self._last(GridAction.FILE)
        return s.at if s else None

    @property
    def closed_at(self) -> datetime | None:
        s = self._last(GridAction.CLOSE)
        return s.at if s else None

    @property
    def handled_at(self) -> datetime | None:
        """Time of the latest handling (the one verification looked at)."""
        s = self._last(GridAction.HANDLE)
        return s.at if s else None

    @property
    def handlers(self) -> frozenset[str]:
        """Everyone who handled the case, in any round."""
        return frozenset(s.by for s in self.steps if s.action is GridAction.HANDLE)

    @property
    def reworks(self) -> int:
        return sum(1 for s in self.steps if s.action is GridAction.REJECT)

    @property
    def deadline(self) -> datetime | None:
        """SLA deadline for handling: filed_at + sla (None until filed)."""
        filed = self.filed_at
        return filed + self.sla if filed else None

    @property
    def time_to_close(self) -> timedelta | None:
        closed = self.closed_at
        return closed - self.discovered_at if closed else None

    @property
    def on_time(self) -> bool | None:
        """Handled (the accepted handling) by the deadline; None while not yet verified."""
        if self.stage not in (GridStage.VERIFIED, GridStage.CLOSED):
            return None
        handled, deadline = self.handled_at, self.deadline
        assert handled is not None
        assert deadline is not None
        return handled <= deadline


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise GridTransitionError(f"time must be timezone-aware, got {at.isoformat()}")


def discover(
    case_id: str,
    category: str,
    by: str,
    at: datetime,
    *,
    description: str = "",
    lat: float | None = None,
    lon: float | None = None,
    grid_cell_id: str | None = None,
    config: GridConfig = DEFAULT_GRID_CONFIG,
) -> GridCase:
    """发现: a grid worker (or the public, or a camera) reports an event."""
    _aware(at)
    if not by.strip():
        raise GridTransitionError("discover needs who reported it")
    sla = config.sla.get(category)
    if sla is None:
        raise GridTransitionError(
            f"unknown grid category {category!r}; known: {', '.join(sorted(config.sla))}"
        )
    step = GridStep(GridAction.DISCOVER, by, at, description)
    return GridCase(
        case_id, category, sla, GridStage.DISCOVERED, (step,), description, lat, lon, grid_cell_id
    )


def allowed_actions(case: GridCase) -> list[GridAction]:
    """What may happen next (for the UI's buttons)."""
    return [action for (stage, action) in TRANSITIONS if stage is case.stage]


def advance(
    case: GridCase,
    action: GridAction | str,
    by: str,
    at: datetime,
    *,
    note: str = "",
    assignee: str | None = None,
) -> GridCase:
    """Apply one step, or raise GridTransitionError saying why it is not allowed."""
    act = GridAction(action)
    _aware(at)
    if act is GridAction.DISCOVER:
        raise GridTransitionError("a case is discovered once; use discover() to open it")
    if not by.strip():
        raise GridTransitionError(f"{act.value} needs who did it")
    nxt = TRANSITIONS.get((case.stage, act))
    if nxt is None:
        allowed = ", ".join(a.value for a in allowed_actions(case)) or "nothing (final)"
        raise GridTransitionError(
            f"case {case.id} is {case.stage.value}; cannot {act.value} — allowed: {allowed}"
        )
    last = case.steps[-1].at
    if at < last:
        raise GridTransitionError(
            f"step time {at.isoformat()} is before the previous step ({last.isoformat()})"
        )
    if act in (GridAction.VERIFY, GridAction.REJECT) and by in case.handlers:
        raise GridTransitionError(
            f"{by} handled case {case.id} and cannot verify it: verification must be done by someone else"
        )
    if act is GridAction.DISPATCH:
        if not assignee or not assignee.strip():
            raise GridTransitionError("dispatch needs an assignee (department or person)")
    elif assignee is not None:
        raise GridTransitionError(f"{act.value} takes no assignee")
    if act in (GridAction.REJECT, GridAction.DISMISS) and not note.strip():
        raise GridTransitionError(f"{act.value} needs a reason in the note")
    step = GridStep(act, by, at, note, assignee)
    new_assignee = assignee if act is GridAction.DISPATCH else case.assignee
    return replace(case, stage=nxt, steps=(*case.steps, step), assignee=new_assignee)


def replay(opened: GridCase, steps: Iterable[GridStep]) -> GridCase:
    """Rebuild a case from its discovery and the later steps, checking each one."""
    if len(opened.steps) != 1:
        raise GridTransitionError("replay starts from a freshly discovered case")
    case = opened
    for s in steps:
        case = advance(case, s.action, s.by, s.at, note=s.note, assignee=s.assignee)
    return case


# --- SLA and KPIs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overdue:
    case_id: str
    category: str
    stage: GridStage
    deadline: datetime
    overdue_by: timedelta
    assignee: str | None

    def describe(self) -> str:
        who = f", with {self.assignee}" if self.assignee else ""
        minutes = int(self.overdue_by.total_seconds() // 60)
        return f"{self.case_id} ({self.category}, {self.stage.value}{who}) overdue by {minutes} min"


def overdue(
    cases: Iterable[GridCase], now: datetime, config: GridConfig = DEFAULT_GRID_CONFIG
) -> list[Overdue]:
    """Cases past their deadline at ``now``, most overdue first: not yet handled past
    filed_at + SLA, or not yet filed past discovered_at + file_within."""
    _aware(now)
    out: list[Overdue] = []
    for c in cases:
        if c.stage in AWAITING_HANDLING:
            deadline = c.deadline
        elif c.stage is GridStage.DISCOVERED:
            deadline = c.discovered_at + config.file_within
        else:
            continue
        assert deadline is not None
        if now > deadline:
            out.append(Overdue(c.id, c.category, c.stage, deadline, now - deadline, c.assignee))
    out.sort(key=lambda o: (-o.overdue_by, o.case_id))
    return out


@dataclass(frozen=True, slots=True)
class CategoryCounts:
    filed: int = 0
    closed: int = 0


@dataclass(frozen=True, slots=True)
class GridKpis:
    period_start: datetime
    period_end: datetime
    filed: int  # cases filed in the period (the cohort)
    closed: int  # of those, closed by ``now``
    dismissed: int  # reports discovered in the period and dismissed
    closure_rate: float | None  # closed / filed
    mean_time_to_close_s: float | None  # discovery → close, over the closed
    p90_time_to_close_s: float | None
    on_time_rate: float | None  # of the closed, handled within SLA
    per_month: Mapping[str, int] = field(default_factory=dict)  # "YYYY-MM" (local) → filed
    by_category: Mapping[str, CategoryCounts] = field(default_factory=dict)
    overdue: tuple[Overdue, ...] = ()


def grid_kpis(
    cases: Iterable[GridCase],
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    tz: tzinfo,
    config: GridConfig = DEFAULT_GRID_CONFIG,
) -> GridKpis:
    """KPIs over the cases filed in [period_start, period_end), as of ``now``; months
    are calendar months in ``tz`` (Asia/Shanghai for the console). The overdue list
    covers every given case at ``now``, whatever its period."""
    for t in (period_start, period_end, now):
        _aware(t)
    all_cases = list(cases)
    cohort = [c for c in all_cases if (f := c.filed_at) is not None and period_start <= f < period_end]
    dismissed = sum(
        1
        for c in all_cases
        if c.stage is GridStage.DISMISSED and period_start <= c.discovered_at < period_end
    )
    closed = [c for c in cohort if (done := c.closed_at) is not None and done <= now]
    durations = [c.time_to_close.total_seconds() for c in closed if c.time_to_close is not None]
    on_time = [c.on_time for c in closed]
    per_month: dict[str, int] = {}
    by_cat: dict[str, CategoryCounts] = {}
    for c in cohort:
        filed = c.filed_at
        assert filed is not None
        key = filed.astimezone(tz).strftime("%Y-%m")
        per_month[key] = per_month.get(key, 0) + 1
        counts = by_cat.get(c.category, CategoryCounts())
        is_closed = c.closed_at is not None and c.closed_at <= now
        by_cat[c.category] = CategoryCounts(counts.filed + 1, counts.closed + (1 if is_closed else 0))
    return GridKpis(
        period_start=period_start,
        period_end=period_end,
        filed=len(cohort),
        closed=len(closed),
        dismissed=dismissed,
        closure_rate=len(closed) / len(cohort) if cohort else None,
        mean_time_to_close_s=sum(durations) / len(durations) if durations else None,
        p90_time_to_close_s=percentile(durations, 90) if durations else None,
        on_time_rate=sum(1 for o in on_time if o) / len(on_time) if on_time else None,
        per_month=dict(sorted(per_month.items())),
        by_category=dict(sorted(by_cat.items())),
        overdue=tuple(overdue(all_cases, now, config)),
    )
