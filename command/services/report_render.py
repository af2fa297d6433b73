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

zh-CN by default, English with ``lang="en"``: every string of the report is in the
shared catalogues (``wuwang/i18n``): the report's own under ``aar.<key>``, the names of
states, types, levels, roles, team types and event kinds as the console says them.
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
from command.domain.incidents import IncidentState
from command.domain.vocabulary import ResponseLevel
from command.services.reports import LoadedReport, MapLayer
from wuwang import i18n

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

# --- words: the shared catalogues (wuwang/i18n), ``aar.<key>`` for the report's own -----


def _catalogue_lang(lang: Lang) -> i18n.Lang:
    return "zh_CN" if lang == "zh" else "en"


def said(lang: Lang, key: str, **values: Any) -> str:
    """A catalogue key's words in the report's language; a placeholder without a value
    is left empty (a fact the event did not record), a missing key shows as itself."""
    text = i18n.catalogue(_catalogue_lang(lang)).get(key)
    if text is None:
        return key
    return text.format_map(defaultdict(str, values)) if values else text


def t(lang: Lang, key: str, **values: Any) -> str:
    """The report's own words (``aar.<key>`` in the catalogues); the bare key when it
    has none."""
    return said(lang, f"aar.{key}", **values) if i18n.has(_catalogue_lang(lang), f"aar.{key}") else key


def _named(lang: Lang, key: str, fallback: str) -> str:
    return said(lang, key) if i18n.has(_catalogue_lang(lang), key) else fallback


def parse_lang(value: str | None) -> Lang:
    return "en" if (value or "").lower().startswith("en") else "zh"


def state_label(state: IncidentState | str, lang: Lang) -> str:
    return said(lang, f"state.{IncidentState(state)}")


def type_label(incident_type: str, lang: Lang) -> str:
    """An incident type in the reader's words (the type's id when it is not one we know)."""
    return i18n.name_of(_catalogue_lang(lang), "type", incident_type)


def level_label(level: ResponseLevel, lang: Lang) -> str:
    return t(lang, "level_name", roman=level.name, name=said(lang, f"level.{level.value}"))


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
    return _named(lang, f"event.{kind}", kind)


def role_label(role: str, lang: Lang) -> str:
    return _named(lang, f"role.{role}", role)


def actor_label(actor: str, lang: Lang) -> str:
    """A user's id as it is; the command service itself (``system:correlator``) in words."""
    return said(lang, "actor.system") if actor == "system" or actor.startswith("system:") else actor


def entry_reason(entry: aa.LogEntry | aa.LevelStep, lang: Lang) -> str:
    """An event's reason: a system-written one in the report's language (its code, from
    command/domain/reasons.py), else the text as written."""
    if entry.why is not None:
        return reasons.render(entry.why, _catalogue_lang(lang))
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
    key = f"aar.ev.{entry.kind}"
    return said(lang, key, **facts) if i18n.has(_catalogue_lang(lang), key) else entry.kind


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


def _fmt_s(value: float | None, lang: Lang) -> str:
    """A duration in the report's words (秒/分钟 in Chinese): seconds up to ten minutes."""
    if value is None:
        return "—"
    if value < 600:
        return said(lang, "unit.seconds", n=f"{value:.0f}")
    return said(lang, "unit.minutes", n=f"{value / 60:.1f}")


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
        s=lambda value: _fmt_s(value, lang),
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
            else _named(lang, f"team_type.{sf.key}", sf.key)
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
