"""The after-action report as JSON, CSV and one self-contained HTML page.

* **JSON** (:func:`to_json`) — every number of the report, times as RFC 3339.
* **CSV** (:func:`to_csv`) — the unified event log, one row per event, UTF-8 with a
  byte-order mark so that Excel on a Chinese Windows opens it as UTF-8; every cell
  quoted, and a text that a spreadsheet would run as a formula starts with ``'``.
* **HTML** (:func:`to_html`) — summary, KPI table (met/missed coloured), per-incident
  timeline, map, plots and the event log. It works air-gapped: plotly.js is embedded
  inline (no CDN), the map is a plain lon/lat scatter with the aspect fixed by
  cos(latitude) (no tile server), styles are inline. Text from users (titles, reasons,
  notes, names) is escaped by Jinja2's autoescape, and plotly's JSON escapes ``</``.

zh-CN by default, English with ``lang="en"``: every string of the report is in
:data:`CATALOGUE` — add a key to both languages.
"""

# ruff: noqa: E501 - the HTML template below keeps its table rows on one line each

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import plotly.graph_objects as go  # type: ignore[import-untyped]
from jinja2 import Environment, select_autoescape
from markupsafe import Markup
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from command.domain import after_action as aa
from command.domain import reasons
from command.domain.correlation import TYPE_LABEL_ZH
from command.domain.incidents import IncidentState
from command.domain.vocabulary import IncidentType, ResponseLevel
from command.services.reports import LoadedReport, MapLayer

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

# --- the catalogue: every string of the report, in both languages ------------------

CATALOGUE: Mapping[Lang, Mapping[str, str]] = {
    "zh": {
        "title": "复盘报告",
        "title_line": "复盘报告：{name}",
        "exercise_badge": "演练",
        "live_badge": "实战",
        "scope_exercise": "演练",
        "scope_incident": "事件",
        "span": "时间范围",
        "tz_note": "时间为 {tz}",
        "summary": "概要",
        "summary_text": "共 {incidents} 起事件，{dispatched} 起已派遣，{reached} 起有队伍到场，{closed} 起已结案。",
        "exercise_info": "演练信息",
        "ex_kind": "类型",
        "ex_status": "状态",
        "ex_source": "来源",
        "ex_speed": "倍速",
        "ex_ran": "运行时间",
        "ex_stats": "统计",
        "ex_messages": "演练消息",
        "ex_messages_text": "已发送 {sent} / 共 {items} 条，代理确认 {acked} 条",
        "ex_injects": "注入（接口）",
        "ex_injects_text": "已执行 {sent} 次，失败 {failed} 次",
        "ex_drift": "时序偏差（实际发送−计划）",
        "ex_wall": "实际用时",
        "ex_error": "运行错误",
        "exk_scenario": "脚本演练",
        "exk_replay": "回放",
        "exk_import": "导入数据集",
        "exs_planned": "待运行",
        "exs_running": "运行中",
        "exs_paused": "已暂停",
        "exs_finished": "已结束",
        "exs_failed": "失败",
        "exs_purged": "已清除",
        "kpis": "关键指标",
        "metric": "指标",
        "count": "有值",
        "missing": "未达",
        "target": "目标",
        "result": "结果",
        "met": "达标",
        "missed": "未达标",
        "no_data": "无数据",
        "call_processing": "接警处理时长（首次报警→首次派遣）",
        "time_to_dispatch": "派遣决策时长（立案→首次派遣）",
        "time_to_on_scene": "到场时长（首次派遣→首支队伍到场）",
        "response": "总响应时长（首次报警→首支队伍到场）",
        "nfpa": "NFPA 1225 接警处理：{share_target}的呼叫在 {target} 秒内",
        "nfpa_value": "{within}/{count} 在 {target} 秒内（{share}）",
        "checklist": "预案任务清单完成",
        "closure": "结案率",
        "shortfalls": "资源缺口",
        "no_shortfalls": "无资源缺口。",
        "sf_team": "队伍",
        "sf_supply": "物资",
        "sf_required": "需要",
        "sf_have": "实有",
        "sf_missing": "缺",
        "incidents": "事件时间线",
        "incident": "事件",
        "type": "类型",
        "state": "状态",
        "level": "响应级别",
        "teams": "队伍",
        "plan": "预案",
        "first_alarm": "首次报警",
        "verified": "立案",
        "first_dispatch": "首次派遣",
        "first_on_scene": "首次到场",
        "resolved": "处置完毕",
        "closed": "结案",
        "none": "—",
        "map": "地图：事件位置与队伍轨迹",
        "map_note": "WGS-84 经纬度，无底图；灰线为区界。",
        "no_positions": "没有可绘制的位置。",
        "plots": "图表",
        "plot_cumulative": "累计事件、派遣与到场",
        "plot_cp": "各事件接警处理时长与 60 秒线",
        "series_incidents": "报警（事件）",
        "series_dispatched": "已派遣",
        "series_on_scene": "已到场",
        "seconds": "秒",
        "time": "时间",
        "lat": "纬度",
        "max": "最大",
        "lon": "经度",
        "events": "事件日志",
        "events_count": "共 {n} 条",
        "actor": "操作人",
        "role": "角色",
        "kind": "事件类型",
        "reason": "原因",
        "summary_col": "摘要",
        "district": "区界",
        "cell": "网格",
        "track": "轨迹",
        "generated": "生成时间",
        "download": "下载 HTML",
        "download_csv": "下载事件 CSV",
        "ev.opened": "立卷：{title}（{type}，{level} 级）",
        "ev.source_linked": "关联报警 {alarm}（{category}）",
        "ev.source_split": "拆分报警 {alarm} 至 {to}",
        "ev.merged_into": "并入事件 {into}",
        "ev.absorbed": "合并事件 {from}（报警 {alarms} 条，队伍 {teams} 支）",
        "ev.state_changed": "状态 {from} → {to}",
        "ev.level_changed": "响应级别 {from} → {to}",
        "ev.reclassified": "类型 {from} → {to}",
        "ev.plan_activated": "启动预案 {plan}（v{version}，{level} 级）",
        "ev.checklist_item_ticked": "任务 {item}：{done}",
        "ev.team_dispatched": "派遣队伍 {team}（指令 {order}）",
        "ev.team_acknowledged": "队伍 {team} 接令（指令 {order}）",
        "ev.team_en_route": "队伍 {team} 出动",
        "ev.team_arrived": "队伍 {team} 到场",
        "ev.team_released": "队伍 {team} 撤离/释放",
        "ev.note_added": "备注：{text}",
        "ev.held": "挂起",
        "ev.resumed": "恢复处置",
        "role_operator": "值班员",
        "role_commander": "指挥长",
        "role_planner": "演练策划",
        "role_admin": "系统管理员",
        "role_field": "救援队伍",
        "team_type_fire": "消防",
        "team_type_medical": "医疗",
        "team_type_police": "公安",
        "team_type_hazmat": "危化品处置",
        "team_type_water_rescue": "水上救援",
        "team_type_comprehensive": "综合救援",
        "team_type_other": "其他",
        "evk.opened": "发现",
        "evk.source_linked": "关联警情",
        "evk.source_split": "拆分",
        "evk.merged_into": "合并到",
        "evk.absorbed": "并入",
        "evk.state_changed": "状态",
        "evk.level_changed": "响应级别",
        "evk.reclassified": "改类",
        "evk.plan_activated": "启动预案",
        "evk.checklist_item_ticked": "检查项",
        "evk.team_dispatched": "派遣",
        "evk.team_arrived": "到场",
        "evk.team_released": "撤回队伍",
        "evk.note_added": "记录",
        "evk.held": "挂起",
        "evk.resumed": "恢复",
        "role_system": "系统",
        "actor_system": "系统",
        "unit_team": "支",
        "yes": "完成",
        "no": "取消完成",
    },
    "en": {
        "title": "After-action report",
        "title_line": "After-action report: {name}",
        "exercise_badge": "EXERCISE",
        "live_badge": "LIVE",
        "scope_exercise": "Exercise",
        "scope_incident": "Incident",
        "span": "Time span",
        "tz_note": "times in {tz}",
        "summary": "Summary",
        "summary_text": "{incidents} incidents; {dispatched} dispatched, {reached} reached by a team, "
        "{closed} closed.",
        "exercise_info": "Exercise",
        "ex_kind": "Kind",
        "ex_status": "Status",
        "ex_source": "Source",
        "ex_speed": "Speed",
        "ex_ran": "Ran",
        "ex_stats": "Stats",
        "ex_messages": "Exercise messages",
        "ex_messages_text": "{sent} of {items} sent, {acked} acknowledged by the broker",
        "ex_injects": "Injects (API)",
        "ex_injects_text": "{sent} done, {failed} failed",
        "ex_drift": "Timing drift (sent − scheduled)",
        "ex_wall": "Wall-clock time",
        "ex_error": "Run error",
        "exk_scenario": "Scripted drill",
        "exk_replay": "Replay",
        "exk_import": "Imported dataset",
        "exs_planned": "Planned",
        "exs_running": "Running",
        "exs_paused": "Paused",
        "exs_finished": "Finished",
        "exs_failed": "Failed",
        "exs_purged": "Purged",
        "kpis": "Key performance indicators",
        "metric": "Indicator",
        "count": "With value",
        "missing": "Not reached",
        "target": "Target",
        "result": "Result",
        "met": "met",
        "missed": "missed",
        "no_data": "no data",
        "call_processing": "Call processing (first alarm → first dispatch)",
        "time_to_dispatch": "Time to dispatch (verified → first dispatch)",
        "time_to_on_scene": "Time to on scene (first dispatch → first arrival)",
        "response": "Response (first alarm → first arrival)",
        "nfpa": "NFPA 1225 alarm processing: {share_target} of calls within {target} s",
        "nfpa_value": "{within}/{count} within {target} s ({share})",
        "checklist": "Plan checklist completion",
        "closure": "Closure rate",
        "shortfalls": "Shortfalls",
        "no_shortfalls": "No shortfalls.",
        "sf_team": "team",
        "sf_supply": "supply",
        "sf_required": "required",
        "sf_have": "had",
        "sf_missing": "missing",
        "incidents": "Timeline of incidents",
        "incident": "Incident",
        "type": "Type",
        "state": "State",
        "level": "Level",
        "teams": "Teams",
        "plan": "Plan",
        "first_alarm": "First alarm",
        "verified": "Verified",
        "first_dispatch": "First dispatch",
        "first_on_scene": "First on scene",
        "resolved": "Resolved",
        "closed": "Closed",
        "none": "—",
        "map": "Map: incidents and team tracks",
        "map_note": "WGS-84 lon/lat, no basemap; grey lines are district boundaries.",
        "no_positions": "No positions to draw.",
        "plots": "Plots",
        "plot_cumulative": "Cumulative incidents, dispatches and arrivals",
        "plot_cp": "Call-processing time per incident and the 60 s line",
        "series_incidents": "alarms (incidents)",
        "series_dispatched": "dispatched",
        "series_on_scene": "on scene",
        "seconds": "s",
        "time": "Time",
        "lat": "latitude",
        "max": "max",
        "lon": "longitude",
        "events": "Event log",
        "events_count": "{n} events",
        "actor": "Actor",
        "role": "Role",
        "kind": "Kind",
        "reason": "Reason",
        "summary_col": "Summary",
        "district": "districts",
        "cell": "grid cells",
        "track": "track",
        "generated": "Generated",
        "download": "Download HTML",
        "download_csv": "Download events CSV",
        "ev.opened": "opened: {title} ({type}, level {level})",
        "ev.source_linked": "alarm {alarm} linked ({category})",
        "ev.source_split": "alarm {alarm} split out to {to}",
        "ev.merged_into": "merged into {into}",
        "ev.absorbed": "absorbed {from} ({alarms} alarms, {teams} teams)",
        "ev.state_changed": "state {from} → {to}",
        "ev.level_changed": "level {from} → {to}",
        "ev.reclassified": "type {from} → {to}",
        "ev.plan_activated": "plan {plan} activated (v{version}, level {level})",
        "ev.checklist_item_ticked": "checklist item {item}: {done}",
        "ev.team_dispatched": "team {team} dispatched (order {order})",
        "ev.team_acknowledged": "team {team} acknowledged (order {order})",
        "ev.team_en_route": "team {team} en route",
        "ev.team_arrived": "team {team} on scene",
        "ev.team_released": "team {team} released",
        "ev.note_added": "note: {text}",
        "ev.held": "held",
        "ev.resumed": "resumed",
        "role_operator": "Operator",
        "role_commander": "Commander",
        "role_planner": "Drill planner",
        "role_admin": "Administrator",
        "role_field": "Rescue team",
        "team_type_fire": "Fire",
        "team_type_medical": "Medical",
        "team_type_police": "Police",
        "team_type_hazmat": "Hazmat",
        "team_type_water_rescue": "Water rescue",
        "team_type_comprehensive": "Comprehensive",
        "team_type_other": "Other",
        "evk.opened": "Opened",
        "evk.source_linked": "Alarm linked",
        "evk.source_split": "Split",
        "evk.merged_into": "Merged into",
        "evk.absorbed": "Absorbed",
        "evk.state_changed": "State",
        "evk.level_changed": "Level",
        "evk.reclassified": "Reclassified",
        "evk.plan_activated": "Plan activated",
        "evk.checklist_item_ticked": "Checklist",
        "evk.team_dispatched": "Dispatched",
        "evk.team_arrived": "Arrived",
        "evk.team_released": "Released",
        "evk.note_added": "Note",
        "evk.held": "Held",
        "evk.resumed": "Resumed",
        "role_system": "system",
        "actor_system": "system",
        "unit_team": "team(s)",
        "yes": "done",
        "no": "undone",
    },
}


def t(lang: Lang, key: str, **values: Any) -> str:
    text = CATALOGUE[lang].get(key) or CATALOGUE["en"].get(key) or key
    return text.format_map(defaultdict(str, values)) if values else text


def parse_lang(value: str | None) -> Lang:
    return "en" if (value or "").lower().startswith("en") else "zh"


def state_label(state: IncidentState | str, lang: Lang) -> str:
    s = IncidentState(state)
    return s.label_zh if lang == "zh" else s.value.replace("_", " ")


def type_label(incident_type: str, lang: Lang) -> str:
    """An incident type in the reader's words (the type's id when it is not one we know)."""
    try:
        known = IncidentType(incident_type)
    except ValueError:
        return incident_type
    return TYPE_LABEL_ZH[known] if lang == "zh" else known.value.replace("_", " ").capitalize()


def level_label(level: ResponseLevel, lang: Lang) -> str:
    return f"{level.name} {level.label_zh}" if lang == "zh" else f"{level.name} ({level.colour})"


def word(words: Mapping[str, tuple[str, str]], key: str, lang: Lang, fallback: str) -> str:
    """A code's name in ``lang`` (``LoadedReport.words``), ``fallback`` when it has none."""
    pair = words.get(key)
    return (pair[0] if lang == "zh" else pair[1]) if pair else fallback


_HAN = re.compile(r"[\u3400-\u9fff]")


def title_label(title: str, incident_type: str, lang: Lang) -> str:
    """An incident's title for the reader: the titles the command service makes are in
    Chinese (``交通事故（110报警）：…``); an English report says the incident's type."""
    return type_label(incident_type, lang) if lang == "en" and _HAN.search(title) else title


def kind_label(kind: str, lang: Lang) -> str:
    return t(lang, f"evk.{kind}") if f"evk.{kind}" in CATALOGUE[lang] else kind


def role_label(role: str, lang: Lang) -> str:
    return t(lang, f"role_{role}") if f"role_{role}" in CATALOGUE[lang] else role


def actor_label(actor: str, lang: Lang) -> str:
    """A user's id as it is; the command service itself (``system:correlator``) in words."""
    return t(lang, "actor_system") if actor == "system" or actor.startswith("system:") else actor


def entry_reason(entry: aa.LogEntry | aa.LevelStep, lang: Lang) -> str:
    """An event's reason: a system-written one in the report's language (its code, from
    command/domain/reasons.py), else the text as written."""
    if entry.why is not None:
        return reasons.render(entry.why, "zh_CN" if lang == "zh" else "en")
    return entry.reason or ""


def event_summary(entry: aa.LogEntry, lang: Lang, words: Mapping[str, tuple[str, str]] | None = None) -> str:
    words = words or {}
    facts: dict[str, str] = dict(entry.facts)
    if entry.kind == "state_changed":
        facts = {k: state_label(v, lang) for k, v in facts.items()}
    if entry.kind == "checklist_item_ticked":
        facts["done"] = t(lang, facts.get("done", "yes"))
        facts["item"] = word(
            words, f"step:{facts.get('plan')}/{facts.get('item')}", lang, facts.get("item", "")
        )
    if entry.kind == "opened" and "type" in facts:
        facts["title"] = title_label(facts.get("title", ""), facts["type"], lang)
        facts["type"] = type_label(facts["type"], lang)
    if "plan" in facts:
        facts["plan"] = word(words, f"plan:{facts['plan']}", lang, facts["plan"])
    return t(lang, f"ev.{entry.kind}", **facts) if f"ev.{entry.kind}" in CATALOGUE[lang] else entry.kind


# --- JSON -----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _duration(d: aa.DurationKpi) -> dict[str, Any]:
    return {
        "count": d.count,
        "missing": d.missing,
        "missing_ids": list(d.missing_ids),
        "p50_s": d.p50_s,
        "p90_s": d.p90_s,
        "p99_s": d.p99_s,
        "max_s": d.max_s,
    }


def _checklist(c: aa.ChecklistCompletion | None) -> dict[str, Any] | None:
    return None if c is None else {"done": c.done, "total": c.total, "share": c.share}


def to_json(loaded: LoadedReport, lang: Lang = "zh") -> dict[str, Any]:
    r = loaded.report
    k = r.kpis
    return {
        "scope": {
            "kind": r.scope.kind,
            "id": r.scope.id,
            "name": r.scope.name,
            "exercise_id": r.scope.exercise_id,
            "start": _iso(r.scope.start),
            "end": _iso(r.scope.end),
        },
        "exercise": loaded.exercise,
        "lang": lang,
        "kpis": {
            "incidents": k.incidents,
            "dispatched": k.dispatched,
            "reached": k.reached,
            "closed": k.closed,
            "closure_rate": k.closure_rate,
            "call_processing": _duration(k.call_processing),
            "nfpa_1225": {
                "target_s": k.nfpa_1225.target_s,
                "target_share": k.nfpa_1225.target_share,
                "within_target": k.nfpa_1225.within_target,
                "share_within_target": k.nfpa_1225.share_within_target,
                "met": k.nfpa_1225.met,
            },
            "time_to_dispatch": _duration(k.time_to_dispatch),
            "time_to_on_scene": _duration(k.time_to_on_scene),
            "response": _duration(k.response),
            "checklist": _checklist(k.checklist),
            "shortfalls": [
                {
                    "incident_id": s.incident_id,
                    "kind": s.kind,
                    "key": s.key,
                    "required": s.required,
                    "have": s.have,
                    "missing": s.missing,
                    "unit": s.unit,
                }
                for s in k.shortfalls
            ],
        },
        "incidents": [
            {
                "id": row.incident_id,
                "type": row.incident_type,
                "title": row.title,
                "state": str(row.state),
                "exercise_id": row.exercise_id,
                "lat": row.lat,
                "lon": row.lon,
                "level": int(row.level),
                "levels": [
                    {
                        "at": _iso(s.at),
                        "level": int(s.level),
                        "by": s.by,
                        "reason": entry_reason(s, lang) or None,
                    }
                    for s in row.levels
                ],
                "teams": list(row.teams),
                "first_alarm_at": _iso(row.first_alarm_at),
                "opened_at": _iso(row.opened_at),
                "verified_at": _iso(row.verified_at),
                "first_dispatch_at": _iso(row.first_dispatch_at),
                "first_on_scene_at": _iso(row.first_on_scene_at),
                "resolved_at": _iso(row.resolved_at),
                "closed_at": _iso(row.closed_at),
                "ended_at": _iso(row.ended_at),
                "call_processing_s": row.call_processing_s,
                "time_to_dispatch_s": row.time_to_dispatch_s,
                "time_to_on_scene_s": row.time_to_on_scene_s,
                "response_s": row.response_s,
                "plan_id": row.plan_id,
                "checklist": _checklist(row.checklist),
            }
            for row in r.incidents
        ],
        "timeline": [{"at": _iso(m.at), "incident_id": m.incident_id, "what": m.what} for m in r.milestones],
        "tracks": [
            {
                "team_id": tr.team_id,
                "distance_m": tr.distance_m,
                "points": [[_iso(p.at), p.lat, p.lon] for p in tr.points],
            }
            for tr in r.tracks
        ],
        "events": [
            {
                "at": _iso(e.at),
                "incident_id": e.incident_id,
                "seq": e.seq,
                "kind": e.kind,
                "actor": e.actor,
                "role": e.role,
                "reason": entry_reason(e, lang),
                "facts": dict(e.facts),
                "summary": event_summary(e, lang, loaded.words),
            }
            for e in r.log
        ],
    }


# --- CSV ------------------------------------------------------------------------------

CSV_COLUMNS = ("at", "incident_id", "seq", "kind", "actor", "role", "reason", "summary")

#: A cell starting with one of these is run as a formula by Excel or LibreOffice (OWASP
#: "CSV injection"); the full-width forms are what a Chinese input method types.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def spreadsheet_text(cell: str) -> str:
    """``cell`` as a spreadsheet shows it and never runs it: a leading ``'`` before a
    formula character (OWASP), also after leading spaces, which some spreadsheets skip."""
    return "'" + cell if cell.lstrip(" ").startswith(FORMULA_STARTS) else cell


def to_csv(loaded: LoadedReport, lang: Lang = "zh") -> bytes:
    """The event log, one row per event; ``at`` in RFC 3339 as stored (UTC offset kept).

    Every cell is quoted and every text neutralised (``spreadsheet_text``): titles,
    notes and reasons are typed by users, and the file is opened in a spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in loaded.report.log:
        texts = (
            e.incident_id,
            e.kind,
            e.actor,
            e.role,
            entry_reason(e, lang),
            event_summary(e, lang, loaded.words),
        )
        incident_id, kind, actor, role, reason, summary = (spreadsheet_text(text) for text in texts)
        writer.writerow([e.at.isoformat(), incident_id, e.seq, kind, actor, role, reason, summary])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # the BOM: Excel then reads UTF-8


# --- HTML -----------------------------------------------------------------------------

_LEVEL_COLOURS = {1: "#d7191c", 2: "#fd8d3c", 3: "#e6c200", 4: "#2b83ba"}
_TRACK_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#b15928", "#6a3d9a")
# No modebar: its buttons speak English only (a report in Chinese would mix languages);
# zooming by dragging and double-click to reset still work.
_PLOT_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


def _rings(geometry: Mapping[str, Any]) -> Iterable[Sequence[Sequence[float]]]:
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        yield from coords
    elif kind == "MultiPolygon":
        for polygon in coords:
            yield from polygon


def _outline(geometries: Iterable[Mapping[str, Any]]) -> tuple[list[float | None], list[float | None]]:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for geometry in geometries:
        for ring in _rings(geometry):
            for position in ring:
                xs.append(float(position[0]))
                ys.append(float(position[1]))
            xs.append(None)  # a break between rings
            ys.append(None)
    return xs, ys


def _esc(text: str) -> str:
    # plotly renders a little HTML in hover text: user text is escaped before it goes in.
    return str(Markup.escape(text))


def _map_figure(report: aa.AfterActionReport, layer: MapLayer, lang: Lang, tz: tzinfo) -> go.Figure | None:
    lats = [r.lat for r in report.incidents if r.lat is not None and r.lon is not None]
    lons = [r.lon for r in report.incidents if r.lat is not None and r.lon is not None]
    for tr in report.tracks:
        lats.extend(p.lat for p in tr.points)
        lons.extend(p.lon for p in tr.points)
    if not lats:
        return None
    lat0 = (min(lats) + max(lats)) / 2
    cos = max(math.cos(math.radians(lat0)), 0.01)
    # At least ~2 km around what happened, so a single point still has context.
    half_lat = max((max(lats) - min(lats)) / 2 * 1.15, 0.01)
    half_lon = max((max(lons) - min(lons)) / 2 * 1.15, 0.01 / cos)
    lon0 = (min(lons) + max(lons)) / 2
    fig = go.Figure()
    outlines = (
        (layer.districts, {"color": "#999", "width": 1}, "district"),
        (layer.cells, {"color": "#bbb", "width": 1, "dash": "dot"}, "cell"),
    )
    for shapes, line, label in outlines:
        xs, ys = _outline(g for _, g in shapes)
        if xs:
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines", line=line, name=t(lang, label), hoverinfo="skip")
            )
    for i, tr in enumerate(report.tracks):
        if not tr.points:
            continue
        colour = _TRACK_COLOURS[i % len(_TRACK_COLOURS)]
        fig.add_trace(
            go.Scatter(
                x=[p.lon for p in tr.points],
                y=[p.lat for p in tr.points],
                mode="lines+markers",
                marker={"size": [4] * (len(tr.points) - 1) + [10], "color": colour},
                line={"color": colour, "width": 2},
                name=_esc(f"{tr.team_id} {t(lang, 'track')} ({tr.distance_m / 1000:.1f} km)"),
                text=[p.at.astimezone(tz).strftime("%H:%M:%S") for p in tr.points],
                hovertemplate=_esc(tr.team_id) + " %{text}<extra></extra>",
            )
        )
    placed = [r for r in report.incidents if r.lat is not None and r.lon is not None]
    if placed:
        fig.add_trace(
            go.Scatter(
                x=[r.lon for r in placed],
                y=[r.lat for r in placed],
                mode="markers+text",
                marker={
                    "size": 14,
                    "symbol": "star",
                    "color": [_LEVEL_COLOURS[int(r.level)] for r in placed],
                    "line": {"color": "#000", "width": 1},
                },
                text=[_esc(r.incident_id) for r in placed],
                textposition="top center",
                hovertext=[
                    _esc(
                        f"{r.incident_id} {title_label(r.title, r.incident_type, lang)} ({level_label(r.level, lang)})"
                    )
                    for r in placed
                ],
                hoverinfo="text",
                name=t(lang, "incident"),
            )
        )
    fig.update_layout(
        height=560,
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        template="plotly_white",
        legend={"orientation": "h"},
        xaxis={"range": [lon0 - half_lon, lon0 + half_lon], "title": t(lang, "lon"), "showgrid": False},
        # One degree of latitude is 1/cos(lat) times as long as one of longitude.
        yaxis={
            "range": [lat0 - half_lat, lat0 + half_lat],
            "title": t(lang, "lat"),
            "scaleanchor": "x",
            "scaleratio": 1 / cos,
            "showgrid": False,
        },
    )
    return fig


def _cumulative_figure(report: aa.AfterActionReport, lang: Lang, tz: tzinfo) -> go.Figure | None:
    if not report.incidents:
        return None
    fig = go.Figure()
    series = (
        ("series_incidents", [r.first_alarm_at for r in report.incidents]),
        ("series_dispatched", [r.first_dispatch_at for r in report.incidents if r.first_dispatch_at]),
        ("series_on_scene", [r.first_on_scene_at for r in report.incidents if r.first_on_scene_at]),
    )
    for key, times in series:
        ordered = sorted(x.astimezone(tz) for x in times if x is not None)
        fig.add_trace(
            go.Scatter(
                x=ordered,
                y=list(range(1, len(ordered) + 1)),
                mode="lines+markers",
                line={"shape": "hv"},
                name=t(lang, key),
            )
        )
    fig.update_layout(
        height=320,
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        template="plotly_white",
        legend={"orientation": "h"},
        # hours and minutes: Plotly's own date labels ("Dec 7, 2026") are in English only
        # (the report's span above says the date)
        xaxis={"title": t(lang, "time"), "tickformat": "%H:%M", "hoverformat": "%Y-%m-%d %H:%M:%S"},
    )
    return fig


def _call_processing_figure(report: aa.AfterActionReport, lang: Lang) -> go.Figure | None:
    rows = [r for r in report.incidents if r.call_processing_s is not None]
    if not rows:
        return None
    target = report.kpis.nfpa_1225.target_s
    fig = go.Figure(
        go.Bar(
            x=[_esc(r.incident_id) for r in rows],
            y=[r.call_processing_s for r in rows],
            marker={
                "color": ["#1a9641" if (r.call_processing_s or 0) <= target else "#d7191c" for r in rows]
            },
            name=t(lang, "call_processing"),
        )
    )
    fig.add_hline(y=target, line={"color": "#333", "dash": "dash"}, annotation_text=f"{target:g} s")
    fig.update_layout(
        height=320,
        margin={"l": 50, "r": 10, "t": 10, "b": 60},
        template="plotly_white",
        yaxis={"title": t(lang, "seconds")},
        showlegend=False,
    )
    return fig


def _fig_html(fig: go.Figure | None) -> Markup | None:
    if fig is None:
        return None
    # plotly's own markup: its JSON escapes '</', user text in it was escaped by _esc.
    html = fig.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG)
    return Markup(html)  # noqa: S704


@functools.cache
def _plotly_js() -> Markup:
    return Markup(get_plotlyjs())  # noqa: S704 - the library itself, no user text


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 600 else f"{value / 60:.1f} min"


def _fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


_ENV = Environment(
    autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True, lstrip_blocks=True
)

_TEMPLATE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ t('title') }} — {{ scope_name }} ({{ r.scope.id }})</title>
<style>
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 2px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.met { background: #d9f2d9; color: #145214; font-weight: bold; }
.missed { background: #f9d6d5; color: #7a0c0a; font-weight: bold; }
.nodata { color: #777; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; }
.badge.exercise { background: #b35806; } .badge.live { background: #2166ac; }
.lvl1 { color: #d7191c; } .lvl2 { color: #e66101; } .lvl3 { color: #b8860b; } .lvl4 { color: #2b83ba; }
.muted { color: #666; font-size: 13px; }
</style>
<script>{{ plotly_js }}</script>
</head>
<body>
<header>
<h1>{{ t('title_line', name=scope_name) }}
{% if r.scope.exercise_id %}<span class="badge exercise">{{ t('exercise_badge') }} {{ r.scope.exercise_id }}</span>
{% else %}<span class="badge live">{{ t('live_badge') }}</span>{% endif %}</h1>
<p class="muted">{{ t('scope_' ~ r.scope.kind) }} {{ r.scope.id }} · {{ t('span') }}: {{ when(r.scope.start) }} – {{ when(r.scope.end) }}
 · {{ t('tz_note', tz=tz_name) }} · {{ t('generated') }}: {{ when(generated) }}</p>
</header>

<section id="summary">
<h2>{{ t('summary') }}</h2>
<p>{{ t('summary_text', incidents=k.incidents, dispatched=k.dispatched, reached=k.reached, closed=k.closed) }}</p>
{% if exercise %}
<table>
<tr><th>{{ t('exercise_info') }}</th><td>{{ exercise.id }} — {{ exercise.name }}</td></tr>
<tr><th>{{ t('ex_kind') }}</th><td>{{ t('exk_' ~ exercise.kind) }}</td></tr>
<tr><th>{{ t('ex_status') }}</th><td>{{ t('exs_' ~ exercise.status) }}</td></tr>
<tr><th>{{ t('ex_source') }}</th><td>{{ exercise.source }}</td></tr>
<tr><th>{{ t('ex_speed') }}</th><td>×{{ '%g' % exercise.speed }}</td></tr>
<tr><th>{{ t('ex_ran') }}</th><td>{{ when(exercise.started_at) }} – {{ when(exercise.finished_at) }}</td></tr>
{% set st = exercise.stats or {} %}
{% if st.sent is defined %}
<tr><th>{{ t('ex_messages') }}</th><td>{{ t('ex_messages_text', sent=st.sent, acked=st.get('acked', '—'), items=st.get('items', '—')) }}</td></tr>
{% endif %}
{% if st.injects is defined %}
<tr><th>{{ t('ex_injects') }}</th><td>{{ t('ex_injects_text', sent=st.injects, failed=st.get('injects_failed', 0)) }}</td></tr>
{% endif %}
{% if st.drift_ms is mapping and st.drift_ms.get('count') %}
<tr><th>{{ t('ex_drift') }}</th><td>p50 {{ '%.1f' % st.drift_ms.p50 }} ms · p99 {{ '%.1f' % st.drift_ms.p99 }} ms · max {{ '%.1f' % st.drift_ms.max }} ms</td></tr>
{% endif %}
{% if st.wall_s is defined %}
<tr><th>{{ t('ex_wall') }}</th><td>{{ '%.1f' % st.wall_s }} s</td></tr>
{% endif %}
{% if st.error %}
<tr class="missed"><th>{{ t('ex_error') }}</th><td>{{ st.error }}</td></tr>
{% endif %}
</table>
{% endif %}
</section>

<section id="kpis">
<h2>{{ t('kpis') }}</h2>
<table>
<tr><th>{{ t('metric') }}</th><th>{{ t('count') }}</th><th>{{ t('missing') }}</th><th>p50</th><th>p90</th><th>p99</th><th>{{ t('max') }}</th></tr>
{% for key, d in durations %}
<tr><td>{{ t(key) }}</td><td class="num">{{ d.count }}</td><td class="num">{{ d.missing }}</td>
<td class="num">{{ s(d.p50_s) }}</td><td class="num">{{ s(d.p90_s) }}</td><td class="num">{{ s(d.p99_s) }}</td><td class="num">{{ s(d.max_s) }}</td></tr>
{% endfor %}
</table>
<table>
<tr><th>{{ t('metric') }}</th><th>{{ t('target') }}</th><th>{{ t('result') }}</th></tr>
<tr><td>{{ t('nfpa', share_target=share(n.target_share), target='%g' % n.target_s) }}</td>
<td>{{ share(n.target_share) }} ≤ {{ '%g' % n.target_s }} s</td>
{% if n.met is none %}<td class="nodata" id="nfpa-result">{{ t('no_data') }}</td>
{% else %}<td class="{{ 'met' if n.met else 'missed' }}" id="nfpa-result">{{ t('met' if n.met else 'missed') }}:
{{ t('nfpa_value', within=n.within_target, count=k.call_processing.count, target='%g' % n.target_s, share=share(n.share_within_target)) }}</td>{% endif %}</tr>
<tr><td>{{ t('checklist') }}</td><td>100%</td>
<td class="{{ 'nodata' if k.checklist.total == 0 else ('met' if k.checklist.done == k.checklist.total else 'missed') }}">
{{ k.checklist.done }}/{{ k.checklist.total }} ({{ share(k.checklist.share) }})</td></tr>
<tr><td>{{ t('closure') }}</td><td>—</td><td>{{ share(k.closure_rate) }}</td></tr>
</table>
<h3>{{ t('shortfalls') }}</h3>
{% if k.shortfalls %}
<table id="shortfalls">
<tr><th>{{ t('incident') }}</th><th></th><th></th><th>{{ t('sf_required') }}</th><th>{{ t('sf_have') }}</th><th>{{ t('sf_missing') }}</th></tr>
{% for sf in k.shortfalls %}
<tr class="missed"><td>{{ sf.incident_id }}</td><td>{{ t('sf_' ~ sf.kind) }}</td><td>{{ short_name(sf) }}</td>
<td class="num">{{ sf.required }} {{ short_unit(sf) }}</td><td class="num">{{ sf.have }}</td><td class="num">{{ sf.missing }}</td></tr>
{% endfor %}
</table>
{% else %}<p>{{ t('no_shortfalls') }}</p>{% endif %}
</section>

<section id="timeline">
<h2>{{ t('incidents') }}</h2>
<table>
<tr><th>{{ t('incident') }}</th><th>{{ t('type') }}</th><th>{{ t('level') }}</th><th>{{ t('state') }}</th>
<th>{{ t('first_alarm') }}</th><th>{{ t('verified') }}</th><th>{{ t('first_dispatch') }}</th><th>{{ t('first_on_scene') }}</th>
<th>{{ t('resolved') }}</th><th>{{ t('closed') }}</th><th>{{ t('call_processing') }}</th><th>{{ t('teams') }}</th><th>{{ t('plan') }}</th></tr>
{% for row in r.incidents %}
<tr><td><b>{{ row.incident_id }}</b><br>{{ title(row.title, row.incident_type) }}</td><td>{{ incident_type(row.incident_type) }}</td>
<td>{% for step in row.levels %}<span class="lvl{{ step.level|int }}">{{ level(step.level) }}</span>{% if why(step) %} <span class="muted">({{ why(step) }})</span>{% endif %}{% if not loop.last %} → {% endif %}{% endfor %}</td>
<td>{{ state(row.state) }}</td>
<td>{{ when(row.first_alarm_at) }}</td><td>{{ when(row.verified_at) }}</td><td>{{ when(row.first_dispatch_at) }}</td>
<td>{{ when(row.first_on_scene_at) }}</td><td>{{ when(row.resolved_at) }}</td><td>{{ when(row.closed_at) }}</td>
<td class="num">{{ s(row.call_processing_s) }}</td><td>{{ row.teams|join(', ') }}</td>
<td>{{ plan(row.plan_id) if row.plan_id else '—' }}{% if row.checklist %} ({{ row.checklist.done }}/{{ row.checklist.total }}){% endif %}</td></tr>
{% endfor %}
</table>
</section>

<section id="map">
<h2>{{ t('map') }}</h2>
<p class="muted">{{ t('map_note') }}</p>
{% if map_html %}{{ map_html }}{% else %}<p>{{ t('no_positions') }}</p>{% endif %}
</section>

<section id="plots">
<h2>{{ t('plots') }}</h2>
{% if cumulative_html %}<h3>{{ t('plot_cumulative') }}</h3>{{ cumulative_html }}{% endif %}
{% if cp_html %}<h3>{{ t('plot_cp') }}</h3>{{ cp_html }}{% endif %}
{% if not cumulative_html and not cp_html %}<p>{{ t('no_data') }}</p>{% endif %}
</section>

<section id="events">
<h2>{{ t('events') }}</h2>
<p class="muted">{{ t('events_count', n=r.log|length) }}</p>
<table>
<tr><th>{{ t('time') }}</th><th>{{ t('incident') }}</th><th>{{ t('kind') }}</th><th>{{ t('actor') }}</th><th>{{ t('role') }}</th><th>{{ t('summary_col') }}</th><th>{{ t('reason') }}</th></tr>
{% for e in r.log %}
<tr><td>{{ when(e.at) }}</td><td>{{ e.incident_id }}</td><td>{{ kind(e.kind) }}</td><td>{{ actor(e.actor) }}</td><td>{{ role(e.role) }}</td>
<td>{{ summary(e) }}</td><td>{{ why(e) }}</td></tr>
{% endfor %}
</table>
</section>
</body>
</html>
"""
)


def to_html(
    loaded: LoadedReport,
    lang: Lang = "zh",
    *,
    timezone: str = "Asia/Shanghai",
    generated: datetime | None = None,
) -> str:
    """The whole report as one HTML page that needs nothing else (plotly.js inline)."""
    r = loaded.report
    tz: tzinfo = ZoneInfo(timezone)

    def when(value: datetime | str | None) -> str:
        if isinstance(value, str):  # the exercise row travels as JSON (ISO text)
            value = datetime.fromisoformat(value)
        return "—" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    k = r.kpis
    offset = (generated or datetime.now(tz)).astimezone(tz).utcoffset() or timedelta(0)
    hours = offset.total_seconds() / 3600
    return _TEMPLATE.render(
        lang=lang,
        r=r,
        k=k,
        n=k.nfpa_1225,
        exercise=loaded.exercise,
        durations=[
            ("call_processing", k.call_processing),
            ("time_to_dispatch", k.time_to_dispatch),
            ("time_to_on_scene", k.time_to_on_scene),
            ("response", k.response),
        ],
        t=lambda key, **values: t(lang, key, **values),
        s=_fmt_s,
        share=_fmt_share,
        when=when,
        state=lambda st: state_label(st, lang),
        level=lambda lv: level_label(ResponseLevel(lv), lang),
        incident_type=lambda ty: type_label(ty, lang),
        summary=lambda e: event_summary(e, lang, loaded.words),
        why=lambda e: entry_reason(e, lang),
        kind=lambda k: kind_label(k, lang),
        title=lambda ti, ty: title_label(ti, ty, lang),
        scope_name=(
            title_label(r.scope.name, r.incidents[0].incident_type, lang)
            if r.scope.kind == "incident" and r.incidents
            else r.scope.name
        ),
        role=lambda ro: role_label(ro, lang),
        actor=lambda a: actor_label(a, lang),
        plan=lambda p: word(loaded.words, f"plan:{p}", lang, p),
        short_name=lambda sf: (
            word(loaded.words, f"item:{sf.key}", lang, sf.key)
            if sf.kind == "supply"
            else t(lang, f"team_type_{sf.key}")
            if f"team_type_{sf.key}" in CATALOGUE[lang]
            else sf.key
        ),
        short_unit=lambda sf: word(loaded.words, f"unit:{sf.key}", lang, t(lang, f"unit_{sf.unit}")),
        tz_name=f"UTC{hours:+g}" if lang == "zh" else f"{timezone} (UTC{hours:+g})",
        generated=generated or datetime.now(tz),
        plotly_js=_plotly_js(),
        map_html=_fig_html(_map_figure(r, loaded.map, lang, tz)),
        cumulative_html=_fig_html(_cumulative_figure(r, lang, tz)),
        cp_html=_fig_html(_call_processing_figure(r, lang)),
    )


def filename(loaded: LoadedReport, ext: str) -> str:
    """``after-action-EX-1.html``: ids are [A-Za-z0-9_.:-]; ':' is not allowed in
    Windows file names."""
    return f"after-action-{loaded.report.scope.id.replace(':', '_')}.{ext}"
