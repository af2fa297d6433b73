"""Exercise mode (演练模式): the striped "演练 EXERCISE" banner across the desk and the
wall, the exercises panel (list, start, play/pause/seek/speed, purge, after-action
report links) and the incident detail's report links. Pure: the callbacks in
``dashboard.callbacks.exercise`` fetch, these draw.

Who sees what (docs/console.md, "The console in exercise mode"):

- planners: always in exercise mode — the banner, and the map, queue and KPI tiles of
  the exercise they watch (or of every exercise until they choose one);
- admins: the live console, or one exercise's when they choose to watch it;
- commanders: the exercises panel (start, steer, purge, reports) but a live console;
- operators: live only — no banner, no panel, no exercise object ever.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard.api import Me
from dashboard.i18n import Lang, t
from dashboard.layout import data_attrs
from wuwang.exercises import EXERCISE_ID_RE, MAX_SPEED, MIN_SPEED

# Component ids (the browser code, assets/40-wuwang-exercise.js, uses the same strings).
WATCH = "exercise-watch"  # the exercise chosen in the panel (an id; validated on every use)
SCOPE = "exercise-scope"  # what the live picture shows: {"mode": live|all|one, "id"} (server-set)
SCOPE_APPLIED = "exercise-scope-applied"  # the browser's receipt (a clientside output)
TICK = "exercise-tick"  # bumped by the live stream when an "exercise" change arrives
INTERVAL = "exercise-interval"  # 1 s, only while the exercises panel is open
BANNER_INTERVAL = "exercise-banner-interval"  # 5 s, only in exercise mode (the banner's status)
BANNER = "exercise-banner"
PANEL = "panel-exercises"
LIST = "exercise-list"
FEEDBACK = "exercise-feedback"
STATUS = "exercise-status"
CONTROLS = "exercise-controls"
REPORTS = "exercise-reports"
SEEK = "exercise-seek"
SEEK_LABEL = "exercise-seek-label"
SEEK_BUTTON = "exercise-seek-button"
SPEED = "exercise-speed"
SPEED_BUTTON = "exercise-speed-button"
PURGE = "exercise-purge"
PURGE_CONFIRM = "exercise-purge-confirm"
UNWATCH = "exercise-unwatch"
NEW_KIND = "exercise-new-kind"
NEW_SCENARIO = "exercise-new-scenario"
NEW_START = "exercise-new-start"
NEW_END = "exercise-new-end"
NEW_DATASET = "exercise-new-dataset"
NEW_SPEED = "exercise-new-speed"
NEW_BUTTON = "exercise-new-button"
NEW_SCENARIO_ROW = "exercise-new-scenario-row"
NEW_REPLAY_ROW = "exercise-new-replay-row"
INCIDENT_REPORTS = "incident-report-links"
# Pattern-matching buttons.
CONTROL = "ex-control"  # {"type": "ex-control", "action": "play" | "pause" | "stop"}
CHOOSE = "ex-choose"  # {"type": "ex-choose", "id": exercise id}

INCIDENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
KINDS = ("scenario", "replay", "import")
STATUSES = ("planned", "running", "paused", "finished", "failed", "purged")
ACTIVE = ("planned", "running", "paused")


def speed_row(lang: Lang, input_id: str, button: html.Button) -> html.Div:
    """A speed field (×1–×100) with the button that applies it."""
    return html.Div(
        className="row",
        children=[
            html.Label(t(lang, "exercise.speed"), htmlFor=input_id),
            dcc.Input(
                id=input_id, type="number", min=MIN_SPEED, max=MAX_SPEED, step=1, value=10, className="input"
            ),
            button,
        ],
    )


def valid_exercise_id(value: Any) -> str | None:
    return value if isinstance(value, str) and EXERCISE_ID_RE.fullmatch(value) else None


def valid_incident_id(value: Any) -> str | None:
    return value if isinstance(value, str) and INCIDENT_ID.fullmatch(value) else None


# --- scope: what the live picture shows -------------------------------------------------


def scope_for(who: Me, watched: str | None) -> dict[str, Any]:
    """The live picture's scope for ``who`` watching ``watched`` (an id the command
    service has just confirmed, or None). Operators and commanders: always live."""
    if who.drills_only:
        return {"mode": "one", "id": watched} if watched else {"mode": "all", "id": None}
    if who.may_watch_exercises and watched:
        return {"mode": "one", "id": watched}
    return {"mode": "live", "id": None}


def initial_scope(who: Me) -> dict[str, Any]:
    return scope_for(who, None)


def kpi_exercise(who: Me, scope: Any) -> tuple[bool, str | None]:
    """For the KPI tiles: (exercise mode?, the exercise id to ask /kpis for). The scope
    comes from the browser, so only its id is taken, only for a role that may watch, and
    the command service authorises the id again."""
    if not who.may_watch_exercises:
        return False, None
    ident = valid_exercise_id(scope.get("id")) if isinstance(scope, dict) else None
    if who.drills_only:
        return True, ident
    return (ident is not None), ident


# --- time -------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def span_of(ex: dict[str, Any]) -> tuple[float | None, float | None]:
    """(position, length) of an exercise in exercise seconds, where known."""
    start, end, pos = (
        parse_time(ex.get("sim_start")),
        parse_time(ex.get("sim_end")),
        parse_time(ex.get("sim_position")),
    )
    length = (end - start).total_seconds() if start and end and end >= start else None
    position = (pos - start).total_seconds() if start and pos else None
    if position is not None:
        position = max(0.0, position if length is None else min(position, length))
    return position, length


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(max(0, round(seconds)))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def clock(value: Any, tz: ZoneInfo) -> str:
    at = parse_time(value)
    return at.astimezone(tz).strftime("%m-%d %H:%M") if at else "—"


def sim_clock(value: Any, tz: ZoneInfo) -> str:
    at = parse_time(value)
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if at else "—"


def speed_text(value: Any) -> str:
    try:
        speed = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"×{speed:g}"


def status_label(lang: Lang, status: Any) -> str:
    return t(lang, f"exercise.status.{status}") if status in STATUSES else str(status or "—")


def kind_label(lang: Lang, kind: Any) -> str:
    return t(lang, f"exercise.kind.{kind}") if kind in KINDS else str(kind or "—")


# --- the banner -------------------------------------------------------------------------


def banner_children(lang: Lang, ex: dict[str, Any] | None, tz: ZoneInfo) -> list[Any]:
    """The banner's text: 演练 EXERCISE, then which exercise, its status, speed and
    position (or that none is chosen yet)."""
    mark = html.Span(t(lang, "exercise.banner_mark"), className="exercise-mark")
    if ex is None:
        return [mark, html.Span(t(lang, "exercise.banner_none"), className="exercise-name")]
    position, length = span_of(ex)
    status = str(ex.get("status") or "")
    return [
        mark,
        html.Span(
            className="exercise-name",
            children=[
                html.Span(str(ex.get("name") or ex.get("id")), className="exercise-title"),
                html.Span(str(ex.get("id")), className="exercise-id mono"),
            ],
        ),
        html.Span(status_label(lang, status), className=f"exercise-state status-{status}"),
        html.Span(speed_text(ex.get("speed")), className="exercise-speed", title=t(lang, "exercise.speed")),
        html.Span(
            className="exercise-position mono",
            title=sim_clock(ex.get("sim_position"), tz),
            children=f"{hms(position)} / {hms(length)}",
        ),
    ]


def banner(lang: Lang, who: Me) -> html.Div:
    """Drawn on every console page; shown only in exercise mode (planners from the
    start; an admin once watching). The callback fills it."""
    shown = who.drills_only
    return html.Div(
        id=BANNER,
        className="exercise-banner",
        hidden=not shown,
        role="status",
        **data_attrs(exercise="", status=""),
        children=banner_children(lang, None, ZoneInfo("UTC")) if shown else [],
    )


# --- the panel --------------------------------------------------------------------------


def exercise_rows(
    lang: Lang, who: Me, rows: list[dict[str, Any]], chosen: str | None, tz: ZoneInfo
) -> html.Div:
    if not rows:
        return html.Div(html.P(t(lang, "exercise.list_empty"), className="muted"))
    body = []
    for ex in rows:
        ident = str(ex.get("id"))
        position, length = span_of(ex)
        status = str(ex.get("status") or "")
        body.append(
            html.Tr(
                className="exercise-row" + (" chosen" if ident == chosen else ""),
                **data_attrs(exercise=ident, status=status),
                children=[
                    html.Td(
                        [
                            html.Div(str(ex.get("name") or ident), className="ex-name"),
                            html.Div(ident, className="mono small muted"),
                        ]
                    ),
                    html.Td(kind_label(lang, ex.get("kind"))),
                    html.Td(html.Span(status_label(lang, status), className=f"ex-status status-{status}")),
                    html.Td(speed_text(ex.get("speed")), className="num"),
                    html.Td(f"{hms(position)} / {hms(length)}", className="num mono small"),
                    html.Td(
                        html.Button(
                            t(lang, "exercise.watch" if who.may_watch_exercises else "exercise.choose"),
                            id={"type": CHOOSE, "id": ident},
                            n_clicks=0,
                            className="btn btn-small" + (" btn-primary" if ident == chosen else ""),
                            disabled=status == "purged",
                        )
                    ),
                ],
            )
        )
    return html.Div(
        html.Table(
            className="table exercise-table",
            children=[
                html.Thead(
                    html.Tr(
                        [
                            html.Th(t(lang, "exercise.col_name")),
                            html.Th(t(lang, "exercise.col_kind")),
                            html.Th(t(lang, "exercise.col_status")),
                            html.Th(t(lang, "exercise.col_speed")),
                            html.Th(t(lang, "exercise.col_position")),
                            html.Th(""),
                        ]
                    )
                ),
                html.Tbody(body),
            ],
        )
    )


def report_links(lang: Lang, kind: str, ident: str) -> list[Any]:
    """复盘报告 links: the HTML in a new tab, the HTML and the CSV as files. They carry
    no token: assets/40-wuwang-exercise.js fetches them with the session's token."""
    base = f"/report/{kind}/{ident}"
    tongue = "zh" if lang == "zh_CN" else "en"  # the report in the console's language
    return [
        html.A(
            t(lang, "report.open"),
            href=f"{base}.html?lang={tongue}",
            target="_blank",
            className="btn btn-small btn-primary report-link",
            **data_attrs(report=f"{base}.html?lang={tongue}", report_mode="open"),
        ),
        html.A(
            t(lang, "report.download_html"),
            href=f"{base}.html?lang={tongue}&download=1",
            className="btn btn-small report-link",
            **data_attrs(report=f"{base}.html?lang={tongue}&download=1", report_mode="download"),
        ),
        html.A(
            t(lang, "report.download_csv"),
            href=f"{base}.csv?lang={tongue}",
            className="btn btn-small report-link",
            **data_attrs(report=f"{base}.csv?lang={tongue}", report_mode="download"),
        ),
    ]


def status_block(lang: Lang, ex: dict[str, Any] | None, tz: ZoneInfo) -> list[Any]:
    """The chosen exercise: status, speed, position with a progress bar."""
    if ex is None:
        return [html.P(t(lang, "exercise.choose_hint"), className="muted")]
    position, length = span_of(ex)
    pct = 0.0 if not length or position is None else min(100.0, 100.0 * position / length)
    status = str(ex.get("status") or "")
    stats = ex.get("stats") if isinstance(ex.get("stats"), dict) else {}
    facts = [
        (t(lang, "exercise.col_kind"), kind_label(lang, ex.get("kind"))),
        (t(lang, "exercise.source"), str(ex.get("source") or "—")),
        (t(lang, "exercise.created_by"), str(ex.get("created_by") or "—")),
        (t(lang, "exercise.started"), clock(ex.get("started_at"), tz)),
        (t(lang, "exercise.sim_time"), sim_clock(ex.get("sim_position") or ex.get("sim_start"), tz)),
    ]
    if isinstance(stats, dict) and stats.get("injects_sent") is not None:
        facts.append((t(lang, "exercise.injects"), str(stats.get("injects_sent"))))
    return [
        html.Div(
            className="ex-head",
            children=[
                html.Strong(str(ex.get("name") or ex.get("id"))),
                html.Span(status_label(lang, status), className=f"ex-status status-{status}"),
                html.Span(speed_text(ex.get("speed")), className="ex-speed"),
            ],
        ),
        html.Div(
            className="ex-progress",
            title=f"{pct:.0f}%",
            children=html.Div(className="ex-progress-bar", style={"width": f"{pct:.1f}%"}),
        ),
        html.Div(
            f"{hms(position)} / {hms(length)}", className="ex-position mono", **data_attrs(seconds=position)
        ),
        html.Dl(className="ex-facts", children=[x for k, v in facts for x in (html.Dt(k), html.Dd(v))]),
    ]


def controls(lang: Lang) -> html.Div:
    """Play, pause, stop; seek over the exercise's span; speed 1–100; purge (confirmed);
    the after-action report. Drawn once, shown while an exercise is chosen."""
    return html.Div(
        id=CONTROLS,
        className="ex-controls",
        style={"display": "none"},
        children=[
            html.Div(
                className="row wrap",
                children=[
                    html.Button(
                        t(lang, f"exercise.action.{a}"),
                        id={"type": CONTROL, "action": a},
                        n_clicks=0,
                        className="btn"
                        + (" btn-primary" if a == "play" else " btn-warning" if a == "stop" else ""),
                    )
                    for a in ("play", "pause", "stop")
                ],
            ),
            html.Label(t(lang, "exercise.seek"), htmlFor=SEEK),
            dcc.Slider(
                id=SEEK,
                min=0,
                max=3600,
                step=1,
                value=0,
                marks=None,
                updatemode="mouseup",
                allow_direct_input=False,
                className="ex-seek",
                tooltip={"placement": "bottom", "always_visible": False},
            ),
            html.Div(
                className="row",
                children=[
                    html.Span(id=SEEK_LABEL, className="mono"),
                    html.Button(
                        t(lang, "exercise.seek_go"), id=SEEK_BUTTON, n_clicks=0, className="btn btn-small"
                    ),
                ],
            ),
            speed_row(
                lang,
                SPEED,
                html.Button(
                    t(lang, "exercise.speed_set"), id=SPEED_BUTTON, n_clicks=0, className="btn btn-small"
                ),
            ),
            html.Div(id=REPORTS, className="row wrap ex-reports"),
            html.Div(
                className="row",
                children=[
                    html.Button(t(lang, "exercise.purge"), id=PURGE, n_clicks=0, className="btn btn-danger"),
                    html.Button(
                        t(lang, "exercise.unwatch"), id=UNWATCH, n_clicks=0, className="btn btn-ghost"
                    ),
                ],
            ),
            dcc.ConfirmDialog(id=PURGE_CONFIRM, message=t(lang, "exercise.purge_confirm")),
        ],
    )


def new_exercise_form(lang: Lang) -> html.Details:
    return html.Details(
        className="ex-new",
        open=True,
        children=[
            html.Summary(t(lang, "exercise.new")),
            dcc.RadioItems(
                id=NEW_KIND,
                className="tabs ex-kinds",
                inline=True,
                value="scenario",
                options=[
                    {"label": t(lang, "exercise.new_scenario"), "value": "scenario"},
                    {"label": t(lang, "exercise.new_replay"), "value": "replay"},
                ],
            ),
            html.Div(
                id=NEW_SCENARIO_ROW,
                children=[
                    html.Label(t(lang, "exercise.scenario"), htmlFor=NEW_SCENARIO),
                    dcc.Dropdown(id=NEW_SCENARIO, className="dropdown", clearable=False, options=[]),
                ],
            ),
            html.Div(
                id=NEW_REPLAY_ROW,
                style={"display": "none"},
                children=[
                    html.Label(t(lang, "exercise.dataset"), htmlFor=NEW_DATASET),
                    dcc.Dropdown(id=NEW_DATASET, className="dropdown", options=[]),
                    html.Label(t(lang, "exercise.window"), htmlFor=NEW_START),
                    html.Div(
                        className="row",
                        children=[
                            dcc.Input(
                                id=NEW_START,
                                type="text",
                                className="input",
                                placeholder="2026-11-23 19:30",
                                debounce=True,
                            ),
                            html.Span("→"),
                            dcc.Input(
                                id=NEW_END,
                                type="text",
                                className="input",
                                placeholder="2026-11-23 21:30",
                                debounce=True,
                            ),
                        ],
                    ),
                    html.P(t(lang, "exercise.window_help"), className="muted small"),
                ],
            ),
            speed_row(
                lang,
                NEW_SPEED,
                html.Button(
                    t(lang, "exercise.start"), id=NEW_BUTTON, n_clicks=0, className="btn btn-primary"
                ),
            ),
        ],
    )


def exercise_panel(lang: Lang, who: Me, *, hidden: bool = False) -> html.Div:
    """The side panel's 演练 tab (planners, commanders, admins). It is drawn on every
    console page — hidden, and without a tab, where it is not offered (the wall; for
    operators) — so that its callbacks always find their components; they refuse anyone
    but planners, commanders and admins."""
    return html.Div(
        id=PANEL,
        className="panel exercise-panel",
        style={"display": "none"},
        hidden=hidden or not who.may_run_exercises,
        children=[
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            html.H3(t(lang, "exercise.chosen")),
            html.Div(id=STATUS, children=status_block(lang, None, ZoneInfo("UTC"))),
            controls(lang),
            html.H3(t(lang, "exercise.list")),
            html.Div(id=LIST, children=html.P(t(lang, "common.loading"), className="muted")),
            new_exercise_form(lang),
        ],
    )


def exercise_stores(who: Me) -> list[Any]:
    """The stores and timers of exercise mode (on every console page, so that callbacks
    always find their components; for operators they stay idle)."""
    return [
        dcc.Store(id=WATCH, storage_type="session"),
        dcc.Store(id=SCOPE, data=initial_scope(who)),
        dcc.Store(id=SCOPE_APPLIED),
        dcc.Store(id=TICK, data=0),
        dcc.Interval(id=INTERVAL, interval=1000, disabled=True),
        # The banner's status: polled every 5 s in exercise mode (the wall has no panel).
        dcc.Interval(id=BANNER_INTERVAL, interval=5000, disabled=not who.drills_only),
    ]


def incident_reports(lang: Lang, incident_id: str | None) -> list[Any]:
    if incident_id is None:
        return []
    return [
        html.Span(t(lang, "report.incident"), className="muted"),
        *report_links(lang, "incident", incident_id),
    ]
