"""值班值守 on the console (layout/duty.py): the desk's duty panel — who is on duty, the
handover with its signatures, the leader's instructions with their next step, the duty
log with a free entry — and the wall's duty strip. Every read and act goes to the
command service's /duty with the caller's token; it decides (docs/duty-and-reporting.md).
In exercise mode the panel is the watched drill's desk."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import ALL, Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.api import ApiError, Me
from dashboard.callbacks.common import clicked, clientside, error_text, require, tz
from dashboard.context import Console
from dashboard.i18n import Lang, lang_of, t
from dashboard.layout import data_attrs
from dashboard.layout import duty as d
from dashboard.layout import exercise as ex
from wuwang import dutylog
from wuwang.scope import Scope

#: The newest entries shown in the panel (the export has them all).
LOG_SHOWN = 60


def _time(value: str | None, zone: ZoneInfo, fmt: str = "%H:%M") -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime(fmt)


def _people(lang: Lang, shift: dict[str, Any]) -> str:
    officers = "、".join(str(o.get("name") or o.get("user_id")) for o in shift.get("officers", []))
    return t(lang, "duty.people", leader=shift["leader"]["name"], officers=officers)


def on_duty(lang: Lang, now: dict[str, Any], zone: ZoneInfo) -> list[Any]:
    current, following = now.get("current"), now.get("next")
    lines: list[Any] = []
    if current is None:
        lines.append(html.P(t(lang, "duty.nobody"), className="muted"))
    else:
        lines.append(
            html.P(
                className="duty-current",
                **data_attrs(shift=current["shift_id"]),
                children=[
                    html.B(_people(lang, current)),
                    " ",
                    t(lang, "duty.until", end=_time(current["ends_at"], zone, "%m-%d %H:%M")),
                ],
            )
        )
    if following is not None:
        lines.append(
            html.P(
                t(
                    lang,
                    "duty.next",
                    start=_time(following["starts_at"], zone, "%m-%d %H:%M"),
                    people=_people(lang, following),
                ),
                className="muted small",
            )
        )
    return lines


def export_links(lang: Lang, shift_id: str | None, day: str) -> list[Any]:
    """The duty log of this shift and of today, as a printable page and as CSV (fetched
    with the session's token through /report/duty, assets/40-wuwang-exercise.js)."""
    tongue = "zh" if lang == "zh_CN" else "en"
    links: list[Any] = [html.Span(t(lang, "duty.export"), className="muted")]
    for ident, label in ((shift_id, "duty.export_shift_log"), (day, "duty.export_day_log")):
        if not ident:
            continue
        for fmt, mode in (("html", "open"), ("csv", "download")):
            href = f"/report/duty/{ident}.{fmt}?lang={tongue}"
            links.append(
                html.A(
                    t(lang, label, format=fmt.upper()),
                    href=href,
                    target="_blank" if mode == "open" else None,
                    className="btn btn-small report-link",
                    **data_attrs(report=href, report_mode=mode),
                )
            )
    return links


def actor_label(lang: Lang, actor: str, actors: dict[str, dict[str, str]]) -> str:
    """Who wrote an entry, in the operator's words: name and role (王强（指挥长）); an
    automatic entry names nobody, an unknown account shows as it was recorded."""
    return dutylog.writer_label(lang, actor, actors) or ""


def log_list(
    lang: Lang, entries: list[dict[str, Any]], zone: ZoneInfo, actors: dict[str, dict[str, str]] | None = None
) -> list[Any]:
    if not entries:
        return [html.Li(t(lang, "duty.log_empty"), className="muted")]
    return [
        html.Li(
            className=f"duty-entry kind-{e['kind']}",
            **data_attrs(kind=e["kind"]),
            children=[
                html.Span(_time(e["at"], zone), className="duty-at"),
                html.Span(dutylog.kind_label(lang, e["kind"]), className="duty-kind"),
                html.Span(
                    dutylog.entry_line(lang, e["kind"], e["text"], e.get("detail") or {}),
                    className="duty-line",
                ),
                html.Span(actor_label(lang, e["actor"], actors or {}), className="duty-actor muted"),
            ],
        )
        for e in reversed(entries[-LOG_SHOWN:])
    ]


def instruction_items(lang: Lang, me: Me, rows: list[dict[str, Any]], zone: ZoneInfo) -> list[Any]:
    if not rows:
        return [html.P(t(lang, "duty.instructions_none"), className="muted")]
    items = []
    for i in rows:
        state = str(i["state"])
        facts: list[Any] = [
            html.Span(t(lang, f"duty.instruction_state.{state}"), className=f"duty-state state-{state}"),
            html.Span(_time(i["received_at"], zone, "%m-%d %H:%M"), className="muted"),
            html.B(i["issued_by"]),
            html.Span(i["text"]),
        ]
        if i["passed_to"]:
            facts.append(
                html.Span(t(lang, "duty.passed_to", names="、".join(i["passed_to"])), className="muted")
            )
        if i["follow_up"]:
            facts.append(html.Span(i["follow_up"], className="muted"))
        if i.get("overdue"):
            facts.append(html.Span(t(lang, "duty.overdue"), className="badge badge-overdue"))
        step = i.get("next_state")
        acts: list[Any] = []
        if step and me.may_on("duty.instruction", i):
            acts = [
                html.Div(
                    className="row",
                    children=[
                        step_input(lang, i["instruction_id"], step),
                        html.Button(
                            t(lang, f"duty.step.{step}"),
                            id={"type": d.STEP, "id": i["instruction_id"], "to": step},
                            className="btn btn-small",
                        ),
                    ],
                )
            ]
        items.append(
            html.Div(
                className="duty-instruction",
                **data_attrs(instruction=i["instruction_id"], state=state),
                children=[html.Div(className="row wrap", children=facts), *acts],
            )
        )
    return items


def step_input(lang: Lang, instruction_id: str, step: str) -> dcc.Input:
    """Whom it is passed to, or what was done: the text of an instruction's next step."""
    hint = "duty.passed_to_hint" if step == "passed_on" else "duty.follow_up_hint"
    return dcc.Input(
        id={"type": d.STEP_TEXT, "id": instruction_id},
        type="text",
        maxLength=200,
        placeholder=t(lang, hint),
        className="input duty-step-text",
    )


def handover_view(lang: Lang, me: Me, rows: list[dict[str, Any]], zone: ZoneInfo) -> list[Any]:
    """The latest handover: its lists and its two signatures (a sign button for whoever
    may still sign)."""
    if not rows:
        return [html.P(t(lang, "duty.handover_none"), className="muted")]
    h = rows[0]
    snap = h.get("snapshot") or {}
    opened = snap.get("open") or {}
    follow = snap.get("follow") or {}
    lines: list[Any] = [
        html.P(
            t(
                lang,
                "duty.handover_head",
                at=_time(h["drawn_up_at"], zone, "%m-%d %H:%M"),
                outgoing=_people(lang, h["outgoing"]),
                incoming=_people(lang, h["incoming"]),
            ),
            className="small",
        ),
        html.P(
            t(
                lang,
                "duty.handover_open",
                incidents=len(opened.get("incidents") or []),
                inbox=opened.get("inbox_waiting", 0),
                warnings=len(opened.get("warnings") or []),
            )
        ),
    ]
    overdue = snap.get("overdue") or []
    if overdue:
        lines.append(
            html.P(
                [
                    html.B(t(lang, "duty.overdue")),
                    " ",
                    "；".join(str(o.get("title") or o.get("ref")) for o in overdue),
                ],
                className="duty-overdue",
            )
        )
    follow_texts = [
        *(follow.get("items") or []),
        *(str(i.get("text")) for i in follow.get("instructions") or []),
    ]
    if follow_texts:
        lines.append(html.Ul([html.Li(text) for text in follow_texts], className="duty-follow"))
    if h.get("notes"):
        lines.append(html.P(h["notes"], className="muted"))
    names = {
        p["user_id"]: p["name"] for s in (h["outgoing"], h["incoming"]) for p in (s["leader"], *s["officers"])
    }
    signatures: list[Any] = []
    for side in ("outgoing", "incoming"):
        by = h.get(f"{side}_signed_by")
        signatures.append(
            html.Span(
                t(lang, f"duty.signed_{side}", who=names.get(by, by))
                if by
                else t(lang, f"duty.unsigned_{side}"),
                className="duty-signature signed" if by else "duty-signature",
                **data_attrs(side=side, signed="yes" if by else "no"),
            )
        )
    if not h["sealed"] and me.may_on("duty.handover_sign", h):
        signatures.append(
            html.Button(
                t(lang, "duty.sign"), id={"type": d.SIGN, "id": h["handover_id"]}, className="btn primary"
            )
        )
    if h["sealed"]:
        signatures.append(html.Span(t(lang, "duty.sealed"), className="badge"))
    lines.append(html.Div(className="row wrap duty-signatures", children=signatures))
    return [html.Div(className="duty-handover-card", **data_attrs(handover=h["handover_id"]), children=lines)]


def _scope(me: Me, scope: Any) -> Scope | None:
    """The desk's scope: live, or the watched drill (None: a planner who chose none)."""
    exercise_mode, exercise_id = ex.kpi_exercise(me, scope)
    if exercise_mode and exercise_id is None:
        return None
    return Scope.of(exercise_id)


def register(app: Dash, console: Console) -> None:
    clientside(
        app,
        "function (tab) { var on = tab === 'duty'; return [on ? {} : {display: 'none'}, !on]; }",
        Output(d.PANEL, "style"),
        Output(d.INTERVAL, "disabled"),
        Input(ids.SIDE_TABS, "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(d.NOW, "children"),
        Output(d.EXPORTS, "children"),
        Output(d.HANDOVER, "children"),
        Output(d.INSTRUCTIONS, "children"),
        Output(d.LOG, "children"),
        Output(d.HANDOVER_FORM, "hidden"),
        Input(ids.SIDE_TABS, "value"),
        Input(d.INTERVAL, "n_intervals"),
        Input(d.REFRESH, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        State(ex.SCOPE, "data"),
        prevent_initial_call=True,
    )
    async def panel(tab: Any, _n: Any, _refresh: Any, session: Any, lang_value: Any, scope_data: Any) -> Any:
        if tab != "duty":
            raise PreventUpdate
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        scope = _scope(me, scope_data)
        if scope is None:
            choose = html.P(t(lang, "duty.choose_exercise"), className="muted")
            return choose, [], [], [], [], True
        zone = tz(console)
        query = scope.query()
        try:
            now = await console.api.get("/duty/now", token, **query)
            log = await console.api.get("/duty/log", token, **query)
            instructions = await console.api.get("/duty/instructions", token, **query)
            handovers = await console.api.get("/duty/handovers", token, **query)
        except ApiError as exc:
            failed = html.P(error_text(lang, exc), className="muted")
            return failed, [], [], [], [], True
        current = now.get("current") or {}
        today = datetime.fromisoformat(now["at"]).astimezone(zone).date().isoformat()
        return (
            on_duty(lang, now, zone),
            export_links(lang, current.get("shift_id"), today) if scope.is_live else [],
            handover_view(lang, me, handovers, zone),
            instruction_items(lang, me, instructions, zone),
            log_list(lang, log.get("entries") or [], zone, log.get("actors") or {}),
            # one handover at a time: drawn up again only once the last one is signed
            not me.may("duty.handover_draw") or bool(handovers and not handovers[0]["sealed"]),
        )

    @app.callback(
        Output(d.FEEDBACK, "children"),
        Output(d.REFRESH, "data"),
        Output(d.ENTRY_TEXT, "value"),
        Output(d.INSTRUCTION_TEXT, "value"),
        Input(d.ENTRY_SAVE, "n_clicks"),
        Input(d.INSTRUCTION_SAVE, "n_clicks"),
        Input(d.HANDOVER_DRAW, "n_clicks"),
        Input({"type": d.STEP, "id": ALL, "to": ALL}, "n_clicks"),
        Input({"type": d.SIGN, "id": ALL}, "n_clicks"),
        State(d.ENTRY_TEXT, "value"),
        State(d.INSTRUCTION_FROM, "value"),
        State(d.INSTRUCTION_TEXT, "value"),
        State(d.HANDOVER_ITEMS, "value"),
        State(d.HANDOVER_NOTES, "value"),
        State({"type": d.STEP_TEXT, "id": ALL}, "value"),
        State({"type": d.STEP_TEXT, "id": ALL}, "id"),
        State(d.REFRESH, "data"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        State(ex.SCOPE, "data"),
        prevent_initial_call=True,
    )
    async def act(
        _entry: Any,
        _instruction: Any,
        _draw: Any,
        _steps: Any,
        _signs: Any,
        entry_text: Any,
        instruction_from: Any,
        instruction_text: Any,
        handover_items: Any,
        handover_notes: Any,
        step_texts: Any,
        step_ids: Any,
        refresh: Any,
        session: Any,
        lang_value: Any,
        scope_data: Any,
    ) -> Any:
        which = clicked()
        if which is None:
            raise PreventUpdate
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        scope = _scope(me, scope_data)
        if scope is None:
            raise PreventUpdate
        in_scope: dict[str, Any] = {"exercise_id": scope.exercise_id} if scope.is_drill else {}
        keep = (entry_text, instruction_text)
        body: dict[str, Any] = dict(in_scope)
        try:
            if which == d.ENTRY_SAVE:
                if not str(entry_text or "").strip():
                    return t(lang, "duty.entry_empty"), refresh, *keep
                await console.api.post("/duty/log", token, {"text": str(entry_text), **in_scope})
                return t(lang, "duty.entry_saved"), (refresh or 0) + 1, "", instruction_text
            if which == d.INSTRUCTION_SAVE:
                body.update(issued_by=str(instruction_from or ""), text=str(instruction_text or ""))
                await console.api.post("/duty/instructions", token, body)
                return t(lang, "duty.instruction_saved"), (refresh or 0) + 1, entry_text, ""
            if which == d.HANDOVER_DRAW:
                items = [line.strip() for line in str(handover_items or "").splitlines() if line.strip()]
                body.update(follow_items=items, notes=str(handover_notes or ""))
                await console.api.post("/duty/handovers", token, body)
                return t(lang, "duty.handover_drawn"), (refresh or 0) + 1, *keep
            if isinstance(which, dict) and which.get("type") == d.SIGN:
                await console.api.post(f"/duty/handovers/{which['id']}/sign", token)
                return t(lang, "duty.signed"), (refresh or 0) + 1, *keep
            if isinstance(which, dict) and which.get("type") == d.STEP:
                texts = {str(i.get("id")): v for i, v in zip(step_ids or [], step_texts or [], strict=False)}
                text = str(texts.get(str(which["id"])) or "")
                to = str(which.get("to"))
                body = {"to": to}
                if to == "passed_on":
                    body["passed_to"] = [
                        n for n in (p.strip() for p in text.replace("，", ",").split(",")) if n
                    ]
                else:
                    body["follow_up"] = text
                await console.api.post(f"/duty/instructions/{which['id']}/advance", token, body)
                return t(lang, "duty.step_saved"), (refresh or 0) + 1, *keep
        except ApiError as exc:
            return error_text(lang, exc), refresh, *keep
        raise PreventUpdate

    @app.callback(
        Output(d.WALL, "children"),
        Input(d.WALL_INTERVAL, "n_intervals"),
        State(ids.SESSION, "data"),
        State(ids.LANG, "data"),
        State(ex.SCOPE, "data"),
    )
    async def wall(_n: Any, session: Any, lang_value: Any, scope_data: Any) -> Any:
        me, token = await require(console, session)
        lang = lang_of(lang_value or console.settings.dashboard.language)
        if not me.may("duty.read"):
            raise PreventUpdate
        scope = _scope(me, scope_data)
        if scope is None:
            return t(lang, "duty.choose_exercise")
        try:
            now = await console.api.get("/duty/now", token, **scope.query())
        except ApiError as exc:
            return error_text(lang, exc)
        current = now.get("current")
        if current is None:
            return t(lang, "duty.nobody")
        zone = tz(console)
        return [
            html.B(_people(lang, current)),
            " ",
            html.Span(t(lang, "duty.until", end=_time(current["ends_at"], zone))),
        ]
