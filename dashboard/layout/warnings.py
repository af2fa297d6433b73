"""预警 on the desk: a folded panel to draft a warning — event type (the command
service's vocabulary, GB/T 35561), level, headline, texts, hours in force, and the area
as districts, grid cells or polygon points —, to see what is inside before approval,
and the warnings in force with approve / cancel for whoever may (callbacks/warnings.py).
"""

from __future__ import annotations

from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.i18n import Lang, t

LEVELS = ("blue", "yellow", "orange", "red")


def warning_panel(lang: Lang, who: Me) -> html.Details | None:
    if not who.may("warning.draft"):
        return None
    return html.Details(
        id=ids.WARNING_PANEL,
        className="warning-panel panel",
        children=[
            html.Summary(t(lang, "warning.panel")),
            html.Div(
                className="warning-form",
                children=[
                    dcc.Dropdown(
                        id=ids.WARNING_EVENT,
                        className="dropdown",
                        placeholder=t(lang, "warning.event_type"),
                        options=[],
                    ),
                    dcc.RadioItems(
                        id=ids.WARNING_LEVEL,
                        className="warning-levels",
                        inline=True,
                        value="yellow",
                        options=[{"label": t(lang, f"warning.level.{lv}"), "value": lv} for lv in LEVELS],
                    ),
                    dcc.Input(
                        id=ids.WARNING_HEADLINE,
                        className="input",
                        type="text",
                        maxLength=120,
                        placeholder=t(lang, "warning.headline"),
                    ),
                    dcc.Textarea(
                        id=ids.WARNING_DESCRIPTION,
                        className="input",
                        placeholder=t(lang, "warning.description"),
                    ),
                    dcc.Textarea(
                        id=ids.WARNING_INSTRUCTION,
                        className="input",
                        placeholder=t(lang, "warning.instruction"),
                    ),
                    html.Label(t(lang, "warning.hours")),
                    # text, not number: a number field's spin buttons speak the browser's language
                    dcc.Input(
                        id=ids.WARNING_HOURS,
                        className="input",
                        type="text",
                        inputMode="numeric",
                        pattern="[0-9]{1,3}",
                        value="6",
                    ),
                    dcc.Dropdown(
                        id=ids.WARNING_DISTRICTS,
                        className="dropdown",
                        multi=True,
                        placeholder=t(lang, "warning.districts"),
                        options=[],
                    ),
                    dcc.Input(
                        id=ids.WARNING_CELLS,
                        className="input",
                        type="text",
                        placeholder=t(lang, "warning.cells"),
                    ),
                    # drawn on the map (layout/map.py draw_control) or typed, from the keyboard
                    html.P(t(lang, "warning.draw_hint"), className="muted small warning-draw-hint"),
                    dcc.Textarea(
                        id=ids.WARNING_POLYGON, className="input", placeholder=t(lang, "warning.polygon")
                    ),
                    html.Div(
                        className="row",
                        children=[
                            html.Button(t(lang, "warning.count"), id=ids.WARNING_COUNT, className="btn"),
                            html.Button(
                                t(lang, "warning.draft"), id=ids.WARNING_DRAFT, className="btn primary"
                            ),
                        ],
                    ),
                    html.Div(id=ids.WARNING_INSIDE, className="warning-inside muted small"),
                    html.Div(id=ids.WARNING_FEEDBACK, className="feedback", role="status"),
                ],
            ),
            html.Div(id=ids.WARNING_LIST, className="warning-list"),
        ],
    )
