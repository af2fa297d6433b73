"""The incident detail's reporting tab (信息报送, docs/duty-and-reporting.md): the report
clocks counting down (an overdue one in red, escalated to the leader on duty), the
reports with their state, and the draft / edit / approve / send controls — each drawn
only for an action ``/auth/me`` lists; the command service judges every act again.
Buttons carry ``{"type": ids.UPWARD, "action": …, "n": …}`` (dashboard.callbacks.reporting).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import ids
from dashboard.api import Me
from dashboard.i18n import Lang, t
from dashboard.i18n.data import incident_title
from dashboard.layout import data_attrs

CLOCK_KINDS = ("phone", "written", "follow_up", "final")
FIGURES = ("deaths", "missing", "injured")
WALL_REFRESH_MS = 30_000
WALL_ROWS = 8  # the most urgent; the strip keeps one line of the wall's height


def _button(lang: Lang, action: str, n: int = 0, *, primary: bool = False) -> html.Button:
    return html.Button(
        t(lang, f"upward.act_{action}"),
        id={"type": ids.UPWARD, "action": action, "n": n},
        className="btn" + (" primary" if primary else ""),
        n_clicks=0,
    )


def clock_row(lang: Lang, c: dict[str, Any], tz: ZoneInfo) -> html.Li:
    """One clock: what is due, by when, and how long is left (or how late it is)."""
    from dashboard.layout.detail import clock, minutes

    state = str(c.get("state"))
    remaining = float(c.get("remaining_s") or 0)
    if state == "overdue":
        left = t(lang, "upward.overdue_by", time=minutes(-remaining, lang))
    elif state == "running":
        left = t(lang, "upward.left", time=minutes(remaining, lang))
    else:
        left = t(lang, f"upward.clock_state.{state}")
    kind = str(c.get("kind"))
    return html.Li(
        className=f"report-clock {state}",
        **data_attrs(due=str(c.get("due_at") or "")),
        children=[
            html.Strong(t(lang, f"upward.clock.{kind}") if kind in CLOCK_KINDS else kind),
            html.Span(t(lang, "upward.due_at", time=clock(c.get("due_at"), tz, with_date=True))),
            html.Span(left, className="report-clock-left"),
            html.Span(t(lang, "upward.escalated"), className="report-clock-escalated")
            if state == "overdue"
            else None,
        ],
    )


def _report_row(lang: Lang, who: Me, inc: dict[str, Any], r: dict[str, Any]) -> html.Li:
    n = int(r.get("number") or 0)
    state = str(r.get("state"))
    versions = r.get("versions") or []
    current = (versions[-1] if versions else {}).get("content") or {}
    controls: list[Any] = []
    if state == "draft" and who.may_on("upward_report.draft", inc):
        figures = current.get("figures") or {}
        controls += [
            html.Label(
                [
                    t(lang, f"upward.figure.{name}"),
                    dcc.Input(
                        id={"type": ids.UPWARD_INPUT, "name": name, "n": n},
                        type="text",
                        inputMode="numeric",
                        value="" if figures.get(name) is None else str(figures[name]),
                        className="figure-input",
                    ),
                ]
            )
            for name in FIGURES
        ]
        controls.append(
            dcc.Textarea(
                id={"type": ids.UPWARD_INPUT, "name": "measures", "n": n},
                value=str(current.get("measures") or ""),
                placeholder=t(lang, "upward.measures"),
                className="report-measures",
            )
        )
        controls.append(
            dcc.Textarea(
                id={"type": ids.UPWARD_INPUT, "name": "teams", "n": n},
                value="\n".join(str(x) for x in current.get("teams") or []),
                placeholder=t(lang, "upward.teams"),
                className="report-measures",
            )
        )
        controls.append(_button(lang, "save", n))
    if state == "draft" and who.may_on("upward_report.approve", inc):
        controls.append(_button(lang, "approve", n, primary=True))
    if state == "approved" and who.may_on("upward_report.send", inc):
        controls.append(_button(lang, "send", n, primary=True))
    changes = (versions[-1] if versions else {}).get("changes") or []
    return html.Li(
        className=f"upward-report {state}",
        id=f"upward-report-{n}",
        children=[
            html.Div(
                [
                    html.Strong(
                        t(lang, "upward.report_title", n=n, kind=t(lang, f"upward.kind.{r.get('kind')}"))
                    ),
                    html.Span(t(lang, f"upward.state.{state}"), className=f"upward-state {state}"),
                    html.Span(t(lang, "upward.versions", n=len(versions)), className="muted small"),
                ]
            ),
            html.P(t(lang, "upward.changes", n=len(changes)), className="small") if changes else None,
            html.Div(className="upward-controls", children=controls) if controls else None,
        ],
    )


def _said(lang: Lang, rule: dict[str, Any], name: str) -> str:
    """A rule's words in the desk's language: its English form on an English desk when the
    rule file gives one (the Chinese is the rule's own text, kept on a Chinese desk)."""
    english = rule.get(f"{name}_en") if lang == "en" else None
    return str(english or rule.get(name) or "")


def reporting_tab(
    lang: Lang, who: Me, inc: dict[str, Any], reporting: dict[str, Any] | None, tz: ZoneInfo
) -> html.Div:
    """The clocks and the reports of one incident, with the acts the user may do."""
    if not isinstance(reporting, dict):
        return html.Div(html.P(t(lang, "upward.unavailable"), className="muted"))
    rule = reporting.get("rule") or {}
    clocks = reporting.get("clocks") or []
    reports = reporting.get("reports") or []
    kinds = {str(r.get("kind")) for r in reports}
    parts: list[Any] = [
        html.P(
            t(lang, "upward.rule", title=_said(lang, rule, "title"), to=_said(lang, rule, "report_to")),
            className="small",
        )
    ]
    if not reporting.get("covered"):
        parts.append(html.P(t(lang, "upward.not_covered"), className="muted"))
    parts.append(
        html.Ul(
            className="report-clocks", id="report-clocks", children=[clock_row(lang, c, tz) for c in clocks]
        )
    )
    parts.append(
        html.Ol(className="upward-reports", children=[_report_row(lang, who, inc, r) for r in reports])
    )
    if who.may_on("upward_report.draft", inc) and "final" not in kinds:
        wanted = ["first"] if "first" not in kinds else ["follow_up", "final"]
        parts.append(
            html.Div(className="upward-controls", children=[_button(lang, f"draft_{k}") for k in wanted])
        )
    return html.Div(className="detail-reporting", children=parts)


def wall_strip(lang: Lang) -> html.Section:
    """The wall's line of every running report clock (red when overdue), most urgent
    first; filled every 30 s from ``GET /reports/clocks`` (dashboard.callbacks.reporting)."""
    return html.Section(
        className="report-clock-strip",
        children=[
            html.H2(t(lang, "upward.wall_title")),
            html.Ul(
                id=ids.WALL_REPORT_CLOCKS,
                className="report-clocks",
                children=[html.Li(t(lang, "upward.wall_none"), className="muted")],
            ),
            dcc.Interval(id=ids.WALL_REPORT_TICK, interval=WALL_REFRESH_MS),
        ],
    )


def wall_rows(lang: Lang, clocks: list[dict[str, Any]], tz: ZoneInfo) -> list[html.Li]:
    """One line per clock: the incident, then the clock as on the detail."""
    if not clocks:
        return [html.Li(t(lang, "upward.wall_none"), className="muted")]
    rows = []
    for c in clocks[:WALL_ROWS]:
        row = clock_row(lang, c, tz)
        row.children = [
            html.Span(incident_title(lang, c), className="report-clock-incident"),
            *row.children,
        ]
        rows.append(row)
    if len(clocks) > WALL_ROWS:
        # the wall never hides that clocks are cut off: the desk's board lists them all
        rows.append(html.Li(t(lang, "upward.wall_more", n=len(clocks) - WALL_ROWS), className="muted more"))
    return rows
