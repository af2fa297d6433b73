"""The alarm inbox panel (告警收件箱, layout/inbox.py): its rows, drawn again whenever the
live stream reports an ``inbox`` change, and the operator's acts on them — promote
(升级为事件), link (关联到事件) and dismiss (排除), a row at a time or the ticked rows in
bulk. Every call carries the user's token: the command service decides what each user
sees (operators live rows, planners the drills', admins both) and authorises each act;
the panel only leaves out the buttons whose action ``/auth/me`` does not list.

Exercise mode (演练): the panel shows the rows of the scope the live picture shows (the
exercise-scope store, checked against the caller's actions here, as the KPI tiles do).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any
from urllib.parse import quote

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.callbacks.common import browser, clicked, clientside, error_text, require_staff, tz
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t
from dashboard.layout import exercise as ex
from dashboard.layout import inbox as ib
from wuwang.scope import Scope

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
#: How many rows a list fetches (the header counts show "N+" past it).
LIST_LIMIT = 500
#: The most rows one POST /inbox/bulk takes (command/services/inbox.py, BULK_MAX).
BULK_MAX = 200


def scope_of(who: Me, scope: Any) -> tuple[str, str | None]:
    """(mode, exercise id) of what the panel shows: ``live`` (live rows only), ``all``
    (every drill's rows: a planner who has not chosen one) or ``one``. The scope comes
    from the browser, so it is taken only for a role that may watch drills, and the
    command service authorises the id again."""
    if not who.may_watch_exercises or not isinstance(scope, dict):
        return "live", None
    ident = ex.valid_exercise_id(scope.get("id"))
    if ident is not None:
        return "one", ident
    return ("all", None) if who.drills_only else ("live", None)


def in_scope(row: dict[str, Any], mode: str, ident: str | None) -> bool:
    exercise_id = row.get("exercise_id") or None
    if mode == "live":
        return exercise_id is None
    if mode == "all":
        return exercise_id is not None
    return exercise_id == ident


async def fetch_rows(
    console: Console, token: str, state: str, mode: str, ident: str | None
) -> list[dict[str, Any]]:
    # No id: no narrowing ("live" and "all" differ by role, and in_scope below).
    got = await console.api.get("/inbox", token, state=state, limit=LIST_LIMIT, **Scope.of(ident).query())
    rows = [r for r in got if isinstance(r, dict)] if isinstance(got, list) else []
    return [r for r in rows if in_scope(r, mode, ident)]


def count_text(n: int) -> str:
    return f"{n}+" if n >= LIST_LIMIT else str(n)


def ticked(values: Any) -> list[str]:
    """The ticked rows' ids from the checklists (pattern-matching State values)."""
    out: list[str] = []
    for value in values or []:
        for item in value or []:
            if isinstance(item, str) and ib.ROW_ID.fullmatch(item) and item not in out:
                out.append(item)
    return out


def _path(row_id: str, action: str) -> str:
    return f"/inbox/{quote(row_id, safe='')}/{action}"


def incident_options(lang: Lang, incidents: Any, exercise_id: str | None) -> list[dict[str, str]]:
    """Open incidents of the rows' scope (live and drills never mix), gravest first."""
    out = []
    for inc in incidents if isinstance(incidents, list) else []:
        if not isinstance(inc, dict) or not inc.get("is_open", True):
            continue
        if (inc.get("exercise_id") or None) != exercise_id:
            continue
        level = ROMAN.get(int(inc.get("level") or 4), "?")
        state = t(lang, f"state.{inc.get('state')}")
        out.append(
            {
                "label": f"{level} · {inc.get('title')} · {state} · {inc.get('id')}",
                "value": str(inc.get("id")),
            }
        )
    return out


def rows_digest(lang: Lang, view: str, rows: list[dict[str, Any]]) -> str:
    """What the drawn rows depend on, in a few bytes (the ticks are the browser's own:
    an unchanged list keeps them as they are)."""
    body = json.dumps([lang, view, rows], sort_keys=True, default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def refused_text(lang: Lang, results: list[dict[str, Any]]) -> str | None:
    bad = [r for r in results if not r.get("ok")]
    if not bad:
        return None
    return t(lang, "inbox.refused", n=len(bad), why="; ".join(str(r.get("refused")) for r in bad[:3]))


def register(app: Dash, console: Console) -> None:
    @app.callback(
        Output(ids.INBOX_ROWS, "children"),
        Output(ids.INBOX_COUNTS, "children"),
        Output(ids.INBOX_SHOWN, "data"),
        Output(ids.INBOX_DRAWN, "data"),
        Input(ids.INBOX_TICK, "data"),
        Input(ids.INBOX_VIEW, "value"),
        Input(ex.SCOPE, "data"),
        State({"type": ids.INBOX_CHECK, "row": ALL}, "value"),
        State(ids.INBOX_DRAWN, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
    )
    async def draw(
        _tick: Any, view: Any, scope: Any, checks: Any, drawn: Any, session: Any, lang_value: Any
    ) -> Any:
        me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        view = view if view in ib.VIEWS else "open"
        mode, ident = scope_of(me, scope)
        try:
            open_rows, expired_rows = await asyncio.gather(
                fetch_rows(console, token, "open", mode, ident),
                fetch_rows(console, token, "expired", mode, ident),
            )
        except ApiError as exc:
            return html.Div(error_text(lang, exc), className="muted empty"), no_update, no_update, None
        rows = expired_rows if view == "expired" else open_rows
        counts = t(
            lang, "inbox.counts", open=count_text(len(open_rows)), review=count_text(len(expired_rows))
        )
        shown = {str(r.get("row_id")): r.get("exercise_id") for r in rows}
        keep = {r for r in ticked(checks) if r in shown}
        # The live stream bumps the tick for every inbox change anywhere; redrawing an
        # unchanged list would replace the buttons under the operator's pointer (a click
        # or a tick landing mid-redraw is lost), so only what changed is drawn.
        digest = rows_digest(lang, view, rows)
        if digest == drawn:
            return no_update, counts, no_update, no_update
        return ib.rows_view(lang, me, rows, view, tz(console), keep), counts, shown, digest

    @app.callback(
        Output({"type": ids.INBOX_CHECK, "row": ALL}, "value"),
        Input(ids.INBOX_SELECT_ALL, "n_clicks"),
        State({"type": ids.INBOX_CHECK, "row": ALL}, "value"),
        prevent_initial_call=True,
    )
    def select_all(clicks: Any, checks: Any) -> Any:
        """全选: tick every row drawn with a checkbox (the rows this user may act on);
        everything ticked already: untick them all."""
        if not clicks:
            raise PreventUpdate
        rows = [str(o["id"]["row"]) for o in ctx.outputs_list if isinstance(o.get("id"), dict)]
        if not rows:
            raise PreventUpdate
        everything = len(ticked(checks)) == len(rows)
        return [[] if everything else [row_id] for row_id in rows]

    @app.callback(
        Output(ids.INBOX_BULK, "hidden"),
        Output(ids.INBOX_SELECTED, "children"),
        Input({"type": ids.INBOX_CHECK, "row": ALL}, "value"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    def selection(checks: Any, lang_value: Any) -> Any:
        lang = lang_of(lang_value or console.settings.dashboard.language)
        chosen = ticked(checks)
        return not chosen, t(lang, "inbox.selected", n=len(chosen))

    @app.callback(
        Output(ids.INBOX_FEEDBACK, "children"),
        Output(ids.INBOX_PENDING, "data"),
        Output(ids.INBOX_FORM, "hidden"),
        Output(ids.INBOX_FORM_TITLE, "children"),
        Output(ids.INBOX_LINK_PART, "hidden"),
        Output(ids.INBOX_DISMISS_PART, "hidden"),
        Output(ids.INBOX_INCIDENT, "options"),
        Output(ids.INBOX_INCIDENT, "value"),
        Output(ids.INBOX_REASON, "value"),
        Output(ids.INBOX_NOTE, "value"),
        Output(ids.INBOX_TICK, "data", allow_duplicate=True),
        Output(ids.INBOX_OPENED, "data"),
        Input({"type": ids.INBOX_ACT, "action": ALL, "row": ALL}, "n_clicks"),
        Input({"type": ids.INBOX_BULK_ACT, "action": ALL}, "n_clicks"),
        Input(ids.INBOX_CONFIRM, "n_clicks"),
        Input(ids.INBOX_CANCEL, "n_clicks"),
        State({"type": ids.INBOX_CHECK, "row": ALL}, "value"),
        State(ids.INBOX_PENDING, "data"),
        State(ids.INBOX_INCIDENT, "value"),
        State(ids.INBOX_REASON, "value"),
        State(ids.INBOX_NOTE, "value"),
        State(ids.INBOX_SHOWN, "data"),
        State(ids.INBOX_TICK, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    async def act(
        _rows: Any,
        _bulk: Any,
        _confirm: Any,
        _cancel: Any,
        checks: Any,
        pending: Any,
        incident_id: Any,
        reason: Any,
        note: Any,
        shown: Any,
        tick: Any,
        session: Any,
        lang_value: Any,
    ) -> Any:
        button = clicked()
        if button is None:
            raise PreventUpdate
        _me, token = await require_staff(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        shown = shown if isinstance(shown, dict) else {}
        keep: list[Any] = [no_update] * 12
        closed: list[Any] = [
            None,
            True,
            no_update,
            no_update,
            no_update,
            no_update,
            no_update,
            no_update,
            no_update,
        ]

        def say(text: str, ok: bool = True) -> html.Span:
            return html.Span(text, className="ok" if ok else "error")

        if button == ids.INBOX_CANCEL:
            return ["", *closed, no_update, no_update]

        # which rows, which act
        if isinstance(button, dict) and button.get("type") == ids.INBOX_ACT:
            row_ids = [str(button.get("row"))]
            action = str(button.get("action"))
        elif isinstance(button, dict) and button.get("type") == ids.INBOX_BULK_ACT:
            row_ids = ticked(checks)
            action = str(button.get("action"))
        elif button == ids.INBOX_CONFIRM and isinstance(pending, dict):
            row_ids = [str(r) for r in pending.get("row_ids") or [] if isinstance(r, str)]
            action = str(pending.get("action"))
        else:
            raise PreventUpdate
        row_ids = [r for r in row_ids if ib.ROW_ID.fullmatch(r)]
        if action not in ib.ACTIONS:
            raise PreventUpdate
        if not row_ids:
            keep[0] = say(t(lang, "inbox.err_none"), ok=False)
            return keep
        refreshed = max(int(time.time() * 1000), (tick if isinstance(tick, int) else 0) + 1)

        # link and dismiss: open the form first (its Confirm comes back here)
        if action in ("link", "dismiss") and button != ids.INBOX_CONFIRM:
            scope = shown.get(row_ids[0])
            options: list[dict[str, str]] = []
            if action == "link":
                try:
                    incidents = await console.api.get("/incidents", token, open="true", limit=200)
                except ApiError as exc:
                    return [say(error_text(lang, exc), ok=False), *keep[1:]]
                options = incident_options(lang, incidents, scope if isinstance(scope, str) else None)
            title = t(lang, f"inbox.form_{action}", n=len(row_ids))
            if action == "link" and not options:
                title = f"{title} — {t(lang, 'inbox.no_open_incidents')}"
            return [
                "",
                {"action": action, "row_ids": row_ids},
                False,
                title,
                action != "link",
                action != "dismiss",
                options,
                None,
                None,
                "",
                no_update,
                no_update,
            ]

        text = note.strip() if isinstance(note, str) and note.strip() else None
        body: dict[str, Any] = {"note": text} if text else {}
        if action == "link":
            if not isinstance(incident_id, str) or not ex.valid_incident_id(incident_id):
                keep[0] = say(t(lang, "inbox.err_incident"), ok=False)
                return keep
            body["incident_id"] = incident_id
        if action == "dismiss":
            if reason not in ib.DISMISS_REASONS:
                keep[0] = say(t(lang, "inbox.err_reason"), ok=False)
                return keep
            if reason == "other" and text is None:
                keep[0] = say(t(lang, "inbox.err_note"), ok=False)
                return keep
            body["reason"] = reason
        try:
            if len(row_ids) == 1:
                done = await console.api.post(_path(row_ids[0], action), token, body)
                results = [{"row_id": row_ids[0], "ok": True, "row": (done or {}).get("row")}]
            else:
                # POST /inbox/bulk takes BULK_MAX rows; a bulk promote is ONE incident, so
                # only its first BULK_MAX rows go (the rest stay ticked in the inbox)
                chunks = [row_ids[i : i + BULK_MAX] for i in range(0, len(row_ids), BULK_MAX)]
                results, done = [], None
                for chunk in chunks[:1] if action == "promote" else chunks:
                    done = await console.api.post(
                        "/inbox/bulk", token, {"action": action, "row_ids": chunk, **body}
                    )
                    results += [r for r in (done or {}).get("results", []) if isinstance(r, dict)]
        except ApiError as exc:
            return [say(error_text(lang, exc), ok=False), *closed, refreshed, no_update]
        incident = (done or {}).get("incident") or {}
        ok = sum(1 for r in results if r.get("ok"))
        if action == "promote":
            message = t(lang, "inbox.done_promote", id=incident.get("id", ""))
        elif action == "link":
            message = t(lang, "inbox.done_link", n=ok, id=incident.get("id") or incident_id)
        else:
            message = t(lang, "inbox.done_dismiss", n=ok)
        refused = refused_text(lang, results)
        feedback = html.Span(
            [say(message, ok=ok > 0), *([html.Br(), say(refused, ok=False)] if refused else [])]
        )
        selected = incident.get("id") if action == "promote" and incident.get("id") else no_update
        return [feedback, *closed, refreshed, selected]

    # The incident a promotion opened: shown in the detail panel and marked in the queue,
    # as a click on its queue row would (assets/20-wuwang-live.js).
    clientside(
        app,
        browser("openIncident"),
        Output(ids.INBOX_OPENED_APPLIED, "data"),
        Input(ids.INBOX_OPENED, "data"),
        prevent_initial_call=True,
    )
