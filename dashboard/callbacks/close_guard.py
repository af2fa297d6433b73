"""The close guard's two halves on the server: the act callback (callbacks/incident.py)
records a refused resolve or close in the ``close-guard`` store
(:func:`dashboard.layout.close_guard.refusal`),
and the override button here resolves or closes anyway with the commander's reason
(``override_reason``; the command service checks the role and audits it)."""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError
from dashboard.callbacks.common import clicked, error_text, require_staff
from dashboard.callbacks.incident import incident_path, inputs_by_name, text_of
from dashboard.context import Console
from dashboard.i18n import lang_of, t
from dashboard.layout.close_guard import GUARDED, OVERRIDE_INPUT


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.FEEDBACK, "children", allow_duplicate=True),
        Output(ids.DETAIL_TICK, "data", allow_duplicate=True),
        Output(ids.CLOSE_GUARD, "data", allow_duplicate=True),
        Input({"type": ids.CLOSE_OVERRIDE, "action": ALL}, "n_clicks"),
        State({"type": ids.DETAIL_INPUT, "name": ALL}, "value"),
        State(ids.DETAIL_META, "data"),
        State(ids.DETAIL_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def override(
        _clicks: Any, _values: Any, meta: Any, tick: Any, session: Any, lang_value: Any
    ) -> Any:
        button = clicked()
        if not isinstance(button, dict) or not isinstance(meta, dict) or not meta.get("id"):
            raise PreventUpdate
        action = str(button.get("action"))
        if action not in GUARDED:
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        reason = text_of(inputs_by_name().get(OVERRIDE_INPUT))
        if reason is None:
            return html.Span(t(lang, "guard.reason_required"), className="error"), no_update, no_update
        try:
            await console.api.post(
                incident_path(str(meta["id"]), action),
                token,
                {"expected_version": int(meta.get("version") or 0), "override_reason": reason},
            )
        except ApiError as exc:
            return html.Span(error_text(lang, exc), className="error"), (tick or 0) + 1, no_update
        return html.Span(t(lang, f"done.{action}"), className="ok"), (tick or 0) + 1, None
