"""值班值守 on the console: the desk's duty panel (who is on duty, the duty log with a
free-entry form, the leader's instructions and their follow-up, the handover with its
two signatures, the log's exports) and the wall's duty strip (who leads, who is on
duty, until when). Filled by callbacks/duty.py from the command service's /duty."""

from __future__ import annotations

from dash import dcc, html

from dashboard.api import Me
from dashboard.i18n import Lang, t

PANEL = "panel-duty"
INTERVAL = "duty-interval"
REFRESH = "duty-refresh"
NOW = "duty-now"
EXPORTS = "duty-exports"
LOG = "duty-log"
ENTRY_TEXT = "duty-entry-text"
ENTRY_SAVE = "duty-entry-save"
INSTRUCTION_FROM = "duty-instruction-from"
INSTRUCTION_TEXT = "duty-instruction-text"
INSTRUCTION_SAVE = "duty-instruction-save"
INSTRUCTIONS = "duty-instructions"
HANDOVER = "duty-handover"
HANDOVER_ITEMS = "duty-handover-items"
HANDOVER_NOTES = "duty-handover-notes"
HANDOVER_DRAW = "duty-handover-draw"
HANDOVER_FORM = "duty-handover-form"
FEEDBACK = "duty-feedback"
#: Pattern-matching ids: an instruction's next step (with its text) and a signature.
STEP = "duty-step"
STEP_TEXT = "duty-step-text"
SIGN = "duty-sign"
WALL = "duty-wall"
WALL_INTERVAL = "duty-wall-interval"
#: How often the panel and the wall strip are read again (the roster changes by the hour).
REFRESH_MS = 30_000


def duty_panel(lang: Lang, who: Me) -> html.Div | None:
    """The side panel's 值班 tab (hidden until chosen)."""
    if not who.may("duty.read"):
        return None
    writes = who.may("duty.log_write")
    return html.Div(
        id=PANEL,
        className="panel duty-panel",
        style={"display": "none"},
        children=[
            dcc.Interval(id=INTERVAL, interval=REFRESH_MS, disabled=True),
            dcc.Store(id=REFRESH, data=0),
            html.Div(id=FEEDBACK, className="feedback", role="status"),
            html.Section(
                className="duty-section", children=[html.H3(t(lang, "duty.on_duty")), html.Div(id=NOW)]
            ),
            html.Div(id=EXPORTS, className="row wrap report-links"),
            html.Section(
                className="duty-section",
                children=[
                    html.H3(t(lang, "duty.handover")),
                    html.Div(id=HANDOVER),
                    # hidden while a handover waits for its signatures (callbacks/duty.py)
                    html.Div(
                        id=HANDOVER_FORM,
                        className="duty-form",
                        hidden=not who.may("duty.handover_draw"),
                        children=[
                            dcc.Textarea(
                                id=HANDOVER_ITEMS,
                                placeholder=t(lang, "duty.handover_items"),
                                className="input duty-text",
                            ),
                            dcc.Input(
                                id=HANDOVER_NOTES,
                                type="text",
                                maxLength=400,
                                className="input",
                                placeholder=t(lang, "duty.handover_notes"),
                            ),
                            html.Button(t(lang, "duty.handover_draw"), id=HANDOVER_DRAW, className="btn"),
                        ],
                    ),
                ],
            ),
            html.Section(
                className="duty-section",
                children=[
                    html.H3(t(lang, "duty.instructions")),
                    html.Div(
                        className="duty-form",
                        hidden=not who.may("duty.instruction"),
                        children=[
                            dcc.Input(
                                id=INSTRUCTION_FROM,
                                type="text",
                                maxLength=100,
                                className="input",
                                placeholder=t(lang, "duty.instruction_from"),
                            ),
                            dcc.Textarea(
                                id=INSTRUCTION_TEXT,
                                placeholder=t(lang, "duty.instruction_text"),
                                className="input duty-text",
                            ),
                            html.Button(
                                t(lang, "duty.instruction_save"), id=INSTRUCTION_SAVE, className="btn"
                            ),
                        ],
                    ),
                    html.Div(id=INSTRUCTIONS, className="duty-instructions"),
                ],
            ),
            html.Section(
                className="duty-section",
                children=[
                    html.H3(t(lang, "duty.log")),
                    html.Div(
                        className="duty-form",
                        hidden=not writes,
                        children=[
                            dcc.Textarea(
                                id=ENTRY_TEXT,
                                placeholder=t(lang, "duty.entry_placeholder"),
                                className="input duty-text",
                            ),
                            html.Button(t(lang, "duty.entry_save"), id=ENTRY_SAVE, className="btn primary"),
                        ],
                    ),
                    html.Ol(id=LOG, className="duty-log"),
                ],
            ),
        ],
    )


def wall_strip(lang: Lang) -> html.Div:
    """The wall's 值班 line: who leads, who is on duty, until when."""
    return html.Div(
        className="duty-wall",
        children=[
            html.Span(t(lang, "duty.wall_title"), className="duty-wall-title"),
            html.Span(id=WALL, className="duty-wall-people", children=t(lang, "common.loading")),
            dcc.Interval(id=WALL_INTERVAL, interval=REFRESH_MS),
        ],
    )
