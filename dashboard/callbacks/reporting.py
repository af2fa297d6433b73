"""信息报送 from the incident detail: draft a 首报 / 续报 / 终报, save the desk's figures and
measures as a new version, approve (签发, the leader on duty), send. Each click is one
call to the command API (docs/duty-and-reporting.md); the detail is then drawn again."""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError
from dashboard.callbacks.common import clicked, drill_of, error_text, require, require_staff, tz
from dashboard.callbacks.incident import incident_path
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t
from dashboard.layout.reporting import FIGURES, wall_rows


def _inputs_of(n: int) -> dict[str, Any]:
    """The draft's inputs of report ``n`` by name."""
    out: dict[str, Any] = {}
    for group in ctx.states_list or ():
        for item in group if isinstance(group, list) else ():
            key = item.get("id")
            if isinstance(key, dict) and key.get("type") == ids.UPWARD_INPUT and key.get("n") == n:
                out[str(key.get("name"))] = item.get("value")
    return out


def edit_body(lang: Lang, values: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body from the inputs: whole numbers for the figures (empty: not known)."""
    figures: dict[str, int | None] = {}
    for name in FIGURES:
        text = str(values.get(name) or "").strip()
        if not text:
            figures[name] = None
        elif text.isdigit():
            figures[name] = int(text)
        else:
            raise ValueError(t(lang, "upward.bad_figure", name=t(lang, f"upward.figure.{name}")))
    teams = [line.strip() for line in str(values.get("teams") or "").splitlines() if line.strip()]
    return {"figures": figures, "measures": str(values.get("measures") or ""), "teams": teams}


async def perform(console: Console, token: str, lang: Lang, incident_id: str, button: dict[str, Any]) -> str:
    action, n = str(button.get("action")), int(button.get("n") or 0)
    api = console.api
    if action.startswith("draft_"):
        kind = action.removeprefix("draft_")
        done = await api.post(incident_path(incident_id, "reports"), token, {"kind": kind})
        return t(lang, "upward.done_draft", n=done.get("number"), kind=t(lang, f"upward.kind.{kind}"))
    if action == "save":
        body = edit_body(lang, _inputs_of(n))
        await api.request("PATCH", incident_path(incident_id, "reports", str(n)), token, json=body)
        return t(lang, "upward.done_save", n=n)
    if action in ("approve", "send"):
        await api.post(incident_path(incident_id, "reports", str(n), action), token)
        return t(lang, f"upward.done_{action}", n=n)
    raise PreventUpdate


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.WALL_REPORT_CLOCKS, "children"),
        Input(ids.WALL_REPORT_TICK, "n_intervals"),
        Input(ids.CONFIG, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def wall_clocks(_n: Any, config: Any, session: Any, lang_value: Any) -> Any:
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        scope = drill_of(config, me)
        if not me.may("upward_report.clocks", drill=scope is not None):
            raise PreventUpdate
        try:
            clocks = await console.api.get("/reports/clocks", token, exercise_id=scope)
        except ApiError as exc:
            return [html.Li(error_text(lang, exc), className="muted")]
        return wall_rows(lang, clocks if isinstance(clocks, list) else [], tz(console))

    @app.callback(
        Output(ids.FEEDBACK, "children", allow_duplicate=True),
        Output(ids.DETAIL_TICK, "data", allow_duplicate=True),
        Input({"type": ids.UPWARD, "action": ALL, "n": ALL}, "n_clicks"),
        State({"type": ids.UPWARD_INPUT, "name": ALL, "n": ALL}, "value"),
        State(ids.DETAIL_META, "data"),
        State(ids.DETAIL_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def act(_clicks: Any, _values: Any, meta: Any, tick: Any, session: Any, lang_value: Any) -> Any:
        button = clicked()
        if not isinstance(button, dict) or not isinstance(meta, dict) or not meta.get("id"):
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        try:
            message = await perform(console, token, lang, str(meta["id"]), button)
        except ApiError as exc:
            return html.Span(_refusal(lang, exc), className="error"), (
                tick or 0
            ) + 1 if exc.status == 409 else no_update
        except ValueError as exc:
            return html.Span(str(exc), className="error"), no_update
        return html.Span(message, className="ok"), (tick or 0) + 1


#: How the command service words a refused approval (command.domain.reporting.MissingElements).
MISSING_PREFIX = "missing required elements: "


def _refusal(lang: Lang, exc: ApiError) -> str:
    """A refused approval names the elements the report lacks, in the operator's words."""
    if exc.status == 422 and exc.detail.startswith(MISSING_PREFIX):
        codes = [c.strip() for c in exc.detail.removeprefix(MISSING_PREFIX).split(",") if c.strip()]
        return t(
            lang,
            "upward.missing",
            elements=t(lang, "why.list_separator").join(t(lang, f"upward.element.{c}") for c in codes),
        )
    return error_text(lang, exc)
