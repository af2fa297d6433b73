"""Why the recommender ranked or skipped something: reason codes with parameters, and
their texts in Chinese (the default) and English.

The recommender (:mod:`command.domain.recommend`) says *why* as :class:`Reason` values
— a stable code and a few parameters — never as sentences. This module is the command
side's one catalogue of those codes: :func:`render` turns a reason into the text the
API's text fields and the after-action report carry (zh-CN unless asked otherwise).
The console renders the same codes from its own catalogues (``reason.<code>`` in
``dashboard/i18n``), with the same parameters.

Parameters are plain numbers and strings (JSON as they are). Three kinds are shown
rather than printed as they are, here and in the console alike:

* a name ending in ``_s`` is a number of seconds, shown as a duration (``6 min 14 s``,
  ``6 分 14 秒``);
* ``status`` is a team status (``en_route``), shown by its name (在途);
* ``kind`` is a warehouse kind (``production_capacity``), shown by its name (产能储备).

Pure: no I/O; the catalogue is data in this module.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Lang = Literal["zh_CN", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh_CN", "en")
DEFAULT_LANG: Lang = "zh_CN"

Param = str | int | float

_NO_PARAMS: Mapping[str, Param] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a code of :data:`CATALOGUE` and the values its texts need."""

    code: str
    params: Mapping[str, Param] = field(default_factory=lambda: _NO_PARAMS)

    def __hash__(self) -> int:  # params is a mapping: hash its items
        return hash((self.code, tuple(sorted(self.params.items()))))

    def text(self, lang: Lang = DEFAULT_LANG) -> str:
        return render(self, lang)


@dataclass(frozen=True, slots=True)
class Said:
    """A reason the system writes on a record: its code (shown in the reader's language)
    and the text kept for the API, the audit and readers that know no codes."""

    text: str
    why: Reason

    @classmethod
    def of(cls, why: Reason) -> Said:
        return cls(render(why), why)


#: Names of the vocabulary values a parameter may hold (``status``, ``kind``).
_TEAM_STATUS: Mapping[Lang, Mapping[str, str]] = MappingProxyType(
    {
        "zh_CN": {
            "available": "待命",
            "dispatched": "已派遣",
            "en_route": "在途",
            "on_scene": "到达现场",
            "returning": "返回中",
            "off_duty": "不在岗",
        },
        "en": {
            "available": "available",
            "dispatched": "dispatched",
            "en_route": "en route",
            "on_scene": "on scene",
            "returning": "returning",
            "off_duty": "off duty",
        },
    }
)
_WAREHOUSE_KIND: Mapping[Lang, Mapping[str, str]] = MappingProxyType(
    {
        "zh_CN": {
            "government_stock": "政府实物储备",
            "commercial_agreement": "企业协议储备",
            "production_capacity": "产能储备",
        },
        "en": {
            "government_stock": "government stock",
            "commercial_agreement": "commercial agreement",
            "production_capacity": "production capacity",
        },
    }
)
_ALARM_KIND: Mapping[Lang, Mapping[str, str]] = MappingProxyType(
    {
        "zh_CN": {"call": "110报警", "video": "视频告警", "sensor": "传感器告警", "report": "现场上报"},
        "en": {
            "call": "110 call",
            "video": "video alert",
            "sensor": "sensor alarm",
            "report": "field report",
        },
    }
)
_VOCABULARY: Mapping[str, Mapping[Lang, Mapping[str, str]]] = MappingProxyType(
    {"status": _TEAM_STATUS, "kind": _WAREHOUSE_KIND, "alarm_kind": _ALARM_KIND}
)
#: Parameters holding incident types (``types``: several, comma-separated), shown by name.
_TYPE_PARAMS = frozenset({"incident_type", "types"})

#: How a parameter is shown: None for a duration (``*_s``), else the names of its values.
_Shown = Mapping[Lang, Mapping[str, str]] | None


@dataclass(frozen=True, slots=True)
class ReasonText:
    """The parameters a code carries and its text in each language (``str.format``
    templates; numbers may carry a format spec, ``{route_km:.1f}``)."""

    params: tuple[str, ...]
    zh_CN: str
    en: str
    #: The parameters shown rather than printed, and how (worked out once, here).
    shown: tuple[tuple[str, _Shown], ...] = ()

    def template(self, lang: Lang) -> str:
        return self.zh_CN if lang == "zh_CN" else self.en


def _t(params: str, zh_cn: str, en: str) -> ReasonText:
    names = tuple(params.split())
    shown = tuple((n, _VOCABULARY.get(n)) for n in names if _is_shown(n))
    return ReasonText(names, zh_cn, en, shown)


def _is_shown(name: str) -> bool:
    return name.endswith("_s") or name in _VOCABULARY or name in _TYPE_PARAMS


#: Every code the recommender emits. Adding one: here, in both console catalogues
#: (``reason.<code>``) and in docs/reserve-and-rosters.md; the tests check all three.
CATALOGUE: Mapping[str, ReasonText] = MappingProxyType(
    {
        # how the travel time was estimated (a TravelTimeModel's explain)
        "travel.great_circle": _t(
            "straight_km road_factor route_km speed_kmh",
            "直线 {straight_km:.1f} 公里 × 道路系数 {road_factor:g} ≈ {route_km:.1f} 公里，"
            "时速 {speed_kmh:g} 公里",
            "{straight_km:.1f} km straight line × road factor {road_factor:g} ≈ "
            "{route_km:.1f} km at {speed_kmh:g} km/h",
        ),
        "eta": _t("eta_s", "预计 {eta_s} 到达", "ETA {eta_s}"),
        # team candidates
        "team.position_age": _t("age_s", "位置 {age_s} 前上报", "position {age_s} old"),
        "team.from_base.no_position": _t("", "按驻地计算：无位置上报", "from home base: no position"),
        "team.from_base.stale_position": _t(
            "age_s", "按驻地计算：位置已过时（{age_s} 前）", "from home base: position stale ({age_s} old)"
        ),
        "team.on_shift_until": _t("until", "值班至 {until}", "on shift until {until}"),
        # teams skipped, in the order the rules are checked
        "team.skipped.excluded": _t("", "已派往此事件", "already assigned to this incident"),
        "team.skipped.busy": _t("status", "状态：{status}", "status {status}"),
        "team.skipped.off_duty": _t("", "不在岗", "off duty"),
        "team.skipped.not_on_shift": _t("", "不在班（此刻无排班）", "not on duty (no shift covers now)"),
        "team.skipped.no_position": _t("", "未上报位置", "no position reported"),
        "team.skipped.stale_position": _t(
            "age_s", "位置已过时（最后上报于 {age_s} 前）", "position stale (last {age_s} ago)"
        ),
        # warehouse candidates
        "warehouse.stock.covers": _t(
            "kind available",
            "{kind}：可用 {available}，足以满足",
            "{kind}: {available} available, covers all",
        ),
        "warehouse.stock.partial": _t(
            "kind available quantity",
            "{kind}：可用 {available}，可满足 {quantity} 中的 {available}",
            "{kind}: {available} available, covers {available} of {quantity}",
        ),
        "warehouse.lead_time": _t(
            "lead_time_s", "调用准备时间 {lead_time_s}", "call-up lead time {lead_time_s}"
        ),
        "warehouse.production": _t(
            "kind per_day lead_time_s quantity ready_s",
            "{kind}：调用后 {lead_time_s} 开工，每天 {per_day}；{quantity} 需 {ready_s}",
            "{kind}: {per_day}/day after {lead_time_s} lead time; {quantity} ready in {ready_s}",
        ),
        # warehouses holding the item only unusably
        "warehouse.skipped.expired": _t("", "仅有过期库存", "only expired stock"),
        "warehouse.skipped.reserved": _t("", "库存已全部被保留", "only fully reserved stock"),
        "warehouse.skipped.expired_or_reserved": _t(
            "", "库存均已过期或已被保留", "only expired or fully reserved stock"
        ),
    }
)

CODES: frozenset[str] = frozenset(CATALOGUE)

#: Why the system did what it wrote on an incident's record (the ``reason_code`` and
#: ``reason_args`` of an event): the correlator, the alarm inbox, a team's report, a
#: dispatch. Adding one: here, in both console catalogues (``why.<code>``) and in
#: docs/incidents.md; the tests check all three.
WHY: Mapping[str, ReasonText] = MappingProxyType(
    {
        "correlation.joined": _t(
            "alarm_kind incident_type incident_id distance_m gap_s within_m window_s",
            "{alarm_kind}（{incident_type}）：与事件 {incident_id} 相距 {distance_m} 米、相隔 {gap_s}，"
            "在 {within_m} 米 / {window_s} 范围内，并入",
            "{alarm_kind} ({incident_type}): {distance_m} m and {gap_s} from incident {incident_id}, "
            "within {within_m} m / {window_s}; joined",
        ),
        "correlation.joined_same_source": _t(
            "alarm_kind incident_type incident_id source gap_s",
            "{alarm_kind}（{incident_type}）：与事件 {incident_id} 同一来源 {source}、相隔 {gap_s}，并入",
            "{alarm_kind} ({incident_type}): same source {source} as incident {incident_id}, "
            "{gap_s} apart; joined",
        ),
        "correlation.opened": _t(
            "alarm_kind incident_type types within_m window_s",
            "{alarm_kind}（{incident_type}）：{within_m} 米 / {window_s} 范围内"
            "无在办同类事件（{types}），新立事件",
            "{alarm_kind} ({incident_type}): no open incident of a kind it joins ({types}) "
            "within {within_m} m / {window_s}; new incident",
        ),
        "correlation.opened_no_position": _t(
            "alarm_kind incident_type source",
            "{alarm_kind}（{incident_type}）：无位置，且同一来源 {source} 无在办同类事件，新立事件",
            "{alarm_kind} ({incident_type}): no position and no open incident from the same source "
            "{source}; new incident",
        ),
        "report.to_order": _t(
            "team order_id incident_id",
            "队伍 {team} 的现场上报，归入其当前指令 {order_id} 的事件 {incident_id}（未标为新事件）",
            "field report of team {team}, filed under incident {incident_id} of its order {order_id} "
            "(not marked as a new event)",
        ),
        "inbox.opened": _t(
            "row_id count",
            "由告警收件箱 {row_id} 立事件（共 {count} 条告警）",
            "opened from inbox row {row_id} ({count} alarms)",
        ),
        "inbox.opened_note": _t(
            "row_id count note",
            "由告警收件箱 {row_id} 立事件（共 {count} 条告警）：{note}",
            "opened from inbox row {row_id} ({count} alarms): {note}",
        ),
        "inbox.joined": _t(
            "row_id count",
            "由告警收件箱 {row_id} 并入（共 {count} 条告警）",
            "joined from inbox row {row_id} ({count} alarms)",
        ),
        "dispatch.verified": _t("", "派遣即立案", "verified on dispatch"),
        "release.all_recalled": _t("", "所有队伍均已召回", "all teams recalled"),
    }
)

_DURATION: Mapping[Lang, tuple[str, str, str]] = MappingProxyType(
    {
        "zh_CN": ("{s} 秒", "{m} 分 {s:02d} 秒", "{h} 小时 {m:02d} 分"),
        "en": ("{s} s", "{m} min {s:02d} s", "{h} h {m:02d} min"),
    }
)


def duration(seconds: float, lang: Lang = DEFAULT_LANG) -> str:
    """Seconds as the recommender shows them: ``42 s``, ``6 min 14 s``, ``2 h 05 min``."""
    s = round(seconds)
    short, medium, long = _DURATION[lang]
    if s < 60:
        return short.format(s=s)
    if s < 3600:
        return medium.format(m=s // 60, s=s % 60)
    return long.format(h=s // 3600, m=s % 3600 // 60)


def shown_value(name: str, value: Param, lang: Lang) -> Param:
    """A parameter as a text shows it (durations and vocabulary names, see above)."""
    return _show(_VOCABULARY.get(name), value, lang, name) if _is_shown(name) else value


def _type_names(value: Param, lang: Lang) -> str:
    """Incident types by name (``traffic_accident,fire`` → 交通事故、火灾)."""
    from command.domain.correlation import TYPE_LABEL_ZH  # the types' names live with the correlator
    from command.domain.vocabulary import IncidentType

    names = []
    for code in str(value).split(","):
        try:
            known = IncidentType(code.strip())
        except ValueError:
            names.append(code.strip())
            continue
        names.append(TYPE_LABEL_ZH[known] if lang == "zh_CN" else known.value.replace("_", " "))
    return ("、" if lang == "zh_CN" else ", ").join(names)


def _show(how: _Shown, value: Param, lang: Lang, name: str = "") -> Param:
    if name in _TYPE_PARAMS:
        return _type_names(value, lang)
    if how is None:
        return duration(value, lang) if isinstance(value, (int, float)) else value
    return how[lang].get(str(value), str(value))


def render(reason: Reason, lang: Lang = DEFAULT_LANG) -> str:
    """The reason's text in ``lang``. An unknown code (a travel model of one's own)
    shows as the code with its parameters — visible, never a crash."""
    entry = CATALOGUE.get(reason.code) or WHY.get(reason.code)
    if entry is None:
        return " ".join([reason.code, *(f"{k}={v}" for k, v in reason.params.items())])
    template = entry.template(lang)
    params = reason.params
    if not entry.shown:  # numbers and strings as they are: no copy
        return template.format_map(params) if params else template
    values = dict(params)
    for name, how in entry.shown:
        if name in values:
            values[name] = _show(how, values[name], lang, name)
    return template.format_map(values)


def placeholders(template: str) -> set[str]:
    """The parameter names a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
