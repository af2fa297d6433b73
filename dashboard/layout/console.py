"""The console: the operator's desk (map, alarm inbox, queue, detail, boards, charts) and the wall
display (map, queue and KPI tiles in large type, nothing to click)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.context import Console
from dashboard.i18n import Lang, catalogue, t
from dashboard.i18n import data as words
from dashboard.layout import data_attrs
from dashboard.layout import duty as duty_layout
from dashboard.layout import exercise as ex
from dashboard.layout import reporting as reporting_layout
from dashboard.layout import wall as wall_parts
from dashboard.layout import warnings as warnings_layout
from dashboard.layout.inbox import inbox_panel
from dashboard.layout.login import lang_switch
from dashboard.layout.map import map_panel

SIDE_TABS = ("detail", "teams", "reserve", "charts")


def stores(console: Console, page: str, lang: Lang) -> list[Any]:
    return [
        dcc.Store(id=ids.CONFIG, data=console.browser_config(page)),
        dcc.Store(id=ids.I18N, data=catalogue(lang)),
        dcc.Store(id=ids.LIVE_STATUS),
        dcc.Store(id=ids.LIVE_TEAMS),
        dcc.Store(id=ids.SELECTED),
        dcc.Store(id=ids.DETAIL_TICK, data=0),
        dcc.Store(id=ids.KPI_TICK, data=0),
        dcc.Store(id=ids.RESERVE_TICK, data=0),
        dcc.Store(id=ids.HEAT_TICK, data=0),
        dcc.Store(id=ids.WARNING_TICK, data=0),
        dcc.Store(id=ids.REGISTRY_TICK, data=0),
        dcc.Store(id=ids.WARNINGS),
        dcc.Store(id=ids.DETAIL_META),
        dcc.Store(id=ids.MAP_FOCUS),
        dcc.Store(id=ids.CLOSE_GUARD),
    ]


def header(lang: Lang, who: Me, *, wall: bool) -> html.Header:
    role = t(lang, f"role.{who.role}")
    links = []
    if who.works_the_desk:
        links.append(
            dcc.Link(
                t(lang, "nav.desk" if wall else "nav.wall"),
                href="/" if wall else "/wall",
                className="nav-link",
            )
        )
    return html.Header(
        className="topbar",
        children=[
            html.Div(
                className="brand",
                children=[
                    html.Span(t(lang, "app.title"), className="brand-title"),
                    html.Span(t(lang, "app.exercise_only"), className="badge badge-exercise")
                    if who.drills_only
                    else None,
                ],
            ),
            html.Div(id=ids.CONNECTION, className="connection", children=t(lang, "live.connecting")),
            html.Div(id=ids.CLOCK, className="clock"),
            html.Div(className="user", children=f"{words.user_label(lang, who)} · {role}"),
            *links,
            lang_switch(lang),
            html.Button(t(lang, "nav.logout"), id=ids.LOGOUT, n_clicks=0, className="btn btn-ghost"),
        ],
    )


def kpi_bar(lang: Lang) -> html.Div:
    return html.Div(
        className="kpis",
        children=[
            html.Div(id=ids.KPI_LIVE, className="kpi-group kpi-live"),
            html.Div(
                id=ids.KPI_TILES,
                className="kpi-group",
                children=html.Div(t(lang, "common.loading"), className="muted"),
            ),
        ],
    )


def sound_controls(lang: Lang) -> html.Span:
    """Browsers play sound only after a click: the operator enables the tone once per
    session; mute is kept per desk. Both labels of each are drawn, the page's state
    (<html data-sound data-mute>) shows one."""
    return html.Span(
        className="queue-sound-controls",
        children=[
            html.Button(
                id=ids.QUEUE_SOUND,
                className="queue-sound",
                title=t(lang, "queue.sound_help"),
                children=[
                    html.Span(t(lang, "queue.sound_enable"), className="when-off"),
                    html.Span(t(lang, "queue.sound_on"), className="when-on"),
                ],
            ),
            html.Button(
                id=ids.QUEUE_MUTE,
                className="queue-mute",
                children=[
                    html.Span(t(lang, "queue.mute"), className="when-off"),
                    html.Span(t(lang, "queue.muted"), className="when-on"),
                ],
            ),
        ],
    )


def queue_panel(lang: Lang, *, wall: bool = False) -> html.Section:
    title: list[Any] = [t(lang, "queue.title"), html.Span(id=ids.QUEUE_COUNT, className="count")]
    if wall:  # the wall's queue rotates page by page (assets/50-wuwang-wall.js)
        title.append(wall_parts.pager(wall_parts.QUEUE_PAGER))
    else:  # the desk announces (assets/25-wuwang-announce.js): the tone is switched on here
        title.append(sound_controls(lang))
    return html.Section(
        className="queue-panel",
        children=[
            html.H2(children=title),
            html.Div(
                className="queue-head",
                children=[
                    html.Span(t(lang, "queue.col_level")),
                    html.Span(t(lang, "queue.col_incident")),
                    html.Span(t(lang, "queue.col_age")),
                    html.Span(t(lang, "queue.col_timer")),
                ],
            ),
            # Rows are drawn by the browser straight into this element (assets/20-wuwang-live.js):
            # no Dash children, so React never touches them.
            html.Div(id=ids.QUEUE, className="queue", **data_attrs(empty=t(lang, "live.connecting"))),
        ],
    )


def side_panels(lang: Lang, who: Me) -> list[Any]:
    """The side panel's tabs and what they show, but the exercises panel (its callback
    also draws the banner above the page, so it is on the page from the start)."""
    # 演练: the exercises panel's tab for planners, commanders and admins (layout/exercise.py)
    tabs = (*SIDE_TABS, "exercises") if who.may_run_exercises else SIDE_TABS
    if who.may("duty.read"):  # 值班值守: the duty desk's own tab
        tabs = (*tabs, "duty")
    return [
        warnings_layout.warning_panel(lang, who),
        dcc.RadioItems(
            id=ids.SIDE_TABS,
            className="tabs",
            inline=True,
            value="detail",
            options=[{"label": t(lang, f"tab.{name}"), "value": name} for name in tabs],
        ),
        html.Div(
            id=ids.PANEL_DETAIL,
            className="panel",
            children=[
                html.Div(id=ids.FEEDBACK, className="feedback", role="status"),
                html.Div(id=ex.INCIDENT_REPORTS, className="row wrap report-links"),
                html.Div(id=ids.DETAIL, children=html.P(t(lang, "detail.none"), className="muted")),
            ],
        ),
        html.Div(
            id=ids.PANEL_TEAMS,
            className="panel",
            style={"display": "none"},
            children=[
                html.Div(id=ids.TEAMS_BOARD),
            ],
        ),
        html.Div(
            id=ids.PANEL_RESERVE,
            className="panel",
            style={"display": "none"},
            children=[
                html.Div(id=ids.RESERVE_BOARD, children=html.P(t(lang, "common.loading"), className="muted")),
            ],
        ),
        html.Div(
            id=ids.PANEL_CHARTS,
            className="panel",
            style={"display": "none"},
            children=[
                html.H3(t(lang, "chart.calls_title")),
                # The graph (and Plotly with it, 3.5 MB) is drawn when the tab is opened, not at
                # load: the wall and the desk come up faster.
                html.Div(id=ids.CHART_CALLS, className="chart"),
            ],
        ),
        duty_layout.duty_panel(lang, who),
    ]


def side_panel(lang: Lang, who: Me, *, deferred: bool = False) -> html.Aside:
    """The desk's side panel; ``deferred``: its tabs are an empty slot, filled once the
    map is up (:func:`deferred_panels`)."""
    if deferred:
        children = [html.Div(id=ids.SIDE_SLOT, className="deferred-slot"), ex.exercise_panel(lang, who)]
    else:
        *tabs, duty = side_panels(lang, who)
        children = [*tabs, ex.exercise_panel(lang, who), duty]
    return html.Aside(className="side", children=children)


def deferred_panels(lang: Lang, who: Me) -> tuple[Any, list[Any]]:
    """What the desk draws once its map is up: the alarm inbox and the side panel's tabs.
    Their components' first callbacks (a dozen requests, and the drawing of what they
    answer) would otherwise share the browser's one thread with the map's first draw
    (docs/benchmarks.md, "Console")."""
    return inbox_panel(lang, who), side_panels(lang, who)


def console_page(
    console: Console,
    lang: Lang,
    who: Me,
    *,
    wall: bool,
    urls: dict[str, str] | None = None,
    counts: dict[str, dict[str, int]] | None = None,
    networks_on: bool = False,
    grid_on: bool = False,
    deferred: bool = False,
) -> html.Div:
    """``deferred``: the desk's inbox and side tabs are empty slots, filled once the map
    is up (:func:`deferred_panels`, callbacks/auth.py); the router draws it so."""
    page = "wall" if wall else "desk"
    # The desk: the alarm inbox above the incident queue (layout/inbox.py); the wall shows
    # the queue only (nothing to click there).
    inbox: Any = (
        html.Div(id=ids.INBOX_SLOT, className="deferred-slot inbox-slot")
        if deferred
        else inbox_panel(lang, who)
    )
    left: Any = (
        queue_panel(lang, wall=True)
        if wall
        else html.Div(className="left-column", children=[inbox, queue_panel(lang)])
    )
    body: list[Any] = [
        left,
        map_panel(
            console.settings,
            lang,
            wall=wall,
            urls=urls,
            counts=counts,
            networks_on=networks_on,
            grid_on=grid_on,
            # 预警: whoever may draft draws the area on the desk's map
            draw=not wall and who.may("warning.draft"),
        ),
    ]
    if wall:
        body.append(wall_parts.unit_board(lang))
    else:
        body.append(side_panel(lang, who, deferred=deferred))
    return html.Div(
        className=f"console {page}" + (" exercise" if who.drills_only else ""),
        children=[
            *stores(console, page, lang),
            *ex.exercise_stores(who),
            # 演练 EXERCISE: across the top, above everything, in exercise mode only
            ex.banner(lang, who),
            header(lang, who, wall=wall),
            # 预警: the active warnings by colour, the most severe first (callbacks/warnings.py)
            html.Div(id=ids.WARNING_BANNER, className="warning-banner", hidden=True, role="alert"),
            html.Div(
                id=ids.STALE_BANNER, className="stale-banner", hidden=True, children=t(lang, "live.stale")
            ),
            kpi_bar(lang),
            # 值班: who leads and who is on duty, on the wall (the desk has its duty tab)
            duty_layout.wall_strip(lang) if wall and who.may("duty.read") else None,
            # 信息报送: every running report clock, red when overdue (the wall only)
            reporting_layout.wall_strip(lang) if wall else None,
            html.Main(className="console-main", children=body),
            # the wall has no side panel: its exercise components, hidden, for the callbacks
            ex.exercise_panel(lang, who, hidden=True) if wall else None,
        ],
    )
